//! "Why can't I see anyone?": what the running node observed of its network, and a pure
//! diagnosis of it.
//!
//! The network driver, mDNS and the beacon record cheap facts in an [`Observer`] (bounded:
//! at most [`MAX_HEARD`] peers heard and [`MAX_DIALED`] dialed addresses): which peers were
//! heard by mDNS or beacon, each dial's address and how it ended, incoming handshakes, and
//! test dials from another local port (a *probe*, see below). [`Observer::snapshot`] turns
//! them into [`Observations`] (ages in seconds, no clock inside), and [`diagnose`] — no I/O,
//! table-tested — derives the [`Finding`]s:
//!
//! - `no_network`: no address besides loopback.
//! - `port_fallback`: the default port was taken; the node listens on another one.
//! - `client_isolation`: peers heard by mDNS or beacon, but every dial to them timed out, also
//!   the probe from another port, and nobody reached us: the Wi-Fi forwards multicast and
//!   broadcast but not traffic between laptops.
//! - `port_blocked`: dials from our QUIC port time out while the probe from another port to
//!   the same peer succeeds, and nobody reached us: this host drops incoming UDP to our port.
//! - `peers_unreachable`: dials time out and no probe has answered yet (or peers given by
//!   address do not answer).
//! - `multicast_blocked`: connected to peers on our own subnet, yet none heard by mDNS (nor
//!   beacon): discovery is degraded, `--peer`/relays still work.
//! - `alone`: nothing heard, nothing dialed, nobody connected.
//! - `mdns_down`, `beacon_down`: a discovery service could not start.
//! - `healthy`: connected, and none of the above.
//!
//! The probe: when a dial to a peer heard by discovery times out, the driver dials the same
//! address once more from a fresh endpoint on an ephemeral port (at most one probe per address
//! per [`PROBE_EVERY`], [`MAX_PROBES_IN_FLIGHT`] at once). The probe expects the wrong id, so
//! it ends at the peer's certificate and never becomes a connection ([`probe`]).
//! A host firewall that drops incoming UDP to our port lets that answer through; Wi-Fi client
//! isolation drops it like every other packet between laptops.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dn_proto::NodeId;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Peers heard by discovery remembered, at most (oldest heard forgotten first).
pub const MAX_HEARD: usize = 32;
/// A peer heard by beacon (every 2–20 s, [`crate::pace::beacon_period`]) and silent for this
/// long is gone: it no longer counts as heard. A peer heard by mDNS only counts until mDNS
/// reports it removed (goodbye or expiry, while it browses).
pub const BEACON_GONE: Duration = Duration::from_secs(60);
/// Dialed addresses remembered, at most (oldest dialed forgotten first).
pub const MAX_DIALED: usize = 32;
/// One probe per address at most this often.
pub const PROBE_EVERY: Duration = Duration::from_secs(60);
/// Probes in flight at once, at most.
pub const MAX_PROBES_IN_FLIGHT: usize = 2;
/// How long a probe waits for the handshake.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Before this long after start, silence is not yet evidence (mDNS takes about a second, a
/// timed-out dial six).
pub const SETTLE_SECS: u64 = 5;
/// Connected to LAN peers for this long with nothing heard by discovery: multicast is dropped.
pub const DISCOVERY_SILENCE_SECS: u64 = 10;

/// How a dial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum DialOutcome {
    /// Connected.
    Ok,
    /// No answer within the handshake timeout (packets dropped somewhere).
    Timeout,
    /// Refused at once (ICMP unreachable, no route, bad address).
    Refused,
    /// The peer answered but TLS failed (another node than expected, or not a DisasterNet).
    Tls,
    /// The peer is at its connection cap.
    Busy,
    /// Closed by the peer for another reason.
    Closed,
}

