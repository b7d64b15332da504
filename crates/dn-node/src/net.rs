//! The network driver: one QUIC endpoint (quinn) for both directions, a dial manager with
//! backoff, one connection per peer pair, and two tasks per connection (a writer owning our
//! unidirectional stream, a reader decoding the peer's). It knows nothing of messages: frames
//! go to and come from the core.
//!
//! One connection per pair: when a second connection to the same peer is established within
//! two seconds of the first by the other side (both dialed at once), both sides keep the one
//! dialed by the lower node id and close the other. Outside that window the newer connection
//! replaces the older, which must be stale (the peer restarted before our idle timeout fired).
//! To make races rare, the higher id waits a moment before dialing a freshly discovered peer.
//!
//! The driver does not dial every peer discovery hears of: it checks discovery records against
//! its caps and passes them to the core ([`CoreMsg::Discovered`]), whose protocol keeps a
//! bounded active view and asks for the dials it wants (`dn_proto::protocol::view`). It dials
//! on its own, for ever with backoff, only what the user named: `--peer` addresses and relays
//! (reported as pinned, [`CoreMsg::Pinned`], so the view never closes them). A connection the
//! protocol asked for is not redialed by the driver when it ends; the protocol asks again.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dn_proto::codec::MAX_FRAME_BYTES;
use dn_proto::{Frame, NodeId};
use tokio::sync::mpsc::{channel, Receiver, Sender};
use tokio::time::Instant;
use tracing::{debug, info, warn, Instrument};

use crate::api::LinkHealth;
use crate::core::{CoreMsg, LinkSample, NetCmd};
use crate::diagnose::DialOutcome;
use crate::discovery::Discovered;
use crate::health::{self, PacketCounts};
use crate::queue::{out_queue, InCredit, OutPause, OutReceiver, DRAIN_REPORT_BYTES};
use crate::tls::{connection_peer_id, TlsIdentity, SERVER_NAME};

const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const DIAL_TIMEOUT: Duration = Duration::from_secs(6);
/// Two connections to one peer established within this window are a simultaneous-dial race.
const RACE_WINDOW: Duration = Duration::from_secs(2);
/// Application close codes.
const CLOSE_DUPLICATE: u32 = 1;
/// Closed for breaking the protocol.
pub const CLOSE_PROTOCOL: u32 = 2;
const CLOSE_SELF: u32 = 3;
const CLOSE_SHUTDOWN: u32 = 4;
/// Closed because the node is at its connection cap (or the source address at its own).
const CLOSE_BUSY: u32 = 5;
/// Closed because the peer did not read what it was sent (its queue went over budget).
pub const CLOSE_NOT_READING: u32 = 6;
/// Closed because our active view is over its limit (`dn_proto::Output::Disconnect`): not a
/// fault of the peer.
pub const CLOSE_VIEW: u32 = 8;

/// Connection caps of one node: [`MAX_CONNECTIONS`] and [`MAX_PER_ADDRESS`] on a laptop,
/// more on a relay (laptops of a whole site reach it from one NAT address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Live connections, at most.
    pub max_connections: usize,
    /// Live connections plus handshakes from one IP address, at most.
    pub max_per_address: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: MAX_CONNECTIONS,
            max_per_address: MAX_PER_ADDRESS,
        }
    }
}

impl Limits {
    /// A relay's caps: [`RELAY_MAX_CONNECTIONS`], [`RELAY_MAX_PER_ADDRESS`].
    pub fn relay() -> Self {
        Limits {
            max_connections: RELAY_MAX_CONNECTIONS,
            max_per_address: RELAY_MAX_PER_ADDRESS,
        }
    }
}

/// Live connections of a relay, at most.
pub const RELAY_MAX_CONNECTIONS: usize = 512;
/// Connections to a relay from one IP address (a site's NAT router), at most.
pub const RELAY_MAX_PER_ADDRESS: usize = 64;

/// Live connections, at most. Far above what one LAN node needs (it keeps one connection per
/// peer it talks to), low enough that queues and state per connection stay bounded in total.
pub const MAX_CONNECTIONS: usize = 64;
/// Live connections plus handshakes from one IP address, at most: a few nodes behind one NAT
/// are fine, one host opening hundreds is not.
pub const MAX_PER_ADDRESS: usize = 4;
/// Incoming handshakes in flight at once, at most (each costs a TLS handshake's CPU).
pub const MAX_HANDSHAKES: usize = 16;

/// What the driver refused or cut, by reason; shared with the core for the status.
#[derive(Debug, Default)]
pub struct NetCounters {
    /// Incoming attempts refused: the node had [`MAX_CONNECTIONS`] connections.
    pub refused_full: AtomicU64,
    /// Incoming attempts refused: the source address had [`MAX_PER_ADDRESS`].
    pub refused_per_address: AtomicU64,
    /// Incoming attempts refused: [`MAX_HANDSHAKES`] handshakes were in flight.
    pub refused_handshakes: AtomicU64,
    /// Frames that did not decode (the connection keeps serving).
    pub undecodable_frames: AtomicU64,
    /// Connections closed because the peer sent a frame over the size limit.
    pub oversized_frames: AtomicU64,
    /// Discovery records ignored: the source address announced too many ids, or the target
    /// table was full of verified peers.
    pub discovery_dropped: AtomicU64,
    /// Unverified dial targets evicted to make room, or expired.
    pub targets_evicted: AtomicU64,
    /// Beacon packets ignored: over their source address's rate.
    pub beacon_dropped: AtomicU64,
    /// Connections closed because the peer read nothing of what we queued for it for
    /// [`STALL_TIMEOUT`].
    pub stalled: AtomicU64,
    /// Catch-up (reconciliation) frame bytes received, length prefixes included.
    pub catch_up_bytes_in: AtomicU64,
    /// What the node observed of its network, for `doctor` ([`crate::diagnose`]).
    pub observed: crate::diagnose::Observer,
    /// What discovery knows, to pace itself ([`crate::pace`]).
    pub pace: crate::pace::Pace,
}

