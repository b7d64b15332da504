//! Urgent messages first (docs/protocol.md §2.5).
//!
//! A message is urgent when its signed body starts with
//! [`URGENT_MARKER`](crate::message::URGENT_MARKER). On an open network anyone with a key can
//! mark everything urgent, so priority is a budget: per author, the first [`URGENT_BUDGET`]
//! urgent messages this node sees (publishes or stores) within [`URGENT_WINDOW_MS`] of
//! monotonic time get it; later ones are handled as ordinary messages and counted
//! ([`Counters::urgent_over_budget`]). A prioritised message jumps ahead of the ordinary ones
//! waiting in a peer's reply queue (catch-up and graft answers), and the driver asks
//! [`Protocol::is_priority`] to put its frame ahead of queued ordinary frames. A fresh push is
//! emitted at once in any case. Everything here is driven by the `now` given with the input.

use super::*;

/// Urgent messages per author that get priority within [`URGENT_WINDOW_MS`].
pub const URGENT_BUDGET: usize = 5;
/// The window of [`URGENT_BUDGET`], monotonic ms (10 minutes).
pub const URGENT_WINDOW_MS: u64 = 10 * 60 * 1000;
/// Authors whose recent urgent messages are remembered; when full, the table is cleared (an
/// attacker with many keys then gets at most one more budget per key, like after a restart).
pub const URGENT_AUTHORS_CAP: usize = 4_096;
/// Prioritised message ids remembered; the oldest are forgotten first (they have long been
/// sent by then).
pub const URGENT_IDS_CAP: usize = 4_096;

/// Budgets and the prioritised ids.
#[derive(Debug, Default)]
pub(super) struct UrgentState {
    /// Author → when its prioritised urgent messages were seen (within the window).
    granted: HashMap<NodeId, VecDeque<u64>>,
    /// Prioritised ids, as a set and oldest first.
    pub(super) ids: HashSet<MessageId>,
    order: VecDeque<MessageId>,
}

impl Protocol {
    /// Notes a message published here or stored for the first time: when it is urgent and its
    /// author is within budget, it is prioritised from now on; over budget it is counted.
    pub(super) fn note_urgent(&mut self, msg: &Message) {
        if !crate::message::is_urgent(&msg.body) {
            return;
        }
        self.grant_urgent(msg.id(), msg.author);
    }

    /// Hands the protocol urgent messages already stored (at start: the store's newest urgent
    /// messages, newest first), so they lead catch-ups after a restart too. Each goes through
    /// its author's budget like a message seen now: per author the newest
    /// [`URGENT_BUDGET`] are prioritised. The caller passes only urgent messages.
    pub fn note_stored_urgent(&mut self, urgent: impl IntoIterator<Item = (MessageId, NodeId)>) {
        for (id, author) in urgent.into_iter().take(URGENT_IDS_CAP) {
            self.grant_urgent(id, author);
        }
    }

    fn grant_urgent(&mut self, id: MessageId, author: NodeId) {
        if self.urgent.ids.contains(&id) {
            return;
        }
        let now = self.now;
        let u = &mut self.urgent;
        if u.granted.len() >= URGENT_AUTHORS_CAP && !u.granted.contains_key(&author) {
            u.granted.clear();
        }
        let times = u.granted.entry(author).or_default();
        while times
            .front()
            .is_some_and(|t| t.saturating_add(URGENT_WINDOW_MS) <= now)
        {
            times.pop_front();
        }
        if times.len() >= URGENT_BUDGET {
            self.counters.urgent_over_budget += 1;
            return;
        }
        times.push_back(now);
        u.ids.insert(id);
        u.order.push_back(id);
        while u.order.len() > URGENT_IDS_CAP {
            if let Some(old) = u.order.pop_front() {
                u.ids.remove(&old);
            }
        }
    }

    /// Whether message `id` is urgent and within its author's budget: it goes before ordinary
    /// messages waiting for a peer.
    pub fn is_priority(&self, id: &MessageId) -> bool {
        self.urgent.ids.contains(id)
    }

    /// Whether `frame` carries a prioritised message ([`Protocol::is_priority`]): the driver
    /// queues it ahead of ordinary frames.
    pub fn is_priority_frame(&self, frame: &Frame) -> bool {
        match frame {
            Frame::Msg { message, .. } => {
                crate::message::is_urgent(&message.body) && self.is_priority(&message.id())
            }
            _ => false,
        }
    }
}
