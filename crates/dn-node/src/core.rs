//! The core: one thread that owns the store's write connection and the protocol state. Every
//! request (from the app, the control socket or an offline CLI) and every network event goes
//! through its channel, so there is exactly one writer and no locking.
//!
//! This file is the driver: the loop (asleep until the next message or the protocol's next
//! deadline, `poll_timeout`), group commit, feeding the protocol and carrying out its outputs
//! (including signing our neighbour list when the protocol asks). By job, the rest is in:
//! - `requests.rs`: the answer to each [`Request`] (one `match`);
//! - `views.rs`: what the core shows (identity, rooms, peers, status, the network view as a
//!   pure function);
//! - `direct.rs`: sealing and opening direct messages;
//! - `files.rs`: exports on their own thread and the data-dir file checks;
//! - `bundle.rs`: writing bundles (on their own thread) and importing them a chunk per turn
//!   of the loop, each message through the protocol's admission ([`Input::Imported`]);
//! - `atrest.rs`: turning the passphrase on, changing and removing it (re-encrypting the
//!   store it owns), and locked backups;
//! - `tests.rs`: unit tests without threads.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use dn_proto::dm;
use dn_proto::message::normalize_name;
use dn_proto::protocol::Counters;
use dn_proto::topo::{Neighbour, TopoRecord};
use dn_proto::{Frame, Input, Message, MessageId, NodeId, Output, Protocol, Time};
use dn_store::{Store, StoredMessage};
use ed25519_dalek::SigningKey;
use serde_json::Value;
use tokio::sync::{broadcast, oneshot};
use tracing::{debug, info, warn};

use crate::api::*;
use crate::export;
use crate::identity;
use crate::queue::{InPermit, OutQueue, SendError};

/// Setting key of the display name.
const NAME_KEY: &str = "display_name";
/// Largest page of messages one request returns.
pub const MAX_PAGE: u32 = 1000;
/// File name of the message store in the data directory.
pub const STORE_FILE: &str = "store.sqlite3";

/// Milliseconds since the Unix epoch (the one wall clock, `dn_store::system_clock_ms`).
pub use dn_store::system_clock_ms as now_ms;

/// Where a peer accepts connections: the address its connection came from with the port its
/// Hello gave. `None` for port 0 (it accepts none) and for IPv6 (neighbour lists carry IPv4).
pub(crate) fn dial_addr(remote: SocketAddr, listen_port: u16) -> Option<std::net::SocketAddrV4> {
    match remote.ip() {
        std::net::IpAddr::V4(ip) if listen_port != 0 => {
            Some(std::net::SocketAddrV4::new(ip, listen_port))
        }
        _ => None,
    }
}

/// Where a peer accepts connections, for the peer list (redialled at the next start): like
/// [`dial_addr`], and IPv6 too (with its scope: a link-local address is only good on the
/// interface it came from).
pub(crate) fn peer_addr(remote: SocketAddr, listen_port: u16) -> Option<SocketAddr> {
    if listen_port == 0 {
        return None;
    }
    let mut a = crate::net::canonical(remote);
    a.set_port(listen_port);
    Some(a)
}

/// Requests (and shutdown) that may wait in the core's inbox: far more than the requests
/// one app and a few CLI calls have in flight; their senders wait when it is full.
pub const REQUEST_QUEUE: usize = 256;
/// Network messages (connections, frames, drains) that may wait in the core's inbox. Frames
/// are also bounded per connection in bytes (`queue::InCredit`); when the inbox is full, the
/// connections' readers and the driver wait (they stop reading), so nothing is dropped.
pub const NETWORK_QUEUE: usize = 1024;

/// The core's inbox: two bounded channels, requests and network messages, read with requests
/// first (a biased select), each in its own order.
pub struct Inbox {
    requests: tokio::sync::mpsc::Receiver<CoreMsg>,
    network: tokio::sync::mpsc::Receiver<CoreMsg>,
}

/// What waiting on the [`Inbox`] gave (short-lived: the size of a message is fine).
#[allow(clippy::large_enum_variant)]
enum Wait {
    Msg(CoreMsg),
    Timeout,
    /// Every request sender is gone (the engine was dropped).
    Closed,
}

/// A new inbox and its two senders: `(requests, network, inbox)`.
pub fn inbox() -> (
    tokio::sync::mpsc::Sender<CoreMsg>,
    tokio::sync::mpsc::Sender<CoreMsg>,
    Inbox,
) {
    let (rtx, requests) = tokio::sync::mpsc::channel(REQUEST_QUEUE);
    let (ntx, network) = tokio::sync::mpsc::channel(NETWORK_QUEUE);
    (rtx, ntx, Inbox { requests, network })
}

impl Inbox {
    /// A message already waiting (requests first).
    fn try_recv(&mut self) -> Option<CoreMsg> {
        self.requests
            .try_recv()
            .ok()
            .or_else(|| self.network.try_recv().ok())
    }

    /// Waits up to `wait` for the next message, requests first.
    fn wait(&mut self, rt: &tokio::runtime::Runtime, wait: Duration) -> Wait {
        rt.block_on(async {
            tokio::select! {
                biased;
                m = self.requests.recv() => m.map_or(Wait::Closed, Wait::Msg),
                Some(m) = self.network.recv() => Wait::Msg(m),
                () = tokio::time::sleep(wait) => Wait::Timeout,
            }
        })
    }
}

