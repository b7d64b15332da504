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
//!   A duplicate of a message still in flight does not prune a link that just delivered a
//!   first copy ([`Config::prune_hold_ms`]), so messages crossing a cycle at once cannot cut
//!   it twice. PlumTree's optimisation (*swap*): when the same lazy peer's `IHave` beats the
//!   tree's copy by more than [`Config::swap_threshold_ms`] for [`Config::swap_streak`]
//!   messages in a row, that link is made eager (a `Graft` with no ids) and the slow one lazy
//!   (`Prune`), at most once per [`Config::swap_cooldown_ms`].
//!   [`Propagation::Flood`] pushes to every link instead (the baseline the simulator compares
//!   against). In both modes `hops` drops by one per forward (0 = store, do not forward), the
//!   store is the seen-set, and peers known to hold a message are skipped.
//! - **Catch-up**: when two peers share a room (after hello, after either joins, and every
//!   [`ANTI_ENTROPY_MS`]) the lower id starts a set reconciliation ([`crate::recon`]); each
//!   side sends the messages the other lacks. One exchange per (peer, room) at a time, tracked
//!   by its salt; [`Output::Synced`] only when a tracked exchange completes.
//! - **Retry** (`retry.rs`): a room with own messages no peer is known to hold is reconciled
//!   again [`RETRY_FIRST_MS`] after the newest one was written, then at doubling intervals up
//!   to [`RETRY_MAX_MS`]; a new own message or a new connection starts over
//!   ([`Protocol::next_retry_at`]). A retry starts an exchange whichever id is lower; when two
//!   starts cross, the lower id's goes on.
//! - **Budgets** ([`budget`]): request-like frames are paid from per-peer token buckets, taken
//!   only for rooms both sides share; over budget they are dropped, counted
//!   ([`Counters::drops`]) and reported ([`Output::Dropped`]). Replies (grafts, catch-up) wait
//!   in a bounded per-peer queue and go out within a byte window the driver reopens with
//!   [`Input::Drained`].
//! - **Urgent first** ([`urgent`]): an urgent message within its author's budget goes
//!   before the ordinary ones waiting in a peer's reply queue.
//! - **Validation**: every received message is verified (signature, size, room and name rules)
//!   and must be for a room this node serves (joined or carried); anything else is rejected,
//!   reported and counted, and the connection keeps serving.
//! - **Bounded view** ([`view`]): the node dials peers it discovered ([`Input::Discovered`])
//!   only up to [`Config::active_target`] connections and closes a random one
//!   ([`Output::Disconnect`]) past [`Config::active_max`], so its connections stay few however
//!   many peers it hears of; propagation and catch-up run over these connections.
//! - **Bundles**: a message read from a bundle file ([`Input::Imported`], `crate::bundle`) is
//!   taken in like a `Msg` from a peer ([`BUNDLE_PEER`] stands for the file), then spread.
//!
//! Time ([`Time`]: monotonic ms from any origin, plus the wall clock) is given with each
//! input. Like quinn-proto, the protocol keeps its own timer table (pending repairs,
//! housekeeping): the driver asks [`Protocol::poll_timeout`] when to call
//! [`Protocol::handle_timeout`], so a simulator runs it exactly and nothing polls.
//!
//! ## Layout (state → rooms → propagation, as iroh-gossip layers state → topic → plumtree)
//! - `mod.rs`: the types (inputs, outputs, config, counters), the [`Protocol`] state and
//!   [`Protocol::handle`], which dispatches;
//! - `storage.rs`: the [`Storage`] trait and [`MemStorage`];
//! - `hello.rs`: Hello and room lists; `carry.rs`: which rooms are carried; `evict.rs`: the
//!   carry quota;
//! - `tree.rs`: eager push, `IHave`, prune, graft repairs, the paced reply queue, taking in a
//!   message;
//! - `catchup.rs`: when to reconcile, one exchange per (peer, room), what its end proves;
//! - `retry.rs`: retrying own messages no peer holds, with backoff;
//! - `topology.rs`: neighbour-list admission and flooding; `exchange.rs`: peer exchange;
//!   `view.rs`: the bounded active view and the passive list;
//! - `budget.rs`, `quota.rs`, `pending.rs`: per-peer budgets, storage quotas, pending repairs;
//! - `urgent.rs`: which urgent messages go first (per-author budget).

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
mod catchup;
pub mod evict;
pub mod exchange;
mod hello;
mod quota;
mod retry;
mod storage;
mod topology;
mod tree;
pub mod urgent;
pub mod view;

