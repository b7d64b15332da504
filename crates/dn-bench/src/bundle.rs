//! Section 14: bundles between camps (sneakernet). Camp A's data dir holds `rooms × per_room`
//! messages in joined rooms (5 × 20,000 = 100,000; 5 × 1,000 with `--quick`); its CLI writes
//! them all to one bundle file (`disasternet bundle export`, no node running: the CLI runs the
//! engine itself). Camp B, an empty data dir that joined the same rooms, imports the file
//! (`disasternet bundle import`): every record verified and admitted like a peer's message.
//! Then B imports it again (everything a duplicate). Measured: wall time and rate of each, the
//! file's size, and the peak resident memory of the importing process (VmHWM, read from /proc
//! while it runs).

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::node::cli;
use crate::{fixtures, round2, Ctx, Section};

fn room(i: usize) -> String {
    format!("camp-{i}")
}

/// Runs the CLI with `args` on `dir`, polling its peak memory; (seconds, VmHWM kB, stdout).
fn timed(bin: &Path, dir: &Path, args: &[&str]) -> Result<(f64, u64, Vec<u8>)> {
    let t = Instant::now();
    let mut child = Command::new(bin)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {} {}", bin.display(), args.join(" ")))?;
    let mut hwm = 0;
    while child.try_wait()?.is_none() {
        if let Ok((_, h)) = dn_tests::mem_kb(child.id()) {
            hwm = hwm.max(h);
        }
        thread::sleep(Duration::from_millis(20));
    }
    let secs = t.elapsed().as_secs_f64();
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((secs, hwm, out.stdout))
}

pub(crate) fn run(ctx: &Ctx) -> Result<Section> {
    let bin = &ctx.disasternet;
    if !bin.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release -p disasternet-cli`",
            bin.display()
        );
    }
    let (rooms, per_room) = if ctx.quick { (5, 1_000) } else { (5, 20_000) };
    let total = rooms * per_room;
    let tmp = tempfile::Builder::new()
        .prefix("dn-bench-bundle-")
        .tempdir()
        .context("creating a temp dir")?;
    let (a, b) = (tmp.path().join("camp-a"), tmp.path().join("camp-b"));
    for (dir, name) in [(&a, "camp a"), (&b, "camp b")] {
        std::fs::create_dir_all(dir)?;
        let out = cli(bin, dir, &["init", "--name", name])?;
        if !out.status.success() {
            bail!("init: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let filled = Instant::now();
    fixtures::store_rooms(ctx, &a, "bundle", rooms, per_room, room, true)?;
    let fill_s = filled.elapsed().as_secs_f64();
    for r in 0..rooms {
        let out = cli(bin, &b, &["room", "join", &room(r)])?;
        if !out.status.success() {
            bail!("room join: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let file = tmp.path().join("camp-a.dnbundle");
    let file_s = file.display().to_string();

    ctx.note(&format!("bundle: exporting {total} messages ..."));
    let (export_s, export_hwm, _) = timed(bin, &a, &["bundle", "export", &file_s])?;
    let bytes = std::fs::metadata(&file)?.len();
    ctx.note(&format!("bundle: importing {total} messages ..."));
    let (import_s, import_hwm, out) = timed(bin, &b, &["--json", "bundle", "import", &file_s])?;
    let report: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
    let imported = report["imported"].as_u64().unwrap_or(0);
    if imported != total as u64 {
        bail!("camp B imported {imported} of {total} messages: {report}");
    }
    ctx.note("bundle: importing it again (all duplicates) ...");
    let (again_s, _, out) = timed(bin, &b, &["--json", "bundle", "import", &file_s])?;
    let again: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
    let dups = again["duplicates"].as_u64().unwrap_or(0);
    if again["imported"].as_u64() != Some(0) || dups != total as u64 {
        bail!("the second import was not all duplicates: {again}");
    }

    let mut text = String::new();
    let _ = writeln!(text, "== 14. Bundles between camps: export and import");
    let _ = writeln!(
        text,
        "   camp A: {total} messages ({rooms} rooms × {per_room}, 64 authors, ≈ 200 B bodies, \
         filled in {fill_s:.1} s); `disasternet bundle export` then, on an empty camp B that \
         joined the rooms, `bundle import` twice (no node running: each CLI runs the engine)."
    );
    let _ = writeln!(
        text,
        "   export {export_s:.1} s ({:.0} msg/s, {:.1} MB file, VmHWM {:.1} MB); import \
         {import_s:.1} s ({:.0} msg/s, every record verified and admitted, VmHWM {:.1} MB); \
         again {again_s:.1} s ({dups} duplicates, {:.0} msg/s).",
        total as f64 / export_s,
        bytes as f64 / 1e6,
        export_hwm as f64 / 1024.0,
        total as f64 / import_s,
        import_hwm as f64 / 1024.0,
        total as f64 / again_s,
    );
    let json = json!({
        "params": { "messages": total, "rooms": rooms, "per_room": per_room,
                    "fill_s": round2(fill_s) },
        "bundle_bytes": bytes,
        "export_s": round2(export_s),
        "export_vm_hwm_kb": export_hwm,
        "import_s": round2(import_s),
        "import_vm_hwm_kb": import_hwm,
        "import_messages": imported,
        "reimport_s": round2(again_s),
        "reimport_duplicates": dups,
    });
    Ok(Section { text, json })
}
