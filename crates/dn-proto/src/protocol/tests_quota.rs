//! Open-network attacks against one node, sent as real frames (encoded and decoded): storage
//! quotas, direct-message envelopes, topology admission and carry by demand.

use ed25519_dalek::SigningKey;

use super::*;
use crate::dm::{self, DM_ROOM};
use crate::topo::Neighbour;

fn key(seed: u64) -> SigningKey {
    let mut b = [0xA5u8; 32];
    b[..8].copy_from_slice(&seed.to_be_bytes());
    SigningKey::from_bytes(&b)
}
fn id(k: &SigningKey) -> NodeId {
    NodeId(k.verifying_key().to_bytes())
}

/// One node under test; everything it sends is collected.
struct Victim<S: Storage> {
    p: Protocol,
    s: S,
    now: u64,
    out: Vec<Output>,
}

impl Victim<MemStorage> {
    fn new(rooms: &[&str]) -> Self {
        Self::with_store(rooms, MemStorage::default(), Config::default())
    }
}

impl<S: Storage> Victim<S> {
    fn with_store(rooms: &[&str], s: S, config: Config) -> Self {
        let mut p = Protocol::with_config(
            id(&key(0)),
            "victim".into(),
            7000,
            rooms.iter().map(|r| r.to_string()),
            config,
        );
        p.carry_rooms([DM_ROOM.to_string()]);
        Victim {
            p,
            s,
            now: 1,
            out: Vec::new(),
        }
    }
    fn input(&mut self, input: Input) {
        let outs = self.p.handle(&mut self.s, input, self.now);
        self.out.extend(outs);
    }
    /// Delivers `frame` from `peer` through the wire format.
    #[allow(clippy::needless_pass_by_value)]
    fn frame(&mut self, peer: NodeId, frame: Frame) {
        let frame = Frame::decode(&frame.encode()).unwrap();
        self.input(Input::Frame { peer, frame });
    }
    fn connect(&mut self, peer: NodeId, rooms: &[&str]) {
        self.input(Input::Connected { peer });
        self.frame(
            peer,
            Frame::Hello {
                version: PROTOCOL_VERSION,
                node: peer,
                name: "peer".into(),
                rooms: rooms.iter().map(|r| r.to_string()).collect(),
                listen_port: 7000,
            },
        );
    }
    fn msg(&mut self, peer: NodeId, m: &Message) {
        self.frame(
            peer,
            Frame::Msg {
                hops: 5,
                message: m.clone(),
            },
        );
    }
    fn take(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }
    fn closed(&self) -> bool {
        self.out.iter().any(|o| matches!(o, Output::Close { .. }))
    }
    fn carried(&self) -> Vec<String> {
        self.p.carried().cloned().collect()
    }
}

fn stored(outs: &[Output]) -> usize {
    outs.iter()
        .filter(|o| matches!(o, Output::Stored { .. }))
        .count()
}
fn rejected(outs: &[Output]) -> usize {
    outs.iter()
        .filter(|o| matches!(o, Output::Rejected { .. }))
        .count()
}

// ---- c. direct-message envelopes ----------------------------------------------------------

#[test]
fn dm_room_stores_only_valid_envelopes_for_another_node() {
    let mut v = Victim::new(&["medical"]);
    let (a, b) = (key(1), key(2));
    v.connect(id(&a), &[DM_ROOM]);
    v.take();
    let env = dm::seal(&a, &id(&b), "meet at the school", 5, [3; 32], [4; 24]).unwrap();
    let to_self = dm::seal(&a, &id(&a), "note", 5, [3; 32], [4; 24]).unwrap();
    let mut bad_key = env.clone();
    bad_key.recipient = NodeId({
        let mut k = [0u8; 32];
        k[0] = 2; // not a curve point
        k
    });
    let mut identity = env.clone();
    identity.recipient = NodeId({
        let mut k = [0u8; 32];
        k[0] = 1; // neutral element: valid encoding, small order
        k
    });
    for body in [
        "junk that fills every carrier".to_string(),
        "dm1:!!!not base64".to_string(),
        dm::to_body(&to_self),
        dm::to_body(&bad_key),
        dm::to_body(&identity),
    ] {
        let m = Message::create(&a, DM_ROOM, "a", 5, &body).unwrap();
        v.msg(id(&a), &m);
        assert!(!v.s.has(&m.id()).unwrap(), "stored {body:.30}");
    }
    let outs = v.take();
    assert_eq!(rejected(&outs), 5);
    assert_eq!(stored(&outs), 0);
    assert_eq!(v.p.quota_drops().bad_dm, 5);
    // The same sender's valid envelope is stored: the link keeps serving.
    let good = Message::create(&a, DM_ROOM, "a", 5, &dm::to_body(&env)).unwrap();
    v.msg(id(&a), &good);
    assert!(v.s.has(&good.id()).unwrap());
    assert!(!v.closed());
}