impl DialOutcome {
    /// Classifies a quinn connection error.
    pub fn of_error(e: &quinn::ConnectionError) -> DialOutcome {
        use quinn::ConnectionError as E;
        // TLS alerts travel as QUIC "crypto" transport codes 0x100..0x200.
        let crypto = |c: quinn::TransportErrorCode| (0x100..0x200).contains(&u64::from(c));
        match e {
            E::TimedOut => DialOutcome::Timeout,
            E::TransportError(t) if crypto(t.code) => DialOutcome::Tls,
            E::ConnectionClosed(c) if crypto(c.error_code) => DialOutcome::Tls,
            // Refused before the handshake: the peer is at its connection caps.
            E::ConnectionClosed(c)
                if c.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED =>
            {
                DialOutcome::Busy
            }
            E::ApplicationClosed(c) if c.error_code == quinn::VarInt::from_u32(CLOSE_BUSY) => {
                DialOutcome::Busy
            }
            E::TransportError(_) | E::VersionMismatch => DialOutcome::Refused,
            _ => DialOutcome::Closed,
        }
    }
}

/// The application close code of a peer at its connection cap (`net::CLOSE_BUSY`).
const CLOSE_BUSY: u32 = 5;

/// How a peer was heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Via {
    /// An mDNS announcement (multicast).
    Mdns,
    /// A UDP broadcast beacon.
    Beacon,
}

/// A network interface address of this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct InterfaceObs {
    /// Interface name (`wlan0`).
    pub name: String,
    /// Address.
    pub addr: String,
    /// Prefix length of its subnet.
    pub prefix: u8,
    /// A loopback address.
    pub loopback: bool,
}

/// A peer heard by discovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct HeardObs {
    /// Its fingerprint.
    pub fingerprint: String,
    /// Its addresses as announced (at most 4).
    pub addrs: Vec<String>,
    /// Heard by mDNS (announcements counted).
    #[ts(type = "number")]
    pub mdns: u64,
    /// Heard by beacon (beacons counted).
    #[ts(type = "number")]
    pub beacon: u64,
    /// Seconds since last heard.
    #[ts(type = "number")]
    pub ago_s: u64,
}

/// Dials to one address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DialObs {
    /// The address dialed.
    pub addr: String,
    /// A peer heard by mDNS or beacon announced it.
    pub heard: bool,
    /// Dials ended so far.
    pub tries: u32,
    /// Of which connected.
    pub ok: u32,
    /// Of which timed out.
    pub timeouts: u32,
    /// How the last one ended.
    pub last: DialOutcome,
    /// Seconds since the last one ended.
    #[ts(type = "number")]
    pub ago_s: u64,
    /// How the last probe from another local port ended, if one was made (`ok`: the peer
    /// answered it).
    pub probe: Option<DialOutcome>,
}

/// A connected peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ConnectedObs {
    /// Its fingerprint.
    pub fingerprint: String,
    /// The address of the connection.
    pub addr: String,
}

/// What the node observed of its network (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Observations {
    /// Seconds since the node started.
    #[ts(type = "number")]
    pub uptime_s: u64,
    /// This host's interface addresses.
    pub interfaces: Vec<InterfaceObs>,
    /// Where the QUIC endpoint listens.
    pub listen: String,
    /// The port asked for (`listen` differs when it was taken).
    pub requested_port: u16,
    /// mDNS is on.
    pub mdns_on: bool,
    /// mDNS is on and its daemon started.
    pub mdns_up: bool,
    /// The broadcast beacon is on.
    pub beacon_on: bool,
    /// The beacon is on and its socket bound.
    pub beacon_up: bool,
    /// mDNS announcements of other nodes heard.
    #[ts(type = "number")]
    pub mdns_heard: u64,
    /// Beacons of other nodes heard.
    #[ts(type = "number")]
    pub beacons_heard: u64,
    /// Seconds since the last mDNS announcement, if any.
    #[ts(type = "number | null")]
    pub mdns_last_ago_s: Option<u64>,
    /// Seconds since the last beacon, if any.
    #[ts(type = "number | null")]
    pub beacon_last_ago_s: Option<u64>,
    /// Peers heard by discovery, most recent first.
    pub heard: Vec<HeardObs>,
    /// Dials by address, most recent first.
    pub dials: Vec<DialObs>,
    /// Incoming handshakes seen on our port.
    #[ts(type = "number")]
    pub incoming: u64,
    /// Of which became connections.
    #[ts(type = "number")]
    pub incoming_ok: u64,
    /// Connected peers now.
    pub connected: Vec<ConnectedObs>,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Severity {
    /// Nothing wrong.
    Info,
    /// Works, but not fully.
    Warning,
    /// Nobody can be reached this way.
    Error,
}

