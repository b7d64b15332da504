//! Retry with backoff of own messages no peer holds (retry.rs), in simulated time.

use super::tests::Net;
use super::*;

/// Two connected nodes; returns (lower id, higher id): the lower one starts reconciliations.
fn pair() -> (Net, usize, usize) {
    let mut net = Net::new(2, "medical");
    net.connect(0, 1);
    net.run();
    let (a, b) = if net.id(0) < net.id(1) {
        (0, 1)
    } else {
        (1, 0)
    };
    (net, a, b)
}

/// Kinds of the frames node `i` sends when its timers run at `now`.
fn timeout_frames(net: &mut Net, i: usize, now: u64) -> Vec<&'static str> {
    net.now = now;
    let outs = net.nodes[i].handle_timeout(&mut net.stores[i], now);
    let kinds = outs
        .iter()
        .filter_map(|o| match o {
            Output::Send { frame, .. } => Some(frame.kind()),
            _ => None,
        })
        .collect();
    net.apply(i, outs);
    kinds
}

#[test]
fn a_message_nobody_holds_is_retried_within_30_s_and_then_arrives() {
    let (mut net, a, b) = pair();
    // The link loses everything for a moment (the protocol still sees the peer connected).
    net.links.clear();
    net.now = 1_000;
    let m = net.publish(a, "medical", "need insulin", 1);
    net.run();
    assert!(!net.stores[b].has(&m.id()).unwrap(), "the push was lost");
    assert_eq!(net.nodes[a].next_retry_at(), Some(1_000 + RETRY_FIRST_MS));
    const { assert!(RETRY_FIRST_MS <= 30_000) };
    assert!(
        net.nodes[a].poll_timeout() <= Some(1_000 + RETRY_FIRST_MS),
        "the core sleeps until the retry at the latest"
    );
    net.links.insert((0, 1));
    net.advance_to(1_000 + RETRY_FIRST_MS - 1);
    assert!(!net.stores[b].has(&m.id()).unwrap(), "not before the retry");
    net.advance_to(1_000 + RETRY_FIRST_MS);
    assert!(
        net.stores[b].has(&m.id()).unwrap(),
        "the retry reconciled the room (well before ANTI_ENTROPY_MS)"
    );
    const { assert!(1_000 + RETRY_FIRST_MS < ANTI_ENTROPY_MS) };
    assert_eq!(net.nodes[a].unheld_own(), 0, "the peer acknowledged it");
    assert_eq!(net.nodes[a].next_retry_at(), None, "nothing left to retry");
}

#[test]
fn the_higher_id_retries_too_and_crossing_starts_resolve_to_the_lower_ids() {
    // Alone, the higher id (which never starts the periodic check) retries its message.
    let (mut net, a, b) = pair();
    net.links.clear();
    net.now = 1_000;
    let mb = net.publish(b, "medical", "from the higher id", 1);
    net.links.insert((0, 1));
    net.advance_to(1_000 + RETRY_FIRST_MS);
    assert!(net.stores[a].has(&mb.id()).unwrap());
    assert_eq!(net.nodes[b].next_retry_at(), None);
    // Both retry at the same moment: the two starts cross, the lower id's exchange goes on
    // and both messages arrive in it.
    net.links.clear();
    net.dropped.clear();
    net.now = 20_000;
    let ma = net.publish(a, "medical", "from a", 2);
    let mb2 = net.publish(b, "medical", "from b", 3);
    net.links.insert((0, 1));
    let at = 20_000 + RETRY_FIRST_MS;
    assert_eq!(net.nodes[a].next_retry_at(), Some(at));
    assert_eq!(net.nodes[b].next_retry_at(), Some(at));
    // Both timers fire before either start is delivered.
    let ka = timeout_frames(&mut net, a, at);
    let kb = timeout_frames(&mut net, b, at);
    assert!(
        ka.contains(&"recon") && kb.contains(&"recon"),
        "{ka:?} {kb:?}"
    );
    net.run();
    assert!(net.stores[b].has(&ma.id()).unwrap());
    assert!(net.stores[a].has(&mb2.id()).unwrap());
    // The lower id refused the higher one's start as busy (counted); the higher gave its
    // own up for the lower one's.
    assert_eq!(net.dropped, vec![(a, DropReason::ExchangeBusy)]);
    assert_eq!(net.nodes[a].next_retry_at(), None);
    assert_eq!(net.nodes[b].next_retry_at(), None);
}

