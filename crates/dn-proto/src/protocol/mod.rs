//! The protocol state machine: events in, actions out.
//!
//! First version (walking skeleton):
//! - **Hello**: on connect both sides send `Hello` (id, name, joined rooms, listen port). The
//!   hello's id must equal the TLS-authenticated peer id or the peer is dropped.
//! - **Push**: a message the user publishes, or one received that is new, is pushed as `Msg` to
//!   every connected peer that joined its room, except peers known to hold it already. `hops`
//!   drops by one per forward; at 0 the message is stored but not forwarded. The store is the
//!   seen-set: a message already stored is a duplicate and goes no further.
//! - **Catch-up**: when two peers share a room (after hello, after either joins), each sends its
//!   full id set for that room as `Have` frames; the receiver answers with `Want` for the ids it
//!   lacks, and gets them as `Msg`. Both sides pull, so each missing message crosses once.
//! - **Validation**: every received message is verified (signature, size, room and name rules)
//!   and must be for a room this node joined; anything else is rejected, reported and counted,
//!   and the connection keeps serving.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::codec::{Frame, MAX_IDS_PER_FRAME};
use crate::message::{normalize_room, Message, MessageId, NodeId, PROTOCOL_VERSION};
use crate::ProtoError;

/// Hop budget of a freshly published message.
pub const DEFAULT_HOPS: u8 = 16;
/// Ids remembered per peer as "already has it" before the memory is reset.
const KNOWN_CAP: usize = 200_000;

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
    /// Ids of all stored messages in a room.
    fn room_ids(&self, room: &str) -> Result<Vec<MessageId>, StorageError>;
    /// A stored message by id.
    fn get(&self, id: &MessageId) -> Result<Option<Message>, StorageError>;
}

/// An in-memory [`Storage`] for tests and simulators.
#[derive(Default, Debug, Clone)]
pub struct MemStorage {
    msgs: HashMap<MessageId, Message>,
}

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
        Ok(self.msgs.insert(msg.id(), msg.clone()).is_none())
    }
    fn room_ids(&self, room: &str) -> Result<Vec<MessageId>, StorageError> {
        let mut v: Vec<_> = self
            .msgs
            .iter()
            .filter(|(_, m)| m.room == room)
            .map(|(i, _)| *i)
            .collect();
        v.sort();
        Ok(v)
    }
    fn get(&self, id: &MessageId) -> Result<Option<Message>, StorageError> {
        Ok(self.msgs.get(id).cloned())
    }
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
    },
    /// The storage failed; the driver logs it.
    StorageFailed(StorageError),
}

#[derive(Default)]
struct PeerState {
    hello: bool,
    rooms: BTreeSet<String>,
    /// Ids the peer is known to hold (it sent or offered them, or we sent them).
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

/// Counters for status displays.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Messages received that were new and stored.
    pub received: u64,
    /// Messages received that were already stored.
    pub duplicates: u64,
    /// Frames or messages rejected as invalid.
    pub rejected: u64,
    /// Message frames sent.
    pub sent: u64,
}

/// The protocol state of one node.
pub struct Protocol {
    me: NodeId,
    name: String,
    listen_port: u16,
    rooms: BTreeSet<String>,
    peers: HashMap<NodeId, PeerState>,
    counters: Counters,
}

impl Protocol {
    /// A node with id `me`, display `name`, listening on `listen_port`, member of `rooms`.
    pub fn new(
        me: NodeId,
        name: String,
        listen_port: u16,
        rooms: impl IntoIterator<Item = String>,
    ) -> Self {
        Protocol {
            me,
            name,
            listen_port,
            rooms: rooms.into_iter().collect(),
            peers: HashMap::new(),
            counters: Counters::default(),
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
    /// Counters since start.
    pub fn counters(&self) -> Counters {
        self.counters
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
            rooms: self.rooms.iter().cloned().collect(),
            listen_port: self.listen_port,
        }
    }

    /// Feeds one event; returns the actions to perform, in order.
    pub fn handle(&mut self, store: &mut dyn Storage, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Connected { peer } => {
                self.peers.insert(peer, PeerState::default());
                out.push(Output::Send {
                    peer,
                    frame: self.hello(),
                });
            }
            Input::Disconnected { peer } => {
                self.peers.remove(&peer);
            }
            Input::Frame { peer, frame } => self.on_frame(store, peer, frame, &mut out),
            Input::Published(msg) => self.push(&msg, None, DEFAULT_HOPS, &mut out),
            Input::Joined(room) => {
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
                if self.rooms.remove(&room) {
                    self.announce_rooms(&mut out);
                }
            }
            Input::Renamed(name) => self.name = name,
        }
        out
    }

