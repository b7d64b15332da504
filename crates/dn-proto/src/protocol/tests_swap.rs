//! The tree swap (PlumTree's optimisation): a lazy peer whose announcements come well ahead
//! of the tree's copies becomes eager, the slow eager one lazy; equal paths never swap; the
//! state it needs stays bounded.

use ed25519_dalek::SigningKey;

use super::*;

const ROOM: &str = "medical";

/// One node under test and fake peers that talk to it directly.
struct Rig {
    proto: Protocol,
    store: MemStorage,
    now: u64,
    author: SigningKey,
    seq: u64,
}

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn id_of(k: &SigningKey) -> NodeId {
    NodeId(k.verifying_key().to_bytes())
}

impl Rig {
    fn new(peers: &[NodeId]) -> Rig {
        let mut rig = Rig {
            proto: Protocol::new(id_of(&key(1)), "me".into(), 7000, [ROOM.to_string()]),
            store: MemStorage::default(),
            now: 0,
            author: key(99),
            seq: 0,
        };
        for &peer in peers {
            rig.input(Input::Connected { peer });
            rig.frame(
                peer,
                Frame::Hello {
                    version: PROTOCOL_VERSION,
                    node: peer,
                    name: "peer".into(),
                    rooms: vec![ROOM.into()],
                    listen_port: 1,
                },
            );
        }
        rig
    }

    fn input(&mut self, input: Input) -> Vec<Output> {
        self.proto.handle(&mut self.store, input, self.now)
    }

    /// Feeds a frame (through the codec) at the current time; returns the frames sent.
    #[allow(clippy::needless_pass_by_value)] // call sites read better with owned frames
    fn frame(&mut self, peer: NodeId, frame: Frame) -> Vec<(NodeId, Frame)> {
        let frame = super::tests::wire(&frame);
        sends(self.input(Input::Frame { peer, frame }))
    }

    fn next_message(&mut self) -> Message {
        self.seq += 1;
        Message::create(
            &self.author,
            ROOM,
            "carol",
            self.seq,
            &format!("m{}", self.seq),
        )
        .unwrap()
    }

    /// `lazy` announces a new message at `now`, `eager` pushes it `lag` ms later (a
    /// negative lag: the push comes first). Returns what the node sent on the push.
    fn race(&mut self, lazy: NodeId, eager: NodeId, lag: i64) -> Vec<(NodeId, Frame)> {
        let m = self.next_message();
        let ihave = Frame::IHave {
            room: ROOM.into(),
            ids: vec![m.id()],
        };
        let push = Frame::Msg {
            hops: DEFAULT_HOPS - 3,
            message: m,
        };
        let out = if lag >= 0 {
            self.frame(lazy, ihave);
            self.now += lag.unsigned_abs();
            self.frame(eager, push)
        } else {
            let out = self.frame(eager, push);
            self.now += lag.unsigned_abs();
            self.frame(lazy, ihave);
            out
        };
        // The next message comes well after the cooldown unless a test says otherwise.
        self.now += 2 * SWAP_COOLDOWN_MS;
        out
    }
}

fn sends(outs: Vec<Output>) -> Vec<(NodeId, Frame)> {
    outs.into_iter()
        .filter_map(|o| match o {
            Output::Send { peer, frame } => Some((peer, frame)),
            _ => None,
        })
        .collect()
}

fn empty_graft_to(out: &[(NodeId, Frame)], to: NodeId) -> bool {
    out.iter()
        .any(|(p, f)| *p == to && matches!(f, Frame::Graft { ids, .. } if ids.is_empty()))
}

fn prune_to(out: &[(NodeId, Frame)], to: NodeId) -> bool {
    out.iter()
        .any(|(p, f)| *p == to && matches!(f, Frame::Prune { .. }))
}

#[test]
fn a_lazy_path_faster_twice_in_a_row_is_swapped_in() {
    let (fast, slow) = (id_of(&key(2)), id_of(&key(3)));
    let mut rig = Rig::new(&[fast, slow]);
    let lag = SWAP_THRESHOLD_MS as i64 + 150;
    // One message alone does not move the tree (another sender may see it the other way).
    let out = rig.race(fast, slow, lag);
    assert!(!empty_graft_to(&out, fast) && !prune_to(&out, slow));
    assert_eq!(rig.proto.counters().swaps, 0);
    // The second in a row does: the fast announcer's link becomes eager, the slow pusher's
    // lazy, at both ends.
    let out = rig.race(fast, slow, lag);
    assert!(empty_graft_to(&out, fast), "{out:?}");
    assert!(prune_to(&out, slow), "{out:?}");
    let c = rig.proto.counters();
    assert_eq!((c.swaps, c.prunes, c.grafts), (1, 1, 0));
    assert_eq!(rig.proto.eager_peers(ROOM), vec![fast]);
    assert_eq!(
        rig.proto.pending_repairs(),
        0,
        "the copy cleared its repair"
    );
    // A message published here now goes to the fast peer as Msg, to the slow one as IHave.
    let m = Message::create(&key(1), ROOM, "me", 100, "from me").unwrap();
    let out = sends(rig.input(Input::Published(m)));
    assert!(out
        .iter()
        .any(|(p, f)| *p == fast && matches!(f, Frame::Msg { .. })));
    assert!(out
        .iter()
        .any(|(p, f)| *p == slow && matches!(f, Frame::IHave { .. })));
}

