//! The protocol state machine: events in, actions out, time passed in.
//!
//! - **Hello**: on connect both sides send `Hello` (id, name, joined rooms, listen port). The
//!   hello's id must equal the TLS-authenticated peer id or the peer is dropped.
//! - **Propagation** ([`Propagation::Tree`], the default) is PlumTree-like, per room: every
//!   link starts *eager*. A new message (published here, or received and stored for the first
//!   time) is pushed as `Msg` over eager links and announced as `IHave` over lazy ones. A node
//!   that receives a message it already has turns that link lazy and sends `Prune`, so eager
//!   links settle into a spanning tree and each node receives about one copy. A node that hears
//!   `IHave` for a message it lacks waits [`Config::ihave_timeout_ms`] (the tree is usually
//!   just slower), then sends `Graft` to the announcer, which makes the link eager again and
//!   sends the message; further announcers are tried every [`Config::graft_retry_ms`].
//!   [`Propagation::Flood`] pushes to every link instead (the baseline the simulator compares
//!   against). In both modes `hops` drops by one per forward (0 = store, do not forward), the
//!   store is the seen-set, and peers known to hold a message are skipped.
//! - **Catch-up**: when two peers share a room (after hello, after either joins, and every
//!   [`ANTI_ENTROPY_MS`]) the lower id starts a set reconciliation ([`crate::recon`]); each
//!   side sends the messages the other lacks. One exchange per (peer, room) at a time, tracked
//!   by its salt; [`Output::Synced`] only when a tracked exchange completes.
//! - **Budgets** ([`budget`]): request-like frames are paid from per-peer token buckets, taken
//!   only for rooms both sides share; over budget they are dropped, counted
//!   ([`Counters::drops`]) and reported ([`Output::Dropped`]). Replies (grafts, catch-up) wait
//!   in a bounded per-peer queue and go out within a byte window the driver reopens with
//!   [`Input::Drained`].
//! - **Validation**: every received message is verified (signature, size, room and name rules)
//!   and must be for a room this node serves (joined or carried); anything else is rejected,
//!   reported and counted, and the connection keeps serving.
//!
//! Time is a `u64` of milliseconds from any fixed origin, given with each input; timers are
//! data ([`Output::SetTimer`] out, [`Input::Timer`] in), so a simulator can run it exactly.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

pub mod budget;
mod pending;

use budget::Buckets;
pub use budget::{Budget, DropReason, Drops, TokenBucket};
use pending::Pending;

use crate::codec::Frame;
use crate::message::{normalize_room, Message, MessageId, NodeId, PROTOCOL_VERSION};
use crate::recon;
use crate::topo::{Graph, TopoRecord};
use crate::ProtoError;

mod carry;
pub mod evict;
pub mod exchange;
mod quota;
mod topology;

pub use carry::{
    CarryDrops, CARRY_DEMAND_WINDOW_MS, CARRY_IDLE_MS, CARRY_MIN_ANNOUNCERS, CARRY_ROOMS_PER_PEER,
    CARRY_SOLE_PEER_MAX_ROOMS, CARRY_SOLE_PEER_MS, MAX_CARRY_CANDIDATES,
};
pub use evict::{
    DEFAULT_CARRY_QUOTA_BYTES, EVICTED_ID_BYTES, EVICT_BATCH, EVICT_TARGET_PERCENT,
    MAX_EVICT_PER_TICK,
};
pub use exchange::{DIAL_ADDRS_PER_NODE, EXCHANGE_MIN_GAP_MS, SUGGEST_AGAIN_MS, TARGET_PEERS};
pub use quota::{
    QuotaDrops, AUTHOR_CACHE_CAP, AUTHOR_WINDOW_MESSAGES, AUTHOR_WINDOW_MS, MAX_AUTHOR_BYTES,
    MAX_AUTHOR_MESSAGES, PEER_BUCKETS_CAP, PEER_JOINED_BURST, PEER_JOINED_PER_MIN,
    PEER_RELAY_BURST, PEER_RELAY_PER_MIN,
};
pub use topology::{
    TopoDrops, MAX_TOPO_RECORDS, TOPO_HELLO_MAX, TOPO_MIN_GAP_MS, TOPO_NEAR_HOPS,
    TOPO_NEW_ORIGINS_BURST, TOPO_NEW_ORIGINS_PER_MIN,
};

/// Eager-push hop budget of a fresh message. Past it a node only announces the message lazily
/// (`IHave`), so a runaway push chain is bounded but delivery still completes through grafts.
pub const DEFAULT_HOPS: u8 = 64;
/// A message dated more than this far ahead of the receiver's wall clock is not stored or
/// relayed (yet): reconciliation offers it again later, and it is accepted once its time
/// comes. Room order (timestamp, author, id) therefore never depends on a skewed clock.
pub const MAX_FUTURE_MS: u64 = 10 * 60 * 1000;
/// A peer may open a new reconciliation for a room at most this often, ms.
const RECON_MIN_GAP_MS: u64 = 1_000;
/// The initiator re-checks every shared room this often (a 46-byte message when in sync), ms.
pub const ANTI_ENTROPY_MS: u64 = 60_000;
/// Ids remembered per peer as "already has it" before the memory is reset.
const KNOWN_CAP: usize = 200_000;
/// Messages awaited after an `IHave`, from all peers together. Each entry is about 100 bytes
/// and lives one `ihave_timeout_ms` plus one `graft_retry_ms` per announcer: 50,000 is far
/// more than an honest network announces in that time, and bounds the table to ≈ 5 MB.
pub const MISSING_CAP: usize = 50_000;
/// Pending repairs first announced by one peer. An honest peer announces each new message
/// once; 4,096 unanswered announcements in one `ihave_timeout_ms` is far beyond any honest
/// burst, and 12 flooding peers cannot fill [`MISSING_CAP`] for the others.
pub const MISSING_PER_PEER: usize = 4_096;
/// Ids one peer may have waiting in its reply queue (messages it asked for by Graft or that a
/// reconciliation found it lacks, sent as its window allows). 65,536 ids are 2 MiB of memory;
/// a larger difference is sent in later catch-up exchanges, since an exchange only ever
/// lists what is still missing.
pub const REPLY_QUEUE_CAP: usize = 65_536;
/// Bytes of frames to one peer that may be written but not yet reported as drained
/// ([`Input::Drained`]) before queued replies wait. 1 MiB keeps a fast link busy (a few
/// hundred messages per round trip) while a peer that never reads costs at most this.
pub const REPLY_WINDOW_BYTES: u64 = 1024 * 1024;
/// Largest frame on the wire with its length prefix: a queued reply is released only while
/// it cannot take the window past [`REPLY_WINDOW_BYTES`].
const MAX_WIRE_FRAME: u64 = crate::codec::MAX_FRAME_BYTES as u64 + 4;
/// A reconciliation exchange with no frame either way for this long is abandoned: a new one
/// may start. Honest rounds follow each other within a round trip; 30 s is also below
/// [`ANTI_ENTROPY_MS`], so the periodic re-check always finds the previous exchange over.
pub const EXCHANGE_IDLE_MS: u64 = 30_000;
/// Own messages remembered per peer as "sent to it", so its acknowledgement (`IHave` from the
/// receiver) can be reported as [`Output::Acked`]. Acks come one round trip after the send;
/// 4,096 covers a full reply window of small messages. Older entries are forgotten first.
pub const SENT_MEMORY_CAP: usize = 4_096;
/// How often a node re-signs its neighbour list even if nothing changed, ms.
pub const TOPO_REFRESH_MS: u64 = 120_000;
/// A neighbour list not refreshed for this long is dropped (its node left), ms.
pub const TOPO_MAX_AGE_MS: u64 = 5 * TOPO_REFRESH_MS;

/// A storage failure, reported by a [`Storage`] implementation.
#[derive(Debug, Clone, thiserror::Error)]
#[error("storage: {0}")]
pub struct StorageError(pub String);

