//! # dn-bench — DisasterNet's benchmark runner
//!
//! One binary, fourteen sections, each printed with its exact parameters beside its goal and the
//! peers' published numbers (`/work/shared/notes/ANCHORS.md`, `docs/benchmarks.md`):
//!
//! 1. `sim` — propagation in the deterministic simulator (`dn_proto::sim`): tree vs flooding.
//! 2. `recon` — catch-up bytes of set reconciliation (`dn_proto::recon::figures`).
//! 3. `ingest` — raw Ed25519 verify rate vs verify + store into a real SQLite file, batched
//!    (`Store::insert_messages`) and one row per transaction (`Storage::insert`, today's path).
//! 4. `node` — the real headless `disasternet node`: idle memory on an empty and a 100k store,
//!    start time, and `log --limit 100` latency.
//! 5. `live` — propagation latency between real nodes in network namespaces (root only).
//! 6. `app` — the real desktop app (release build) under Xvfb on a 100k-message store: window
//!    to interactive and idle memory of the app and all its WebKit processes, and the same
//!    data dir locked with a passphrase: spawn → unlock screen, Unlock → interactive, and the
//!    locked start beside the unlocked one (needs Xvfb, tauri-driver, WebKitWebDriver and
//!    `tests/gui/node_modules`: `make deps`).
//! 7. `hostile` — one hostile peer (`dn-hostile`, next to the `disasternet` binary) against a
//!    real node in network namespaces (root only): the victim's memory, CPU, `status` round
//!    trip, honest-peer latency and counted drops, idle and under each attack.
//! 8. `carry` — the carry quota's housekeeping tick on a real store: measuring usage, and
//!    evicting the oldest when over (`dn_proto::protocol::evict`).
//!
//! (docs/benchmarks.md §9 compares two commits; it is not a section here.)
//!
//! 10. `atrest` — a data directory locked with a passphrase beside an unlocked one: ingest rate
//!     into an encrypted store, and the start of the real `disasternet` on 100k messages.
//! 11. `private` — reading a private room (sealed messages opened when shown) beside an open
//!     room of the same size, through the engine.
//! 12. `relay` — a relay (`disasternet node --relay`) on a store of 1,000,000 carried
//!     messages: start time, idle memory, and the catch-up of a laptop that joins one room.
//! 13. `urgent` — two real nodes on loopback: while one catches up 50,000 messages from the
//!     other, urgent messages written at the other reach it (write → stored, p50/p99).
//! 14. `bundle` — a bundle of 100,000 messages exported by one camp's CLI and imported by
//!     another's, then imported again (time, rate, file size, peak memory).
//! 15. `scale` — 20, 50 and 100 real nodes in network namespaces on one bridge (root only):
//!     time until every node lists every other, connections, idle traffic, CPU and memory per
//!     node, and a burst from changing senders (convergence, copies per node per message,
//!     wire bytes ÷ payload bytes). Raises the kernel's neighbour-table limits while it runs.
//!
//! Run figures from a release build: `cargo build --release -p disasternet-cli -p dn-bench`
//! then `target/release/dn-bench` (or `cargo run --release -p dn-bench`). `--quick` runs
//! smaller versions; `--json` prints one JSON object instead of text; `--only sim,recon`
//! picks sections. The `hostile` section also needs `dn-hostile`: add `-p dn-tests` to the
//! build.
//!
//! Network traffic stays on loopback (the host node listens on 127.0.0.1 with mDNS and the
//! broadcast beacon off) or inside the network namespaces the `live`, `hostile` and `scale`
//! sections create.
//!
//! Linux only (`/proc`, network namespaces, Xvfb): on other platforms this library is empty
//! and the binary says so, so that the workspace checks for every target.

#![cfg(target_os = "linux")]

mod app;
mod atrest;
mod bundle;
mod carry;
mod fixtures;
mod hostile;
mod ingest;
mod live;
mod node;
mod private;
mod recon;
mod relay;
mod scale;
mod sim;
mod stats;
mod urgent;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use serde_json::{json, Map, Value};

/// Every section, in run order.
const SECTIONS: [&str; 14] = [
    "sim", "recon", "ingest", "node", "live", "app", "hostile", "carry", "atrest", "private",
    "relay", "urgent", "bundle", "scale",
];

