//! The core: one thread that owns the store's write connection and the protocol state. Every
//! request (from the app, the control socket or an offline CLI) and every network event goes
//! through its channel, so there is exactly one writer and no locking.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use dn_proto::dm;
use dn_proto::message::normalize_name;
use dn_proto::protocol::Counters;
use dn_proto::topo::{Neighbour, TopoRecord};
use dn_proto::{Frame, Input, Message, MessageId, NodeId, Output, Protocol};
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
    pub cmd: tokio::sync::mpsc::UnboundedSender<NetCmd>,
    /// Storage allowed for carried rooms, bytes.
    pub carry_quota_bytes: u64,
    /// The mDNS announcer, to update the name it carries.
    pub announcer: Option<std::sync::Arc<crate::discovery::Mdns>>,
    /// The node runs inside a program with a window (the desktop app).
    pub window: bool,
}

struct Conn {
    conn_id: u64,
    addr: SocketAddr,
    /// The port the peer accepts connections on (from its hello).
    listen_port: Option<u16>,
    tx: OutQueue,
    /// Asked the driver to close it (over budget): counted once, sent nothing more.
    closing: bool,
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
/// Protocol housekeeping period.
const TICK: Duration = Duration::from_secs(5);

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
    /// Protocol timers: (due ms, sequence) min-heap, and what each one is.
    timers: std::collections::BinaryHeap<std::cmp::Reverse<(u64, u64)>>,
    timer_data: HashMap<u64, dn_proto::Timer>,
    timer_seq: u64,
    /// Our neighbour list must be re-signed (connections changed).
    topo_dirty: bool,
    last_topo: Option<Instant>,
    topo_seq: u64,
    network_dirty: bool,
    last_tick: Instant,
    last_status: Instant,
    /// Effects of the burst whose store transaction is open (`None`: no transaction open).
    pending: Option<Vec<Pending>>,
    /// Drops and failures the core itself counts (the protocol and the driver count theirs).
    drops: CoreDrops,
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
        let id = identity::node_id(&key);
        let store = Store::open(&data_dir.join(STORE_FILE)).map_err(store_err)?;
        let name = store
            .get_setting(NAME_KEY)
            .map_err(store_err)?
            .unwrap_or_default();
        let rooms = store.joined_rooms().map_err(store_err)?;
        // Kept across restarts: the last catch-up with any peer, from `sync_state`.
        let last_sync_at = store.last_sync_at().map_err(store_err)?;
        let port = net.as_ref().map_or(0, |n| n.listen.port());
        let config = dn_proto::Config {
            carry_quota_bytes: net
                .as_ref()
                .map_or(dn_proto::protocol::DEFAULT_CARRY_QUOTA_BYTES, |n| {
                    n.carry_quota_bytes
                }),
            ..dn_proto::Config::default()
        };
        let mut proto = Protocol::with_config(id, name, port, rooms, config);
        // Every node carries direct messages (encrypted; only the two ends can read them).
        proto.carry_rooms([dm::DM_ROOM.to_string()]);
        // Authors blocked on this data dir stay blocked across restarts.
        for (author, _) in store.blocked().map_err(store_err)? {
            proto.set_blocked(author, true);
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
            timers: std::collections::BinaryHeap::new(),
            timer_data: HashMap::new(),
            timer_seq: 0,
            topo_dirty: true,
            last_topo: None,
            topo_seq: 0,
            network_dirty: false,
            last_tick: Instant::now(),
            last_status: Instant::now(),
            pending: None,
            drops: CoreDrops::default(),
        })
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
    pub fn run(mut self, rx: mpsc::Receiver<CoreMsg>) {
        let span = tracing::error_span!("core", me = %self.id.fingerprint());
        let _g = span.enter();
        loop {
            let wait = self.next_timer_wait().min(Duration::from_millis(250));
            match rx.recv_timeout(wait) {
                Ok(CoreMsg::Shutdown) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Ok(first) => {
                    if self.handle_burst(first, &rx) {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            self.fire_due_timers();
            self.housekeeping();
            if self.status_dirty && self.last_status.elapsed() >= Duration::from_millis(500) {
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
    fn handle_burst(&mut self, first: CoreMsg, rx: &mpsc::Receiver<CoreMsg>) -> bool {
        let mut queue = std::collections::VecDeque::from([first]);
        let mut handled = 0;
        loop {
            while handled < BURST && queue.len() < 2 * GROUP {
                match rx.try_recv() {
                    Ok(m) => queue.push_back(m),
                    Err(_) => break,
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
    fn commit_group(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let pending = match self.store.commit_batch() {
            Ok(()) => pending,
            Err(e) => {
                tracing::error!("committing received messages failed: {e}; none is reported");
                if let Err(e) = self.store.rollback_batch() {
                    warn!("rolling back the failed batch: {e}");
                }
                self.drops.failed_commits += 1;
                self.status_dirty = true;
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
        let Some(c) = self.conns.get_mut(&peer).filter(|c| !c.closing) else {
            return;
        };
        match c.tx.send(frame.encode_prefixed()) {
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
                if let Some(net) = &self.net {
                    let _ = net.cmd.send(NetCmd::Close {
                        peer,
                        conn_id,
                        reason: "not reading".to_string(),
                        code: crate::net::CLOSE_NOT_READING,
                    });
                }
            }
        }
    }

    /// Handles one message (public so an offline client can drive a core without a thread).
    pub fn handle(&mut self, msg: CoreMsg) {
        match msg {
            CoreMsg::Request(Request::Export { room, path, format }, reply) => {
                self.start_export(room, path, format, reply);
            }
            CoreMsg::Request(req, reply) => {
                let r = self.request(req);
                let _ = reply.send(r);
            }
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
                    },
                );
                self.topo_dirty = true;
                self.feed(Input::Connected { peer });
                self.status_dirty = true;
            }
            CoreMsg::Disconnected { peer, conn_id } => {
                if self.conns.get(&peer).is_some_and(|c| c.conn_id == conn_id) {
                    info!(peer = %peer.fingerprint(), "peer disconnected");
                    self.conns.remove(&peer);
                    self.topo_dirty = true;
                    self.feed(Input::Disconnected { peer });
                    let now = now_ms();
                    if let Err(e) = self.store.upsert_peer(&peer, None, &[], Some(now)) {
                        warn!("recording peer: {e}");
                    }
                    self.emit_peer(&peer);
                    self.status_dirty = true;
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

    fn next_timer_wait(&self) -> Duration {
        match self.timers.peek() {
            Some(std::cmp::Reverse((at, _))) => {
                Duration::from_millis(at.saturating_sub(self.mono_ms()))
            }
            None => Duration::from_secs(3600),
        }
    }

    fn fire_due_timers(&mut self) {
        let now = self.mono_ms();
        while let Some(std::cmp::Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(std::cmp::Reverse((_, seq))) = self.timers.pop() else {
                break;
            };
            if let Some(t) = self.timer_data.remove(&seq) {
                self.feed(Input::Timer(t));
            }
        }
    }

    fn feed(&mut self, input: Input) {
        let now = self.mono_ms();
        self.proto.set_wall_clock(now_ms());
        let outs = self.proto.handle(&mut self.store, input, now);
        for o in outs {
            match o {
                Output::Send { peer, frame } => self.send_frame(peer, frame),
                Output::SetTimer { at, timer } => {
                    self.timer_seq += 1;
                    self.timers.push(std::cmp::Reverse((at, self.timer_seq)));
                    self.timer_data.insert(self.timer_seq, timer);
                }
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
                            if let Some(dm) = self.open_dm(&sm) {
                                self.emit(EngineEvent::Dm { dm });
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
                        .and_then(|c| dial_addr(c.addr, listen_port))
                        .map(|a| vec![a.to_string()])
                        .unwrap_or_default();
                    if let Some(c) = self.conns.get_mut(&peer) {
                        c.listen_port = Some(listen_port);
                        self.topo_dirty = true;
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
                    if let Some(net) = &self.net {
                        for a in addrs {
                            let _ = net.cmd.send(NetCmd::Dial {
                                addr: SocketAddr::V4(a),
                                id: Some(node),
                                persistent: false,
                            });
                        }
                    }
                }
                Output::Close { peer, reason } => {
                    warn!(peer = %peer.fingerprint(), %reason, "closing connection");
                    if let (Some(net), Some(c)) = (&self.net, self.conns.get(&peer)) {
                        let _ = net.cmd.send(NetCmd::Close {
                            peer,
                            conn_id: c.conn_id,
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
                }
                Output::StorageFailed(e) => tracing::error!("storage failure: {e}"),
            }
        }
    }

    fn emit_peer(&mut self, peer: &NodeId) {
        if let Ok(peers) = self.peers() {
            if let Some(p) = peers.into_iter().find(|p| p.id == peer.to_hex()) {
                self.emit(EngineEvent::Peer { peer: p });
            }
        }
    }

    fn name(&self) -> Result<Option<String>, ApiError> {
        self.store.get_setting(NAME_KEY).map_err(store_err)
    }

    fn identity(&self) -> Result<IdentityView, ApiError> {
        Ok(IdentityView {
            id: self.id.to_hex(),
            fingerprint: self.id.fingerprint(),
            name: self.name()?,
        })
    }

    fn room_view(&self, name: &str) -> Result<RoomView, ApiError> {
        let rooms = self.store.rooms().map_err(store_err)?;
        Ok(rooms
            .into_iter()
            .find(|r| r.name == name)
            .map(RoomView::from)
            .unwrap_or(RoomView {
                name: name.to_string(),
                joined: false,
                muted: false,
                messages: 0,
                last_timestamp: None,
            }))
    }

    fn blocked(&self) -> Result<Vec<BlockedView>, ApiError> {
        let peers = self.store.peers().map_err(store_err)?;
        self.store
            .blocked()
            .map_err(store_err)?
            .into_iter()
            .map(|(id, since)| {
                let hello_name = peers
                    .iter()
                    .find(|p| p.id == id)
                    .map(|p| p.name.clone())
                    .filter(|n| !n.is_empty());
                let name = match hello_name {
                    Some(n) => Some(n),
                    None => self.store.author_name(&id).map_err(store_err)?,
                };
                Ok(BlockedView {
                    id: id.to_hex(),
                    fingerprint: id.fingerprint(),
                    name,
                    since,
                })
            })
            .collect()
    }

    fn rooms(&self) -> Result<Vec<RoomView>, ApiError> {
        let mut v: Vec<RoomView> = self
            .store
            .rooms()
            .map_err(store_err)?
            .into_iter()
            .filter(|r| r.name != dm::DM_ROOM)
            .map(RoomView::from)
            .collect();
        v.sort_by(|a, b| b.joined.cmp(&a.joined).then(a.name.cmp(&b.name)));
        Ok(v)
    }

    /// Re-signs our neighbour list when connections changed (at most every 5.5 s, the gap peers enforce plus a margin) or when it
    /// is due for refresh, and runs the protocol's housekeeping tick.
    fn housekeeping(&mut self) {
        if self.net.is_none() {
            return;
        }
        let due = match self.last_topo {
            None => true,
            Some(t) => {
                // Not faster than peers accept a node's lists (the protocol holds back one
                // that comes sooner than TOPO_MIN_GAP_MS after the last), with a margin.
                (self.topo_dirty
                    && t.elapsed()
                        >= Duration::from_millis(dn_proto::protocol::TOPO_MIN_GAP_MS + 500))
                    || t.elapsed() >= Duration::from_millis(dn_proto::protocol::TOPO_REFRESH_MS)
            }
        };
        if due {
            self.topo_dirty = false;
            self.last_topo = Some(Instant::now());
            self.topo_seq = now_ms().max(self.topo_seq + 1);
            let mut neighbours: Vec<Neighbour> = self
                .conns
                .iter()
                .map(|(id, c)| Neighbour {
                    id: *id,
                    addr: c.listen_port.and_then(|port| dial_addr(c.addr, port)),
                })
                .collect();
            neighbours.sort_by_key(|n| n.id);
            let rec =
                TopoRecord::create(&self.key, self.topo_seq, &self.display_name(), neighbours);
            self.feed(Input::LocalTopology(rec));
        }
        if self.last_tick.elapsed() >= TICK {
            self.last_tick = Instant::now();
            self.feed(Input::Tick);
        }
    }

    fn network_view(&self) -> NetworkView {
        let graph = self.proto.graph();
        let hops = graph.hops_from(&self.id);
        let mut ids: std::collections::BTreeSet<NodeId> = hops.keys().copied().collect();
        for r in graph.records() {
            ids.insert(r.node);
        }
        ids.insert(self.id);
        ids.extend(self.conns.keys().copied());
        let mut nodes: Vec<NetworkNode> = ids
            .into_iter()
            .map(|id| NetworkNode {
                id: id.to_hex(),
                fingerprint: id.fingerprint(),
                name: if id == self.id {
                    self.display_name()
                } else {
                    graph
                        .record(&id)
                        .map(|r| r.name.clone())
                        .unwrap_or_default()
                },
                hops: hops.get(&id).copied(),
                connected: self.conns.contains_key(&id),
                me: id == self.id,
            })
            .collect();
        nodes.sort_by(|a, b| {
            b.me.cmp(&a.me)
                .then(b.connected.cmp(&a.connected))
                .then(a.hops.unwrap_or(u32::MAX).cmp(&b.hops.unwrap_or(u32::MAX)))
                .then(a.id.cmp(&b.id))
        });
        // The nearest ones only: made-up neighbour lists (within the topology caps) must not
        // turn every status answer into hundreds of KB.
        nodes.truncate(MAX_VIEW_NODES);
        let shown: std::collections::HashSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
        let mut links: Vec<NetworkLink> = graph
            .links()
            .into_iter()
            .map(|(a, b)| NetworkLink {
                a: a.to_hex(),
                b: b.to_hex(),
            })
            .filter(|l| shown.contains(l.a.as_str()) && shown.contains(l.b.as_str()))
            .collect();
        // Live connections whose records have not propagated yet are links too.
        for id in self.conns.keys() {
            let (a, b) = if self.id < *id {
                (self.id, *id)
            } else {
                (*id, self.id)
            };
            let l = NetworkLink {
                a: a.to_hex(),
                b: b.to_hex(),
            };
            if !links.contains(&l) {
                links.push(l);
            }
        }
        NetworkView { nodes, links }
    }

    fn peers(&self) -> Result<Vec<PeerView>, ApiError> {
        let hops = self.proto.graph().hops_from(&self.id);
        let mut v: Vec<PeerView> = self
            .store
            .peers()
            .map_err(store_err)?
            .into_iter()
            .filter(|p| p.id != self.id)
            .map(|p| {
                let connected = self.conns.contains_key(&p.id);
                PeerView {
                    id: p.id.to_hex(),
                    fingerprint: p.id.fingerprint(),
                    name: p.name,
                    addresses: p.addresses,
                    connected,
                    last_seen: if connected {
                        Some(now_ms())
                    } else {
                        p.last_seen
                    },
                    rooms: if connected {
                        self.proto.peer_rooms(&p.id)
                    } else {
                        vec![]
                    },
                    hops: if connected {
                        Some(1)
                    } else {
                        hops.get(&p.id).copied()
                    },
                }
            })
            .collect();
        v.sort_by(|a, b| {
            b.connected
                .cmp(&a.connected)
                .then(a.name.cmp(&b.name))
                .then(a.id.cmp(&b.id))
        });
        Ok(v)
    }

    fn status(&self) -> Result<StatusView, ApiError> {
        let Counters {
            received, rejected, ..
        } = self.proto.counters();
        let rooms: Vec<RoomView> = self.rooms()?.into_iter().filter(|r| r.joined).collect();
        Ok(StatusView {
            identity: self.identity()?,
            running: self.net.is_some(),
            listen: self.net.as_ref().map(|n| n.listen.to_string()),
            mdns: self.net.as_ref().is_some_and(|n| n.mdns),
            connected_peers: self.proto.connected().count() as u32,
            known_peers: self
                .store
                .peers()
                .map_err(store_err)?
                .iter()
                .filter(|p| p.id != self.id)
                .count() as u32,
            rooms,
            messages: self.store.message_count(None).map_err(store_err)?,
            received,
            rejected,
            last_received_at: self.last_received_at,
            last_sync_at: self.last_sync_at,
            queued: self.store.queued_count().map_err(store_err)?,
            data_dir: self.data_dir.display().to_string(),
            network: self.network_view(),
            carried_rooms: self
                .proto
                .carried()
                .filter(|r| *r != dm::DM_ROOM)
                .cloned()
                .collect(),
            carry_quota_full: self.proto.carry_full(),
            carry_evicted: self.proto.counters().evicted,
            drops: self.drops(),
        })
    }

    /// Everything dropped, refused or cut since start, by reason (the protocol's, the
    /// driver's and the core's own counters in one table).
    fn drops(&self) -> std::collections::BTreeMap<String, u64> {
        let mut d = std::collections::BTreeMap::new();
        let mut put = |k: &str, v: u64| {
            if v > 0 {
                *d.entry(k.to_string()).or_insert(0) += v;
            }
        };
        let counters = self.proto.counters();
        put("invalid", counters.rejected);
        put("blocked", self.proto.blocked_drops());
        for (reason, n) in counters.drops.iter() {
            put(reason.key(), n);
        }
        let q = self.proto.quota_drops();
        put("quota_author", q.author);
        put("quota_peer", q.peer);
        put("invalid_dm", q.bad_dm);
        let t = self.proto.topo_drops();
        put("topo_rate", t.too_soon + t.peer_rate);
        put("topo_cap", t.full);
        let cd = self.proto.carry_drops();
        put("carry_candidates", cd.per_peer + cd.table_full);
        put("not_reading", self.drops.not_reading);
        put("failed_commits", self.drops.failed_commits);
        put("undecodable", self.drops.undecodable);
        if let Some(net) = &self.net {
            let c = &net.counters;
            let get =
                |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
            put("refused_full", get(&c.refused_full));
            put("refused_per_address", get(&c.refused_per_address));
            put("refused_handshakes", get(&c.refused_handshakes));
            put("oversized_frames", get(&c.oversized_frames));
            put("discovery_dropped", get(&c.discovery_dropped));
            put("targets_evicted", get(&c.targets_evicted));
            put("beacon_dropped", get(&c.beacon_dropped));
            put("not_reading", get(&c.stalled));
        }
        d
    }

    fn to_value<T: serde::Serialize>(v: T) -> Result<Value, ApiError> {
        serde_json::to_value(v).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
    }

    /// Refuses an output path that would replace one of the data dir's own files (the key, the
    /// store, the lock, the socket, a kept key).
    fn refuse_own_files(&self, path: &Path) -> Result<(), ApiError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let own = ["identity.key", STORE_FILE, "node.lock", "control.sock"]
            .iter()
            .any(|f| name.starts_with(f));
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let same_dir = match (parent.canonicalize(), self.data_dir.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if own && same_dir {
            return Err(invalid(format!(
                "{}: that would overwrite this node's own data; choose another file",
                path.display()
            )));
        }
        Ok(())
    }

    /// Checks an export request: the room name, and that `path` is not one of our own files.
    fn export_room(&self, room: Option<String>, path: &str) -> Result<Option<String>, ApiError> {
        self.refuse_own_files(Path::new(path))?;
        room.map(|r| dn_proto::message::normalize_room(&r).map_err(invalid))
            .transpose()
    }

    /// Writes an export on a thread of its own with a read-only connection, so a large export
    /// never holds up messages arriving meanwhile; reports [`EngineEvent::ExportProgress`] and
    /// answers `reply` when the file is complete.
    fn start_export(
        &mut self,
        room: Option<String>,
        path: String,
        format: ExportFormat,
        reply: oneshot::Sender<Result<Value, ApiError>>,
    ) {
        let room = match self.export_room(room, &path) {
            Ok(room) => room,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let db = self.data_dir.join(STORE_FILE);
        let events = self.events.clone();
        // JSONL exports end with a manifest signed by this node (removed, added and reordered
        // lines are then detectable).
        let key = self.key.clone();
        let span = tracing::info_span!("export", path = %path);
        let spawned = std::thread::Builder::new()
            .name("dn-export".into())
            .spawn(move || {
                let _g = span.enter();
                let started = Instant::now();
                let mut report = |done, total| {
                    let _ = events.send(EngineEvent::ExportProgress {
                        path: path.clone(),
                        done,
                        total,
                    });
                };
                let r = export::export_file_signed(
                    &db,
                    room.as_deref(),
                    Path::new(&path),
                    format,
                    Some(&key),
                    &mut report,
                );
                match &r {
                    Ok(s) => info!(
                        messages = s.messages,
                        ms = started.elapsed().as_millis() as u64,
                        "export written"
                    ),
                    Err(e) => warn!("export failed: {}", e.message),
                }
                let _ = reply.send(r.and_then(Self::to_value));
            });
        if let Err(e) = spawned {
            // The closure (and `reply` with it) is gone: the caller sees "engine stopped".
            warn!("cannot start the export thread: {e}");
        }
    }

    /// Executes one request.
    pub fn request(&mut self, req: Request) -> Result<Value, ApiError> {
        match req {
            Request::Identity => Self::to_value(self.identity()?),
            Request::SetName { name } => {
                let name = normalize_name(&name).map_err(invalid)?;
                self.store.set_setting(NAME_KEY, &name).map_err(store_err)?;
                // Connected peers get a second Hello with the new name; the signed neighbour
                // list (which carries the name to the whole network) is re-signed.
                self.feed(Input::Renamed(name.clone()));
                if let Some(m) = self.net.as_ref().and_then(|n| n.announcer.as_ref()) {
                    m.rename(&name);
                }
                self.topo_dirty = true;
                self.status_dirty = true;
                Self::to_value(self.identity()?)
            }
            Request::JoinRoom { room } => {
                let room = dn_proto::message::normalize_room(&room).map_err(invalid)?;
                reserved(&room)?;
                self.store.join_room(&room, now_ms()).map_err(store_err)?;
                self.feed(Input::Joined(room.clone()));
                self.status_dirty = true;
                Self::to_value(self.room_view(&room)?)
            }
            Request::SetMuted { room, muted } => {
                let room = dn_proto::message::normalize_room(&room).map_err(invalid)?;
                if room == dm::DM_ROOM {
                    return Err(invalid(format!("{room} is reserved for direct messages")));
                }
                self.store.set_room_muted(&room, muted).map_err(store_err)?;
                self.status_dirty = true;
                Self::to_value(self.room_view(&room)?)
            }
            Request::LeaveRoom { room } => {
                let room = dn_proto::message::normalize_room(&room).map_err(invalid)?;
                if !self
                    .store
                    .joined_rooms()
                    .map_err(store_err)?
                    .contains(&room)
                {
                    return Err(ApiError::new(
                        ErrorCode::NotFound,
                        format!("not a member of room {room}"),
                    ));
                }
                self.store.leave_room(&room).map_err(store_err)?;
                self.feed(Input::Left(room.clone()));
                self.status_dirty = true;
                Self::to_value(self.room_view(&room)?)
            }
            Request::Rooms => Self::to_value(self.rooms()?),
            Request::Send { room, body } => Self::to_value(self.send(&room, &body)?),
            Request::Messages {
                room,
                limit,
                before,
            } => {
                let room = dn_proto::message::normalize_room(&room).map_err(invalid)?;
                let before = match before {
                    Some(b) => Some(MessageId::from_hex(&b).map_err(invalid)?),
                    None => None,
                };
                let limit = limit.clamp(1, MAX_PAGE);
                let msgs = self
                    .store
                    .messages(&room, limit, before.as_ref())
                    .map_err(store_err)?;
                Self::to_value(msgs.iter().map(|m| self.view(m)).collect::<Vec<_>>())
            }
            Request::Peers => Self::to_value(self.peers()?),
            Request::Status => Self::to_value(self.status()?),
            Request::Export { room, path, format } => {
                // Normally handled by `start_export` (off this thread); this is the same work
                // done inline, for callers of `request` itself.
                let room = self.export_room(room, &path)?;
                Self::to_value(export::export_signed(
                    &self.store,
                    room.as_deref(),
                    Path::new(&path),
                    format,
                    &self.key,
                )?)
            }
            Request::Activate => {
                let window = self.net.as_ref().is_some_and(|n| n.window);
                if window {
                    info!("asked to show the window (another start on this data dir)");
                    let _ = self.events.send(EngineEvent::Activate);
                }
                Self::to_value(ActivateView { window })
            }
            Request::BackupIdentity { path } => {
                if !Path::new(&path).is_absolute() {
                    return Err(invalid(format!("{path}: the backup path must be absolute")));
                }
                self.refuse_own_files(Path::new(&path))?;
                identity::write_backup(&self.key, Path::new(&path))?;
                Self::to_value(BackupSummary { path })
            }
            Request::Network => Self::to_value(self.network_view()),
            Request::Block { author, blocked } => {
                let id = NodeId::from_hex(author.trim()).map_err(|_| {
                    invalid(format!(
                        "{author:?} is not a node id: give the author's full id (64 hex characters)"
                    ))
                })?;
                if id == self.id {
                    return Err(invalid("you cannot block yourself"));
                }
                self.store
                    .set_blocked(&id, blocked, now_ms())
                    .map_err(store_err)?;
                self.proto.set_blocked(id, blocked);
                info!(author = %id.fingerprint(), blocked, "author block changed");
                Self::to_value(self.blocked()?)
            }
            Request::Blocked => Self::to_value(self.blocked()?),
            Request::SendDm { to, body } => Self::to_value(self.send_dm(&to, &body)?),
            Request::DmLog { with, limit } => {
                let with = NodeId::from_hex(&with).map_err(invalid)?;
                let mut v = Vec::new();
                self.store
                    .for_each_message(Some(dm::DM_ROOM), |sm| -> Result<(), ApiError> {
                        if let Some(d) = self.open_dm(&sm) {
                            if d.peer == with.to_hex() {
                                v.push(d);
                            }
                        }
                        Ok(())
                    })?;
                let skip = v.len().saturating_sub(limit.clamp(1, MAX_PAGE) as usize);
                Self::to_value(v.split_off(skip))
            }
            Request::AddPeer { addr } => {
                let net = self.net.as_ref().ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidInput,
                        "no node is running on this data directory",
                    )
                })?;
                // Only address literals reach the core: `Engine::request` resolves host names.
                let a: SocketAddr = addr.parse().map_err(|e| {
                    ApiError::new(
                        ErrorCode::InvalidInput,
                        format!("bad peer address {addr:?}: {e}"),
                    )
                })?;
                if !a.is_ipv4() {
                    return Err(ApiError::new(
                        ErrorCode::InvalidInput,
                        format!("{addr:?} is not an IPv4 address"),
                    ));
                }
                let _ = net.cmd.send(NetCmd::Dial {
                    addr: a,
                    id: None,
                    persistent: true,
                });
                Ok(Value::Null)
            }
        }
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

    /// The user-facing view of a stored message, with its delivery state if written here.
    fn view(&self, sm: &StoredMessage) -> MessageView {
        let mut v = view(sm);
        if sm.local {
            if let Ok((sent, held)) = self.store.delivery(&sm.id) {
                v.sent_to = sent;
                v.held_by = held;
            }
        }
        v
    }

    fn require_name(&self) -> Result<String, ApiError> {
        self.name()?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::NoName,
                "set a display name first (disasternet init --name NAME)",
            )
        })
    }

    /// Stores a message written here, durably (synchronous=FULL, outside any burst batch),
    /// and reads it back.
    fn store_local(&mut self, msg: &Message) -> Result<StoredMessage, ApiError> {
        self.store
            .insert_message(msg, now_ms(), true)
            .map_err(store_err)?;
        self.store
            .get_message(&msg.id())
            .map_err(store_err)?
            .ok_or_else(|| ApiError::new(ErrorCode::Storage, "message vanished after insert"))
    }

    /// Decrypts a stored message of the DM room if this node is its sender or recipient.
    fn open_dm(&self, sm: &StoredMessage) -> Option<DmView> {
        let env = dm::from_body(&sm.message.body).ok()?;
        let m = &sm.message;
        let outgoing = m.author == self.id;
        if !outgoing && env.recipient != self.id {
            return None; // carried for others
        }
        let body = dm::open(&self.key, &m.author, &env, m.timestamp).ok()?;
        let peer = if outgoing { env.recipient } else { m.author };
        Some(DmView {
            id: sm.id.to_hex(),
            peer: peer.to_hex(),
            author: m.author.to_hex(),
            author_name: m.author_name.clone(),
            timestamp: m.timestamp,
            body,
            outgoing,
            received_at: sm.received_at,
        })
    }

    fn send_dm(&mut self, to: &str, body: &str) -> Result<DmView, ApiError> {
        let to = NodeId::from_hex(to).map_err(invalid)?;
        let name = self.require_name()?;
        if body.len() > dm::MAX_DM_TEXT_BYTES {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!(
                    "direct message is {} bytes; the limit is {} bytes",
                    body.len(),
                    dm::MAX_DM_TEXT_BYTES
                ),
            ));
        }
        let ts = now_ms();
        let mut eph = [0u8; 32];
        let mut nonce = [0u8; 24];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut eph);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let env = dm::seal(&self.key, &to, body, ts, eph, nonce).map_err(invalid)?;
        let msg = Message::create(&self.key, dm::DM_ROOM, &name, ts, &dm::to_body(&env))
            .map_err(invalid)?;
        let sm = self.store_local(&msg)?;
        let v = self.open_dm(&sm).ok_or_else(|| {
            ApiError::new(ErrorCode::Internal, "cannot read back own direct message")
        })?;
        let _ = self.events.send(EngineEvent::Dm { dm: v.clone() });
        self.feed(Input::Published(msg));
        self.status_dirty = true;
        Ok(v)
    }

    fn send(&mut self, room: &str, body: &str) -> Result<MessageView, ApiError> {
        let room = dn_proto::message::normalize_room(room).map_err(invalid)?;
        reserved(&room)?;
        let name = self.require_name()?;
        if !self
            .store
            .joined_rooms()
            .map_err(store_err)?
            .contains(&room)
        {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("not a member of room {room}; join it first (room join {room})"),
            ));
        }
        let msg = Message::create(&self.key, &room, &name, now_ms(), body).map_err(invalid)?;
        // Durable (synchronous=FULL) before anyone is told it was sent.
        let sm = self.store_local(&msg)?;
        let v = view(&sm);
        let _ = self
            .events
            .send(EngineEvent::Message { message: v.clone() });
        self.feed(Input::Published(msg));
        self.status_dirty = true;
        Ok(v)
    }
}

/// Refuses the room reserved for direct messages in room commands.
fn reserved(room: &str) -> Result<(), ApiError> {
    if room == dm::DM_ROOM {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "the room name \"dm\" is reserved for direct messages; use dm --to ID",
        ));
    }
    Ok(())
}

/// The user-facing view of a stored message.
pub fn view(sm: &StoredMessage) -> MessageView {
    let m = &sm.message;
    MessageView {
        id: sm.id.to_hex(),
        room: m.room.clone(),
        author: m.author.to_hex(),
        author_name: m.author_name.clone(),
        timestamp: m.timestamp,
        body: m.body.clone(),
        signature: hex::encode(m.signature),
        signed: base64::engine::general_purpose::STANDARD.encode(m.signed_bytes()),
        received_at: sm.received_at,
        local: sm.local,
        sent_to: 0,
        held_by: 0,
    }
}

#[cfg(test)]
mod tests;
