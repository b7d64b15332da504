//! Section 12: a relay (`disasternet node --relay`) on a big store. Its store holds
//! `rooms × per_room` messages of rooms it never joined (carried, as a relay's are): 20 rooms
//! of 50,000 (1,000,000 messages), 4 of 5,000 with `--quick`. Measured: the relay's start
//! (spawn until `status` says running), its idle memory, then the catch-up of an empty laptop
//! that joins one room and adds the relay (`relay add`): time until the laptop holds the room's
//! messages, and the relay's memory after (VmRSS, VmHWM).
//!
//! Both nodes run on the host on 127.0.0.1 with mDNS and the beacon off.

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::node::{cli, NodeProc};
use crate::{fixtures, round2, Ctx, Section};

/// Goal: a relay on 1,000,000 messages starts (answers `status`) within this.
const GOAL_START_S: f64 = 2.0;
/// Goal: idle resident memory of a relay on 1,000,000 messages.
const GOAL_RSS_MB: f64 = 100.0;
/// Idle time before memory is read.
const IDLE: Duration = Duration::from_secs(3);
/// Longest wait for the laptop's catch-up.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(900);

fn room(i: usize) -> String {
    format!("site-{i:02}")
}

fn status(bin: &Path, dir: &Path) -> Result<Value> {
    let out = cli(bin, dir, &["status", "--json"])?;
    if !out.status.success() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
}

fn spawn(bin: &Path, dir: &Path, args: &[&str]) -> Result<NodeProc> {
    let log = File::create(dir.join("node.log"))?;
    let err = log.try_clone()?;
    let child = Command::new(bin)
        .arg("--data-dir")
        .arg(dir)
        .arg("node")
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    Ok(NodeProc { child })
}