/// What a finding says (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum FindingCode {
    /// Connected and nothing wrong seen.
    Healthy,
    /// Just started: nothing to say yet.
    Starting,
    /// No address besides loopback.
    NoNetwork,
    /// The default port was taken.
    PortFallback,
    /// The Wi-Fi isolates clients.
    ClientIsolation,
    /// A host firewall drops our port.
    PortBlocked,
    /// Dials time out (cause not yet known).
    PeersUnreachable,
    /// Multicast (and broadcast) dropped.
    MulticastBlocked,
    /// Nothing heard, nobody to dial.
    Alone,
    /// The mDNS daemon did not start.
    MdnsDown,
    /// The beacon socket did not bind.
    BeaconDown,
}

/// One conclusion, with what it rests on and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Finding {
    /// What it is.
    pub code: FindingCode,
    /// How bad.
    pub severity: Severity,
    /// What was observed, in a sentence.
    pub summary: String,
    /// What to do.
    pub advice: String,
}

/// The answer of `Diagnose`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DiagnosisView {
    /// A node runs (otherwise nothing was observed).
    pub running: bool,
    /// What was observed.
    pub observations: Option<Observations>,
    /// Conclusions, worst first.
    pub findings: Vec<Finding>,
}

impl DiagnosisView {
    /// The worst severity among the findings.
    pub fn worst(&self) -> Severity {
        self.findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Info)
    }
}

#[derive(Default)]
struct Heard {
    fingerprint: String,
    addrs: Vec<SocketAddr>,
    mdns: u64,
    beacon: u64,
    last: Option<Instant>,
}

struct Dialed {
    tries: u32,
    ok: u32,
    timeouts: u32,
    last: DialOutcome,
    at: Instant,
    probe: Option<DialOutcome>,
    probed_at: Option<Instant>,
}

#[derive(Default)]
struct State {
    listen: Option<SocketAddr>,
    requested_port: u16,
    mdns_on: bool,
    mdns_up: bool,
    beacon_on: bool,
    beacon_up: bool,
    mdns_heard: u64,
    beacons_heard: u64,
    mdns_last: Option<Instant>,
    beacon_last: Option<Instant>,
    heard: HashMap<NodeId, Heard>,
    dialed: HashMap<SocketAddr, Dialed>,
    probes_in_flight: usize,
    incoming: u64,
    incoming_ok: u64,
}

/// The running node's observations (cheap to update: one short lock per event).
pub struct Observer {
    started: Instant,
    state: Mutex<State>,
}

impl Default for Observer {
    fn default() -> Self {
        Observer {
            started: Instant::now(),
            state: Mutex::default(),
        }
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer").finish_non_exhaustive()
    }
}

impl Observer {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> Option<R> {
        self.state.lock().ok().map(|mut s| f(&mut s))
    }

    /// The QUIC endpoint is bound at `listen`; `requested_port` was asked for.
    pub fn bound(&self, listen: SocketAddr, requested_port: u16) {
        self.with(|s| {
            s.listen = Some(listen);
            s.requested_port = requested_port;
        });
    }

    /// Whether mDNS is on and whether its daemon started.
    pub fn mdns(&self, on: bool, up: bool) {
        self.with(|s| (s.mdns_on, s.mdns_up) = (on, up));
    }

    /// Whether the beacon is on and whether its socket bound.
    pub fn beacon(&self, on: bool, up: bool) {
        self.with(|s| (s.beacon_on, s.beacon_up) = (on, up));
    }