#[test]
fn private_rooms_store_only_envelopes_that_hide_the_author_name() {
    use crate::private::{self, Content, Plain, RoomId, HIDDEN_AUTHOR_NAME};
    let room_key = [7u8; 32];
    let rid = RoomId::from_key(&room_key);
    let room = rid.room_name();
    // A member of the room (it is joined here), so nothing is refused for being carried.
    let mut v = Victim::new(&[room.as_str()]);
    let a = key(1);
    v.connect(id(&a), &[room.as_str()]);
    v.take();
    let plain = Plain {
        room_name: "medical".into(),
        author_name: "Ana".into(),
        content: Content::Text("tent 4".into()),
    };
    let body = private::seal(&rid, 0, &room_key, &id(&a), 5, &plain, [1; 24]).unwrap();
    for (name, body) in [
        (
            HIDDEN_AUTHOR_NAME,
            "plain text in a private room".to_string(),
        ),
        (HIDDEN_AUTHOR_NAME, "pr1:!!!".to_string()),
        ("Ana", body.clone()),
    ] {
        let m = Message::create(&a, &room, name, 5, &body).unwrap();
        v.msg(id(&a), &m);
        assert!(!v.s.has(&m.id()).unwrap(), "stored {name} {body:.30}");
    }
    let outs = v.take();
    assert_eq!(rejected(&outs), 3);
    assert_eq!(v.p.quota_drops().bad_private, 3);
    let good = Message::create(&a, &room, HIDDEN_AUTHOR_NAME, 5, &body).unwrap();
    v.msg(id(&a), &good);
    assert!(v.s.has(&good.id()).unwrap());
    assert!(!v.closed());
}

// ---- a. per-author quota ------------------------------------------------------------------

#[test]
fn one_author_is_bounded_per_window_and_back_dating_does_not_help() {
    let mut v = Victim::new(&["medical"]);
    let spammer = key(1);
    let p = id(&spammer);
    v.connect(p, &["medical"]);
    let hour = 1_000_000_000u64;
    let over = 100;
    for i in 0..AUTHOR_WINDOW_MESSAGES + over {
        let m = Message::create(&spammer, "medical", "s", hour + i, "spam").unwrap();
        v.msg(p, &m);
    }
    // Back-dated, each below the previous: the window counts both sides.
    for i in 0..over {
        let m = Message::create(&spammer, "medical", "s", hour - 1 - i, "old").unwrap();
        v.msg(p, &m);
    }
    assert_eq!(
        v.s.author_usage("medical", &p).unwrap().0,
        AUTHOR_WINDOW_MESSAGES
    );
    assert_eq!(v.p.quota_drops().author, 2 * over);
    assert!(!v.closed(), "a quota drop does not close the link");
    // Honest traffic is unaffected: another author now, the same author an hour later.
    let honest = Message::create(&key(2), "medical", "h", hour + 5, "need water").unwrap();
    let later =
        Message::create(&spammer, "medical", "s", hour + 2 * AUTHOR_WINDOW_MS, "x").unwrap();
    v.msg(p, &honest);
    v.msg(p, &later);
    assert!(v.s.has(&honest.id()).unwrap());
    assert!(v.s.has(&later.id()).unwrap());
}

/// A store that reports a fixed usage for every author (to reach the totals cheaply).
struct FullStore {
    inner: MemStorage,
    usage: (u64, u64),
}

impl Storage for FullStore {
    fn has(&self, id: &MessageId) -> Result<bool, StorageError> {
        self.inner.has(id)
    }
    fn insert(&mut self, msg: &Message) -> Result<bool, StorageError> {
        self.inner.insert(msg)
    }
    fn room_set(&self, room: &str) -> Result<Vec<(u64, MessageId)>, StorageError> {
        self.inner.room_set(room)
    }
    fn get(&self, id: &MessageId) -> Result<Option<Message>, StorageError> {
        self.inner.get(id)
    }
    fn author_usage(&self, _: &str, _: &NodeId) -> Result<(u64, u64), StorageError> {
        Ok(self.usage)
    }
    fn author_count_between(
        &self,
        room: &str,
        author: &NodeId,
        from: u64,
        to: u64,
    ) -> Result<u64, StorageError> {
        self.inner.author_count_between(room, author, from, to)
    }
    carry_storage_via_inner!();
}

