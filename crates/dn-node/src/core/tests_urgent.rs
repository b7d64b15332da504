//! Urgent messages through the core: marked in the signed body, shown without the marker,
//! pinned (listed and counted) until acknowledged; private rooms keep the marker outside the
//! envelope.

#![allow(clippy::unwrap_used)]

use super::tests_private::{gossip, mesh, node, typed};
use super::*;
use dn_proto::message::URGENT_MARKER;

fn messages(n: &mut super::tests_private::Node, room: &str) -> Vec<MessageView> {
    typed(
        n,
        calls::Messages {
            room: room.into(),
            limit: 100,
            before: None,
        },
    )
    .unwrap()
}

#[test]
fn urgent_messages_are_flagged_listed_and_acknowledged() {
    let mut ana = node("Ana");
    let mut bo = node("Bo");
    for n in [&mut ana, &mut bo] {
        typed(
            n,
            calls::JoinRoom {
                room: "market".into(),
            },
        )
        .unwrap();
    }
    let sent = typed(
        &mut ana,
        calls::Send {
            room: "market".into(),
            body: "collapse at the market, need rescue".into(),
            urgent: true,
        },
    )
    .unwrap();
    assert!(
        sent.urgent && sent.acknowledged,
        "own: nothing to acknowledge"
    );
    assert_eq!(sent.body, "collapse at the market, need rescue");
    // The marker is in the signed body, exactly once even when typed too.
    let typed_marker = typed(
        &mut ana,
        calls::Send {
            room: "market".into(),
            body: format!("{URGENT_MARKER}second"),
            urgent: true,
        },
    )
    .unwrap();
    assert!(typed_marker.urgent);
    assert_eq!(typed_marker.body, "second");
    typed(
        &mut ana,
        calls::Send {
            room: "market".into(),
            body: "all fine here".into(),
            urgent: false,
        },
    )
    .unwrap();
    let stored = ana
        .core
        .store
        .get_message(&MessageId::from_hex(&typed_marker.id).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(stored.message.body, format!("{URGENT_MARKER}second"));

    let mut net = vec![ana, bo];
    mesh(&mut net, &["market"]);
    gossip(&mut net);
    let mut bo = net.pop().unwrap();
    let shown = messages(&mut bo, "market");
    assert_eq!(shown.len(), 3);
    let flags: Vec<(bool, bool)> = shown.iter().map(|m| (m.urgent, m.acknowledged)).collect();
    assert_eq!(flags.iter().filter(|f| **f == (true, false)).count(), 2);
    assert!(shown.iter().all(|m| !m.body.starts_with(URGENT_MARKER)));
    let status = typed(&mut bo, calls::Status).unwrap();
    assert_eq!(status.urgent_unacked, 2);
    assert_eq!(status.rooms[0].urgent_unacked, 2);
    let list = typed(&mut bo, calls::Urgent { room: None }).unwrap();
    assert_eq!(list.len(), 2);
    // Newest first (the two may share a millisecond; then the order is by id).
    assert!(list[0].timestamp >= list[1].timestamp);
    let mut bodies: Vec<&str> = list.iter().map(|m| m.body.as_str()).collect();
    bodies.sort_unstable();
    assert_eq!(bodies, ["collapse at the market, need rescue", "second"]);

    // One, then the rest; a wrong id is an error.
    let room = typed(
        &mut bo,
        calls::AckUrgent {
            room: "market".into(),
            id: Some(list[0].id.clone()),
        },
    )
    .unwrap();
    assert_eq!(room.urgent_unacked, 1);
    let again = typed(
        &mut bo,
        calls::AckUrgent {
            room: "market".into(),
            id: Some(list[0].id.clone()),
        },
    );
    assert_eq!(again.unwrap_err().code, ErrorCode::NotFound);
    let bad = typed(
        &mut bo,
        calls::AckUrgent {
            room: "market".into(),
            id: Some("zz".into()),
        },
    );
    assert_eq!(bad.unwrap_err().code, ErrorCode::InvalidInput);
    let room = typed(
        &mut bo,
        calls::AckUrgent {
            room: "market".into(),
            id: None,
        },
    )
    .unwrap();
    assert_eq!(room.urgent_unacked, 0);
    assert_eq!(typed(&mut bo, calls::Status).unwrap().urgent_unacked, 0);
    assert!(messages(&mut bo, "market")
        .iter()
        .all(|m| m.acknowledged == m.urgent));
}

#[test]
fn a_private_urgent_message_keeps_its_marker_outside_the_envelope() {
    let mut ana = node("Ana");
    let room = typed(
        &mut ana,
        calls::CreatePrivateRoom {
            title: "triage".into(),
        },
    )
    .unwrap();
    let v = typed(
        &mut ana,
        calls::Send {
            room: room.name.clone(),
            body: "bleeding, tent 2".into(),
            urgent: true,
        },
    )
    .unwrap();
    assert!(v.urgent && v.private);
    assert_eq!(v.body, "bleeding, tent 2");
    let stored = ana
        .core
        .store
        .get_message(&MessageId::from_hex(&v.id).unwrap())
        .unwrap()
        .unwrap();
    let outer = stored.message.body.strip_prefix(URGENT_MARKER).unwrap();
    assert!(outer.starts_with(dn_proto::private::PRIVATE_BODY_PREFIX));
    assert!(!stored.message.body.contains("bleeding"));
    // (Found by id: the room's creation notice may carry the same millisecond.)
    let shown = messages(&mut ana, &room.name);
    let m = shown.iter().find(|m| m.id == v.id).unwrap();
    assert_eq!(m.body, "bleeding, tent 2");
    assert!(m.urgent);
}

#[test]
fn an_urgent_direct_message_is_marked_outside_the_envelope_and_shown_urgent() {
    let ana = node("Ana");
    let bo = node("Bo");
    let bo_id = bo.id.to_hex();
    let mut net = vec![ana, bo];
    mesh(&mut net, &[]);
    let sent = typed(
        &mut net[0],
        calls::SendDm {
            to: bo_id.clone(),
            body: "bring insulin to tent 4 now".into(),
            urgent: true,
        },
    )
    .unwrap();
    assert!(sent.urgent);
    assert_eq!(sent.body, "bring insulin to tent 4 now");
    // The longest text a direct message may have still fits with the marker.
    let long = typed(
        &mut net[0],
        calls::SendDm {
            to: bo_id.clone(),
            body: "x".repeat(dm::MAX_DM_TEXT_BYTES),
            urgent: true,
        },
    )
    .unwrap();
    assert!(long.urgent);
    let plain = typed(
        &mut net[0],
        calls::SendDm {
            to: bo_id,
            body: "all fine".into(),
            urgent: false,
        },
    )
    .unwrap();
    assert!(!plain.urgent);
    // Carriers see the marker before the envelope, and nothing of the text.
    let stored = net[0]
        .core
        .store
        .get_message(&MessageId::from_hex(&sent.id).unwrap())
        .unwrap()
        .unwrap();
    let outer = stored.message.body.strip_prefix(URGENT_MARKER).unwrap();
    assert!(dm::from_body(outer).is_ok());
    assert!(!stored.message.body.contains("insulin"));

    gossip(&mut net);
    let ana_id = net[0].id.to_hex();
    let got = typed(
        &mut net[1],
        calls::DmLog {
            with: ana_id,
            limit: 10,
        },
    )
    .unwrap();
    // (Written within the same millisecond, so their order is by id: compare as a set.)
    let mut flags: Vec<(bool, &str)> = got
        .iter()
        .map(|d| (d.urgent, d.body.get(..8).unwrap_or(&d.body)))
        .collect();
    flags.sort();
    assert_eq!(
        flags,
        [(false, "all fine"), (true, "bring in"), (true, "xxxxxxxx")]
    );
}
