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
//! - **Catch-up**: when two peers share a room (after hello, after either joins), each sends its
//!   full id set for that room as `Have` frames; the receiver answers with `Want` for the ids it
//!   lacks, and gets them as `Msg`. Both sides pull, so each missing message crosses once.
//! - **Validation**: every received message is verified (signature, size, room and name rules)
//!   and must be for a room this node joined; anything else is rejected, reported and counted,
//!   and the connection keeps serving.
//!
//! Time is a `u64` of milliseconds from any fixed origin, given with each input; timers are
//! data ([`Output::SetTimer`] out, [`Input::Timer`] in), so a simulator can run it exactly.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use crate::codec::Frame;
use crate::message::{normalize_room, Message, MessageId, NodeId, PROTOCOL_VERSION};
use crate::recon;
use crate::topo::{Graph, TopoRecord};
use crate::ProtoError;

mod carry;
mod quota;
mod topology;

pub use carry::{
    CarryDrops, CARRY_DEMAND_WINDOW_MS, CARRY_IDLE_MS, CARRY_MIN_ANNOUNCERS, CARRY_ROOMS_PER_PEER,
    CARRY_SOLE_PEER_MAX_ROOMS, CARRY_SOLE_PEER_MS, MAX_CARRY_CANDIDATES,
};
pub use quota::{
    QuotaDrops, AUTHOR_CACHE_CAP, AUTHOR_WINDOW_MESSAGES, AUTHOR_WINDOW_MS, MAX_AUTHOR_BYTES,
    MAX_AUTHOR_MESSAGES, PEER_BUCKETS_CAP, PEER_RELAY_BURST, PEER_RELAY_PER_MIN,
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
/// Messages awaited after an `IHave` before the oldest entries are forgotten.
const MISSING_CAP: usize = 50_000;
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
}

/// An in-memory [`Storage`] for tests and simulators.
#[derive(Default, Debug, Clone)]
pub struct MemStorage {
    msgs: HashMap<MessageId, Message>,
    by_room: HashMap<String, BTreeSet<(u64, MessageId)>>,
    /// Per (room, author): `(timestamp, id)` of the messages and their total signed size.
    by_author: HashMap<(String, NodeId), AuthorEntries>,
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
        Ok(self.msgs.contains_key(id))
    }
    fn insert(&mut self, msg: &Message) -> Result<bool, StorageError> {
        let id = msg.id();
        if self.msgs.contains_key(&id) {
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
        self.msgs.insert(id, msg.clone());
        Ok(true)
    }
    fn room_set(&self, room: &str) -> Result<Vec<(u64, MessageId)>, StorageError> {
        Ok(self
            .by_room
            .get(room)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default())
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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            propagation: Propagation::Tree,
            ihave_timeout_ms: 400,
            graft_retry_ms: 250,
            max_carried_rooms: 64,
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
    /// The driver's measure of the storage used by carried rooms crossed the quota (true) or
    /// fell back under it (false). While over, carried rooms are neither announced nor
    /// accepted, and no new room is carried; joined rooms and direct messages go on.
    CarryFull(bool),
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
    },
    /// The network graph changed (a newer neighbour list arrived or one expired).
    TopologyChanged,
    /// The storage failed; the driver logs it.
    StorageFailed(StorageError),
}

#[derive(Default)]
struct PeerState {
    hello: bool,
    rooms: BTreeSet<String>,
    /// Rooms in which this link is lazy (announce only). Absent = eager.
    lazy: HashSet<String>,
    /// Ids the peer is known to hold (it sent, offered or announced them, or we sent them).
    known: HashSet<MessageId>,
}

impl PeerState {
    fn learn(&mut self, id: MessageId) {
        if self.known.len() >= KNOWN_CAP {
            self.known.clear();
        }
        self.known.insert(id);
    }
}

