#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dn_proto::{Message, MessageId, NodeId, Storage};
use ed25519_dalek::SigningKey;
use rusqlite::Connection;

use crate::{schema, Store, StoreError, StoredMessage, SCHEMA_VERSION};

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn msg(k: u8, room: &str, ts: u64, body: &str) -> Message {
    Message::create(&key(k), room, &format!("user{k}"), ts, body).unwrap()
}

fn node(n: u8) -> NodeId {
    NodeId(key(n).verifying_key().to_bytes())
}

/// Room order computed independently of SQL.
fn room_order(msgs: &[Message]) -> Vec<MessageId> {
    let mut v: Vec<_> = msgs
        .iter()
        .map(|m| (m.timestamp, m.author, m.id()))
        .collect();
    v.sort();
    v.into_iter().map(|(_, _, id)| id).collect()
}

fn ids(v: &[StoredMessage]) -> Vec<MessageId> {
    v.iter().map(|s| s.id).collect()
}

/// Takes a store back to schema 6 (no private rooms; evicted ids not counted in `room_usage`), for upgrade
/// tests.
const UNDO_V7: &str = "DROP TABLE urgent; DROP TRIGGER messages_urgent_insert;
    DROP TRIGGER messages_urgent_delete; DROP TABLE room_keys; DROP TABLE private_rooms;
    DROP TRIGGER evicted_usage_insert; DROP TRIGGER evicted_usage_delete;
    ALTER TABLE room_usage DROP COLUMN evicted;";
/// Takes a store back to schema 5.
const UNDO_V6: &str = "DROP TABLE urgent; DROP TRIGGER messages_urgent_insert;
    DROP TRIGGER messages_urgent_delete; DROP TABLE room_keys; DROP TABLE private_rooms;
    DROP TRIGGER evicted_usage_insert; DROP TRIGGER evicted_usage_delete;
    DROP TRIGGER messages_usage_insert; DROP TRIGGER messages_usage_delete;
    DROP TABLE room_usage; DROP TABLE evicted;";

/// When a catch-up of `room` with `peer` last finished, read from `sync_state`.
fn last_synced(s: &Store, peer: &NodeId, room: &str) -> Result<Option<u64>, rusqlite::Error> {
    use rusqlite::OptionalExtension;
    s.conn
        .query_row(
            "SELECT last_sync_at FROM sync_state WHERE peer = ?1 AND room = ?2",
            rusqlite::params![&peer.0[..], room],
            |r| r.get::<_, i64>(0),
        )
        .optional()
        .map(|v| v.map(|t| t as u64))
}

fn pragma_i64(s: &Store, name: &str) -> i64 {
    s.conn.pragma_query_value(None, name, |r| r.get(0)).unwrap()
}

#[test]
fn store_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Store>();
}

#[test]
fn migrates_from_empty_file_with_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/dn.sqlite");
    let s = Store::open(&path).unwrap();
    assert!(path.exists());
    assert_eq!(pragma_i64(&s, "user_version"), SCHEMA_VERSION);
    assert_eq!(pragma_i64(&s, "application_id"), schema::APPLICATION_ID);
    assert_eq!(pragma_i64(&s, "foreign_keys"), 1);
    assert_eq!(pragma_i64(&s, "synchronous"), 2); // FULL
    assert_eq!(pragma_i64(&s, "busy_timeout"), 5000);
    let mode: String = s
        .conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let tables: Vec<String> = s
        .conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        tables,
        [
            "blocked",
            "deliveries",
            "evicted",
            "messages",
            "peers",
            "private_rooms",
            "room_keys",
            "room_usage",
            "rooms",
            "settings",
            "sync_state",
            "urgent"
        ]
    );
    let fk_errors: i64 = s
        .conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk_errors, 0);
}

#[test]
fn in_memory_works() {
    let s = Store::open_in_memory().unwrap();
    assert_eq!(pragma_i64(&s, "user_version"), SCHEMA_VERSION);
    assert_eq!(s.message_count(None).unwrap(), 0);
}

#[test]
fn reopen_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dn.sqlite");
    let m = msg(1, "medical", 1_000, "need insulin");
    {
        let s = Store::open(&path).unwrap();
        assert!(s.insert_message(&m, 5, true).unwrap());
        s.join_room("medical", 7).unwrap();
        s.set_setting("display_name", "Ana").unwrap();
        s.upsert_peer(&node(2), Some("Bo"), &["10.0.0.2:4000".into()], Some(9))
            .unwrap();
        s.set_synced(&node(2), "medical", 11).unwrap();
    }
    let s = Store::open(&path).unwrap();
    let got = s.get_message(&m.id()).unwrap().unwrap();
    assert_eq!(
        got,
        StoredMessage {
            message: m.clone(),
            id: m.id(),
            received_at: 5,
            local: true
        }
    );
    got.message.verify().unwrap();
    assert_eq!(s.joined_rooms().unwrap(), ["medical"]);
    assert_eq!(
        s.get_setting("display_name").unwrap().as_deref(),
        Some("Ana")
    );
    assert_eq!(s.peers().unwrap().len(), 1);
    assert_eq!(last_synced(&s, &node(2), "medical").unwrap(), Some(11));
}

#[test]
fn refuses_newer_schema_without_touching_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dn.sqlite");
    drop(Store::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    match Store::open(&path) {
        Err(StoreError::TooNew {
            found: 99,
            supported,
        }) => assert_eq!(supported, SCHEMA_VERSION),
        other => panic!("expected TooNew, got {other:?}"),
    }
    let v: i64 = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, 99);
}

#[test]
fn random_bytes_are_corrupt_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dn.sqlite");
    // Deterministic pseudo-random bytes (xorshift).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes: Vec<u8> = (0..8192)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(err.to_string().contains("dn.sqlite"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "file must be left untouched"
    );
}

#[test]
fn foreign_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.sqlite");
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE notes (x TEXT);")
        .unwrap();
    assert!(matches!(Store::open(&path), Err(StoreError::Corrupt(_))));
    let path2 = dir.path().join("other2.sqlite");
    Connection::open(&path2)
        .unwrap()
        .pragma_update(None, "application_id", 42)
        .unwrap();
    assert!(matches!(Store::open(&path2), Err(StoreError::Corrupt(_))));
}

