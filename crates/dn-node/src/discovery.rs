//! LAN discovery with mDNS (mdns-sd): announces `_disasternet._udp.local.` with TXT records
//! `id` (64 hex), `v` (protocol version) and `name`, and reports every other instance that
//! resolves with a usable address to the network driver: its IPv4 addresses, or when it has
//! none its IPv6 ones (a link-local one with the scope id of the interface it was heard on).

use std::net::{IpAddr, SocketAddr};

use dn_proto::NodeId;
use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};
use tokio::sync::mpsc::Sender;
use tracing::{debug, info, warn};

/// The DNS-SD service type.
pub const SERVICE_TYPE: &str = "_disasternet._udp.local.";

/// A peer found on the LAN.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// Its node id (from TXT `id`).
    pub id: NodeId,
    /// Dialable addresses, non-loopback first (IPv4, or IPv6 when the peer has no IPv4).
    pub addrs: Vec<SocketAddr>,
}

/// A running mDNS announcer + browser.
pub struct Mdns {
    daemon: ServiceDaemon,
    fullname: String,
    me: NodeId,
    port: u16,
}

fn instance(me: &NodeId) -> String {
    format!("dn-{}", &me.to_hex()[..16])
}

fn service_info(me: &NodeId, name: &str, port: u16) -> Result<ServiceInfo, mdns_sd::Error> {
    let inst = instance(me);
    let host = format!("{inst}.local.");
    let props = [
        ("id", me.to_hex()),
        ("v", dn_proto::message::PROTOCOL_VERSION.to_string()),
        ("name", name.to_string()),
    ];
    Ok(ServiceInfo::new(SERVICE_TYPE, &inst, &host, "", port, &props[..])?.enable_addr_auto())
}

/// The dialable IPv6 addresses among `ips`: a link-local one with its interface's scope id
/// (none known: left out), others as they are.
fn v6_addrs(ips: &std::collections::HashSet<mdns_sd::ScopedIp>, port: u16) -> Vec<SocketAddr> {
    ips.iter()
        .filter_map(|ip| match ip {
            mdns_sd::ScopedIp::V6(v6) => {
                let scope = if v6.addr().is_unicast_link_local() {
                    match v6.scope_id().index {
                        0 => return None,
                        i => i,
                    }
                } else {
                    0
                };
                Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                    *v6.addr(),
                    port,
                    0,
                    scope,
                )))
            }
            _ => None,
        })
        .collect()
}

impl Mdns {
    /// Starts announcing `me` on `port` and browsing for others; found peers go to `found`.
    pub fn start(
        me: NodeId,
        name: &str,
        port: u16,
        found: Sender<Discovered>,
        counters: std::sync::Arc<crate::net::NetCounters>,
    ) -> Result<Mdns, mdns_sd::Error> {
        let daemon = ServiceDaemon::new()?;
        let info = service_info(&me, name, port)?;
        let fullname = info.get_fullname().to_string();
        daemon.register(info)?;
        let rx = daemon.browse(SERVICE_TYPE)?;
        tokio::spawn(async move {
            while let Ok(ev) = rx.recv_async().await {
                if let ServiceEvent::ServiceRemoved(_, fullname) = &ev {
                    // `dn-<first 16 hex of the id>._disasternet._udp.local.`
                    if let Some(hex16) = fullname
                        .strip_prefix("dn-")
                        .and_then(|r| r.get(..16))
                        .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                    {
                        counters.observed.gone(&hex16.to_ascii_lowercase());
                    }
                }
                if let ServiceEvent::ServiceResolved(svc) = ev {
                    let Some(id) = svc
                        .get_property_val_str("id")
                        .and_then(|s| NodeId::from_hex(s).ok())
                    else {
                        debug!(name = svc.get_fullname(), "mDNS service without a valid id");
                        continue;
                    };
                    if id == me {
                        continue;
                    }
                    let mut addrs: Vec<SocketAddr> = svc
                        .get_addresses_v4()
                        .into_iter()
                        .map(|ip| SocketAddr::new(IpAddr::V4(ip), svc.get_port()))
                        .collect();
                    if addrs.is_empty() {
                        // IPv6 only (an ad-hoc network without DHCP): link-local addresses
                        // are dialled on the interface they were heard on.
                        addrs = v6_addrs(svc.get_addresses(), svc.get_port());
                    }
                    // Usable addresses only (IPv4 first, see docs/architecture.md).
                    addrs.sort_by_key(|a| (a.ip().is_loopback(), *a));
                    counters
                        .observed
                        .heard(crate::diagnose::Via::Mdns, id, &addrs);
                    if addrs.is_empty() {
                        debug!(peer = %id.fingerprint(), "mDNS peer without a usable address yet");
                        continue;
                    }
                    info!(peer = %id.fingerprint(), ?addrs, "discovered by mDNS");
                    // Full: dropped (mDNS re-announces); closed: the node stopped.
                    if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) =
                        found.try_send(Discovered { id, addrs })
                    {
                        break;
                    }
                }
            }
        });
        Ok(Mdns {
            daemon,
            fullname,
            me,
            port,
        })
    }

    /// Re-announces with a new display name.
    pub fn rename(&self, name: &str) {
        match service_info(&self.me, name, self.port) {
            Ok(info) => {
                if let Err(e) = self.daemon.register(info) {
                    warn!("mDNS re-register: {e}");
                }
            }
            Err(e) => warn!("mDNS service info: {e}"),
        }
    }

    /// Withdraws the announcement and stops the daemon.
    pub fn stop(&self) {
        let _ = self.daemon.unregister(&self.fullname);
        let _ = self.daemon.shutdown();
    }
}
