//! Section 3: ingest of remote messages (verify + store) against the raw Ed25519 verify rate.
//!
//! Every path runs once per round, interleaved (so a burst of load elsewhere on the machine
//! hits all of them), each on a fresh store file; the table shows the median round and the
//! range.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{anyhow, ensure, Context, Result};
use std::collections::BTreeSet;

use dn_proto::{Frame, Input, Message, NodeId, Protocol};
use dn_store::Store;
use ed25519_dalek::SigningKey;
use serde_json::json;

use crate::{fixtures, round2, stats, Ctx, Section};

/// Goal: ingest rate / raw verify rate.
const GOAL_RATIO: f64 = 0.8;
/// Frames per store transaction in the engine's core loop (`dn_node::core` BURST).
const ENGINE_BURST: usize = 512;
/// Messages per `Store::insert_messages` call (a network batch).
const BATCH: usize = 256;

fn fresh_store(dir: &tempfile::TempDir, name: &str) -> Result<Store> {
    let path = dir.path().join(name);
    if path.exists() {
        for suffix in ["", "-wal", "-shm"] {
            let p = dir.path().join(format!("{name}{suffix}"));
            if p.exists() {
                std::fs::remove_file(&p)?;
            }
        }
    }
    Store::open(&path).with_context(|| format!("opening {}", path.display()))
}

fn rate(n: usize, secs: f64) -> f64 {
    n as f64 / secs.max(1e-9)
}

/// Verify `BATCH` owned messages at a time (they arrive owned from the network and move into
/// the batch) and hand each batch to `sink`.
fn verified_batches(
    msgs: Vec<Message>,
    mut sink: impl FnMut(Vec<(Message, u64, bool)>) -> Result<()>,
) -> Result<()> {
    let mut it = msgs.into_iter();
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        for m in it.by_ref().take(BATCH) {
            m.verify()?;
            batch.push((m, dn_store::system_clock_ms(), false));
        }
        if batch.is_empty() {
            return Ok(());
        }
        sink(batch)?;
    }
}

