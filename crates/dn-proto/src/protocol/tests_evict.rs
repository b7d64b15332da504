//! The carry quota (evict.rs): what a node keeps for rooms it has not joined is bounded, the
//! oldest goes first, and evicted messages are not fetched again until the room is joined.

use ed25519_dalek::SigningKey;

use super::tests::Net;
use super::*;
use crate::dm::{self, DM_ROOM};

/// Signed size of the messages these tests publish (same room-name length, 200-byte body).
fn size(m: &Message) -> u64 {
    m.signed_bytes().len() as u64
}

/// Node 0 joined "medical" and "supplies"; node 1 joined "medical" only and carries
/// "supplies" with a quota of `quota_msgs` such messages.
fn carrier_net(quota_msgs: u64) -> (Net, u64) {
    let mut net = Net::new(2, "medical");
    net.input(0, Input::Joined("supplies".into()));
    let probe = Message::create(&net.keys[0], "supplies", "n0", 0, &"x".repeat(200)).unwrap();
    net.nodes[1].config.carry_quota_bytes = quota_msgs * size(&probe);
    net.connect(0, 1);
    net.run();
    assert!(net.nodes[1].carried().any(|r| r == "supplies"));
    (net, size(&probe))
}

fn publish_n(net: &mut Net, room: &str, times: impl IntoIterator<Item = u64>) -> Vec<Message> {
    times
        .into_iter()
        .map(|ts| net.publish(0, room, &format!("{ts:0>200}"), ts))
        .collect()
}

fn tick(net: &mut Net, i: usize) {
    net.now += 5_000;
    net.input(i, Input::Tick);
    net.run();
}

#[test]
fn over_the_quota_the_oldest_carried_messages_go_first_and_joined_rooms_stay() {
    let (mut net, one) = carrier_net(10);
    // Arrival order is not age: the timestamps are shuffled.
    let times = [
        17, 3, 25, 9, 1, 30, 12, 7, 22, 5, 28, 14, 2, 19, 11, 26, 8, 16, 4, 29,
    ];
    let carried = publish_n(&mut net, "supplies", times);
    let joined = publish_n(&mut net, "medical", 100..130);
    net.run();
    assert_eq!(net.stores[1].len(), 50, "all arrived before the tick");

    tick(&mut net, 1);
    let kept: Vec<&Message> = carried
        .iter()
        .filter(|m| net.stores[1].get(&m.id()).unwrap().is_some())
        .collect();
    let used = kept.len() as u64 * one + (20 - kept.len() as u64) * EVICTED_ID_BYTES;
    let quota = net.nodes[1].config.carry_quota_bytes;
    let target = quota / 100 * EVICT_TARGET_PERCENT;
    assert!(used <= target, "{used} > 90% of {quota}");
    // Each evicted message leaves its id (64 bytes) behind; no more goes than needed.
    assert!(
        used + one - EVICTED_ID_BYTES > target,
        "evicted more than needed: kept {}",
        kept.len()
    );
    let oldest_kept = kept.iter().map(|m| m.timestamp).min().unwrap();
    for m in &carried {
        let stored = net.stores[1].get(&m.id()).unwrap().is_some();
        assert_eq!(
            stored,
            m.timestamp >= oldest_kept,
            "oldest first: ts {}",
            m.timestamp
        );
        assert!(
            net.stores[1].has(&m.id()).unwrap(),
            "an evicted id is still known"
        );
    }
    assert_eq!(net.nodes[1].counters().evicted, 20 - kept.len() as u64);
    for m in &joined {
        assert!(
            net.stores[1].get(&m.id()).unwrap().is_some(),
            "joined rooms are never evicted"
        );
    }
    assert!(!net.nodes[1].carry_full(), "under the quota after eviction");
    let set = net.stores[1].room_set("supplies").unwrap();
    assert_eq!(set.len(), 20, "catch-up still lists the evicted ids");
}

#[test]
fn evicted_messages_are_not_fetched_again_until_the_room_is_joined() {
    let (mut net, _) = carrier_net(10);
    let carried = publish_n(&mut net, "supplies", 1..=20);
    net.run();
    tick(&mut net, 1);
    let evicted = net.nodes[1].counters().evicted;
    assert!(evicted >= 10);
    let received = net.nodes[1].counters().received;

    // Reconnect: catch-up runs both ways and finds the sets equal.
    net.disconnect(0, 1);
    net.now += 60_000;
    net.connect(0, 1);
    net.run();
    // A copy pushed again anyway is a duplicate, not stored.
    let again = carried[0].clone();
    let peer = net.id(0);
    net.input(
        1,
        Input::Frame {
            peer,
            frame: Frame::Msg {
                hops: 3,
                message: again.clone(),
            },
        },
    );
    net.run();
    assert_eq!(
        net.nodes[1].counters().received,
        received,
        "nothing fetched again"
    );
    assert!(net.stores[1].get(&again.id()).unwrap().is_none());
    tick(&mut net, 1);
    assert_eq!(
        net.nodes[1].counters().evicted,
        evicted,
        "no churn: nothing to evict"
    );

    // Joining wants the whole history: a catch-up brings the evicted messages back.
    net.now += 60_000;
    net.input(1, Input::Joined("supplies".into()));
    net.run();
    for m in &carried {
        assert!(
            net.stores[1].get(&m.id()).unwrap().is_some(),
            "ts {} back",
            m.timestamp
        );
    }
    tick(&mut net, 1);
    assert_eq!(
        net.nodes[1].counters().evicted,
        evicted,
        "a joined room is over no quota"
    );
}