/// Reply channel of a request.
pub type Reply = oneshot::Sender<Result<Value, ApiError>>;

/// What the core thread receives.
pub enum CoreMsg {
    /// A user/API request.
    Request(Request, Reply),
    /// The network driver established a connection (tie-break already applied).
    Connected {
        /// Authenticated peer id.
        peer: NodeId,
        /// Connection serial number.
        conn_id: u64,
        /// Remote address.
        addr: SocketAddr,
        /// Frames to send on this connection (encoded), with its byte budget.
        tx: OutQueue,
    },
    /// The connection's writer wrote `bytes` of our frames to the network.
    Drained {
        /// Peer.
        peer: NodeId,
        /// Connection serial number.
        conn_id: u64,
        /// Bytes written since the last report.
        bytes: usize,
    },
    /// A connection ended.
    Disconnected {
        /// Peer.
        peer: NodeId,
        /// Connection serial number.
        conn_id: u64,
    },
    /// A frame arrived.
    Frame {
        /// Peer.
        peer: NodeId,
        /// Connection serial number.
        conn_id: u64,
        /// The frame.
        frame: Frame,
        /// The connection's credit for this frame in the core's queue; returned when the
        /// frame has been handled (dropped with this message).
        permit: InPermit,
    },
    /// The connection to `peer` about to be reported was dialled at a relay address
    /// ([`NetCmd::DialHost`]).
    RelayConnected {
        /// The node that answered.
        peer: NodeId,
        /// The relay address.
        host: String,
    },
    /// Statistics of live connections, sampled by the driver ([`crate::health`]).
    Links {
        /// One per connection sampled.
        samples: Vec<LinkSample>,
    },
    /// Discovery (mDNS, the beacon, a peer met before) heard of `id` at `addrs`, within the
    /// driver's caps: it joins the protocol's passive list (`Input::Discovered`).
    Discovered {
        /// The node heard of.
        id: NodeId,
        /// Where it said it listens.
        addrs: Vec<SocketAddr>,
    },
    /// The connection to `peer` about to be reported was dialled because the user named it
    /// (`--peer`, `add-peer`, a relay): the protocol's view never closes it.
    Pinned {
        /// The node that answered.
        peer: NodeId,
    },
    /// A frame could not be decoded.
    BadFrame {
        /// Peer.
        peer: NodeId,
        /// Why.
        reason: String,
    },
    /// Stop the thread.
    Shutdown,
}

/// Commands from the core to the network driver.
#[derive(Debug)]
pub enum NetCmd {
    /// Dial an address (id unknown or known).
    Dial {
        /// Where.
        addr: SocketAddr,
        /// Expected id, if known.
        id: Option<NodeId>,
        /// Keep redialing it whenever it is not connected.
        persistent: bool,
    },
    /// Keep dialling a relay's `host:port`, looked up again before each dial.
    DialHost {
        /// As the user gave it.
        host: String,
    },
    /// Stop dialling a relay address.
    ForgetHost {
        /// As given to [`NetCmd::DialHost`].
        host: String,
    },
    /// Close a connection.
    Close {
        /// Peer.
        peer: NodeId,
        /// Connection serial number.
        conn_id: u64,
        /// Reason for logs.
        reason: String,
        /// QUIC application close code.
        code: u32,
    },
}

/// One connection's health at a sample.
#[derive(Debug, Clone)]
pub struct LinkSample {
    /// Peer.
    pub peer: NodeId,
    /// Connection serial number.
    pub conn_id: u64,
    /// What quinn's statistics say.
    pub link: LinkHealth,
}

/// Facts about the running network, for status.
#[derive(Clone)]
pub struct NetInfo {
    /// Where the QUIC endpoint listens.
    pub listen: SocketAddr,
    /// The driver's refusals and cuts, by reason.
    pub counters: std::sync::Arc<crate::net::NetCounters>,
    /// mDNS on.
    pub mdns: bool,
    /// Commands to the driver.
    pub cmd: tokio::sync::mpsc::Sender<NetCmd>,
    /// Storage allowed for carried rooms, bytes.
    pub carry_quota_bytes: u64,
    /// The mDNS announcer, to update the name it carries.
    pub announcer: Option<std::sync::Arc<crate::discovery::Mdns>>,
    /// The node runs inside a program with a window (the desktop app).
    pub window: bool,
    /// The node is a relay (`NodeConfig::relay`).
    pub relay: bool,
    /// The bounded view's target and limit (`NodeConfig::active_view`).
    pub active_view: Option<(usize, usize)>,
}

struct Conn {
    conn_id: u64,
    addr: SocketAddr,
    /// The port the peer accepts connections on (from its hello).
    listen_port: Option<u16>,
    tx: OutQueue,
    /// Asked the driver to close it (over budget): counted once, sent nothing more.
    closing: bool,
    /// Its last health sample.
    link: Option<LinkHealth>,
}

/// A side effect held back while a burst's store transaction is open: it happens only once the
/// transaction committed, so nothing is acknowledged, relayed or shown before it is durable.
enum Pending {
    Send { peer: NodeId, frame: Frame },
    Event(EngineEvent),
}