/// What the protocol needs from a message store.
pub trait Storage {
    /// Whether a message with this id is stored.
    fn has(&self, id: &MessageId) -> Result<bool, StorageError>;
    /// Stores a verified message; returns `false` if it was already there.
    fn insert(&mut self, msg: &Message) -> Result<bool, StorageError>;
    /// `(timestamp, id)` of every stored message in a room (any order).
    fn room_set(&self, room: &str) -> Result<Vec<(u64, MessageId)>, StorageError>;
    /// A stored message by id.
    fn get(&self, id: &MessageId) -> Result<Option<Message>, StorageError>;
    /// What `author` holds in `room`: number of messages and total size of their signed bytes
    /// (for the per-author quota, [`MAX_AUTHOR_MESSAGES`] / [`MAX_AUTHOR_BYTES`]). Called once
    /// per (room, author) while the protocol's usage cache holds the pair, so it may scan.
    fn author_usage(&self, room: &str, author: &NodeId) -> Result<(u64, u64), StorageError>;
    /// How many messages of `author` in `room` have a timestamp in `from..=to` (for the
    /// per-author window, [`AUTHOR_WINDOW_MESSAGES`]). Called for every new message under the
    /// quota, so it must be an index range count, not a scan.
    fn author_count_between(
        &self,
        room: &str,
        author: &NodeId,
        from: u64,
        to: u64,
    ) -> Result<u64, StorageError>;
    /// What every room with stored or evicted messages takes (for the carry quota,
    /// [`Config::carry_quota_bytes`]). Called every [`Input::Tick`], so it must not scan the
    /// messages.
    fn usage(&self) -> Result<Vec<RoomUsage>, StorageError>;
    /// Up to `limit` stored messages of `room` in `(timestamp, id)` order, strictly after
    /// `after` (the carry quota evicts oldest first).
    fn oldest(
        &self,
        room: &str,
        after: Option<(u64, MessageId)>,
        limit: usize,
    ) -> Result<Vec<Message>, StorageError>;
    /// Deletes these stored messages and keeps each one's `(timestamp, id)` as *evicted*:
    /// afterwards `has` is still true (a copy arriving again is a duplicate), `room_set` still
    /// lists it (a catch-up does not fetch it again), `get` returns `None` (nothing to serve)
    /// and `insert` refuses it. All or none.
    fn evict(&mut self, ids: &[MessageId]) -> Result<(), StorageError>;
    /// Forgets the evicted ids of `room` (the user joined it: a catch-up fetches its whole
    /// history again).
    fn forget_evicted(&mut self, room: &str) -> Result<(), StorageError>;
}

/// What one room takes in a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomUsage {
    /// The room.
    pub room: String,
    /// Stored messages.
    pub messages: u64,
    /// Their signed bytes.
    pub bytes: u64,
    /// Ids kept of messages evicted under the carry quota.
    pub evicted: u64,
}

/// An in-memory [`Storage`] for tests and simulators.
#[derive(Default, Debug, Clone)]
pub struct MemStorage {
    msgs: HashMap<MessageId, Message>,
    by_room: HashMap<String, BTreeSet<(u64, MessageId)>>,
    /// Per (room, author): `(timestamp, id)` of the messages and their total signed size.
    by_author: HashMap<(String, NodeId), AuthorEntries>,
    /// Signed bytes stored per room.
    room_bytes: HashMap<String, u64>,
    /// Evicted messages per room: `(timestamp, id)`.
    evicted: HashMap<String, BTreeSet<(u64, MessageId)>>,
    /// Evicted id → its room.
    evicted_ids: HashMap<MessageId, String>,
}

/// `(timestamp, id)` of one author's messages in one room, and their total signed size.
type AuthorEntries = (BTreeSet<(u64, MessageId)>, u64);

impl MemStorage {
    /// Number of stored messages.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }
}

impl Storage for MemStorage {
    fn has(&self, id: &MessageId) -> Result<bool, StorageError> {
        Ok(self.msgs.contains_key(id) || self.evicted_ids.contains_key(id))
    }
    fn insert(&mut self, msg: &Message) -> Result<bool, StorageError> {
        let id = msg.id();
        if self.msgs.contains_key(&id) || self.evicted_ids.contains_key(&id) {
            return Ok(false);
        }
        self.by_room
            .entry(msg.room.clone())
            .or_default()
            .insert((msg.timestamp, id));
        let size = msg.signed_bytes().len() as u64;
        let usage = self
            .by_author
            .entry((msg.room.clone(), msg.author))
            .or_default();
        usage.0.insert((msg.timestamp, id));
        usage.1 += size;
        *self.room_bytes.entry(msg.room.clone()).or_default() += size;
        self.msgs.insert(id, msg.clone());
        Ok(true)
    }
    fn room_set(&self, room: &str) -> Result<Vec<(u64, MessageId)>, StorageError> {
        Ok(self
            .by_room
            .get(room)
            .into_iter()
            .chain(self.evicted.get(room))
            .flat_map(|s| s.iter().copied())
            .collect())
    }
    fn get(&self, id: &MessageId) -> Result<Option<Message>, StorageError> {
        Ok(self.msgs.get(id).cloned())
    }
    fn author_usage(&self, room: &str, author: &NodeId) -> Result<(u64, u64), StorageError> {
        Ok(self
            .by_author
            .get(&(room.to_string(), *author))
            .map_or((0, 0), |(set, bytes)| (set.len() as u64, *bytes)))
    }
    fn author_count_between(
        &self,
        room: &str,
        author: &NodeId,
        from: u64,
        to: u64,
    ) -> Result<u64, StorageError> {
        if from > to {
            return Ok(0);
        }
        let lo = (from, MessageId([0; 32]));
        let hi = (to, MessageId([0xff; 32]));
        Ok(self
            .by_author
            .get(&(room.to_string(), *author))
            .map_or(0, |(set, _)| set.range(lo..=hi).count() as u64))
    }
    fn usage(&self) -> Result<Vec<RoomUsage>, StorageError> {
        let mut rooms: BTreeMap<&str, RoomUsage> = BTreeMap::new();
        for (room, set) in &self.by_room {
            let u = rooms.entry(room).or_default();
            u.messages = set.len() as u64;
            u.bytes = self.room_bytes.get(room).copied().unwrap_or(0);
        }
        for (room, set) in &self.evicted {
            rooms.entry(room).or_default().evicted = set.len() as u64;
        }
        Ok(rooms
            .into_iter()
            .filter(|(_, u)| u.messages + u.evicted > 0)
            .map(|(room, u)| RoomUsage {
                room: room.to_string(),
                ..u
            })
            .collect())
    }
    fn oldest(
        &self,
        room: &str,
        after: Option<(u64, MessageId)>,
        limit: usize,
    ) -> Result<Vec<Message>, StorageError> {
        let Some(set) = self.by_room.get(room) else {
            return Ok(Vec::new());
        };
        let bound = match after {
            Some(a) => std::ops::Bound::Excluded(a),
            None => std::ops::Bound::Unbounded,
        };
        Ok(set
            .range((bound, std::ops::Bound::Unbounded))
            .take(limit)
            .filter_map(|(_, id)| self.msgs.get(id).cloned())
            .collect())
    }
    fn evict(&mut self, ids: &[MessageId]) -> Result<(), StorageError> {
        for id in ids {
            let Some(msg) = self.msgs.remove(id) else {
                continue;
            };
            let key = (msg.timestamp, *id);
            let size = msg.signed_bytes().len() as u64;
            if let Some(set) = self.by_room.get_mut(&msg.room) {
                set.remove(&key);
            }
            if let Some(bytes) = self.room_bytes.get_mut(&msg.room) {
                *bytes = bytes.saturating_sub(size);
            }
            if let Some((set, bytes)) = self.by_author.get_mut(&(msg.room.clone(), msg.author)) {
                set.remove(&key);
                *bytes = bytes.saturating_sub(size);
            }
            self.evicted
                .entry(msg.room.clone())
                .or_default()
                .insert(key);
            self.evicted_ids.insert(*id, msg.room);
        }
        Ok(())
    }
    fn forget_evicted(&mut self, room: &str) -> Result<(), StorageError> {
        if let Some(set) = self.evicted.remove(room) {
            for (_, id) in set {
                self.evicted_ids.remove(&id);
            }
        }
        Ok(())
    }
}

