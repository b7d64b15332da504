//! Private rooms across several cores in one process (no threads, no sockets): messages are
//! handed from store to store as `Msg` frames, as the network would. The real network (four
//! nodes in network namespaces, carriers in the middle) is the netns test
//! `private_room_across_carriers`.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::queue::{out_queue, OutReceiver};

pub(super) struct Node {
    dir: tempfile::TempDir,
    pub(super) core: Core,
    pub(super) id: NodeId,
    /// Kept so the fake connections stay open.
    wires: Vec<OutReceiver>,
}

pub(super) fn node(name: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let (tx, _) = broadcast::channel(1024);
    let key = identity::load_or_create(dir.path()).unwrap();
    let id = identity::node_id(&key);
    let mut core = Core::open(dir.path(), key, tx, None).unwrap();
    call(&mut core, Request::SetName { name: name.into() }).unwrap();
    Node {
        dir,
        core,
        id,
        wires: vec![],
    }
}

fn call(core: &mut Core, req: Request) -> Result<Value, ApiError> {
    let (tx, rx) = oneshot::channel();
    core.request(req, tx);
    rx.blocking_recv().unwrap()
}

pub(super) fn typed<C: Call>(n: &mut Node, c: C) -> Result<C::Response, ApiError> {
    call(&mut n.core, c.into()).map(|v| decode(v).unwrap())
}

/// `to` sees `from` connected, wanting `rooms` (so a carrier takes them in).
fn link(to: &mut Node, from: &StubNode, rooms: &[&str]) {
    let (out, wire, _pause) = out_queue();
    to.wires.push(wire);
    to.core.handle(CoreMsg::Connected {
        peer: from.id,
        conn_id: 1,
        addr: "127.0.0.1:9".parse().unwrap(),
        tx: out,
    });
    to.core.handle(CoreMsg::Frame {
        peer: from.id,
        conn_id: 1,
        frame: Frame::Hello {
            version: dn_proto::message::PROTOCOL_VERSION,
            node: from.id,
            name: "peer".into(),
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            listen_port: 9,
        },
        permit: InPermit::none(),
    });
}

/// Every node sees every other connected, wanting `rooms` (so a carrier takes them in).
pub(super) fn mesh(nodes: &mut [Node], rooms: &[&str]) {
    for i in 0..nodes.len() {
        for j in 0..nodes.len() {
            if i != j {
                let from = Node::stub(nodes[j].id);
                link(&mut nodes[i], &from, rooms);
            }
        }
    }
}

/// Hands every message each node stores to every other node, as frames from the holder,
/// until nothing new arrives.
pub(super) fn gossip(nodes: &mut [Node]) {
    loop {
        let before: u64 = nodes
            .iter()
            .map(|n| n.core.store.message_count(None).unwrap())
            .sum();
        let held: Vec<(NodeId, Vec<Message>)> = nodes
            .iter()
            .map(|n| {
                let mut all = Vec::new();
                n.core
                    .store
                    .for_each_message(None, |sm| -> Result<(), ApiError> {
                        all.push(sm.message);
                        Ok(())
                    })
                    .unwrap();
                (n.id, all)
            })
            .collect();
        for to in nodes.iter_mut() {
            for (from, msgs) in &held {
                if *from == to.id {
                    continue;
                }
                for message in msgs {
                    to.core.handle(CoreMsg::Frame {
                        peer: *from,
                        conn_id: 1,
                        frame: Frame::Msg {
                            hops: 1,
                            message: message.clone(),
                        },
                        permit: InPermit::none(),
                    });
                }
            }
        }
        let after: u64 = nodes
            .iter()
            .map(|n| n.core.store.message_count(None).unwrap())
            .sum();
        if after == before {
            return;
        }
    }
}

impl Node {
    /// Only an id (for `link`).
    fn stub(id: NodeId) -> StubNode {
        StubNode { id }
    }
}

/// What `link` needs of the other side.
struct StubNode {
    id: NodeId,
}

fn bodies(n: &mut Node, room: &str) -> Vec<String> {
    typed(
        n,
        calls::Messages {
            room: room.into(),
            limit: 100,
            before: None,
        },
    )
    .unwrap()
    .into_iter()
    .map(|m| format!("{}: {}", m.author_name, m.body))
    .collect()
}