impl Pending {
    /// Whether this effect reports or passes on a message stored in the burst (dropped when the
    /// burst's commit fails: those messages are not stored after all).
    fn about_stored_messages(&self) -> bool {
        match self {
            Pending::Send { frame, .. } => matches!(frame, Frame::Msg { .. } | Frame::IHave { .. }),
            Pending::Event(ev) => matches!(
                ev,
                EngineEvent::Message { .. } | EngineEvent::Dm { .. } | EngineEvent::Delivery { .. }
            ),
        }
    }
}

/// Most queued messages handled in one go before timers and housekeeping run.
const BURST: usize = 512;
/// Network messages per group transaction, at most. Requests (the user, the control socket)
/// are taken before each group, so one waits behind at most this many frames (≈ 10–20 ms of
/// verification and storage under a flood) instead of a whole burst; a commit costs ≈ 0.2 ms.
const GROUP: usize = 64;
/// Nodes in the network view (the map, `network`, `status`), nearest first: this node, its
/// connections, then by hops. A hub has a hundred laptops; the topology caps allow 1,024
/// records, mostly made up in a flood.
const MAX_VIEW_NODES: usize = 256;
/// Links in the network view, nearest first: a hub of a hundred laptops with ten links each
/// has 500; sybils listing each other can make 15 k between the shown nodes.
const MAX_VIEW_LINKS: usize = 1_024;
/// Status and network events are sent at most this often (debounced).
const STATUS_DEBOUNCE: Duration = Duration::from_millis(500);

/// The core state. Built by [`Core::open`], then run by [`Core::run`] on its own thread.
pub struct Core {
    data_dir: PathBuf,
    key: SigningKey,
    id: NodeId,
    store: Store,
    proto: Protocol,
    events: broadcast::Sender<EngineEvent>,
    net: Option<NetInfo>,
    conns: HashMap<NodeId, Conn>,
    last_received_at: Option<u64>,
    last_sync_at: Option<u64>,
    status_dirty: bool,
    /// Origin of the protocol's millisecond clock.
    started: Instant,
    /// Sequence number of our last signed neighbour list.
    topo_seq: u64,
    network_dirty: bool,
    /// Other nodes the network graph reached when last logged ([`Core::note_map_size`]).
    map_reachable: usize,
    /// The graph changed since [`Core::note_map_size`] last ran: it runs once per burst of
    /// frames, not per neighbour list (hundreds arrive at once, each a BFS otherwise).
    map_dirty: bool,
    last_status: Instant,
    /// Link health or counters may have changed since the last health event.
    health_dirty: bool,
    /// When the last health event went out, and what it said (byte counts and ages left out).
    last_health: Option<(Instant, health::HealthKey)>,
    /// Catch-up (reconciliation) frame bytes queued to peers.
    catch_up_bytes_out: u64,
    /// Effects of the burst whose store transaction is open (`None`: no transaction open).
    pending: Option<Vec<Pending>>,
    /// Drops and failures the core itself counts (the protocol and the driver count theirs).
    drops: CoreDrops,
    /// Private rooms this node is a member of, by id (`p.` + 32 hex), with their keys.
    private: HashMap<String, private::PrivRoom>,
    /// What each private room's messages say (membership, names, unreadable count), built on
    /// first use and kept up to date.
    room_states: std::cell::RefCell<HashMap<String, private::RoomState>>,
    /// The at-rest keys while the data directory is locked with a passphrase.
    lock: Option<crate::atrest::LockKeys>,
    /// Export threads running (each reads the store through its own connection).
    exports: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The store was lost (a failed switch of its encryption could not reopen it): the core
    /// stops rather than acknowledge messages it cannot keep.
    store_lost: bool,
    /// The bundle being imported, a chunk per turn of the loop (`bundle.rs`).
    import: Option<bundle::ImportJob>,
    /// Progress of the bundles being written or imported, by path (`Request::BundleProgress`).
    bundles: bundle::Progress,
    /// Relay addresses to keep dialling, with the node last met at each (`relays.rs`).
    relays: Vec<relays::Relay>,
}

/// What the core dropped or cut, by reason.
#[derive(Debug, Default, Clone, Copy)]
pub struct CoreDrops {
    /// Connections closed because the peer did not read: its queue went over budget.
    pub not_reading: u64,
    /// Bursts whose store transaction failed to commit (their messages count as not stored).
    pub failed_commits: u64,
    /// Frames a peer sent that could not be decoded.
    pub undecodable: u64,
    /// Commands to the network driver dropped because its bounded queue was full (the core
    /// never waits for the driver, which may be waiting for the core).
    pub net_commands: u64,
    /// Private-room key grants ignored: for a room this node is not a member of, or from a
    /// node that is not an admin of it.
    pub grants_ignored: u64,
}

fn store_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::Storage, e.to_string())
}

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::InvalidInput, e.to_string())
}

impl Core {
    /// Opens the store in `data_dir` for the node whose identity key is `key` (loaded once by
    /// the engine, which also needs it for TLS).
    pub fn open(
        data_dir: &Path,
        key: SigningKey,
        events: broadcast::Sender<EngineEvent>,
        net: Option<NetInfo>,
    ) -> Result<Core, ApiError> {
        Self::open_locked(data_dir, key, None, events, net)
    }

