//! Section 12: urgent messages during a big catch-up (issue #12, "Urgent messages").
//!
//! Two real `disasternet node`s on loopback (QUIC, `--no-mdns --no-beacon`): A holds 50,000
//! ordinary messages in a joined room; B joins the room empty and dials A, so A starts sending
//! the whole history (paced catch-up). While that is in flight, A writes urgent messages
//! (`disasternet send --urgent`, 100 ms apart), each followed 50 ms later by an ordinary one
//! (the control: same moment, same catch-up, no marker).
//! Latency = when B stored it (`received_at`) − when A signed it (`timestamp`): the same
//! clock, one machine. Goal: urgent p99 < 1 s.
//!
//! Per author only `URGENT_BUDGET` (5) urgent messages per 10 minutes get priority
//! (docs/protocol.md §2.5), so each run writes 5 and the section repeats the whole catch-up
//! (fresh copies of both data dirs) to collect its samples.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dn_proto::protocol::URGENT_BUDGET;
use dn_proto::Message;
use dn_store::Store;
use serde_json::{json, Value};

use crate::node::{cli, NodeProc};
use crate::{fixtures, round2, stats, Ctx, Section};

/// Goal: write → stored at the other node, p99, for urgent messages within budget.
const GOAL_P99_MS: f64 = 1_000.0;
/// Catch-up messages B receives before the urgent ones are written (so it is in flight).
const IN_FLIGHT_AFTER: u64 = 1_000;
/// Between two urgent messages.
const SPACING: Duration = Duration::from_millis(100);

