//! Membership of a private room: a pure function of its decrypted messages.
//!
//! Every member replays the same messages in the same `(timestamp, id)` order, so all of them
//! reach the same members and admins without any coordination. Rules (`docs/protocol.md`
//! "Private rooms"):
//!
//! - At the start the creator is the only member and the only admin.
//! - **Join** by X: X becomes a member (again, if it was removed: the last event wins) — unless
//!   X was removed earlier and the join is under an epoch older than that removal's new epoch
//!   (a removed member who kept the old key cannot let itself back in): ignored.
//! - **Text** by X: X is a member, unless it was removed and has not joined again since.
//! - **Remove** {T, e} by an admin: T is no longer a member or admin, removed at this
//!   timestamp with new epoch e. Removing the creator, or a remove by a non-admin: ignored.
//! - **Promote** {T} by an admin: T becomes an admin and a member. By a non-admin: ignored.
//!
//! A state built with [`Membership::apply_all`] must be rebuilt from [`Membership::new`] when
//! an event arrives that sorts before ones already applied.

use std::collections::{BTreeMap, BTreeSet};

use super::Content;
use crate::message::{MessageId, NodeId};

/// One decrypted message of a private room, as the membership rules see it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Event {
    /// Timestamp of the carrying message.
    pub timestamp: u64,
    /// Id of the carrying message (orders events of the same millisecond).
    pub id: MessageId,
    /// Author of the carrying message (verified).
    pub author: NodeId,
    /// Epoch of its envelope.
    pub epoch: u32,
    /// What it says.
    pub content: Content,
}

/// Who belongs to a private room, replayed from its events.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Membership {
    creator: NodeId,
    members: BTreeSet<NodeId>,
    admins: BTreeSet<NodeId>,
    /// Latest removal of each node not back since: (timestamp, new epoch).
    removed: BTreeMap<NodeId, (u64, u32)>,
    /// Every removal ever applied, per node (kept after a re-join, for [`Membership::shows`]).
    removals: BTreeMap<NodeId, Vec<(u64, u32)>>,
    ignored: u64,
}

impl Membership {
    /// A room whose only member and admin is `creator`.
    pub fn new(creator: NodeId) -> Self {
        Membership {
            creator,
            members: BTreeSet::from([creator]),
            admins: BTreeSet::from([creator]),
            removed: BTreeMap::new(),
            removals: BTreeMap::new(),
            ignored: 0,
        }
    }

    /// The room's creator.
    pub fn creator(&self) -> NodeId {
        self.creator
    }

    /// Sorts `events` by `(timestamp, id)`, then applies them in that order.
    // A `Vec` rather than a slice: the signature the node is written against.
    #[allow(clippy::ptr_arg)]
    pub fn apply_all(&mut self, events: &mut Vec<Event>) {
        events.sort_by_key(|e| (e.timestamp, e.id));
        for e in events.iter() {
            self.apply(e);
        }
    }

    /// Applies one event; the caller guarantees it sorts after every event applied before.
    pub fn apply(&mut self, ev: &Event) {
        let author = ev.author;
        match &ev.content {
            Content::Join => {
                let stale = self
                    .removals
                    .get(&author)
                    .is_some_and(|r| r.iter().any(|&(_, e)| ev.epoch < e));
                if stale {
                    self.ignored += 1;
                } else {
                    self.members.insert(author);
                    self.removed.remove(&author);
                }
            }
            Content::Text(_) => {
                if !self.removed.contains_key(&author) {
                    self.members.insert(author);
                }
            }
            Content::Remove { member, new_epoch } => {
                if !self.admins.contains(&author) || *member == self.creator {
                    self.ignored += 1;
                } else {
                    self.members.remove(member);
                    self.admins.remove(member);
                    self.removed.insert(*member, (ev.timestamp, *new_epoch));
                    self.removals
                        .entry(*member)
                        .or_default()
                        .push((ev.timestamp, *new_epoch));
                }
            }
            Content::Promote { member } => {
                if self.admins.contains(&author) {
                    self.admins.insert(*member);
                    self.members.insert(*member);
                    self.removed.remove(member);
                } else {
                    self.ignored += 1;
                }
            }
        }
    }

    /// True if `n` may remove and promote members.
    pub fn is_admin(&self, n: &NodeId) -> bool {
        self.admins.contains(n)
    }

    /// True if `n` is a member now.
    pub fn is_member(&self, n: &NodeId) -> bool {
        self.members.contains(n)
    }

    /// The members, sorted by id.
    pub fn members(&self) -> Vec<NodeId> {
        self.members.iter().copied().collect()
    }

    /// The admins, sorted by id.
    pub fn admins(&self) -> Vec<NodeId> {
        self.admins.iter().copied().collect()
    }

    /// When `n` was removed and the new epoch of that removal, if it is removed now (a later
    /// join or promotion clears it).
    pub fn removed_at(&self, n: &NodeId) -> Option<(u64, u32)> {
        self.removed.get(n).copied()
    }

    /// False for a message by an author that was removed before `timestamp` by a removal whose
    /// new epoch is newer than `epoch` (a removed member writing with the key it kept); true
    /// otherwise. Removals count even if the author joined again later.
    pub fn shows(&self, author: &NodeId, epoch: u32, timestamp: u64) -> bool {
        self.removals
            .get(author)
            .is_none_or(|r| !r.iter().any(|&(t, e)| timestamp > t && epoch < e))
    }