#[test]
fn author_totals_are_enforced_in_every_room_but_never_for_our_own_messages() {
    for usage in [
        (MAX_AUTHOR_MESSAGES, 0),
        (0, MAX_AUTHOR_BYTES - 10), // the next message does not fit
    ] {
        let store = FullStore {
            inner: MemStorage::default(),
            usage,
        };
        let mut v = Victim::with_store(&["medical"], store, Config::default());
        let a = key(1);
        v.connect(id(&a), &["medical", DM_ROOM]);
        let m = Message::create(&a, "medical", "a", 5, "one more").unwrap();
        let env = dm::seal(&a, &id(&key(2)), "hi", 6, [3; 32], [4; 24]).unwrap();
        let d = Message::create(&a, DM_ROOM, "a", 6, &dm::to_body(&env)).unwrap();
        v.msg(id(&a), &m);
        v.msg(id(&a), &d);
        assert!(!v.s.has(&m.id()).unwrap(), "{usage:?}");
        assert!(!v.s.has(&d.id()).unwrap(), "dm room too, {usage:?}");
        assert_eq!(v.p.quota_drops().author, 2);
        // Our own message coming back from a peer (e.g. after a restart) is always taken.
        let mine = Message::create(&key(0), "medical", "me", 7, "mine").unwrap();
        v.msg(id(&a), &mine);
        assert!(v.s.has(&mine.id()).unwrap());
    }
}

// ---- b. per-peer quota --------------------------------------------------------------------

#[test]
fn a_relaying_peer_is_rate_limited_in_carried_rooms_and_more_generously_in_joined_ones() {
    let mut v = Victim::new(&["medical"]);
    v.p.carry_rooms(["logistics".to_string()]);
    let relay = id(&key(1));
    v.connect(relay, &["medical", "logistics"]);
    // Sybil authors, each under its own quota, all relayed by one peer.
    let authors: Vec<SigningKey> = (100..106).map(key).collect();
    let total = PEER_RELAY_BURST + 200;
    for i in 0..total {
        let a = &authors[(i % 6) as usize];
        let m = Message::create(a, "logistics", "s", 1_000 + i, "junk").unwrap();
        v.msg(relay, &m);
    }
    let held = v.s.room_set("logistics").unwrap().len() as u64;
    assert_eq!(held, PEER_RELAY_BURST);
    assert_eq!(v.p.quota_drops().peer, 200);
    // Joined rooms have their own, larger budget: a big history the user wants still comes in.
    let j = Message::create(&authors[0], "medical", "s", 5, "joined room").unwrap();
    v.msg(relay, &j);
    assert!(v.s.has(&j.id()).unwrap());
    // The peer's own messages count for its author quota, not the relay rate.
    let own = Message::create(&key(1), "logistics", "r", 5, "my own").unwrap();
    v.msg(relay, &own);
    assert!(v.s.has(&own.id()).unwrap());
    // A minute later the bucket has refilled by the rate.
    v.now += 60_000;
    for i in 0..PEER_RELAY_PER_MIN + 10 {
        let a = &authors[(i % 6) as usize];
        let m = Message::create(a, "logistics", "s", 500_000 + i, "later").unwrap();
        v.msg(relay, &m);
    }
    let held2 = v.s.room_set("logistics").unwrap().len() as u64;
    assert_eq!(held2, PEER_RELAY_BURST + 1 + PEER_RELAY_PER_MIN);
    assert!(!v.closed());
}

