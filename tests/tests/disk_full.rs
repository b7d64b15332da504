//! A node whose disk is full: messages that arrive cannot be stored, so none of them may be
//! reported, acknowledged or relayed as stored; once space is back, catch-up brings them.
//!
//! Node 1's data directory is a 4 MiB tmpfs, filled to the last byte with a filler file while
//! the node runs. Needs root (mount, network namespaces); run:
//! `cargo test -p dn-tests --test disk_full -- --test-threads=1`.

#![cfg(target_os = "linux")]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use dn_tests::disasternet::Cluster;
use dn_tests::{check, Lab};
use serde_json::Value;

const ROOM: &str = "ops";

/// A tmpfs mounted on a directory for the life of the guard.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs> {
        fs::create_dir_all(dir)?;
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .context("running mount")?;
        if !st.success() {
            bail!("mount -t tmpfs on {} failed: {st}", dir.display());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros into `path` until the file system says it is full.
fn fill(path: &Path) -> Result<u64> {
    let mut f = fs::File::create(path)?;
    let block = vec![0u8; 4096];
    let mut written = 0u64;
    loop {
        match f.write(&block) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => return Err(e.into()),
        }
    }
    // Also the last partial block.
    while let Ok(n) = f.write(&block[..1]) {
        if n == 0 {
            break;
        }
        written += 1;
    }
    let _ = f.sync_all();
    Ok(written)
}

fn bodies(c: &Cluster, i: usize) -> Result<Vec<String>> {
    Ok(c.log(i, ROOM)?
        .iter()
        .filter_map(|m| m["body"].as_str().map(str::to_owned))
        .collect())
}

#[test]
fn a_full_disk_reports_nothing_as_stored_and_catch_up_repairs_it() -> Result<()> {
    let Some(mut c) = Cluster::with_lab("disk-full", || Lab::with_networks(1, &[&[0], &[0]]))?
    else {
        return Ok(());
    };
    let dir1 = c.node(1).data_dir.clone();
    let _tmpfs = Tmpfs::mount(&dir1, "4m")?;
    c.init(1, "small-disk")?;
    c.init(2, "sender")?;
    c.join(1, ROOM)?;
    c.join(2, ROOM)?;
    c.start(1, &[])?;
    c.start(2, &[])?;
    let id1 = c.id(1)?;
    c.wait_for("the two nodes connected", Duration::from_secs(30), |c| {
        Ok(c.connected_peer_ids(2)?.contains(&id1))
    })?;
    c.send(2, ROOM, "before the disk filled")?;
    c.wait_for("the first message on node1", Duration::from_secs(20), |c| {
        Ok(bodies(c, 1)?.iter().any(|b| b == "before the disk filled"))
    })?;

    let filler = dir1.join("filler");
    let filled = fill(&filler)?;
    eprintln!("filled node1's disk with {filled} bytes");
    let lost: Vec<String> = (0..5)
        .map(|k| format!("while the disk is full {k}"))
        .collect();
    for b in &lost {
        c.send(2, ROOM, b)?;
    }
    // Give node1 time to receive, fail to store, and (wrongly) report or acknowledge.
    std::thread::sleep(Duration::from_secs(5));
    let st = c.status(1)?;
    check!(
        c,
        st["running"] == Value::Bool(true),
        "node1 stopped on a full disk"
    );
    let on1 = bodies(&c, 1)?;
    check!(
        c,
        lost.iter().all(|b| !on1.contains(b)),
        "node1 lists messages it could not store: {on1:?}"
    );
    // Nothing was acknowledged to their author (node2) as held by node1.
    for m in c.log(2, ROOM)? {
        if lost.iter().any(|b| m["body"] == Value::String(b.clone())) {
            check!(
                c,
                m["held_by"].as_u64() == Some(0),
                "node2 shows a message held by node1 that node1 could not store: {m}"
            );
        }
    }

    // Space again: catch-up (the 60 s anti-entropy at the latest) brings every message.
    fs::remove_file(&filler)?;
    c.wait_for(
        "the messages sent while the disk was full reach node1",
        Duration::from_secs(120),
        |c| {
            let on1 = bodies(c, 1)?;
            Ok(lost.iter().all(|b| on1.contains(b)))
        },
    )?;
    c.wait_for(
        "node2 sees them held by node1",
        Duration::from_secs(120),
        |c| {
            Ok(c.log(2, ROOM)?
                .iter()
                .filter(|m| lost.iter().any(|b| m["body"] == Value::String(b.clone())))
                .all(|m| m["held_by"].as_u64() == Some(1)))
        },
    )?;
    c.stop(1)?;
    c.stop(2)?;
    Ok(())
}