struct Missing {
    room: String,
    announcers: VecDeque<NodeId>,
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
    missing: HashMap<MessageId, Missing>,
    /// When a reconciliation last started per (peer, room).
    last_recon: HashMap<(NodeId, String), u64>,
    recon_seq: u64,
    graph: Graph,
    counters: Counters,
    /// Per-author and per-peer storage quotas (quota.rs).
    quota: quota::QuotaState,
    /// Admission of neighbour lists (topology.rs).
    topo_guard: topology::TopoGuard,
    /// Demand for carried rooms (carry.rs).
    demand: carry::Demand,
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
            missing: HashMap::new(),
            last_recon: HashMap::new(),
            recon_seq: 0,
            graph: Graph::default(),
            counters: Counters::default(),
            quota: quota::QuotaState::default(),
            topo_guard: topology::TopoGuard::default(),
            demand: carry::Demand::default(),
        }
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
            Input::CarryFull(full) => {
                if full != self.carry_full {
                    self.carry_full = full;
                    self.announce_rooms(&mut out);
                    if !full {
                        // Carried rooms are served again: catch up on what was refused.
                        let todo: Vec<(NodeId, String)> = self
                            .peers
                            .iter()
                            .filter(|(_, p)| p.hello)
                            .flat_map(|(id, p)| {
                                p.rooms
                                    .intersection(&self.carried)
                                    .map(|r| (*id, r.clone()))
                                    .collect::<Vec<_>>()
                            })
                            .collect();
                        for (peer, room) in todo {
                            self.offer(store, peer, &room, &mut out);
                        }
                    }
                }
            }
            Input::Tick => {
                if self.graph.expire(self.now, TOPO_MAX_AGE_MS, &self.me) {
                    out.push(Output::TopologyChanged);
                }
                self.carry_tick(store, &mut out);
                self.anti_entropy(store, &mut out);
            }
        }
        out
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
        if !self.member(&room) {
            return; // we left the room meanwhile
        }
        if msg.round == 0 {
            // A new exchange. One per (peer, room) at a time: each costs a pass over the set.
            let key = (peer, room.clone());
            if self
                .last_recon
                .get(&key)
                .is_some_and(|t| self.now.saturating_sub(*t) < RECON_MIN_GAP_MS)
                && self.me > peer
            {
                self.counters.rejected += 1;
                out.push(Output::Rejected {
                    peer,
                    reason: ProtoError::Malformed("reconciliation too often"),
                });
                return;
            }
            self.last_recon.insert(key, self.now);
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
        self.send_wanted(store, peer, &room, step.we_have_they_lack, out);
        if done {
            out.push(Output::Send {
                peer,
                frame: Frame::ReconDone { room: room.clone() },
            });
            out.push(Output::Synced { peer, room });
        }
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
                p.lazy.insert(room.to_string());
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
            Frame::Rooms { rooms } => self.on_rooms(store, peer, rooms, out),
            Frame::Msg { hops, message } => self.on_message(store, peer, hops, message, out),
            Frame::Recon { room, msg } => self.on_recon(store, peer, room, &msg, out),
            Frame::ReconDone { room } => {
                if self.member(&room) {
                    out.push(Output::Synced { peer, room });
                }
            }
            Frame::IHave { room, ids } => {
                if !self.member(&room) {
                    return;
                }
                for id in ids {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.learn(id);
                    }
                    match store.has(&id) {
                        Ok(true) => {}
                        Ok(false) => self.await_missing(id, &room, peer, out),
                        Err(e) => out.push(Output::StorageFailed(e)),
                    }
                }
            }
            Frame::Graft { room, ids } => {
                if self.member(&room) {
                    self.set_lazy(peer, &room, false);
                    self.send_wanted(store, peer, &room, ids, out);
                }
            }
            Frame::Prune { room } => self.set_lazy(peer, &room, true),
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

    /// Answers a `Graft` or a reconciliation's wants: every listed message we hold in that
    /// room, as `Msg`.
    fn send_wanted(
        &mut self,
        store: &mut dyn Storage,
        peer: NodeId,
        room: &str,
        ids: Vec<MessageId>,
        out: &mut Vec<Output>,
    ) {
        if !self.member(room) {
            return;
        }
        for id in ids {
            match store.get(&id) {
                Ok(Some(m)) if m.room == room => {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.learn(id);
                    }
                    self.counters.sent += 1;
                    out.push(Output::Send {
                        peer,
                        frame: Frame::Msg {
                            hops: DEFAULT_HOPS,
                            message: m,
                        },
                    });
                }
                Ok(_) => {}
                Err(e) => out.push(Output::StorageFailed(e)),
            }
        }
    }

    fn await_missing(&mut self, id: MessageId, room: &str, peer: NodeId, out: &mut Vec<Output>) {
        if let Some(m) = self.missing.get_mut(&id) {
            if !m.announcers.contains(&peer) {
                m.announcers.push_back(peer);
            }
            return;
        }
        if self.missing.len() >= MISSING_CAP {
            // Under a flood of announcements, forget them: catch-up sync still covers the room.
            self.missing.clear();
        }
        self.missing.insert(
            id,
            Missing {
                room: room.to_string(),
                announcers: VecDeque::from([peer]),
            },
        );
        out.push(Output::SetTimer {
            at: self.now + self.config.ihave_timeout_ms,
            timer: Timer::Missing(id),
        });
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

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_quota;
