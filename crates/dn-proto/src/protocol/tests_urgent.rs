//! Urgent messages first: priority over a pending catch-up, the per-author budget, envelopes
//! behind the marker.

use super::tests::{Attacker, Net};
use super::*;
use crate::message::URGENT_MARKER;

fn fill(net: &mut Net, n: usize) {
    let body = "x".repeat(40);
    for k in 0..n {
        let m = Message::create(&net.keys[0], "medical", "n", k as u64 + 1, &body).unwrap();
        assert!(net.stores[0].insert(&m).unwrap());
    }
}

/// Publishes `body` at node 0 and returns the message and the frames it sent the attacker.
fn publish(net: &mut Net, atk: &Attacker, body: &str, ts: u64) -> (Message, Vec<Frame>) {
    let m = Message::create(&net.keys[0], "medical", "n0", ts, body).unwrap();
    assert!(net.stores[0].insert(&m).unwrap());
    let frames = atk.input(net, 0, Input::Published(m.clone()));
    (m, frames)
}

fn msg_ids(frames: &[Frame]) -> Vec<MessageId> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Msg { message, .. } => Some(message.id()),
            _ => None,
        })
        .collect()
}

/// The peer asks for the whole room ("I hold nothing").
fn ask_all(net: &mut Net, atk: &Attacker) -> Vec<Frame> {
    net.now = EXCHANGE_IDLE_MS + 10_000;
    atk.send(
        net,
        0,
        Frame::Recon {
            room: "medical".into(),
            msg: recon::start_with_salt(&[], [7; 16]),
        },
    )
}

#[test]
fn an_urgent_message_published_during_a_long_catch_up_goes_out_before_the_rest() {
    let mut net = Net::new(1, "medical");
    fill(&mut net, 10_000);
    let atk = Attacker::connect(&mut net, 0, &["medical"]);
    let first = ask_all(&mut net, &atk);
    assert!(!msg_ids(&first).is_empty());
    let waiting = net.nodes[0].reply_queue_len(&atk.id);
    assert!(waiting > 1_000, "{waiting} catch-up messages still waiting");
    // An ordinary message waits behind the catch-up's window like everything else, but an
    // urgent one is emitted now, while thousands of catch-up messages are still queued.
    let (m, frames) = publish(
        &mut net,
        &atk,
        &format!("{URGENT_MARKER}collapse at the market"),
        1 << 40,
    );
    assert!(net.nodes[0].is_priority(&m.id()));
    assert_eq!(
        msg_ids(&frames),
        vec![m.id()],
        "the urgent message, at once"
    );
    assert!(net.nodes[0].is_priority_frame(&frames[0]));
    assert_eq!(net.nodes[0].reply_queue_len(&atk.id), waiting);
    // A drain releases catch-up messages again, never the urgent one a second time.
    let more = atk.input(
        &mut net,
        0,
        Input::Drained {
            peer: atk.id,
            bytes: 1 << 20,
        },
    );
    let ids = msg_ids(&more);
    assert!(!ids.is_empty() && !ids.contains(&m.id()));
    assert!(!net.nodes[0].is_priority_frame(&more[0]));
}

#[test]
fn urgent_messages_lead_the_catch_up_whatever_their_age() {
    let mut net = Net::new(1, "medical");
    fill(&mut net, 10_000);
    let atk0 = Attacker::connect(&mut net, 0, &["other"]);
    // Written while the peer that will catch up is away: it is the newest of the room.
    let (urgent, _) = publish(
        &mut net,
        &atk0,
        &format!("{URGENT_MARKER}need rescue"),
        1 << 40,
    );
    let (plain, _) = publish(&mut net, &atk0, "ordinary news", (1 << 40) + 1);
    assert!(!net.nodes[0].is_priority(&plain.id()));
    let atk = Attacker::connect(&mut net, 0, &["medical"]);
    let ids = msg_ids(&ask_all(&mut net, &atk));
    assert!(ids.len() > 10 && net.nodes[0].reply_queue_len(&atk.id) > 0);
    assert_eq!(
        ids[0],
        urgent.id(),
        "the urgent message is the first one sent"
    );
    assert!(!ids[1..].contains(&urgent.id()));
}