    /// Tells every connected peer our rooms. Also peers whose hello has not arrived yet: our
    /// own hello went out on connect and may list stale rooms.
    fn announce_rooms(&self, out: &mut Vec<Output>) {
        let rooms: Vec<String> = self.rooms.iter().cloned().collect();
        let mut peers: Vec<NodeId> = self.peers.keys().copied().collect();
        peers.sort();
        for peer in peers {
            out.push(Output::Send {
                peer,
                frame: Frame::Rooms {
                    rooms: rooms.clone(),
                },
            });
        }
    }

    /// Sends our full id set for `room` to `peer` as `Have` frames.
    fn offer(&mut self, store: &mut dyn Storage, peer: NodeId, room: &str, out: &mut Vec<Output>) {
        let ids = match store.room_ids(room) {
            Ok(ids) => ids,
            Err(e) => {
                out.push(Output::StorageFailed(e));
                return;
            }
        };
        if ids.is_empty() {
            out.push(Output::Send {
                peer,
                frame: Frame::Have {
                    room: room.to_string(),
                    last: true,
                    ids: vec![],
                },
            });
            return;
        }
        let chunks: Vec<&[MessageId]> = ids.chunks(MAX_IDS_PER_FRAME).collect();
        let n = chunks.len();
        for (i, c) in chunks.into_iter().enumerate() {
            out.push(Output::Send {
                peer,
                frame: Frame::Have {
                    room: room.to_string(),
                    last: i + 1 == n,
                    ids: c.to_vec(),
                },
            });
        }
    }

    /// Normalises a peer's room list, dropping invalid names.
    fn clean_rooms(rooms: Vec<String>) -> BTreeSet<String> {
        rooms
            .into_iter()
            .filter_map(|r| normalize_room(&r).ok().filter(|n| *n == r))
            .collect()
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
                    self.counters.rejected += 1;
                    out.push(Output::Rejected {
                        peer,
                        reason: ProtoError::Malformed("second hello"),
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
                let shared: Vec<String> = rooms.intersection(&self.rooms).cloned().collect();
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
                for room in shared {
                    self.offer(store, peer, &room, out);
                }
            }
            Frame::Rooms { rooms } => {
                let rooms = Self::clean_rooms(rooms);
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
                let newly: Vec<String> = rooms
                    .iter()
                    .filter(|r| !p.rooms.contains(*r) && self.rooms.contains(*r))
                    .cloned()
                    .collect();
                p.rooms = rooms;
                for room in newly {
                    self.offer(store, peer, &room, out);
                }
            }
            Frame::Msg { hops, message } => self.on_message(store, peer, hops, message, out),
            Frame::Have { room, last, ids } => {
                if !self.rooms.contains(&room) {
                    return; // we left the room meanwhile
                }
                let mut want = Vec::new();
                for id in ids {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.learn(id);
                    }
                    match store.has(&id) {
                        Ok(true) => {}
                        Ok(false) => want.push(id),
                        Err(e) => {
                            out.push(Output::StorageFailed(e));
                            return;
                        }
                    }
                }
                if !want.is_empty() {
                    out.push(Output::Send {
                        peer,
                        frame: Frame::Want {
                            room: room.clone(),
                            ids: want,
                        },
                    });
                }
                if last {
                    out.push(Output::Synced { peer, room });
                }
            }
            Frame::Want { room, ids } => {
                for id in ids {
                    match store.get(&id) {
                        Ok(Some(m)) if m.room == room && self.rooms.contains(&room) => {
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
        }
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
        if !self.rooms.contains(&msg.room) {
            self.counters.rejected += 1;
            out.push(Output::Rejected {
                peer,
                reason: ProtoError::BadRoom(format!("{} (not joined)", msg.room)),
            });
            return;
        }
        match store.insert(&msg) {
            Ok(true) => {
                self.counters.received += 1;
                if hops > 0 {
                    self.push(&msg, Some(peer), hops - 1, out);
                }
                out.push(Output::Stored {
                    message: msg,
                    from: peer,
                });
            }
            Ok(false) => self.counters.duplicates += 1,
            Err(e) => out.push(Output::StorageFailed(e)),
        }
    }

    /// Pushes `msg` to every peer in its room that is not known to hold it.
    fn push(&mut self, msg: &Message, from: Option<NodeId>, hops: u8, out: &mut Vec<Output>) {
        let id = msg.id();
        let mut targets: Vec<NodeId> = Vec::new();
        for (pid, p) in &mut self.peers {
            if Some(*pid) == from
                || !p.hello
                || !p.rooms.contains(&msg.room)
                || p.known.contains(&id)
            {
                continue;
            }
            p.learn(id);
            targets.push(*pid);
        }
        targets.sort();
        for peer in targets {
            self.counters.sent += 1;
            out.push(Output::Send {
                peer,
                frame: Frame::Msg {
                    hops,
                    message: msg.clone(),
                },
            });
        }
    }
}

#[cfg(test)]
mod tests;