#[test]
fn sybil_authors_through_one_peer_are_bounded_in_joined_rooms_too() {
    let mut v = Victim::new(&["medical"]);
    let relay = id(&key(1));
    v.connect(relay, &["medical"]);
    // A fresh author every 50 messages: no author quota ever applies.
    let total = PEER_JOINED_BURST + 300;
    let mut author = key(200);
    for i in 0..total {
        if i % 50 == 0 {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i + 1).to_be_bytes());
            author = SigningKey::from_bytes(&seed);
        }
        let m = Message::create(&author, "medical", "s", 1_000 + i, "junk").unwrap();
        v.msg(relay, &m);
    }
    let held = v.s.room_set("medical").unwrap().len() as u64;
    assert_eq!(
        held, PEER_JOINED_BURST,
        "the burst, then nothing without time passing"
    );
    assert_eq!(v.p.quota_drops().peer, 300);
    // Another peer's messages are not affected by this peer's budget.
    let other = id(&key(2));
    v.connect(other, &["medical"]);
    let m = Message::create(&key(3), "medical", "t", 7, "relayed by someone else").unwrap();
    v.msg(other, &m);
    assert!(v.s.has(&m.id()).unwrap());
    // A second later 100 more get through.
    v.now += 1_000;
    for i in 0..(PEER_JOINED_PER_MIN / 60 + 10) {
        let m = Message::create(&author, "medical", "s", 900_000 + i, "later").unwrap();
        v.msg(relay, &m);
    }
    let held2 = v.s.room_set("medical").unwrap().len() as u64;
    assert_eq!(held2, PEER_JOINED_BURST + 1 + PEER_JOINED_PER_MIN / 60);
}

#[test]
fn a_relay_the_user_chose_brings_a_backlog_past_the_per_peer_budget() {
    let mut v = Victim::new(&["medical"]);
    let relay = id(&key(1));
    v.connect(relay, &["medical"]);
    assert!(v.p.set_trusted_relay(relay, true));
    assert!(v.p.is_trusted_relay(&relay));
    // A site's backlog through its relay: more than an ordinary peer's burst, fresh authors
    // every 50 messages as a busy site has.
    let total = PEER_JOINED_BURST + 500;
    let mut author = key(200);
    for i in 0..total {
        if i % 50 == 0 {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i + 1).to_be_bytes());
            author = SigningKey::from_bytes(&seed);
        }
        let m = Message::create(&author, "medical", "s", 1_000 + i, "backlog").unwrap();
        v.msg(relay, &m);
    }
    let held = v.s.room_set("medical").unwrap().len() as u64;
    assert_eq!(held, total, "all of it, at once");
    assert_eq!(v.p.quota_drops().peer, 0);
    // Per-author quotas still apply to what a trusted relay brings.
    let spam = key(77);
    for i in 0..AUTHOR_WINDOW_MESSAGES + 5 {
        let m = Message::create(&spam, "medical", "s", 5_000_000 + i, "x").unwrap();
        v.msg(relay, &m);
    }
    assert_eq!(v.p.quota_drops().author, 5);
    // No longer a relay: an ordinary peer's budget again (a fresh burst, then the rate).
    assert!(v.p.set_trusted_relay(relay, false));
    assert!(!v.p.is_trusted_relay(&relay));
    // The number of trusted peers is capped.
    for i in 0..MAX_TRUSTED_RELAYS as u64 {
        let mut seed = [9u8; 32];
        seed[..8].copy_from_slice(&i.to_be_bytes());
        assert!(v
            .p
            .set_trusted_relay(id(&SigningKey::from_bytes(&seed)), true));
    }
    assert!(!v.p.set_trusted_relay(relay, true), "past the cap");
    assert!(!v.p.is_trusted_relay(&relay));
}

// ---- d. topology ----------------------------------------------------------------------------

fn record(k: &SigningKey, seq: u64, nbs: &[NodeId]) -> TopoRecord {
    let n = nbs
        .iter()
        .map(|id| Neighbour {
            id: *id,
            addr: None,
            rtt_ms: None,
        })
        .collect();
    TopoRecord::create(k, seq, "n", n)
}

fn topo_sends(outs: &[Output]) -> usize {
    outs.iter()
        .filter(|o| {
            matches!(
                o,
                Output::Send {
                    frame: Frame::Topo(_),
                    ..
                }
            )
        })
        .count()
}

