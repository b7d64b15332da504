//! UDP broadcast beacon: the discovery fallback for networks that block multicast (hotel and
//! enterprise Wi-Fi often do). Every 2 s on a small LAN, less often as it fills up (up to
//! every 20 s, [`crate::pace::beacon_period`], ± 25 %), the node sends a 39-byte datagram to
//! the subnet broadcast address of each IPv4 interface, port 7301:
//!
//! ```text
//! "DNB1" | version u8 (1) | node id 32 | QUIC port u16 BE
//! ```
//!
//! and listens on 0.0.0.0:7301 (SO_REUSEADDR + SO_REUSEPORT, so several nodes on one host all
//! hear broadcasts). A beacon only suggests an address to dial; the dial itself checks the id
//! with TLS, so a forged beacon costs one failed handshake.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use dn_proto::NodeId;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::Sender;
use tracing::{debug, trace, warn};

use crate::discovery::Discovered;

/// UDP port of the beacon.
pub const BEACON_PORT: u16 = 7301;
const MAGIC: &[u8; 4] = b"DNB1";
const LEN: usize = 4 + 1 + 32 + 2;

/// Encodes a beacon.
pub fn encode(me: &NodeId, quic_port: u16) -> [u8; LEN] {
    let mut b = [0u8; LEN];
    b[..4].copy_from_slice(MAGIC);
    b[4] = dn_proto::message::PROTOCOL_VERSION;
    b[5..37].copy_from_slice(&me.0);
    b[37..39].copy_from_slice(&quic_port.to_be_bytes());
    b
}

/// Decodes a beacon: `(node id, QUIC port)`, or `None` for anything else.
pub fn decode(b: &[u8]) -> Option<(NodeId, u16)> {
    if b.len() != LEN || &b[..4] != MAGIC || b[4] != dn_proto::message::PROTOCOL_VERSION {
        return None;
    }
    let mut id = [0u8; 32];
    id.copy_from_slice(&b[5..37]);
    let port = u16::from_be_bytes([b[37], b[38]]);
    (port != 0).then_some((NodeId(id), port))
}

fn bind(port: u16) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // Several nodes on one machine (tests, an app beside a relay) share the beacon port. On
    // Windows SO_REUSEADDR alone allows that for UDP; SO_REUSEPORT exists on Unix only.
    s.set_reuse_address(true)?;
    #[cfg(unix)]
    s.set_reuse_port(true)?;
    s.set_broadcast(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port).into())?;
    UdpSocket::from_std(s.into())
}

