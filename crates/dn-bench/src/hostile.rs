//! Section 7: one hostile peer against one node, timed (issue #9, "under attack").
//!
//! The setup of the netns test `tests/tests/hostile.rs`, on one bridge: node 1 (the victim)
//! holds 8,000 seeded messages in `ops`; node 2 is an honest peer that chats with node 1 in
//! `chat`; hosts 3 and 4 run no node but take turns running `dn-hostile` (the real protocol
//! over real QUIC/TLS with keys of its own; one attacker at a time, see [`ATTACKER_HOSTS`]). First an idle phase (no attacker), then one phase per attack
//! of [`dn_tests::hostile::ATTACKS`], all of the same length. During each phase, on the victim:
//!
//! - VmRSS from `/proc/<pid>/status` every [`RSS_EVERY`] (peak and mean);
//! - the `status` round trip over the victim's control socket, measured in this process (a
//!   Unix socket is reached by path, so no namespace is entered and no process started);
//! - the honest latency: node 2 sends to `chat` every [`HONEST_EVERY`] (over its control
//!   socket; its send time is in the body); a message's latency is node 1's own `received_at`
//!   minus the message's signed `timestamp` (the same host clock, 1 ms resolution, so the
//!   moment this runner reads node 1's log adds nothing);
//! - node 1's CPU time (utime + stime from `/proc/<pid>/stat`) over the phase;
//! - the drops node 1 counted (`status` → `drops`, the delta over the phase).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dn_node::api::Request;
use dn_tests::disasternet::Cluster;
use dn_tests::Lab;
use serde_json::{json, Value};

use dn_tests::hostile::{CHAT, ROOM, SEEDED};

use crate::{round2, stats, Ctx, Section};

/// Length of every phase (idle and each attack) in a normal run: long enough for a few
/// hundred status probes and 75 honest messages per phase, short enough that 12 phases plus
/// setup stay within [`BUDGET`].
const PHASE: Duration = Duration::from_secs(15);
/// Length of every phase with `--quick` (the whole section then stays within
/// [`QUICK_BUDGET`]).
const QUICK_PHASE: Duration = Duration::from_secs(4);
/// Whole-section budget of a normal run (the brief's bound: 5 minutes).
const BUDGET: Duration = Duration::from_secs(300);
/// Whole-section budget with `--quick`.
const QUICK_BUDGET: Duration = Duration::from_secs(90);
/// VmRSS sampling period (the figure: 4 samples a second).
const RSS_EVERY: Duration = Duration::from_millis(250);
/// Pause between two status probes (each probe waits for its answer first): ≈ 100 samples a
/// phase on an idle node, enough for a p99.
const STATUS_GAP: Duration = Duration::from_millis(100);
/// How often node 2 sends an honest message (the brief's figure: 5 a second).
const HONEST_EVERY: Duration = Duration::from_millis(200);
/// Time limit of one control-socket read or write: a starved core answers late, and a probe
/// that waits longer than this is counted as failed rather than hanging the section.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);
/// After a phase, how long node 1 gets to hold every honest message of it; what is still
/// missing then is reported as not delivered.
const DELIVERY_GRACE: Duration = Duration::from_secs(10);
/// How long `dn-hostile` gets to exit after its own `--seconds` ran out (it closes its
/// connections on the way out).
const ATTACKER_EXIT: Duration = Duration::from_secs(20);
/// Pause between phases, so that one attack's aftermath (queues draining) is not measured as
/// the next one's.
const SETTLE: Duration = Duration::from_secs(1);
/// The lab hosts that run `dn-hostile`, taking turns (one attacker at a time). An attacker's
/// connections outlive its process until the victim's QUIC idle timeout (8 s) closes them, and
/// while they stand the victim's per-address cap refuses the next attacker from that address
/// (measured: forge-held refused right after `connections` from the same host). Two hosts
/// taking turns leave each one's dead connections a whole phase to expire.
const ATTACKER_HOSTS: [usize; 2] = [3, 4];
/// Before an attack, how long node 1 may take to drop its last connection from that
/// attacker host: the idle timeout plus a margin.
const QUIET_BOUND: Duration = Duration::from_secs(15);
/// Messages node 1 writes in `chat` at setup: the forge-held attacker claims to hold them.
const OWN_MESSAGES: usize = 5;