/// Every byte of every file under `dir`.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            out.extend(std::fs::read(&p).unwrap());
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn members_read_carriers_do_not_and_a_removed_member_reads_nothing_new() {
    let mut ana = node("Ana Creator");
    let mut bo = node("Bo Member");
    let mut cy = node("Cy Removed");
    let dee = node("Dee Carrier");

    let room = typed(
        &mut ana,
        calls::CreatePrivateRoom {
            title: "Medical".into(),
        },
    )
    .unwrap();
    assert!(room.private && room.admin && room.joined);
    assert_eq!(room.title, "medical");
    let id = room.name.clone();
    assert!(dn_proto::private::is_private_room(&id), "{id}");
    typed(
        &mut ana,
        calls::Send {
            room: "medical".into(),
            body: "patient Zed in tent 4".into(),
            urgent: false,
        },
    )
    .unwrap();

    let inv = typed(
        &mut ana,
        calls::RoomInvite {
            room: id.clone(),
            path: None,
        },
    )
    .unwrap();
    assert!(inv.code.starts_with("DNI1-") && inv.qr_svg.contains("<svg"));

    // A code with one character changed is refused with the typo error; nothing is joined.
    let mut typo: Vec<char> = inv.code.chars().collect();
    let at = typo.len() - 3;
    typo[at] = if typo[at] == 'A' { 'B' } else { 'A' };
    let typo: String = typo.into_iter().collect();
    let e = typed(&mut bo, calls::JoinInvite { invite: typo }).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(e.message.contains("typo"), "{}", e.message);
    assert!(typed(&mut bo, calls::Rooms).unwrap().is_empty());

    // An invite file's text (comment lines, then the code) works as well as the code.
    let file = private::invite_file_text("medical", &inv.code);
    let joined = typed(&mut bo, calls::JoinInvite { invite: file }).unwrap();
    assert_eq!(
        (joined.name.as_str(), joined.title.as_str()),
        (id.as_str(), "medical")
    );
    assert!(!joined.admin);
    typed(
        &mut cy,
        calls::JoinInvite {
            invite: inv.code.clone(),
        },
    )
    .unwrap();

    // Dee carries the room (every peer wants it) without a key.
    let mut net = vec![ana, bo, cy, dee];
    mesh(&mut net, &[&id]);
    gossip(&mut net);
    let [ana, bo, cy, dee] = &mut net[..] else {
        unreachable!()
    };

    // Ana's first two messages may share a millisecond (room order is then by id).
    let mut seen = bodies(bo, &id);
    seen.sort();
    assert_eq!(
        seen,
        [
            "Ana Creator: created the room",
            "Ana Creator: patient Zed in tent 4",
            "Bo Member: joined the room",
            "Cy Removed: joined the room"
        ]
    );
    assert_eq!(bodies(cy, "medical").len(), 4);
    // The carrier stores all four, shows none and lists no room.
    assert_eq!(dee.core.store.message_count(Some(&id)).unwrap(), 4);
    assert!(bodies(dee, &id).is_empty());
    assert!(typed(dee, calls::Rooms).unwrap().is_empty());
    // Peers' announced rooms: a private room by its title for a member, left out for a carrier.
    let peer_rooms = |n: &mut Node| -> Vec<String> {
        typed(n, calls::Peers)
            .unwrap()
            .into_iter()
            .flat_map(|p| p.rooms)
            .collect()
    };
    assert!(
        peer_rooms(bo).iter().all(|r| r == "medical"),
        "{:?}",
        peer_rooms(bo)
    );
    assert!(!peer_rooms(bo).is_empty());
    assert!(peer_rooms(dee).is_empty(), "{:?}", peer_rooms(dee));
    let members = typed(bo, calls::Members { room: id.clone() }).unwrap();
    let names: Vec<(Option<String>, bool, bool)> = members
        .iter()
        .map(|m| (m.name.clone(), m.admin, m.me))
        .collect();
    assert_eq!(names[0], (Some("Ana Creator".into()), true, false));
    assert_eq!(members.len(), 3);

    // Someone without the key (who knows the room id from the traffic) writes into it: Bo
    // stores it (a valid envelope), never shows it, and does not count it as waiting for a key.
    let mallory = SigningKey::from_bytes(&[66; 32]);
    let rid = dn_proto::private::RoomId::parse(&id).unwrap();
    let plain = dn_proto::private::Plain {
        room_name: "medical".into(),
        author_name: "Mallory".into(),
        content: dn_proto::private::Content::Text("fake order".into()),
    };
    let m_id = identity::node_id(&mallory);
    let body = dn_proto::private::seal(&rid, 0, &[1; 32], &m_id, 5, &plain, [2; 24]).unwrap();
    let forged = Message::create(
        &mallory,
        &id,
        dn_proto::private::HIDDEN_AUTHOR_NAME,
        5,
        &body,
    )
    .unwrap();
    bo.core.handle(CoreMsg::Frame {
        peer: ana.id,
        conn_id: 1,
        frame: Frame::Msg {
            hops: 1,
            message: forged.clone(),
        },
        permit: InPermit::none(),
    });
    assert!(bo.core.store.has_message(&forged.id()).unwrap());
    assert_eq!(bodies(bo, &id).len(), 4);
    assert_eq!(typed(bo, calls::Rooms).unwrap()[0].waiting_for_key, 0);

    // Only an admin removes; Bo is not one.
    let e = typed(
        bo,
        calls::RemoveMember {
            room: id.clone(),
            member: cy.id.to_hex(),
        },
    )
    .unwrap_err();
    assert!(e.message.contains("only an admin"), "{}", e.message);
    let left = typed(
        ana,
        calls::RemoveMember {
            room: id.clone(),
            member: cy.id.to_hex(),
        },
    )
    .unwrap();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|m| m.id != cy.id.to_hex()));
    typed(
        ana,
        calls::Send {
            room: id.clone(),
            body: "after: Zed moved to tent 9".into(),
            urgent: false,
        },
    )
    .unwrap();
    gossip(&mut net);
    let [ana, bo, cy, _] = &mut net[..] else {
        unreachable!()
    };

    // Bo took the new key from Ana's grant and reads the message written after the removal.
    let b = bodies(bo, &id);
    assert!(
        b.contains(&"Ana Creator: removed Cy Removed".to_string()),
        "{b:?}"
    );
    assert!(
        b.contains(&"Ana Creator: after: Zed moved to tent 9".to_string()),
        "{b:?}"
    );
    assert_eq!(bo.core.store.room_keys(&id).unwrap().len(), 2);
    // Cy sees the removal notice (old key) but not what came after; it waits for a key that
    // never comes.
    let c = bodies(cy, &id);
    assert!(c.iter().any(|l| l.contains("removed Cy Removed")), "{c:?}");
    assert!(!c.iter().any(|l| l.contains("tent 9")));
    let cy_room = typed(cy, calls::Rooms).unwrap().remove(0);
    // It holds the message (sealed) but waits for no key: it was removed.
    assert_eq!(cy_room.waiting_for_key, 0);
    // Stored beyond what it shows: the message after its removal and Mallory's forgery.
    assert_eq!(cy_room.messages, c.len() as u64 + 2);
    let e = typed(
        cy,
        calls::Send {
            room: id.clone(),
            body: "still here?".into(),
            urgent: false,
        },
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(e.message.contains("you were removed"), "{}", e.message);
    assert_eq!(cy.core.store.room_keys(&id).unwrap().len(), 1);
    // Forged invites for a room already held bring no key: a newer epoch no admin announced,
    // another creator, or an epoch-0 key that is not the room's.
    let rid = dn_proto::private::RoomId::parse(&id).unwrap();
    let forged = |epoch: u32, key: [u8; 32], creator: NodeId| {
        dn_proto::private::Invite {
            room: rid,
            epoch,
            key,
            creator,
            name: "medical".into(),
        }
        .to_code()
    };
    let refused = |who: &mut Node, code: String, why: &str| {
        let e = typed(who, calls::JoinInvite { invite: code }).unwrap_err();
        assert!(e.message.contains(why), "{}", e.message);
    };
    refused(bo, forged(7, [7; 32], ana.id), "no admin announced");
    refused(cy, forged(5, [5; 32], ana.id), "no admin announced");
    let bo_id = bo.id;
    refused(bo, forged(1, [7; 32], bo_id), "another creator");
    let mut stranger = node("Stranger");
    let e = typed(
        &mut stranger,
        calls::JoinInvite {
            invite: forged(0, [3; 32], ana.id),
        },
    )
    .unwrap_err();
    assert!(
        e.message.contains("does not belong to its room"),
        "{}",
        e.message
    );
    assert_eq!(bo.core.store.room_keys(&id).unwrap().len(), 2);
    assert_eq!(cy.core.store.room_keys(&id).unwrap().len(), 1);

    // A grant from Cy (not an admin) is ignored and counted.
    let fake = dn_proto::private::Invite {
        room: dn_proto::private::RoomId::parse(&id).unwrap(),
        epoch: 2,
        key: [9; 32],
        creator: ana.id,
        name: "medical".into(),
    };
    cy.core
        .send_dm_quiet(&bo.id, &dn_proto::private::grant_text(&fake), true, false)
        .unwrap();
    gossip(&mut net);
    let [ana, bo, cy, _] = &mut net[..] else {
        unreachable!()
    };
    assert_eq!(bo.core.store.room_keys(&id).unwrap().len(), 2);
    assert_eq!(bo.core.drops.grants_ignored, 1);
    // Grants are not conversations.
    let dms = typed(
        bo,
        calls::DmLog {
            with: ana.id.to_hex(),
            limit: 10,
        },
    )
    .unwrap();
    assert!(dms.is_empty(), "{dms:?}");

    // Invited back: the invite's epoch is the one Ana's removal announced (Cy can read that
    // notice), so Cy takes it, writes a Join and reads what it missed.
    let back = typed(
        ana,
        calls::RoomInvite {
            room: id.clone(),
            path: None,
        },
    )
    .unwrap();
    assert_eq!(back.epoch, 1);
    let joined = typed(cy, calls::JoinInvite { invite: back.code }).unwrap();
    assert_eq!(joined.waiting_for_key, 0);
    gossip(&mut net);
    let [ana, _bo, cy, dee] = &mut net[..] else {
        unreachable!()
    };
    assert!(bodies(cy, &id).iter().any(|l| l.contains("tent 9")));
    let members = typed(ana, calls::Members { room: id.clone() }).unwrap();
    assert!(
        members.iter().any(|m| m.id == cy.id.to_hex()),
        "{members:?}"
    );
    typed(
        cy,
        calls::Send {
            room: id.clone(),
            body: "back on duty".into(),
            urgent: false,
        },
    )
    .unwrap();

    // The carrier's files hold none of the room's names or texts (WAL included).
    let files = all_bytes(dee.dir.path());
    assert!(
        contains(&all_bytes(ana.dir.path()), "Ana Creator"),
        "the search works"
    );
    for secret in [
        "medical",
        "patient Zed",
        "tent 9",
        "Ana Creator",
        "Bo Member",
        "Cy Removed",
    ] {
        assert!(
            !contains(&files, secret),
            "{secret:?} found in the carrier's files"
        );
    }
}