/// Rates (msgs/s) of one round, in [`PATHS`] order.
fn one_round(
    ctx: &Ctx,
    msgs: &[Message],
    n_row: usize,
    dir: &tempfile::TempDir,
) -> Result<[f64; 5]> {
    let n = msgs.len();

    // Raw verify: Message::verify (rules + Ed25519), one thread.
    let t = Instant::now();
    for m in msgs {
        m.verify()?;
    }
    let verify = rate(n, t.elapsed().as_secs_f64());

    // Ingest, batched: verify each, one transaction per BATCH messages.
    let store = fresh_store(dir, "batched.sqlite3")?;
    let owned = msgs.to_vec();
    let t = Instant::now();
    verified_batches(owned, |b| {
        store.insert_messages(&b).map(drop).map_err(Into::into)
    })?;
    let batched = rate(n, t.elapsed().as_secs_f64());
    ensure!(
        store.message_count(None)? == n as u64,
        "batched store holds the wrong count"
    );
    drop(store);

    // The engine's path: the core thread feeds each `Msg` frame to `Protocol::handle`
    // (verify, room and clock rules, insert, push decisions) and groups a burst of queued
    // frames (up to 512) into one store transaction.
    let mut store = fresh_store(dir, "engine.sqlite3")?;
    let me = SigningKey::from_bytes(&[200u8; 32]);
    let peer = NodeId([201u8; 32]);
    let rooms: Vec<String> = msgs
        .iter()
        .map(|m| m.room.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut proto = Protocol::new(
        NodeId(me.verifying_key().to_bytes()),
        "bench".into(),
        7300,
        rooms.clone(),
    );
    proto.handle(&mut store, Input::Connected { peer }, 0);
    let hello = Frame::Hello {
        version: 1,
        node: peer,
        name: "peer".into(),
        rooms,
        listen_port: 7300,
    };
    proto.handle(&mut store, Input::Frame { peer, frame: hello }, 0);
    let t = Instant::now();
    for chunk in msgs[..n_row].chunks(ENGINE_BURST) {
        store.begin_batch()?;
        for m in chunk {
            let frame = Frame::Msg {
                hops: 8,
                message: m.clone(),
            };
            proto.handle(&mut store, Input::Frame { peer, frame }, 1);
        }
        store.commit_batch()?;
    }
    let per_row = rate(n_row, t.elapsed().as_secs_f64());
    ensure!(
        store.message_count(None)? == n_row as u64,
        "engine-path store holds the wrong count"
    );
    drop(store);

    // Pipelined on two threads: one verifies network batches, the other (the store's single
    // writer) inserts them, as the engine could split its network tasks and its core thread.
    let store = fresh_store(dir, "pipelined.sqlite3")?;
    let owned = msgs.to_vec();
    let t = Instant::now();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(Message, u64, bool)>>(4);
    let verifier = std::thread::spawn(move || {
        verified_batches(owned, |b| {
            tx.send(b).map_err(|_| anyhow!("store thread gone"))
        })
    });
    for batch in rx {
        store.insert_messages(&batch)?;
    }
    verifier
        .join()
        .map_err(|_| anyhow!("verifier thread panicked"))??;
    let piped = rate(n, t.elapsed().as_secs_f64());
    ensure!(
        store.message_count(None)? == n as u64,
        "pipelined store holds the wrong count"
    );
    drop(store);

    // Store only, batched (already verified): the other share of the time.
    let store = fresh_store(dir, "store-only.sqlite3")?;
    let all: Vec<(Message, u64, bool)> = msgs
        .iter()
        .map(|m| (m.clone(), dn_store::system_clock_ms(), false))
        .collect();
    let t = Instant::now();
    for chunk in all.chunks(BATCH) {
        store.insert_messages(chunk)?;
    }
    let store_only = rate(n, t.elapsed().as_secs_f64());
    drop(store);
    ctx.note(&format!(
        "ingest: round: verify {verify:.0}/s, batched {batched:.0}/s, per-row {per_row:.0}/s, \
         pipelined {piped:.0}/s, store-only {store_only:.0}/s"
    ));
    Ok([verify, batched, per_row, piped, store_only])
}

/// Row labels, in the order of [`one_round`]'s result.
const PATHS: [&str; 5] = [
    "raw verify (Message::verify)",
    "ingest: verify + Store::insert_messages, batches of 256",
    "ingest, engine path: Protocol::handle(Msg), 512-frame burst transactions",
    "ingest, 2 threads: verify | insert_messages (256), pipelined",
    "store only: Store::insert_messages, batches of 256",
];

pub(crate) fn run(ctx: &Ctx) -> Result<Section> {
    let (n, n_row, rounds) = if ctx.quick {
        (4_000, 1_000, 1)
    } else {
        (20_000, 5_000, 3)
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
    let dir = tempfile::Builder::new()
        .prefix("dn-bench-ingest-")
        .tempdir()
        .context("creating a temp dir")?;
    let mut samples: [Vec<f64>; 5] = Default::default();
    for r in 0..rounds {
        ctx.note(&format!("ingest: round {} of {rounds} ...", r + 1));
        let rates = one_round(ctx, &msgs, n_row, &dir)?;
        for (s, x) in samples.iter_mut().zip(rates) {
            s.push(x);
        }
    }
    let med: Vec<f64> = samples.iter().map(|s| stats::pct(s, 0.5)).collect();
    let verify_rate = med[0];
    let ratio = |x: f64| x / verify_rate;
    let verdict = |k: usize| -> &'static str {
        let met = ratio(med[k]) >= GOAL_RATIO;
        match (k, met) {
            (1 | 2, true) => "met",
            (1 | 2, false) => "MISSED",
            (3, true) => "met*",
            (3, false) => "MISSED*",
            _ => "-",
        }
    };

    let mut text = String::new();
    let _ = writeln!(text, "== 3. Ingest vs raw verify");
    let _ = writeln!(
        text,
        "   {n} signed messages by 64 authors in one room, body ≈ {avg_body} B (signed bytes ≈ \
         {avg_signed} B); every store run on a fresh dn_store::Store, a real file in {} (WAL, \
         synchronous=FULL); the 1-row/tx path on the first {n_row}. {rounds} interleaved \
         round(s): median (min–max).",
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
        "   {:<61} {:>7} {:>9} {:>17} {:>9} {:>8}",
        "path", "msgs", "msgs/s", "(min–max)", "vs verify", "goal"
    );
    let mut rows = Vec::new();
    for (k, name) in PATHS.iter().enumerate() {
        let count = if k == 2 { n_row } else { n };
        let _ = writeln!(
            text,
            "   {:<61} {:>7} {:>9.0} {:>17} {:>8.1}% {:>8}",
            name,
            count,
            med[k],
            format!(
                "({:.0}–{:.0})",
                stats::min(&samples[k]),
                stats::max(&samples[k])
            ),
            ratio(med[k]) * 100.0,
            verdict(k)
        );
        rows.push(json!({
            "path": name,
            "messages": count,
            "median_per_s": round2(med[k]),
            "min_per_s": round2(stats::min(&samples[k])),
            "max_per_s": round2(stats::max(&samples[k])),
            "ratio_to_verify": round2(ratio(med[k])),
        }));
    }
    let bound = 1.0 / (1.0 / med[0] + 1.0 / med[4]);
    let _ = writeln!(
        text,
        "   * uses a second core; every other row runs on one thread. One-thread bound for \
         verify-then-store: 1 / (1/verify + 1/store-only) = {bound:.0} msgs/s ({:.1} % of verify).",
        ratio(bound) * 100.0
    );
    let json = json!({
        "params": {
            "messages": n, "messages_per_row_path": n_row, "authors": 64, "batch": BATCH,
            "rounds": rounds, "avg_body_bytes": avg_body, "avg_signed_bytes": avg_signed,
            "synchronous": "FULL", "journal": "WAL",
        },
        "rows": rows,
        "goal_ratio": GOAL_RATIO,
        "ratio_batched": round2(ratio(med[1])),
        "ratio_per_row": round2(ratio(med[2])),
        "ratio_pipelined_2_threads": round2(ratio(med[3])),
        "one_thread_bound_ratio": round2(ratio(bound)),
        "goal_met_batched": ratio(med[1]) >= GOAL_RATIO,
        "goal_met_per_row": ratio(med[2]) >= GOAL_RATIO,
    });
    Ok(Section { text, json })
}
