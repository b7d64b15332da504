//! Section 4: the real headless node (`disasternet node`): idle memory, start time and
//! `log --limit 100` latency, on an empty data dir and on one with 100,000 stored messages.
//!
//! The node runs on the host with `--no-mdns --no-beacon --listen 127.0.0.1:0`: nothing is
//! sent on the host's real network.

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dn_store::Store;
use serde_json::{json, Value};

use crate::{fixtures, round2, stats, Ctx, Section};

/// Goal: idle resident memory of a headless node.
const GOAL_RSS_MB: f64 = 30.0;
/// Goal: start (until `status` answers running) with 100,000 messages.
const GOAL_START_S: f64 = 1.0;
/// Idle time before memory is read.
const IDLE: Duration = Duration::from_secs(3);
/// `log` runs timed on the big store.
const LOG_RUNS: usize = 20;

/// A node process, SIGTERMed (then SIGKILLed) and reaped on drop.
pub(crate) struct NodeProc {
    pub(crate) child: Child,
}

impl NodeProc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, wait up to 10 s; SIGKILL if it is still there. Returns whether it exited
    /// by itself.
    pub(crate) fn stop(&mut self) -> Result<bool> {
        if self.child.try_wait()?.is_some() {
            return Ok(true);
        }
        let pid =
            rustix::process::Pid::from_raw(i32::try_from(self.child.id())?).context("pid 0")?;
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(true);
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Ok(false)
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.stop();
        }
    }
}

pub(crate) fn cli(bin: &Path, dir: &Path, args: &[&str]) -> Result<std::process::Output> {
    Command::new(bin)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} {}", bin.display(), args.join(" ")))
}

/// Fills `dir/store.sqlite3` with `n` messages in the fixture room (joined).
pub(crate) fn fill_store(ctx: &Ctx, dir: &Path, n: usize) -> Result<()> {
    ctx.note(&format!("node: signing and storing {n} messages ..."));
    let now = dn_store::system_clock_ms();
    let t0 = now.saturating_sub(1000 * n as u64 + 60_000);
    let msgs = fixtures::messages(n, 64, t0)?;
    let store = Store::open(&dir.join("store.sqlite3"))?;
    store.join_room(fixtures::ROOM, now)?;
    let batch: Vec<(dn_proto::Message, u64, bool)> =
        msgs.into_iter().map(|m| (m, now, false)).collect();
    for chunk in batch.chunks(1000) {
        store.insert_messages(chunk)?;
    }
    Ok(())
}

struct Measured {
    label: String,
    stored: usize,
    start_s: f64,
    rss_kb: u64,
    hwm_kb: u64,
    log_ms: Vec<f64>,
    rss_after_log_kb: Option<u64>,
    clean_exit: bool,
}