fn skipped(reason: &str) -> Section {
    Section {
        text: format!(
            "== 7. Under attack: one hostile peer (network namespaces)\n   skipped: {reason}\n"
        ),
        json: json!({ "skipped": reason }),
    }
}

/// One request over a node's control socket (the CLI's protocol: a JSON line out, a JSON line
/// back), blocking, with [`CONTROL_TIMEOUT`] on each read and write.
pub(crate) fn control(data_dir: &Path, req: &Request) -> Result<Value> {
    let path = dn_node::control::socket_path(data_dir);
    let mut s =
        UnixStream::connect(&path).with_context(|| format!("connecting to {}", path.display()))?;
    s.set_read_timeout(Some(CONTROL_TIMEOUT))?;
    s.set_write_timeout(Some(CONTROL_TIMEOUT))?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    s.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(&s).read_line(&mut answer)?;
    parse_answer(&answer)
}

/// `{"ok": v}` → `v`; `{"error": e}` → an error naming `e`.
fn parse_answer(line: &str) -> Result<Value> {
    let v: Value = serde_json::from_str(line.trim())
        .with_context(|| format!("unreadable control answer {line:?}"))?;
    match (v.get("ok"), v.get("error")) {
        (Some(ok), _) => Ok(ok.clone()),
        (None, Some(e)) => bail!("node answered an error: {e}"),
        (None, None) => bail!("control answer with neither ok nor error: {v}"),
    }
}

/// utime + stime (clock ticks) from the text of `/proc/<pid>/stat`. The command name (field
/// 2) may hold spaces and parentheses, so fields are counted after its last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU seconds used so far by `pid`.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let ticks = parse_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    let hz = rustix::param::clock_ticks_per_second();
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// Per-reason increase of the `drops` counters between two `status` answers; reasons that
/// did not grow are left out.
fn drops_delta(before: &Value, after: &Value) -> BTreeMap<String, u64> {
    let Some(after) = after["drops"].as_object() else {
        return BTreeMap::new();
    };
    after
        .iter()
        .filter_map(|(reason, n)| {
            let d = n
                .as_u64()?
                .saturating_sub(before["drops"][reason].as_u64().unwrap_or(0));
            (d > 0).then(|| (reason.clone(), d))
        })
        .collect()
}

/// The last JSON object line of a `dn-hostile` log (its report), if any.
fn attacker_report(log: &Path) -> Value {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .rev()
        .find_map(|l| {
            l.starts_with('{')
                .then(|| serde_json::from_str(l).ok())
                .flatten()
        })
        .unwrap_or(Value::Null)
}

/// Why `dn-hostile` failed: the first `Error:` line of its log, else its exit status.
fn attacker_error(log: &Path, st: std::process::ExitStatus) -> String {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Error:"))
        .map_or_else(|| format!("exited with {st}"), str::to_owned)
}

/// Connected peers in a `peers` answer with an address on `ip`.
fn connected_from(peers: &Value, ip: &str) -> usize {
    let prefix = format!("{ip}:");
    peers.as_array().map_or(0, |a| {
        a.iter()
            .filter(|p| p["connected"] == Value::Bool(true))
            .filter(|p| {
                p["addresses"].as_array().is_some_and(|addrs| {
                    addrs
                        .iter()
                        .any(|x| x.as_str().is_some_and(|x| x.starts_with(&prefix)))
                })
            })
            .count()
    })
}