pub use retry::{RETRY_FIRST_MS, RETRY_MAX_MS};
pub use storage::{MemStorage, RoomUsage, Storage, StorageError};
pub use tree::{TREE_WORK_BURST, TREE_WORK_PER_MIN};
pub use urgent::{URGENT_AUTHORS_CAP, URGENT_BUDGET, URGENT_IDS_CAP, URGENT_WINDOW_MS};
pub use view::{
    ACTIVE_MAX, ACTIVE_TARGET, BRIDGE_AFTER_MS, DIAL_PENDING_MS, FIRST_DIAL_DELAY_MS, MAX_PINNED,
    PASSIVE_CAP, PASSIVE_RETRY_MAX_MS, PASSIVE_RETRY_MIN_MS, PASSIVE_STALE_MS,
};

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
    MAX_AUTHOR_MESSAGES, MAX_TRUSTED_RELAYS, PEER_BUCKETS_CAP, PEER_JOINED_BURST,
    PEER_JOINED_PER_MIN, PEER_RELAY_BURST, PEER_RELAY_PER_MIN, TRUSTED_RELAY_BURST,
    TRUSTED_RELAY_PER_MIN,
};
pub use topology::{
    TopoDrops, MAX_TOPO_RECORDS, OWN_TOPO_FAST_GAP_MS, OWN_TOPO_GAP_MS, TOPO_FAST_MIN_MS,
    TOPO_FAST_RECORDS, TOPO_FAST_WINDOW_MS, TOPO_HELLO_MAX, TOPO_MIN_GAP_MS, TOPO_NEAR_HOPS,
    TOPO_NEW_ORIGINS_BURST, TOPO_NEW_ORIGINS_PER_MIN,
};

/// The peer an imported bundle message ([`Input::Imported`]) is reported from
/// ([`Output::Stored`], [`Output::Rejected`]): the all-zero key, which is no node's key (no
/// secret key has it as public key), so it is never a connected peer.
pub const BUNDLE_PEER: NodeId = NodeId([0; 32]);
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
/// How often a node re-signs its neighbour list even if nothing changed, ms, at the least: a
/// node re-signs every [`TOPO_REFRESH_PER_NODE_MS`] × the nodes in its graph, between this
/// and [`TOPO_REFRESH_MAX_MS`], times 0.75–1.25 fixed by its id
/// (`Protocol::own_topo_refresh_ms`).
pub const TOPO_REFRESH_MS: u64 = 120_000;
/// Refresh period per node in the graph, ms. Every record floods to every node and each node
/// hears it from about each of its 8–12 peers, so refreshing at a fixed period costs each node
/// in proportion to N (5 KB/s idle at 100 hosts with 120 s); spread this way the refreshes
/// cost each node about the same at any size.
pub const TOPO_REFRESH_PER_NODE_MS: u64 = 6_000;
/// Longest refresh period, ms.
pub const TOPO_REFRESH_MAX_MS: u64 = 30 * 60 * 1000;
/// A neighbour list not refreshed for this long is dropped, ms: three of the longest refresh
/// periods (× 1.25). A node that left drops out of the graph much sooner: its peers re-sign
/// without it, and a link counts only while both ends list it (`topo::Graph::links`); this
/// only frees the record.
pub const TOPO_MAX_AGE_MS: u64 = 3 * TOPO_REFRESH_MAX_MS * 5 / 4;

/// Default [`Config::swap_threshold_ms`]: a quarter of [`Config::ihave_timeout_ms`]'s
/// default, well above the spread of two paths of about equal length, so equal paths never
/// swap; a lead this large comes from a path several links shorter. Chosen with the
/// simulator (docs/benchmarks.md §1): at 30 ms trees chased every message.
pub const SWAP_THRESHOLD_MS: u64 = 100;