/// Subnet broadcast addresses of the non-loopback IPv4 interfaces, looked up each round so
/// that interfaces appearing later (Wi-Fi joining) are covered.
fn broadcast_addrs() -> Vec<Ipv4Addr> {
    let mut v: Vec<Ipv4Addr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| match i.addr {
            // Interfaces configured without an explicit broadcast address (`ip addr add` without
            // `brd +`) report none or their own address: use the host part all ones.
            if_addrs::IfAddr::V4(a) if !a.ip.is_loopback() && a.prefixlen < 31 => Some(
                a.broadcast
                    .filter(|b| !b.is_unspecified() && *b != a.ip)
                    .unwrap_or_else(|| Ipv4Addr::from(u32::from(a.ip) | !u32::from(a.netmask))),
            ),
            _ => None,
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Beacons accepted per source address per [`SOURCE_WINDOW`]: an honest node beacons every
/// 1.5 s at the most, a few nodes may share an address. More is a flood and is ignored.
pub const BEACONS_PER_SOURCE: u32 = 4;
/// The rate window of [`BEACONS_PER_SOURCE`].
pub const SOURCE_WINDOW: Duration = Duration::from_secs(2);
/// Source addresses tracked by the rate limiter, at most (the table is reset when full).
const MAX_SOURCES: usize = 1024;

/// A per-source-address rate limit for unauthenticated discovery input.
#[derive(Debug, Default)]
pub struct SourceLimiter {
    seen: std::collections::HashMap<IpAddr, (tokio::time::Instant, u32)>,
    /// Packets ignored so far.
    pub dropped: u64,
}

impl SourceLimiter {
    /// Whether a packet from `ip` at `now` is within its source's budget.
    pub fn allow(&mut self, ip: IpAddr, now: tokio::time::Instant) -> bool {
        if self.seen.len() >= MAX_SOURCES && !self.seen.contains_key(&ip) {
            self.seen
                .retain(|_, (start, _)| now.saturating_duration_since(*start) < SOURCE_WINDOW);
            if self.seen.len() >= MAX_SOURCES {
                self.dropped += 1;
                return false;
            }
        }
        let e = self.seen.entry(ip).or_insert((now, 0));
        if now.saturating_duration_since(e.0) >= SOURCE_WINDOW {
            *e = (now, 0);
        }
        e.1 += 1;
        let ok = e.1 <= BEACONS_PER_SOURCE;
        if !ok {
            self.dropped += 1;
        }
        ok
    }
}

/// Starts beaconing and listening; found peers go to `found`. Stops when `shutdown` flips.
pub fn start(
    me: NodeId,
    quic_port: u16,
    found: Sender<Discovered>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    counters: std::sync::Arc<crate::net::NetCounters>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let sock = bind(BEACON_PORT)?;
    let beacon = encode(&me, quic_port);
    Ok(tokio::spawn(async move {
        let mut buf = [0u8; 64];
        // Start soon, then at the paced period, jittered so that nodes started together drift
        // apart.
        let mut rng = crate::pace::rng(&me, 0xbea);
        let mut next =
            tokio::time::Instant::now() + Duration::from_millis(100 + rng.next_u64() % 500);
        let mut limiter = SourceLimiter::default();
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                () = tokio::time::sleep_until(next) => {
                    let targets = broadcast_addrs();
                    trace!(?targets, "beacon round");
                    for b in targets {
                        if let Err(e) = sock.send_to(&beacon, (b, BEACON_PORT)).await {
                            trace!(%b, "beacon send: {e}");
                        }
                    }
                    let known = counters.pace.known(std::time::Instant::now());
                    let period = crate::pace::beacon_period(known);
                    next = tokio::time::Instant::now()
                        + crate::pace::jittered(period, rng.next_u64());
                }
                r = sock.recv_from(&mut buf) => match r {
                    Ok((n, SocketAddr::V4(src))) => {
                        if !limiter.allow(IpAddr::V4(*src.ip()), tokio::time::Instant::now()) {
                            crate::net::NetCounters::bump(&counters.beacon_dropped);
                            if limiter.dropped.is_power_of_two() {
                                debug!(%src, dropped = limiter.dropped, "beacon flood ignored");
                            }
                            continue;
                        }
                        let Some((id, port)) = decode(&buf[..n]) else { continue };
                        if id == me {
                            continue;
                        }
                        debug!(peer = %id.fingerprint(), %src, "beacon");
                        let addr = SocketAddr::new(IpAddr::V4(*src.ip()), port);
                        counters.observed.heard(crate::diagnose::Via::Beacon, id, &[addr]);
                        counters.pace.heard(id, std::time::Instant::now());
                        match found.try_send(Discovered { id, addrs: vec![addr] }) {
                            Ok(()) => {}
                            // The driver is behind: beacons repeat, this one is dropped.
                            Err(TrySendError::Full(_)) => {
                                crate::net::NetCounters::bump(&counters.discovery_dropped);
                            }
                            Err(TrySendError::Closed(_)) => break,
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        warn!("beacon receive: {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                },
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_gets_its_budget_per_window_and_others_are_unaffected() {
        let mut l = SourceLimiter::default();
        let t0 = tokio::time::Instant::now();
        let a = IpAddr::from([10, 9, 0, 1]);
        let b = IpAddr::from([10, 9, 0, 2]);
        for _ in 0..BEACONS_PER_SOURCE {
            assert!(l.allow(a, t0));
        }
        assert!(!l.allow(a, t0), "over the budget");
        assert!(l.allow(b, t0), "another source is not affected");
        assert!(l.allow(a, t0 + SOURCE_WINDOW), "a new window");
        assert_eq!(l.dropped, 1);
        // Many sources: the table stays bounded.
        for i in 0..(MAX_SOURCES as u32 * 3) {
            let _ = l.allow(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(l.seen.len() <= MAX_SOURCES);
    }

    #[test]
    fn roundtrip_and_rejects() {
        let id = NodeId([7u8; 32]);
        let b = encode(&id, 7300);
        assert_eq!(decode(&b), Some((id, 7300)));
        assert_eq!(decode(&b[..38]), None);
        let mut bad = b;
        bad[0] = b'X';
        assert_eq!(decode(&bad), None);
        let mut zero = b;
        zero[37] = 0;
        zero[38] = 0;
        assert_eq!(decode(&zero), None);
    }
}