#[test]
fn sybil_neighbour_lists_stay_under_the_cap_and_paths_stay_cheap() {
    let mut v = Victim::new(&["medical"]);
    let me = id(&key(0));
    let (ka, kb, katt) = (key(1), key(2), key(3));
    let (a, b, att) = (id(&ka), id(&kb), id(&katt));
    // Honest: me - a - b - far.
    let kfar = key(4);
    for (p, rooms) in [(a, ["medical"]), (att, ["medical"])] {
        v.connect(p, &rooms);
    }
    v.input(Input::LocalTopology(record(&key(0), 1, &[a, att])));
    v.frame(a, Frame::Topo(record(&ka, 1, &[me, b])));
    v.frame(a, Frame::Topo(record(&kb, 1, &[a, id(&kfar)])));
    v.frame(a, Frame::Topo(record(&kfar, 1, &[b])));
    v.take();
    // 5,000 forged nodes from one link, spread over 40 minutes (past its burst by the rate).
    let n = 5_000u64;
    for i in 0..n {
        v.now += 500;
        let k = key(10_000 + i);
        v.frame(att, Frame::Topo(record(&k, 1, &[att])));
    }
    let outs = v.take();
    let d = v.p.topo_drops();
    let held = v.p.graph().len();
    assert!(held <= MAX_TOPO_RECORDS, "{held}");
    assert!(
        d.full > 0 && d.full + d.peer_rate + (held as u64) >= n,
        "{d:?}"
    );
    // What was flooded on is bounded by what was taken in (one copy to the one other peer).
    assert!(
        topo_sends(&outs) <= MAX_TOPO_RECORDS,
        "{}",
        topo_sends(&outs)
    );
    // Honest records survive.
    for k in [&ka, &kb, &kfar] {
        assert!(v.p.graph().record(&id(k)).is_some());
    }
    // A near node (a's neighbour, confirmed by a) is still taken in at the cap; it replaces
    // the farthest record (under attack the view shrinks to our neighbourhood).
    let knew = key(5);
    v.now += TOPO_MIN_GAP_MS;
    v.frame(a, Frame::Topo(record(&ka, 2, &[me, b, id(&knew)])));
    v.frame(a, Frame::Topo(record(&knew, 1, &[a])));
    assert!(v.p.graph().record(&id(&knew)).is_some());
    assert!(v.p.graph().len() <= MAX_TOPO_RECORDS);
    // Path lookups (one per DM push) reuse one BFS until the graph changes.
    let runs = v.p.graph().bfs_runs();
    for _ in 0..1_000 {
        assert_eq!(v.p.graph().path(&me, &b).map(|p| p.len()), Some(3));
        assert_eq!(v.p.graph().hops_from(&me).get(&id(&knew)), Some(&2));
    }
    assert!(v.p.graph().bfs_runs() - runs <= 1);
    // A newcomer gets a bounded, nearest-first subset.
    let newcomer = id(&key(6));
    v.take();
    v.connect(newcomer, &["medical"]);
    let outs = v.take();
    let to_new: Vec<&TopoRecord> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                peer,
                frame: Frame::Topo(r),
            } if *peer == newcomer => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(to_new.len(), TOPO_HELLO_MAX);
    assert_eq!(to_new[0].node, me, "nearest first");
    assert_eq!(to_new[1].node, a, "then our direct peers");
}

#[test]
fn one_node_may_not_replace_its_record_faster_than_the_gap() {
    let mut v = Victim::new(&["medical"]);
    let ka = key(1);
    let a = id(&ka);
    v.connect(a, &["medical"]);
    let other = id(&key(2));
    v.connect(other, &["medical"]);
    v.take();
    for seq in 1..=100 {
        v.now += 100;
        v.frame(a, Frame::Topo(record(&ka, seq, &[])));
    }
    let outs = v.take();
    // 10 s in 100 ms steps: the first record, two early ones (at least TOPO_FAST_MIN_MS
    // apart: at 1.1 s and 2.1 s), then one per gap (7.1 s).
    assert_eq!(TOPO_FAST_RECORDS, 2);
    let taken = 4;
    assert_eq!(
        topo_sends(&outs),
        taken,
        "flooded to the other peer once each"
    );
    // The first record held back waits (not a drop); each newer one superseding it is.
    assert_eq!(v.p.topo_drops().too_soon, 100 - taken as u64 - 1);
    assert_eq!(v.p.graph().record(&a).map(|r| r.seq), Some(71));
    // The newest held-back list is not lost: once its gap has passed, a tick applies it and
    // floods it on (a node whose connections changed quickly is still mapped right).
    v.input(Input::Tick);
    assert_eq!(
        v.p.graph().record(&a).map(|r| r.seq),
        Some(71),
        "gap not over yet"
    );
    v.now += TOPO_MIN_GAP_MS;
    v.input(Input::Tick);
    assert_eq!(v.p.graph().record(&a).map(|r| r.seq), Some(100));
    assert_eq!(topo_sends(&v.take()), 1);
}