#[test]
fn retries_back_off_while_nothing_changes_and_are_capped() {
    let (mut net, a, _) = pair();
    net.links.clear(); // every frame is lost from now on
    net.now = 10_000;
    net.publish(a, "medical", "anyone?", 1);
    let mut waits = Vec::new();
    let mut recons = 0;
    let mut at = net.nodes[a].next_retry_at();
    let mut prev = 10_000;
    while let Some(t) = at {
        if waits.len() == 9 {
            break;
        }
        waits.push(t - prev);
        prev = t;
        // Each retry reconciles with the connected peer (the earlier exchange went stale).
        let kinds = timeout_frames(&mut net, a, t);
        let n = kinds.iter().filter(|k| **k == "recon").count();
        if waits.len() == 1 {
            // 25 s after the last reconciliation: only the retry can have started this one.
            assert_eq!(n, 1, "the first retry reconciles: {kinds:?}");
        }
        recons += n;
        at = net.nodes[a].next_retry_at();
    }
    assert_eq!(
        waits,
        vec![
            15_000,
            30_000,
            60_000,
            120_000,
            240_000,
            480_000,
            RETRY_MAX_MS,
            RETRY_MAX_MS,
            RETRY_MAX_MS
        ]
    );
    assert!(recons >= 8, "each retry starts a reconciliation: {recons}");
}

#[test]
fn a_new_message_or_a_new_connection_starts_over() {
    let mut net = Net::new(3, "medical");
    net.now = 1_000;
    net.publish(0, "medical", "first", 1);
    // Nobody around: the retries run and back off.
    net.advance_to(1_000 + 15_000 + 30_000);
    assert_eq!(net.nodes[0].next_retry_at(), Some(46_000 + 60_000));
    // A new message of ours: first retry again 15 s after it.
    net.now = 50_000;
    net.publish(0, "medical", "second", 2);
    assert_eq!(net.nodes[0].next_retry_at(), Some(50_000 + RETRY_FIRST_MS));
    net.advance_to(50_000 + 15_000 + 30_000);
    assert_eq!(net.nodes[0].next_retry_at(), Some(95_000 + 60_000));
    // A new connection (the link drops everything, so nothing is delivered): its hello
    // reconciles at once, and the schedule starts over.
    net.now = 100_000;
    let p1 = net.id(1);
    net.input(0, Input::Connected { peer: p1 });
    let hello = net.nodes[1].hello();
    net.input(
        0,
        Input::Frame {
            peer: p1,
            frame: hello,
        },
    );
    assert_eq!(net.nodes[0].next_retry_at(), Some(100_000 + RETRY_FIRST_MS));
    assert_eq!(net.nodes[0].unheld_own(), 2);
}

#[test]
fn nothing_is_scheduled_once_a_peer_holds_it() {
    let (mut net, a, b) = pair();
    let m = net.publish(b, "medical", "pushed and acknowledged", 1);
    net.run();
    assert!(net.stores[a].has(&m.id()).unwrap());
    assert_eq!(net.nodes[b].next_retry_at(), None, "acknowledged at once");
    assert_eq!(net.nodes[a].next_retry_at(), None, "not our message");
    // Written while alone, held after the catch-up on reconnect (a proven sync).
    net.disconnect(0, 1);
    net.now = 5_000;
    let m2 = net.publish(a, "medical", "while apart", 2);
    assert!(net.nodes[a].next_retry_at().is_some());
    net.connect(0, 1);
    net.run();
    assert!(net.stores[b].has(&m2.id()).unwrap());
    assert_eq!(net.nodes[a].next_retry_at(), None);
    let poll = net.nodes[a].poll_timeout();
    net.advance_to(5_000 + RETRY_MAX_MS);
    assert!(poll.is_some());
    assert_eq!(net.nodes[a].next_retry_at(), None, "and nothing comes back");
}

#[test]
fn what_no_peer_held_at_the_last_stop_is_retried_after_a_restart() {
    let (mut net, a, _b) = pair();
    net.disconnect(0, 1);
    let m = net.publish(a, "medical", "written before the restart", 1);
    // A restarted node knows nothing of it until the driver hands the store's queue over.
    let restarted = Protocol::new(net.nodes[a].id(), "A".into(), 7000, ["medical".to_string()]);
    assert_eq!(restarted.next_retry_at(), None);
    let mut restarted = restarted;
    restarted.note_unheld([("medical".to_string(), m.id())]);
    assert_eq!(restarted.next_retry_at(), Some(RETRY_FIRST_MS));
    assert_eq!(restarted.unheld_own(), 1);
}