#[test]
fn after_a_restart_stored_urgent_messages_still_lead_the_catch_up() {
    let mut net = Net::new(1, "medical");
    fill(&mut net, 10_000);
    // Stored before the restart (straight into the store: this protocol never saw them).
    let stored: Vec<Message> = (0..URGENT_BUDGET + 1)
        .map(|k| {
            let body = format!("{URGENT_MARKER}collapse {k}");
            let m =
                Message::create(&net.keys[0], "medical", "n", 20_000 + k as u64, &body).unwrap();
            assert!(net.stores[0].insert(&m).unwrap());
            m
        })
        .collect();
    assert!(stored.iter().all(|m| !net.nodes[0].is_priority(&m.id())));
    // What the node hands it at start: newest first; the author's budget keeps the newest 5.
    net.nodes[0].note_stored_urgent(stored.iter().rev().map(|m| (m.id(), m.author)));
    let prio: Vec<bool> = stored
        .iter()
        .map(|m| net.nodes[0].is_priority(&m.id()))
        .collect();
    assert!(!prio[0], "the oldest is past the budget");
    assert!(prio[1..].iter().all(|p| *p));
    let atk = Attacker::connect(&mut net, 0, &["medical"]);
    let ids = msg_ids(&ask_all(&mut net, &atk));
    let mut first: Vec<MessageId> = ids[..URGENT_BUDGET].to_vec();
    let mut want: Vec<MessageId> = stored[1..].iter().map(Message::id).collect();
    first.sort();
    want.sort();
    assert_eq!(first, want, "the prioritised ones are sent first");
}

#[test]
fn past_the_budget_urgent_messages_are_ordinary_and_counted() {
    let mut net = Net::new(1, "medical");
    let atk = Attacker::connect(&mut net, 0, &["other"]);
    let mut marked = vec![];
    for k in 0..URGENT_BUDGET + 2 {
        let body = format!("{URGENT_MARKER}help {k}");
        marked.push(publish(&mut net, &atk, &body, k as u64 + 1).0);
    }
    let prio: Vec<bool> = marked
        .iter()
        .map(|m| net.nodes[0].is_priority(&m.id()))
        .collect();
    assert_eq!(prio.iter().filter(|p| **p).count(), URGENT_BUDGET);
    assert!(
        prio[..URGENT_BUDGET].iter().all(|p| *p),
        "the first ones win"
    );
    assert_eq!(net.nodes[0].counters().urgent_over_budget, 2);
    // Within the window: still over. After it: priority again.
    net.now += URGENT_WINDOW_MS - 1;
    let late = publish(&mut net, &atk, &format!("{URGENT_MARKER}late"), 100).0;
    assert!(!net.nodes[0].is_priority(&late.id()));
    net.now += URGENT_WINDOW_MS;
    let fresh = publish(&mut net, &atk, &format!("{URGENT_MARKER}fresh"), 101).0;
    assert!(net.nodes[0].is_priority(&fresh.id()));
    assert_eq!(net.nodes[0].counters().urgent_over_budget, 3);
}

#[test]
fn received_urgent_messages_count_against_their_author_not_the_relay() {
    let mut net = Net::new(2, "medical");
    net.connect(0, 1);
    net.run();
    for k in 0..URGENT_BUDGET + 1 {
        net.publish(0, "medical", &format!("{URGENT_MARKER}m{k}"), k as u64 + 1);
    }
    net.run();
    assert_eq!(
        net.stores[1].room_set("medical").unwrap().len(),
        URGENT_BUDGET + 1
    );
    assert_eq!(net.nodes[1].counters().urgent_over_budget, 1);
    // Another author has its own budget at the same node.
    let m = net.publish(1, "medical", &format!("{URGENT_MARKER}mine"), 50);
    assert!(net.nodes[1].is_priority(&m.id()));
}

#[test]
fn envelopes_behind_the_urgent_marker_pass_the_carrier_checks() {
    use ed25519_dalek::SigningKey;
    let a = SigningKey::from_bytes(&[1; 32]);
    let b = SigningKey::from_bytes(&[2; 32]);
    let to = NodeId(b.verifying_key().to_bytes());
    let env = crate::dm::seal(&a, &to, "hurt", 7, [3; 32], [4; 24]).unwrap();
    let body = crate::message::mark_urgent(&crate::dm::to_body(&env), true);
    assert!(crate::message::is_urgent(&body));
    let author = NodeId(a.verifying_key().to_bytes());
    let back = crate::dm::check_carried(&body, &author).unwrap();
    assert_eq!(crate::dm::open(&b, &author, &back, 7).unwrap(), "hurt");
    // Only at the very start, only once.
    assert!(crate::dm::from_body(&format!("x{body}")).is_err());
    assert!(crate::dm::from_body(&format!("{URGENT_MARKER}{body}")).is_err());
    // A carrier stores and relays it like any DM.
    let mut net = Net::new(2, crate::dm::DM_ROOM);
    net.connect(0, 1);
    net.run();
    let m = Message::create(&a, crate::dm::DM_ROOM, "A", 7, &body).unwrap();
    let from = net.id(0);
    let outs = net.nodes[1].handle(
        &mut net.stores[1],
        Input::Frame {
            peer: from,
            frame: Frame::Msg {
                hops: 3,
                message: m.clone(),
            },
        },
        net.now,
    );
    let rejected: Vec<_> = outs
        .iter()
        .filter(|o| matches!(o, Output::Rejected { .. }))
        .collect();
    assert!(rejected.is_empty(), "{rejected:?}");
    assert!(net.stores[1].has(&m.id()).unwrap());
}