fn ok(out: std::process::Output, what: &str) -> Result<Vec<u8>> {
    if !out.status.success() {
        bail!("{what}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out.stdout)
}

fn json_of(bin: &Path, dir: &Path, args: &[&str]) -> Result<Value> {
    let out = ok(cli(bin, dir, args)?, &args.join(" "))?;
    Ok(serde_json::from_slice(&out)?)
}

/// A data dir with a name and the fixture room joined.
fn init_dir(bin: &Path, dir: &Path, name: &str) -> Result<()> {
    fs::create_dir_all(dir)?;
    ok(cli(bin, dir, &["init", "--name", name])?, "init")?;
    ok(
        cli(bin, dir, &["room", "join", fixtures::ROOM])?,
        "room join",
    )?;
    Ok(())
}

/// A's history: `own` messages written by A itself (4 s apart: the per-author window allows
/// 2,000 an hour) and `others` from 64 other authors (relayed by A, within a peer's joined-room
/// burst), all older than three hours.
fn fill(dir: &Path, own: usize, others: usize) -> Result<()> {
    let key = dn_node::identity::load_or_create(dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = dn_store::system_clock_ms();
    let t0 = now.saturating_sub(4_000 * own as u64 + 3 * 3_600_000);
    let mut msgs = Vec::with_capacity(own + others);
    for k in 0..own {
        let body = format!(
            "status {k:06}: shelter B has {} beds free, water for {} days; generator fuel low.",
            k % 80,
            1 + k % 5
        );
        msgs.push(Message::create(
            &key,
            fixtures::ROOM,
            "Alpha",
            t0 + 4_000 * k as u64,
            &body,
        )?);
    }
    msgs.extend(fixtures::messages(others, 64, t0)?);
    let store = Store::open(&dir.join("store.sqlite3"))?;
    for chunk in msgs.chunks(1_000) {
        let batch: Vec<_> = chunk.iter().map(|m| (m.clone(), now, false)).collect();
        store.insert_messages(&batch)?;
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_file() {
            fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

fn free_udp_port() -> Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn start(ctx: &Ctx, dir: &Path, listen: &str, peer: Option<&str>) -> Result<NodeProc> {
    let log = fs::File::create(dir.join("node.log"))?;
    let err = log.try_clone()?;
    let mut args = vec!["node", "--no-mdns", "--no-beacon", "--listen", listen];
    if let Some(p) = peer {
        args.extend(["--peer", p]);
    }
    let child = Command::new(&ctx.disasternet)
        .arg("--data-dir")
        .arg(dir)
        .args(&args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {}", ctx.disasternet.display()))?;
    let mut node = NodeProc { child };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(st) = node.child.try_wait()? {
            bail!(
                "node exited early ({st}); log: {}",
                dir.join("node.log").display()
            );
        }
        if let Ok(v) = json_of(&ctx.disasternet, dir, &["status", "--json"]) {
            if v["running"] == Value::Bool(true) {
                return Ok(node);
            }
        }
        if Instant::now() > deadline {
            let _ = node.stop();
            bail!("node did not report running within 60 s");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn stored(ctx: &Ctx, dir: &Path) -> Result<u64> {
    let v = json_of(&ctx.disasternet, dir, &["status", "--json"])?;
    v["messages"].as_u64().context("status without messages")
}

/// One run's figures.
struct Run {
    urgent_ms: Vec<f64>,
    /// Catch-up messages B still lacked when the last urgent one was written at A.
    behind_at_urgent: u64,
    ordinary_ms: Vec<f64>,
    catch_up_s: f64,
}

fn run_once(
    ctx: &Ctx,
    base: &Path,
    tpl_a: &Path,
    tpl_b: &Path,
    total: u64,
    i: usize,
) -> Result<Run> {
    let (a, b) = (
        base.join(format!("run{i}-a")),
        base.join(format!("run{i}-b")),
    );
    copy_dir(tpl_a, &a)?;
    copy_dir(tpl_b, &b)?;
    let bin = &ctx.disasternet;
    let port = free_udp_port()?;
    let addr = format!("127.0.0.1:{port}");
    let mut na = start(ctx, &a, &addr, None)?;
    let started = Instant::now();
    let mut nb = start(ctx, &b, "127.0.0.1:0", Some(&addr))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while stored(ctx, &b)? < IN_FLIGHT_AFTER {
        if Instant::now() > deadline {
            bail!("run {i}: the catch-up did not start within 120 s");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let mut ids = Vec::new();
    let mut plain_ids = Vec::new();
    let mut behind = 0;
    for k in 0..URGENT_BUDGET {
        behind = total.saturating_sub(stored(ctx, &b)?.saturating_sub(2 * k as u64));
        let text = format!("collapse at the market, sector {k}, need rescue (run {i})");
        let out = ok(
            cli(
                bin,
                &a,
                &["send", "--room", fixtures::ROOM, "--urgent", &text],
            )?,
            "send --urgent",
        )?;
        ids.push(String::from_utf8_lossy(&out).trim().to_string());
        thread::sleep(SPACING / 2);
        let text = format!("ordinary note {k}, the control (run {i})");
        let out = ok(
            cli(bin, &a, &["send", "--room", fixtures::ROOM, &text])?,
            "send",
        )?;
        plain_ids.push(String::from_utf8_lossy(&out).trim().to_string());
        thread::sleep(SPACING / 2);
    }
    // The urgent ones at B (its `urgent` list: timestamp = signed at A, received_at = stored).
    let deadline = Instant::now() + Duration::from_secs(60);
    let urgent_ms = loop {
        let list = json_of(bin, &b, &["urgent", fixtures::ROOM, "--json"])?;
        let got: Vec<f64> = list
            .as_array()
            .map(|l| {
                l.iter()
                    .filter(|m| ids.iter().any(|id| m["id"].as_str() == Some(id)))
                    .filter_map(|m| {
                        Some((m["received_at"].as_f64()? - m["timestamp"].as_f64()?).max(0.0))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if got.len() == ids.len() {
            break got;
        }
        if Instant::now() > deadline {
            bail!(
                "run {i}: {} of {} urgent messages arrived in 60 s",
                got.len(),
                ids.len()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    // Then the whole catch-up, and the ordinary message written after the urgent ones.
    let want = total + (ids.len() + plain_ids.len()) as u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    while stored(ctx, &b)? < want {
        if Instant::now() > deadline {
            bail!("run {i}: the catch-up did not finish within 600 s");
        }
        thread::sleep(Duration::from_millis(100));
    }
    let catch_up_s = started.elapsed().as_secs_f64();
    let log = json_of(
        bin,
        &b,
        &["log", "--room", fixtures::ROOM, "--limit", "20", "--json"],
    )?;
    let ordinary_ms: Vec<f64> = log
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|m| plain_ids.iter().any(|id| m["id"].as_str() == Some(id)))
                .filter_map(|m| {
                    Some((m["received_at"].as_f64()? - m["timestamp"].as_f64()?).max(0.0))
                })
                .collect()
        })
        .unwrap_or_default();
    if ordinary_ms.len() != plain_ids.len() {
        bail!(
            "run {i}: {} of {} ordinary messages found at B",
            ordinary_ms.len(),
            plain_ids.len()
        );
    }
    nb.stop()?;
    na.stop()?;
    let _ = fs::remove_dir_all(&a);
    let _ = fs::remove_dir_all(&b);
    Ok(Run {
        urgent_ms,
        behind_at_urgent: behind,
        ordinary_ms,
        catch_up_s,
    })
}

pub(crate) fn run(ctx: &Ctx) -> Result<Section> {
    let (own, others, runs) = if ctx.quick {
        (9_000, 1_000, 2)
    } else {
        (45_000, 5_000, 10)
    };
    let total = (own + others) as u64;
    let base = tempfile::Builder::new()
        .prefix("dn-bench-urgent-")
        .tempdir()
        .context("creating a temp dir")?;
    let (tpl_a, tpl_b) = (base.path().join("tpl-a"), base.path().join("tpl-b"));
    ctx.note(&format!(
        "urgent: signing and storing {total} messages at A ..."
    ));
    init_dir(&ctx.disasternet, &tpl_a, "Alpha")?;
    fill(&tpl_a, own, others)?;
    init_dir(&ctx.disasternet, &tpl_b, "Bravo")?;
    let mut all = Vec::new();
    let mut ordinary = Vec::new();
    let mut behind = Vec::new();
    let mut catch_up = Vec::new();
    for i in 0..runs {
        ctx.note(&format!(
            "urgent: run {}/{runs} (catch-up of {total}) ...",
            i + 1
        ));
        let r = run_once(ctx, base.path(), &tpl_a, &tpl_b, total, i)?;
        all.extend(r.urgent_ms);
        ordinary.extend(r.ordinary_ms);
        behind.push(r.behind_at_urgent as f64);
        catch_up.push(r.catch_up_s);
    }
    let (p50, p99) = (stats::pct(&all, 0.5), stats::pct(&all, 0.99));
    let mut text = String::new();
    writeln!(
        text,
        "== urgent: write → stored at the other node, during a catch-up of {total} messages \
         (2 real nodes, QUIC on loopback)"
    )?;
    writeln!(
        text,
        "  urgent ({} samples, {} per run × {runs} runs, 100 ms apart): p50 {:.0} ms, p99 {:.0} ms, \
         max {:.0} ms   goal p99 < {GOAL_P99_MS:.0} ms: {}",
        all.len(),
        URGENT_BUDGET,
        p50,
        p99,
        stats::max(&all),
        if p99 < GOAL_P99_MS { "MET" } else { "MISSED" }
    )?;
    writeln!(
        text,
        "  catch-up in flight: when the last urgent one was written, {:.0}–{:.0} of {total} \
         messages were still missing at B (min–max over runs)",
        stats::min(&behind),
        stats::max(&behind)
    )?;
    writeln!(
        text,
        "  control: an ordinary message 50 ms after each urgent one ({} samples): p50 {:.0} ms, \
         p99 {:.0} ms, max {:.0} ms; whole catch-up p50 {:.1} s",
        ordinary.len(),
        stats::pct(&ordinary, 0.5),
        stats::pct(&ordinary, 0.99),
        stats::max(&ordinary),
        stats::pct(&catch_up, 0.5)
    )?;
    let json = json!({
        "messages": total,
        "runs": runs,
        "urgent_per_run": URGENT_BUDGET,
        "urgent_p50_ms": round2(p50),
        "urgent_p99_ms": round2(p99),
        "urgent_max_ms": round2(stats::max(&all)),
        "goal_p99_ms": GOAL_P99_MS,
        "goal_met": p99 < GOAL_P99_MS,
        "missing_at_b_when_last_urgent_written_min": stats::min(&behind),
        "ordinary_p50_ms": round2(stats::pct(&ordinary, 0.5)),
        "ordinary_p99_ms": round2(stats::pct(&ordinary, 0.99)),
        "ordinary_max_ms": round2(stats::max(&ordinary)),
        "catch_up_p50_s": round2(stats::pct(&catch_up, 0.5)),
    });
    Ok(Section { text, json })
}
