//! Section 3: ingest of remote messages (verify + store) against the raw Ed25519 verify rate.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use dn_proto::{Message, Storage};
use dn_store::Store;
use serde_json::json;

use crate::{fixtures, round2, Ctx, Section};

/// Goal: ingest rate / raw verify rate.
const GOAL_RATIO: f64 = 0.8;
/// Messages per `Store::insert_messages` call (a network batch).
const BATCH: usize = 256;

fn fresh_store(dir: &tempfile::TempDir, name: &str) -> Result<Store> {
    let path = dir.path().join(name);
    Store::open(&path).with_context(|| format!("opening {}", path.display()))
}

fn rate(n: usize, secs: f64) -> f64 {
    n as f64 / secs.max(1e-9)
}

pub(crate) fn run(ctx: &Ctx) -> Result<Section> {
    let (n, n_row) = if ctx.quick {
        (4_000, 1_000)
    } else {
        (20_000, 5_000)
    };
    ctx.note(&format!("ingest: signing {n} messages ..."));
    let t0 = dn_store::system_clock_ms().saturating_sub(30 * 86_400_000);
    let msgs = fixtures::messages(n, 64, t0)?;
    let avg_body = msgs.iter().map(|m| m.body.len()).sum::<usize>() / n.max(1);
    let avg_signed = msgs.iter().map(|m| m.signed_bytes().len()).sum::<usize>() / n.max(1);

    // Warm caches and CPU frequency, untimed.
    for m in msgs.iter().take(1000) {
        m.verify()?;
    }

    // 1. Raw verify: Message::verify (rules + Ed25519), one thread.
    ctx.note("ingest: raw verify ...");
    let t = Instant::now();
    for m in &msgs {
        m.verify()?;
    }
    let verify_s = t.elapsed().as_secs_f64();
    let verify_rate = rate(n, verify_s);

    let dir = tempfile::Builder::new()
        .prefix("dn-bench-ingest-")
        .tempdir()
        .context("creating a temp dir")?;

    // 2. Ingest, batched: verify each, then one transaction per BATCH messages. The messages
    //    are owned (as they arrive from the network), so they move into the batch.
    ctx.note(&format!("ingest: verify + insert_messages (batches of {BATCH}) ..."));
    let store = fresh_store(&dir, "batched.sqlite3")?;
    let owned: Vec<Message> = msgs.clone();
    let t = Instant::now();
    let mut it = owned.into_iter();
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        for m in it.by_ref().take(BATCH) {
            m.verify()?;
            batch.push((m, dn_store::system_clock_ms(), false));
        }
        if batch.is_empty() {
            break;
        }
        store.insert_messages(&batch)?;
    }
    let batched_s = t.elapsed().as_secs_f64();
    ensure!(
        store.message_count(None)? == n as u64,
        "batched store holds {} messages, not {n}",
        store.message_count(None)?
    );
    drop(store);
    let batched_rate = rate(n, batched_s);

    // 3. Store only, batched (already verified): where the rest of the time goes.
    ctx.note("ingest: insert_messages only ...");
    let store = fresh_store(&dir, "store-only.sqlite3")?;
    let batch_all: Vec<(Message, u64, bool)> = msgs
        .iter()
        .map(|m| (m.clone(), dn_store::system_clock_ms(), false))
        .collect();
    let t = Instant::now();
    for chunk in batch_all.chunks(BATCH) {
        store.insert_messages(chunk)?;
    }
    let store_only_s = t.elapsed().as_secs_f64();
    drop(store);
    let store_only_rate = rate(n, store_only_s);

    // 4. Today's engine path: verify, then `Storage::insert`, one row per transaction
    //    (synchronous=FULL: one WAL fsync per message).
    ctx.note(&format!(
        "ingest: verify + Storage::insert, one row per transaction ({n_row} messages) ..."
    ));
    let mut store = fresh_store(&dir, "per-row.sqlite3")?;
    let t = Instant::now();
    for m in msgs.iter().take(n_row) {
        m.verify()?;
        Storage::insert(&mut store, m)?;
    }
    let row_s = t.elapsed().as_secs_f64();
    ensure!(
        store.message_count(None)? == n_row as u64,
        "per-row store holds the wrong count"
    );
    drop(store);
    let row_rate = rate(n_row, row_s);

    let batched_ratio = batched_rate / verify_rate;
    let row_ratio = row_rate / verify_rate;
    let verdict = |r: f64| if r >= GOAL_RATIO { "met" } else { "MISSED" };
    let mut text = String::new();
    let _ = writeln!(text, "== 3. Ingest vs raw verify (one thread)");
    let _ = writeln!(
        text,
        "   {n} signed messages by 64 authors in one room, body ≈ {avg_body} B (signed bytes ≈ \
         {avg_signed} B); fresh dn_store::Store per run: real file in {} (WAL, synchronous=FULL).",
        dir.path().display()
    );
    let _ = writeln!(
        text,
        "   goal: ingest ≥ {:.0} % of raw verify. Peers: ed25519-dalek verify 20.6 k/s single, \
         57.8 k/s batched; SQLite 1 row/tx 5.3 k/s (FULL), 1,000 rows/tx 53 k rows/s.",
        GOAL_RATIO * 100.0
    );
    let _ = writeln!(
        text,
        "   {:<58} {:>8} {:>10} {:>9} {:>7}",
        "path", "msgs", "msgs/s", "vs verify", "goal"
    );
    let mut line = |name: &str, count: usize, r: f64, goal: &str| {
        let _ = writeln!(
            text,
            "   {:<58} {:>8} {:>10.0} {:>8.1}% {:>7}",
            name,
            count,
            r,
            r / verify_rate * 100.0,
            goal
        );
    };
    line("raw verify (Message::verify)", n, verify_rate, "-");
    line(
        &format!("ingest: verify + Store::insert_messages, batches of {BATCH}"),
        n,
        batched_rate,
        verdict(batched_ratio),
    );
    line(
        "ingest: verify + Storage::insert, 1 row/tx (engine today)",
        n_row,
        row_rate,
        verdict(row_ratio),
    );
    line(
        &format!("store only: Store::insert_messages, batches of {BATCH}"),
        n,
        store_only_rate,
        "-",
    );
    let json = json!({
        "params": {
            "messages": n, "messages_per_row_path": n_row, "authors": 64, "batch": BATCH,
            "avg_body_bytes": avg_body, "avg_signed_bytes": avg_signed,
            "synchronous": "FULL", "journal": "WAL",
        },
        "raw_verify_per_s": round2(verify_rate),
        "ingest_batched_per_s": round2(batched_rate),
        "ingest_per_row_per_s": round2(row_rate),
        "store_only_batched_per_s": round2(store_only_rate),
        "ratio_batched": round2(batched_ratio),
        "ratio_per_row": round2(row_ratio),
        "goal_ratio": GOAL_RATIO,
        "goal_met_batched": batched_ratio >= GOAL_RATIO,
        "goal_met_per_row": row_ratio >= GOAL_RATIO,
    });
    Ok(Section { text, json })
}