/// Default [`Config::swap_cooldown_ms`] (five messages at the simulator's rate).
pub const SWAP_COOLDOWN_MS: u64 = 1_000;

/// Default [`Config::swap_streak`]: one sender's message alone does not move the tree, which
/// serves every sender.
pub const SWAP_STREAK: u32 = 2;
/// Default [`Config::prune_hold_ms`]: about the time a message takes to cross a large mesh
/// with slow links (the simulator's 1,000 nodes at 10–100 ms: p99 ≈ 0.8–1.2 s), so messages
/// sent while one is in flight count as in flight too. Chosen with the simulator
/// (docs/benchmarks.md §1): 1.5–3 s gave the same trees on slow links, and the shorter hold
/// keeps fewer extra copies on a LAN under churn.
pub const PRUNE_HOLD_MS: u64 = 1_500;

/// First-copy arrival times remembered (the newest messages): enough for every message in
/// flight at once, ≈ 50 KB.
const ARRIVALS_CAP: usize = 1_024;

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
    /// A tree copy that arrives more than this long after another peer's `IHave` for the same
    /// message swaps the two links (PlumTree's optimisation), ms. `u64::MAX` turns it off.
    pub swap_threshold_ms: u64,
    /// After a swap, no other swap for this long, ms: the tree serves every sender, so
    /// each swap may move it away from another's fastest paths; spacing them keeps it from
    /// chasing each message.
    pub swap_cooldown_ms: u64,
    /// A swap needs the same lazy peer to win by the threshold for this many messages of the
    /// room in a row.
    pub swap_streak: u32,
    /// A duplicate of a message whose first copy came less than this long ago does not prune
    /// a link that gave us a first copy within this time either, ms (0 = always prune). With
    /// messages from several senders in flight at once, two duplicates of different messages
    /// could otherwise cut two links of the same cycle and split the tree (then every node
    /// below the cut grafts: extra copies, slow repairs).
    pub prune_hold_ms: u64,
    /// In [`Propagation::Tree`], a message whose author is in the network graph follows the
    /// author's *source tree* (fastest paths from the author over the signed neighbour lists,
    /// [`crate::topo::Graph::tree_children`]) instead of the shared PlumTree tree, which stays
    /// for authors the graph does not hold and covers gaps (a tree child not connected or not
    /// in the room). Off: every message follows the shared tree.
    pub source_trees: bool,
    /// Most rooms carried for others without being joined (0 = carry nothing).
    pub max_carried_rooms: usize,
    /// A single connected peer's rooms are carried on its word alone only if it lists at most
    /// this many ([`CARRY_SOLE_PEER_MAX_ROOMS`] by default; a relay raises it, since the
    /// laptops and other relays it serves each list many rooms). The per-peer and table caps
    /// of the demand table ([`CARRY_ROOMS_PER_PEER`], [`MAX_CARRY_CANDIDATES`]) still apply.
    pub sole_peer_max_rooms: usize,
    /// Most bytes of messages kept for rooms this node has not joined (carried rooms, `dm`,
    /// rooms left), counting [`EVICTED_ID_BYTES`] per evicted id. Over it the oldest of those
    /// messages are evicted ([`evict`]).
    pub carry_quota_bytes: u64,
    /// Connections (not counting pinned peers) the node dials up to ([`view`]).
    pub active_target: usize,
    /// Connections (not counting pinned peers) past which the node closes a random one
    /// ([`view`]); `usize::MAX` turns the limit off (a relay serves every laptop that comes).
    pub active_max: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            propagation: Propagation::Tree,
            ihave_timeout_ms: 400,
            graft_retry_ms: 250,
            swap_threshold_ms: SWAP_THRESHOLD_MS,
            swap_cooldown_ms: SWAP_COOLDOWN_MS,
            swap_streak: SWAP_STREAK,
            prune_hold_ms: PRUNE_HOLD_MS,
            source_trees: true,
            max_carried_rooms: 64,
            sole_peer_max_rooms: CARRY_SOLE_PEER_MAX_ROOMS,
            carry_quota_bytes: DEFAULT_CARRY_QUOTA_BYTES,
            active_target: ACTIVE_TARGET,
            active_max: ACTIVE_MAX,
        }
    }
}