/// Waits (at most [`QUIET_BOUND`]) until node 1 has no connected peer at `ip` (the attacker
/// host about to attack); returns how long that took. Past the bound the phase runs anyway
/// (its attacker may then be refused, which the phase reports).
fn wait_quiet(dir1: &Path, ip: &str) -> f64 {
    let t = Instant::now();
    while t.elapsed() < QUIET_BOUND {
        let lingering = control(dir1, &Request::Peers)
            .map(|v| connected_from(&v, ip))
            .unwrap_or(usize::MAX);
        if lingering == 0 {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    t.elapsed().as_secs_f64()
}

/// What was measured in one phase.
struct Phase {
    name: String,
    rss_kib: Vec<u64>,
    /// VmHWM (lifetime peak) at the end of the phase: catches a spike between two samples.
    hwm_kib: u64,
    cpu_s: f64,
    wall_s: f64,
    status_ms: Vec<f64>,
    status_failed: usize,
    sent: usize,
    send_failed: usize,
    latency_ms: Vec<f64>,
    drops: BTreeMap<String, u64>,
    attacker: Value,
    /// Set when `dn-hostile` exited non-zero (its error line): the attack did not run as
    /// planned and the phase is not a measurement of it.
    attacker_failed: Option<String>,
    /// How long node 1 took, before this phase, to drop its connections from this phase's
    /// attacker host.
    quiet_s: f64,
    /// Nodes and links of node 1's network graph (`status` → `network`) at the end of the
    /// phase, and the size of that `status` answer: what a status round trip carries.
    graph: (usize, usize, usize),
}

impl Phase {
    fn rss_peak(&self) -> u64 {
        self.rss_kib.iter().copied().max().unwrap_or(0)
    }

    fn rss_mean(&self) -> f64 {
        if self.rss_kib.is_empty() {
            0.0
        } else {
            self.rss_kib.iter().sum::<u64>() as f64 / self.rss_kib.len() as f64
        }
    }

    fn cpu_pct(&self) -> f64 {
        if self.wall_s > 0.0 {
            100.0 * self.cpu_s / self.wall_s
        } else {
            0.0
        }
    }

    fn json(&self) -> Value {
        json!({
            "phase": self.name,
            "rss_peak_kib": self.rss_peak(),
            "rss_mean_kib": round2(self.rss_mean()),
            "rss_samples": self.rss_kib.len(),
            "vm_hwm_kib_at_end": self.hwm_kib,
            "cpu_s": round2(self.cpu_s),
            "cpu_pct_of_one_core": round2(self.cpu_pct()),
            "wall_s": round2(self.wall_s),
            "status_rtt_ms": {
                "samples": self.status_ms.len(),
                "failed": self.status_failed,
                "p50": round2(stats::pct(&self.status_ms, 0.5)),
                "p99": round2(stats::pct(&self.status_ms, 0.99)),
                "max": round2(stats::max(&self.status_ms)),
            },
            "honest": {
                "sent": self.sent,
                "send_failed": self.send_failed,
                "delivered": self.latency_ms.len(),
                "latency_p50_ms": stats::pct(&self.latency_ms, 0.5),
                "latency_p99_ms": stats::pct(&self.latency_ms, 0.99),
                "latency_max_ms": stats::max(&self.latency_ms),
            },
            "drops": self.drops,
            "attacker_report": self.attacker,
            "attacker_failed": self.attacker_failed,
            "quiet_wait_s": round2(self.quiet_s),
            "graph_at_end": {
                "nodes": self.graph.0, "links": self.graph.1, "status_json_bytes": self.graph.2,
            },
        })
    }
}

/// Everything a phase needs to know about the two nodes.
struct Nodes {
    pid: u32,
    dir1: PathBuf,
    dir2: PathBuf,
}

/// Runs one phase of `len`: `attacker` (already spawned, or `None` for idle) does its work
/// while this measures; then waits for the attacker to exit and for the honest messages.
fn measure(
    c: &mut Cluster,
    n: &Nodes,
    name: &str,
    len: Duration,
    attacker: Option<(dn_tests::Proc, PathBuf)>,
) -> Result<Phase> {
    let before = control(&n.dir1, &Request::Status).context("status of node 1 before")?;
    let cpu0 = cpu_seconds(n.pid).context("reading node 1's CPU time")?;
    let started = Instant::now();
    let stop = AtomicBool::new(false);
    let (rss_kib, (status_ms, status_failed), sends) = thread::scope(|s| {
        let rss = s.spawn(|| {
            let mut v = Vec::new();
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if let Ok((rss, _)) = dn_tests::mem_kb(n.pid) {
                    v.push(rss);
                }
                next += RSS_EVERY;
                thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            v
        });
        let status = s.spawn(|| {
            let (mut ok, mut failed) = (Vec::new(), 0usize);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match control(&n.dir1, &Request::Status) {
                    Ok(v) if v["running"] == Value::Bool(true) => {
                        ok.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => failed += 1,
                }
                thread::sleep(STATUS_GAP);
            }
            (ok, failed)
        });
        let honest = s.spawn(|| {
            // (id, signed timestamp) of every message node 2 wrote, and the failed sends.
            let (mut sent, mut failed) = (Vec::new(), 0usize);
            let mut next = Instant::now();
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                let req = Request::Send {
                    room: CHAT.into(),
                    body: format!("honest {name} {k} sent_at_ms={}", dn_tests::now_ms()),
                    urgent: false,
                };
                match control(&n.dir2, &req) {
                    Ok(v) => match (v["id"].as_str(), v["timestamp"].as_u64()) {
                        (Some(id), Some(ts)) => sent.push((id.to_owned(), ts)),
                        _ => failed += 1,
                    },
                    Err(_) => failed += 1,
                }
                next += HONEST_EVERY;
                thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            (sent, failed)
        });
        thread::sleep(len);
        stop.store(true, Ordering::Relaxed);
        let panicked = |what: &str| anyhow::anyhow!("the {what} thread of {name} panicked");
        Ok::<_, anyhow::Error>((
            rss.join().map_err(|_| panicked("VmRSS sampler"))?,
            status.join().map_err(|_| panicked("status probe"))?,
            honest.join().map_err(|_| panicked("honest sender"))?,
        ))
    })?;
    let wall_s = started.elapsed().as_secs_f64();
    let cpu_s = cpu_seconds(n.pid).map_or(0.0, |t| t - cpu0);
    let hwm_kib = dn_tests::mem_kb(n.pid).map_or(0, |(_, hwm)| hwm);
    let (report, attacker_failed) = match attacker {
        Some((mut proc, log)) => {
            let Some(st) = proc.wait_exit(ATTACKER_EXIT)? else {
                proc.kill()?;
                bail!("dn-hostile ({name}) did not stop within {ATTACKER_EXIT:?} of its end");
            };
            let failed = (!st.success()).then(|| attacker_error(&log, st));
            (attacker_report(&log), failed)
        }
        None => (Value::Null, None),
    };
    c.check_alive()
        .with_context(|| format!("node died during {name}"))?;
    // Honest delivery: node 1's received_at minus the signed timestamp.
    let (sent, send_failed) = sends;
    let deadline = Instant::now() + DELIVERY_GRACE;
    let mut latency_ms;
    loop {
        let log = control(
            &n.dir1,
            &Request::Messages {
                room: CHAT.into(),
                limit: 1000,
                before: None,
            },
        )?;
        let got: HashMap<&str, u64> = log
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| Some((m["id"].as_str()?, m["received_at"].as_u64()?)))
                    .collect()
            })
            .unwrap_or_default();
        latency_ms = sent
            .iter()
            .filter_map(|(id, ts)| got.get(id.as_str()).map(|r| r.saturating_sub(*ts) as f64))
            .collect::<Vec<_>>();
        if latency_ms.len() == sent.len() || Instant::now() >= deadline {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let after = control(&n.dir1, &Request::Status).context("status of node 1 after")?;
    Ok(Phase {
        name: name.to_owned(),
        rss_kib,
        hwm_kib,
        cpu_s,
        wall_s,
        status_ms,
        status_failed,
        sent: sent.len(),
        send_failed,
        latency_ms,
        drops: drops_delta(&before, &after),
        attacker: report,
        attacker_failed,
        quiet_s: 0.0,
        graph: (
            after["network"]["nodes"].as_array().map_or(0, Vec::len),
            after["network"]["links"].as_array().map_or(0, Vec::len),
            after.to_string().len(),
        ),
    })
}

pub(crate) fn run(ctx: &Ctx) -> Result<Section> {
    if let Some(why) = crate::netns_precheck(ctx)? {
        return Ok(skipped(why));
    }
    let hostile_bin = ctx
        .disasternet
        .parent()
        .map(|d| d.join("dn-hostile"))
        .filter(|p| p.is_file())
        .with_context(|| {
            format!(
                "dn-hostile not found next to {}: build it with `cargo build --release -p \
                 dn-tests` (the same target dir as disasternet)",
                ctx.disasternet.display()
            )
        })?;
    let (phase, budget) = if ctx.quick {
        (QUICK_PHASE, QUICK_BUDGET)
    } else {
        (PHASE, BUDGET)
    };
    let started = Instant::now();
    std::env::set_var("DISASTERNET_BIN", &ctx.disasternet);
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "info");
    }
    ctx.note("hostile: creating 4 namespaces, seeding the victim ...");
    let Some(mut c) = Cluster::with_lab("bench_hostile", || {
        Lab::with_networks(1, &[&[0], &[0], &[0], &[0]])
    })?
    else {
        return Ok(skipped("needs root"));
    };
    let catch_up_s = dn_tests::hostile::start_victim_and_honest(&mut c)?.as_secs_f64();
    let n = Nodes {
        pid: c
            .node(1)
            .proc
            .as_ref()
            .map(dn_tests::Proc::pid)
            .context("node1 has no process")?,
        dir1: c.node(1).data_dir.clone(),
        dir2: c.node(2).data_dir.clone(),
    };
    let mut own_ids = Vec::new();
    for k in 0..OWN_MESSAGES {
        let v = control(
            &n.dir1,
            &Request::Send {
                room: CHAT.into(),
                body: format!("victim {k}"),
                urgent: false,
            },
        )?;
        own_ids.push(v["id"].as_str().unwrap_or_default().to_owned());
    }
    thread::sleep(SETTLE);
    let target = format!("{}:7300", c.lab.host(1).links[0].ip);
    let secs = phase.as_secs().to_string();

    ctx.note(&format!("hostile: idle phase ({secs} s) ..."));
    let mut phases = vec![measure(&mut c, &n, "idle", phase, None)?];
    let mut not_run = Vec::new();
    // DN_HOSTILE_ONLY=a,b times only those attacks (as in the netns test).
    let only: Vec<String> = std::env::var("DN_HOSTILE_ONLY")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    for (k, attack) in dn_tests::hostile::ATTACKS.iter().enumerate() {
        if !only.is_empty() && !only.iter().any(|o| o == attack) {
            continue;
        }
        let host = ATTACKER_HOSTS[k % ATTACKER_HOSTS.len()];
        // A phase costs its length plus the settle, delivery and exit waits (≈ 2 s when the
        // node keeps up): stop before the budget would be overrun.
        if started.elapsed() + phase + SETTLE + Duration::from_secs(2) > budget {
            not_run.push(*attack);
            continue;
        }
        let quiet_s = wait_quiet(&n.dir1, &c.lab.host(host).links[0].ip.to_string());
        thread::sleep(SETTLE);
        ctx.note(&format!(
            "hostile: attack {attack} ({secs} s; quiet after {quiet_s:.1} s) ..."
        ));
        let log = c.out_dir.join(format!("hostile-{attack}.log"));
        let mut cmd = c.lab.command(host, &hostile_bin);
        cmd.args([
            "--target",
            &target,
            "--attack",
            attack,
            "--seconds",
            &secs,
            "--room",
            ROOM,
            "--room",
            CHAT,
        ]);
        if *attack == "forge-held" {
            cmd.env("DN_HOSTILE_IDS", own_ids.join(","));
        }
        let proc = c.lab.spawn(&format!("hostile-{attack}"), cmd, &log)?;
        let mut p = measure(&mut c, &n, attack, phase, Some((proc, log)))?;
        p.quiet_s = quiet_s;
        phases.push(p);
    }
    c.stop(1)?;
    c.stop(2)?;
    let wall = started.elapsed().as_secs_f64();
    Ok(render(&phases, &not_run, phase, catch_up_s, wall))
}

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