/// How new messages spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Eager push along a self-pruning tree, lazy announcements elsewhere (default).
    Tree,
    /// Push to every connected room member (baseline).
    Flood,
}

/// Tunables.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Propagation strategy.
    pub propagation: Propagation,
    /// How long to wait for the tree after an `IHave` before grafting, ms.
    pub ihave_timeout_ms: u64,
    /// How long to wait for a graft's answer before trying the next announcer, ms.
    pub graft_retry_ms: u64,
    /// Most rooms carried for others without being joined (0 = carry nothing).
    pub max_carried_rooms: usize,
    /// Most bytes of messages kept for rooms this node has not joined (carried rooms, `dm`,
    /// rooms left), counting [`EVICTED_ID_BYTES`] per evicted id. Over it the oldest of those
    /// messages are evicted ([`evict`]).
    pub carry_quota_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            propagation: Propagation::Tree,
            ihave_timeout_ms: 400,
            graft_retry_ms: 250,
            max_carried_rooms: 64,
            carry_quota_bytes: DEFAULT_CARRY_QUOTA_BYTES,
        }
    }
}

/// A timer the driver must fire back as [`Input::Timer`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Timer {
    /// A message announced by `IHave` may still be missing.
    Missing(MessageId),
}

/// An event for the state machine.
#[derive(Debug, Clone)]
pub enum Input {
    /// A connection to `peer` is up (its id is TLS-authenticated).
    Connected {
        /// Peer id.
        peer: NodeId,
    },
    /// The connection to `peer` is gone.
    Disconnected {
        /// Peer id.
        peer: NodeId,
    },
    /// A frame arrived from `peer`.
    Frame {
        /// Peer id.
        peer: NodeId,
        /// The decoded frame.
        frame: Frame,
    },
    /// The local user published a message, already stored durably by the driver.
    Published(Message),
    /// The local user joined a room (normalised name).
    Joined(String),
    /// The local user left a room.
    Left(String),
    /// The local display name changed.
    Renamed(String),
    /// A timer set by [`Output::SetTimer`] is due.
    Timer(Timer),
    /// This node's own, freshly signed neighbour list (the driver builds it when connections
    /// change and refreshes it every [`TOPO_REFRESH_MS`]).
    LocalTopology(TopoRecord),
    /// Housekeeping, about every few seconds: forgets topology records of nodes that went
    /// silent.
    Tick,
    /// The driver wrote `bytes` of frames for `peer` to the network (each frame counted as
    /// its encoded body plus the 4-byte length prefix, as [`Frame::encode_prefixed`]). Gives
    /// back reply window ([`REPLY_WINDOW_BYTES`]) so that queued replies go out. Local only:
    /// nothing on the wire.
    Drained {
        /// Peer id.
        peer: NodeId,
        /// Bytes written since the last report.
        bytes: u64,
    },
}

/// An action for the driver.
#[derive(Debug, Clone)]
pub enum Output {
    /// Send `frame` to `peer`.
    Send {
        /// Destination.
        peer: NodeId,
        /// Frame.
        frame: Frame,
    },
    /// A message from the network was verified and stored for the first time.
    Stored {
        /// The message.
        message: Message,
        /// The peer it came from.
        from: NodeId,
        /// Hops it travelled from its author (1 = direct).
        hops: u8,
    },
    /// A peer said hello (driver records name and address).
    PeerHello {
        /// Peer id.
        peer: NodeId,
        /// Display name.
        name: String,
        /// Rooms the peer joined.
        rooms: Vec<String>,
        /// Port it listens on.
        listen_port: u16,
    },
    /// Something a peer sent was invalid and dropped; the connection stays up.
    Rejected {
        /// Offending peer.
        peer: NodeId,
        /// Why.
        reason: ProtoError,
    },
    /// The peer broke the protocol so badly (identity mismatch, wrong version) that the
    /// connection must be closed.
    Close {
        /// Peer.
        peer: NodeId,
        /// Why, for logs.
        reason: String,
    },
    /// Fire [`Input::Timer`] with `timer` at time `at` (ms, same clock as the inputs).
    SetTimer {
        /// When.
        at: u64,
        /// What.
        timer: Timer,
    },
    /// The peer finished offering a room (its last `Have` arrived and every id it lacks on our
    /// side has been asked for): from now on the two agree on that room up to in-flight pulls.
    Synced {
        /// Peer.
        peer: NodeId,
        /// Room.
        room: String,
        /// True when this node's own step found the sets equal: the peer's last catch-up
        /// message carried fingerprints of the room that match ours, so it knows every id we
        /// hold there. False when the peer said so (`ReconDone`): a claim anyone can make
        /// without knowing anything, never evidence of what the peer holds.
        proven: bool,
    },
    /// The network graph changed (a newer neighbour list arrived or one expired).
    TopologyChanged,
    /// Peer exchange ([`exchange`]): dial `node` (not connected, learned from neighbour
    /// lists) at these addresses. Not persistent: a failed dial is not retried.
    Dial {
        /// The node to reach (the driver checks its TLS identity).
        node: NodeId,
        /// Where its neighbours reach it.
        addrs: Vec<std::net::SocketAddrV4>,
    },
    /// The storage failed; the driver logs it.
    StorageFailed(StorageError),
    /// Something a peer sent was valid but over a budget or cap, or out of context, and was
    /// dropped (and counted in [`Counters::drops`]); the connection stays up. The driver may
    /// log it (rate-limited) and show the counts.
    Dropped {
        /// Peer.
        peer: NodeId,
        /// Why.
        reason: DropReason,
    },
    /// The peer acknowledged (by `IHave`) messages written by this node that this node itself
    /// sent it as `Msg`: the driver may count them as held by that peer. Ids the peer
    /// announces without having received them from us are never reported.
    Acked {
        /// Peer.
        peer: NodeId,
        /// Our own messages it acknowledged.
        ids: Vec<MessageId>,
    },
}

#[derive(Default)]
struct PeerState {
    hello: bool,
    rooms: BTreeSet<String>,
    /// Rooms in which this link is lazy (announce only). Absent = eager.
    lazy: HashSet<String>,
    /// Ids the peer is known to hold (it sent, offered or announced them, or we sent them).
    known: HashSet<MessageId>,
    /// Request budgets.
    buckets: Buckets,
    /// Open or recently finished reconciliation exchanges, per room.
    exchanges: HashMap<String, Exchange>,
    /// Messages it asked for, waiting for window (ids, oldest first), and the same as a set.
    replies: VecDeque<MessageId>,
    queued: HashSet<MessageId>,
    /// Bytes of frames emitted for it and not yet reported drained.
    in_flight: u64,
    /// Own messages sent to it as `Msg`, not yet acknowledged (oldest first), and as a set.
    sent_own: VecDeque<MessageId>,
    sent_own_set: HashSet<MessageId>,
}

/// One reconciliation exchange with a peer for a room.
#[derive(Debug, Clone, Copy)]
struct Exchange {
    /// The initiator's salt: every message of the exchange carries it.
    salt: recon::Salt,
    /// Last frame either way, ms.
    last: u64,
    /// A ReconDone was sent or received: the room is synced; stragglers of the same exchange
    /// are still answered, and a new exchange may start.
    finished: bool,
    /// `ReconDone` frames received after it finished. One is a race an honest pair can have;
    /// more are forged claims (dropped and counted as `NoExchange`).
    late_dones: u8,
}