#[test]
fn two_connections_share_a_file() {
    // The CLI and a node may open the same file; migration runs once, writes interleave.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dn.sqlite");
    let a = Store::open(&path).unwrap();
    let b = Store::open(&path).unwrap();
    let m1 = msg(1, "r", 1, "one");
    let m2 = msg(2, "r", 2, "two");
    assert!(a.insert_message(&m1, 1, true).unwrap());
    assert!(b.insert_message(&m2, 1, false).unwrap());
    assert!(!b.insert_message(&m1, 1, false).unwrap());
    assert_eq!(
        a.room_entries("r")
            .unwrap()
            .into_iter()
            .map(|(_, id)| id)
            .collect::<Vec<_>>(),
        room_order(&[m1, m2])
    );
}

#[test]
fn reader_sees_a_snapshot_and_never_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dn.sqlite");
    // No file yet: the reader does not create one.
    assert!(Store::open_reader(&path).is_err());
    assert!(!path.exists());
    let w = Store::open(&path).unwrap();
    for i in 0..3u64 {
        w.insert_message(&msg(1, "r", i, &format!("m{i}")), 1, true)
            .unwrap();
    }
    let r = Store::open_reader(&path).unwrap();
    // A statement in progress on the reader keeps its snapshot while the writer goes on.
    let mut seen = 0;
    r.for_each_message(Some("r"), |_| -> Result<(), StoreError> {
        if seen == 0 {
            w.insert_message(&msg(2, "r", 99, "late"), 1, false)
                .unwrap();
        }
        seen += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, 3);
    assert_eq!(r.message_count(Some("r")).unwrap(), 4);
    // Writes through the reader fail cleanly.
    assert!(r.join_room("x", 1).is_err());
    assert!(r.insert_message(&msg(3, "r", 5, "no"), 1, true).is_err());
    assert_eq!(w.message_count(None).unwrap(), 4);
}

#[test]
fn reader_refuses_an_unmigrated_or_foreign_file() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.sqlite");
    Connection::open(&old)
        .unwrap()
        .execute_batch("CREATE TABLE t(x)")
        .unwrap();
    assert!(matches!(
        Store::open_reader(&old),
        Err(StoreError::Corrupt(_))
    ));
    let junk = dir.path().join("junk.sqlite");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    assert!(Store::open_reader(&junk).is_err());
}

#[test]
fn duplicate_insert_returns_false_and_keeps_first() {
    let s = Store::open_in_memory().unwrap();
    let m = msg(1, "r", 10, "hello");
    assert!(s.insert_message(&m, 100, true).unwrap());
    assert!(!s.insert_message(&m, 200, false).unwrap());
    let got = s.get_message(&m.id()).unwrap().unwrap();
    assert_eq!((got.received_at, got.local), (100, true));
    assert_eq!(s.message_count(None).unwrap(), 1);
    assert!(s.has_message(&m.id()).unwrap());
    assert!(!s.has_message(&MessageId([0; 32])).unwrap());
    assert_eq!(s.get_message(&MessageId([0; 32])).unwrap(), None);
}

#[test]
fn batch_insert_reports_each_entry() {
    let s = Store::open_in_memory().unwrap();
    let a = msg(1, "r", 1, "a");
    let b = msg(2, "r", 2, "b");
    s.insert_message(&a, 0, false).unwrap();
    let got = s
        .insert_messages(&[
            (a.clone(), 1, false),
            (b.clone(), 1, false),
            (b.clone(), 2, true),
        ])
        .unwrap();
    assert_eq!(got, [false, true, false]);
    assert_eq!(s.message_count(Some("r")).unwrap(), 2);
    assert_eq!(s.insert_messages(&[]).unwrap(), Vec::<bool>::new());
}

#[test]
fn messages_are_append_only() {
    let s = Store::open_in_memory().unwrap();
    let m = msg(1, "r", 1, "a");
    s.insert_message(&m, 0, false).unwrap();
    assert!(s
        .conn
        .execute("UPDATE messages SET body = 'x'", [])
        .is_err());
}

#[test]
fn huge_timestamps_saturate_but_round_trip() {
    let s = Store::open_in_memory().unwrap();
    let m = msg(1, "r", u64::MAX, "from the far future");
    s.insert_message(&m, u64::MAX, false).unwrap();
    let got = s.get_message(&m.id()).unwrap().unwrap();
    assert_eq!(got.message.timestamp, u64::MAX);
    assert_eq!(got.received_at, i64::MAX as u64);
    assert_eq!(s.last_timestamp("r").unwrap(), Some(i64::MAX as u64));
}

#[test]
fn corrupt_rows_are_errors_not_panics() {
    let s = Store::open_in_memory().unwrap();
    let m = msg(1, "r", 1, "fine");
    s.insert_message(&m, 0, false).unwrap();
    let bad = MessageId([7; 32]);
    s.conn
        .execute(
            "INSERT INTO messages VALUES (?1, 'r', ?2, 2, 'x', 'y', X'00010203', ?3, 0, 0)",
            rusqlite::params![&bad.0[..], &[1u8; 32][..], &[0u8; 64][..]],
        )
        .unwrap();
    assert!(matches!(s.get_message(&bad), Err(StoreError::Corrupt(_))));
    assert!(matches!(
        s.messages("r", 10, None),
        Err(StoreError::Corrupt(_))
    ));
    let r: Result<(), StoreError> = s.for_each_message(Some("r"), |_| Ok(()));
    assert!(matches!(r, Err(StoreError::Corrupt(_))));
    // A well-formed message stored under the wrong id.
    let wrong = MessageId([8; 32]);
    s.conn
        .execute(
            "INSERT INTO messages VALUES (?1, 'r', ?2, 3, 'x', 'y', ?3, ?4, 0, 0)",
            rusqlite::params![
                &wrong.0[..],
                &m.author.0[..],
                m.signed_bytes(),
                &m.signature[..]
            ],
        )
        .unwrap();
    assert!(matches!(s.get_message(&wrong), Err(StoreError::Corrupt(_))));
    // The Storage trait reports it as a StorageError.
    assert!(Storage::get(&s, &wrong).is_err());
    assert!(s.get_message(&m.id()).unwrap().is_some());
}