#[test]
fn early_neighbour_lists_are_two_a_minute_per_node() {
    let mut v = Victim::new(&["medical"]);
    let ka = key(1);
    let a = id(&ka);
    v.connect(a, &["medical"]);
    v.take();
    // A hostile node signing a new list every second for two minutes.
    let mut taken = 0;
    for seq in 1..=120 {
        v.now += 1_000;
        v.frame(a, Frame::Topo(record(&ka, seq, &[])));
        if v.p.graph().record(&a).map(|r| r.seq) == Some(seq) {
            taken += 1;
        }
    }
    // One per gap, plus at most two early ones per window (two windows), plus the first.
    let per_gap = 120_000 / TOPO_MIN_GAP_MS as usize;
    assert!(taken > per_gap - 2, "{taken}");
    assert!(
        taken <= per_gap + 2 * TOPO_FAST_RECORDS as usize + 1,
        "{taken}"
    );
}

#[test]
fn a_held_back_early_list_is_taken_a_second_after_the_last_not_at_the_next_tick() {
    let mut v = Victim::new(&["medical"]);
    let ka = key(1);
    let a = id(&ka);
    v.connect(a, &["medical"]);
    v.take();
    let seq = |v: &Victim<MemStorage>| v.p.graph().record(&a).map(|r| r.seq);
    let t0 = v.now;
    v.frame(a, Frame::Topo(record(&ka, 1, &[])));
    // The node's next list comes 0.3 s later (a Hello batch brought the first one late):
    // sooner than TOPO_FAST_MIN_MS, so it is held back ...
    v.now += 300;
    v.frame(a, Frame::Topo(record(&ka, 2, &[])));
    assert_eq!(seq(&v), Some(1));
    // ... and the node wakes for it a second after the first, not at the next 5 s tick.
    let due = t0 + TOPO_FAST_MIN_MS;
    assert_eq!(v.p.poll_timeout(), Some(due));
    let outs = v.p.handle_timeout(&mut v.s, due - 1);
    assert!(topo_sends(&outs) == 0 && seq(&v) == Some(1));
    let outs = v.p.handle_timeout(&mut v.s, due);
    assert_eq!(seq(&v), Some(2), "taken as an early list");
    assert_eq!(
        topo_sends(&outs),
        0,
        "no other peer to flood it to but its author"
    );
    assert_eq!(
        v.p.poll_timeout().map(|t| t > due),
        Some(true),
        "nothing left due"
    );
}

#[test]
fn forged_lists_do_not_use_up_a_nodes_early_lists() {
    let mut v = Victim::new(&["medical"]);
    let ka = key(1);
    let a = id(&ka);
    v.connect(a, &["medical"]);
    v.take();
    v.now += 100;
    v.frame(a, Frame::Topo(record(&ka, 1, &[])));
    // Two forgeries of `a`'s list (a changed seq under the old signature), 1.1 s apart.
    for seq in 2..=3 {
        v.now += 1_100;
        let mut forged = record(&ka, seq, &[]);
        forged.seq += 100;
        v.frame(a, Frame::Topo(forged));
    }
    assert_eq!(v.p.graph().record(&a).map(|r| r.seq), Some(1));
    // `a`'s real early lists are still taken at once.
    for seq in 4..=5 {
        v.now += 1_100;
        v.frame(a, Frame::Topo(record(&ka, seq, &[])));
        assert_eq!(v.p.graph().record(&a).map(|r| r.seq), Some(seq));
    }
}

// ---- e. carry by demand ---------------------------------------------------------------------

#[test]
fn one_peer_announcing_ten_thousand_rooms_carries_none() {
    let mut v = Victim::new(&["medical"]);
    let att = id(&key(1));
    v.connect(att, &["medical"]);
    for batch in 0..40 {
        let rooms: Vec<String> = (0..250).map(|i| format!("junk-{batch}-{i}")).collect();
        v.frame(att, Frame::Rooms { rooms });
    }
    assert_eq!(v.carried(), vec![DM_ROOM.to_string()]);
    assert!(v.p.candidate_count() <= CARRY_ROOMS_PER_PEER);
    assert!(v.p.carry_drops().per_peer > 0);
    // Even connected for long, a peer listing hundreds of rooms is not taken at its word.
    v.now += CARRY_SOLE_PEER_MS + 1;
    v.input(Input::Tick);
    assert_eq!(v.carried(), vec![DM_ROOM.to_string()]);
}