impl Exchange {
    fn stale(&self, now: u64) -> bool {
        now.saturating_sub(self.last) >= EXCHANGE_IDLE_MS
    }
}

impl PeerState {
    fn learn(&mut self, id: MessageId) {
        if self.known.len() >= KNOWN_CAP {
            self.known.clear();
        }
        self.known.insert(id);
    }

    /// Remembers that we sent it our own message `id`, forgetting the oldest past the cap.
    fn sent_own(&mut self, id: MessageId) {
        if !self.sent_own_set.insert(id) {
            return;
        }
        self.sent_own.push_back(id);
        while self.sent_own.len() > SENT_MEMORY_CAP {
            if let Some(old) = self.sent_own.pop_front() {
                self.sent_own_set.remove(&old);
            }
        }
    }

    /// Whether the room is in the peer's announced list.
    fn shares(&self, room: &str) -> bool {
        self.rooms.contains(room)
    }
}

/// Counters for status displays and the simulator.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Messages received that were new and stored.
    pub received: u64,
    /// Message payloads received that were already stored.
    pub duplicates: u64,
    /// Frames or messages rejected as invalid.
    pub rejected: u64,
    /// Message payloads sent.
    pub sent: u64,
    /// Grafts sent (repairs after a missed tree delivery).
    pub grafts: u64,
    /// Prunes sent.
    pub prunes: u64,
    /// Messages of rooms not joined evicted under the carry quota.
    pub evicted: u64,
    /// Frames (or requests) dropped without being invalid, per reason.
    pub drops: Drops,
}

/// The protocol state of one node.
pub struct Protocol {
    me: NodeId,
    name: String,
    listen_port: u16,
    config: Config,
    now: u64,
    /// Wall-clock time (ms since the Unix epoch) given by the driver; 0 = unknown.
    wall_now: u64,
    /// Rooms the user joined.
    rooms: BTreeSet<String>,
    /// Rooms carried for others (store-and-forward): learned from peers, not joined.
    carried: BTreeSet<String>,
    /// The carry quota is used up.
    carry_full: bool,
    peers: BTreeMap<NodeId, PeerState>,
    missing: Pending,
    /// When a reconciliation last started per (peer, room).
    last_recon: HashMap<(NodeId, String), u64>,
    recon_seq: u64,
    graph: Graph,
    counters: Counters,
    /// Authors the local user blocked: their messages are neither stored nor served.
    blocked: HashSet<NodeId>,
    /// Messages of blocked authors not stored.
    blocked_drops: u64,
    /// Per-author and per-peer storage quotas (quota.rs).
    quota: quota::QuotaState,
    /// Admission of neighbour lists (topology.rs).
    topo_guard: topology::TopoGuard,
    /// Demand for carried rooms (carry.rs).
    demand: carry::Demand,
    /// Peer exchange (exchange.rs).
    exchange: exchange::Exchange,
}

impl Protocol {
    /// A node with id `me`, display `name`, listening on `listen_port`, member of `rooms`.
    pub fn new(
        me: NodeId,
        name: String,
        listen_port: u16,
        rooms: impl IntoIterator<Item = String>,
    ) -> Self {
        Self::with_config(me, name, listen_port, rooms, Config::default())
    }

    /// Like [`Protocol::new`] with explicit tunables.
    pub fn with_config(
        me: NodeId,
        name: String,
        listen_port: u16,
        rooms: impl IntoIterator<Item = String>,
        config: Config,
    ) -> Self {
        Protocol {
            me,
            name,
            listen_port,
            config,
            now: 0,
            wall_now: 0,
            rooms: rooms.into_iter().collect(),
            carried: BTreeSet::new(),
            carry_full: false,
            peers: BTreeMap::new(),
            missing: Pending::default(),
            last_recon: HashMap::new(),
            recon_seq: 0,
            graph: Graph::default(),
            counters: Counters::default(),
            blocked: HashSet::new(),
            blocked_drops: 0,
            quota: quota::QuotaState::default(),
            topo_guard: topology::TopoGuard::default(),
            demand: carry::Demand::default(),
            exchange: exchange::Exchange::default(),
        }
    }