/// The time of an input: one value carrying both clocks (quinn passes one `Instant`; we also
/// need the wall clock for the [`MAX_FUTURE_MS`] rule). Build it from a `u64` for monotonic
/// time alone (tests, simulators).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Time {
    /// Monotonic milliseconds from any fixed origin: every deadline is on this clock.
    pub mono_ms: u64,
    /// Wall-clock milliseconds since the Unix epoch; 0 = unknown (timestamps are then not
    /// checked against a clock).
    pub wall_ms: u64,
}

impl From<u64> for Time {
    fn from(mono_ms: u64) -> Self {
        Time {
            mono_ms,
            wall_ms: 0,
        }
    }
}

/// Pending repairs handled by one [`Protocol::handle_timeout`] call (each may send a `Graft`):
/// bounds one call's work and outputs; the rest stay due, so `poll_timeout` asks for the next
/// call at once.
pub const MAX_REPAIRS_PER_TIMEOUT: usize = 256;
/// Housekeeping period, ms: topology expiry, stale exchanges, the carry quota and carry
/// choice, neighbour-list gap, periodic reconciliation ([`ANTI_ENTROPY_MS`]) and peer
/// exchange. Scheduled by the protocol itself ([`Protocol::poll_timeout`]).
pub const TICK_MS: u64 = 5_000;

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
    /// Discovery (mDNS, the beacon, a peer met before) heard of `node` at `addrs`: it joins
    /// the passive list ([`view`]) and is dialed when the active view needs a peer. Local
    /// only: nothing on the wire.
    Discovered {
        /// The node heard of (the driver checks its TLS identity when dialing).
        node: NodeId,
        /// Where it said it listens.
        addrs: Vec<std::net::SocketAddr>,
    },
    /// The local user published a message, already stored durably by the driver.
    Published(Message),
    /// A message read from a bundle file (`crate::bundle`): admitted exactly like a `Msg`
    /// from a peer ([`BUNDLE_PEER`] stands for the file): blocklist, room, envelope checks,
    /// per-author quotas, signature, clock rule, then stored and spread to this node's peers.
    /// Only the per-peer relay rate does not apply (the user chose the file). A room this
    /// node neither joined nor carries is carried from now on, within
    /// [`Config::max_carried_rooms`] (else the message is rejected like a network one), so the
    /// bundle's messages spread to the peers that want them; the carry quota applies.
    Imported(Message),
    /// The local user joined a room (normalised name).
    Joined(String),
    /// The local user left a room.
    Left(String),
    /// The local display name changed.
    Renamed(String),
    /// This node's own, freshly signed neighbour list (the driver builds it when asked by
    /// [`Output::SignNeighbours`]).
    LocalTopology(TopoRecord),
    /// Housekeeping now (tests, simulators, benchmarks). The protocol schedules it by itself
    /// every [`TICK_MS`] through [`Protocol::poll_timeout`]; a driver never needs to send it.
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
    /// Time to sign this node's neighbour list (its current connections and the addresses
    /// they listen on, which only the driver knows) and give it back as
    /// [`Input::LocalTopology`]: at start, [`OWN_TOPO_GAP_MS`] after a change of connections,
    /// and at the refresh (`Protocol::own_topo_refresh_ms`).
    SignNeighbours,
    /// Dial `node` (not connected; from the passive list, [`view`], or learned from
    /// neighbour lists, [`exchange`]) at these addresses. Not persistent: the protocol asks
    /// again when it still wants the peer, and a connection that ends is not redialed by the
    /// driver on its own.
    Dial {
        /// The node to reach (the driver checks its TLS identity).
        node: NodeId,
        /// Where discovery heard it or its neighbours reach it.
        addrs: Vec<std::net::SocketAddr>,
    },
    /// Close the connection to `peer`: the active view is over [`Config::active_max`]
    /// ([`view`]). Not a fault of the peer; it repairs its own view from its passive list.
    Disconnect {
        /// Peer.
        peer: NodeId,
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
    /// Closed for the view ([`Output::Disconnect`]); gone at `Disconnected`.
    closing: bool,
    rooms: BTreeSet<String>,
    /// Rooms in which this link is lazy (announce only). Absent = eager.
    lazy: HashSet<String>,
    /// Ids the peer is known to hold (it sent, offered or announced them, or we sent them).
    known: HashSet<MessageId>,
    /// Request budgets.
    buckets: Buckets,
    /// Open or recently finished reconciliation exchanges, per room.
    exchanges: HashMap<String, catchup::Exchange>,
    /// Messages it asked for, waiting for window (ids, oldest first), and the same as a set
    /// (with `urgent_replies`).
    replies: VecDeque<MessageId>,
    /// Prioritised urgent messages waiting for window ([`urgent`]): sent before `replies`.
    urgent_replies: VecDeque<MessageId>,
    queued: HashSet<MessageId>,
    /// Bytes of frames emitted for it and not yet reported drained.
    in_flight: u64,
    /// Own messages sent to it as `Msg`, not yet acknowledged (oldest first), and as a set.
    sent_own: VecDeque<MessageId>,
    sent_own_set: HashSet<MessageId>,
    /// When it last gave us the first copy of a message (ms): a link in use by the tree.
    last_first_at: Option<u64>,
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
    /// Tree swaps: a message's `IHave` came more than [`Config::swap_threshold_ms`] before
    /// its tree copy, so the announcer's link was made eager (an empty `Graft`) and the
    /// sender's lazy (a `Prune`, also counted in `prunes`).
    pub swaps: u64,
    /// Messages of rooms not joined evicted under the carry quota.
    pub evicted: u64,
    /// Frames (or requests) dropped without being invalid, per reason.
    pub drops: Drops,
    /// Urgent messages seen past their author's [`URGENT_BUDGET`]: handled as ordinary ones.
    pub urgent_over_budget: u64,
    /// Messages whose author's source tree was not cached and did not fit the tree budget
    /// ([`TREE_WORK_PER_MIN`]): they followed the shared tree.
    pub tree_over_budget: u64,
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
    /// When the last tree swap was made ([`Config::swap_cooldown_ms`]).
    last_swap_at: Option<u64>,
    /// The lazy peer that announced the latest messages of a room first by more than
    /// [`Config::swap_threshold_ms`], and for how many messages in a row.
    swap_streak: Option<(String, NodeId, u32)>,
    /// When the first copy of each of the newest messages arrived ([`ARRIVALS_CAP`]), and
    /// their order (oldest first): how late a duplicate is.
    arrivals: HashMap<MessageId, u64>,
    arrival_order: VecDeque<MessageId>,
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
    /// Budget of source-tree computations (tree.rs).
    tree_work: budget::TokenBucket,
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
    /// When housekeeping next runs (`None` before the first input).
    next_tick: Option<u64>,
    /// When our own neighbour list is due (topology.rs).
    own_topo: topology::OwnTopo,
    /// Own messages no peer holds yet, per room, and when to retry them (retry.rs).
    retry: BTreeMap<String, retry::RoomRetry>,
    /// Urgent-message budgets and prioritised ids (urgent.rs).
    urgent: urgent::UrgentState,
    /// Passive list and pinned peers (view.rs).
    view: view::View,
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
            last_swap_at: None,
            swap_streak: None,
            arrivals: HashMap::new(),
            arrival_order: VecDeque::new(),
            rooms: rooms.into_iter().collect(),
            carried: BTreeSet::new(),
            carry_full: false,
            peers: BTreeMap::new(),
            missing: Pending::default(),
            last_recon: HashMap::new(),
            recon_seq: 0,
            graph: Graph::default(),
            tree_work: tree::tree_budget(),
            counters: Counters::default(),
            blocked: HashSet::new(),
            blocked_drops: 0,
            quota: quota::QuotaState::default(),
            topo_guard: topology::TopoGuard::default(),
            demand: carry::Demand::default(),
            exchange: exchange::Exchange::default(),
            next_tick: None,
            own_topo: topology::OwnTopo::default(),
            retry: BTreeMap::new(),
            urgent: urgent::UrgentState::default(),
            view: view::View::seeded(&me),
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
    /// Counts an invalid frame the driver could not even decode.
    pub fn count_rejected(&mut self) {
        self.counters.rejected += 1;
    }
    /// Replies waiting for `peer`'s window (ids).
    pub fn reply_queue_len(&self, peer: &NodeId) -> usize {
        self.peers
            .get(peer)
            .map_or(0, |p| p.replies.len() + p.urgent_replies.len())
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

    /// When the protocol next wants [`Protocol::handle_timeout`] called (monotonic ms): the
    /// earliest pending-repair deadline, retry of own messages ([`Protocol::next_retry_at`])
    /// or the next housekeeping tick. `None` before the first
    /// input. A driver sleeps until then or until the next input, whichever comes first; there
    /// is nothing to poll in between (quinn-proto's `poll_timeout`).
    pub fn poll_timeout(&self) -> Option<u64> {
        let tick = self.next_tick?;
        let mut at = tick.min(self.own_topo_due());
        if let Some(repair) = self.missing.next_due() {
            at = at.min(repair);
        }
        if let Some(retry) = self.next_retry_at() {
            at = at.min(retry);
        }
        if let Some(dial) = self.view_next_dial() {
            at = at.min(dial);
        }
        if let Some(topo) = self.topo_next_due() {
            at = at.min(topo);
        }
        Some(at)
    }

    /// Runs what is due at `now`: pending repairs whose wait is over (graft the next
    /// announcer, or give up), retries of own messages no peer holds, and housekeeping when
    /// its tick came. Cheap when nothing is due.
    pub fn handle_timeout(&mut self, store: &mut dyn Storage, now: impl Into<Time>) -> Vec<Output> {
        self.set_time(now.into());
        let mut out = Vec::new();
        for _ in 0..MAX_REPAIRS_PER_TIMEOUT {
            let Some(id) = self.missing.pop_due(self.now) else {
                break;
            };
            self.on_missing_timer(store, id, &mut out);
        }
        if self.next_retry_at().is_some_and(|t| t <= self.now) {
            self.retry_due(store, &mut out);
        }
        let tick = self.next_tick.is_some_and(|t| t <= self.now);
        if tick {
            self.housekeeping(store, &mut out);
        } else if self.topo_next_due().is_some_and(|t| t <= self.now) {
            self.topo_tick(&mut out);
        }
        self.finish(store, tick, out)
    }

    fn set_time(&mut self, t: Time) {
        self.now = self.now.max(t.mono_ms);
        if t.wall_ms > 0 {
            self.wall_now = t.wall_ms;
        }
        if self.next_tick.is_none() {
            self.next_tick = Some(self.now + TICK_MS);
        }
    }

    /// Housekeeping (every [`TICK_MS`], or when asked with [`Input::Tick`]).
    fn housekeeping(&mut self, store: &mut dyn Storage, out: &mut Vec<Output>) {
        self.next_tick = Some(self.now + TICK_MS);
        if self.graph.expire(self.now, TOPO_MAX_AGE_MS, &self.me) {
            out.push(Output::TopologyChanged);
        }
        let now = self.now;
        for p in self.peers.values_mut() {
            p.exchanges.retain(|_, x| !x.stale(now));
        }
        self.enforce_carry_quota(store, out);
        self.carry_tick(store, out);
        self.topo_tick(out);
        self.anti_entropy(store, out);
        self.trim_view(None, true, out);
        self.view_bridge(out);
    }

    /// What every call ends with: peer exchange when due, window accounting, queued replies.
    fn finish(&mut self, store: &mut dyn Storage, tick: bool, mut out: Vec<Output>) -> Vec<Output> {
        if out.iter().any(|o| matches!(o, Output::TopologyChanged)) {
            self.exchange_due();
        }
        if out.iter().any(|o| matches!(o, Output::PeerHello { .. })) {
            // A peer's listen port is part of our neighbour list.
            self.own_topo_changed();
        }
        self.sign_own_topo_if_due(&mut out);
        let dialing = self.view_dial(&mut out);
        self.exchange_peers(tick, dialing, &mut out);
        self.account(&out);
        self.pump_replies(store, &mut out);
        self.retry_learn(&out);
        out
    }

    /// Feeds one event at time `now`; returns the actions to perform, in order.
    pub fn handle(
        &mut self,
        store: &mut dyn Storage,
        input: Input,
        now: impl Into<Time>,
    ) -> Vec<Output> {
        self.set_time(now.into());
        let mut out = Vec::new();
        let tick = matches!(input, Input::Tick);
        if matches!(input, Input::Connected { .. } | Input::Disconnected { .. }) {
            self.exchange_due();
            self.own_topo_changed();
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
                self.view_connected(peer, &mut out);
            }
            Input::Disconnected { peer } => {
                self.peers.remove(&peer);
                self.last_recon.retain(|(p, _), _| *p != peer);
                self.view_disconnected(peer);
            }
            Input::Discovered { node, addrs } => self.on_discovered(node, addrs),
            Input::Frame { peer, frame } => self.on_frame(store, peer, frame, &mut out),
            Input::Imported(msg) => {
                // A room is carried for a record only when that record could be stored: a
                // bundle of junk or of blocked authors makes the node carry nothing new
                // (on_message then counts and reports it as for a peer's Msg).
                let admissible = !self.blocked.contains(&msg.author) && msg.verify().is_ok();
                if admissible && !self.member(&msg.room) {
                    self.carry_rooms([msg.room.clone()]);
                    if self.member(&msg.room) {
                        self.announce_rooms(&mut out);
                    }
                }
                self.on_message(store, BUNDLE_PEER, DEFAULT_HOPS, msg, &mut out);
            }
            Input::Published(msg) => {
                self.retry_published(&msg);
                self.note_urgent(&msg);
                let routed = self.source_route(&msg.author);
                self.push(&msg, None, Some(DEFAULT_HOPS), routed, &mut out);
            }
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
                    // The name is in our signed neighbour list too.
                    self.own_topo_changed();
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
            Input::LocalTopology(rec) => {
                if rec.node == self.me && self.graph.update(rec.clone(), self.now) {
                    self.flood_topology(&rec, None, &mut out);
                    out.push(Output::TopologyChanged);
                }
            }
            Input::Tick => self.housekeeping(store, &mut out),
            Input::Drained { peer, bytes } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.in_flight = p.in_flight.saturating_sub(bytes);
                }
            }
        }
        self.finish(store, tick, out)
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

    /// Counts a drop and reports it.
    fn drop_frame(&mut self, peer: NodeId, reason: DropReason, out: &mut Vec<Output>) {
        self.counters.drops.add(reason);
        out.push(Output::Dropped { peer, reason });
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
                self.retry_reset_for(&rooms);
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
            Frame::Msg { hops, message } => {
                // A peer sending back a message of ours holds it.
                if message.author == self.me {
                    self.retry_held(&[message.id()]);
                }
                self.on_message(store, peer, hops, message, out);
            }
            Frame::Recon { room, msg } => self.on_recon(store, peer, room, &msg, out),
            Frame::ReconDone { room } => self.on_recon_done(peer, room, out),
            Frame::IHave { room, ids } => self.on_ihave(store, peer, &room, ids, out),
            Frame::Graft { room, ids } => {
                if !self.shared(peer, &room) {
                    self.drop_frame(peer, DropReason::UnknownRoom, out);
                    return;
                }
                if ids.is_empty() {
                    // No ids: only "make this link eager" (the other end's tree swap).
                    if self.take_budget(peer, Budget::Graft, 1) {
                        self.set_lazy(peer, &room, false);
                    } else {
                        self.drop_frame(peer, DropReason::RateLimited(Budget::Graft), out);
                    }
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
}

/// Bytes a frame takes on the stream: body plus the 4-byte length prefix.
fn wire_len(frame: &Frame) -> u64 {
    frame.encode().len() as u64 + 4
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
#[cfg(test)]
mod tests_retry;
#[cfg(test)]
mod tests_swap;
#[cfg(test)]
mod tests_timers;
#[cfg(test)]
mod tests_tree_budget;
#[cfg(test)]
mod tests_urgent;
#[cfg(test)]
mod tests_view;