/// A peer whose queue stays over the pause mark this long (it reads nothing) is disconnected:
/// it would otherwise hold a connection slot and its queued bytes for ever.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);

impl NetCounters {
    /// Adds one to a counter.
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Where a dial target came from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Key {
    Id(NodeId),
    Addr(SocketAddr),
    /// A relay address as the user gave it (`host:port`), by a hash of the text: looked up
    /// again before every dial.
    Host(u64),
}

fn host_key(host: &str) -> Key {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    host.hash(&mut h);
    Key::Host(h.finish())
}

/// The IPv4 address behind an IPv4-mapped IPv6 one (`[::ffff:10.0.0.1]:7300`, how a
/// dual-stack socket sees IPv4 peers); other addresses unchanged.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

struct Target {
    id: Option<NodeId>,
    addrs: Vec<SocketAddr>,
    next: Instant,
    backoff: Duration,
    dialing: bool,
    attempts: u32,
    /// Kept forever (static, discovered and known peers); others give up after a few tries.
    persistent: bool,
    /// The address a connection to the expected id was made through: kept first, never pushed
    /// out of the list by addresses that discovery merely claims.
    verified: Option<SocketAddr>,
    /// Last time discovery (mDNS, beacon) mentioned it; `None` for targets not from discovery.
    heard: Option<Instant>,
    /// A relay's `host:port`, resolved again before each dial ([`Key::Host`]).
    host: Option<String>,
    /// Heard of by discovery only: passed to the core, never dialed by the driver itself.
    passive: bool,
    /// When it was last passed to the core ([`CoreMsg::Discovered`]).
    forwarded: Option<Instant>,
}

/// A discovery record of a target already passed to the core is passed again at most this
/// often (unless it brings a new address): the protocol's passive list learns the node is
/// still around, without a core message per beacon.
const FORWARD_AGAIN: Duration = Duration::from_secs(60);

/// Addresses remembered per dial target.
const MAX_ADDRS: usize = 8;
/// Dial targets remembered, at most. Discovery input is unauthenticated (anyone can send a
/// beacon or an mDNS record for any id and address): past this, targets never verified by a
/// connection are evicted oldest-heard first, and new ones are dropped if none can go.
pub const MAX_TARGETS: usize = 512;
/// Different unverified node ids one IP address may announce through discovery. An honest host
/// runs one node (a test host or a shared gateway a few).
pub const MAX_IDS_PER_ADDRESS: usize = 4;
/// A discovered target never verified and not heard of for this long is forgotten.
const DISCOVERED_TTL: Duration = Duration::from_secs(10 * 60);
/// Outgoing dials in flight at once, at most: forged discovery records must not turn the node
/// into a tool that dials thousands of addresses at once.
pub const MAX_DIALS_IN_FLIGHT: usize = 8;
/// Commands from the core (dials, closes) waiting for the driver. The core never waits for
/// the driver (which may be waiting for room in the core's inbox): past this it drops and
/// counts (`net_commands_dropped`); a dial is suggested again later, a close is also done by
/// the stall timeout.
pub const COMMAND_QUEUE: usize = 1024;
/// Events from the driver's own tasks (dials, handshakes, connections ending) waiting for it.
/// They are bounded by the caps (dials in flight, handshakes, connections); their senders wait
/// rather than drop, so none is lost.
const INTERNAL_QUEUE: usize = 256;
/// Peers heard of by mDNS or the beacon waiting for the driver. Discovery repeats itself, so
/// what does not fit is dropped (counted as `discovery_dropped` by the beacon).
pub const DISCOVERY_QUEUE: usize = 256;
/// The driver wakes at least this often with nothing to dial, to expire targets nobody
/// announced for [`DISCOVERED_TTL`].
const IDLE_WAKE: Duration = Duration::from_secs(30);
/// Dial attempts per address of a non-persistent target (a peer of a peer) before giving up.
const TRIES_PER_ADDR: u32 = 3;

struct Live {
    conn_id: u64,
    conn: quinn::Connection,
    dialer: NodeId,
    since: Instant,
    /// Packet counters at the last health sample (for the loss over the last interval).
    packets: PacketCounts,
}

impl Live {
    /// Reads quinn's statistics of the connection (one lock, a copy of a struct) into a
    /// [`LinkHealth`].
    fn sample(&mut self, now: Instant) -> LinkHealth {
        let stats = self.conn.stats();
        let packets = PacketCounts {
            sent: stats.path.sent_packets,
            lost: stats.path.lost_packets,
        };
        let loss_permille = health::loss_permille(self.packets, packets);
        self.packets = packets;
        let rtt_us = u32::try_from(stats.path.rtt.as_micros()).unwrap_or(u32::MAX);
        LinkHealth {
            rtt_us,
            loss_permille,
            bytes_in: stats.udp_rx.bytes,
            bytes_out: stats.udp_tx.bytes,
            sent_packets: packets.sent,
            lost_packets: packets.lost,
            age_s: now.saturating_duration_since(self.since).as_secs(),
            quality: health::link_quality(rtt_us, loss_permille),
        }
    }
}

enum Internal {
    Established {
        conn: quinn::Connection,
        dialer_is_me: bool,
        key: Option<Key>,
    },
    /// A relay's name resolved to these addresses (kept for the next dials and the status).
    Resolved {
        key: Key,
        addrs: Vec<SocketAddr>,
    },
    DialFailed {
        key: Key,
        error: String,
    },
    Closed {
        peer: NodeId,
        conn_id: u64,
    },
    /// An incoming handshake from this address ended (either way).
    HandshakeEnded(IpAddr),
}

/// Handle for the running driver.
pub struct Net {
    /// Local address the endpoint is bound to.
    pub listen: SocketAddr,
    endpoint: quinn::Endpoint,
    /// Refusals and cuts by reason.
    pub counters: Arc<NetCounters>,
    limits: Limits,
}

/// Binds a UDP socket; an IPv6 address is bound dual-stack (`IPV6_V6ONLY` off), so `[::]`
/// also receives IPv4 (seen as IPv4-mapped addresses, see [`canonical`]).
fn udp_socket(listen: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(
        Domain::for_address(listen),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    if listen.is_ipv6() {
        sock.set_only_v6(false)?;
    }
    sock.bind(&listen.into())?;
    Ok(sock.into())
}

fn endpoint_on(
    server: &quinn::ServerConfig,
    listen: SocketAddr,
) -> std::io::Result<quinn::Endpoint> {
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server.clone()),
        udp_socket(listen)?,
        Arc::new(quinn::TokioRuntime),
    )
}