#[test]
fn rooms_are_carried_on_two_announcers_or_one_modest_peer() {
    let mut v = Victim::new(&["medical"]);
    let (p1, p2, p3) = (id(&key(1)), id(&key(2)), id(&key(3)));
    // A camp node met alone: its few rooms are carried (store-and-forward through one node).
    v.connect(p1, &["medical", "logistics", "camp-north"]);
    v.now += CARRY_SOLE_PEER_MS;
    v.input(Input::Tick);
    assert!(v.carried().contains(&"logistics".to_string()));
    assert!(v.carried().contains(&"camp-north".to_string()));
    // A peer listing more rooms than a modest node does is not taken at its word alone...
    let many: Vec<String> = (0..=CARRY_SOLE_PEER_MAX_ROOMS)
        .map(|i| format!("r{i}"))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    v.connect(p2, &many);
    assert!(!v.carried().contains(&"r3".to_string()));
    // ...but a room a second peer also serves is demanded.
    v.connect(p3, &["r3"]);
    assert!(v.carried().contains(&"r3".to_string()), "two peers");
    // Everyone leaves; a day later the rooms are no longer carried, dm always is.
    for p in [p1, p2, p3] {
        v.input(Input::Disconnected { peer: p });
    }
    v.now += CARRY_IDLE_MS + 1;
    v.input(Input::Tick);
    assert_eq!(v.carried(), vec![DM_ROOM.to_string()]);
    assert!(
        v.p.rooms().any(|r| r == "medical"),
        "joined rooms untouched"
    );
}

#[test]
fn a_relay_takes_a_sole_peers_long_list_within_the_per_peer_cap() {
    let config = Config {
        max_carried_rooms: 1024,
        sole_peer_max_rooms: CARRY_ROOMS_PER_PEER,
        ..Config::default()
    };
    let mut v = Victim::with_store(&[], MemStorage::default(), config);
    let many: Vec<String> = (0..CARRY_ROOMS_PER_PEER - 28)
        .map(|i| format!("r{i:03}"))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    v.connect(id(&key(1)), &many);
    // More than a laptop's sole word is worth by default: carried on a relay...
    const { assert!(CARRY_SOLE_PEER_MAX_ROOMS < CARRY_ROOMS_PER_PEER - 28) };
    assert!(v.carried().contains(&"r020".to_string()));
    // ...but a list over the per-peer cap is still not taken (open network).
    let mut w = Victim::with_store(&[], MemStorage::default(), config);
    let huge: Vec<String> = (0..CARRY_ROOMS_PER_PEER + 100)
        .map(|i| format!("h{i:03}"))
        .collect();
    let huge: Vec<&str> = huge.iter().map(String::as_str).collect();
    w.connect(id(&key(2)), &huge);
    assert_eq!(w.carried(), vec![DM_ROOM.to_string()]);
}

#[test]
fn full_carry_slots_go_to_the_rooms_more_peers_want() {
    let config = Config {
        max_carried_rooms: 3, // dm + 2
        ..Config::default()
    };
    let mut v = Victim::with_store(&["medical"], MemStorage::default(), config);
    // Two sybils fill the free slots with junk.
    let (s1, s2) = (id(&key(1)), id(&key(2)));
    v.connect(s1, &["junk-a", "junk-b"]);
    v.connect(s2, &["junk-a", "junk-b"]);
    assert_eq!(v.carried().len(), 3);
    // An honest room three peers serve takes a slot from the junk.
    for k in 3..6 {
        v.connect(id(&key(k)), &["shelters"]);
    }
    let c = v.carried();
    assert!(c.contains(&"shelters".to_string()), "{c:?}");
    assert!(c.contains(&DM_ROOM.to_string()), "dm is never replaced");
    assert_eq!(c.len(), 3);
}

#[test]
fn restart_rooms_are_carried_until_idle() {
    let mut v = Victim::new(&["medical"]);
    v.p.carry_rooms(["old-room".to_string()]);
    v.input(Input::Tick); // stamps the restart rooms
    v.now += CARRY_IDLE_MS / 2;
    v.input(Input::Tick);
    assert!(v.carried().contains(&"old-room".to_string()));
    v.now += CARRY_IDLE_MS;
    v.input(Input::Tick);
    assert!(!v.carried().contains(&"old-room".to_string()));
    assert!(v.carried().contains(&DM_ROOM.to_string()));
}
