//! Encryption at rest through the engine API (an offline engine per step, as the CLI uses it):
//! turning the passphrase on, restarting with it, a wrong one, changing and removing it, locked
//! backups, a crash between the steps of a switch, and no plaintext left in a locked data dir.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dn_node::atrest::{self, KdfParams, Kek, Passphrase};
use dn_node::{calls, Client, ErrorCode};
use dn_store::{Store, StoreKey};

const PASS: &str = "correct horse battery";
const ROOM: &str = "casualties-north";
const NAME: &str = "Oyelaran";
const BODIES: [&str; 2] = [
    "Patient Zerbinetta Quarrington, tent 14, insulin",
    "Family Vukovic-Amarante sheltering at the old mill",
];

fn pass(s: &str) -> Passphrase {
    Passphrase::new(s.to_string())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Every file under `dir` (recursively) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.insert(p, b);
            }
        }
    }
    out
}

/// The known secrets found in any file under `dir`: (file name, secret).
fn plaintext_in(dir: &Path, secrets: &[String]) -> Vec<(String, String)> {
    let mut found = vec![];
    for (p, bytes) in snapshot(dir) {
        for s in secrets {
            if bytes.windows(s.len()).any(|w| w == s.as_bytes()) {
                found.push((p.display().to_string(), s.clone()));
            }
        }
    }
    found
}

/// A data dir with a name, a room and the known bodies; the node id.
async fn fill(dir: &Path, p: Option<&Passphrase>) -> String {
    let c = Client::open_with(dir, p).await.unwrap();
    let id = c
        .call(calls::SetName { name: NAME.into() })
        .await
        .unwrap()
        .id;
    c.call(calls::JoinRoom { room: ROOM.into() }).await.unwrap();
    for b in BODIES {
        c.call(calls::Send {
            room: ROOM.into(),
            body: b.into(),
            urgent: false,
        })
        .await
        .unwrap();
    }
    c.close().await;
    id
}

async fn bodies(dir: &Path, p: Option<&Passphrase>) -> Result<Vec<String>, dn_node::ApiError> {
    let c = Client::open_with(dir, p).await?;
    let msgs = c
        .call(calls::Messages {
            room: ROOM.into(),
            limit: 100,
            before: None,
        })
        .await;
    c.close().await;
    // Sorted: two messages sent in the same millisecond are in id order.
    let mut v: Vec<String> = msgs?.into_iter().map(|m| m.body).collect();
    v.sort();
    Ok(v)
}