/// Waits until the node on `dir` says it runs; its status then.
fn wait_running(bin: &Path, dir: &Path, node: &mut NodeProc) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(st) = node.child.try_wait()? {
            bail!(
                "node exited early ({st}); log: {}",
                dir.join("node.log").display()
            );
        }
        let v = status(bin, dir)?;
        if v["running"] == Value::Bool(true) {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!(
                "node on {} did not report running within 60 s",
                dir.display()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn run(ctx: &Ctx) -> Result<Section> {
    let bin = &ctx.disasternet;
    if !bin.is_file() {
        bail!(
            "{} not found: build it first with `cargo build --release -p disasternet-cli` \
             (or pass --disasternet PATH)",
            bin.display()
        );
    }
    let (rooms, per_room) = if ctx.quick { (4, 5_000) } else { (20, 50_000) };
    let total = rooms * per_room;
    let tmp = tempfile::Builder::new()
        .prefix("dn-bench-relay-")
        .tempdir()
        .context("creating a temp dir")?;
    let relay_dir = tmp.path().join("relay");
    let laptop_dir = tmp.path().join("laptop");
    std::fs::create_dir_all(&relay_dir)?;
    std::fs::create_dir_all(&laptop_dir)?;
    let t = Instant::now();
    fixtures::store_rooms(ctx, &relay_dir, "relay", rooms, per_room, room, false)?;
    let fill_s = t.elapsed().as_secs_f64();
    let db_bytes = std::fs::metadata(relay_dir.join("store.sqlite3"))?.len()
        + std::fs::metadata(relay_dir.join("store.sqlite3-wal")).map_or(0, |m| m.len());

    ctx.note(&format!(
        "relay: starting the relay on {total} messages ..."
    ));
    let started = Instant::now();
    let mut relay = spawn(bin, &relay_dir, &["--relay", "--listen", "127.0.0.1:0"])?;
    let st = wait_running(bin, &relay_dir, &mut relay)?;
    let start_s = started.elapsed().as_secs_f64();
    let listen = st["listen"]
        .as_str()
        .context("relay status has no listen address")?
        .to_owned();
    thread::sleep(IDLE);
    let (idle_rss_kb, _) = dn_tests::mem_kb(relay.pid())?;

    // The laptop: a name, one room joined, the relay added (as a relief worker does in the
    // app), then it starts and dials the relay.
    for args in [
        &["init", "--name", "laptop"][..],
        &["room", "join", &room(0)][..],
        &["relay", "add", &listen][..],
    ] {
        let out = cli(bin, &laptop_dir, args)?;
        if !out.status.success() {
            bail!(
                "laptop {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    ctx.note(&format!(
        "relay: a laptop catches up {per_room} messages ..."
    ));
    let t = Instant::now();
    let mut laptop = spawn(
        bin,
        &laptop_dir,
        &["--no-mdns", "--no-beacon", "--listen", "127.0.0.1:0"],
    )?;
    wait_running(bin, &laptop_dir, &mut laptop)?;
    let mut held = 0u64;
    while held < per_room as u64 {
        if t.elapsed() > CATCH_UP_LIMIT {
            bail!("the laptop held {held} of {per_room} messages after {CATCH_UP_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(100));
        held = status(bin, &laptop_dir)?["messages"].as_u64().unwrap_or(0);
    }
    let catch_up_s = t.elapsed().as_secs_f64();
    let (rss_kb, hwm_kb) = dn_tests::mem_kb(relay.pid())?;
    let relay_status_ms = {
        let t = Instant::now();
        status(bin, &relay_dir)?;
        t.elapsed().as_secs_f64() * 1000.0
    };
    let clean = laptop.stop()? & relay.stop()?;

    let start_met = start_s < GOAL_START_S;
    let rss_met = idle_rss_kb as f64 / 1024.0 <= GOAL_RSS_MB;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "== 12. Relay on a big store: start, memory, a laptop's catch-up"
    );
    let _ = writeln!(
        text,
        "   {} node --relay --listen 127.0.0.1:0 on {total} carried messages ({rooms} rooms × \
         {per_room}, ≈ 200 B bodies, 64 authors, none joined), {:.1} MB on disk, filled in \
         {fill_s:.1} s. Laptop: empty store, joins {}, `relay add` the relay; catch-up = its spawn \
         until `status` counts {per_room} messages (polled every 100 ms).",
        bin.display(),
        db_bytes as f64 / 1e6,
        room(0)
    );
    let _ = writeln!(
        text,
        "   goals (1,000,000 messages): start < {GOAL_START_S} s, idle VmRSS ≤ {GOAL_RSS_MB} MB."
    );
    let _ = writeln!(
        text,
        "   start {:.0} ms ({}); idle VmRSS {:.1} MB ({}); catch-up of {per_room} messages {:.1} s \
         ({:.0} msg/s); relay after it: VmRSS {:.1} MB, VmHWM {:.1} MB; `status` {:.0} ms; \
         clean exits {}.",
        start_s * 1000.0,
        if start_met { "met" } else { "MISSED" },
        idle_rss_kb as f64 / 1024.0,
        if rss_met { "met" } else { "MISSED" },
        catch_up_s,
        per_room as f64 / catch_up_s,
        rss_kb as f64 / 1024.0,
        hwm_kb as f64 / 1024.0,
        relay_status_ms,
        if clean { "yes" } else { "NO" }
    );
    let json = json!({
        "params": {
            "stored_messages": total, "rooms": rooms, "per_room": per_room,
            "db_bytes": db_bytes, "fill_s": round2(fill_s),
            "args": "node --relay --listen 127.0.0.1:0",
        },
        "goal_start_s": GOAL_START_S,
        "goal_rss_mb": GOAL_RSS_MB,
        "start_ms": round2(start_s * 1000.0),
        "goal_met_start": start_met,
        "idle_vm_rss_kb": idle_rss_kb,
        "goal_met_rss": rss_met,
        "catch_up_s": round2(catch_up_s),
        "catch_up_messages": per_room,
        "after_catch_up_vm_rss_kb": rss_kb,
        "after_catch_up_vm_hwm_kb": hwm_kb,
        "status_ms": round2(relay_status_ms),
        "clean_exit": clean,
    });
    Ok(Section { text, json })
}