    /// Messages a peer has not confirmed holding although a reconciliation may say it agrees:
    /// our own messages sent to it and not acknowledged yet, and replies still queued for it.
    /// A finished exchange proves possession of everything else in the room, never of these
    /// (a peer can "agree" by claiming an empty set and then read nothing).
    pub fn unconfirmed(&self, peer: &NodeId) -> Vec<MessageId> {
        self.peers
            .get(peer)
            .map(|p| {
                p.sent_own_set
                    .iter()
                    .chain(p.queued.iter())
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Blocks (local moderation) or unblocks an author: a blocked author's messages are not
    /// stored when they arrive (counted, [`Protocol::blocked_drops`]), nor served to peers from
    /// what is already stored, so this node stops relaying and carrying them. Our own id cannot
    /// be blocked.
    pub fn set_blocked(&mut self, author: NodeId, blocked: bool) {
        if blocked && author != self.me {
            self.blocked.insert(author);
        } else {
            self.blocked.remove(&author);
        }
    }

    /// Messages of blocked authors that arrived and were not stored.
    pub fn blocked_drops(&self) -> u64 {
        self.blocked_drops
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.me
    }
    /// Rooms joined.
    pub fn rooms(&self) -> impl Iterator<Item = &String> {
        self.rooms.iter()
    }
    /// Rooms carried for others (not joined).
    pub fn carried(&self) -> impl Iterator<Item = &String> {
        self.carried.iter()
    }
    fn member(&self, room: &str) -> bool {
        self.rooms.contains(room)
            || (self.carried.contains(room) && (!self.carry_full || room == crate::dm::DM_ROOM))
    }
    /// Joined and carried rooms: what this node announces, accepts and relays.
    fn served(&self) -> BTreeSet<String> {
        let mut s = self.rooms.clone();
        s.extend(self.carried.iter().filter(|r| self.member(r)).cloned());
        s
    }
    /// Connected peers that said hello.
    pub fn connected(&self) -> impl Iterator<Item = &NodeId> {
        self.peers.iter().filter(|(_, p)| p.hello).map(|(id, _)| id)
    }
    /// Rooms a connected peer joined.
    pub fn peer_rooms(&self, peer: &NodeId) -> Vec<String> {
        self.peers
            .get(peer)
            .map(|p| p.rooms.iter().cloned().collect())
            .unwrap_or_default()
    }
    /// Peers this node pushes `room` messages to eagerly (its tree links).
    pub fn eager_peers(&self, room: &str) -> Vec<NodeId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.hello && p.rooms.contains(room) && !p.lazy.contains(room))
            .map(|(id, _)| *id)
            .collect()
    }
    /// The network graph from the neighbour lists received (and our own).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }
    /// Counters since start.
    pub fn counters(&self) -> Counters {
        self.counters
    }
    /// Tells the protocol the wall-clock time (ms since the Unix epoch), for the
    /// [`MAX_FUTURE_MS`] rule. Without it (0) timestamps are not checked against a clock.
    pub fn set_wall_clock(&mut self, ms: u64) {
        self.wall_now = ms;
    }
    /// Counts an invalid frame the driver could not even decode.
    pub fn count_rejected(&mut self) {
        self.counters.rejected += 1;
    }
    /// Replies waiting for `peer`'s window (ids).
    pub fn reply_queue_len(&self, peer: &NodeId) -> usize {
        self.peers.get(peer).map_or(0, |p| p.replies.len())
    }
    /// Bytes of frames emitted for `peer` and not yet reported drained.
    pub fn in_flight(&self, peer: &NodeId) -> u64 {
        self.peers.get(peer).map_or(0, |p| p.in_flight)
    }
    /// Messages announced to us that we still await (pending repairs).
    pub fn pending_repairs(&self) -> usize {
        self.missing.len()
    }
    /// Reconciliation exchanges tracked with `peer` (open or finished).
    pub fn exchanges_with(&self, peer: &NodeId) -> usize {
        self.peers.get(peer).map_or(0, |p| p.exchanges.len())
    }

    fn hello(&self) -> Frame {
        Frame::Hello {
            version: PROTOCOL_VERSION,
            node: self.me,
            name: self.name.clone(),
            rooms: self.served().into_iter().collect(),
            listen_port: self.listen_port,
        }
    }

    /// Feeds one event at time `now` (ms); returns the actions to perform, in order.
    pub fn handle(&mut self, store: &mut dyn Storage, input: Input, now: u64) -> Vec<Output> {
        self.now = self.now.max(now);
        let mut out = Vec::new();
        let tick = matches!(input, Input::Tick);
        if matches!(input, Input::Connected { .. } | Input::Disconnected { .. }) {
            self.exchange_due();
        }
        match input {
            Input::Connected { peer } => {
                self.peers.insert(peer, PeerState::default());
                // A new connection is a new conversation: its first reconciliation is welcome.
                self.last_recon.retain(|(p, _), _| *p != peer);
                out.push(Output::Send {
                    peer,
                    frame: self.hello(),
                });
            }
            Input::Disconnected { peer } => {
                self.peers.remove(&peer);
                self.last_recon.retain(|(p, _), _| *p != peer);
            }
            Input::Frame { peer, frame } => self.on_frame(store, peer, frame, &mut out),
            Input::Published(msg) => self.push(&msg, None, Some(DEFAULT_HOPS), &mut out),
            Input::Joined(room) => {
                self.carried.remove(&room);
                // Its whole history is wanted now, including what was evicted as a carrier.
                if let Err(e) = store.forget_evicted(&room) {
                    out.push(Output::StorageFailed(e));
                }
                if self.rooms.insert(room.clone()) {
                    self.announce_rooms(&mut out);
                    let sharing: Vec<NodeId> = self
                        .peers
                        .iter()
                        .filter(|(_, p)| p.hello && p.rooms.contains(&room))
                        .map(|(id, _)| *id)
                        .collect();
                    for peer in sharing {
                        self.offer(store, peer, &room, &mut out);
                    }
                }
            }
            Input::Left(room) => {
                // Its messages stay stored and the node keeps carrying the room for others.
                if self.rooms.remove(&room) {
                    self.carry_left(room);
                    self.announce_rooms(&mut out);
                }
            }
            Input::Renamed(name) => {
                if name != self.name {
                    self.name = name;
                    // Peers already connected heard the old name in our first Hello: a second
                    // Hello updates it (see `on_frame`).
                    let mut peers: Vec<NodeId> = self.peers.keys().copied().collect();
                    peers.sort();
                    for peer in peers {
                        out.push(Output::Send {
                            peer,
                            frame: self.hello(),
                        });
                    }
                }
            }
            Input::Timer(Timer::Missing(id)) => self.on_missing_timer(store, id, &mut out),
            Input::LocalTopology(rec) => {
                if rec.node == self.me && self.graph.update(rec.clone(), self.now) {
                    self.flood_topology(&rec, None, &mut out);
                    out.push(Output::TopologyChanged);
                }
            }
            Input::Tick => {
                if self.graph.expire(self.now, TOPO_MAX_AGE_MS, &self.me) {
                    out.push(Output::TopologyChanged);
                }
                let now = self.now;
                for p in self.peers.values_mut() {
                    p.exchanges.retain(|_, x| !x.stale(now));
                }
                self.enforce_carry_quota(store, &mut out);
                self.carry_tick(store, &mut out);
                self.topo_tick(&mut out);
                self.anti_entropy(store, &mut out);
            }
            Input::Drained { peer, bytes } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.in_flight = p.in_flight.saturating_sub(bytes);
                }
            }
        }
        if out.iter().any(|o| matches!(o, Output::TopologyChanged)) {
            self.exchange_due();
        }
        self.exchange_peers(tick, &mut out);
        self.account(&out);
        self.pump_replies(store, &mut out);
        out
    }

    /// Charges every frame in `out` to its peer's window and remembers the own messages sent.
    fn account(&mut self, out: &[Output]) {
        for o in out {
            if let Output::Send { peer, frame } = o {
                if let Some(p) = self.peers.get_mut(peer) {
                    p.in_flight = p.in_flight.saturating_add(wire_len(frame));
                    if let Frame::Msg { message, .. } = frame {
                        if message.author == self.me {
                            p.sent_own(message.id());
                        }
                    }
                }
            }
        }
    }

    /// Sends queued replies as `Msg`, oldest first, while each peer's window allows.
    fn pump_replies(&mut self, store: &mut dyn Storage, out: &mut Vec<Output>) {
        let waiting: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.replies.is_empty())
            .map(|(id, _)| *id)
            .collect();
        for peer in waiting {
            while let Some(p) = self.peers.get(&peer) {
                if p.in_flight > 0 && p.in_flight + MAX_WIRE_FRAME > REPLY_WINDOW_BYTES {
                    break;
                }
                let Some(id) = p.replies.front().copied() else {
                    break;
                };
                let msg = store.get(&id);
                let sendable = match &msg {
                    Ok(Some(m)) => {
                        self.member(&m.room)
                            && p.shares(&m.room)
                            && !self.blocked.contains(&m.author)
                    }
                    _ => false,
                };
                let Some(p) = self.peers.get_mut(&peer) else {
                    break;
                };
                p.replies.pop_front();
                p.queued.remove(&id);
                match msg {
                    Ok(Some(message)) if sendable => {
                        p.learn(id);
                        let frame = Frame::Msg {
                            hops: DEFAULT_HOPS,
                            message,
                        };
                        p.in_flight = p.in_flight.saturating_add(wire_len(&frame));
                        if let Frame::Msg { message, .. } = &frame {
                            if message.author == self.me {
                                p.sent_own(id);
                            }
                        }
                        self.counters.sent += 1;
                        out.push(Output::Send { peer, frame });
                    }
                    Ok(_) => {}
                    Err(e) => out.push(Output::StorageFailed(e)),
                }
            }
        }
    }

    /// Counts a drop and reports it.
    fn drop_frame(&mut self, peer: NodeId, reason: DropReason, out: &mut Vec<Output>) {
        self.counters.drops.add(reason);
        out.push(Output::Dropped { peer, reason });
    }

    /// Tells every connected peer our rooms. Also peers whose hello has not arrived yet: our
    /// own hello went out on connect and may list stale rooms.
    fn announce_rooms(&self, out: &mut Vec<Output>) {
        let rooms: Vec<String> = self.served().into_iter().collect();
        for peer in self.peers.keys() {
            out.push(Output::Send {
                peer: *peer,
                frame: Frame::Rooms {
                    rooms: rooms.clone(),
                },
            });
        }
    }

    /// Starts reconciling `room` with `peer` if we are the initiator of this pair (the lower
    /// id; the other side answers). `compact` is the cheap periodic check (46 bytes when the
    /// sets are equal).
    fn offer(&mut self, store: &mut dyn Storage, peer: NodeId, room: &str, out: &mut Vec<Output>) {
        self.start_recon(store, peer, room, false, out);
    }

    fn start_recon(
        &mut self,
        store: &mut dyn Storage,
        peer: NodeId,
        room: &str,
        compact: bool,
        out: &mut Vec<Output>,
    ) {
        if self.me > peer {
            return;
        }
        let now = self.now;
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        // One exchange per (peer, room) at a time; the peer would refuse a second one, and
        // one started within RECON_MIN_GAP_MS of the last.
        if p.exchanges
            .get(room)
            .is_some_and(|x| !x.finished && !x.stale(now))
            || self
                .last_recon
                .get(&(peer, room.to_string()))
                .is_some_and(|t| now.saturating_sub(*t) < RECON_MIN_GAP_MS)
        {
            return;
        }
        let set = match store.room_set(room) {
            Ok(set) => set,
            Err(e) => {
                out.push(Output::StorageFailed(e));
                return;
            }
        };
        self.recon_seq += 1;
        self.last_recon.insert((peer, room.to_string()), self.now);
        let salt = session_salt(&self.me, &peer, room, self.now, self.recon_seq);
        if let Some(p) = self.peers.get_mut(&peer) {
            p.exchanges.insert(
                room.to_string(),
                Exchange {
                    salt,
                    last: now,
                    finished: false,
                    late_dones: 0,
                },
            );
        }
        let msg = if compact {
            recon::start_compact(&set, salt)
        } else {
            recon::start_with_salt(&set, salt)
        };
        out.push(Output::Send {
            peer,
            frame: Frame::Recon {
                room: room.to_string(),
                msg,
            },
        });
    }

    fn on_recon(
        &mut self,
        store: &mut dyn Storage,
        peer: NodeId,
        room: String,
        msg: &recon::ReconMsg,
        out: &mut Vec<Output>,
    ) {
        if !self.shared(peer, &room) {
            self.drop_frame(peer, DropReason::UnknownRoom, out);
            return;
        }
        if !self.take_budget(peer, Budget::Recon, 1) {
            self.drop_frame(peer, DropReason::RateLimited(Budget::Recon), out);
            return;
        }
        if let Err(reason) = self.track_exchange(peer, &room, msg) {
            self.drop_frame(peer, reason, out);
            return;
        }
        let set = match store.room_set(&room) {
            Ok(set) => set,
            Err(e) => {
                out.push(Output::StorageFailed(e));
                return;
            }
        };
        let step = match recon::step(&set, msg) {
            Ok(s) => s,
            Err(e) => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.exchanges.remove(&room);
                }
                self.counters.rejected += 1;
                out.push(Output::Rejected {
                    peer,
                    reason: ProtoError::Recon(e.to_string()),
                });
                return;
            }
        };
        let done = step.replies.is_empty();
        for reply in step.replies {
            out.push(Output::Send {
                peer,
                frame: Frame::Recon {
                    room: room.clone(),
                    msg: reply,
                },
            });
        }
        self.send_wanted(peer, &room, step.we_have_they_lack, out);
        if done {
            out.push(Output::Send {
                peer,
                frame: Frame::ReconDone { room: room.clone() },
            });
            if self.finish_exchange(peer, &room) {
                out.push(Output::Synced {
                    peer,
                    room,
                    proven: true,
                });
            }
        }
    }

    /// Checks a Recon against the exchanges we track with `peer` and records it: a round 0
    /// opens one (unless one is running, or the last started under RECON_MIN_GAP_MS ago),
    /// a later round must belong to the open (or just finished) exchange of the same salt.
    fn track_exchange(
        &mut self,
        peer: NodeId,
        room: &str,
        msg: &recon::ReconMsg,
    ) -> Result<(), DropReason> {
        let now = self.now;
        let key = (peer, room.to_string());
        let too_soon = self
            .last_recon
            .get(&key)
            .is_some_and(|t| now.saturating_sub(*t) < RECON_MIN_GAP_MS);
        let p = self.peers.get_mut(&peer).ok_or(DropReason::NoExchange)?;
        if msg.round == 0 {
            if !p.buckets.get(Budget::ReconStart).take(now) {
                return Err(DropReason::RateLimited(Budget::ReconStart));
            }
            if p.exchanges
                .get(room)
                .is_some_and(|x| !x.finished && !x.stale(now))
            {
                return Err(DropReason::ExchangeBusy);
            }
            if too_soon {
                return Err(DropReason::RateLimited(Budget::ReconStart));
            }
            p.exchanges.insert(
                room.to_string(),
                Exchange {
                    salt: msg.salt,
                    last: now,
                    finished: false,
                    late_dones: 0,
                },
            );
            self.last_recon.insert(key, now);
            return Ok(());
        }
        match p.exchanges.get_mut(room) {
            Some(x) if x.salt == msg.salt && !x.stale(now) => {
                x.last = now;
                Ok(())
            }
            _ => Err(DropReason::NoExchange),
        }
    }

    /// Marks the exchange for (peer, room) finished; true if it was open (report Synced).
    fn finish_exchange(&mut self, peer: NodeId, room: &str) -> bool {
        let now = self.now;
        match self
            .peers
            .get_mut(&peer)
            .and_then(|p| p.exchanges.get_mut(room))
        {
            Some(x) if !x.finished => {
                x.finished = true;
                x.last = now;
                true
            }
            _ => false,
        }
    }

    /// A `ReconDone`: the peer's side of a tracked exchange is complete.
    fn on_recon_done(&mut self, peer: NodeId, room: String, out: &mut Vec<Output>) {
        if !self.take_budget(peer, Budget::Recon, 1) {
            self.drop_frame(peer, DropReason::RateLimited(Budget::Recon), out);
            return;
        }
        let now = self.now;
        let open = self
            .peers
            .get(&peer)
            .and_then(|p| p.exchanges.get(&room))
            .is_some_and(|x| !x.stale(now));
        if !open {
            self.drop_frame(peer, DropReason::NoExchange, out);
            return;
        }
        if self.finish_exchange(peer, &room) {
            if self.member(&room) {
                out.push(Output::Synced {
                    peer,
                    room,
                    proven: false,
                });
            }
            return;
        }
        // The exchange had already finished: a repeated ReconDone claims nothing new.
        let late = self
            .peers
            .get_mut(&peer)
            .and_then(|p| p.exchanges.get_mut(&room))
            .map(|x| {
                x.late_dones = x.late_dones.saturating_add(1);
                x.late_dones
            });
        if late.is_some_and(|n| n > 1) {
            self.drop_frame(peer, DropReason::NoExchange, out);
        }
    }

    /// An `IHave`: learn what the peer holds, await what we lack, report acknowledgements of
    /// our own messages we sent it.
    fn on_ihave(
        &mut self,
        store: &mut dyn Storage,
        peer: NodeId,
        room: &str,
        ids: Vec<MessageId>,
        out: &mut Vec<Output>,
    ) {
        if !self.shared(peer, room) {
            self.drop_frame(peer, DropReason::UnknownRoom, out);
            return;
        }
        let ids = self.budgeted_ids(peer, Budget::IHave, ids, out);
        let mut acked = Vec::new();
        let mut full = false;
        for id in ids {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.learn(id);
                if p.sent_own_set.remove(&id) {
                    acked.push(id);
                }
            }
            match store.has(&id) {
                Ok(true) => {}
                Ok(false) => full |= !self.await_missing(id, room, peer, out),
                Err(e) => out.push(Output::StorageFailed(e)),
            }
        }
        if full {
            self.drop_frame(peer, DropReason::PendingRepairsFull, out);
        }
        if !acked.is_empty() {
            out.push(Output::Acked { peer, ids: acked });
        }
    }

    /// Both sides serve `room`: we do, and the peer announced it.
    fn shared(&self, peer: NodeId, room: &str) -> bool {
        self.member(room) && self.peers.get(&peer).is_some_and(|p| p.shares(room))
    }

    /// Takes `n` tokens of `budget` from `peer`'s buckets; false (nothing taken) if short.
    fn take_budget(&mut self, peer: NodeId, budget: Budget, n: u64) -> bool {
        let now = self.now;
        let Some(p) = self.peers.get_mut(&peer) else {
            return false;
        };
        let b = p.buckets.get(budget);
        if b.available(now) < n {
            return false;
        }
        b.take_up_to(now, n) == n
    }

    /// The first ids of `ids` that `peer`'s `budget` pays for; a drop is counted if some
    /// were cut.
    fn budgeted_ids(
        &mut self,
        peer: NodeId,
        budget: Budget,
        mut ids: Vec<MessageId>,
        out: &mut Vec<Output>,
    ) -> Vec<MessageId> {
        let now = self.now;
        let granted = self.peers.get_mut(&peer).map_or(0, |p| {
            p.buckets.get(budget).take_up_to(now, ids.len() as u64)
        });
        if (granted as usize) < ids.len() {
            ids.truncate(granted as usize);
            self.drop_frame(peer, DropReason::RateLimited(budget), out);
        }
        ids
    }

    /// Normalises a peer's room list, dropping invalid names.
    fn clean_rooms(rooms: Vec<String>) -> BTreeSet<String> {
        rooms
            .into_iter()
            .filter_map(|r| normalize_room(&r).ok().filter(|n| *n == r))
            .collect()
    }

    fn set_lazy(&mut self, peer: NodeId, room: &str, lazy: bool) {
        if let Some(p) = self.peers.get_mut(&peer) {
            if lazy {
                // Bounded by the peer's announced rooms.
                if p.shares(room) {
                    p.lazy.insert(room.to_string());
                }
            } else {
                p.lazy.remove(room);
            }
        }
    }

    /// The rooms `peer` serves now (a `Rooms` frame or a repeated `Hello`): carry what it
    /// carries, offer the rooms newly shared.
    fn on_rooms(
        &mut self,
        store: &mut dyn Storage,
        peer: NodeId,
        rooms: Vec<String>,
        out: &mut Vec<Output>,
    ) {
        let rooms = Self::clean_rooms(rooms);
        let Some(old) = self.peers.get(&peer).map(|p| p.rooms.clone()) else {
            return;
        };
        self.carry(&rooms, Some(peer), store, out);
        let newly: Vec<String> = rooms
            .iter()
            .filter(|r| !old.contains(*r) && self.member(r))
            .cloned()
            .collect();
        if let Some(p) = self.peers.get_mut(&peer) {
            p.lazy.retain(|r| rooms.contains(r));
            p.rooms = rooms;
        }
        for room in newly {
            self.offer(store, peer, &room, out);
        }
    }

    fn on_frame(
        &mut self,
        store: &mut dyn Storage,
        peer: NodeId,
        frame: Frame,
        out: &mut Vec<Output>,
    ) {
        let Some(state) = self.peers.get(&peer) else {
            return; // frame raced a disconnect
        };
        let had_hello = state.hello;
        if !had_hello && !matches!(frame, Frame::Hello { .. }) {
            self.counters.rejected += 1;
            out.push(Output::Close {
                peer,
                reason: format!("{} before hello", frame.kind()),
            });
            return;
        }
        match frame {
            Frame::Hello {
                version,
                node,
                name,
                rooms,
                listen_port,
            } => {
                if had_hello {
                    // An update (the peer was renamed): same version and identity required.
                    if version != PROTOCOL_VERSION || node != peer {
                        self.counters.rejected += 1;
                        out.push(Output::Rejected {
                            peer,
                            reason: ProtoError::Malformed("second hello changes version or id"),
                        });
                        return;
                    }
                    if !self.take_budget(peer, Budget::Rooms, 1) {
                        self.drop_frame(peer, DropReason::RateLimited(Budget::Rooms), out);
                        return;
                    }
                    self.on_rooms(store, peer, rooms.clone(), out);
                    out.push(Output::PeerHello {
                        peer,
                        name,
                        rooms: Self::clean_rooms(rooms).into_iter().collect(),
                        listen_port,
                    });
                    return;
                }
                if version != PROTOCOL_VERSION {
                    out.push(Output::Close {
                        peer,
                        reason: format!("protocol version {version}"),
                    });
                    return;
                }
                if node != peer {
                    out.push(Output::Close {
                        peer,
                        reason: format!("hello id {} does not match TLS identity", node.to_hex()),
                    });
                    return;
                }
                let rooms = Self::clean_rooms(rooms);
                self.note_connected(peer);
                self.carry(&rooms, Some(peer), store, out);
                let shared: Vec<String> = rooms.intersection(&self.served()).cloned().collect();
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.hello = true;
                    p.rooms = rooms.clone();
                }
                out.push(Output::PeerHello {
                    peer,
                    name,
                    rooms: rooms.into_iter().collect(),
                    listen_port,
                });
                // The newcomer learns the nearest part of the known network at once (bounded);
                // the rest reaches it as neighbour lists refresh.
                Self::send_records(peer, self.hello_records(), out);
                for room in shared {
                    self.offer(store, peer, &room, out);
                }
            }
            Frame::Rooms { rooms } => {
                if self.take_budget(peer, Budget::Rooms, 1) {
                    self.on_rooms(store, peer, rooms, out);
                } else {
                    self.drop_frame(peer, DropReason::RateLimited(Budget::Rooms), out);
                }
            }
            Frame::Msg { hops, message } => self.on_message(store, peer, hops, message, out),
            Frame::Recon { room, msg } => self.on_recon(store, peer, room, &msg, out),
            Frame::ReconDone { room } => self.on_recon_done(peer, room, out),
            Frame::IHave { room, ids } => self.on_ihave(store, peer, &room, ids, out),
            Frame::Graft { room, ids } => {
                if !self.shared(peer, &room) {
                    self.drop_frame(peer, DropReason::UnknownRoom, out);
                    return;
                }
                let ids = self.budgeted_ids(peer, Budget::Graft, ids, out);
                if ids.is_empty() {
                    return;
                }
                self.set_lazy(peer, &room, false);
                self.send_wanted(peer, &room, ids, out);
            }
            Frame::Prune { room } => {
                if !self.shared(peer, &room) {
                    self.drop_frame(peer, DropReason::UnknownRoom, out);
                } else if self.take_budget(peer, Budget::Prune, 1) {
                    self.set_lazy(peer, &room, true);
                } else {
                    self.drop_frame(peer, DropReason::RateLimited(Budget::Prune), out);
                }
            }
            Frame::Topo(rec) => self.on_topo(peer, rec, out),
        }
    }

    /// Sends a (new) neighbour list to every peer but the one it came from.
    fn flood_topology(&self, rec: &TopoRecord, from: Option<NodeId>, out: &mut Vec<Output>) {
        for (pid, p) in &self.peers {
            if p.hello && Some(*pid) != from {
                out.push(Output::Send {
                    peer: *pid,
                    frame: Frame::Topo(rec.clone()),
                });
            }
        }
    }

    /// Periodic re-check of every shared room with every peer (initiator side only), so a
    /// pull lost to a dropped link or a crash is repaired without waiting for a reconnect.
    fn anti_entropy(&mut self, store: &mut dyn Storage, out: &mut Vec<Output>) {
        let served = self.served();
        let mut due = Vec::new();
        for (pid, p) in &self.peers {
            if !p.hello || self.me > *pid {
                continue;
            }
            for room in p.rooms.intersection(&served) {
                let last = self
                    .last_recon
                    .get(&(*pid, room.clone()))
                    .copied()
                    .unwrap_or(0);
                if self.now.saturating_sub(last) >= ANTI_ENTROPY_MS {
                    due.push((*pid, room.clone()));
                }
            }
        }
        for (peer, room) in due {
            self.start_recon(store, peer, &room, true, out);
        }
    }

    /// Answers a `Graft` or a reconciliation's wants: queues the ids for `peer`; they go out
    /// as `Msg` while its window allows (see `pump_replies`), each checked then to be a
    /// message we hold in a room both sides share. Past [`REPLY_QUEUE_CAP`] the rest is
    /// dropped and counted: a later catch-up exchange lists it again.
    fn send_wanted(
        &mut self,
        peer: NodeId,
        room: &str,
        ids: Vec<MessageId>,
        out: &mut Vec<Output>,
    ) {
        if !self.member(room) {
            return;
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let mut full = false;
        for id in ids {
            if p.queued.contains(&id) {
                continue;
            }
            if p.replies.len() >= REPLY_QUEUE_CAP {
                full = true;
                break;
            }
            p.queued.insert(id);
            p.replies.push_back(id);
        }
        if full {
            self.drop_frame(peer, DropReason::ReplyQueueFull, out);
        }
    }

    /// Awaits a message `peer` announced; false if the pending-repair table refused it.
    fn await_missing(
        &mut self,
        id: MessageId,
        room: &str,
        peer: NodeId,
        out: &mut Vec<Output>,
    ) -> bool {
        match self.missing.announce(id, room, peer) {
            pending::Announced::New => {
                out.push(Output::SetTimer {
                    at: self.now + self.config.ihave_timeout_ms,
                    timer: Timer::Missing(id),
                });
                true
            }
            pending::Announced::Known => true,
            pending::Announced::Full => false,
        }
    }

    fn on_missing_timer(&mut self, store: &mut dyn Storage, id: MessageId, out: &mut Vec<Output>) {
        if matches!(store.has(&id), Ok(true)) {
            self.missing.remove(&id);
            return;
        }
        let Some(m) = self.missing.get_mut(&id) else {
            return;
        };
        while let Some(peer) = m.announcers.pop_front() {
            if self.peers.get(&peer).is_some_and(|p| p.hello) {
                let room = m.room.clone();
                self.counters.grafts += 1;
                self.set_lazy(peer, &room, false);
                out.push(Output::Send {
                    peer,
                    frame: Frame::Graft {
                        room,
                        ids: vec![id],
                    },
                });
                out.push(Output::SetTimer {
                    at: self.now + self.config.graft_retry_ms,
                    timer: Timer::Missing(id),
                });
                return;
            }
        }
        self.missing.remove(&id);
    }

    fn on_message(
        &mut self,
        store: &mut dyn Storage,
        peer: NodeId,
        hops: u8,
        msg: Message,
        out: &mut Vec<Output>,
    ) {
        let id = msg.id();
        if let Some(p) = self.peers.get_mut(&peer) {
            p.learn(id);
        }
        if self.blocked.contains(&msg.author) {
            // Blocked here: not stored, so not relayed or carried either. Not "rejected": the
            // peer did nothing wrong by passing it on.
            self.blocked_drops += 1;
            return;
        }
        // The cheap checks first (room, duplicates, DM envelope, quotas, the relaying peer's
        // budget: none of them trusts the unverified fields beyond reading), so a flood that
        // the quotas refuse costs no signature check. Nothing is recorded for the author
        // before the signature has been verified and the message stored.
        if !self.member(&msg.room) {
            self.counters.rejected += 1;
            out.push(Output::Rejected {
                peer,
                reason: ProtoError::BadRoom(format!("{} (not joined)", msg.room)),
            });
            return;
        }
        if self.admit(store, peer, &msg, out).is_err() {
            return;
        }
        if let Err(reason) = msg.verify() {
            self.counters.rejected += 1;
            out.push(Output::Rejected { peer, reason });
            return;
        }
        if self.wall_now > 0 && msg.timestamp > self.wall_now + MAX_FUTURE_MS {
            self.counters.rejected += 1;
            out.push(Output::Rejected {
                peer,
                reason: ProtoError::FromTheFuture {
                    ahead_ms: msg.timestamp - self.wall_now,
                    limit_ms: MAX_FUTURE_MS,
                },
            });
            return;
        }
        match store.insert(&msg) {
            Ok(true) => {
                self.note_stored(&msg);
                self.counters.received += 1;
                self.missing.remove(&id);
                if msg.author == peer {
                    // Straight from its author: acknowledge, so the author can show "held by".
                    out.push(Output::Send {
                        peer,
                        frame: Frame::IHave {
                            room: msg.room.clone(),
                            ids: vec![id],
                        },
                    });
                }
                self.push(&msg, Some(peer), hops.checked_sub(1), out);
                let travelled = DEFAULT_HOPS.saturating_sub(hops).saturating_add(1);
                out.push(Output::Stored {
                    message: msg,
                    from: peer,
                    hops: travelled,
                });
            }
            Ok(false) => {
                self.counters.duplicates += 1;
                let room = msg.room;
                let eager = self
                    .peers
                    .get(&peer)
                    .is_some_and(|p| !p.lazy.contains(&room));
                if self.config.propagation == Propagation::Tree && eager {
                    self.counters.prunes += 1;
                    self.set_lazy(peer, &room, true);
                    out.push(Output::Send {
                        peer,
                        frame: Frame::Prune { room },
                    });
                }
            }
            Err(e) => out.push(Output::StorageFailed(e)),
        }
    }

    /// Spreads a new message: `Msg` over eager links (all links when flooding), `IHave` over
    /// lazy ones, skipping the sender and peers known to hold it. With no hop budget left
    /// (`hops == None`) every link gets `IHave` only.
    fn push(
        &mut self,
        msg: &Message,
        from: Option<NodeId>,
        hops: Option<u8>,
        out: &mut Vec<Output>,
    ) {
        let id = msg.id();
        let flood = self.config.propagation == Propagation::Flood;
        // A direct message goes first along the shortest known path to its recipient: the
        // next hop gets the message itself even over a lazy link.
        let toward = if msg.room == crate::dm::DM_ROOM {
            crate::dm::from_body(&msg.body).ok().and_then(|env| {
                self.graph
                    .path(&self.me, &env.recipient)
                    .and_then(|p| p.get(1).copied())
            })
        } else {
            None
        };
        for (pid, p) in &mut self.peers {
            if Some(*pid) == from
                || !p.hello
                || !p.rooms.contains(&msg.room)
                || p.known.contains(&id)
            {
                continue;
            }
            p.learn(id);
            let eager = flood || !p.lazy.contains(&msg.room) || toward == Some(*pid);
            if let (true, Some(hops)) = (eager, hops) {
                self.counters.sent += 1;
                out.push(Output::Send {
                    peer: *pid,
                    frame: Frame::Msg {
                        hops,
                        message: msg.clone(),
                    },
                });
            } else {
                out.push(Output::Send {
                    peer: *pid,
                    frame: Frame::IHave {
                        room: msg.room.clone(),
                        ids: vec![id],
                    },
                });
            }
        }
    }
}