    /// [`Core::open`] for a data directory unlocked by [`crate::atrest::unlock`]: with `lock`,
    /// the store is opened with its SQLCipher key.
    pub fn open_locked(
        data_dir: &Path,
        key: SigningKey,
        lock: Option<crate::atrest::LockKeys>,
        events: broadcast::Sender<EngineEvent>,
        net: Option<NetInfo>,
    ) -> Result<Core, ApiError> {
        let id = identity::node_id(&key);
        let store = Store::open_with_key(
            &data_dir.join(STORE_FILE),
            lock.as_ref().map(|l| &l.store_key),
        )
        .map_err(crate::atrest::store_open_error)?;
        let name = store
            .get_setting(NAME_KEY)
            .map_err(store_err)?
            .unwrap_or_default();
        let rooms = store.joined_rooms().map_err(store_err)?;
        let private = Self::load_private(&store)?;
        let relays = relays::load(&store)?;
        // Kept across restarts: the last catch-up with any peer, from `sync_state`.
        let last_sync_at = store.last_sync_at().map_err(store_err)?;
        let port = net.as_ref().map_or(0, |n| n.listen.port());
        let mut config = dn_proto::Config {
            carry_quota_bytes: net
                .as_ref()
                .map_or(dn_proto::protocol::DEFAULT_CARRY_QUOTA_BYTES, |n| {
                    n.carry_quota_bytes
                }),
            ..dn_proto::Config::default()
        };
        if let Some((target, max)) = net.as_ref().and_then(|n| n.active_view) {
            config.active_target = target;
            config.active_max = max;
        }
        if net.as_ref().is_some_and(|n| n.relay) {
            // A relay carries what laptops at several sites want; each lists its rooms.
            config.max_carried_rooms = crate::RELAY_MAX_CARRIED_ROOMS;
            config.sole_peer_max_rooms = dn_proto::protocol::CARRY_ROOMS_PER_PEER;
            // A relay serves every laptop of its sites: its view is never full.
            config.active_max = usize::MAX;
        }
        let mut proto = Protocol::with_config(id, name, port, rooms, config);
        // Every node carries direct messages (encrypted; only the two ends can read them).
        proto.carry_rooms([dm::DM_ROOM.to_string()]);
        // Own messages no peer held when the node last stopped are retried like new ones.
        proto.note_unheld(store.queued_ids().map_err(store_err)?);
        // Authors blocked on this data dir stay blocked across restarts.
        for (author, _) in store.blocked().map_err(store_err)? {
            proto.set_blocked(author, true);
        }
        // Urgent messages already stored lead catch-ups after a restart too (per-author budget).
        proto.note_stored_urgent(
            store
                .urgent_newest(dn_proto::protocol::URGENT_IDS_CAP as u32)
                .map_err(store_err)?,
        );
        // Relays the user chose bring a site's backlog at full speed (quota.rs).
        for id in relays.iter().filter_map(relays::Relay::trusted_node) {
            proto.set_trusted_relay(id, true);
        }
        // Rooms with stored messages that were never joined (or were left) are carried on.
        proto.carry_rooms(
            store
                .rooms()
                .map_err(store_err)?
                .into_iter()
                .filter(|r| !r.joined)
                .map(|r| r.name),
        );
        Ok(Core {
            data_dir: data_dir.to_path_buf(),
            key,
            id,
            store,
            proto,
            events,
            net,
            conns: HashMap::new(),
            last_received_at: None,
            last_sync_at,
            status_dirty: false,
            started: Instant::now(),
            topo_seq: 0,
            network_dirty: false,
            map_reachable: 0,
            map_dirty: false,
            last_status: Instant::now(),
            health_dirty: false,
            last_health: None,
            catch_up_bytes_out: 0,
            pending: None,
            drops: CoreDrops::default(),
            private,
            room_states: std::cell::RefCell::new(HashMap::new()),
            lock,
            exports: std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            store_lost: false,
            import: None,
            bundles: bundle::Progress::default(),
            relays,
        })
    }

    /// The node runs as a relay (joins no room).
    pub(crate) fn is_relay(&self) -> bool {
        self.net.as_ref().is_some_and(|n| n.relay)
    }