#[derive(Parser)]
#[command(
    name = "dn-bench",
    about = "DisasterNet benchmarks (build with --release for real figures)"
)]
struct Args {
    /// Print one JSON object with every section instead of text.
    #[arg(long)]
    json: bool,
    /// Smaller, faster runs (for CI smoke checks; not the figures of record).
    #[arg(long)]
    quick: bool,
    /// Comma-separated sections to run: sim, recon, ingest, node, live, app, hostile,
    /// carry, atrest, private, relay, urgent, bundle, scale (default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Comma-separated host counts for the `scale` section (default: 20,50,100; with
    /// `--quick`: 20).
    #[arg(long, value_delimiter = ',')]
    scale_sizes: Vec<usize>,
    /// The `disasternet` binary for the `node`, `live` and `hostile` sections (default:
    /// `$CARGO_TARGET_DIR/release/disasternet` or `target/release/disasternet`). `hostile`
    /// takes `dn-hostile` from the same directory.
    #[arg(long, env = "DN_BENCH_DISASTERNET")]
    disasternet: Option<PathBuf>,
    /// The desktop app binary for the `app` section (default:
    /// `$CARGO_TARGET_DIR/release/disasternet-app` or `target/release/disasternet-app`).
    #[arg(long, env = "DN_BENCH_APP")]
    app: Option<PathBuf>,
    #[command(subcommand)]
    helper: Option<Helper>,
}

/// Helpers the `live` section runs inside a network namespace (`ip netns exec … dn-bench …`).
#[derive(Subcommand)]
enum Helper {
    /// Echo UDP datagrams on ADDR for at most SECONDS.
    #[command(hide = true)]
    UdpEcho {
        /// Address to bind.
        addr: String,
        /// Lifetime in seconds.
        seconds: u64,
    },
    /// Measure COUNT UDP round trips to an echo at ADDR; prints a JSON array of microseconds.
    #[command(hide = true)]
    UdpRtt {
        /// Echo address.
        addr: String,
        /// Round trips to measure.
        count: usize,
    },
    /// Prepare a data dir as the `app` section does (name set, N messages in one joined
    /// room), to look at the app by hand: `disasternet-app --data-dir DIR --no-mdns …`.
    #[command(hide = true)]
    PrepareAppDir {
        /// Data dir to create (must not hold a store yet).
        dir: PathBuf,
        /// Messages to store.
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
        /// Then lock it with the `app` section's passphrase (printed), as its locked runs do.
        #[arg(long)]
        locked: bool,
    },
}

/// Options every section sees.
pub(crate) struct Ctx {
    pub(crate) quick: bool,
    /// Progress and section text go to stdout unless `--json`.
    pub(crate) json: bool,
    pub(crate) disasternet: PathBuf,
    /// The desktop app binary for the `app` section.
    pub(crate) app: PathBuf,
    /// Host counts for the `scale` section (empty: its defaults).
    pub(crate) scale_sizes: Vec<usize>,
}

impl Ctx {
    /// Progress note on stderr (never mixed into the JSON on stdout).
    pub(crate) fn note(&self, msg: &str) {
        eprintln!("[dn-bench] {msg}");
    }
}

/// What one section produced: text for humans and the same figures as JSON.
pub(crate) struct Section {
    pub(crate) text: String,
    pub(crate) json: Value,
}

