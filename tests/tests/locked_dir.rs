//! A data directory locked with a passphrase, through the real `disasternet` binary (no network
//! namespaces, no root): after writing known bodies, a room name and a display name (offline
//! and through a running node, so the WAL is searched while it is live), no file under the data
//! directory holds any of them or the identity key's hex; the same search finds them in an
//! unlocked directory. A wrong passphrase changes no file; the right one gives everything back.
//!
//! Run: `cargo build --bins && cargo test -p dn-tests --test locked_dir`.

#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dn_tests::disasternet::disasternet_bin;

const PASS: &str = "Tarpaulin-Quorum-7";
const ROOM: &str = "triage-lakeside";
const NAME: &str = "Ifeoluwa Brandtner";
const BODIES: [&str; 3] = [
    "Zerbinetta Quarrington needs insulin at tent 14",
    "The Vukovic-Amarante family shelters at the old mill",
    "Node-relayed note: Okonkwo-Lindqvist is diabetic",
];

fn cli(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Result<Output> {
    let mut c = Command::new(disasternet_bin()?);
    c.arg("--data-dir").arg(dir).args(args).stdin(Stdio::null());
    for v in [
        "DISASTERNET_PASSPHRASE",
        "DISASTERNET_NEW_PASSPHRASE",
        "DISASTERNET_DATA_DIR",
    ] {
        c.env_remove(v);
    }
    c.envs(env.iter().copied());
    c.output().context("running disasternet")
}

fn ok(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Result<String> {
    let o = cli(dir, env, args)?;
    if !o.status.success() {
        bail!(
            "disasternet {args:?} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Result<BTreeMap<PathBuf, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            let meta = std::fs::symlink_metadata(&p)?;
            if meta.is_dir() {
                todo.push(p);
            } else if meta.is_file() {
                out.insert(p.clone(), std::fs::read(&p)?);
            }
        }
    }
    Ok(out)
}

/// (file, secret) for every secret found in any file under `dir`.
fn plaintext_in(dir: &Path, secrets: &[String]) -> Result<Vec<(String, String)>> {
    let mut found = vec![];
    for (p, bytes) in snapshot(dir)? {
        for s in secrets {
            if bytes.windows(s.len()).any(|w| w == s.as_bytes()) {
                found.push((p.display().to_string(), s.clone()));
            }
        }
    }
    Ok(found)
}

/// A headless node on loopback (no discovery), stopped with SIGTERM when dropped.
struct Node(Child);

impl Node {
    fn start(dir: &Path, env: &[(&str, &str)]) -> Result<Node> {
        let mut c = Command::new(disasternet_bin()?);
        c.arg("--data-dir")
            .arg(dir)
            .args([
                "node",
                "--listen",
                "127.0.0.1:0",
                "--no-mdns",
                "--no-beacon",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env_remove("DISASTERNET_PASSPHRASE")
            .envs(env.iter().copied());
        let node = Node(c.spawn().context("starting the node")?);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // Served by the node itself: no passphrase needed.
            let o = cli(dir, &[], &["--json", "status"])?;
            if o.status.success()
                && String::from_utf8_lossy(&o.stdout).contains("\"running\": true")
            {
                return Ok(node);
            }
            if Instant::now() > deadline {
                bail!(
                    "the node did not start: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(mut self) -> Result<()> {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.0.id())?).context("no pid")?;
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)?;
        let st = self.0.wait()?;
        if !st.success() {
            bail!("node exited with {st}");
        }
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes the first two bodies offline and the third through a running node; the key's hex.
fn write_everything(dir: &Path, lock: bool) -> Result<String> {
    ok(dir, &[], &["init", "--name", NAME])?;
    ok(dir, &[], &["room", "join", ROOM])?;
    let key = std::fs::read_to_string(dir.join("identity.key"))?
        .trim()
        .to_string();
    let pass: &[(&str, &str)] = if lock {
        ok(
            dir,
            &[("DISASTERNET_NEW_PASSPHRASE", PASS)],
            &["passphrase", "set"],
        )?;
        &[("DISASTERNET_PASSPHRASE", PASS)]
    } else {
        &[]
    };
    for b in &BODIES[..2] {
        ok(dir, pass, &["send", "--room", ROOM, b])?;
    }
    let node = Node::start(dir, pass)?;
    ok(dir, &[], &["send", "--room", ROOM, BODIES[2]])?;
    node.stop()?;
    Ok(key)
}

fn secrets(key: &str) -> Vec<String> {
    let mut s: Vec<String> = BODIES.iter().map(|b| b.to_string()).collect();
    s.extend([ROOM.to_string(), NAME.to_string(), key.to_string()]);
    s
}

#[test]
fn a_locked_data_dir_holds_no_plaintext_and_opens_only_with_its_passphrase() -> Result<()> {
    let t = tempfile_dir()?;
    let plain = t.join("plain");
    let locked = t.join("locked");

    // The search works: an unlocked directory gives every secret away.
    let key = write_everything(&plain, false)?;
    let found = plaintext_in(&plain, &secrets(&key))?;
    for s in secrets(&key) {
        assert!(
            found.iter().any(|(_, f)| *f == s),
            "{s:?} not found in the plain dir"
        );
    }

    let key = write_everything(&locked, true)?;
    assert_eq!(plaintext_in(&locked, &secrets(&key))?, vec![]);

    // Again while a node runs on it (its WAL and -shm in use).
    let pass = [("DISASTERNET_PASSPHRASE", PASS)];
    let node = Node::start(&locked, &pass)?;
    ok(
        &locked,
        &[],
        &["send", "--room", ROOM, "live Brandtner-Okafor WAL check"],
    )?;
    let mut live = secrets(&key);
    live.push("Brandtner-Okafor".into());
    let files = snapshot(&locked)?;
    assert!(
        files.keys().any(|p| p.to_string_lossy().ends_with("-wal")),
        "no WAL while the node runs: {:?}",
        files.keys().collect::<Vec<_>>()
    );
    assert_eq!(plaintext_in(&locked, &live)?, vec![]);
    node.stop()?;

    // No passphrase: `locked` (exit 8), saying how to give one.
    let o = cli(&locked, &[], &["log", "--room", ROOM])?;
    assert_eq!(o.status.code(), Some(8), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("DISASTERNET_PASSPHRASE"));
    // A wrong one: exit 9, and no file changes (the lock file aside, which every command
    // creates empty).
    let mut before = snapshot(&locked)?;
    let wrong = [("DISASTERNET_PASSPHRASE", "Tarpaulin-Quorum-8")];
    for args in [
        &["log", "--room", ROOM][..],
        &["send", "--room", ROOM, "x"],
        &["node"],
    ] {
        let o = cli(&locked, &wrong, args)?;
        assert_eq!(o.status.code(), Some(9), "{args:?}: {o:?}");
    }
    let mut after = snapshot(&locked)?;
    before.remove(&locked.join("node.lock"));
    after.remove(&locked.join("node.lock"));
    assert!(before == after, "a wrong passphrase changed files");

    // The right one gives everything back.
    let log = ok(&locked, &pass, &["log", "--room", ROOM])?;
    for b in BODIES {
        assert!(log.contains(b), "{b} missing from {log}");
    }
    assert!(log.contains("Brandtner-Okafor"), "{log}");
    assert!(ok(&locked, &pass, &["--json", "id"])?.contains(NAME));
    let _ = std::fs::remove_dir_all(&t);
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!(
        "dn-locked-{}-{}",
        std::process::id(),
        dn_tests::now_ms()
    ));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