    /// Refuses what a relay does not do (join a room): it carries rooms, it is not in them.
    pub(crate) fn refuse_on_relay(&self) -> Result<(), ApiError> {
        if self.is_relay() {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "this node runs as a relay (--relay): it joins no room, it carries the rooms \
                 its peers want; join rooms on a laptop",
            ));
        }
        Ok(())
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The display name, or empty before one is set.
    pub fn display_name(&self) -> String {
        self.name().ok().flatten().unwrap_or_default()
    }

    /// Attaches the mDNS announcer (started after the core, since it needs the name).
    pub fn set_mdns(&mut self, mdns: Option<std::sync::Arc<crate::discovery::Mdns>>) {
        if let Some(n) = &mut self.net {
            n.announcer = mdns;
        }
    }

    /// Runs until `Shutdown` or until every sender is gone.
    #[allow(clippy::needless_pass_by_value)] // the thread owns its receiver
    pub fn run(mut self, mut inbox: Inbox) {
        let span = tracing::error_span!("core", me = %self.id.fingerprint());
        let _g = span.enter();
        // Only to wait on the inbox with a deadline; the core's work runs on this thread.
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!("core cannot wait for messages: {e}");
                return;
            }
        };
        // One loop, no polling: it sleeps until the next message or the next deadline (the
        // protocol's `poll_timeout`, or a status event waiting for its debounce).
        loop {
            match inbox.wait(&rt, self.next_wait()) {
                Wait::Msg(CoreMsg::Shutdown) | Wait::Closed => break,
                Wait::Msg(first) => {
                    if self.handle_burst(first, &mut inbox) {
                        break;
                    }
                }
                Wait::Timeout => {}
            }
            if self.store_lost {
                tracing::error!("stopping: the message store is not open (see the error above)");
                break;
            }
            if self
                .proto
                .poll_timeout()
                .is_some_and(|t| t <= self.mono_ms())
            {
                let now = self.time();
                let outs = self.proto.handle_timeout(&mut self.store, now);
                self.apply(outs);
            }
            self.import_step();
            if std::mem::take(&mut self.map_dirty) {
                self.note_map_size();
            }
            if self.status_dirty && self.last_status.elapsed() >= STATUS_DEBOUNCE {
                self.status_dirty = false;
                self.last_status = Instant::now();
                if let Ok(status) = self.status() {
                    let _ = self.events.send(EngineEvent::Status { status });
                }
                if std::mem::take(&mut self.network_dirty) {
                    let network = self.network_view();
                    let _ = self.events.send(EngineEvent::Network { network });
                }
            }
            self.maybe_emit_health();
        }
        debug!("core stopped");
    }

    /// Handles `first` and whatever else is already queued (up to about [`BURST`] messages):
    /// requests first, then network messages in groups of at most [`GROUP`]. Frames of a group
    /// are stored in one transaction instead of one fsync'd commit each (group commit). What handling them would send or show (acknowledgements, relays, replies,
    /// events) waits until that transaction committed; if the commit fails, nothing of the
    /// burst's messages is reported, relayed or acknowledged (catch-up fetches them again). The
    /// transaction is committed before any request runs, so a message the user sends is still
    /// durable before it is reported. Returns true on shutdown.
    fn handle_burst(&mut self, first: CoreMsg, inbox: &mut Inbox) -> bool {
        let mut queue = std::collections::VecDeque::from([first]);
        let mut handled = 0;
        loop {
            while handled < BURST && queue.len() < 2 * GROUP {
                match inbox.try_recv() {
                    Some(m) => queue.push_back(m),
                    None => break,
                }
            }
            // Requests and shutdown first: a flood of frames must not keep the user waiting.
            // (Network messages keep their order among themselves.)
            let (first_class, network): (Vec<CoreMsg>, Vec<CoreMsg>) = queue
                .drain(..)
                .partition(|m| matches!(m, CoreMsg::Request(..) | CoreMsg::Shutdown));
            queue.extend(network);
            for m in first_class {
                self.commit_group();
                if matches!(m, CoreMsg::Shutdown) {
                    return true;
                }
                self.handle(m);
                handled += 1;
            }
            let n = queue.len().min(GROUP);
            let frames = queue
                .iter()
                .take(n)
                .filter(|m| matches!(m, CoreMsg::Frame { .. }))
                .count();
            for m in queue.drain(..n) {
                if matches!(m, CoreMsg::Frame { .. }) && frames > 1 {
                    self.begin_group();
                } else {
                    self.commit_group();
                }
                self.handle(m);
            }
            self.commit_group();
            handled += n;
            if queue.is_empty() && (handled >= BURST || n == 0) {
                return false;
            }
        }
    }

    /// Opens a group transaction (no-op when one is open or the store refuses).
    fn begin_group(&mut self) {
        if self.pending.is_some() {
            return;
        }
        match self.store.begin_batch() {
            Ok(()) => self.pending = Some(Vec::new()),
            Err(e) => warn!("opening a store batch: {e}"),
        }
    }

    /// Commits the group transaction, then performs its held-back effects in order.
    fn commit_group(&mut self) -> bool {
        let Some(pending) = self.pending.take() else {
            return true;
        };
        let mut committed = true;
        let pending = match self.store.commit_batch() {
            Ok(()) => pending,
            Err(e) => {
                tracing::error!("committing received messages failed: {e}; none is reported");
                if let Err(e) = self.store.rollback_batch() {
                    warn!("rolling back the failed batch: {e}");
                }
                self.drops.failed_commits += 1;
                self.status_dirty = true;
                committed = false;
                pending
                    .into_iter()
                    .filter(|p| !p.about_stored_messages())
                    .collect()
            }
        };
        for p in pending {
            match p {
                Pending::Send { peer, frame } => self.transmit(peer, &frame),
                Pending::Event(ev) => {
                    let _ = self.events.send(ev);
                }
            }
        }
        committed
    }

    /// Shows an event now, or after the open group transaction committed.
    fn emit(&mut self, ev: EngineEvent) {
        match &mut self.pending {
            Some(p) => p.push(Pending::Event(ev)),
            None => {
                let _ = self.events.send(ev);
            }
        }
    }

    /// Sends a frame now, or after the open group transaction committed.
    fn send_frame(&mut self, peer: NodeId, frame: Frame) {
        match &mut self.pending {
            Some(p) => p.push(Pending::Send { peer, frame }),
            None => self.transmit(peer, &frame),
        }
    }

    /// Queues a frame on the peer's connection. A peer whose queue is over its byte budget is
    /// not reading: its connection is closed (counted).
    fn transmit(&mut self, peer: NodeId, frame: &Frame) {
        let own = match &frame {
            Frame::Msg { message, .. } if message.author == self.id => Some(message.id()),
            _ => None,
        };
        // A prioritised urgent message goes ahead of the ordinary frames queued for the peer.
        let urgent = self.proto.is_priority_frame(frame);
        let Some(c) = self.conns.get_mut(&peer).filter(|c| !c.closing) else {
            return;
        };
        let bytes = frame.encode_prefixed();
        if matches!(frame, Frame::Recon { .. } | Frame::ReconDone { .. }) {
            self.catch_up_bytes_out += bytes.len() as u64;
        }
        let sent = if urgent {
            c.tx.send_urgent(bytes)
        } else {
            c.tx.send(bytes)
        };
        match sent {
            Ok(()) => {
                if let Some(id) = own {
                    if let Err(e) = self.store.mark_sent(&id, &peer, now_ms()) {
                        warn!("recording delivery: {e}");
                    }
                    self.emit_delivery(&id);
                }
            }
            Err(SendError::Closed) => {}
            Err(e @ SendError::OverBudget { .. }) => {
                c.closing = true;
                let conn_id = c.conn_id;
                warn!(peer = %peer.fingerprint(), "closing connection: {e}");
                self.drops.not_reading += 1;
                self.status_dirty = true;
                // If dropped, the driver's stall timeout closes it.
                self.net_cmd(NetCmd::Close {
                    peer,
                    conn_id,
                    reason: "not reading".to_string(),
                    code: crate::net::CLOSE_NOT_READING,
                });
            }
        }
    }

    /// Gives the network driver a command without waiting (the driver may itself be waiting
    /// for room in the core's inbox). False if there is no network or its queue is full
    /// (counted).
    fn net_cmd(&mut self, cmd: NetCmd) -> bool {
        let Some(net) = &self.net else {
            return false;
        };
        match net.cmd.try_send(cmd) {
            Ok(()) => true,
            Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                self.drops.net_commands += 1;
                self.status_dirty = true;
                false
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Handles one message (public so an offline client can drive a core without a thread).
    pub fn handle(&mut self, msg: CoreMsg) {
        match msg {
            CoreMsg::Request(req, reply) => self.request(req, reply),
            CoreMsg::Connected {
                peer,
                conn_id,
                addr,
                tx,
            } => {
                info!(peer = %peer.fingerprint(), %addr, "peer connected");
                self.conns.insert(
                    peer,
                    Conn {
                        conn_id,
                        addr,
                        listen_port: None,
                        tx,
                        closing: false,
                        link: None,
                    },
                );
                self.feed(Input::Connected { peer });
                self.status_dirty = true;
            }
            CoreMsg::RelayConnected { peer, host } => self.relay_connected(peer, &host),
            CoreMsg::Discovered { id, addrs } => self.feed(Input::Discovered { node: id, addrs }),
            CoreMsg::Pinned { peer } => {
                if !self.proto.set_pinned(peer, true) {
                    warn!(peer = %peer.fingerprint(), "too many pinned peers; this one counts in the view");
                }
            }
            CoreMsg::Disconnected { peer, conn_id } => {
                if self.conns.get(&peer).is_some_and(|c| c.conn_id == conn_id) {
                    info!(peer = %peer.fingerprint(), "peer disconnected");
                    self.conns.remove(&peer);
                    self.feed(Input::Disconnected { peer });
                    let now = now_ms();
                    if let Err(e) = self.store.upsert_peer(&peer, None, &[], Some(now)) {
                        warn!("recording peer: {e}");
                    }
                    self.emit_peer(&peer);
                    self.status_dirty = true;
                    self.health_dirty = true;
                }
            }
            CoreMsg::Drained {
                peer,
                conn_id,
                bytes,
            } => {
                if self.conns.get(&peer).is_some_and(|c| c.conn_id == conn_id) {
                    self.feed(Input::Drained {
                        peer,
                        bytes: bytes as u64,
                    });
                }
            }
            CoreMsg::Frame {
                peer,
                conn_id,
                frame,
                permit: _permit,
            } => {
                if self.conns.get(&peer).is_some_and(|c| c.conn_id == conn_id) {
                    // A peer returning a message written here holds it (it has the signed
                    // bytes). Acknowledgements count only through the protocol's `Acked`.
                    if let Frame::Msg { message, .. } = &frame {
                        if message.author == self.id {
                            self.record_held(&[message.id()], &peer);
                        }
                    }
                    self.feed(Input::Frame { peer, frame });
                }
            }
            CoreMsg::Links { samples } => self.on_links(samples),
            CoreMsg::BadFrame { peer, reason } => {
                warn!(peer = %peer.fingerprint(), %reason, "undecodable frame dropped");
                self.drops.undecodable += 1;
                self.proto.count_rejected();
                self.status_dirty = true;
            }
            CoreMsg::Shutdown => {}
        }
    }

    fn mono_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Both clocks for the protocol.
    fn time(&self) -> Time {
        Time {
            mono_ms: self.mono_ms(),
            wall_ms: now_ms(),
        }
    }

    /// How long the loop may sleep: until the protocol's next deadline, or the status
    /// debounce if a status event is waiting (at most an hour).
    fn next_wait(&self) -> Duration {
        let mut wait = Duration::from_secs(3600);
        if let Some(at) = self.proto.poll_timeout() {
            wait = wait.min(Duration::from_millis(at.saturating_sub(self.mono_ms())));
        }
        if self.importing() {
            // A bundle import goes on after whatever came in meanwhile.
            return Duration::ZERO;
        }
        if self.status_dirty {
            wait = wait.min(STATUS_DEBOUNCE.saturating_sub(self.last_status.elapsed()));
        }
        if let Some(w) = self.health_wait() {
            wait = wait.min(w);
        }
        wait
    }

    fn feed(&mut self, input: Input) {
        let now = self.time();
        let outs = self.proto.handle(&mut self.store, input, now);
        self.apply(outs);
    }

    /// Carries out the protocol's outputs.
    fn apply(&mut self, outs: Vec<Output>) {
        let mut sign = false;
        for o in outs {
            match o {
                Output::Send { peer, frame } => self.send_frame(peer, frame),
                Output::SignNeighbours => sign = true,
                Output::Stored {
                    message,
                    from,
                    hops: _,
                } => {
                    debug!(from = %from.fingerprint(), room = %message.room, "stored message");
                    self.last_received_at = Some(now_ms());
                    self.status_dirty = true;
                    let id = message.id();
                    match self.store.get_message(&id) {
                        Ok(Some(sm)) if sm.message.room == dm::DM_ROOM => {
                            if let Some((from, grant)) = self.open_grant(&sm) {
                                match grant {
                                    Ok(inv) => {
                                        self.take_grant(&from, &inv);
                                    }
                                    Err(e) => {
                                        self.drops.grants_ignored += 1;
                                        debug!(from = %from.fingerprint(), "malformed key grant: {e}");
                                    }
                                }
                            } else if let Some(dm) = self.open_dm(&sm) {
                                self.emit(EngineEvent::Dm { dm });
                            }
                        }
                        Ok(Some(sm)) if dn_proto::private::is_private_room(&sm.message.room) => {
                            // Shown only to members who can read it; carriers show nothing.
                            if let Some(message) = self.private_arrived(&sm) {
                                self.emit(EngineEvent::Message { message });
                            }
                        }
                        Ok(Some(sm)) => self.emit(EngineEvent::Message { message: view(&sm) }),
                        Ok(None) => {}
                        Err(e) => warn!("reading back stored message: {e}"),
                    }
                }
                Output::PeerHello {
                    peer,
                    name,
                    rooms: _,
                    listen_port,
                } => {
                    let addrs: Vec<String> = self
                        .conns
                        .get(&peer)
                        .and_then(|c| peer_addr(c.addr, listen_port))
                        .map(|a| vec![a.to_string()])
                        .unwrap_or_default();
                    if let Some(c) = self.conns.get_mut(&peer) {
                        c.listen_port = Some(listen_port);
                    }
                    let name = normalize_name(&name).ok();
                    if let Err(e) =
                        self.store
                            .upsert_peer(&peer, name.as_deref(), &addrs, Some(now_ms()))
                    {
                        warn!("recording peer: {e}");
                    }
                    self.emit_peer(&peer);
                }
                Output::Rejected { peer, .. } if peer == dn_proto::protocol::BUNDLE_PEER => {
                    // A bundle record: counted in the import's report, not a peer's fault.
                    self.status_dirty = true;
                }
                Output::Rejected { peer, reason } => {
                    // Logged sparsely (a flood of junk must not become a flood of log lines):
                    // the first ones, then every power of two; the count is in the status.
                    let n = self.proto.counters().rejected;
                    if n <= 16 || n.is_power_of_two() {
                        warn!(peer = %peer.fingerprint(), %reason, total = n, "rejected data from peer");
                    }
                    self.status_dirty = true;
                }
                Output::Dropped { peer, reason } => {
                    // Budget drops can come in floods: log the first of each reason per peer
                    // and then every power of two (the counts are in the status).
                    let n = self.proto.counters().drops.get(reason);
                    if n.is_power_of_two() {
                        warn!(
                            peer = %peer.fingerprint(),
                            reason = reason.name(),
                            total = n,
                            "dropped a peer's request (budget)"
                        );
                    }
                    self.status_dirty = true;
                }
                Output::Acked { peer, ids } => self.record_held(&ids, &peer),
                Output::Dial { node, addrs } => {
                    for a in addrs {
                        self.net_cmd(NetCmd::Dial {
                            addr: a,
                            id: Some(node),
                            persistent: false,
                        });
                    }
                }
                Output::Disconnect { peer } => {
                    debug!(peer = %peer.fingerprint(), "closing connection: active view full");
                    if let Some(conn_id) = self.conns.get(&peer).map(|c| c.conn_id) {
                        self.net_cmd(NetCmd::Close {
                            peer,
                            conn_id,
                            reason: "view full".into(),
                            code: crate::net::CLOSE_VIEW,
                        });
                    }
                }
                Output::Close { peer, reason } => {
                    warn!(peer = %peer.fingerprint(), %reason, "closing connection");
                    if let Some(conn_id) = self.conns.get(&peer).map(|c| c.conn_id) {
                        self.net_cmd(NetCmd::Close {
                            peer,
                            conn_id,
                            reason,
                            code: crate::net::CLOSE_PROTOCOL,
                        });
                    }
                }
                Output::Synced { peer, room, proven } => {
                    let now = now_ms();
                    debug!(peer = %peer.fingerprint(), %room, proven, "room offer complete");
                    if let Err(e) = self.store.set_synced(&peer, &room, now) {
                        warn!("recording sync: {e}");
                    }
                    // Our own step found the sets equal: the peer knows every id we hold there
                    // and counts as holding what we wrote, except what we sent it that it has
                    // not confirmed. A ReconDone alone proves nothing (anyone can send one).
                    if proven {
                        let unconfirmed = self.proto.unconfirmed(&peer);
                        if let Err(e) =
                            self.store
                                .mark_room_held_except(&room, &peer, now, &unconfirmed)
                        {
                            warn!("recording delivery: {e}");
                        }
                    }
                    self.emit(EngineEvent::DeliveryChanged { room: room.clone() });
                    self.last_sync_at = Some(now);
                    self.status_dirty = true;
                }
                Output::TopologyChanged => {
                    self.network_dirty = true;
                    self.status_dirty = true;
                    self.map_dirty = true;
                }
                Output::StorageFailed(e) => tracing::error!("storage failure: {e}"),
            }
        }
        if sign {
            self.sign_neighbours();
        }
    }

    /// Logs (debug, target `dn_node::map`) how many other nodes the network graph reaches,
    /// when that number changes: a record of when this node's map grew, which the scale
    /// benchmark reads instead of polling a hundred busy nodes. One BFS per burst of graph
    /// changes (cached by the graph for the status and the network view), and none unless
    /// that log is enabled.
    fn note_map_size(&mut self) {
        if !tracing::enabled!(target: "dn_node::map", tracing::Level::DEBUG) {
            return;
        }
        let reachable = self
            .proto
            .graph()
            .hops_from(&self.proto.id())
            .len()
            .saturating_sub(1);
        if reachable != self.map_reachable {
            self.map_reachable = reachable;
            debug!(target: "dn_node::map", reachable, "network map changed");
        }
    }

    fn emit_peer(&mut self, peer: &NodeId) {
        if let Ok(peers) = self.peers() {
            if let Some(p) = peers.into_iter().find(|p| p.id == peer.to_hex()) {
                self.emit(EngineEvent::Peer { peer: p });
            }
        }
    }

    /// Signs our neighbour list (asked by the protocol, [`Output::SignNeighbours`]): our
    /// connections with the addresses they accept connections on and their round-trip
    /// times. A node without a network
    /// has none to sign.
    fn sign_neighbours(&mut self) {
        if self.net.is_none() {
            return;
        }
        self.topo_seq = now_ms().max(self.topo_seq + 1);
        let mut neighbours: Vec<Neighbour> = self
            .conns
            .iter()
            .map(|(id, c)| Neighbour {
                id: *id,
                addr: c.listen_port.and_then(|port| dial_addr(c.addr, port)),
                // QUIC's smoothed RTT at the last health sample, whole ms: the link's weight
                // in every node's source trees.
                rtt_ms: c
                    .link
                    .as_ref()
                    .map(|l| u16::try_from(l.rtt_us / 1000).unwrap_or(u16::MAX)),
            })
            .collect();
        neighbours.sort_by_key(|n| n.id);
        let rec = TopoRecord::create(&self.key, self.topo_seq, &self.display_name(), neighbours);
        self.feed(Input::LocalTopology(rec));
    }

    fn record_held(&mut self, ids: &[MessageId], peer: &NodeId) {
        if let Err(e) = self.store.mark_held(ids, peer, now_ms()) {
            warn!("recording delivery: {e}");
        }
        // The outgoing queue in the status may have shrunk (status events are debounced).
        self.status_dirty = true;
        for id in ids {
            self.emit_delivery(id);
        }
    }

    /// Sends the delivery state of a message written here (nothing for other messages).
    fn emit_delivery(&mut self, id: &MessageId) {
        if let Ok(Some(sm)) = self.store.get_message(id) {
            if sm.local {
                let message = self.view(&sm);
                self.emit(EngineEvent::Delivery {
                    id: message.id,
                    sent_to: message.sent_to,
                    held_by: message.held_by,
                });
            }
        }
    }
}

mod atrest;
mod bundle;
mod direct;
mod files;
mod health;
mod private;
mod relays;
mod requests;
mod views;

pub use views::view;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_private;
#[cfg(test)]
mod tests_relays;
#[cfg(test)]
mod tests_urgent;
#[cfg(test)]
mod tests_view;