/// 2,500 messages with one timestamp and five authors: order falls to (author, id).
#[test]
fn pagination_with_equal_timestamps() {
    let s = Store::open_in_memory().unwrap();
    let all: Vec<Message> = (0..2500u32)
        .map(|i| msg((i % 5) as u8 + 1, "r", 1_000, &format!("m{i}")))
        .collect();
    let batch: Vec<_> = all.iter().map(|m| (m.clone(), 1, false)).collect();
    assert!(s.insert_messages(&batch).unwrap().iter().all(|b| *b));
    // Noise in other rooms must not leak in.
    s.insert_message(&msg(1, "other", 1_000, "x"), 1, false)
        .unwrap();
    s.insert_message(&msg(1, "r2", 999, "y"), 1, false).unwrap();
    let expected = room_order(&all);

    assert_eq!(
        s.room_entries("r")
            .unwrap()
            .into_iter()
            .map(|(_, id)| id)
            .collect::<Vec<_>>(),
        expected
    );
    let entries: Vec<MessageId> = Storage::room_set(&s, "r")
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(entries, expected);

    for limit in [1u32, 7, 100, 2500, 5000] {
        let mut pages: Vec<Vec<MessageId>> = Vec::new();
        let mut before: Option<MessageId> = None;
        loop {
            let page = s.messages("r", limit, before.as_ref()).unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= limit as usize);
            before = Some(page[0].id);
            pages.push(ids(&page));
        }
        pages.reverse();
        let flat: Vec<MessageId> = pages.concat();
        assert_eq!(flat, expected, "limit {limit}");
    }
    assert!(s.messages("r", 0, None).unwrap().is_empty());
    let newest = s.messages("r", 3, None).unwrap();
    assert_eq!(ids(&newest), expected[2497..]);

    let mut streamed = Vec::new();
    s.for_each_message(Some("r"), |m| {
        streamed.push(m.id);
        Ok::<(), StoreError>(())
    })
    .unwrap();
    assert_eq!(streamed, expected);
    assert_eq!(s.message_count(Some("r")).unwrap(), 2500);
    assert_eq!(s.message_count(None).unwrap(), 2502);
}

