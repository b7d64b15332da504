//! Storage quotas: what one author, and one relaying peer, may make this node store.
//!
//! Any valid key can sign messages, so on an open network "verified" is not "welcome". Before a
//! new message is stored (and so relayed), [`Protocol::admit`] checks, in this order:
//!
//! 1. **Direct-message envelopes** (room [`DM_ROOM`]): the body must be a well-formed envelope
//!    for a valid recipient other than its author ([`crate::dm::check_carried`]); else the
//!    message is rejected as invalid ([`Output::Rejected`]).
//!    **Private-room messages** (a room named `p.` + 32 hex) must carry an envelope and hide
//!    their author's name ([`crate::private::check_carried`]); else they are rejected the same
//!    way. A carrier has no key: it checks the structure, the signature checks the rest.
//! 2. **Per-author quota** in every room, `dm` included: at most [`MAX_AUTHOR_MESSAGES`]
//!    messages and [`MAX_AUTHOR_BYTES`] bytes per author per room, and at most
//!    [`AUTHOR_WINDOW_MESSAGES`] per [`AUTHOR_WINDOW_MS`] of message time. Our own messages are
//!    never refused.
//! 3. **Per-peer quota** for what a peer relays (messages it did not author) into rooms this
//!    node carries for others and into `dm`: a token bucket of [`PEER_RELAY_BURST`] refilled at
//!    [`PEER_RELAY_PER_MIN`]. Joined rooms are exempt, so a big history the user asked for
//!    always comes in at full speed.
//!
//! A quota drop is not an error of the peer: the message is neither stored nor relayed, the
//! drop is counted ([`QuotaDrops`]) and the connection keeps serving. Reconciliation offers a
//! dropped message again later, so an honest burst over the peer rate is delayed, not lost.

use std::collections::{HashMap, HashSet};

use super::budget::TokenBucket;
use super::{Output, Protocol, Storage};
use crate::dm::DM_ROOM;
use crate::message::{Message, NodeId};
use crate::ProtoError;

/// Most messages one author may have stored in one room. An honest heavy user — a coordinator
/// posting a message a minute around the clock for a month — writes about 43,000.
pub const MAX_AUTHOR_MESSAGES: u64 = 50_000;
/// Most bytes (signed message size) one author may have stored in one room: 64 MiB, room for
/// 50,000 messages of about 1.3 KiB each, while a junk author filling 8 KiB bodies is stopped
/// at about 8,000 messages.
pub const MAX_AUTHOR_BYTES: u64 = 64 * 1024 * 1024;
/// Length of the per-author rate window, in message time (ms).
pub const AUTHOR_WINDOW_MS: u64 = 60 * 60 * 1000;
/// Most messages one author may have in one room with timestamps within one
/// [`AUTHOR_WINDOW_MS`] of the new one (either side), so any one-window interval of message
/// time holds at most this many: one every 1.8 s for an hour, beyond anyone typing
/// (a bulletin script posting every 5 s uses 720). Counted on message timestamps, so catching
/// up a history is not limited by how fast it arrives.
pub const AUTHOR_WINDOW_MESSAGES: u64 = 2_000;
/// Messages a peer may relay (not its own) into carried rooms and `dm`, per minute, after the
/// burst: 20 a second, far above the traffic of a few hundred honest users.
pub const PEER_RELAY_PER_MIN: u64 = 1_200;
/// Relayed messages a peer may deliver at once (a full bucket): a catch-up of the `dm` room
/// or of a carried room after a long absence fits in one go up to this size; the rest follows
/// at [`PEER_RELAY_PER_MIN`] through later reconciliations.
pub const PEER_RELAY_BURST: u64 = 10_000;
/// Messages a peer may relay (not its own) into rooms this node joined, at once: a catch-up
/// of 20,000 messages from one peer goes at full speed. Past it, [`PEER_JOINED_PER_MIN`].
/// Without this budget one peer could store any number of messages from made-up authors
/// (a fresh key every few messages escapes the per-author quota): the bench measured 10,200
/// in 15 s.
pub const PEER_JOINED_BURST: u64 = 20_000;
/// The refill of [`PEER_JOINED_BURST`]: 100 a second, still far above what people type; a
/// longer backlog comes at that rate from each peer that holds it (several peers in parallel).
pub const PEER_JOINED_PER_MIN: u64 = 6_000;
/// Messages a peer the user chose as a relay (`Protocol::set_trusted_relay`) may relay at once,
/// into joined and carried rooms alike: a laptop back after days away catches a site's backlog
/// up from its relay, often the only peer holding it, at full speed. The user named this node,
/// so a backlog is not a flood; per-author quotas still apply to every message it brings.
pub const TRUSTED_RELAY_BURST: u64 = 1_000_000;
/// The refill of [`TRUSTED_RELAY_BURST`]: 1,000 a second.
pub const TRUSTED_RELAY_PER_MIN: u64 = 60_000;
/// Most peers trusted as relays at once (the relay addresses a node keeps are capped lower).
pub const MAX_TRUSTED_RELAYS: usize = 64;
/// (room, author) usage entries cached; the cache is cleared when full (it is only a cache:
/// [`Storage::author_usage`] gives the truth again).
pub const AUTHOR_CACHE_CAP: usize = 4_096;
/// Peers whose relay buckets are remembered (kept across reconnects, so reconnecting does not
/// refill a bucket); when full, only connected peers' buckets are kept.
pub const PEER_BUCKETS_CAP: usize = 1_024;