impl Net {
    /// Binds the endpoint. If `listen`'s port is taken and `fallback` (it is the default
    /// port), a free port is used. `[::]` is bound dual-stack; where IPv6 is unavailable
    /// (no IPv6 in the kernel or the namespace), `0.0.0.0` on the same port instead.
    pub fn bind(
        tls: &TlsIdentity,
        listen: SocketAddr,
        fallback: bool,
        limits: Limits,
    ) -> std::io::Result<Net> {
        let server = tls.server_config().map_err(std::io::Error::other)?;
        let first = match endpoint_on(&server, listen) {
            Err(e)
                if listen.ip() == IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
                    && e.kind() != std::io::ErrorKind::AddrInUse =>
            {
                warn!(%listen, "IPv6 unavailable ({e}); listening on IPv4 only");
                let v4 = SocketAddr::from(([0, 0, 0, 0], listen.port()));
                endpoint_on(&server, v4).map(|e| (e, v4))
            }
            other => other.map(|e| (e, listen)),
        };
        let endpoint = match first {
            Ok((e, _)) => e,
            Err(e) if fallback && e.kind() == std::io::ErrorKind::AddrInUse => {
                warn!(%listen, "port in use; listening on a free port instead");
                endpoint_on(&server, SocketAddr::new(listen.ip(), 0))?
            }
            Err(e) => return Err(e),
        };
        let listen = endpoint.local_addr()?;
        Ok(Net {
            listen,
            endpoint,
            counters: Arc::default(),
            limits,
        })
    }

    /// Runs the driver until `cmds` closes or a shutdown arrives.
    pub fn spawn(
        self,
        me: NodeId,
        tls: Arc<TlsIdentity>,
        core: Sender<CoreMsg>,
        cmds: Receiver<NetCmd>,
        discovered: Receiver<Discovered>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let span = tracing::error_span!("net", me = %me.fingerprint());
        let (itx, irx) = channel(INTERNAL_QUEUE);
        let driver = Driver {
            me,
            tls,
            endpoint: self.endpoint,
            core,
            internal: itx,
            targets: HashMap::new(),
            live: HashMap::new(),
            handshakes: HashMap::new(),
            counters: self.counters,
            limits: self.limits,
            next_conn_id: 1,
            next_sample: Instant::now() + health::LINK_SAMPLE_EVERY,
            jitter: u64::from_le_bytes([
                me.0[0], me.0[1], me.0[2], me.0[3], me.0[4], me.0[5], me.0[6], me.0[7],
            ]),
        };
        tokio::spawn(driver.run(cmds, discovered, irx, shutdown).instrument(span))
    }
}

struct Driver {
    me: NodeId,
    tls: Arc<TlsIdentity>,
    endpoint: quinn::Endpoint,
    core: Sender<CoreMsg>,
    internal: Sender<Internal>,
    targets: HashMap<Key, Target>,
    live: HashMap<NodeId, Live>,
    /// Incoming handshakes in flight, per source address.
    handshakes: HashMap<IpAddr, usize>,
    counters: Arc<NetCounters>,
    limits: Limits,
    next_conn_id: u64,
    /// When the live connections' statistics are sampled next.
    next_sample: Instant,
    /// State of a small LCG for backoff jitter.
    jitter: u64,
}