/// Bytes a frame takes on the stream: body plus the 4-byte length prefix.
fn wire_len(frame: &Frame) -> u64 {
    frame.encode().len() as u64 + 4
}

/// A per-exchange salt for the short-id hash: both ids, the room, the time and a counter, so
/// no one can precompute short-id collisions for a future exchange.
fn session_salt(me: &NodeId, peer: &NodeId, room: &str, now: u64, seq: u64) -> recon::Salt {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"DNsalt1");
    h.update(me.0);
    h.update(peer.0);
    h.update(room.as_bytes());
    h.update(now.to_be_bytes());
    h.update(seq.to_be_bytes());
    let d = h.finalize();
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&d[..16]);
    salt
}

/// The carry-quota methods of a test [`Storage`] wrapper, passed to its `inner` store.
#[cfg(test)]
macro_rules! carry_storage_via_inner {
    () => {
        fn usage(&self) -> Result<Vec<RoomUsage>, StorageError> {
            self.inner.usage()
        }
        fn oldest(
            &self,
            room: &str,
            after: Option<(u64, MessageId)>,
            limit: usize,
        ) -> Result<Vec<Message>, StorageError> {
            self.inner.oldest(room, after, limit)
        }
        fn evict(&mut self, ids: &[MessageId]) -> Result<(), StorageError> {
            self.inner.evict(ids)
        }
        fn forget_evicted(&mut self, room: &str) -> Result<(), StorageError> {
            self.inner.forget_evicted(room)
        }
    };
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_evict;
#[cfg(test)]
mod tests_exchange;
#[cfg(test)]
mod tests_quota;