fn render(
    phases: &[Phase],
    not_run: &[&str],
    phase: Duration,
    catch_up_s: f64,
    wall: f64,
) -> Section {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "== 7. Under attack: one hostile peer (network namespaces, real nodes)"
    );
    let _ = writeln!(
        text,
        "   4 namespaces on one bridge: node 1 (victim, {SEEDED} messages seeded in `{ROOM}`), \
         node 2 (honest, chats in `{CHAT}`), hosts 3 and 4 take turns running `dn-hostile \
         --room {ROOM} --room {CHAT}` (one attacker at a time); release binaries, RUST_LOG={}; node 2 caught up on the seeded history in \
         {catch_up_s:.1} s. Each phase {} s: VmRSS every {} ms; `status` round trip over node \
         1's control socket from this process (no process start); node 2 sends every {} ms, \
         latency = node 1's received_at − signed timestamp; CPU = utime+stime of node 1 over \
         the phase (% of one core); drops = node 1's `drops` counters, delta over the phase.",
        std::env::var("RUST_LOG").unwrap_or_default(),
        phase.as_secs(),
        RSS_EVERY.as_millis(),
        HONEST_EVERY.as_millis(),
    );
    let _ = writeln!(
        text,
        "   {:<13} {:>9} {:>9} {:>6} {:>22} {:>9} {:>16}  drops counted",
        "phase", "RSS peak", "RSS mean", "CPU", "status p50/p99/max ms", "honest", "lat p50/p99 ms"
    );
    let idle_mean = phases.first().map_or(0.0, Phase::rss_mean);
    for p in phases {
        let drops = if p.drops.is_empty() {
            "—".to_owned()
        } else {
            p.drops
                .iter()
                .map(|(r, n)| format!("{r}={n}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(
            text,
            "   {:<13} {:>5.1} MiB {:>5.1} MiB {:>5.0}% {:>8.1}/{:.1}/{:.1}{} {:>5}/{:<3} {:>8.0}/{:<7.0}  {}",
            p.name,
            mib(p.rss_peak() as f64),
            mib(p.rss_mean()),
            p.cpu_pct(),
            stats::pct(&p.status_ms, 0.5),
            stats::pct(&p.status_ms, 0.99),
            stats::max(&p.status_ms),
            if p.status_failed > 0 {
                format!(" ({} failed)", p.status_failed)
            } else {
                String::new()
            },
            p.latency_ms.len(),
            p.sent,
            stats::pct(&p.latency_ms, 0.5),
            stats::pct(&p.latency_ms, 0.99),
            drops
        );
    }
    let worst = phases
        .iter()
        .max_by(|a, b| a.rss_peak().cmp(&b.rss_peak()))
        .map(|p| (p.name.as_str(), mib(p.rss_peak() as f64 - idle_mean)));
    if let Some((name, over)) = worst {
        let _ = writeln!(
            text,
            "   highest peak: {name}, {over:.1} MiB over the idle mean ({:.1} MiB).",
            mib(idle_mean)
        );
    }
    let _ = writeln!(
        text,
        "   attacker (dn-hostile's own report): frames/packets sent, MB sent, connections up / \
         refused; wait for node 1 to drop the attacker host's last connections before the phase; node 1's \
         network graph and status answer size after the phase:"
    );
    for p in phases.iter().skip(1) {
        let a = &p.attacker;
        let _ = writeln!(
            text,
            "   {:<13} sent {:>9} {:>8.1} MB {:>4} up {:>4} refused  quiet after {:.1} s  \
             graph after: {} nodes, status {:.0} KB{}",
            p.name,
            a["sent"].as_u64().unwrap_or(0),
            a["bytes"].as_u64().unwrap_or(0) as f64 / 1e6,
            a["connections"].as_u64().unwrap_or(0),
            a["refused"].as_u64().unwrap_or(0),
            p.quiet_s,
            p.graph.0,
            p.graph.2 as f64 / 1e3,
            p.attacker_failed
                .as_ref()
                .map_or_else(String::new, |e| format!("  ATTACKER FAILED: {e}"))
        );
    }
    if !not_run.is_empty() {
        let _ = writeln!(
            text,
            "   NOT RUN (section budget reached): {}",
            not_run.join(", ")
        );
    }
    let json = json!({
        "params": {
            "seeded": SEEDED, "phase_s": phase.as_secs(),
            "rss_every_ms": RSS_EVERY.as_millis() as u64,
            "status_gap_ms": STATUS_GAP.as_millis() as u64,
            "honest_every_ms": HONEST_EVERY.as_millis() as u64,
            "status_rtt": "in-process over the control socket (no process start)",
        },
        "catch_up_s": round2(catch_up_s),
        "phases": phases.iter().map(Phase::json).collect::<Vec<_>>(),
        "not_run": not_run,
        "section_wall_s": round2(wall),
    });
    Section { text, json }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_the_command_name() {
        // A command name with spaces and a ')' must not shift the fields.
        let stat = "4242 (dis a) ster)net) S 1 4242 4242 0 -1 4194560 2000 0 0 0 \
                    150 37 0 0 20 0 9 0 100 200000000 3000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(187));
        assert_eq!(parse_cpu_ticks("4242 (short) S 1"), None);
        assert_eq!(parse_cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn cpu_time_of_this_process_is_readable() {
        let t = cpu_seconds(std::process::id()).expect("own /proc/<pid>/stat");
        assert!(t >= 0.0);
    }

    #[test]
    fn vm_rss_and_hwm_are_found() {
        let (rss, hwm) = dn_tests::mem_kb(std::process::id()).expect("own /proc/<pid>/status");
        assert!(rss > 0 && hwm >= rss, "rss {rss}, hwm {hwm}");
    }

    #[test]
    fn drops_delta_lists_only_what_grew() {
        let before = json!({ "drops": { "rate_limited": 5, "quota_peer": 2 } });
        let after = json!({ "drops": { "rate_limited": 9, "quota_peer": 2, "topo_cap": 3 } });
        let d = drops_delta(&before, &after);
        assert_eq!(
            d.into_iter().collect::<Vec<_>>(),
            vec![("rate_limited".to_owned(), 4), ("topo_cap".to_owned(), 3)]
        );
        assert!(drops_delta(&before, &json!({})).is_empty());
    }

    #[test]
    fn control_answers_are_unwrapped() {
        assert_eq!(
            parse_answer("{\"ok\":{\"running\":true}}\n").unwrap(),
            json!({ "running": true })
        );
        assert_eq!(parse_answer("{\"ok\":null}").unwrap(), Value::Null);
        let e = parse_answer("{\"error\":{\"code\":\"io\",\"message\":\"x\"}}").unwrap_err();
        assert!(e.to_string().contains("error"), "{e}");
        assert!(parse_answer("garbage").is_err());
        assert!(parse_answer("{}").is_err());
    }

    #[test]
    fn status_request_is_the_clis() {
        // The control socket expects the CLI's request shape.
        assert_eq!(
            serde_json::to_value(Request::Status).unwrap(),
            json!({ "op": "status" })
        );
    }

    #[test]
    fn lingering_connections_are_found_by_address() {
        let peers = json!([
            { "connected": true, "addresses": ["10.77.1.2:7300"] },
            { "connected": true, "addresses": ["10.77.1.3:40001", "10.77.1.30:7300"] },
            { "connected": true, "addresses": ["10.77.1.3:40002"] },
            { "connected": false, "addresses": ["10.77.1.3:40003"] },
            { "connected": true, "addresses": ["10.77.1.30:5"] },
        ]);
        assert_eq!(connected_from(&peers, "10.77.1.3"), 2);
        assert_eq!(connected_from(&peers, "10.77.1.2"), 1);
        assert_eq!(connected_from(&peers, "10.77.1.4"), 0);
        assert_eq!(connected_from(&json!(null), "10.77.1.3"), 0);
    }

    #[test]
    fn attacker_report_is_the_last_json_line() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("a.log");
        std::fs::write(
            &log,
            "=== harness 1 ms: start\nnoise {\n{\"sent\":1}\n{\"sent\":7,\"refused\":0}\n",
        )
        .unwrap();
        assert_eq!(attacker_report(&log)["sent"], 7);
        assert_eq!(attacker_report(&d.path().join("none")), Value::Null);
    }
}