#[test]
fn the_other_end_of_an_empty_graft_makes_the_link_eager_and_sends_nothing() {
    let a = id_of(&key(2));
    let mut rig = Rig::new(&[a]);
    rig.frame(a, Frame::Prune { room: ROOM.into() });
    assert!(rig.proto.eager_peers(ROOM).is_empty());
    let out = rig.frame(
        a,
        Frame::Graft {
            room: ROOM.into(),
            ids: vec![],
        },
    );
    assert!(out.is_empty(), "no payload for an empty graft: {out:?}");
    assert_eq!(rig.proto.eager_peers(ROOM), vec![a]);
    // Paid from the Graft budget like one id: a flood of them is cut off and counted.
    let before = rig.proto.counters().drops.total();
    for _ in 0..5_000 {
        rig.frame(
            a,
            Frame::Graft {
                room: ROOM.into(),
                ids: vec![],
            },
        );
    }
    assert!(rig.proto.counters().drops.total() > before);
}

#[test]
fn equal_paths_never_swap() {
    let (a, b) = (id_of(&key(2)), id_of(&key(3)));
    let mut rig = Rig::new(&[a, b]);
    // Two paths of about the same length: either one's copy or announcement comes first by
    // less than the threshold, in every order, for many messages.
    let below = SWAP_THRESHOLD_MS as i64 - 10;
    for i in 0..40i64 {
        let lag = [below, -below, 0, below / 2][(i % 4) as usize];
        let (lazy, eager) = if i % 3 == 0 { (a, b) } else { (b, a) };
        let out = rig.race(lazy, eager, lag);
        assert!(
            !empty_graft_to(&out, a) && !empty_graft_to(&out, b),
            "{i}: {out:?}"
        );
    }
    assert_eq!(rig.proto.counters().swaps, 0);
}

#[test]
fn senders_on_both_sides_do_not_make_the_tree_flip() {
    // Changing senders: one message is much faster through a, the next through b, and so
    // on. Neither link wins twice in a row, so the tree stays as it is.
    let (a, b) = (id_of(&key(2)), id_of(&key(3)));
    let mut rig = Rig::new(&[a, b]);
    let lag = SWAP_THRESHOLD_MS as i64 + 200;
    for i in 0..40 {
        let (lazy, eager) = if i % 2 == 0 { (a, b) } else { (b, a) };
        rig.race(lazy, eager, lag);
    }
    assert_eq!(rig.proto.counters().swaps, 0);
    assert_eq!(rig.proto.eager_peers(ROOM).len(), 2);
}

#[test]
fn swaps_are_spaced_and_need_no_state_of_their_own() {
    // A peer that always announces first (or lies about it) gets at most one swap per
    // cooldown, and the repairs its announcements create stay within the per-peer cap.
    let (liar, other) = (id_of(&key(2)), id_of(&key(3)));
    let mut rig = Rig::new(&[liar, other]);
    let start = rig.now;
    for _ in 0..200 {
        let m = rig.next_message();
        rig.frame(
            liar,
            Frame::IHave {
                room: ROOM.into(),
                ids: vec![m.id()],
            },
        );
        rig.now += SWAP_THRESHOLD_MS + 1;
        rig.frame(
            other,
            Frame::Msg {
                hops: 10,
                message: m,
            },
        );
        // Put both links back to eager, as a fresh tree would be.
        rig.frame(
            other,
            Frame::Graft {
                room: ROOM.into(),
                ids: vec![],
            },
        );
    }
    let elapsed = rig.now - start;
    let swaps = rig.proto.counters().swaps;
    assert!(swaps >= 1);
    assert!(
        swaps <= elapsed / SWAP_COOLDOWN_MS + 1,
        "{swaps} swaps in {elapsed} ms"
    );
    assert_eq!(rig.proto.pending_repairs(), 0);
    // A flood of announcements for messages that never come: the pending table refuses past
    // its per-peer cap (counted), so what a swap could look at is bounded too.
    let ids: Vec<MessageId> = (0..(MISSING_PER_PEER as u32 + 100))
        .map(|i| {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&i.to_be_bytes());
            MessageId(b)
        })
        .collect();
    for chunk in ids.chunks(crate::codec::MAX_IDS_PER_FRAME) {
        rig.frame(
            liar,
            Frame::IHave {
                room: ROOM.into(),
                ids: chunk.to_vec(),
            },
        );
        rig.now += 60_000; // refill the IHave budget
    }
    assert!(rig.proto.pending_repairs() <= MISSING_PER_PEER);
}

#[test]
fn a_duplicate_does_not_cut_a_link_that_just_delivered_a_first_copy() {
    // Two messages in flight at once cross a cycle: each duplicate would prune a different
    // link of it. A link that gave a first copy within `prune_hold_ms` is kept.
    let (a, b) = (id_of(&key(2)), id_of(&key(3)));
    let mut rig = Rig::new(&[a, b]);
    let m1 = rig.next_message();
    rig.frame(
        a,
        Frame::Msg {
            hops: 10,
            message: m1.clone(),
        },
    );
    rig.now += 100;
    let out = rig.frame(
        a,
        Frame::Msg {
            hops: 10,
            message: m1.clone(),
        },
    );
    assert!(!prune_to(&out, a), "a just delivered a first copy: kept");
    // b delivered nothing new: its duplicate prunes it as before.
    let out = rig.frame(
        b,
        Frame::Msg {
            hops: 10,
            message: m1.clone(),
        },
    );
    assert!(prune_to(&out, b));
    // Once the hold is over, a's duplicates prune it too.
    rig.now += PRUNE_HOLD_MS;
    let out = rig.frame(
        a,
        Frame::Msg {
            hops: 10,
            message: m1,
        },
    );
    assert!(prune_to(&out, a));
    assert_eq!(rig.proto.counters().duplicates, 3);
}