    /// Another node was heard by discovery, announcing `addrs`.
    pub fn heard(&self, via: Via, id: NodeId, addrs: &[SocketAddr]) {
        let now = Instant::now();
        self.with(|s| {
            match via {
                Via::Mdns => (s.mdns_heard, s.mdns_last) = (s.mdns_heard + 1, Some(now)),
                Via::Beacon => (s.beacons_heard, s.beacon_last) = (s.beacons_heard + 1, Some(now)),
            }
            if !s.heard.contains_key(&id) && s.heard.len() >= MAX_HEARD {
                if let Some(old) = s.heard.iter().min_by_key(|(_, h)| h.last).map(|(k, _)| *k) {
                    s.heard.remove(&old);
                }
            }
            let h = s.heard.entry(id).or_default();
            h.fingerprint = id.fingerprint();
            match via {
                Via::Mdns => h.mdns += 1,
                Via::Beacon => h.beacon += 1,
            }
            h.last = Some(now);
            for a in addrs {
                if !h.addrs.contains(a) {
                    h.addrs.insert(0, *a);
                }
            }
            h.addrs.truncate(4);
        });
    }

    /// mDNS reports the instance `dn-<hex16>` removed (goodbye or expiry): that peer is no
    /// longer heard.
    pub fn gone(&self, hex16: &str) {
        self.with(|s| s.heard.retain(|id, _| !id.to_hex().starts_with(hex16)));
    }

    /// A dial to `addr` ended. True when a probe from another port should follow (a timeout
    /// to a peer heard by discovery, not probed lately, a probe slot free); the caller then
    /// runs [`probe`].
    pub fn dial_ended(&self, addr: SocketAddr, outcome: DialOutcome) -> bool {
        let now = Instant::now();
        self.with(|s| {
            if !s.dialed.contains_key(&addr) && s.dialed.len() >= MAX_DIALED {
                if let Some(old) = s.dialed.iter().min_by_key(|(_, d)| d.at).map(|(k, _)| *k) {
                    s.dialed.remove(&old);
                }
            }
            let heard = s.heard.values().any(|h| h.addrs.contains(&addr));
            let d = s.dialed.entry(addr).or_insert(Dialed {
                tries: 0,
                ok: 0,
                timeouts: 0,
                last: outcome,
                at: now,
                probe: None,
                probed_at: None,
            });
            d.tries += 1;
            d.ok += u32::from(outcome == DialOutcome::Ok);
            d.timeouts += u32::from(outcome == DialOutcome::Timeout);
            d.last = outcome;
            d.at = now;
            let due = d
                .probed_at
                .is_none_or(|t| now.saturating_duration_since(t) >= PROBE_EVERY);
            let probe = outcome == DialOutcome::Timeout
                && heard
                && due
                && s.probes_in_flight < MAX_PROBES_IN_FLIGHT;
            if probe {
                d.probed_at = Some(now);
                s.probes_in_flight += 1;
            }
            probe
        })
        .unwrap_or(false)
    }

    fn probe_ended(&self, addr: SocketAddr, outcome: DialOutcome) {
        self.with(|s| {
            s.probes_in_flight = s.probes_in_flight.saturating_sub(1);
            if let Some(d) = s.dialed.get_mut(&addr) {
                d.probe = Some(outcome);
            }
        });
    }

    /// An incoming handshake began on our port.
    pub fn incoming(&self) {
        self.with(|s| s.incoming += 1);
    }

    /// An incoming handshake became a connection.
    pub fn incoming_ok(&self) {
        self.with(|s| s.incoming_ok += 1);
    }