#[test]
fn private_room_state_survives_a_restart_and_names_resolve() {
    let mut ana = node("Ana");
    let room = typed(
        &mut ana,
        calls::CreatePrivateRoom {
            title: "ops".into(),
        },
    )
    .unwrap();
    // By name, the private room (rejoining it if left).
    let again = typed(&mut ana, calls::JoinRoom { room: "ops".into() }).unwrap();
    assert_eq!(again.name, room.name);
    // An open room of the same name is reached as #ops.
    let open = typed(
        &mut ana,
        calls::JoinRoom {
            room: "#ops".into(),
        },
    )
    .unwrap();
    assert!(!open.private && open.name == "ops");
    typed(
        &mut ana,
        calls::Send {
            room: "ops".into(),
            body: "private hello".into(),
            urgent: false,
        },
    )
    .unwrap();
    typed(
        &mut ana,
        calls::Send {
            room: "#ops".into(),
            body: "open hello".into(),
            urgent: false,
        },
    )
    .unwrap();
    let mut ops = bodies(&mut ana, "ops");
    ops.sort(); // the two may share a millisecond
    assert_eq!(ops, ["Ana: created the room", "Ana: private hello"]);
    assert_eq!(bodies(&mut ana, "#ops"), ["Ana: open hello"]);
    // Unknown private ids cannot be joined by name.
    let e = typed(
        &mut ana,
        calls::JoinRoom {
            room: "p.00000000000000000000000000000000".into(),
        },
    )
    .unwrap_err();
    assert!(e.message.contains("invite"), "{}", e.message);
    // Exports show what the member reads; the JSON Lines still verify (signatures over the
    // ciphertext) and carry the text beside it.
    let csv = ana.dir.path().join("out.csv");
    let jsonl = ana.dir.path().join("out.jsonl");
    for (path, format) in [(&csv, ExportFormat::Csv), (&jsonl, ExportFormat::Jsonl)] {
        typed(
            &mut ana,
            calls::Export {
                room: Some("ops".into()),
                path: path.display().to_string(),
                format,
            },
        )
        .unwrap();
    }
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.contains("ops (private),Ana,"), "{text}");
    assert!(
        text.contains("private hello") && !text.contains("open hello"),
        "{text}"
    );
    let lines = std::fs::read_to_string(&jsonl).unwrap();
    assert!(lines.contains("\"private\":{\"title\":\"ops\""), "{lines}");
    let v = crate::export::verify_file(&jsonl).unwrap();
    assert_eq!((v.lines, v.valid), (2, 2), "{:?}", v.failures);
    let Node { dir, core, .. } = ana;
    drop(core);
    let (tx, _) = broadcast::channel(16);
    let key = identity::load_or_create(dir.path()).unwrap();
    let mut core = Core::open(dir.path(), key, tx, None).unwrap();
    let again: Vec<MessageView> = decode(
        call(
            &mut core,
            Request::Messages {
                room: room.name.clone(),
                limit: 10,
                before: None,
            },
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|m| m.private));
    assert!(again.iter().any(|m| m.kind == MessageKind::Join));
}