#[test]
fn pagination_with_mixed_timestamps_and_errors() {
    let s = Store::open_in_memory().unwrap();
    let all: Vec<Message> = (0..300u32)
        .map(|i| {
            msg(
                (i % 3) as u8 + 1,
                "r",
                u64::from((i * 7919) % 11),
                &format!("m{i}"),
            )
        })
        .collect();
    for m in &all {
        s.insert_message(m, 0, false).unwrap();
    }
    let expected = room_order(&all);
    let page = s.messages("r", 50, Some(&expected[120])).unwrap();
    assert_eq!(ids(&page), expected[70..120]);
    let page = s.messages("r", 50, Some(&expected[10])).unwrap();
    assert_eq!(ids(&page), expected[..10]);
    assert!(s.messages("r", 50, Some(&expected[0])).unwrap().is_empty());
    assert_eq!(s.last_timestamp("r").unwrap(), Some(10));
    assert_eq!(s.last_timestamp("none").unwrap(), None);

    let unknown = MessageId([9; 32]);
    assert!(
        matches!(s.messages("r", 5, Some(&unknown)), Err(StoreError::NotFound(id)) if id == unknown)
    );
    // A known id from another room is not a cursor for this one.
    let o = msg(1, "other", 5, "o");
    s.insert_message(&o, 0, false).unwrap();
    assert!(matches!(
        s.messages("r", 5, Some(&o.id())),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn for_each_over_all_rooms_and_early_stop() {
    let s = Store::open_in_memory().unwrap();
    let a = [
        msg(1, "b", 2, "b1"),
        msg(2, "b", 1, "b2"),
        msg(1, "a", 9, "a1"),
    ];
    for m in &a {
        s.insert_message(m, 0, false).unwrap();
    }
    let mut seen = Vec::new();
    s.for_each_message(None, |m| {
        seen.push((m.message.room.clone(), m.message.timestamp));
        Ok::<(), StoreError>(())
    })
    .unwrap();
    assert_eq!(
        seen,
        [("a".to_string(), 9), ("b".into(), 1), ("b".into(), 2)]
    );

    #[derive(Debug)]
    enum E {
        Store,
        Stop,
    }
    impl From<StoreError> for E {
        fn from(_: StoreError) -> Self {
            E::Store
        }
    }
    let mut n = 0;
    let r = s.for_each_message(None, |_| {
        n += 1;
        Err(E::Stop)
    });
    assert!(matches!(r, Err(E::Stop)));
    assert_eq!(n, 1);
    assert!(!matches!(r, Err(E::Store)));
}

#[test]
fn paging_uses_the_index() {
    let s = Store::open_in_memory().unwrap();
    let plan = |sql: &str| -> String {
        let mut st = s
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows: Vec<String> = st
            .query_map([], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.join("; ")
    };
    for sql in [
        "SELECT * FROM messages WHERE room = 'r' AND (timestamp, author, id) < (1, x'00', x'00') \
         ORDER BY timestamp DESC, author DESC, id DESC LIMIT 50",
        "SELECT * FROM messages WHERE room = 'r' ORDER BY timestamp DESC, author DESC, id DESC \
         LIMIT 50",
        "SELECT * FROM messages ORDER BY room, timestamp, author, id",
        "SELECT id FROM messages WHERE room = 'r' ORDER BY timestamp, author, id",
    ] {
        let p = plan(sql);
        assert!(p.contains("messages_room_order"), "{sql}: {p}");
        assert!(!p.contains("TEMP B-TREE"), "{sql}: {p}");
    }
    let p = plan(
        "SELECT * FROM messages WHERE room = 'r' AND (timestamp, author, id) < (1, x'00', x'00') \
         ORDER BY timestamp DESC, author DESC, id DESC LIMIT 50",
    );
    assert!(
        p.contains("(timestamp,author,id)<"),
        "range must be in the index search: {p}"
    );
}

#[test]
fn rooms_roundtrip() {
    let s = Store::open_in_memory().unwrap();
    assert!(s.join_room("medical", 10).unwrap());
    assert!(!s.join_room("medical", 20).unwrap());
    assert!(s.join_room("food", 30).unwrap());
    assert_eq!(s.joined_rooms().unwrap(), ["food", "medical"]);
    assert!(s.room_joined("food").unwrap());
    let joined_at: i64 = s
        .conn
        .query_row(
            "SELECT joined_at FROM rooms WHERE name = 'medical'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(joined_at, 10);

    s.insert_message(&msg(1, "medical", 5, "a"), 0, false)
        .unwrap();
    s.insert_message(&msg(1, "medical", 8, "b"), 0, false)
        .unwrap();
    s.insert_message(&msg(2, "water", 3, "c"), 0, false)
        .unwrap();
    assert!(s.leave_room("food").unwrap());
    assert!(!s.leave_room("food").unwrap());
    assert!(!s.leave_room("never").unwrap());
    assert!(s.leave_room("medical").unwrap());
    assert_eq!(
        s.message_count(Some("medical")).unwrap(),
        2,
        "leaving keeps messages"
    );
    s.set_room_muted("water", true).unwrap();

    let rooms = s.rooms().unwrap();
    let names: Vec<_> = rooms.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["medical", "water"],
        "left room without messages is not listed"
    );
    assert_eq!(rooms[0].messages, 2);
    assert_eq!(rooms[0].last_timestamp, Some(8));
    assert!(!rooms[0].joined);
    assert!(rooms[1].muted);

    assert!(s.join_room("medical", 40).unwrap());
    let joined_at: i64 = s
        .conn
        .query_row(
            "SELECT joined_at FROM rooms WHERE name = 'medical'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(joined_at, 40);
    assert!(s.join_room("empty", 1).unwrap());
    let rooms = s.rooms().unwrap();
    let empty = rooms.iter().find(|r| r.name == "empty").unwrap();
    assert_eq!(
        (empty.joined, empty.messages, empty.last_timestamp),
        (true, 0, None)
    );
}

#[test]
fn settings_roundtrip() {
    let s = Store::open_in_memory().unwrap();
    assert_eq!(s.get_setting("display_name").unwrap(), None);
    s.set_setting("display_name", "Ana").unwrap();
    s.set_setting("display_name", "Ana María").unwrap();
    assert_eq!(
        s.get_setting("display_name").unwrap().as_deref(),
        Some("Ana María")
    );
}

#[test]
fn peers_merge() {
    let mut s = Store::open_in_memory().unwrap();
    s.set_clock(|| 77);
    let p = node(2);
    s.upsert_peer(&p, None, &[], None).unwrap();
    let row = s.peer(&p).unwrap().unwrap();
    assert_eq!(row.name, "");
    assert!(row.addresses.is_empty());
    assert_eq!((row.last_seen, row.first_seen), (None, Some(77)));

    let addrs = vec![
        "10.0.0.2:4000".to_string(),
        "10.0.0.2:4000".into(),
        "[fe80::1]:4000".into(),
    ];
    s.upsert_peer(&p, Some("Bo"), &addrs, Some(100)).unwrap();
    s.upsert_peer(&p, None, &[], Some(50)).unwrap();
    let row = s.peer(&p).unwrap().unwrap();
    assert_eq!(row.name, "Bo");
    assert_eq!(row.addresses, ["10.0.0.2:4000", "[fe80::1]:4000"]);
    assert_eq!(row.last_seen, Some(100), "last_seen never moves back");
    assert_eq!(row.first_seen, Some(77));

    s.upsert_peer(&p, Some("Bob"), &["10.0.0.9:4000".into()], Some(200))
        .unwrap();
    s.upsert_peer(&node(3), Some("Cy"), &[], Some(150)).unwrap();
    s.upsert_peer(&node(4), None, &[], None).unwrap();
    let peers = s.peers().unwrap();
    let order: Vec<_> = peers.iter().map(|r| r.id).collect();
    assert_eq!(order, [p, node(3), node(4)]);
    assert_eq!(peers[0].name, "Bob");
    assert_eq!(peers[0].addresses, ["10.0.0.9:4000"]);
    assert_eq!(s.peer(&node(9)).unwrap(), None);
}

#[test]
fn sync_state_roundtrip() {
    let s = Store::open_in_memory().unwrap();
    let p = node(5);
    assert_eq!(last_synced(&s, &p, "r").unwrap(), None);
    s.set_synced(&p, "r", 10).unwrap(); // unknown peer is added
    s.set_synced(&p, "r", 20).unwrap();
    s.set_synced(&p, "q", 5).unwrap();
    assert_eq!(last_synced(&s, &p, "r").unwrap(), Some(20));
    assert_eq!(last_synced(&s, &p, "q").unwrap(), Some(5));
    assert_eq!(last_synced(&s, &node(6), "r").unwrap(), None);
    assert_eq!(s.peer(&p).unwrap().unwrap().first_seen, Some(10));
    s.upsert_peer(&p, Some("Di"), &[], Some(30)).unwrap();
    assert_eq!(s.peer(&p).unwrap().unwrap().first_seen, Some(10));
    // Forgetting a peer forgets its sync state.
    s.conn
        .execute("DELETE FROM peers WHERE id = ?1", [&p.0[..]])
        .unwrap();
    assert_eq!(last_synced(&s, &p, "r").unwrap(), None);
}

#[test]
fn storage_trait() {
    let mut s = Store::open_in_memory().unwrap();
    let clock = Arc::new(AtomicU64::new(1_000));
    let c = clock.clone();
    s.set_clock(move || c.load(Ordering::SeqCst));
    let a = msg(1, "r", 2, "a");
    let b = msg(2, "r", 1, "b");
    let st: &mut dyn Storage = &mut s;
    assert!(st.insert(&a).unwrap());
    clock.store(2_000, Ordering::SeqCst);
    assert!(st.insert(&b).unwrap());
    assert!(!st.insert(&a).unwrap());
    assert!(st.has(&a.id()).unwrap());
    assert!(!st.has(&MessageId([0; 32])).unwrap());
    assert_eq!(st.get(&b.id()).unwrap(), Some(b.clone()));
    assert_eq!(st.get(&MessageId([0; 32])).unwrap(), None);
    assert_eq!(
        st.room_set("r").unwrap(),
        [(b.timestamp, b.id()), (a.timestamp, a.id())]
    );
    assert!(st.room_set("nope").unwrap().is_empty());
    let got = s.get_message(&a.id()).unwrap().unwrap();
    assert_eq!((got.received_at, got.local), (1_000, false));
    assert_eq!(s.get_message(&b.id()).unwrap().unwrap().received_at, 2_000);
}

#[test]
fn storage_errors_carry_the_message() {
    let e: dn_proto::StorageError = StoreError::NotFound(MessageId([1; 32])).into();
    assert!(e.0.contains("0101"), "{}", e.0);
}

#[test]
fn open_fails_cleanly_when_directory_cannot_be_created() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = Store::open(&Path::new(&file).join("sub/dn.sqlite")).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
}

#[test]
fn concurrent_first_opens_migrate_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dn.sqlite");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || Store::open(&path).map(|s| s.message_count(None)))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap().unwrap(), 0);
    }
}

/// Paging cost on a large room: `cargo test -p dn-store --release -- --ignored --nocapture`.
#[test]
#[ignore = "slow: 100k signed messages"]
fn paging_100k_is_fast() {
    let s = Store::open_in_memory().unwrap();
    let batch: Vec<_> = (0..100_000u64)
        .map(|i| {
            (
                msg((i % 50) as u8 + 1, "big", i / 3, &format!("m{i}")),
                0,
                false,
            )
        })
        .collect();
    s.insert_messages(&batch).unwrap();
    let start = std::time::Instant::now();
    let mut before = None;
    let mut n = 0;
    for _ in 0..200 {
        let page = s.messages("big", 50, before.as_ref()).unwrap();
        before = Some(page[0].id);
        n += page.len();
    }
    let el = start.elapsed();
    println!("200 pages ({n} messages) in {el:?}");
    assert!(el < std::time::Duration::from_secs(2), "{el:?}");
}

#[test]
fn batch_groups_single_inserts_into_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let s = Store::open(&path).unwrap();
    let other = Store::open(&path).unwrap();
    s.begin_batch().unwrap();
    s.begin_batch().unwrap(); // idempotent
    for i in 0..50 {
        assert!(s
            .insert_message(&msg(1, "r", i, &format!("m{i}")), 1, false)
            .unwrap());
    }
    // Another connection does not see the open batch yet.
    assert_eq!(other.message_count(None).unwrap(), 0);
    s.commit_batch().unwrap();
    s.commit_batch().unwrap(); // no-op
    assert_eq!(other.message_count(None).unwrap(), 50);
}

#[test]
fn upgrade_from_v1_adds_deliveries_and_keeps_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let m = msg(1, "r", 5, "kept across the upgrade");
    {
        let s = Store::open(&path).unwrap();
        s.insert_message(&m, 1, true).unwrap();
        // Turn it back into a version-1 database.
        s.conn
            .execute_batch(&format!(
                "{UNDO_V6} DROP TABLE blocked; DROP INDEX messages_author; DROP INDEX messages_local; DROP TABLE deliveries;
                 PRAGMA user_version = 1;",
            ))
            .unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(pragma_i64(&s, "user_version"), SCHEMA_VERSION);
    assert!(s.has_message(&m.id()).unwrap());
    assert_eq!(s.delivery(&m.id()).unwrap(), (0, 0));
}

#[test]
fn upgrade_from_v2_indexes_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    {
        let s = Store::open(&path).unwrap();
        s.insert_message(&msg(1, "r", 5, "queued"), 1, true)
            .unwrap();
        s.conn
            .execute_batch(
                &format!("{UNDO_V6} DROP TABLE blocked; DROP INDEX messages_author; DROP INDEX messages_local; PRAGMA user_version = 2;"),
            )
            .unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(pragma_i64(&s, "user_version"), SCHEMA_VERSION);
    assert_eq!(s.queued_count().unwrap(), 1);
}

#[test]
fn the_queue_is_what_no_peer_holds_yet() {
    let s = Store::open_in_memory().unwrap();
    let (a, b) = (msg(1, "r", 5, "a"), msg(1, "r", 6, "b"));
    s.insert_message(&a, 1, true).unwrap();
    s.insert_message(&b, 1, true).unwrap();
    s.insert_message(&msg(2, "r", 7, "theirs"), 1, false)
        .unwrap();
    assert_eq!(s.queued_count().unwrap(), 2, "only messages written here");
    let p = NodeId([1; 32]);
    s.mark_sent(&a.id(), &p, 10).unwrap();
    assert_eq!(s.queued_count().unwrap(), 2, "sent is not held");
    let mut ids = s.queued_ids().unwrap();
    ids.sort();
    let mut want = vec![("r".to_string(), a.id()), ("r".to_string(), b.id())];
    want.sort();
    assert_eq!(ids, want);
    s.mark_held(&[a.id()], &p, 11).unwrap();
    assert_eq!(s.queued_count().unwrap(), 1);
    assert_eq!(s.queued_ids().unwrap(), vec![("r".to_string(), b.id())]);
    s.mark_room_held_except("r", &p, 12, &[]).unwrap();
    assert_eq!(s.queued_count().unwrap(), 0);
    assert!(s.queued_ids().unwrap().is_empty());
}

#[test]
fn delivery_state_counts_sent_and_held_and_never_downgrades() {
    let s = Store::open_in_memory().unwrap();
    let mine = msg(1, "r", 5, "mine");
    let theirs = msg(2, "r", 6, "theirs");
    s.insert_message(&mine, 1, true).unwrap();
    s.insert_message(&theirs, 1, false).unwrap();
    let (p1, p2, p3) = (NodeId([1; 32]), NodeId([2; 32]), NodeId([3; 32]));
    s.mark_sent(&mine.id(), &p1, 10).unwrap();
    s.mark_sent(&mine.id(), &p2, 10).unwrap();
    assert_eq!(s.delivery(&mine.id()).unwrap(), (2, 0));
    s.mark_held(&[mine.id(), theirs.id()], &p1, 11).unwrap();
    s.mark_sent(&mine.id(), &p1, 12).unwrap(); // no downgrade
    assert_eq!(s.delivery(&mine.id()).unwrap(), (2, 1));
    s.mark_room_held_except("r", &p3, 13, &[]).unwrap();
    assert_eq!(s.delivery(&mine.id()).unwrap(), (3, 2));
    assert_eq!(
        s.delivery(&theirs.id()).unwrap(),
        (0, 0),
        "only messages written here"
    );
}

#[test]
fn sync_state_and_batches_work_inside_a_burst_batch() {
    let s = Store::open_in_memory().unwrap();
    let peer = NodeId([9; 32]);
    s.begin_batch().unwrap();
    s.insert_message(&msg(1, "r", 1, "a"), 1, false).unwrap();
    s.set_synced(&peer, "r", 42).unwrap();
    s.insert_messages(&[(msg(1, "r", 2, "b"), 1, false)])
        .unwrap();
    s.commit_batch().unwrap();
    assert_eq!(last_synced(&s, &peer, "r").unwrap(), Some(42));
    assert_eq!(s.message_count(None).unwrap(), 2);
}

#[test]
fn the_peer_table_is_capped_dropping_nameless_then_least_recently_seen_peers() {
    let store = Store::open_in_memory().unwrap();
    let id = |i: u32| {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&i.to_be_bytes());
        NodeId(b)
    };
    // 6 peers: 0-3 named (seen at 10, 40, 20, 30), 4-5 never named.
    for (i, seen) in [(0u32, 10u64), (1, 40), (2, 20), (3, 30)] {
        store
            .upsert_peer(&id(i), Some("n"), &[], Some(seen))
            .unwrap();
    }
    store.upsert_peer(&id(4), None, &[], Some(50)).unwrap();
    store.upsert_peer(&id(5), None, &[], Some(60)).unwrap();
    assert_eq!(store.peers().unwrap().len(), 6);
    store.cap_peers(3).unwrap();
    let mut left: Vec<NodeId> = store.peers().unwrap().into_iter().map(|p| p.id).collect();
    left.sort();
    assert_eq!(left, vec![id(1), id(2), id(3)]);
    // upsert_peer applies the real cap: the table never grows past it.
    for i in 100..(100 + crate::meta::MAX_PEERS as u32 + 10) {
        store
            .upsert_peer(&id(i), Some("x"), &[], Some(u64::from(i)))
            .unwrap();
    }
    assert_eq!(store.peers().unwrap().len(), crate::meta::MAX_PEERS);
}

