//! LAN discovery with mDNS (mdns-sd): announces `_disasternet._udp.local.` with TXT records
//! `id` (64 hex), `v` (protocol version) and `name`, and reports every other instance that
//! resolves with a usable address to the network driver: its IPv4 addresses, or when it has
//! none its IPv6 ones (a link-local one with the scope id of the interface it was heard on).
//! It browses only while [`crate::pace::BrowseGate`] says so: the first minute, while the
//! active view is short, and in short sweeps spread so that a LAN of any size sees about one
//! every 30 s; it always answers others' queries.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use dn_proto::NodeId;
use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};
use tokio::sync::mpsc::Sender;
use tracing::{debug, info, warn};

use crate::pace::{self, Browse, BrowseGate};

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
    stopped: std::sync::Arc<AtomicBool>,
}

/// How often the browse loop asks its [`BrowseGate`] whether to browse.
const GATE_TICK: std::time::Duration = std::time::Duration::from_secs(5);

/// Reports resolved instances while browsing, and starts or stops browsing as the gate says.
async fn browse_loop(
    me: NodeId,
    daemon: ServiceDaemon,
    rx: mdns_sd::Receiver<ServiceEvent>,
    target: usize,
    found: Sender<Discovered>,
    counters: std::sync::Arc<crate::net::NetCounters>,
    stopped: std::sync::Arc<AtomicBool>,
) {
    let mut gate = BrowseGate::new(Instant::now(), pace::rng(&me, 0x6d646e73));
    let mut rx = Some(rx);
    let mut tick = tokio::time::interval(GATE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if stopped.load(Ordering::Relaxed) || found.is_closed() {
            break;
        }
        tokio::select! {
            ev = next_event(&mut rx) => match ev {
                Some(ev) => {
                    if !on_event(&me, ev, &found, &counters) {
                        break;
                    }
                }
                None => {
                    // The daemon ended this browse (stopped, or shut down).
                    rx = None;
                    gate.ended(Instant::now(), counters.pace.known(Instant::now()));
                }
            },
            _ = tick.tick() => {
                let now = Instant::now();
                let known = counters.pace.known(now);
                match gate.step(now, counters.pace.connected(), target, known) {
                    Some(Browse::Start) => match daemon.browse(SERVICE_TYPE) {
                        Ok(r) => {
                            info!(known, "mDNS browse started");
                            rx = Some(r);
                        }
                        Err(e) => {
                            warn!("mDNS browse: {e}");
                            gate.ended(now, known);
                        }
                    },
                    Some(Browse::Stop) => {
                        info!(known, "mDNS browse stopped (the view is full)");
                        if let Err(e) = daemon.stop_browse(SERVICE_TYPE) {
                            debug!("mDNS stop browse: {e}");
                        }
                        rx = None;
                    }
                    None => {}
                }
            }
        }
    }
}

async fn next_event(rx: &mut Option<mdns_sd::Receiver<ServiceEvent>>) -> Option<ServiceEvent> {
    match rx {
        Some(r) => r.recv_async().await.ok(),
        None => std::future::pending().await,
    }
}

/// Handles one mDNS event; false when the driver is gone.
fn on_event(
    me: &NodeId,
    ev: ServiceEvent,
    found: &Sender<Discovered>,
    counters: &crate::net::NetCounters,
) -> bool {
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
    let ServiceEvent::ServiceResolved(svc) = ev else {
        return true;
    };
    let Some(id) = svc
        .get_property_val_str("id")
        .and_then(|s| NodeId::from_hex(s).ok())
    else {
        debug!(name = svc.get_fullname(), "mDNS service without a valid id");
        return true;
    };
    if id == *me {
        return true;
    }
    let mut addrs: Vec<SocketAddr> = svc
        .get_addresses_v4()
        .into_iter()
        .map(|ip| SocketAddr::new(IpAddr::V4(ip), svc.get_port()))
        .collect();
    if addrs.is_empty() {
        // IPv6 only (an ad-hoc network without DHCP): link-local addresses are dialled on the
        // interface they were heard on.
        addrs = v6_addrs(svc.get_addresses(), svc.get_port());
    }
    // Usable addresses only (IPv4 first, see docs/architecture.md).
    addrs.sort_by_key(|a| (a.ip().is_loopback(), *a));
    counters
        .observed
        .heard(crate::diagnose::Via::Mdns, id, &addrs);
    counters.pace.heard(id, Instant::now());
    if addrs.is_empty() {
        debug!(peer = %id.fingerprint(), "mDNS peer without a usable address yet");
        return true;
    }
    info!(peer = %id.fingerprint(), ?addrs, "discovered by mDNS");
    // Full: dropped (mDNS re-announces); closed: the node stopped.
    !matches!(
        found.try_send(Discovered { id, addrs }),
        Err(tokio::sync::mpsc::error::TrySendError::Closed(_))
    )
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
    /// Starts announcing `me` on `port` and browsing for others, paced by
    /// [`crate::pace::BrowseGate`] against the view's `target`; found peers go to `found`.
    pub fn start(
        me: NodeId,
        name: &str,
        port: u16,
        target: usize,
        found: Sender<Discovered>,
        counters: std::sync::Arc<crate::net::NetCounters>,
    ) -> Result<Mdns, mdns_sd::Error> {
        let daemon = ServiceDaemon::new()?;
        let info = service_info(&me, name, port)?;
        let fullname = info.get_fullname().to_string();
        daemon.register(info)?;
        let rx = daemon.browse(SERVICE_TYPE)?;
        let stopped = std::sync::Arc::new(AtomicBool::new(false));
        tokio::spawn(browse_loop(
            me,
            daemon.clone(),
            rx,
            target,
            found,
            counters,
            stopped.clone(),
        ));
        Ok(Mdns {
            daemon,
            fullname,
            me,
            port,
            stopped,
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
        self.stopped.store(true, Ordering::Relaxed);
        let _ = self.daemon.unregister(&self.fullname);
        let _ = self.daemon.shutdown();
    }
}
