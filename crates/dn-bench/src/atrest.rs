//! Section 10: encryption at rest (a data directory locked with a passphrase, SQLCipher) beside
//! the unlocked figures: ingest rate (verify + store, batched) into a plain and an encrypted
//! store, and the start of the real `disasternet` on a data directory with 100k messages
//! (`status` with no node running: lock, unlock (Argon2id), open the store with its integrity
//! check, answer). Goal: locked within 15 % of unlocked.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use dn_proto::Message;
use dn_store::{Store, StoreKey};
use serde_json::json;

use crate::{fixtures, round2, stats, Ctx, Section};

/// Goal: locked ≥ 85 % of the unlocked rate, start ≤ 115 % of the unlocked time.
const GOAL: f64 = 0.85;
/// Messages per `Store::insert_messages` call (as in the ingest section).
const BATCH: usize = 256;
/// The passphrase of the locked data directory.
const PASS: &str = "bench passphrase";

fn ingest(path: &Path, key: Option<&StoreKey>, msgs: &[Message]) -> Result<f64> {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let store = Store::open_with_key(path, key)?;
    let t = Instant::now();
    for chunk in msgs.chunks(BATCH) {
        let mut batch = Vec::with_capacity(chunk.len());
        for m in chunk {
            m.verify()?;
            batch.push((m.clone(), 1, false));
        }
        store.insert_messages(&batch)?;
    }
    let secs = t.elapsed().as_secs_f64();
    ensure!(
        store.message_count(None)? == msgs.len() as u64,
        "wrong count"
    );
    Ok(msgs.len() as f64 / secs.max(1e-9))
}

