//! Catch-up scheduling: when to reconcile a room with a peer (after hello, after a join,
//! every [`ANTI_ENTROPY_MS`], and retries of own messages from `retry.rs`), one tracked
//! exchange per (peer, room), and what an exchange's end proves.

use super::*;

/// One reconciliation exchange with a peer for a room.
#[derive(Debug, Clone, Copy)]
pub(super) struct Exchange {
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
    /// We started it (our salt).
    ours: bool,
}

impl Exchange {
    pub(super) fn stale(&self, now: u64) -> bool {
        now.saturating_sub(self.last) >= EXCHANGE_IDLE_MS
    }

    /// Still running: not finished and not idle past [`EXCHANGE_IDLE_MS`].
    pub(super) fn open(&self, now: u64) -> bool {
        !self.finished && !self.stale(now)
    }
}

impl Protocol {
    /// Starts reconciling `room` with `peer` if we are the initiator of this pair (the lower
    /// id; the other side answers). `compact` is the cheap periodic check (46 bytes when the
    /// sets are equal).
    pub(super) fn offer(
        &mut self,
        store: &mut dyn Storage,
        peer: NodeId,
        room: &str,
        out: &mut Vec<Output>,
    ) {
        self.start_recon(store, peer, room, false, out);
    }

    pub(super) fn start_recon(
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
        self.open_recon(store, peer, room, compact, out);
    }

    /// Starts reconciling `room` with `peer` whichever side is the usual initiator (a retry of
    /// own messages no peer holds, retry.rs). Should the peer start one at the same time, the
    /// lower id's exchange goes on (see `track_exchange`).
    pub(super) fn open_recon(
        &mut self,
        store: &mut dyn Storage,
        peer: NodeId,
        room: &str,
        compact: bool,
        out: &mut Vec<Output>,
    ) {
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
                    ours: true,
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

    pub(super) fn on_recon(
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
    /// opens one (unless one is running, or the last started under RECON_MIN_GAP_MS ago;
    /// except that a lower id's start replaces one we just started, crossing it),
    /// a later round must belong to the open (or just finished) exchange of the same salt.
    pub(super) fn track_exchange(
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
        let me = self.me;
        let p = self.peers.get_mut(&peer).ok_or(DropReason::NoExchange)?;
        if msg.round == 0 {
            // A start crossing one we just started (a retry, retry.rs): the lower id's
            // exchange goes on, so the higher id gives its own up.
            let crossing = peer < me
                && p.exchanges
                    .get(room)
                    .is_some_and(|x| x.ours && !x.finished && !x.stale(now));
            if !p.buckets.get(Budget::ReconStart).take(now) {
                return Err(DropReason::RateLimited(Budget::ReconStart));
            }
            if !crossing
                && p.exchanges
                    .get(room)
                    .is_some_and(|x| !x.finished && !x.stale(now))
            {
                return Err(DropReason::ExchangeBusy);
            }
            if too_soon && !crossing {
                return Err(DropReason::RateLimited(Budget::ReconStart));
            }
            p.exchanges.insert(
                room.to_string(),
                Exchange {
                    salt: msg.salt,
                    last: now,
                    finished: false,
                    late_dones: 0,
                    ours: false,
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
    pub(super) fn finish_exchange(&mut self, peer: NodeId, room: &str) -> bool {
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
    pub(super) fn on_recon_done(&mut self, peer: NodeId, room: String, out: &mut Vec<Output>) {
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

    /// Periodic re-check of every shared room with every peer (initiator side only), so a
    /// pull lost to a dropped link or a crash is repaired without waiting for a reconnect.
    pub(super) fn anti_entropy(&mut self, store: &mut dyn Storage, out: &mut Vec<Output>) {
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
    pub(super) fn send_wanted(
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
            if p.replies.len() + p.urgent_replies.len() >= REPLY_QUEUE_CAP {
                full = true;
                break;
            }
            p.queued.insert(id);
            if self.urgent.ids.contains(&id) {
                p.urgent_replies.push_back(id);
            } else {
                p.replies.push_back(id);
            }
        }
        if full {
            self.drop_frame(peer, DropReason::ReplyQueueFull, out);
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