fn measure(ctx: &Ctx, label: &str, dir: &Path, stored: usize, log_runs: usize) -> Result<Measured> {
    let bin = &ctx.disasternet;
    let log = File::create(dir.join("node.log"))?;
    let err = log.try_clone()?;
    ctx.note(&format!("node: starting {} on {label} ...", bin.display()));
    let started = Instant::now();
    let child = Command::new(bin)
        .arg("--data-dir")
        .arg(dir)
        .args([
            "node",
            "--no-mdns",
            "--no-beacon",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut node = NodeProc { child };
    let deadline = started + Duration::from_secs(30);
    loop {
        if let Some(st) = node.child.try_wait()? {
            bail!(
                "node exited early ({st}); log: {}",
                dir.join("node.log").display()
            );
        }
        let out = cli(bin, dir, &["status", "--json"])?;
        if out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            if v["running"] == Value::Bool(true) {
                break;
            }
        }
        if Instant::now() > deadline {
            bail!("node did not report running within 30 s");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let start_s = started.elapsed().as_secs_f64();
    thread::sleep(IDLE);
    let (rss_kb, hwm_kb) = dn_tests::mem_kb(node.pid())?;
    let mut log_ms = Vec::new();
    let limit = "100";
    for _ in 0..log_runs {
        let t = Instant::now();
        let out = cli(
            bin,
            dir,
            &["log", "--room", fixtures::ROOM, "--limit", limit],
        )?;
        log_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if !out.status.success() {
            bail!(
                "log failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let lines = String::from_utf8_lossy(&out.stdout).lines().count();
        if lines < 100 {
            bail!("log --limit 100 printed {lines} lines");
        }
    }
    let rss_after_log_kb = if log_runs > 0 {
        Some(dn_tests::mem_kb(node.pid())?.0)
    } else {
        None
    };
    let clean_exit = node.stop()?;
    Ok(Measured {
        label: label.to_owned(),
        stored,
        start_s,
        rss_kb,
        hwm_kb,
        log_ms,
        rss_after_log_kb,
        clean_exit,
    })
}

/// `Store::messages(room, 100, None)` in this process, `runs` times: the store's own share of
/// the `log` latency.
fn store_query_us(dir: &Path, runs: usize) -> Result<Vec<f64>> {
    let store = Store::open(&dir.join("store.sqlite3"))?;
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let page = store.messages(fixtures::ROOM, 100, None)?;
        out.push(t.elapsed().as_secs_f64() * 1e6);
        if page.len() != 100 {
            bail!("Store::messages returned {} rows", page.len());
        }
    }
    Ok(out)
}

pub(crate) fn run(ctx: &Ctx) -> Result<Section> {
    if !ctx.disasternet.is_file() {
        bail!(
            "{} not found: build it first with `cargo build --release -p disasternet-cli` \
             (or pass --disasternet PATH)",
            ctx.disasternet.display()
        );
    }
    let n = if ctx.quick { 20_000 } else { 100_000 };
    let tmp = tempfile::Builder::new()
        .prefix("dn-bench-node-")
        .tempdir()
        .context("creating a temp dir")?;
    let empty: PathBuf = tmp.path().join("empty");
    let big: PathBuf = tmp.path().join("big");
    std::fs::create_dir_all(&empty)?;
    std::fs::create_dir_all(&big)?;
    let t = Instant::now();
    fill_store(ctx, &big, n)?;
    let fill_s = t.elapsed().as_secs_f64();
    let db_bytes = std::fs::metadata(big.join("store.sqlite3"))?.len()
        + std::fs::metadata(big.join("store.sqlite3-wal")).map_or(0, |m| m.len());

    let runs = [
        measure(ctx, "empty data dir", &empty, 0, 0)?,
        measure(ctx, &format!("{n} messages"), &big, n, LOG_RUNS)?,
    ];
    let query_us = store_query_us(&big, 200)?;

    let mut text = String::new();
    let _ = writeln!(text, "== 4. Headless node: idle memory, start, log latency");
    let _ = writeln!(
        text,
        "   {} --data-dir D node --no-mdns --no-beacon --listen 127.0.0.1:0 (RUST_LOG=info), \
         no peers; start = spawn until `status --json` says running (polled every 20 ms, CLI \
         start included); memory read from /proc/PID/status {} s later. Big store: {n} \
         messages (≈ 200 B bodies, 64 authors, one joined room), {:.1} MB on disk, filled in {:.1} s.",
        ctx.disasternet.display(),
        IDLE.as_secs(),
        db_bytes as f64 / 1e6,
        fill_s
    );
    let _ = writeln!(
        text,
        "   goals: idle VmRSS ≤ {GOAL_RSS_MB} MB; start < {GOAL_START_S} s with 100k messages \
         (Berty ≈ 20 s with 10k)."
    );
    let _ = writeln!(
        text,
        "   {:<18} {:>9} {:>11} {:>11} {:>9} {:>12}",
        "store", "start", "VmRSS idle", "VmHWM", "RSS goal", "clean exit"
    );
    let mut rows = Vec::new();
    for m in &runs {
        let rss_mb = m.rss_kb as f64 / 1024.0;
        let met = rss_mb <= GOAL_RSS_MB;
        let _ = writeln!(
            text,
            "   {:<18} {:>7.0}ms {:>8.1} MB {:>8.1} MB {:>9} {:>12}",
            m.label,
            m.start_s * 1000.0,
            rss_mb,
            m.hwm_kb as f64 / 1024.0,
            if met { "met" } else { "MISSED" },
            if m.clean_exit { "yes" } else { "NO (killed)" }
        );
        rows.push(json!({
            "store": m.label,
            "stored_messages": m.stored,
            "start_ms": round2(m.start_s * 1000.0),
            "vm_rss_kb": m.rss_kb,
            "vm_hwm_kb": m.hwm_kb,
            "vm_rss_after_log_kb": m.rss_after_log_kb,
            "goal_met_rss": met,
            "clean_exit": m.clean_exit,
        }));
    }
    let big_run = &runs[1];
    let (lp50, lmax) = (
        stats::pct(&big_run.log_ms, 0.5),
        stats::max(&big_run.log_ms),
    );
    let (qp50, qp99) = (stats::pct(&query_us, 0.5), stats::pct(&query_us, 0.99));
    let _ = writeln!(
        text,
        "   `disasternet log --room {} --limit 100` on {n} messages (node running, via its control \
         socket; process start included), {LOG_RUNS} runs: p50 {lp50:.1} ms, max {lmax:.1} ms, \
         min {:.1} ms; VmRSS after them {:.1} MB.",
        fixtures::ROOM,
        stats::min(&big_run.log_ms),
        big_run.rss_after_log_kb.unwrap_or(0) as f64 / 1024.0
    );
    let _ = writeln!(
        text,
        "   Store::messages(room, 100) in-process, 200 runs: p50 {qp50:.0} µs, p99 {qp99:.0} µs \
         (SQLite anchor: 70–130 µs)."
    );
    let start_met = big_run.start_s < GOAL_START_S;
    let json = json!({
        "params": {
            "stored_messages": n, "idle_s": IDLE.as_secs(), "db_bytes": db_bytes,
            "args": "node --no-mdns --no-beacon --listen 127.0.0.1:0",
        },
        "goal_rss_mb": GOAL_RSS_MB,
        "goal_start_s": GOAL_START_S,
        "runs": rows,
        "goal_met_start_100k": start_met,
        "cli_log_limit_100_ms": {
            "runs": LOG_RUNS, "p50": round2(lp50), "max": round2(lmax),
            "min": round2(stats::min(&big_run.log_ms)),
        },
        "store_messages_100_us": { "runs": 200, "p50": round2(qp50), "p99": round2(qp99) },
    });
    Ok(Section { text, json })
}