    /// What was observed until now, with `interfaces` and `connected` given by the caller.
    pub fn snapshot(
        &self,
        interfaces: Vec<InterfaceObs>,
        connected: Vec<ConnectedObs>,
    ) -> Observations {
        let now = Instant::now();
        let ago = |t: Instant| now.saturating_duration_since(t).as_secs();
        let mut o = Observations {
            uptime_s: ago(self.started),
            interfaces,
            listen: String::new(),
            requested_port: 0,
            mdns_on: false,
            mdns_up: false,
            beacon_on: false,
            beacon_up: false,
            mdns_heard: 0,
            beacons_heard: 0,
            mdns_last_ago_s: None,
            beacon_last_ago_s: None,
            heard: vec![],
            dials: vec![],
            incoming: 0,
            incoming_ok: 0,
            connected,
        };
        self.with(|s| {
            o.listen = s.listen.map(|a| a.to_string()).unwrap_or_default();
            o.requested_port = s.requested_port;
            (o.mdns_on, o.mdns_up, o.beacon_on, o.beacon_up) =
                (s.mdns_on, s.mdns_up, s.beacon_on, s.beacon_up);
            (o.mdns_heard, o.beacons_heard) = (s.mdns_heard, s.beacons_heard);
            o.mdns_last_ago_s = s.mdns_last.map(ago);
            o.beacon_last_ago_s = s.beacon_last.map(ago);
            // Peers that left: heard by beacon once, silent past BEACON_GONE.
            s.heard.retain(|_, h| {
                h.beacon == 0 || h.last.is_none_or(|t| now.duration_since(t) < BEACON_GONE)
            });
            let mut heard: Vec<&Heard> = s.heard.values().collect();
            heard.sort_by_key(|h| std::cmp::Reverse(h.last));
            o.heard = heard
                .into_iter()
                .map(|h| HeardObs {
                    fingerprint: h.fingerprint.clone(),
                    addrs: h.addrs.iter().map(ToString::to_string).collect(),
                    mdns: h.mdns,
                    beacon: h.beacon,
                    ago_s: h.last.map_or(0, ago),
                })
                .collect();
            let mut dials: Vec<(&SocketAddr, &Dialed)> = s.dialed.iter().collect();
            dials.sort_by_key(|(_, d)| std::cmp::Reverse(d.at));
            o.dials = dials
                .into_iter()
                .map(|(a, d)| DialObs {
                    addr: a.to_string(),
                    heard: s.heard.values().any(|h| h.addrs.contains(a)),
                    tries: d.tries,
                    ok: d.ok,
                    timeouts: d.timeouts,
                    last: d.last,
                    ago_s: ago(d.at),
                    probe: d.probe,
                })
                .collect();
            (o.incoming, o.incoming_ok) = (s.incoming, s.incoming_ok);
        });
        o
    }
}

/// Dials `addr` once from a fresh endpoint on an ephemeral port (see the module docs) and
/// records whether the peer answered. The probe expects its own id (`me`) from the peer, so
/// it aborts its side of the handshake as soon as the peer's certificate arrives: the peer
/// never gets a connection (nothing it holds is replaced or disturbed), and the failed check
/// proves that the peer's packets reached our ephemeral port. Started when
/// [`Observer::dial_ended`] says so.
pub async fn probe(
    counters: std::sync::Arc<crate::net::NetCounters>,
    tls: std::sync::Arc<crate::tls::TlsIdentity>,
    me: NodeId,
    addr: SocketAddr,
) {
    let unspecified: IpAddr = match addr {
        SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    let outcome = match (
        tls.client_config(Some(me)),
        quinn::Endpoint::client(SocketAddr::new(unspecified, 0)),
    ) {
        (Ok(cfg), Ok(ep)) => {
            let outcome = match ep.connect_with(cfg, addr, crate::tls::SERVER_NAME) {
                Err(_) => DialOutcome::Refused,
                Ok(c) => match tokio::time::timeout(PROBE_TIMEOUT, c).await {
                    // Cannot happen (the peer is not us); closed at once all the same.
                    Ok(Ok(conn)) => {
                        conn.close(quinn::VarInt::from_u32(PROBE_CLOSE), b"probe");
                        DialOutcome::Ok
                    }
                    Ok(Err(e)) => match DialOutcome::of_error(&e) {
                        // Any answer from the peer means its packets reach this host.
                        DialOutcome::Tls | DialOutcome::Busy | DialOutcome::Closed => {
                            DialOutcome::Ok
                        }
                        other => other,
                    },
                    Err(_) => DialOutcome::Timeout,
                },
            };
            let _ = tokio::time::timeout(Duration::from_millis(500), ep.wait_idle()).await;
            outcome
        }
        _ => DialOutcome::Refused,
    };
    tracing::debug!(%addr, ?outcome, "probe from another local port");
    counters.observed.probe_ended(addr, outcome);
}

/// The application close code of a probe connection (one never completes: see [`probe`]).
pub const PROBE_CLOSE: u32 = 7;

/// This host's interface addresses (I/O: reads the OS's list).
pub fn interfaces() -> Vec<InterfaceObs> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| {
            let prefix = match &i.addr {
                if_addrs::IfAddr::V4(a) => a.prefixlen,
                if_addrs::IfAddr::V6(a) => a.prefixlen,
            };
            InterfaceObs {
                loopback: i.is_loopback(),
                addr: i.ip().to_string(),
                name: i.name,
                prefix,
            }
        })
        .collect()
}