#[test]
fn upgrade_from_v3_indexes_authors_and_counts_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let a = node(1);
    {
        let s = Store::open(&path).unwrap();
        for ts in [5, 10, 20] {
            s.insert_message(&msg(1, "r", ts, "x"), 1, false).unwrap();
        }
        s.insert_message(&msg(2, "r", 10, "other author"), 1, false)
            .unwrap();
        s.insert_message(&msg(1, "q", 10, "other room"), 1, false)
            .unwrap();
        s.conn
            .execute_batch(
                &format!("{UNDO_V6} DROP TABLE blocked; DROP INDEX messages_author; PRAGMA user_version = 3;"),
            )
            .unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(pragma_i64(&s, "user_version"), SCHEMA_VERSION);
    let plan: String = s
        .conn
        .query_row(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM messages
             WHERE room = 'r' AND author = x'00' AND timestamp BETWEEN 1 AND 2",
            [],
            |r| r.get(3),
        )
        .unwrap();
    assert!(plan.contains("messages_author"), "{plan}");
    let size = msg(1, "r", 5, "x").signed_bytes().len() as u64;
    assert_eq!(Storage::author_usage(&s, "r", &a).unwrap(), (3, 3 * size));
    assert_eq!(Storage::author_usage(&s, "none", &a).unwrap(), (0, 0));
    assert_eq!(
        Storage::author_count_between(&s, "r", &a, 5, 10).unwrap(),
        2
    );
    assert_eq!(
        Storage::author_count_between(&s, "r", &a, 11, 19).unwrap(),
        0
    );
    assert_eq!(
        Storage::author_count_between(&s, "r", &a, 0, u64::MAX).unwrap(),
        3
    );
}