/// The `dn-bench` program (`src/main.rs` calls it): runs the sections the arguments pick.
pub fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dn-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let args = Args::parse();
    match args.helper {
        Some(Helper::UdpEcho { addr, seconds }) => return live::udp_echo(&addr, seconds),
        Some(Helper::UdpRtt { addr, count }) => return live::udp_rtt(&addr, count),
        Some(Helper::PrepareAppDir { .. }) | None => {}
    }
    for s in &args.only {
        if !SECTIONS.contains(&s.as_str()) {
            bail!("unknown section {s:?}; known: {}", SECTIONS.join(", "));
        }
    }
    let wanted = |s: &str| args.only.is_empty() || args.only.iter().any(|o| o == s);
    let disasternet = args
        .disasternet
        .clone()
        .unwrap_or_else(|| dn_tests::target_dir().join("release").join("disasternet"));
    let app = args.app.clone().unwrap_or_else(|| {
        dn_tests::target_dir()
            .join("release")
            .join("disasternet-app")
    });
    let ctx = Ctx {
        quick: args.quick,
        json: args.json,
        disasternet,
        app,
        scale_sizes: args.scale_sizes.clone(),
    };
    if let Some(Helper::PrepareAppDir {
        dir,
        messages,
        locked,
    }) = &args.helper
    {
        app::prepare_data_dir(&ctx, dir, *messages)?;
        if *locked {
            app::lock_data_dir(&ctx, dir, app::PASSPHRASE)?;
            println!("locked; passphrase: {}", app::PASSPHRASE);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let started = Instant::now();
    let machine = machine_info();
    if !ctx.json {
        println!(
            "DisasterNet benchmarks (dn-bench){}",
            if ctx.quick {
                " — QUICK run, not figures of record"
            } else {
                ""
            }
        );
        println!("{}", machine_text(&machine));
        if cfg!(debug_assertions) {
            println!("WARNING: dn-bench is a debug build; use `cargo run --release -p dn-bench` for figures.");
        }
        println!();
    }
    let mut out = Map::new();
    out.insert("machine".into(), machine);
    out.insert("quick".into(), json!(ctx.quick));
    out.insert("release_build".into(), json!(!cfg!(debug_assertions)));
    let mut failed = Vec::new();
    for name in SECTIONS {
        if !wanted(name) {
            continue;
        }
        let t = Instant::now();
        let result = match name {
            "sim" => sim::run(&ctx),
            "recon" => recon::run(&ctx),
            "ingest" => ingest::run(&ctx),
            "carry" => carry::run(&ctx),
            "private" => private::run(&ctx),
            "relay" => relay::run(&ctx),
            "node" => node::run(&ctx),
            "live" => live::run(&ctx),
            "hostile" => hostile::run(&ctx),
            "atrest" => atrest::run(&ctx),
            "urgent" => urgent::run(&ctx),
            "bundle" => bundle::run(&ctx),
            "scale" => scale::run(&ctx),
            _ => app::run(&ctx),
        };
        match result {
            Ok(section) => {
                if !ctx.json {
                    println!("{}", section.text);
                    println!("  [section took {:.1} s]\n", t.elapsed().as_secs_f64());
                }
                let mut v = section.json;
                if let Value::Object(m) = &mut v {
                    m.insert("wall_s".into(), json!(round2(t.elapsed().as_secs_f64())));
                }
                out.insert(name.into(), v);
            }
            Err(e) => {
                let msg = format!("{e:#}");
                if !ctx.json {
                    println!("== {name}: FAILED: {msg}\n");
                }
                eprintln!("dn-bench: section {name} failed: {msg}");
                out.insert(name.into(), json!({ "error": msg }));
                failed.push(name);
            }
        }
    }
    out.insert(
        "total_wall_s".into(),
        json!(round2(started.elapsed().as_secs_f64())),
    );
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&Value::Object(out))?);
    } else {
        println!("total {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Rounds to two decimals (for JSON).
/// What the sections running real nodes in network namespaces (`live`, `hostile`, `scale`)
/// need: root (else `Ok(Some(reason))`: the section is skipped) and the `disasternet` binary
/// (else an error naming the build command).
pub(crate) fn netns_precheck(ctx: &Ctx) -> Result<Option<&'static str>> {
    if !dn_tests::is_root() {
        return Ok(Some("needs root"));
    }
    if !ctx.disasternet.is_file() {
        anyhow::bail!(
            "{} not found: build it first with `cargo build --release -p disasternet-cli`",
            ctx.disasternet.display()
        );
    }
    Ok(None)
}

pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// nproc, CPU model, memory, kernel, rustc (of the build host, if on PATH).
fn machine_info() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let nproc = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let ws = dn_tests::workspace_dir();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&ws)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_default();
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    json!({
        "commit": commit,
        "worktree_modified": dirty,
        "loadavg_at_start": loadavg,
        "nproc": nproc,
        "cpu_model": model,
        "mem_gib": round2(mem_kb as f64 / 1024.0 / 1024.0),
        "kernel": kernel,
        "rustc": rustc,
    })
}

fn machine_text(m: &Value) -> String {
    format!(
        "machine: {} cores, {}, {} GiB RAM, kernel {}, {}; load average at start {}\n\
         source: commit {}{}",
        m["nproc"],
        m["cpu_model"].as_str().unwrap_or(""),
        m["mem_gib"],
        m["kernel"].as_str().unwrap_or(""),
        m["rustc"].as_str().unwrap_or(""),
        m["loadavg_at_start"].as_str().unwrap_or(""),
        m["commit"].as_str().unwrap_or("?"),
        if m["worktree_modified"] == Value::Bool(true) {
            " + uncommitted changes"
        } else {
            ""
        }
    )
}