impl Driver {
    async fn run(
        mut self,
        mut cmds: Receiver<NetCmd>,
        mut discovered: Receiver<Discovered>,
        mut internal: Receiver<Internal>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            // Asleep until an event or the next dial that is due: no polling.
            let wake = self.next_dial_at();
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                cmd = cmds.recv() => match cmd {
                    Some(cmd) => self.on_cmd(cmd),
                    None => break,
                },
                Some(ev) = internal.recv() => self.on_internal(ev).await,
                incoming = self.endpoint.accept() => match incoming {
                    Some(inc) => self.accept(inc),
                    None => break,
                },
                Some(d) = discovered.recv() => self.on_discovered(d),
                _ = tokio::time::sleep_until(self.next_sample), if !self.live.is_empty() => {
                    self.sample_links();
                }
                _ = tokio::time::sleep_until(wake) => self.dial_due(),
            }
        }
        self.endpoint
            .close(quinn::VarInt::from_u32(CLOSE_SHUTDOWN), b"shutdown");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
        debug!("network driver stopped");
    }

    /// Samples every live connection's statistics and hands them to the core, every
    /// [`health::LINK_SAMPLE_EVERY`] while any is live. A measurement, not an event: when
    /// the core's inbox is full the sample is dropped (the next one replaces it).
    fn sample_links(&mut self) {
        let now = Instant::now();
        self.next_sample = now + health::LINK_SAMPLE_EVERY;
        let samples = self
            .live
            .iter_mut()
            .map(|(peer, l)| LinkSample {
                peer: *peer,
                conn_id: l.conn_id,
                link: l.sample(now),
            })
            .collect();
        let _ = self.core.try_send(CoreMsg::Links { samples });
    }

    fn on_cmd(&mut self, cmd: NetCmd) {
        match cmd {
            NetCmd::Dial {
                addr,
                id,
                persistent,
            } => {
                let key = match id {
                    Some(id) if persistent => Key::Id(id),
                    _ => Key::Addr(addr),
                };
                if !self.targets.contains_key(&key) && !self.make_room() {
                    NetCounters::bump(&self.counters.discovery_dropped);
                    return;
                }
                let t = self.targets.entry(key).or_insert_with(|| Target {
                    id,
                    addrs: vec![],
                    next: Instant::now(),
                    backoff: MIN_BACKOFF,
                    dialing: false,
                    attempts: 0,
                    persistent,
                    verified: None,
                    heard: None,
                    host: None,
                    passive: false,
                    forwarded: None,
                });
                t.persistent |= persistent;
                t.passive = false;
                if !t.addrs.contains(&addr) {
                    let at = usize::from(t.verified.is_some());
                    t.addrs.insert(at.min(t.addrs.len()), addr);
                    t.addrs.truncate(MAX_ADDRS);
                }
                t.next = Instant::now();
                self.dial_due();
            }
            NetCmd::DialHost { host } => {
                let key = host_key(&host);
                // The user asked for it: it stays, evicting a merely discovered target if the
                // table is full (never refused).
                self.make_room();
                let t = self.targets.entry(key).or_insert_with(|| Target {
                    id: None,
                    addrs: vec![],
                    next: Instant::now(),
                    backoff: MIN_BACKOFF,
                    dialing: false,
                    attempts: 0,
                    persistent: true,
                    verified: None,
                    heard: None,
                    host: Some(host),
                    passive: false,
                    forwarded: None,
                });
                t.next = Instant::now();
                t.backoff = MIN_BACKOFF;
                self.dial_due();
            }
            NetCmd::ForgetHost { host } => {
                self.targets.remove(&host_key(&host));
            }
            NetCmd::Close {
                peer,
                conn_id,
                reason,
                code,
            } => {
                if let Some(l) = self.live.get(&peer).filter(|l| l.conn_id == conn_id) {
                    l.conn
                        .close(quinn::VarInt::from_u32(code), reason.as_bytes());
                }
            }
        }
    }

    /// Makes room for one more dial target: evicts the unverified, non-static target heard of
    /// longest ago. False if the table is full of targets that must stay.
    fn make_room(&mut self) -> bool {
        if self.targets.len() < MAX_TARGETS {
            return true;
        }
        let victim = self
            .targets
            .iter()
            .filter(|(_, t)| t.verified.is_none() && !t.dialing && t.heard.is_some())
            .min_by_key(|(_, t)| t.heard)
            .map(|(k, _)| *k);
        match victim {
            Some(k) => {
                self.targets.remove(&k);
                NetCounters::bump(&self.counters.targets_evicted);
                true
            }
            None => false,
        }
    }

    /// Unverified ids discovery attributed to `ip` (other than `id`).
    fn ids_claimed_by(&self, ip: IpAddr, id: &NodeId) -> usize {
        self.targets
            .values()
            .filter(|t| {
                t.heard.is_some()
                    && t.verified.is_none()
                    && t.id.as_ref() != Some(id)
                    && t.addrs.iter().any(|a| a.ip() == ip)
            })
            .count()
    }

    /// Forgets discovered targets never verified and not heard of for [`DISCOVERED_TTL`].
    fn expire_targets(&mut self) {
        let now = Instant::now();
        let before = self.targets.len();
        self.targets.retain(|_, t| {
            t.verified.is_some()
                || t.dialing
                || t.heard
                    .is_none_or(|h| now.saturating_duration_since(h) < DISCOVERED_TTL)
        });
        for _ in self.targets.len()..before {
            NetCounters::bump(&self.counters.targets_evicted);
        }
    }

    #[allow(clippy::needless_pass_by_value)] // the record is consumed from its channel
    fn on_discovered(&mut self, d: Discovered) {
        if d.id == self.me || d.addrs.is_empty() {
            return;
        }
        let key = Key::Id(d.id);
        if !self.targets.contains_key(&key) {
            // Unauthenticated input: one source may not fill the table with made-up ids.
            let flooding = d
                .addrs
                .iter()
                .any(|a| self.ids_claimed_by(a.ip(), &d.id) >= MAX_IDS_PER_ADDRESS);
            if flooding || !self.make_room() {
                NetCounters::bump(&self.counters.discovery_dropped);
                debug!(id = %d.id.fingerprint(), "discovery record ignored (caps)");
                return;
            }
        }
        let delay = if self.me < d.id {
            Duration::ZERO
        } else {
            Duration::from_millis(1500)
        };
        let t = self.targets.entry(key).or_insert_with(|| Target {
            id: Some(d.id),
            addrs: vec![],
            next: Instant::now() + delay,
            backoff: MIN_BACKOFF,
            dialing: false,
            attempts: 0,
            persistent: true,
            verified: None,
            heard: None,
            host: None,
            passive: true,
            forwarded: None,
        });
        t.persistent = true;
        t.heard = Some(Instant::now());
        // The verified address first, then fresh addresses (at most MAX_ADDRS kept). Only a new
        // address is worth an immediate retry: mDNS and beacons repeat themselves, and an
        // unreachable peer must not be redialed every time it is heard.
        let fresh = d.addrs.iter().any(|a| !t.addrs.contains(a));
        let mut addrs: Vec<SocketAddr> = t.verified.into_iter().collect();
        for a in d.addrs.iter().chain(t.addrs.iter()) {
            if !addrs.contains(a) {
                addrs.push(*a);
            }
        }
        addrs.truncate(MAX_ADDRS);
        t.addrs = addrs;
        if fresh && !t.dialing && t.next > Instant::now() + delay {
            t.next = Instant::now() + delay;
            t.backoff = MIN_BACKOFF;
        }
        let again = t.forwarded.is_none_or(|f| f.elapsed() >= FORWARD_AGAIN);
        if fresh || again {
            let msg = CoreMsg::Discovered {
                id: d.id,
                addrs: t.addrs.clone(),
            };
            // Discovery repeats itself: a record the busy core cannot take now comes again.
            if self.core.try_send(msg).is_ok() {
                t.forwarded = Some(Instant::now());
            }
        }
    }

    fn connected_to(&self, t: &Target) -> bool {
        match t.id {
            Some(id) => self.live.contains_key(&id),
            None => self
                .live
                .values()
                .any(|l| t.addrs.contains(&canonical(l.conn.remote_address()))),
        }
    }

    /// A target has something to dial: addresses, or a relay name to look up.
    fn dialable(t: &Target) -> bool {
        !t.addrs.is_empty() || t.host.is_some()
    }

    /// When [`Driver::dial_due`] next has work: the earliest retry of a target that could be
    /// dialed now (none while [`MAX_DIALS_IN_FLIGHT`] are in flight: a finished dial wakes the
    /// loop), and at least every [`IDLE_WAKE`] to expire unheard targets.
    fn next_dial_at(&self) -> Instant {
        let idle = Instant::now() + IDLE_WAKE;
        let in_flight = self.targets.values().filter(|t| t.dialing).count();
        if in_flight >= MAX_DIALS_IN_FLIGHT {
            return idle;
        }
        self.targets
            .values()
            .filter(|t| !t.passive && !t.dialing && Self::dialable(t) && !self.connected_to(t))
            .map(|t| t.next)
            .min()
            .map_or(idle, |next| next.min(idle))
    }

    fn dial_due(&mut self) {
        self.expire_targets();
        let now = Instant::now();
        let in_flight = self.targets.values().filter(|t| t.dialing).count();
        let mut due: Vec<(Instant, Key)> = self
            .targets
            .iter()
            .filter(|(_, t)| {
                !t.passive
                    && !t.dialing
                    && t.next <= now
                    && Self::dialable(t)
                    && !self.connected_to(t)
            })
            .map(|(k, t)| (t.next, *k))
            .collect();
        // Longest-waiting first, and never more than MAX_DIALS_IN_FLIGHT at once.
        due.sort_by_key(|(next, _)| *next);
        due.truncate(MAX_DIALS_IN_FLIGHT.saturating_sub(in_flight));
        for (_, key) in due {
            let Some(t) = self.targets.get_mut(&key) else {
                continue;
            };
            let attempt = t.attempts as usize;
            t.attempts = t.attempts.wrapping_add(1);
            t.dialing = true;
            // A relay is whoever answers at its address (a reinstalled relay has a new key);
            // other targets are pinned to the id they were first verified as.
            let expected = if t.host.is_some() { None } else { t.id };
            let cfg = match self.tls.client_config(expected) {
                Ok(c) => c,
                Err(e) => {
                    t.dialing = false;
                    warn!("client config: {e}");
                    continue;
                }
            };
            let itx = self.internal.clone();
            let endpoint = self.endpoint.clone();
            let dialed = Dialed {
                counters: self.counters.clone(),
                tls: self.tls.clone(),
                me: self.me,
                key,
            };
            if let Some(host) = t.host.clone() {
                let v6 = self.endpoint.local_addr().is_ok_and(|a| a.is_ipv6());
                tokio::spawn(async move {
                    let ev = match resolve_host(&host, v6).await {
                        Ok(addrs) => {
                            let addr = addrs[attempt % addrs.len()];
                            let _ = itx
                                .send(Internal::Resolved {
                                    key,
                                    addrs: addrs.clone(),
                                })
                                .await;
                            debug!(%host, %addr, "dialing relay");
                            let res = connect(&endpoint, cfg, addr).await;
                            dialed.ended(addr, &format!("{host} ({addr})"), res)
                        }
                        Err(error) => Internal::DialFailed {
                            key,
                            error: format!("{host}: {error}"),
                        },
                    };
                    let _ = itx.send(ev).await;
                });
                continue;
            }
            let addr = t.addrs[attempt % t.addrs.len()];
            debug!(%addr, "dialing");
            tokio::spawn(async move {
                let res = connect(&endpoint, cfg, addr).await;
                let ev = dialed.ended(addr, &addr.to_string(), res);
                let _ = itx.send(ev).await;
            });
        }
    }

    /// Live connections and handshakes in flight from `ip`.
    fn count_from_address(&self, ip: IpAddr) -> usize {
        let live = self
            .live
            .values()
            .filter(|l| canonical(l.conn.remote_address()).ip() == ip)
            .count();
        live + self.handshakes.get(&ip).copied().unwrap_or(0)
    }

    fn accept(&mut self, inc: quinn::Incoming) {
        let ip = canonical(inc.remote_address()).ip();
        let in_flight: usize = self.handshakes.values().sum();
        let refused = if self.live.len() >= self.limits.max_connections {
            Some(&self.counters.refused_full)
        } else if in_flight >= MAX_HANDSHAKES {
            Some(&self.counters.refused_handshakes)
        } else if self.count_from_address(ip) >= self.limits.max_per_address {
            Some(&self.counters.refused_per_address)
        } else {
            None
        };
        if let Some(counter) = refused {
            NetCounters::bump(counter);
            debug!(%ip, "incoming connection refused (connection caps)");
            inc.refuse();
            return;
        }
        self.counters.observed.incoming();
        *self.handshakes.entry(ip).or_default() += 1;
        let itx = self.internal.clone();
        tokio::spawn(async move {
            let res = tokio::time::timeout(DIAL_TIMEOUT, async { inc.accept()?.await }).await;
            let _ = itx.send(Internal::HandshakeEnded(ip)).await;
            match res {
                Ok(Ok(conn)) => {
                    let _ = itx
                        .send(Internal::Established {
                            conn,
                            dialer_is_me: false,
                            key: None,
                        })
                        .await;
                }
                Ok(Err(e)) => debug!("incoming handshake failed: {e}"),
                Err(_) => debug!("incoming handshake timed out"),
            }
        });
    }

    /// Its messages to the core wait for room in the core's bounded inbox (backpressure: the
    /// driver does nothing else meanwhile), so no connection event is ever dropped.
    async fn on_internal(&mut self, ev: Internal) {
        match ev {
            Internal::DialFailed { key, error } => {
                // Jitter keeps nodes that lost each other at once from redialing in lockstep.
                self.jitter = self
                    .jitter
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                let jitter = Duration::from_millis((self.jitter >> 33) % 250);
                if let Some(t) = self.targets.get_mut(&key) {
                    t.dialing = false;
                    if !t.persistent && t.attempts >= TRIES_PER_ADDR * t.addrs.len() as u32 {
                        debug!(%error, "giving up on a suggested peer");
                        self.targets.remove(&key);
                        return;
                    }
                    t.next = Instant::now() + t.backoff + jitter;
                    t.backoff = (t.backoff * 2).min(MAX_BACKOFF);
                    debug!(%error, retry_in = ?t.backoff, "dial failed");
                }
            }
            Internal::Established {
                conn,
                dialer_is_me,
                key,
            } => self.established(conn, dialer_is_me, key).await,
            Internal::Resolved { key, addrs } => {
                if let Some(t) = self.targets.get_mut(&key) {
                    t.addrs = addrs;
                    t.addrs.truncate(MAX_ADDRS);
                }
            }
            Internal::HandshakeEnded(ip) => {
                if let Some(n) = self.handshakes.get_mut(&ip) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.handshakes.remove(&ip);
                    }
                }
            }
            Internal::Closed { peer, conn_id } => {
                if self.live.get(&peer).is_some_and(|l| l.conn_id == conn_id) {
                    self.live.remove(&peer);
                    self.counters.pace.set_connected(self.live.len());
                    let _ = self
                        .core
                        .send(CoreMsg::Disconnected { peer, conn_id })
                        .await;
                    // A dial the protocol asked for is its to repeat (its view may not want the
                    // peer back); a peer the user named is tried again soon: it may only have
                    // dropped off briefly.
                    self.targets
                        .retain(|_, t| t.persistent || t.dialing || t.id != Some(peer));
                    for t in self.targets.values_mut() {
                        if t.id == Some(peer) {
                            t.backoff = MIN_BACKOFF;
                            t.next = Instant::now() + MIN_BACKOFF;
                        }
                    }
                }
            }
        }
    }

    async fn established(&mut self, conn: quinn::Connection, dialer_is_me: bool, key: Option<Key>) {
        if let Some(k) = key {
            if let Some(t) = self.targets.get_mut(&k) {
                t.dialing = false;
                t.backoff = MIN_BACKOFF;
            }
        }
        let Some(peer) = connection_peer_id(&conn) else {
            conn.close(quinn::VarInt::from_u32(CLOSE_PROTOCOL), b"no identity");
            return;
        };
        if peer == self.me {
            // We reached ourselves (e.g. an address of our own); never dial it again.
            conn.close(quinn::VarInt::from_u32(CLOSE_SELF), b"self");
            if let Some(k) = key {
                self.targets.remove(&k);
            }
            return;
        }
        let mut relay = None;
        let mut pinned = false;
        if let Some(t) = key.and_then(|k| self.targets.get_mut(&k)) {
            pinned = t.persistent && !t.passive;
            if t.id.is_none() || t.host.is_some() {
                t.id = Some(peer);
            }
            relay.clone_from(&t.host);
            if t.id == Some(peer) && t.host.is_none() {
                // This address really reaches that node: keep it first from now on.
                let addr = canonical(conn.remote_address());
                t.verified = Some(addr);
                t.addrs.retain(|a| *a != addr);
                t.addrs.insert(0, addr);
                t.addrs.truncate(MAX_ADDRS);
            }
        }
        if !dialer_is_me {
            self.counters.observed.incoming_ok();
        }
        // Told before the duplicate tie-break below: if this connection loses it, the one
        // kept reaches the same node, which is then known as the relay all the same.
        if let Some(host) = relay {
            let _ = self.core.send(CoreMsg::RelayConnected { peer, host }).await;
        }
        if pinned {
            let _ = self.core.send(CoreMsg::Pinned { peer }).await;
        }
        let dialer = if dialer_is_me { self.me } else { peer };
        if !self.live.contains_key(&peer) && self.live.len() >= self.limits.max_connections {
            // Incoming attempts were refused before the handshake; this is one of our own
            // dials (or an accept that raced the cap).
            NetCounters::bump(&self.counters.refused_full);
            debug!(peer = %peer.fingerprint(), "connection closed: at the connection cap");
            conn.close(quinn::VarInt::from_u32(CLOSE_BUSY), b"busy");
            return;
        }
        if let Some(old) = self.live.get(&peer) {
            // Two connections to one peer. If both were dialed at about the same time by
            // different sides, both nodes keep the one dialed by the lower id. Otherwise the
            // new one wins: a peer only dials when it has no live connection to us, so the old
            // one is stale (e.g. the peer was killed and restarted before our idle timeout).
            let race = old.dialer != dialer && old.since.elapsed() < RACE_WINDOW;
            let keep_new = !race || dialer == self.me.min(peer);
            if !keep_new {
                debug!(peer = %peer.fingerprint(), "duplicate connection closed (tie-break)");
                conn.close(quinn::VarInt::from_u32(CLOSE_DUPLICATE), b"duplicate");
                return;
            }
            let old_id = old.conn_id;
            old.conn
                .close(quinn::VarInt::from_u32(CLOSE_DUPLICATE), b"duplicate");
            self.live.remove(&peer);
            let _ = self
                .core
                .send(CoreMsg::Disconnected {
                    peer,
                    conn_id: old_id,
                })
                .await;
        }
        let conn_id = self.next_conn_id;
        self.next_conn_id += 1;
        let addr = canonical(conn.remote_address());
        let (ftx, frx, pause) = out_queue();
        let now = Instant::now();
        let mut live = Live {
            conn_id,
            conn: conn.clone(),
            dialer,
            since: now,
            packets: PacketCounts::default(),
        };
        // The handshake measured the RTT already: the link's health is known from the start.
        let first = live.sample(now);
        self.live.insert(peer, live);
        self.counters.pace.set_connected(self.live.len());
        let _ = self
            .core
            .send(CoreMsg::Connected {
                peer,
                conn_id,
                addr,
                tx: ftx,
            })
            .await;
        let _ = self.core.try_send(CoreMsg::Links {
            samples: vec![LinkSample {
                peer,
                conn_id,
                link: first,
            }],
        });
        let span = tracing::error_span!("conn", peer = %peer.fingerprint(), %addr, id = conn_id);
        tokio::spawn(
            writer(conn.clone(), frx, peer, conn_id, self.core.clone()).instrument(span.clone()),
        );
        tokio::spawn(
            reader(Reader {
                conn,
                peer,
                conn_id,
                core: self.core.clone(),
                internal: self.internal.clone(),
                pause,
                credit: InCredit::default(),
                counters: self.counters.clone(),
            })
            .instrument(span),
        );
        info!(peer = %peer.fingerprint(), %addr, outgoing = dialer_is_me, "connection up");
    }
}