#[test]
fn a_room_is_held_by_a_peer_except_the_messages_it_did_not_confirm() {
    let s = Store::open_in_memory().unwrap();
    let p = node(9);
    let (a, b) = (msg(1, "r", 1, "a"), msg(1, "r", 2, "b"));
    s.insert_message(&a, 1, true).unwrap();
    s.insert_message(&b, 1, true).unwrap();
    s.mark_room_held_except("r", &p, 10, &[b.id()]).unwrap();
    assert_eq!(s.delivery(&a.id()).unwrap(), (1, 1));
    assert_eq!(
        s.delivery(&b.id()).unwrap(),
        (0, 0),
        "not confirmed: not held"
    );
}

#[test]
fn blocked_authors_are_hidden_from_room_pages_until_unblocked() {
    let s = Store::open_in_memory().unwrap();
    let (a, b) = (msg(1, "r", 1, "from one"), msg(2, "r", 2, "from two"));
    s.insert_message(&a, 1, false).unwrap();
    s.insert_message(&b, 1, false).unwrap();
    let bodies = |s: &Store| -> Vec<String> {
        s.messages("r", 10, None)
            .unwrap()
            .into_iter()
            .map(|m| m.message.body)
            .collect()
    };
    assert_eq!(bodies(&s), vec!["from one", "from two"]);
    s.set_blocked(&a.author, true, 5).unwrap();
    s.set_blocked(&a.author, true, 9).unwrap();
    assert_eq!(
        s.blocked().unwrap(),
        vec![(a.author, 5)],
        "the first time is kept"
    );
    assert_eq!(bodies(&s), vec!["from two"]);
    // Paging before a visible message skips the blocked one too.
    assert!(s.messages("r", 10, Some(&b.id())).unwrap().is_empty());
    assert_eq!(s.author_name(&a.author).unwrap().as_deref(), Some("user1"));
    s.set_blocked(&a.author, false, 10).unwrap();
    assert_eq!(bodies(&s), vec!["from one", "from two"]);
    assert!(s.blocked().unwrap().is_empty());
}