fn cli(ctx: &Ctx, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Result<f64> {
    let t = Instant::now();
    let o = Command::new(&ctx.disasternet)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("DISASTERNET_PASSPHRASE")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", ctx.disasternet.display()))?;
    let secs = t.elapsed().as_secs_f64();
    if !o.status.success() {
        bail!(
            "disasternet {args:?}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(secs)
}

/// A data dir with a name, the room joined and `msgs` stored.
fn prepare(ctx: &Ctx, dir: &Path, msgs: &[Message]) -> Result<()> {
    cli(ctx, dir, &[], &["init", "--name", "bench"])?;
    cli(ctx, dir, &[], &["room", "join", fixtures::ROOM])?;
    let store = Store::open(&dir.join("store.sqlite3"))?;
    let all: Vec<_> = msgs.iter().map(|m| (m.clone(), 1, false)).collect();
    for chunk in all.chunks(5000) {
        store.insert_messages(chunk)?;
    }
    Ok(())
}

pub(crate) fn run(ctx: &Ctx) -> Result<Section> {
    if !ctx.disasternet.is_file() {
        bail!(
            "{} not found: build it first with `cargo build --release -p disasternet-cli`",
            ctx.disasternet.display()
        );
    }
    let (n_ingest, n_start, rounds) = if ctx.quick {
        (2_000, 5_000, 1)
    } else {
        (20_000, 100_000, 3)
    };
    let t0 = dn_store::system_clock_ms().saturating_sub(30 * 86_400_000);
    ctx.note(&format!("atrest: signing {n_start} messages ..."));
    let msgs = fixtures::messages(n_start.max(n_ingest), 64, t0)?;
    let tmp = tempfile::Builder::new()
        .prefix("dn-bench-atrest-")
        .tempdir()?;
    let key = StoreKey::from_bytes([7; 32]);

    // Ingest, interleaved rounds.
    let (mut plain, mut locked) = (vec![], vec![]);
    for r in 0..rounds {
        ctx.note(&format!("atrest: ingest round {} of {rounds} ...", r + 1));
        plain.push(ingest(
            &tmp.path().join("plain.db"),
            None,
            &msgs[..n_ingest],
        )?);
        locked.push(ingest(
            &tmp.path().join("locked.db"),
            Some(&key),
            &msgs[..n_ingest],
        )?);
    }
    let (ip, il) = (stats::pct(&plain, 0.5), stats::pct(&locked, 0.5));

    // Start of the real binary on n_start messages.
    ctx.note("atrest: preparing two data dirs ...");
    let pd = tmp.path().join("plain-dir");
    let ld = tmp.path().join("locked-dir");
    prepare(ctx, &pd, &msgs[..n_start])?;
    prepare(ctx, &ld, &msgs[..n_start])?;
    let switch_s = cli(
        ctx,
        &ld,
        &[("DISASTERNET_NEW_PASSPHRASE", PASS)],
        &["passphrase", "set"],
    )?;
    let env = [("DISASTERNET_PASSPHRASE", PASS)];
    let (mut sp, mut sl) = (vec![], vec![]);
    for r in 0..rounds.max(3) {
        ctx.note(&format!("atrest: start round {} ...", r + 1));
        sp.push(cli(ctx, &pd, &[], &["--json", "status"])?);
        sl.push(cli(ctx, &ld, &env, &["--json", "status"])?);
    }
    let (tp, tl) = (stats::pct(&sp, 0.5), stats::pct(&sl, 0.5));
    // The share of the locked start that is the passphrase KDF itself (by design slow).
    let pass = dn_node::atrest::Passphrase::new(PASS.into());
    let t = Instant::now();
    dn_node::atrest::Kek::derive(&pass, dn_node::atrest::KdfParams::PRODUCT, [1; 16])
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let kdf_s = t.elapsed().as_secs_f64();
    let ingest_ratio = il / ip.max(1e-9);
    let start_ratio = tl / tp.max(1e-9);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };

    let mut text = String::new();
    let _ = writeln!(
        text,
        "== 10. At rest: locked (SQLCipher + Argon2id) beside unlocked"
    );
    let _ = writeln!(
        text,
        "   goal: locked within {:.0} % of unlocked. {rounds} round(s), median (min–max).",
        (1.0 - GOAL) * 100.0
    );
    let _ = writeln!(
        text,
        "   ingest, verify + insert_messages ({BATCH}), {n_ingest} msgs: unlocked {ip:.0}/s \
         ({:.0}–{:.0}), locked {il:.0}/s ({:.0}–{:.0}): {:.1} % {}",
        stats::min(&plain),
        stats::max(&plain),
        stats::min(&locked),
        stats::max(&locked),
        ingest_ratio * 100.0,
        verdict(ingest_ratio >= GOAL)
    );
    let _ = writeln!(
        text,
        "   start, `disasternet --json status` (no node; lock, unlock, open + quick_check, \
         answer) on {n_start} msgs: unlocked {:.0} ms, locked {:.0} ms: {:.1} % {}",
        tp * 1000.0,
        tl * 1000.0,
        start_ratio * 100.0,
        verdict(start_ratio <= 2.0 - GOAL)
    );
    let _ = writeln!(
        text,
        "   of which Argon2id (m = 64 MiB, t = 3, p = 1) alone: {:.0} ms; locked start without it: \
         {:.1} % of unlocked",
        kdf_s * 1000.0,
        (tl - kdf_s).max(0.0) / tp.max(1e-9) * 100.0
    );
    let _ = writeln!(
        text,
        "   turning the lock on (`passphrase set`: copy, verify, swap) on {n_start} msgs: {:.0} ms",
        switch_s * 1000.0
    );
    let json = json!({
        "params": { "ingest_messages": n_ingest, "start_messages": n_start, "rounds": rounds },
        "ingest_unlocked_per_s": round2(ip),
        "ingest_locked_per_s": round2(il),
        "ingest_ratio": round2(ingest_ratio),
        "start_unlocked_ms": round2(tp * 1000.0),
        "start_locked_ms": round2(tl * 1000.0),
        "start_ratio": round2(start_ratio),
        "passphrase_set_ms": round2(switch_s * 1000.0),
        "argon2id_ms": round2(kdf_s * 1000.0),
        "goal_met_ingest": ingest_ratio >= GOAL,
        "goal_met_start": start_ratio <= 2.0 - GOAL,
    });
    Ok(Section { text, json })
}