    /// Control events ignored so far: a remove or promote by a non-admin, a removal of the
    /// creator, a join under an epoch its author was removed from.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(b: u8) -> NodeId {
        NodeId([b; 32])
    }
    fn ev(timestamp: u64, author: u8, epoch: u32, content: Content) -> Event {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&timestamp.to_be_bytes());
        id[8] = author;
        Event {
            timestamp,
            id: MessageId(id),
            author: n(author),
            epoch,
            content,
        }
    }
    fn text(timestamp: u64, author: u8, epoch: u32) -> Event {
        ev(timestamp, author, epoch, Content::Text("hi".into()))
    }
    fn remove(timestamp: u64, by: u8, member: u8, new_epoch: u32) -> Event {
        let content = Content::Remove {
            member: n(member),
            new_epoch,
        };
        ev(timestamp, by, new_epoch.saturating_sub(1), content)
    }
    fn promote(timestamp: u64, by: u8, member: u8, epoch: u32) -> Event {
        ev(timestamp, by, epoch, Content::Promote { member: n(member) })
    }
    fn replay(creator: u8, mut events: Vec<Event>) -> Membership {
        let mut m = Membership::new(n(creator));
        m.apply_all(&mut events);
        m
    }

    #[test]
    fn creator_alone_then_joins_and_texts() {
        let m = Membership::new(n(1));
        assert_eq!((m.members(), m.admins()), (vec![n(1)], vec![n(1)]));
        assert_eq!(m.creator(), n(1));
        let m = replay(1, vec![ev(10, 2, 0, Content::Join), text(11, 3, 0)]);
        assert_eq!(m.members(), vec![n(1), n(2), n(3)]);
        assert!(!m.is_admin(&n(2)));
        assert_eq!(m.ignored(), 0);
    }

    #[test]
    fn remove_by_non_admin_and_removing_the_creator_are_ignored() {
        let m = replay(
            1,
            vec![
                ev(10, 2, 0, Content::Join),
                ev(11, 3, 0, Content::Join),
                remove(12, 2, 3, 1),
                promote(13, 3, 3, 0),
                remove(14, 1, 1, 1),
            ],
        );
        assert_eq!(m.members(), vec![n(1), n(2), n(3)]);
        assert_eq!(m.admins(), vec![n(1)]);
        assert_eq!(m.removed_at(&n(3)), None);
        assert_eq!(m.ignored(), 3);
    }

    #[test]
    fn removal_then_rejoin_under_the_new_epoch() {
        let base = vec![ev(10, 2, 0, Content::Join), remove(20, 1, 2, 1)];
        let m = replay(1, base.clone());
        assert!(!m.is_member(&n(2)));
        assert_eq!(m.removed_at(&n(2)), Some((20, 1)));
        // Texts after the removal do not make it a member again; a join with the old key is
        // refused; one with the new key (re-invited) is accepted.
        let mut evs = base.clone();
        evs.extend([text(21, 2, 0), ev(22, 2, 0, Content::Join)]);
        let m = replay(1, evs);
        assert!(!m.is_member(&n(2)));
        assert_eq!(m.ignored(), 1);
        let mut evs = base;
        evs.extend([ev(30, 2, 1, Content::Join), text(31, 2, 1)]);
        let m = replay(1, evs);
        assert!(m.is_member(&n(2)));
        assert_eq!(m.removed_at(&n(2)), None);
        // What it wrote with the old key after the removal stays hidden even so.
        assert!(!m.shows(&n(2), 0, 25));
        assert!(m.shows(&n(2), 1, 31));
        assert!(m.shows(&n(2), 0, 15));
    }

    #[test]
    fn promote_then_remove_by_the_promoted_admin() {
        let m = replay(
            1,
            vec![
                ev(10, 2, 0, Content::Join),
                ev(11, 3, 0, Content::Join),
                promote(12, 1, 2, 0),
                remove(13, 2, 3, 1),
            ],
        );
        assert_eq!(m.admins(), vec![n(1), n(2)]);
        assert_eq!(m.members(), vec![n(1), n(2)]);
        assert_eq!(m.removed_at(&n(3)), Some((13, 1)));
        // An admin removed loses its rights: its later remove is ignored.
        let m = replay(
            1,
            vec![
                ev(10, 2, 0, Content::Join),
                ev(11, 3, 0, Content::Join),
                promote(12, 1, 2, 0),
                remove(13, 1, 2, 1),
                remove(14, 2, 3, 2),
            ],
        );
        assert_eq!(m.admins(), vec![n(1)]);
        assert!(m.is_member(&n(3)));
        assert_eq!(m.ignored(), 1);
    }

    #[test]
    fn order_is_timestamp_then_id_whatever_the_input_order() {
        let evs = vec![
            text(40, 2, 0),
            remove(30, 1, 2, 1),
            ev(10, 2, 0, Content::Join),
        ];
        let mut rev = evs.clone();
        rev.reverse();
        let (a, b) = (replay(1, evs), replay(1, rev));
        assert_eq!(a, b);
        assert!(!a.is_member(&n(2)));
        // Same millisecond: the id decides (author 2's join has the larger id, so it comes
        // after the removal and, under the new epoch, brings it back).
        let m = replay(1, vec![ev(30, 2, 1, Content::Join), remove(30, 1, 2, 1)]);
        assert!(m.is_member(&n(2)));
    }

    #[test]
    fn shows_hides_only_old_key_messages_after_the_removal() {
        let m = replay(1, vec![ev(10, 2, 0, Content::Join), remove(20, 1, 2, 3)]);
        assert!(m.shows(&n(2), 0, 19));
        assert!(m.shows(&n(2), 2, 20));
        assert!(!m.shows(&n(2), 2, 21));
        assert!(!m.shows(&n(2), 0, 1_000));
        assert!(m.shows(&n(2), 3, 1_000));
        assert!(m.shows(&n(9), 0, 1_000));
        assert!(m.shows(&n(1), 0, 1_000));
    }
}