#[test]
fn upgrade_from_v4_adds_the_blocked_table_and_keeps_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let m = msg(1, "r", 5, "kept");
    {
        let s = Store::open(&path).unwrap();
        s.insert_message(&m, 1, false).unwrap();
        s.conn
            .execute_batch(&format!(
                "{UNDO_V6} DROP TABLE blocked; PRAGMA user_version = 4;"
            ))
            .unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(pragma_i64(&s, "user_version"), SCHEMA_VERSION);
    assert!(s.blocked().unwrap().is_empty());
    s.set_blocked(&m.author, true, 1).unwrap();
    assert!(s.messages("r", 10, None).unwrap().is_empty());
    assert_eq!(s.message_count(None).unwrap(), 1, "hidden, not deleted");
}

#[test]
fn upgrade_from_v5_counts_existing_rooms_and_keeps_counting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let (a, b) = (msg(1, "r", 5, "first"), msg(2, "r", 6, "second"));
    {
        let s = Store::open(&path).unwrap();
        s.insert_message(&a, 1, false).unwrap();
        s.insert_message(&b, 1, false).unwrap();
        s.conn
            .execute_batch(&format!("{UNDO_V6} PRAGMA user_version = 5;"))
            .unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(pragma_i64(&s, "user_version"), SCHEMA_VERSION);
    let size = |m: &Message| m.signed_bytes().len() as u64;
    let u = s.room_usage().unwrap();
    assert_eq!(u.len(), 1);
    assert_eq!((u[0].messages, u[0].bytes), (2, size(&a) + size(&b)));
    let c = msg(3, "r", 7, "third");
    s.insert_message(&c, 1, false).unwrap();
    s.insert_message(&c, 1, false).unwrap(); // a repeat counts once
    let u = s.room_usage().unwrap();
    assert_eq!(
        (u[0].messages, u[0].bytes),
        (3, size(&a) + size(&b) + size(&c))
    );
}

#[test]
fn evicted_messages_leave_their_ids_for_catch_up_until_forgotten() {
    let mut s = Store::open_in_memory().unwrap();
    let msgs: Vec<Message> = [30, 10, 20, 10, 40]
        .iter()
        .enumerate()
        .map(|(i, ts)| msg(i as u8 + 1, "carried", *ts, &format!("m{i}")))
        .collect();
    for m in &msgs {
        assert!(Storage::insert(&mut s, m).unwrap());
    }
    let other = msg(9, "joined", 1, "stays");
    s.insert_message(&other, 1, false).unwrap();
    // Oldest first by (timestamp, id), paged with a cursor.
    let mut expected: Vec<(u64, MessageId)> = msgs.iter().map(|m| (m.timestamp, m.id())).collect();
    expected.sort();
    let first = s.oldest_messages("carried", None, 2).unwrap();
    let key = |m: &Message| (m.timestamp, m.id());
    assert_eq!(first.iter().map(key).collect::<Vec<_>>(), expected[..2]);
    let rest = s
        .oldest_messages("carried", Some(key(&first[1])), 10)
        .unwrap();
    assert_eq!(rest.iter().map(key).collect::<Vec<_>>(), expected[2..]);

    let gone: Vec<MessageId> = expected[..3].iter().map(|(_, id)| *id).collect();
    assert_eq!(s.evict_messages(&gone).unwrap(), 3);
    let u = s.room_usage().unwrap();
    let carried = u.iter().find(|u| u.room == "carried").unwrap();
    assert_eq!((carried.messages, carried.evicted), (2, 3));
    let kept_bytes: u64 = msgs
        .iter()
        .filter(|m| !gone.contains(&m.id()))
        .map(|m| m.signed_bytes().len() as u64)
        .sum();
    assert_eq!(carried.bytes, kept_bytes);
    for id in &gone {
        assert!(Storage::has(&s, id).unwrap(), "still known");
        assert!(Storage::get(&s, id).unwrap().is_none(), "nothing to serve");
    }
    let evicted_msg = msgs.iter().find(|m| m.id() == gone[0]).unwrap();
    assert!(
        !Storage::insert(&mut s, evicted_msg).unwrap(),
        "not stored again"
    );
    let mut set = Storage::room_set(&s, "carried").unwrap();
    set.sort();
    assert_eq!(set, expected, "catch-up lists stored and evicted ids");
    assert_eq!(s.message_count(Some("joined")).unwrap(), 1);

    // Joined: forgotten, so the next catch-up fetches them and they can be stored again.
    assert_eq!(s.forget_evicted("carried").unwrap(), 3);
    assert!(!Storage::has(&s, &gone[0]).unwrap());
    assert!(Storage::insert(&mut s, evicted_msg).unwrap());
    assert_eq!(Storage::room_set(&s, "carried").unwrap().len(), 3);
}

#[test]
fn upgrade_from_v6_counts_the_evicted_ids_and_keeps_counting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let msgs: Vec<Message> = (0..4).map(|i| msg(i + 1, "c", u64::from(i), "m")).collect();
    {
        let s = Store::open(&path).unwrap();
        for m in &msgs {
            s.insert_message(m, 1, false).unwrap();
        }
        s.evict_messages(&[msgs[0].id(), msgs[1].id()]).unwrap();
        s.conn
            .execute_batch(&format!("{UNDO_V7} PRAGMA user_version = 6;"))
            .unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(pragma_i64(&s, "user_version"), SCHEMA_VERSION);
    let u = s.room_usage().unwrap();
    assert_eq!(
        (u[0].messages, u[0].evicted),
        (2, 2),
        "counted at the upgrade"
    );
    s.evict_messages(&[msgs[2].id()]).unwrap();
    assert_eq!(s.room_usage().unwrap()[0].evicted, 3, "kept by trigger");
    s.forget_evicted("c").unwrap();
    let u = s.room_usage().unwrap();
    assert_eq!((u[0].messages, u[0].evicted), (1, 0));
}