/// Dials `addr` and waits for the handshake (at most [`DIAL_TIMEOUT`]).
async fn connect(
    endpoint: &quinn::Endpoint,
    cfg: quinn::ClientConfig,
    addr: SocketAddr,
) -> Result<quinn::Connection, (DialOutcome, String)> {
    let connecting = endpoint
        .connect_with(cfg, addr, SERVER_NAME)
        .map_err(|e| (DialOutcome::Refused, e.to_string()))?;
    match tokio::time::timeout(DIAL_TIMEOUT, connecting).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err((DialOutcome::of_error(&e), e.to_string())),
        Err(_) => Err((DialOutcome::Timeout, "handshake timed out".to_string())),
    }
}

/// What a dial task needs to report how its dial ended.
struct Dialed {
    counters: Arc<NetCounters>,
    tls: Arc<TlsIdentity>,
    me: NodeId,
    key: Key,
}

impl Dialed {
    /// Records the outcome for the diagnosis (starting a probe from another port when it asks
    /// for one) and turns it into the driver's event; `label` names the dial in errors.
    fn ended(
        self,
        addr: SocketAddr,
        label: &str,
        res: Result<quinn::Connection, (DialOutcome, String)>,
    ) -> Internal {
        let outcome = res.as_ref().map_or_else(|e| e.0, |_| DialOutcome::Ok);
        if self.counters.observed.dial_ended(addr, outcome) {
            tokio::spawn(crate::diagnose::probe(
                self.counters,
                self.tls,
                self.me,
                addr,
            ));
        }
        match res {
            Ok(conn) => Internal::Established {
                conn,
                dialer_is_me: true,
                key: Some(self.key),
            },
            Err((_, error)) => Internal::DialFailed {
                key: self.key,
                error: format!("{label}: {error}"),
            },
        }
    }
}