#[test]
fn own_messages_and_dms_to_this_node_are_never_evicted() {
    let mut net = Net::new(3, "medical");
    let (k0, k2) = (net.keys[0].clone(), net.keys[2].clone());
    let (id1, id2) = (net.id(1), net.id(2));
    // Node 1 wrote in "supplies" and then left it: the room is carried, its own messages stay.
    net.input(1, Input::Joined("supplies".into()));
    let own: Vec<Message> = (1..=5)
        .map(|ts| net.publish(1, "supplies", &format!("{ts:0>200}"), ts))
        .collect();
    net.input(1, Input::Left("supplies".into()));
    let dm_to = |from: &SigningKey, to: &NodeId, ts: u64| {
        let env = dm::seal(from, to, &"y".repeat(150), ts, [ts as u8; 32], [7; 24]).unwrap();
        Message::create(from, DM_ROOM, "n", ts, &dm::to_body(&env)).unwrap()
    };
    let mut store = std::mem::take(&mut net.stores[1]);
    let mine: Vec<Message> = (1..=5).map(|ts| dm_to(&k0, &id1, ts)).collect();
    let others: Vec<Message> = (1..=5).map(|ts| dm_to(&k0, &id2, ts)).collect();
    let strangers: Vec<Message> = (1..=5).map(|ts| dm_to(&k2, &net.id(0), ts)).collect();
    for m in mine.iter().chain(&others).chain(&strangers) {
        assert!(store.insert(m).unwrap());
    }
    net.stores[1] = store;
    net.nodes[1].config.carry_quota_bytes = 1; // everything evictable must go

    tick(&mut net, 1);
    for m in own.iter().chain(&mine) {
        assert!(
            net.stores[1].get(&m.id()).unwrap().is_some(),
            "kept: {}",
            m.room
        );
    }
    for m in others.iter().chain(&strangers) {
        assert!(
            net.stores[1].get(&m.id()).unwrap().is_none(),
            "carried DM evicted"
        );
    }
    assert_eq!(net.nodes[1].counters().evicted, 10);
    assert!(
        net.nodes[1].carry_full(),
        "what is left cannot go: the quota is full"
    );
}

#[test]
fn a_full_quota_stops_carrying_until_there_is_room_again() {
    let (mut net, _) = carrier_net(10);
    // A quota that even the evicted ids exceed: nothing carried can be kept.
    net.nodes[1].config.carry_quota_bytes = 1;
    publish_n(&mut net, "supplies", 1..=3);
    net.run();
    tick(&mut net, 1);
    assert!(net.nodes[1].carry_full());
    let l = net.publish(0, "supplies", "carried?", 10);
    let m = net.publish(0, "medical", "joined room still flows", 11);
    net.run();
    assert!(
        !net.stores[1].has(&l.id()).unwrap(),
        "full: carried room not taken"
    );
    assert!(net.stores[1].has(&m.id()).unwrap());

    // More room (an operator raised the quota): carried again, and caught up.
    net.nodes[1].config.carry_quota_bytes = 1024 * 1024;
    tick(&mut net, 1);
    assert!(!net.nodes[1].carry_full());
    assert!(
        net.stores[1].get(&l.id()).unwrap().is_some(),
        "caught up after the quota"
    );
}

#[test]
fn one_tick_evicts_a_bounded_amount_and_the_next_ones_finish() {
    let mut net = Net::new(1, "medical");
    let k = SigningKey::from_bytes(&[42; 32]);
    let n = 2 * MAX_EVICT_PER_TICK;
    let mut one = 0;
    for ts in 0..n as u64 {
        let m = Message::create(&k, "left-behind", "k", ts, &format!("{ts:0>1000}")).unwrap();
        one = size(&m);
        assert!(net.stores[0].insert(&m).unwrap());
    }
    // Room for half of them: with the evicted ids counted, more than one tick's worth (but
    // less than two) must go.
    net.nodes[0].config.carry_quota_bytes = n as u64 / 2 * one;
    tick(&mut net, 0);
    assert_eq!(net.nodes[0].counters().evicted, MAX_EVICT_PER_TICK as u64);
    assert!(net.nodes[0].carry_full(), "still over after the first tick");
    tick(&mut net, 0);
    assert!(!net.nodes[0].carry_full());
    let usage = net.stores[0].usage().unwrap();
    let used = usage[0].bytes + usage[0].evicted * EVICTED_ID_BYTES;
    assert!(used <= net.nodes[0].config.carry_quota_bytes);
    // The survivors are the newest.
    let left = net.stores[0].oldest("left-behind", None, 1).unwrap();
    assert_eq!(left[0].timestamp, usage[0].evicted);
}