#[test]
fn private_rooms_and_keys_first_one_wins() {
    let s = Store::open_in_memory().unwrap();
    let room = "p.0123456789abcdef0123456789abcdef";
    assert!(s.private_rooms().unwrap().is_empty());
    // A key needs its room (foreign key).
    assert!(s.add_room_key(room, 0, &[1; 32], 5).is_err());
    assert!(s.add_private_room(room, "medical", &node(1), 5).unwrap());
    assert!(!s.add_private_room(room, "other", &node(2), 6).unwrap());
    let rows = s.private_rooms().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].title.as_str(), rows[0].creator, rows[0].added_at),
        ("medical", node(1), 5)
    );
    assert!(s.add_room_key(room, 1, &[2; 32], 7).unwrap());
    assert!(s.add_room_key(room, 0, &[1; 32], 7).unwrap());
    // A second key for an epoch never replaces the first (a grant cannot swap a key).
    assert!(!s.add_room_key(room, 1, &[9; 32], 8).unwrap());
    assert_eq!(s.room_keys(room).unwrap(), vec![(0, [1; 32]), (1, [2; 32])]);
    assert_eq!(s.room_key(room, 1).unwrap(), Some([2; 32]));
    assert_eq!(s.room_key(room, 2).unwrap(), None);
    assert!(s
        .room_keys("p.ffffffffffffffffffffffffffffffff")
        .unwrap()
        .is_empty());
}

#[test]
fn upgrade_from_v7_adds_private_rooms_and_keeps_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let m = msg(1, "medical", 5, "keep me");
    {
        let s = Store::open(&path).unwrap();
        s.insert_message(&m, 1, false).unwrap();
        s.conn
            .execute_batch(
                "DROP TABLE urgent; DROP TRIGGER messages_urgent_insert; DROP TRIGGER messages_urgent_delete;
                 DROP TABLE room_keys; DROP TABLE private_rooms; PRAGMA user_version = 7;",
            )
            .unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(pragma_i64(&s, "user_version"), SCHEMA_VERSION);
    assert!(s.get_message(&m.id()).unwrap().is_some());
    assert!(s
        .add_private_room("p.00000000000000000000000000000000", "t", &node(1), 1)
        .unwrap());
}

#[test]
fn urgent_messages_are_listed_until_acknowledged() {
    use dn_proto::message::URGENT_MARKER;
    let s = Store::open_in_memory().unwrap();
    s.join_room("medical", 1).unwrap();
    s.join_room("school", 1).unwrap();
    let u1 = msg(
        1,
        "medical",
        10,
        &format!("{URGENT_MARKER}collapse at the market"),
    );
    let u2 = msg(2, "medical", 20, &format!("{URGENT_MARKER}need water"));
    let u3 = msg(2, "school", 30, &format!("{URGENT_MARKER}fire"));
    let own = msg(3, "medical", 40, &format!("{URGENT_MARKER}on our way"));
    // Not urgent: the marker elsewhere, or almost the marker.
    let plain = msg(1, "medical", 50, &format!("fwd: {URGENT_MARKER}x"));
    let near = msg(1, "medical", 60, "\u{1F6A8} urgent: lowercase");
    for m in [&u1, &u2, &u3, &plain, &near] {
        assert!(s.insert_message(m, 1, false).unwrap());
    }
    assert!(s.insert_message(&own, 1, true).unwrap());
    assert_eq!(s.urgent_unacked_in("medical", 100).unwrap(), 2);
    assert_eq!(
        s.urgent_unacked_in("medical", 1).unwrap(),
        1,
        "counted up to the cap"
    );
    assert_eq!(s.urgent_unacked_in("school", 100).unwrap(), 1);
    assert_eq!(
        ids(&s.urgent_unacked(Some("medical"), 20).unwrap()),
        [u2.id(), u1.id()],
        "newest first; our own message needs no acknowledgement"
    );
    assert_eq!(s.urgent_unacked(None, 2).unwrap().len(), 2);
    // Every urgent message, own and acknowledged included, newest first.
    assert_eq!(
        s.urgent_newest(10).unwrap(),
        [
            (own.id(), own.author),
            (u3.id(), u3.author),
            (u2.id(), u2.author),
            (u1.id(), u1.author)
        ]
    );
    assert_eq!(s.urgent_newest(1).unwrap().len(), 1);
    assert_eq!(s.urgent_acknowledged(&plain.id()).unwrap(), None);
    assert_eq!(s.urgent_acknowledged(&own.id()).unwrap(), Some(true));
    // One, then the rest of the room; a second time changes nothing.
    assert_eq!(s.ack_urgent("medical", Some(&u1.id())).unwrap(), 1);
    assert_eq!(s.ack_urgent("medical", Some(&u1.id())).unwrap(), 0);
    assert_eq!(
        s.ack_urgent("school", Some(&u2.id())).unwrap(),
        0,
        "wrong room"
    );
    assert_eq!(s.urgent_acknowledged(&u1.id()).unwrap(), Some(true));
    assert_eq!(s.ack_urgent("medical", None).unwrap(), 1);
    assert_eq!(s.urgent_unacked_in("medical", 100).unwrap(), 0);
    assert_eq!(s.urgent_unacked_in("school", 100).unwrap(), 1);
    // A blocked author's urgent messages are not listed.
    s.set_blocked(&node(2), true, 5).unwrap();
    assert_eq!(s.urgent_unacked_in("school", 100).unwrap(), 0);
    assert!(s.urgent_unacked(None, 20).unwrap().is_empty());
    // Evicted: gone from the list too.
    s.set_blocked(&node(2), false, 5).unwrap();
    assert_eq!(s.urgent_unacked_in("school", 100).unwrap(), 1);
    s.evict_messages(&[u3.id()]).unwrap();
    assert_eq!(s.urgent_unacked_in("school", 100).unwrap(), 0);
}

#[test]
fn upgrade_to_v9_lists_urgent_messages_already_stored() {
    use dn_proto::message::URGENT_MARKER;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let u = msg(1, "medical", 10, &format!("{URGENT_MARKER}help"));
    {
        let s = Store::open(&path).unwrap();
        s.insert_message(&u, 1, false).unwrap();
        s.insert_message(&msg(1, "medical", 11, "ok"), 1, false)
            .unwrap();
        s.conn
            .execute_batch(
                "DROP TABLE urgent; DROP TRIGGER messages_urgent_insert;
                 DROP TRIGGER messages_urgent_delete; PRAGMA user_version = 8;",
            )
            .unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(pragma_i64(&s, "user_version"), SCHEMA_VERSION);
    assert!(s.urgent_unacked(None, 20).unwrap().is_empty(), "not joined");
    assert_eq!(
        ids(&s.urgent_unacked(Some("medical"), 20).unwrap()),
        [u.id()]
    );
}