/// The addresses to dial for a relay's `host:port` (looked up now: a DNS name may have moved
/// since the last dial): IPv4 first, then IPv6 when the endpoint can send it (`v6`).
async fn resolve_host(host: &str, v6: bool) -> Result<Vec<SocketAddr>, String> {
    let mut addrs = match crate::addr::parse_socket_addr(host) {
        Ok(a) => vec![a],
        Err(_) => crate::resolve_addr(host)
            .await
            .map_err(|e| e.message.clone())?,
    };
    addrs.retain(|a| v6 || a.is_ipv4());
    addrs.sort_by_key(SocketAddr::is_ipv6);
    addrs.dedup();
    if addrs.is_empty() {
        return Err("no address this node can dial (IPv6 only, and it listens on IPv4)".into());
    }
    Ok(addrs)
}

/// Writes the connection's queued frames to our stream, in order, and reports what it wrote
/// to the core (at least every [`DRAIN_REPORT_BYTES`] and whenever the queue runs empty).
async fn writer(
    conn: quinn::Connection,
    mut frames: OutReceiver,
    peer: NodeId,
    conn_id: u64,
    core: Sender<CoreMsg>,
) {
    let mut stream = match conn.open_uni().await {
        Ok(s) => s,
        Err(e) => {
            debug!("open stream: {e}");
            return;
        }
    };
    let mut unreported = 0usize;
    while let Some(bytes) = frames.recv().await {
        if let Err(e) = stream.write_all(&bytes).await {
            debug!("write: {e}");
            return;
        }
        frames.written(bytes.len());
        unreported += bytes.len();
        if unreported >= DRAIN_REPORT_BYTES || frames.is_empty() {
            let msg = CoreMsg::Drained {
                peer,
                conn_id,
                bytes: std::mem::take(&mut unreported),
            };
            if core.send(msg).await.is_err() {
                return;
            }
        }
    }
    let _ = stream.finish();
}