/// Messages not stored because of a quota (plus invalid direct-message envelopes).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QuotaDrops {
    /// The author is over its per-room total or window quota (`QuotaAuthor`).
    pub author: u64,
    /// The relaying peer is over its rate for carried rooms and `dm` (`QuotaPeer`).
    pub peer: u64,
    /// A `dm` message whose body is not a valid envelope (also counted as rejected).
    pub bad_dm: u64,
    /// A private-room message that is not an envelope or shows its author's name (also
    /// counted as rejected).
    pub bad_private: u64,
}

/// State of the quotas.
#[derive(Debug, Default)]
pub(super) struct QuotaState {
    /// (room, author) → (messages, bytes) stored, loaded on first use.
    usage: HashMap<(String, NodeId), (u64, u64)>,
    buckets: HashMap<NodeId, TokenBucket>,
    /// The same for relayed messages into joined rooms ([`PEER_JOINED_BURST`]).
    joined_buckets: HashMap<NodeId, TokenBucket>,
    /// Peers the user chose as relays: [`TRUSTED_RELAY_BURST`] instead of the buckets above.
    trusted: HashSet<NodeId>,
    pub(super) drops: QuotaDrops,
}

/// Why [`Protocol::admit`] refused a message.
pub(super) enum Refused {
    /// Invalid: reported as [`Output::Rejected`].
    Invalid,
    /// Over a quota: counted only.
    Quota,
}

impl Protocol {
    /// Marks `peer` as a relay the user chose (it answered at one of the node's relay
    /// addresses), or no longer: its relayed messages then use the budget of
    /// [`TRUSTED_RELAY_BURST`] instead of the per-peer ones. A change starts the peer's
    /// buckets afresh. At most [`MAX_TRUSTED_RELAYS`] peers are trusted; returns false when
    /// that many already are and `peer` is not one of them.
    pub fn set_trusted_relay(&mut self, peer: NodeId, trusted: bool) -> bool {
        let q = &mut self.quota;
        let changed = if trusted {
            if !q.trusted.contains(&peer) && q.trusted.len() >= MAX_TRUSTED_RELAYS {
                return false;
            }
            q.trusted.insert(peer)
        } else {
            q.trusted.remove(&peer)
        };
        if changed {
            q.buckets.remove(&peer);
            q.joined_buckets.remove(&peer);
        }
        true
    }

    /// Whether `peer` is trusted as a relay ([`Protocol::set_trusted_relay`]).
    pub fn is_trusted_relay(&self, peer: &NodeId) -> bool {
        self.quota.trusted.contains(peer)
    }

    /// Drops not stored because of quotas or invalid direct-message envelopes.
    pub fn quota_drops(&self) -> QuotaDrops {
        self.quota.drops
    }