/// Not a private-room test, but it needs the same harness: a message no peer held when the
/// node stopped is retried after a restart (the core hands the store's queue to the protocol).
#[test]
fn a_message_nobody_held_is_retried_after_a_restart() {
    let mut ana = node("Ana");
    typed(&mut ana, calls::JoinRoom { room: "ops".into() }).unwrap();
    typed(
        &mut ana,
        calls::Send {
            room: "ops".into(),
            body: "written alone".into(),
            urgent: false,
        },
    )
    .unwrap();
    assert!(typed(&mut ana, calls::Status)
        .unwrap()
        .next_retry_in_ms
        .is_some());
    let Node { dir, core, .. } = ana;
    drop(core);
    let (tx, _) = broadcast::channel(16);
    let key = identity::load_or_create(dir.path()).unwrap();
    let mut core = Core::open(dir.path(), key, tx, None).unwrap();
    let status: StatusView = decode(call(&mut core, Request::Status).unwrap()).unwrap();
    assert_eq!(status.queued, 1);
    let next = status
        .next_retry_in_ms
        .expect("scheduled again after the restart");
    assert!(next <= dn_proto::protocol::RETRY_FIRST_MS, "{next}");
}

/// Runs a request answered by a bundle import: the core's loop steps the import until done.
fn import(n: &mut Node, path: &Path) -> Result<BundleImportReport, ApiError> {
    let (tx, mut rx) = oneshot::channel();
    n.core.request(
        Request::ImportBundle {
            path: path.display().to_string(),
        },
        tx,
    );
    let mut turns = 0;
    while n.core.import_step() {
        turns += 1;
        assert!(turns < 10_000, "the import never ends");
    }
    rx.try_recv().unwrap().map(|v| decode(v).unwrap())
}