/// What a connection's reader needs.
struct Reader {
    conn: quinn::Connection,
    peer: NodeId,
    conn_id: u64,
    core: Sender<CoreMsg>,
    internal: Sender<Internal>,
    /// Set while the peer does not read what we queued for it.
    pause: OutPause,
    /// This connection's share of the core's queue.
    credit: InCredit,
    counters: Arc<NetCounters>,
}

/// Reads the peer's stream frame by frame and hands each to the core. Stops reading (so QUIC
/// flow control stops the peer) while the peer does not read its own replies or while the core
/// still holds [`crate::queue::IN_BUDGET_BYTES`] of this connection's frames.
async fn reader(r: Reader) {
    let Reader {
        conn,
        peer,
        conn_id,
        core,
        internal,
        pause,
        credit,
        counters,
    } = r;
    let result: Result<(), String> = async {
        let mut stream = conn.accept_uni().await.map_err(|e| e.to_string())?;
        let mut len = [0u8; 4];
        let mut buf = Vec::new();
        loop {
            if pause.paused() {
                debug!("peer is not reading its replies: pausing its requests");
                if tokio::time::timeout(STALL_TIMEOUT, pause.wait_until_drained())
                    .await
                    .is_err()
                {
                    NetCounters::bump(&counters.stalled);
                    conn.close(quinn::VarInt::from_u32(CLOSE_NOT_READING), b"not reading");
                    return Err(format!("peer read nothing for {STALL_TIMEOUT:?}; closed"));
                }
            }
            match stream.read_exact(&mut len).await {
                Ok(()) => {}
                Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(()),
                Err(e) => return Err(e.to_string()),
            }
            let n = u32::from_be_bytes(len) as usize;
            if n == 0 || n > MAX_FRAME_BYTES {
                NetCounters::bump(&counters.oversized_frames);
                conn.close(quinn::VarInt::from_u32(CLOSE_PROTOCOL), b"frame size");
                return Err(format!(
                    "frame of {n} bytes is over the limit; connection closed"
                ));
            }
            buf.resize(n, 0);
            stream
                .read_exact(&mut buf)
                .await
                .map_err(|e| e.to_string())?;
            let Some(permit) = credit.take(n).await else {
                return Ok(());
            };
            let msg = match Frame::decode(&buf) {
                Ok(frame) => {
                    if matches!(frame, Frame::Recon { .. } | Frame::ReconDone { .. }) {
                        counters
                            .catch_up_bytes_in
                            .fetch_add(n as u64 + 4, Ordering::Relaxed);
                    }
                    CoreMsg::Frame {
                        peer,
                        conn_id,
                        frame,
                        permit,
                    }
                }
                Err(e) => {
                    NetCounters::bump(&counters.undecodable_frames);
                    CoreMsg::BadFrame {
                        peer,
                        reason: e.to_string(),
                    }
                }
            };
            if core.send(msg).await.is_err() {
                return Ok(());
            }
        }
    }
    .await;
    if let Err(e) = result {
        debug!("connection ended: {e}");
    }
    let reason = conn.closed().await;
    debug!(%reason, "closed");
    let _ = internal.send(Internal::Closed { peer, conn_id }).await;
}

#[cfg(test)]
mod tests;