    /// The checks before a verified message for a served room is stored (module docs).
    /// `Ok(())` = go on and store it (it may still be a duplicate).
    pub(super) fn admit(
        &mut self,
        store: &mut dyn Storage,
        peer: NodeId,
        msg: &Message,
        out: &mut Vec<Output>,
    ) -> Result<(), Refused> {
        let dm = msg.room == DM_ROOM;
        if dm {
            if let Err(e) = crate::dm::check_carried(&msg.body, &msg.author) {
                self.quota.drops.bad_dm += 1;
                self.counters.rejected += 1;
                let reason = match e {
                    crate::dm::DmError::BadRecipient => "direct message to an invalid node key",
                    crate::dm::DmError::Malformed(m) => m,
                    _ => "invalid direct message envelope",
                };
                out.push(Output::Rejected {
                    peer,
                    reason: ProtoError::Malformed(reason),
                });
                return Err(Refused::Invalid);
            }
        } else if crate::private::is_private_room(&msg.room) {
            if let Err(e) = crate::private::check_carried(msg) {
                self.quota.drops.bad_private += 1;
                self.counters.rejected += 1;
                let reason = match e {
                    crate::private::PrivateError::NameNotHidden => {
                        "private room message shows its author's name"
                    }
                    crate::private::PrivateError::Malformed(m) => m,
                    _ => "invalid private room envelope",
                };
                out.push(Output::Rejected {
                    peer,
                    reason: ProtoError::Malformed(reason),
                });
                return Err(Refused::Invalid);
            }
        }
        if msg.author == self.me {
            return Ok(());
        }
        match store.has(&msg.id()) {
            Ok(true) => return Ok(()), // a duplicate costs nothing: it is not stored again
            Ok(false) => {}
            Err(e) => {
                out.push(Output::StorageFailed(e));
                return Err(Refused::Quota);
            }
        }
        match self.author_over(store, msg) {
            Ok(false) => {}
            Ok(true) => {
                self.quota.drops.author += 1;
                return Err(Refused::Quota);
            }
            Err(e) => {
                out.push(Output::StorageFailed(e));
                return Err(Refused::Quota);
            }
        }
        if msg.author != peer && peer != super::BUNDLE_PEER {
            // Carried rooms and `dm` share one budget per peer; joined rooms have their own,
            // larger one (the user wants that history), so a sybil flood through one peer is
            // bounded there too.
            let joined = !dm && self.rooms.contains(&msg.room);
            let trusted = self.quota.trusted.contains(&peer);
            let now = self.now;
            let buckets = if joined && !trusted {
                &mut self.quota.joined_buckets
            } else {
                &mut self.quota.buckets
            };
            if !buckets.contains_key(&peer) && buckets.len() >= PEER_BUCKETS_CAP {
                let peers = &self.peers;
                buckets.retain(|id, _| peers.contains_key(id));
            }
            let bucket = buckets.entry(peer).or_insert_with(|| {
                if trusted {
                    TokenBucket::per_minute(TRUSTED_RELAY_BURST, TRUSTED_RELAY_PER_MIN)
                } else if joined {
                    TokenBucket::per_minute(PEER_JOINED_BURST, PEER_JOINED_PER_MIN)
                } else {
                    TokenBucket::per_minute(PEER_RELAY_BURST, PEER_RELAY_PER_MIN)
                }
            });
            if !bucket.take(now) {
                self.quota.drops.peer += 1;
                return Err(Refused::Quota);
            }
        }
        Ok(())
    }

    /// True if storing `msg` would put its author over a quota in its room.
    fn author_over(
        &mut self,
        store: &mut dyn Storage,
        msg: &Message,
    ) -> Result<bool, super::StorageError> {
        let key = (msg.room.clone(), msg.author);
        let (count, bytes) = match self.quota.usage.get(&key) {
            Some(u) => *u,
            None => {
                let u = store.author_usage(&msg.room, &msg.author)?;
                if self.quota.usage.len() >= AUTHOR_CACHE_CAP {
                    self.quota.usage.clear();
                }
                self.quota.usage.insert(key, u);
                u
            }
        };
        let size = msg.signed_bytes().len() as u64;
        if count >= MAX_AUTHOR_MESSAGES || bytes.saturating_add(size) > MAX_AUTHOR_BYTES {
            return Ok(true);
        }
        // Both sides of the timestamp: then any interval of one window holds at most the limit
        // (when the last of them came, all the others were within one window of it), and
        // back-dating each message below the previous one gains nothing.
        let from = msg.timestamp.saturating_sub(AUTHOR_WINDOW_MS - 1);
        let to = msg.timestamp.saturating_add(AUTHOR_WINDOW_MS - 1);
        let recent = store.author_count_between(&msg.room, &msg.author, from, to)?;
        Ok(recent >= AUTHOR_WINDOW_MESSAGES)
    }

    /// Records a message just stored from the network in the usage cache.
    pub(super) fn note_stored(&mut self, msg: &Message) {
        if let Some(u) = self.quota.usage.get_mut(&(msg.room.clone(), msg.author)) {
            u.0 += 1;
            u.1 += msg.signed_bytes().len() as u64;
        }
    }
}