fn same_subnet(a: IpAddr, b: IpAddr, prefix: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

fn plural(n: usize, one: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        _ if one.ends_with('s') => format!("{n} {one}es"),
        _ => format!("{n} {one}s"),
    }
}

/// Advice to reach peers when this network carries nothing between laptops.
const RELAY_ADVICE: &str = "Add a relay address (see docs/relay.md), or connect every laptop to \
one phone's hotspot or a travel router you control; if you run this Wi-Fi, turn off client \
(AP) isolation.";

/// What the observations mean, worst first (pure: no I/O, no clock).
pub fn diagnose(o: &Observations) -> Vec<Finding> {
    let mut f = vec![];
    let port = o
        .listen
        .parse::<SocketAddr>()
        .map_or(o.requested_port, |a| a.port());
    let lan: Vec<&InterfaceObs> = o.interfaces.iter().filter(|i| !i.loopback).collect();
    if lan.is_empty() {
        f.push(Finding {
            code: FindingCode::NoNetwork,
            severity: Severity::Error,
            summary: "This computer has no network address besides loopback.".into(),
            advice: "Join a Wi-Fi network, plug in a cable, or turn on a phone's hotspot and \
                     join it."
                .into(),
        });
    }
    if o.requested_port != 0 && port != o.requested_port {
        f.push(Finding {
            code: FindingCode::PortFallback,
            severity: Severity::Warning,
            summary: format!(
                "Port {} was taken (another DisasterNet running?); listening on {port} instead.",
                o.requested_port
            ),
            advice: format!(
                "Discovery still finds this node, but peers that dial :{} (--peer, relays) do \
                 not: stop the other program on port {} and restart, or give them :{port}.",
                o.requested_port, o.requested_port
            ),
        });
    }
    if o.mdns_on && !o.mdns_up {
        f.push(Finding {
            code: FindingCode::MdnsDown,
            severity: Severity::Warning,
            summary: "mDNS discovery could not start on this computer.".into(),
            advice: "Peers on this network can still be reached with --peer HOST:PORT or a \
                     relay (see docs/relay.md)."
                .into(),
        });
    }
    if o.beacon_on && !o.beacon_up {
        f.push(Finding {
            code: FindingCode::BeaconDown,
            severity: Severity::Warning,
            summary: "The broadcast beacon could not bind UDP port 7301.".into(),
            advice: "Another program holds port 7301; discovery relies on mDNS alone.".into(),
        });
    }
    let heard_peers = o.heard.len();
    let by_mdns = o.heard.iter().filter(|h| h.mdns > 0).count();
    let by_beacon = o.heard.iter().filter(|h| h.beacon > 0).count();
    let heard_how = match (by_mdns, by_beacon) {
        (0, 0) => "no peers by mDNS or beacon".to_string(),
        (0, _) => format!("{} by beacon", plural(by_beacon, "peer")),
        (_, 0) => format!("{} by mDNS", plural(by_mdns, "peer")),
        (m, b) if m == heard_peers && b == heard_peers => {
            format!("{} by mDNS and beacon", plural(heard_peers, "peer"))
        }
        _ => format!(
            "{} ({by_mdns} by mDNS, {by_beacon} by beacon)",
            plural(heard_peers, "peer")
        ),
    };
    // Dials to addresses that discovery announced and that never connected.
    let failing: Vec<&DialObs> = o.dials.iter().filter(|d| d.heard && d.ok == 0).collect();
    let timeouts: u32 = failing.iter().map(|d| d.timeouts).sum();
    let all_timed_out = !failing.is_empty() && failing.iter().all(|d| d.timeouts == d.tries);
    let probes_ok = failing
        .iter()
        .filter(|d| d.probe == Some(DialOutcome::Ok))
        .count();
    let probes_lost = failing
        .iter()
        .filter(|d| d.probe == Some(DialOutcome::Timeout))
        .count();
    let nobody_reached_us = o.incoming == 0;
    let cut_off = o.connected.is_empty() && nobody_reached_us && heard_peers > 0;
    if cut_off && probes_ok > 0 {
        f.push(Finding {
            code: FindingCode::PortBlocked,
            severity: Severity::Error,
            summary: format!(
                "Heard {heard_how}; {} from port {port} timed out, yet {} answered a test dial \
                 from another port, and no peer reached this node: this computer drops \
                 incoming UDP to port {port}.",
                plural(timeouts as usize, "dial"),
                plural(probes_ok, "peer"),
            ),
            advice: format!(
                "Allow UDP port {port} in this computer's firewall: Linux `sudo ufw allow \
                 {port}/udp` (or nftables: `sudo nft add rule inet filter input udp dport {port} \
                 accept`); Windows (admin prompt): `netsh advfirewall firewall add rule \
                 name=DisasterNet dir=in action=allow protocol=UDP localport={port}`; macOS: \
                 allow DisasterNet in System Settings → Network → Firewall."
            ),
        });
    } else if cut_off && all_timed_out && probes_lost > 0 {
        f.push(Finding {
            code: FindingCode::ClientIsolation,
            severity: Severity::Error,
            summary: format!(
                "Heard {heard_how}, but all {} to them timed out (a test dial from another \
                 port too) and no peer reached this node: this Wi-Fi passes announcements but \
                 not traffic between laptops (client isolation).",
                plural(timeouts as usize, "dial"),
            ),
            advice: RELAY_ADVICE.into(),
        });
    } else if !failing.is_empty() && timeouts > 0 {
        let detail = if o.connected.is_empty() {
            "still checking whether this Wi-Fi or this computer's firewall blocks them"
        } else {
            "other peers are connected, so these may be firewalled or gone"
        };
        f.push(Finding {
            code: FindingCode::PeersUnreachable,
            severity: if o.connected.is_empty() {
                Severity::Error
            } else {
                Severity::Warning
            },
            summary: format!(
                "Heard {heard_how}; {} to {} timed out ({detail}).",
                plural(timeouts as usize, "dial"),
                plural(failing.len(), "address")
            ),
            advice: format!(
                "Check the firewall of both computers for UDP port {port}; if nothing helps, {}",
                RELAY_ADVICE.to_lowercase()
            ),
        });
    } else if o.connected.is_empty() {
        let given_failing: Vec<&DialObs> =
            o.dials.iter().filter(|d| !d.heard && d.ok == 0).collect();
        if !given_failing.is_empty() {
            let tries: u32 = given_failing.iter().map(|d| d.tries).sum();
            f.push(Finding {
                code: FindingCode::PeersUnreachable,
                severity: Severity::Error,
                summary: format!(
                    "Nothing heard by discovery; {} to addresses given or remembered ({}) \
                     failed, last: {}.",
                    plural(tries as usize, "dial"),
                    given_failing
                        .iter()
                        .take(3)
                        .map(|d| d.addr.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    match given_failing[0].last {
                        DialOutcome::Timeout => "no answer",
                        DialOutcome::Refused => "refused",
                        DialOutcome::Tls => "a different node answered",
                        DialOutcome::Busy => "the peer is full",
                        DialOutcome::Closed | DialOutcome::Ok => "closed",
                    }
                ),
                advice: format!("Check those addresses and ports; {}", RELAY_ADVICE),
            });
        } else if heard_peers == 0
            && o.incoming == 0
            && o.uptime_s >= SETTLE_SECS
            && !lan.is_empty()
        {
            let listening = match (o.mdns_up, o.beacon_up) {
                (true, true) => "mDNS and beacon",
                (true, false) => "mDNS",
                (false, true) => "beacon",
                (false, false) => "no discovery",
            };
            f.push(Finding {
                code: FindingCode::Alone,
                severity: Severity::Warning,
                summary: format!(
                    "Nothing heard for {} s ({listening}), nothing dialed, no peer reached \
                     this node: no other DisasterNet seems to be on this network, or it drops \
                     multicast and broadcast.",
                    o.uptime_s
                ),
                advice: format!(
                    "Start DisasterNet on another laptop on this network, or add a peer by \
                     address (--peer HOST:{port}) or a relay (see docs/relay.md); a phone's \
                     hotspot joins laptops that cannot see each other."
                ),
            });
        }
    }
    // Connected to peers on our own subnet that discovery never mentioned.
    let on_lan = o
        .connected
        .iter()
        .filter_map(|c| c.addr.parse::<SocketAddr>().ok())
        .filter(|a| {
            lan.iter().any(|i| {
                i.addr
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| same_subnet(ip, a.ip(), i.prefix))
            })
        })
        .count();
    // `mdns_heard` counts every announcement since the start: a node whose view is full stops
    // browsing (crate::pace), and its mDNS-heard peers may then age out of `heard`.
    if o.mdns_up
        && by_mdns == 0
        && o.mdns_heard == 0
        && on_lan > 0
        && o.uptime_s >= DISCOVERY_SILENCE_SECS
    {
        let beacon = if by_beacon > 0 {
            format!("; {} heard by beacon", plural(by_beacon, "peer"))
        } else if o.beacon_up {
            ", nor by beacon".to_string()
        } else {
            String::new()
        };
        f.push(Finding {
            code: FindingCode::MulticastBlocked,
            severity: if by_beacon > 0 {
                Severity::Info
            } else {
                Severity::Warning
            },
            summary: format!(
                "Connected to {} on this subnet, but none heard by mDNS in {} s{beacon}: this \
                 network drops multicast{} (or those peers run without mDNS).",
                plural(on_lan, "peer"),
                o.uptime_s,
                if by_beacon > 0 { "" } else { " and broadcast" }
            ),
            advice: "Peers given by address and those they know still connect: give new \
                     laptops one address (--peer HOST:PORT, or Add peer in the app) or a relay \
                     (see docs/relay.md)."
                .into(),
        });
    }
    if f.iter().all(|x| x.severity == Severity::Info) {
        if !o.connected.is_empty() {
            f.push(Finding {
                code: FindingCode::Healthy,
                severity: Severity::Info,
                summary: format!(
                    "Connected to {}; heard {heard_how}.",
                    plural(o.connected.len(), "peer")
                ),
                advice: "Nothing to do.".into(),
            });
        } else if f.is_empty() {
            f.push(Finding {
                code: FindingCode::Starting,
                severity: Severity::Info,
                summary: format!(
                    "Started {} s ago; heard {heard_how}; no connection yet.",
                    o.uptime_s
                ),
                advice: "Wait a few seconds and ask again.".into(),
            });
        }
    }
    f.sort_by_key(|x| std::cmp::Reverse(x.severity));
    f
}

#[cfg(test)]
mod tests;