/// Ids stored by `n`, with how many times each is stored (always once).
fn stored_ids(n: &Node) -> Vec<MessageId> {
    let mut ids = Vec::new();
    n.core
        .store
        .for_each_message(None, |sm| -> Result<(), ApiError> {
            ids.push(sm.message.id());
            Ok(())
        })
        .unwrap();
    ids.sort();
    ids
}

/// Bundles (issue 12): export from Ana, import into Bo, who never met her: every message
/// (open room, private room as ciphertext, a direct message) arrives verified and spreads to
/// Bo's peer; importing twice adds nothing; a tampered record is refused and the rest imported;
/// a truncated file imports its whole records and says so; a non-bundle is refused.
#[test]
fn a_bundle_carries_every_message_to_another_camp_once() {
    let mut ana = node("Ana Camp One");
    let mut bo = node("Bo Camp Two");
    typed(&mut ana, calls::JoinRoom { room: "ops".into() }).unwrap();
    for i in 0..5 {
        typed(
            &mut ana,
            calls::Send {
                room: "ops".into(),
                body: format!("convoy {i} left"),
                urgent: false,
            },
        )
        .unwrap();
    }
    let private = typed(
        &mut ana,
        calls::CreatePrivateRoom {
            title: "medical".into(),
        },
    )
    .unwrap();
    typed(
        &mut ana,
        calls::Send {
            room: private.name.clone(),
            body: "patient Zed in tent 4".into(),
            urgent: false,
        },
    )
    .unwrap();
    typed(
        &mut ana,
        calls::SendDm {
            to: bo.id.to_hex(),
            body: "bring insulin".into(),
            urgent: false,
        },
    )
    .unwrap();
    // Bo's camp: Bo joined ops; a peer of his wants ops too.
    typed(&mut bo, calls::JoinRoom { room: "ops".into() }).unwrap();
    let peer = Node::stub(NodeId(
        SigningKey::from_bytes(&[0x42; 32])
            .verifying_key()
            .to_bytes(),
    ));
    link(&mut bo, &peer, &["ops"]);

    let file = ana.dir.path().join("camp1.dnb");
    let sum = typed(
        &mut ana,
        calls::ExportBundle {
            path: file.display().to_string(),
            rooms: None,
            since_ms: None,
        },
    )
    .unwrap();
    let all = stored_ids(&ana);
    assert_eq!(sum.messages, all.len() as u64);
    assert_eq!(sum.bytes, std::fs::metadata(&file).unwrap().len());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "bundle readable by others: {mode:o}");
    }
    // Nothing decrypted in the file.
    let bytes = std::fs::read(&file).unwrap();
    assert!(!contains(&bytes, "patient Zed") && !contains(&bytes, "bring insulin"));
    assert!(contains(&bytes, "convoy 3 left"));

    let r = import(&mut bo, &file).unwrap();
    assert_eq!(
        (r.total, r.imported, r.duplicates, r.invalid, r.refused),
        (all.len() as u64, all.len() as u64, 0, 0, 0),
        "{r:?}"
    );
    assert!(
        r.checksum_ok && !r.truncated && r.problem.is_none(),
        "{r:?}"
    );
    assert_eq!(r.creator, Some(ana.id.to_hex()));
    let mut bo_ids = stored_ids(&bo);
    bo_ids.retain(|id| all.contains(id));
    assert_eq!(bo_ids, all, "every message, once");
    // Bo reads the DM and the open room; the private room is carried as ciphertext.
    assert_eq!(bodies(&mut bo, "ops").len(), 5);
    let dms = typed(
        &mut bo,
        calls::DmLog {
            with: ana.id.to_hex(),
            limit: 10,
        },
    )
    .unwrap();
    assert_eq!(dms.len(), 1);
    assert_eq!(dms[0].body, "bring insulin");
    assert!(bo.core.proto.carried().any(|r| *r == private.name));
    assert!(!contains(&all_bytes(bo.dir.path()), "patient Zed"));
    // Spread to Bo's peer like received messages (ops, pushed on the open link).
    let mut pushed = 0;
    for w in &mut bo.wires {
        while let Some(b) = w.try_recv() {
            let f = Frame::decode(&b[4..]).unwrap();
            if matches!(f, Frame::Msg { ref message, .. } if message.room == "ops") {
                pushed += 1;
            }
        }
    }
    assert_eq!(pushed, 5, "ops messages pushed to Bo's peer");

    // Idempotent.
    let again = import(&mut bo, &file).unwrap();
    assert_eq!((again.imported, again.duplicates), (0, all.len() as u64));

    // A tampered record (a body byte of the third record) is refused; the others import.
    let mut cy = node("Cy Camp Three");
    let mut bad = bytes.clone();
    let at = bad
        .windows(b"convoy 2".len())
        .position(|w| w == b"convoy 2")
        .unwrap();
    bad[at] = b'C';
    let tampered = cy.dir.path().join("tampered.dnb");
    std::fs::write(&tampered, &bad).unwrap();
    let r = import(&mut cy, &tampered).unwrap();
    assert_eq!(r.invalid, 1, "{r:?}");
    assert_eq!(r.imported, all.len() as u64 - 1, "{r:?}");
    assert!(!r.checksum_ok && !r.truncated, "{r:?}");

    // Truncated: the whole records before the cut import, and the report says so.
    let mut dee = node("Dee Camp Four");
    let cut = dee.dir.path().join("cut.dnb");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let r = import(&mut dee, &cut).unwrap();
    assert!(
        r.truncated && !r.checksum_ok && r.problem.is_some(),
        "{r:?}"
    );
    assert!(r.imported > 0 && r.imported < all.len() as u64, "{r:?}");
    assert_eq!(r.imported, r.total);

    // Not a bundle: a clear error, nothing imported.
    let jsonl = dee.dir.path().join("x.jsonl");
    std::fs::write(&jsonl, b"{\"id\":\"x\"}\n").unwrap();
    let e = import(&mut dee, &jsonl).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(
        e.message.contains("not a DisasterNet bundle"),
        "{}",
        e.message
    );
    let missing = dee.dir.path().join("missing.dnb");
    let e = import(&mut dee, &missing).unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
    // A directory (or a pipe, a device) is refused before anything is read from it.
    let e = import(&mut dee, Path::new("/")).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput, "{}", e.message);

    // A large bundle goes a chunk per turn of the core, its progress asked for meanwhile.
    let header = dn_proto::bundle::Header {
        flags: 0,
        created_ms: 1,
        creator: ana.id,
        count_hint: 0,
    };
    let many: Vec<Message> = (0..1_100u32)
        .map(|i| {
            let mut seed = [9u8; 32];
            seed[..4].copy_from_slice(&i.to_be_bytes());
            let k = SigningKey::from_bytes(&seed);
            Message::create(&k, "ops", "far", 1_700_000_000_000, "water needed").unwrap()
        })
        .collect();
    let big = dee.dir.path().join("big.dnb");
    std::fs::write(&big, dn_proto::bundle::encode(&header, &many)).unwrap();
    let (tx, mut rx) = oneshot::channel();
    let path = big.display().to_string();
    dee.core
        .request(Request::ImportBundle { path: path.clone() }, tx);
    assert!(
        dee.core.import_step(),
        "1,100 records take more than one turn"
    );
    let p: Option<BundleProgressView> = decode(
        call(
            &mut dee.core,
            Request::BundleProgress { path: path.clone() },
        )
        .unwrap(),
    )
    .unwrap();
    let p = p.expect("progress of the running import");
    assert!(p.import && p.records > 0 && p.records <= 1_000, "{p:?}");
    assert!(p.done <= p.total, "{p:?}");
    while dee.core.import_step() {}
    let r: BundleImportReport = decode(rx.try_recv().unwrap().unwrap()).unwrap();
    assert_eq!((r.total, r.imported), (1_100, 1_100), "{r:?}");
    let after: Option<BundleProgressView> =
        decode(call(&mut dee.core, Request::BundleProgress { path }).unwrap()).unwrap();
    assert_eq!(after, None);

    // Chosen rooms and a date: only those.
    let some = ana.dir.path().join("ops.dnb");
    let s = typed(
        &mut ana,
        calls::ExportBundle {
            path: some.display().to_string(),
            rooms: Some(vec!["ops".into()]),
            since_ms: Some(u64::MAX),
        },
    )
    .unwrap();
    assert_eq!(s.messages, 0);
    let s = typed(
        &mut ana,
        calls::ExportBundle {
            path: some.display().to_string(),
            rooms: Some(vec!["ops".into()]),
            since_ms: Some(0),
        },
    )
    .unwrap();
    assert_eq!(s.messages, 5);
}

/// A FIFO named as a bundle is refused at once: opening it does not wait for a writer, and it
/// is no regular file (the core thread must never block on a path the user gave).
#[cfg(unix)]
#[test]
fn importing_a_fifo_is_refused_without_blocking() {
    let mut bo = node("Bo");
    let fifo = bo.dir.path().join("not-a-bundle.dnb");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let err = call(
        &mut bo.core,
        Request::ImportBundle {
            path: fifo.display().to_string(),
        },
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput, "{err:?}");
    assert!(err.message.contains("not a regular file"), "{err:?}");
}
