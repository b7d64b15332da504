//! Section 8: the carry quota's cost on the core thread (`dn_proto::protocol::evict`).
//!
//! A real store file holds a carried room (not joined). The protocol's housekeeping tick
//! measures what rooms not joined take every 5 s; over the quota it evicts the oldest (at most
//! `MAX_EVICT_PER_TICK` per tick). Both run on the core thread, so both must stay short.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Context, Result};
use dn_proto::protocol::{EVICT_TARGET_PERCENT, MAX_EVICT_PER_TICK};
use dn_proto::{Config, Input, NodeId, Protocol, Storage};
use dn_store::Store;
use serde_json::json;

use crate::{fixtures, round2, stats, Ctx, Section};

/// Goal: a tick, evicting or not, under this many ms (the core answers `status` within
/// 100 ms even while a tick evicts).
const GOAL_TICK_MS: f64 = 100.0;

fn tick_ms(proto: &mut Protocol, store: &mut Store, now: &mut u64) -> f64 {
    *now += 5_000;
    let t = Instant::now();
    let _ = proto.handle(store, Input::Tick, *now);
    t.elapsed().as_secs_f64() * 1000.0
}

pub(crate) fn run(ctx: &Ctx) -> Result<Section> {
    let n = if ctx.quick { 20_000 } else { 100_000 };
    ctx.note(&format!(
        "carry: signing and storing {n} carried messages ..."
    ));
    let dir = tempfile::Builder::new()
        .prefix("dn-bench-carry-")
        .tempdir()
        .context("creating a temp dir")?;
    let mut store = Store::open(&dir.path().join("store.sqlite3"))?;
    let t0 = dn_store::system_clock_ms().saturating_sub(30 * 86_400_000);
    let msgs = fixtures::messages(n, 64, t0)?;
    for chunk in msgs.chunks(1000) {
        let batch: Vec<_> = chunk.iter().map(|m| (m.clone(), t0, false)).collect();
        store.insert_messages(&batch)?;
    }
    let used: u64 = store.usage()?.iter().map(|u| u.bytes).sum();
    let me = NodeId([1; 32]);
    let mut now = 0;

    // Under the quota: the measurement every tick pays.
    let mut proto = Protocol::with_config(
        me,
        "bench".into(),
        0,
        Vec::<String>::new(),
        Config {
            carry_quota_bytes: used * 2,
            ..Config::default()
        },
    );
    proto.carry_rooms([fixtures::ROOM.to_string()]);
    let idle: Vec<f64> = (0..20)
        .map(|_| tick_ms(&mut proto, &mut store, &mut now))
        .collect();

    // Over it: the quota halved, so more than one tick's worth must go.
    let quota = used / 2;
    let mut proto = Protocol::with_config(
        me,
        "bench".into(),
        0,
        Vec::<String>::new(),
        Config {
            carry_quota_bytes: quota,
            ..Config::default()
        },
    );
    proto.carry_rooms([fixtures::ROOM.to_string()]);
    let mut evicting = Vec::new();
    while evicting.len() < 500 {
        let before = proto.counters().evicted;
        let ms = tick_ms(&mut proto, &mut store, &mut now);
        let n = proto.counters().evicted - before;
        if n == 0 {
            break;
        }
        evicting.push((n, ms));
    }
    let evicted = proto.counters().evicted;
    let idle_p50 = stats::pct(&idle, 0.5);
    let tick_ms_all: Vec<f64> = evicting.iter().map(|(_, ms)| *ms).collect();
    let worst = stats::max(&tick_ms_all);
    let evict_p50 = stats::pct(&tick_ms_all, 0.5);
    let per_msg_us = evicting
        .iter()
        .map(|(n, ms)| ms * 1000.0 / *n as f64)
        .fold(0.0, f64::max);

    let mut text = String::new();
    let _ = writeln!(
        text,
        "== 8. Carry quota: the housekeeping tick on the core thread"
    );
    let _ = writeln!(
        text,
        "   {n} carried messages ({:.1} MB signed) in a real store file; tick = Protocol::handle(Tick) \
         with dn_store::Store. Goal: every tick < {GOAL_TICK_MS:.0} ms.",
        used as f64 / 1e6
    );
    let _ = writeln!(
        text,
        "   under the quota (measure only): p50 {:.0} µs, max {:.0} µs over {} ticks",
        idle_p50 * 1000.0,
        stats::max(&idle) * 1000.0,
        idle.len()
    );
    let _ = writeln!(
        text,
        "   quota = half ({:.1} MB): {} ticks evicted {evicted} messages down to {EVICT_TARGET_PERCENT} % \
         (≤ {MAX_EVICT_PER_TICK} per tick); tick p50 {evict_p50:.1} ms, slowest {worst:.1} ms, \
         ≤ {per_msg_us:.1} µs per evicted message — goal {}",
        quota as f64 / 1e6,
        evicting.len(),
        if worst < GOAL_TICK_MS && stats::max(&idle) < GOAL_TICK_MS {
            "met"
        } else {
            "MISSED"
        }
    );
    let json = json!({
        "params": { "messages": n, "signed_bytes": used, "quota_bytes": quota,
                    "max_evict_per_tick": MAX_EVICT_PER_TICK },
        "idle_tick_ms_p50": round2(idle_p50),
        "idle_tick_ms_max": round2(stats::max(&idle)),
        "evicting_ticks": evicting.iter().map(|(n, ms)| json!({"evicted": n, "ms": round2(*ms)})).collect::<Vec<_>>(),
        "evicted": evicted,
        "evicting_tick_ms_p50": round2(evict_p50),
        "slowest_tick_ms": round2(worst),
        "goal_tick_ms": GOAL_TICK_MS,
    });
    Ok(Section { text, json })
}