/// The known bodies, sorted like [`bodies`].
fn known() -> Vec<String> {
    let mut v: Vec<String> = BODIES.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

async fn request<C: dn_node::Call>(
    dir: &Path,
    p: Option<&Passphrase>,
    call: C,
) -> Result<C::Response, dn_node::ApiError> {
    let c = Client::open_with(dir, p).await?;
    let r = c.call(call).await;
    c.close().await;
    r
}

fn key_hex(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("identity.key"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn set_restart_wrong_change_remove() {
    rt().block_on(async {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("dn");
        let id = fill(&dir, None).await;
        let plain_key = key_hex(&dir);
        assert_eq!(plain_key.len(), 64);

        // Too short: refused, nothing changes.
        let e = request(
            &dir,
            None,
            calls::SetPassphrase {
                passphrase: "short".into(),
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput, "{e:?}");
        assert!(!atrest::is_locked(&dir).unwrap());

        let v = request(
            &dir,
            None,
            calls::SetPassphrase {
                passphrase: PASS.into(),
            },
        )
        .await
        .unwrap();
        assert!(v.locked);
        assert!(atrest::is_locked(&dir).unwrap());
        assert!(!key_hex(&dir).contains(&plain_key));
        assert!(!dir.join("store.sqlite3.next").exists());

        // Without a passphrase: `locked`, saying how to give one.
        let e = bodies(&dir, None).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Locked);
        assert!(
            e.message.contains("DISASTERNET_PASSPHRASE"),
            "{}",
            e.message
        );
        // A wrong one: `wrong_passphrase`, and not one byte of any file changes.
        let before = snapshot(&dir);
        let e = bodies(&dir, Some(&pass("correct horse battery!")))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::WrongPassphrase);
        let mut after = snapshot(&dir);
        let mut before_cmp = before.clone();
        // The lock file is created empty by every attempt; nothing else may differ.
        before_cmp.remove(&dir.join("node.lock"));
        after.remove(&dir.join("node.lock"));
        assert_eq!(before_cmp, after, "a wrong passphrase changed files");

        // The right one: everything is back, under the same identity.
        assert_eq!(bodies(&dir, Some(&pass(PASS))).await.unwrap(), known());
        let me = request(&dir, Some(&pass(PASS)), calls::Identity)
            .await
            .unwrap();
        assert_eq!(
            (me.id.as_str(), me.name.as_deref()),
            (id.as_str(), Some(NAME))
        );
        // Writing while locked works too.
        let c = Client::open_with(&dir, Some(&pass(PASS))).await.unwrap();
        c.call(calls::Send {
            room: ROOM.into(),
            body: "third".into(),
            urgent: false,
        })
        .await
        .unwrap();
        assert!(c.call(calls::LockState).await.unwrap().locked);
        // Setting again is refused.
        let e = c
            .call(calls::SetPassphrase {
                passphrase: PASS.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        // Change: a wrong old passphrase changes nothing; the store is not re-written.
        let e = c
            .call(calls::ChangePassphrase {
                old: "not the passphrase".into(),
                new: "another long one".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::WrongPassphrase);
        c.call(calls::ChangePassphrase {
            old: PASS.into(),
            new: "another long one".into(),
        })
        .await
        .unwrap();
        c.close().await;
        assert_eq!(
            bodies(&dir, Some(&pass(PASS))).await.unwrap_err().code,
            ErrorCode::WrongPassphrase
        );
        let now = pass("another long one");
        assert_eq!(bodies(&dir, Some(&now)).await.unwrap().len(), 3);

        // Remove: plain again, everything kept.
        let e = request(
            &dir,
            Some(&now),
            calls::RemovePassphrase {
                passphrase: PASS.into(),
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::WrongPassphrase);
        let v = request(
            &dir,
            Some(&now),
            calls::RemovePassphrase {
                passphrase: "another long one".into(),
            },
        )
        .await
        .unwrap();
        assert!(!v.locked);
        assert!(!atrest::is_locked(&dir).unwrap());
        assert_eq!(key_hex(&dir), plain_key);
        let store = std::fs::read(dir.join("store.sqlite3")).unwrap();
        assert!(store.starts_with(b"SQLite format 3\0"));
        assert_eq!(bodies(&dir, None).await.unwrap().len(), 3);
    });
}

#[test]
fn a_locked_data_dir_holds_no_plaintext() {
    rt().block_on(async {
        let t = tempfile::tempdir().unwrap();
        let plain = t.path().join("plain");
        let locked = t.path().join("locked");
        fill(&plain, None).await;
        fill(&locked, None).await;
        let key = key_hex(&locked);
        request(
            &locked,
            None,
            calls::SetPassphrase {
                passphrase: PASS.into(),
            },
        )
        .await
        .unwrap();
        // More written while locked (into the encrypted WAL, then the file).
        let c = Client::open_with(&locked, Some(&pass(PASS))).await.unwrap();
        c.call(calls::Send {
            room: ROOM.into(),
            body: "Second shelter list: Quarrington-Vukovic".into(),
            urgent: false,
        })
        .await
        .unwrap();
        c.close().await;
        let mut secrets: Vec<String> = BODIES.iter().map(|s| s.to_string()).collect();
        secrets.extend([ROOM.into(), NAME.into(), "Quarrington-Vukovic".into(), key]);
        // The search works: it finds them in the unlocked dir (not the locked dir's key).
        let found = plaintext_in(&plain, &secrets[..5]);
        assert!(found.len() >= 4, "{found:?}");
        assert_eq!(plaintext_in(&locked, &secrets), vec![]);
    });
}

#[test]
fn locked_backups_and_restore() {
    rt().block_on(async {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("dn");
        let id = fill(&dir, None).await;
        let key = key_hex(&dir);
        request(
            &dir,
            None,
            calls::SetPassphrase {
                passphrase: PASS.into(),
            },
        )
        .await
        .unwrap();
        let file = t.path().join("me.dnkey");
        let out = file.display().to_string();
        request(&dir, Some(&pass(PASS)), calls::BackupIdentity { path: out })
            .await
            .unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with(atrest::LOCKED_BACKUP_HEADER), "{text}");
        assert!(!text.contains(&key));
        // Its id is readable without the passphrase.
        assert_eq!(dn_node::check_backup(&file).unwrap(), id);

        // Into a new, plain data dir: needs the backup's passphrase.
        let other = t.path().join("other");
        let e = dn_node::restore_identity(&other, &file).unwrap_err();
        assert_eq!(e.code, ErrorCode::Locked);
        let e = dn_node::restore_identity_with(&other, &file, Some(&pass("nope nope")), None)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::WrongPassphrase);
        assert!(!other.join("identity.key").exists());
        let r = dn_node::restore_identity_with(&other, &file, Some(&pass(PASS)), None).unwrap();
        assert_eq!(r.id, id);
        assert_eq!(key_hex(&other), key);

        // Into a locked data dir (another identity): sealed under that dir's passphrase with
        // its store key, so its store stays readable.
        let third = t.path().join("third");
        fill(&third, None).await;
        request(
            &third,
            None,
            calls::SetPassphrase {
                passphrase: "third pass".into(),
            },
        )
        .await
        .unwrap();
        let e = dn_node::restore_identity(&third, &file).unwrap_err();
        assert_eq!(e.code, ErrorCode::Locked);
        let r = dn_node::restore_identity_with(
            &third,
            &file,
            Some(&pass(PASS)),
            Some(&pass("third pass")),
        )
        .unwrap();
        assert_eq!(r.id, id);
        assert!(r.previous_key.is_some());
        let me = request(&third, Some(&pass("third pass")), calls::Identity)
            .await
            .unwrap();
        assert_eq!(me.id, id);
        assert_eq!(
            bodies(&third, Some(&pass("third pass")))
                .await
                .unwrap()
                .len(),
            2
        );
    });
}

/// The steps of a switch done by hand, stopping where a crash would: start-up finishes the
/// switch when the key file names the new copy's key, and rolls it back otherwise.
#[test]
fn a_crash_between_the_steps_is_finished_or_rolled_back() {
    const SMALL: KdfParams = KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };
    rt().block_on(async {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("dn");
        fill(&dir, None).await;
        let db = dir.join("store.sqlite3");
        let next = dir.join("store.sqlite3.next");
        let store_key = StoreKey::from_bytes([42; 32]);
        let secret = dn_node::identity::load_or_create(&dir).unwrap();

        // 1. Crash after the encrypted copy, before the key file: rolled back.
        Store::open(&db)
            .unwrap()
            .export_to(&next, Some(&store_key))
            .unwrap();
        assert_eq!(bodies(&dir, None).await.unwrap(), known());
        assert!(!next.exists());
        assert!(!atrest::is_locked(&dir).unwrap());

        // 2. Crash after the key file, before the swap: finished.
        Store::open(&db)
            .unwrap()
            .export_to(&next, Some(&store_key))
            .unwrap();
        let kek = Kek::fresh(&pass(PASS), SMALL).unwrap();
        let text = atrest::locked_key_file(&kek, &secret, &store_key).unwrap();
        atrest::write_key_file(&dir, &text).unwrap();
        assert_eq!(bodies(&dir, Some(&pass(PASS))).await.unwrap(), known());
        assert!(!next.exists());
        assert!(!std::fs::read(&db)
            .unwrap()
            .starts_with(b"SQLite format 3\0"));

        // 3. Removing, crash after the plain copy, before the key file: rolled back.
        Store::open_with_key(&db, Some(&store_key))
            .unwrap()
            .export_to(&next, None)
            .unwrap();
        assert_eq!(bodies(&dir, Some(&pass(PASS))).await.unwrap(), known());
        assert!(!next.exists());
        assert!(atrest::is_locked(&dir).unwrap());

        // 4. Removing, crash after the plain key file, before the swap: finished.
        Store::open_with_key(&db, Some(&store_key))
            .unwrap()
            .export_to(&next, None)
            .unwrap();
        atrest::write_key_file(&dir, &atrest::plain_key_file(&secret)).unwrap();
        assert_eq!(bodies(&dir, None).await.unwrap(), known());
        assert!(!next.exists());
        assert!(std::fs::read(&db)
            .unwrap()
            .starts_with(b"SQLite format 3\0"));

        // 4b. A crash while copying (before the first commit: an empty file) must never be
        // taken for the store, whichever key it opens with. Nothing of it is installed: as
        // `.next.partial` (where the copy is written) it is removed; even as `.next` an empty
        // file is not a complete copy, and the store stays.
        let partial = dir.join("store.sqlite3.next.partial");
        std::fs::write(&partial, b"").unwrap();
        assert_eq!(bodies(&dir, None).await.unwrap(), known());
        assert!(!partial.exists());
        std::fs::write(&next, b"").unwrap();
        assert_eq!(bodies(&dir, None).await.unwrap(), known());
        assert!(!next.exists());

        // 5. A copy that opens with neither key while the store does not open either: left
        // alone with an error.
        std::fs::write(&next, b"garbage").unwrap();
        atrest::write_key_file(&dir, &text).unwrap();
        let e = bodies(&dir, Some(&pass(PASS))).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Storage, "{e:?}");
        assert!(e.message.contains("left as they are"), "{}", e.message);
        assert!(next.exists());
    });
}

#[test]
fn locking_seals_the_previous_keys_kept_by_restores() {
    rt().block_on(async {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("dn");
        fill(&dir, None).await;
        // A key a restore kept (plain hex, as `identity restore` leaves it).
        let old = ed25519_dalek::SigningKey::from_bytes(&[77; 32]);
        let hex_key = hex::encode(old.to_bytes());
        let kept = dir.join("identity.key.replaced-1700000000000");
        std::fs::write(&kept, format!("{hex_key}\n")).unwrap();
        request(
            &dir,
            None,
            calls::SetPassphrase {
                passphrase: PASS.into(),
            },
        )
        .await
        .unwrap();
        let text = std::fs::read_to_string(&kept).unwrap();
        assert!(
            !text.contains(&hex_key),
            "the kept key is still in the clear"
        );
        // It is a locked backup under the same passphrase, holding the same key.
        let record = atrest::backup_record(&text).unwrap().unwrap();
        let back = atrest::unseal_backup(&record, &pass(PASS)).unwrap();
        assert_eq!(back.to_bytes(), old.to_bytes());
        assert!(atrest::unseal_backup(&record, &pass("another one")).is_err());
    });
}
