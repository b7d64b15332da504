//! Section 15: scale — N real nodes in network namespaces on one bridge (issue #14, root only).
//!
//! For each size N (20, 50, 100; `--quick`: 20; `--scale-sizes` picks others) one
//! `dn_tests::Lab` of N hosts on one bridge, each running the real `disasternet node` with its
//! defaults (mDNS + broadcast beacon, bounded view, no `--peer`), everyone joined to one room.
//! Measured, from this process over each node's control socket (a Unix socket reached by path:
//! no process start per probe):
//!
//! - **listing**: from the moment the last node was spawned until each node's network graph
//!   (`status` → `network`, from the signed neighbour lists) holds every other node with a hop
//!   count ("reachable"), and until its `peers` list names every other node (at this commit
//!   `peers` lists only the peers it connected to, so with a bounded view it may never);
//! - **idle** (after everyone lists everyone, [`SETTLE`], and at least [`STEADY_AFTER`] after
//!   the last spawn, then [`IDLE`]): connections per node
//!   (`status` → `connected_peers`), wire traffic per node (sum over its links of QUIC's UDP
//!   bytes in/out from `peers` → `link`, delta over the window, and the bytes its bridge port
//!   carried, which adds mDNS, beacon and ARP), CPU per node (utime + stime) and VmRSS; also
//!   the bridge-port traffic of the start-up (last spawn → idle window: first browse, views
//!   forming, neighbour lists spreading);
//! - **burst**: after [`WARMUP`] messages (not counted), [`BURST`] messages of [`BODY`] bytes,
//!   each from a different sender (`k × 7 mod N`), [`BURST_GAP`] apart: convergence (first send
//!   until every node stores every message), per-delivery latency (`received_at` − signed
//!   `timestamp`, one host clock), copies per node per message (Δ(`payloads_received` +
//!   `duplicates`) summed over nodes ÷ (messages × (N−1))) and wire bytes ÷ payload bytes
//!   (Σ Δ link `bytes_out` ÷ (messages × [`BODY`] × (N−1)); also with the idle rate taken off);
//! - **churn** ([`churn`]): a tenth of the nodes stop, the others send [`CHURN_BURST`]
//!   messages, the stopped ones return: whether the live overlay stayed connected, the live
//!   nodes' convergence and copies, and how long until the returning nodes hold every message
//!   and every graph reaches every node again.
//!
//! The kernel's neighbour (ARP) table is shared by every namespace and its limits
//! (`net.ipv{4,6}.neigh.default.gc_thresh{1,2,3}`) exist only in the initial namespace, so they
//! are raised there for the section (never lowered) and restored afterwards ([`NeighLimits`]).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dn_node::api::Request;
use dn_tests::disasternet::Cluster;
use dn_tests::{Lab, Proc};
use serde_json::{json, Value};

use crate::hostile::{control, cpu_seconds};
use crate::{round2, stats, Ctx, Section};

/// The room every node joins.
const ROOM: &str = "scale";
/// Body size of every message (the figure).
const BODY: usize = 4096;
/// Sizes of a normal run.
const SIZES: [usize; 3] = [20, 50, 100];
/// Size of a `--quick` run.
const QUICK_SIZES: [usize; 1] = [20];
/// How long every node may take to list every other one (the goal is 10 s at 100 hosts).
const LIST_TIMEOUT: Duration = Duration::from_secs(120);
/// After every node's graph reaches every other one, how much longer `peers` may take to
/// list them all.
const LIST_GRACE: Duration = Duration::from_secs(15);
/// Pause between listing and the idle window (views settle).
const SETTLE: Duration = Duration::from_secs(10);
/// The idle window starts no earlier than this after the last spawn: discovery browses mDNS
/// for its first minute (`dn_node::pace::BROWSE_FIRST`), so the window sees the steady state.
const STEADY_AFTER: Duration = Duration::from_secs(90);
/// Idle window: longer than the longest neighbour-list refresh period of a network of up to
/// 20 nodes (1.25 × `dn_proto::protocol::TOPO_REFRESH_MS`), so there every node's periodic
/// re-signing and its flood fall into it once. Larger networks refresh less often (6 s per
/// node, `TOPO_REFRESH_PER_NODE_MS`): their window holds none (docs/benchmarks.md §15).
const IDLE: Duration = Duration::from_secs(155);
const _: () = assert!(IDLE.as_secs() * 1000 > dn_proto::protocol::TOPO_REFRESH_MS * 5 / 4);
/// Idle window with `--quick`.
const QUICK_IDLE: Duration = Duration::from_secs(10);
/// Messages sent before the measured burst (senders changing), not counted.
const WARMUP: usize = 10;
/// Messages of the measured burst.
const BURST: usize = 40;
/// Messages of the measured burst with `--quick`.
const QUICK_BURST: usize = 20;
/// Pause between two sends.
const BURST_GAP: Duration = Duration::from_millis(100);
/// How long every node may take to store every message of a burst.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(90);
/// After convergence, wait this long before reading link bytes: quinn's statistics are
/// sampled every `dn_node::health::LINK_SAMPLE_EVERY` (2 s).
const SAMPLE_WAIT: Duration = Duration::from_millis(4500);
/// Poll period while waiting.
const POLL: Duration = Duration::from_millis(200);
/// Messages sent while a tenth of the nodes is away ([`churn`]).
const CHURN_BURST: usize = 20;
/// Senders change by this stride (coprime with every size used).
const SENDER_STRIDE: usize = 7;
/// Neighbour-table limits raised for the section (PLATFORM.md).
const NEIGH: [(&str, u64); 3] = [
    ("gc_thresh1", 4096),
    ("gc_thresh2", 16384),
    ("gc_thresh3", 32768),
];

fn skipped(reason: &str) -> Section {
    Section {
        text: format!("== 15. Scale (network namespaces)\n   skipped: {reason}\n"),
        json: json!({ "skipped": reason }),
    }
}

/// The kernel's neighbour-table limits, raised while this lives and restored on drop.
pub(crate) struct NeighLimits {
    old: Vec<(PathBuf, u64)>,
}

impl NeighLimits {
    /// Raises every limit of [`NEIGH`] (IPv4 and IPv6) that is lower, remembering the old value.
    pub(crate) fn raise() -> Result<NeighLimits> {
        let mut me = NeighLimits { old: Vec::new() };
        for fam in ["ipv4", "ipv6"] {
            for (name, want) in NEIGH {
                let p = PathBuf::from(format!("/proc/sys/net/{fam}/neigh/default/{name}"));
                let cur: u64 = std::fs::read_to_string(&p)
                    .with_context(|| format!("reading {}", p.display()))?
                    .trim()
                    .parse()
                    .with_context(|| format!("parsing {}", p.display()))?;
                if cur < want {
                    std::fs::write(&p, want.to_string())
                        .with_context(|| format!("writing {}", p.display()))?;
                    me.old.push((p, cur));
                }
            }
        }
        Ok(me)
    }

    /// What was raised, as `name old→new`.
    fn describe(&self) -> String {
        if self.old.is_empty() {
            return "already high enough".to_owned();
        }
        self.old
            .iter()
            .map(|(p, old)| {
                let new = std::fs::read_to_string(p).unwrap_or_default();
                format!("{} {old}→{}", p.display(), new.trim())
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Drop for NeighLimits {
    fn drop(&mut self) {
        // gc_thresh1 ≤ 2 ≤ 3 must hold at every step: restore 1, 2, 3 in that order (they were
        // raised in that order, so the saved list is already in it).
        for (p, old) in &self.old {
            let _ = std::fs::write(p, old.to_string());
        }
    }
}

/// One link of a node: (UDP bytes in, bytes out, connection age s).
type Link = (u64, u64, u64);

/// Links of one `peers` answer, by peer id (connected peers with a sampled link only).
fn links_of(peers: &Value) -> HashMap<String, Link> {
    link_fields(peers, "bytes_in", "bytes_out")
}

/// Two counters of every sampled link of one `peers` answer, with its age, by peer id.
fn link_fields(peers: &Value, first: &str, second: &str) -> HashMap<String, Link> {
    peers.as_array().map_or_else(HashMap::new, |a| {
        a.iter()
            .filter_map(|p| {
                let l = p.get("link")?;
                Some((
                    p["id"].as_str()?.to_owned(),
                    (
                        l[first].as_u64()?,
                        l[second].as_u64()?,
                        l["age_s"].as_u64()?,
                    ),
                ))
            })
            .collect()
    })
}

/// Bytes (in, out) over a window from two link snapshots of one node: the same connection
/// (not younger at the end) counts its growth, a new one all it carried; links closed in the
/// window count nothing after the first snapshot (an undercount). Also returns how many
/// links were new or gone.
fn link_delta(before: &HashMap<String, Link>, after: &HashMap<String, Link>) -> (u64, u64, usize) {
    let (mut bin, mut bout, mut changed) = (0, 0, 0);
    for (id, &(i1, o1, age1)) in after {
        match before.get(id) {
            Some(&(i0, o0, age0)) if age1 >= age0 => {
                bin += i1.saturating_sub(i0);
                bout += o1.saturating_sub(o0);
            }
            _ => {
                bin += i1;
                bout += o1;
                changed += 1;
            }
        }
    }
    changed += before.keys().filter(|id| !after.contains_key(*id)).count();
    (bin, bout, changed)
}

/// Whether a `peers` answer lists every id of `others`.
fn lists_all(peers: &Value, others: &BTreeSet<&str>) -> bool {
    let Some(a) = peers.as_array() else {
        return false;
    };
    let listed: BTreeSet<&str> = a.iter().filter_map(|p| p["id"].as_str()).collect();
    others.is_subset(&listed)
}

/// Of `others`, how many a `status` answer's graph holds no record of, and how many it holds
/// but cannot reach (`None`: no graph in the answer).
fn unreached(status: &Value, others: &BTreeSet<&str>) -> Option<(usize, usize)> {
    let a = status["network"]["nodes"].as_array()?;
    let mut held = BTreeSet::new();
    let mut reached = BTreeSet::new();
    for n in a {
        if let Some(id) = n["id"].as_str() {
            held.insert(id);
            if n["hops"].is_u64() {
                reached.insert(id);
            }
        }
    }
    let absent = others.iter().filter(|o| !held.contains(*o)).count();
    let unlinked = others
        .iter()
        .filter(|o| held.contains(*o) && !reached.contains(*o))
        .count();
    Some((absent, unlinked))
}

/// Milliseconds in a day.
const DAY_MS: u64 = 86_400_000;

/// Milliseconds since midnight UTC of a node's log line (`2026-11-30T17:15:45.023167Z …`).
fn log_time_of_day_ms(line: &str) -> Option<u64> {
    let num = |a: usize, b: usize| line.get(a..b)?.parse::<u64>().ok();
    if line.get(10..11) != Some("T") {
        return None;
    }
    Some(((num(11, 13)? * 60 + num(14, 16)?) * 60 + num(17, 19)?) * 1000 + num(20, 23)?)
}

/// From a node's log: seconds from `t0_ms` (milliseconds since midnight UTC) until the node's
/// network graph first reached `want` other nodes after `t0_ms` (its `network map changed
/// reachable=…` lines, logged by `dn_node` at debug level under the target `dn_node::map`).
fn map_reached_s(log: &str, want: usize, t0_ms: u64) -> Option<f64> {
    log.lines()
        .filter(|l| l.contains("network map changed"))
        .filter_map(|l| {
            let r = l
                .split("reachable=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<usize>()
                .ok()?;
            // Lines before `t0_ms` come out near a whole day later: skipped.
            let after = (log_time_of_day_ms(l)? + DAY_MS - t0_ms) % DAY_MS;
            (after < DAY_MS / 2).then_some((r, after))
        })
        .find(|(r, _)| *r >= want)
        .map(|(_, after)| after as f64 / 1000.0)
}

/// Per node of `c` (all `n`): [`map_reached_s`] of its log, its graph reaching the `n − 1`
/// others after `since_ms`.
fn mapped_s(c: &Cluster, n: usize, since_ms: u64) -> Vec<Option<f64>> {
    (1..=n)
        .map(|i| {
            std::fs::read_to_string(&c.node(i).log)
                .ok()
                .and_then(|log| map_reached_s(&log, n - 1, since_ms))
        })
        .collect()
}

/// Now, in milliseconds since midnight UTC (as the nodes' log lines).
fn now_of_day_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(0)
        % DAY_MS
}

/// Received/transmitted bytes of every host's bridge port (`p<i>`), index 0 = host 1: what
/// the host received (the port's tx) and sent (its rx).
fn port_bytes(lab: &Lab, n: usize) -> Result<Vec<(u64, u64)>> {
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["-n", lab.bridge_ns(), "-s", "-j", "link", "show"]);
    let out = dn_tests::run_cmd(cmd, None, Duration::from_secs(20))?.check()?;
    let v: Value = serde_json::from_str(out.stdout.trim()).context("ip -j link: not JSON")?;
    let mut by_name = HashMap::new();
    for l in v.as_array().map(Vec::as_slice).unwrap_or_default() {
        if let Some(name) = l["ifname"].as_str() {
            let s = &l["stats64"];
            by_name.insert(
                name.to_owned(),
                (
                    s["tx"]["bytes"].as_u64().unwrap_or(0),
                    s["rx"]["bytes"].as_u64().unwrap_or(0),
                ),
            );
        }
    }
    (1..=n)
        .map(|i| {
            by_name
                .get(&lab.host(i).port)
                .copied()
                .with_context(|| format!("no bridge port {}", lab.host(i).port))
        })
        .collect()
}

/// One node's state at a moment.
struct Snap {
    cpu_s: f64,
    links: HashMap<String, Link>,
    /// (packets sent, packets lost, age) per link.
    packets: HashMap<String, Link>,
    /// `status` → `health`.
    health: Value,
    connected: u64,
    rss_kb: u64,
}

/// (min, median, max) of integers-as-floats.
fn mmm(v: &[f64]) -> (f64, f64, f64) {
    (stats::min(v), stats::pct(v, 0.5), stats::max(v))
}

/// A node's last poll before its graph reached every other: (seconds since the last spawn,
/// others it held no record of, others held but not reachable).
type Short = (f64, usize, usize);

/// What one size measured (fields stay `None` where a step did not get that far).
#[derive(Default)]
struct SizeRun {
    n: usize,
    setup_s: f64,
    /// Last spawn → every node has answered a `status` (polled with the listing).
    start_s: f64,
    /// Per node: seconds from the last spawn until it listed every other / every other as
    /// reachable (`None`: not within [`LIST_TIMEOUT`]).
    listed_s: Vec<Option<f64>>,
    reachable_s: Vec<Option<f64>>,
    /// Per node: seconds from the last spawn until its graph reached every other, from its
    /// own log ([`map_reached_s`]): no polling delay.
    map_s: Vec<Option<f64>>,
    /// Per node, at its last poll before its graph reached every other: (seconds, others it
    /// held no record of, others held but not reachable).
    last_short: Vec<Option<Short>>,
    /// Longest round of polling the nodes not yet done (the resolution of the times above).
    poll_round_s: f64,
    idle: Option<Value>,
    burst: Option<Value>,
    churn: Option<Value>,
    error: Option<String>,
}

impl SizeRun {
    fn all(v: &[Option<f64>]) -> Option<f64> {
        v.iter()
            .try_fold(0.0_f64, |m, x| x.map(|x| m.max(x)))
            .filter(|_| !v.is_empty())
    }

    /// The five slowest nodes to reach every other, each with what it lacked at its poll
    /// before.
    fn slowest(&self) -> Vec<Value> {
        let mut v: Vec<(f64, Option<Short>)> = self
            .reachable_s
            .iter()
            .zip(&self.last_short)
            .filter_map(|(r, l)| r.map(|r| (r, *l)))
            .collect();
        v.sort_by(|a, b| b.0.total_cmp(&a.0));
        v.truncate(5);
        v.into_iter()
            .map(|(r, l)| {
                json!({
                    "s": round2(r),
                    "last_short": l.map(|(t, absent, unlinked)| json!({
                        "s": round2(t), "no_record": absent, "unreachable": unlinked,
                    })),
                })
            })
            .collect()
    }

    fn json(&self) -> Value {
        let done = |v: &[Option<f64>]| v.iter().flatten().count();
        json!({
            "hosts": self.n,
            "setup_s": round2(self.setup_s),
            "start_s": round2(self.start_s),
            "listing": {
                "all_mapped_s": Self::all(&self.map_s).map(round2),
                "median_mapped_s": round2(stats::pct(
                    &self.map_s.iter().flatten().copied().collect::<Vec<_>>(), 0.5)),
                "nodes_mapping_all": done(&self.map_s),
                "all_listed_s": Self::all(&self.listed_s).map(round2),
                "all_reachable_s": Self::all(&self.reachable_s).map(round2),
                "nodes_listing_all": done(&self.listed_s),
                "nodes_reaching_all": done(&self.reachable_s),
                "median_reachable_s": round2(stats::pct(
                    &self.reachable_s.iter().flatten().copied().collect::<Vec<_>>(), 0.5)),
                "median_listed_s": round2(stats::pct(
                    &self.listed_s.iter().flatten().copied().collect::<Vec<_>>(), 0.5)),
                "slowest_reachable_s": self.slowest(),
                "longest_poll_round_s": round2(self.poll_round_s),
                "timeout_s": LIST_TIMEOUT.as_secs(),
            },
            "idle": self.idle,
            "burst": self.burst,
            "churn": self.churn,
            "error": self.error,
        })
    }
}

/// The nodes of one size, and what the measuring needs of them.
struct Nodes {
    dirs: Vec<PathBuf>,
    pids: Vec<u32>,
    ids: Vec<String>,
}

impl Nodes {
    fn snap(&self, i: usize) -> Result<Snap> {
        let st = control(&self.dirs[i], &Request::Status)
            .with_context(|| format!("status of node {}", i + 1))?;
        let peers = control(&self.dirs[i], &Request::Peers)
            .with_context(|| format!("peers of node {}", i + 1))?;
        Ok(Snap {
            cpu_s: cpu_seconds(self.pids[i]).unwrap_or(0.0),
            links: links_of(&peers),
            packets: link_fields(&peers, "sent_packets", "lost_packets"),
            health: st["health"].clone(),
            connected: st["connected_peers"].as_u64().unwrap_or(0),
            rss_kb: dn_tests::mem_kb(self.pids[i]).map_or(0, |(rss, _)| rss),
        })
    }

    fn snap_all(&self) -> Result<Vec<Snap>> {
        (0..self.dirs.len()).map(|i| self.snap(i)).collect()
    }

    /// Stored messages of [`ROOM`] at node `i`.
    fn room_count(&self, i: usize) -> Result<u64> {
        let rooms = control(&self.dirs[i], &Request::Rooms)?;
        Ok(rooms
            .as_array()
            .and_then(|a| a.iter().find(|r| r["name"] == ROOM))
            .and_then(|r| r["messages"].as_u64())
            .unwrap_or(0))
    }

    /// Sends `count` messages from changing senders, [`BURST_GAP`] apart; returns their ids.
    fn send_burst(&self, tag: &str, first: usize, count: usize) -> Result<Vec<String>> {
        let all: Vec<usize> = (0..self.dirs.len()).collect();
        self.send_burst_from(&all, tag, first, count)
    }

    /// [`Nodes::send_burst`] with the senders taken from `from` (node indices).
    fn send_burst_from(
        &self,
        from: &[usize],
        tag: &str,
        first: usize,
        count: usize,
    ) -> Result<Vec<String>> {
        let mut ids = Vec::with_capacity(count);
        let mut next = Instant::now();
        for k in first..first + count {
            let sender = from[(k * SENDER_STRIDE) % from.len()];
            let mut body = format!("{tag} {k} from node {} ", sender + 1);
            let pad = BODY.saturating_sub(body.len());
            body.push_str(&"x".repeat(pad));
            let v = control(
                &self.dirs[sender],
                &Request::Send {
                    room: ROOM.into(),
                    body,
                    urgent: false,
                },
            )
            .with_context(|| format!("send {k} at node {}", sender + 1))?;
            ids.push(v["id"].as_str().context("send answered no id")?.to_owned());
            next += BURST_GAP;
            thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        Ok(ids)
    }

    /// Waits until every node stores `want` messages of [`ROOM`]; returns the time from
    /// `since`, or the number of nodes still short at the timeout.
    fn wait_count(&self, want: u64, since: Instant) -> Result<std::result::Result<f64, usize>> {
        let all: Vec<usize> = (0..self.dirs.len()).collect();
        self.wait_count_at(&all, want, since)
    }

    /// [`Nodes::wait_count`] for the nodes `at` (indices) only.
    fn wait_count_at(
        &self,
        at: &[usize],
        want: u64,
        since: Instant,
    ) -> Result<std::result::Result<f64, usize>> {
        let mut done = vec![false; at.len()];
        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        loop {
            for (k, d) in done.iter_mut().enumerate() {
                // A node that is restarting does not answer yet: not done.
                if !*d && self.room_count(at[k]).is_ok_and(|c| c >= want) {
                    *d = true;
                }
            }
            if done.iter().all(|d| *d) {
                return Ok(Ok(since.elapsed().as_secs_f64()));
            }
            if Instant::now() > deadline {
                return Ok(Err(done.iter().filter(|d| !**d).count()));
            }
            thread::sleep(POLL);
        }
    }

    /// Per-delivery latency (ms) of `ids` at every node but their author.
    fn latencies(&self, ids: &[String]) -> Result<Vec<f64>> {
        let want: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        for (i, dir) in self.dirs.iter().enumerate() {
            let log = control(
                dir,
                &Request::Messages {
                    room: ROOM.into(),
                    limit: 1000,
                    before: None,
                },
            )?;
            for m in log.as_array().map(Vec::as_slice).unwrap_or_default() {
                let (Some(id), Some(ts), Some(rx)) = (
                    m["id"].as_str(),
                    m["timestamp"].as_u64(),
                    m["received_at"].as_u64(),
                ) else {
                    continue;
                };
                if want.contains(id) && m["author"].as_str() != Some(self.ids[i].as_str()) {
                    out.push(rx.saturating_sub(ts) as f64);
                }
            }
        }
        Ok(out)
    }
}

/// Health counter `key` summed over nodes, delta between two snapshots.
fn health_delta(before: &[Snap], after: &[Snap], key: &str) -> u64 {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| {
            a.health[key]
                .as_u64()
                .unwrap_or(0)
                .saturating_sub(b.health[key].as_u64().unwrap_or(0))
        })
        .sum()
}

fn run_size(ctx: &Ctx, n: usize, run: &mut SizeRun) -> Result<()> {
    let t = Instant::now();
    ctx.note(&format!(
        "scale: {n} hosts: creating the lab and data dirs ..."
    ));
    let Some(mut c) = Cluster::with_lab(&format!("bench_scale_{n}"), || Lab::new(n))? else {
        bail!("needs root");
    };
    let inits = c.init_all(ROOM)?;
    let ids: Vec<String> = inits
        .iter()
        .map(|v| v["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    run.setup_s = t.elapsed().as_secs_f64();
    ctx.note(&format!("scale: {n} hosts: starting {n} nodes ..."));
    let mut procs: Vec<Proc> = Vec::with_capacity(n);
    for i in 1..=n {
        let log = c.node(i).log.clone();
        procs.push(c.spawn_node(i, &[], &log)?);
    }
    let spawned = Instant::now();
    let spawned_ms = now_of_day_ms();
    let ports_spawned = port_bytes(&c.lab, n)?;
    let nodes = Nodes {
        dirs: (1..=n).map(|i| c.node(i).data_dir.clone()).collect(),
        pids: procs.iter().map(Proc::pid).collect(),
        ids,
    };
    // Listing is polled from the start: a node that does not answer yet is simply not done.
    // (Waiting first until every node answered took 4–10 s at 100 hosts on 2 cores, every
    // control call queueing behind the start-up work, and hid when the nodes got there.)

    ctx.note(&format!(
        "scale: {n} hosts: waiting until every node lists every other ..."
    ));
    run.listed_s = vec![None; n];
    run.reachable_s = vec![None; n];
    run.last_short = vec![None; n];
    let mut answered = BTreeSet::new();
    let mut all_reachable_at: Option<Instant> = None;
    while spawned.elapsed() < LIST_TIMEOUT {
        // Done when every node's graph reaches every other one and `peers` lists every other
        // one, or [`LIST_GRACE`] after the first (the peer list may never get there).
        if all_reachable_at
            .is_some_and(|t| t.elapsed() > LIST_GRACE || run.listed_s.iter().all(Option::is_some))
        {
            break;
        }
        let round = Instant::now();
        for i in 0..n {
            if run.listed_s[i].is_some() && run.reachable_s[i].is_some() {
                continue;
            }
            let others: BTreeSet<&str> = nodes
                .ids
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, id)| id.as_str())
                .collect();
            if run.listed_s[i].is_none() {
                if let Ok(peers) = control(&nodes.dirs[i], &Request::Peers) {
                    if lists_all(&peers, &others) {
                        run.listed_s[i] = Some(spawned.elapsed().as_secs_f64());
                    }
                }
            }
            if run.reachable_s[i].is_none() {
                if let Ok(st) = control(&nodes.dirs[i], &Request::Status) {
                    let t = spawned.elapsed().as_secs_f64();
                    answered.insert(i);
                    match unreached(&st, &others) {
                        Some((0, 0)) => run.reachable_s[i] = Some(t),
                        Some((absent, unlinked)) => {
                            run.last_short[i] = Some((t, absent, unlinked));
                        }
                        None => {}
                    }
                }
            }
        }
        run.poll_round_s = run.poll_round_s.max(round.elapsed().as_secs_f64());
        if run.start_s == 0.0 && answered.len() == n {
            run.start_s = spawned.elapsed().as_secs_f64();
        }
        if all_reachable_at.is_none() && run.reachable_s.iter().all(Option::is_some) {
            all_reachable_at = Some(Instant::now());
        }
        thread::sleep(POLL);
    }
    run.map_s = mapped_s(&c, n, spawned_ms);
    for (k, p) in procs.iter_mut().enumerate() {
        if !p.is_running() {
            bail!(
                "node {} exited (log {})",
                k + 1,
                c.node(k + 1).log.display()
            );
        }
    }

    let idle = if ctx.quick { QUICK_IDLE } else { IDLE };
    ctx.note(&format!(
        "scale: {n} hosts: settling {} s (at least {} s after the spawn), idle window {} s ...",
        SETTLE.as_secs(),
        STEADY_AFTER.as_secs(),
        idle.as_secs()
    ));
    thread::sleep(SETTLE.max(STEADY_AFTER.saturating_sub(spawned.elapsed())));
    let ports0 = port_bytes(&c.lab, n)?;
    let startup_s = spawned.elapsed().as_secs_f64();
    let port_in_startup: Vec<f64> = ports_spawned
        .iter()
        .zip(&ports0)
        .map(|(a, b)| b.0.saturating_sub(a.0) as f64 / startup_s)
        .collect();
    let s0 = nodes.snap_all()?;
    let t0 = Instant::now();
    thread::sleep(idle);
    let s1 = nodes.snap_all()?;
    let ports1 = port_bytes(&c.lab, n)?;
    let win = t0.elapsed().as_secs_f64();
    let mut quic_in = Vec::new();
    let mut quic_out = Vec::new();
    let mut changed = 0;
    for (a, b) in s0.iter().zip(&s1) {
        let (i, o, ch) = link_delta(&a.links, &b.links);
        quic_in.push(i as f64 / win);
        quic_out.push(o as f64 / win);
        changed += ch;
    }
    let port_in: Vec<f64> = ports0
        .iter()
        .zip(&ports1)
        .map(|(a, b)| b.0.saturating_sub(a.0) as f64 / win)
        .collect();
    let port_out: Vec<f64> = ports0
        .iter()
        .zip(&ports1)
        .map(|(a, b)| b.1.saturating_sub(a.1) as f64 / win)
        .collect();
    let cpu_pct: Vec<f64> = s0
        .iter()
        .zip(&s1)
        .map(|(a, b)| 100.0 * (b.cpu_s - a.cpu_s) / win)
        .collect();
    let conns: Vec<f64> = s1.iter().map(|s| s.connected as f64).collect();
    let rss_mb: Vec<f64> = s1.iter().map(|s| s.rss_kb as f64 / 1024.0).collect();
    let idle_out_total: f64 = quic_out.iter().sum();
    let j3 = |v: &[f64], scale: f64| {
        let (a, b, c) = mmm(v);
        json!({ "min": round2(a * scale), "median": round2(b * scale), "max": round2(c * scale) })
    };
    run.idle = Some(json!({
        "window_s": round2(win),
        "starts_after_spawn_s": round2(startup_s),
        "startup_port_kb_s_in": j3(&port_in_startup, 1e-3),
        "connections": j3(&conns, 1.0),
        "quic_kb_s_in": j3(&quic_in, 1e-3),
        "quic_kb_s_out": j3(&quic_out, 1e-3),
        "port_kb_s_in": j3(&port_in, 1e-3),
        "port_kb_s_out": j3(&port_out, 1e-3),
        "cpu_pct_of_core": j3(&cpu_pct, 1.0),
        "rss_mb": j3(&rss_mb, 1.0),
        "links_changed": changed,
    }));

    ctx.note(&format!(
        "scale: {n} hosts: warm-up ({WARMUP} messages) ..."
    ));
    let burst = if ctx.quick { QUICK_BURST } else { BURST };
    let t_w = Instant::now();
    nodes.send_burst("warm-up", 0, WARMUP)?;
    let warm = nodes.wait_count(WARMUP as u64, t_w)?;
    thread::sleep(SAMPLE_WAIT);
    ctx.note(&format!(
        "scale: {n} hosts: burst of {burst} × {BODY} B from changing senders ..."
    ));
    let b0 = nodes.snap_all()?;
    let p0 = port_bytes(&c.lab, n)?;
    let t_b = Instant::now();
    let ids = nodes.send_burst("burst", WARMUP, burst)?;
    let send_s = t_b.elapsed().as_secs_f64();
    let conv = nodes.wait_count((WARMUP + burst) as u64, t_b)?;
    thread::sleep(SAMPLE_WAIT);
    let b1 = nodes.snap_all()?;
    let p1 = port_bytes(&c.lab, n)?;
    let bwin = t_b.elapsed().as_secs_f64();
    let lat = nodes.latencies(&ids)?;
    let received = health_delta(&b0, &b1, "payloads_received");
    let dups = health_delta(&b0, &b1, "duplicates");
    let sent = health_delta(&b0, &b1, "payloads_sent");
    let deliveries = (burst * (n - 1)) as f64;
    let (mut wire_out, mut burst_changed) = (0u64, 0usize);
    for (a, b) in b0.iter().zip(&b1) {
        let (_, o, ch) = link_delta(&a.links, &b.links);
        wire_out += o;
        burst_changed += ch;
    }
    let port_total: u64 = p0
        .iter()
        .zip(&p1)
        .map(|(a, b)| b.1.saturating_sub(a.1))
        .sum();
    let ideal = deliveries * BODY as f64;
    let (lmin, l50, lmax) = mmm(&lat);
    run.burst = Some(json!({
        "messages": burst,
        "body_bytes": BODY,
        "warmup_messages": WARMUP,
        "warmup_converged_s": warm.ok().map(round2),
        "send_s": round2(send_s),
        "converged_s": conv.ok().map(round2),
        "nodes_short_at_timeout": conv.err(),
        "latency_ms": {
            "deliveries": lat.len(), "expected": deliveries as u64,
            "min": lmin, "p50": l50, "p99": stats::pct(&lat, 0.99), "max": lmax,
        },
        "payloads_received": received,
        "duplicates": dups,
        "payloads_sent": sent,
        "copies_per_node_per_message": round2((received + dups) as f64 / deliveries),
        "window_s": round2(bwin),
        "quic_bytes_out": wire_out,
        "wire_over_payload": round2(wire_out as f64 / ideal),
        "wire_over_payload_idle_removed": round2(
            (wire_out as f64 - idle_out_total * bwin).max(0.0) / ideal),
        "port_bytes_sent": port_total,
        "links_changed": burst_changed,
        "catch_up_bytes_in": health_delta(&b0, &b1, "catch_up_bytes_in"),
        "quic_packets_sent": b0.iter().zip(&b1).map(|(a, b)| link_delta(&a.packets, &b.packets).0).sum::<u64>(),
        "quic_packets_lost": b0.iter().zip(&b1).map(|(a, b)| link_delta(&a.packets, &b.packets).1).sum::<u64>(),
        "grafts": health_delta(&b0, &b1, "grafts"),
        "prunes": health_delta(&b0, &b1, "prunes"),
        "port_over_payload": round2(port_total as f64 / ideal),
        "rss_mb_after": j3(&b1.iter().map(|s| s.rss_kb as f64 / 1024.0).collect::<Vec<_>>(), 1.0),
    }));

    run.churn = Some(churn(ctx, n, &c, &nodes, &mut procs, WARMUP + burst)?);

    ctx.note(&format!("scale: {n} hosts: stopping ..."));
    for p in &mut procs {
        let _ = p.signal(rustix::process::Signal::TERM);
    }
    for p in &mut procs {
        if p.wait_exit(Duration::from_secs(10))?.is_none() {
            let _ = p.kill();
        }
    }
    drop(procs);
    drop(c);
    Ok(())
}

/// Polls the nodes `among` until each one's graph reaches every other of them; seconds from
/// `since`, or `None` after `within`. A node that does not answer (restarting) is not there yet.
fn graphs_reach(nodes: &Nodes, among: &[usize], since: Instant, within: Duration) -> Option<f64> {
    while since.elapsed() < within {
        let all = among.iter().all(|&i| {
            let others: BTreeSet<&str> = among
                .iter()
                .filter(|j| **j != i)
                .map(|j| nodes.ids[*j].as_str())
                .collect();
            control(&nodes.dirs[i], &Request::Status)
                .is_ok_and(|st| unreached(&st, &others) == Some((0, 0)))
        });
        if all {
            return Some(since.elapsed().as_secs_f64());
        }
        thread::sleep(POLL);
    }
    None
}

/// Churn: every tenth node (from the sixth) stops (SIGTERM), the others send [`CHURN_BURST`]
/// messages from changing senders while they are away, then they start again and catch up.
/// `stored` messages of [`ROOM`] are already at every node. Measures the live nodes'
/// convergence and copies, whether every live node's graph still reaches every other live one
/// (the overlay stayed connected), and after the restart how long until the returning nodes
/// hold every message and every node's graph reaches every other again.
fn churn(
    ctx: &Ctx,
    n: usize,
    c: &Cluster,
    nodes: &Nodes,
    procs: &mut [Proc],
    stored: usize,
) -> Result<Value> {
    let down: Vec<usize> = (0..n).filter(|i| i % 10 == 5).collect();
    let live: Vec<usize> = (0..n).filter(|i| i % 10 != 5).collect();
    ctx.note(&format!(
        "scale: {n} hosts: churn: {} nodes stop, {CHURN_BURST} messages meanwhile, they return ...",
        down.len()
    ));
    for &i in &down {
        procs[i].signal(rustix::process::Signal::TERM)?;
    }
    for &i in &down {
        if procs[i].wait_exit(Duration::from_secs(10))?.is_none() {
            procs[i].kill()?;
        }
    }
    let stopped = Instant::now();
    // The live nodes' graphs: every live node still reaches every other live one.
    let live_reach_s = graphs_reach(nodes, &live, stopped, Duration::from_secs(30));
    let s0: Vec<Snap> = live.iter().map(|&i| nodes.snap(i)).collect::<Result<_>>()?;
    let t_b = Instant::now();
    nodes.send_burst_from(&live, "churn", stored, CHURN_BURST)?;
    let want = (stored + CHURN_BURST) as u64;
    let conv = nodes.wait_count_at(&live, want, t_b)?;
    let s1: Vec<Snap> = live.iter().map(|&i| nodes.snap(i)).collect::<Result<_>>()?;
    let deliveries = (CHURN_BURST * (live.len() - 1)) as f64;
    let received = health_delta(&s0, &s1, "payloads_received");
    let dups = health_delta(&s0, &s1, "duplicates");
    let conns: Vec<f64> = s1.iter().map(|s| s.connected as f64).collect();
    let (cmin, cmed, cmax) = mmm(&conns);

    let t_r = Instant::now();
    let t_r_ms = now_of_day_ms();
    for &i in &down {
        let log = c.node(i + 1).log.clone();
        procs[i] = c.spawn_node(i + 1, &[], &log)?;
    }
    let back = nodes.wait_count_at(&down, want, t_r)?;
    let all: Vec<usize> = (0..n).collect();
    let reach_again_s = graphs_reach(nodes, &all, t_r, LIST_TIMEOUT);
    // From the logs too (polling a hundred nodes in turn is slow).
    let mapped_again = mapped_s(c, n, t_r_ms);
    Ok(json!({
        "stopped": down.len(),
        "all_mapped_all_again_s": SizeRun::all(&mapped_again).map(round2),
        "live_graphs_reach_all_live_s": live_reach_s.map(round2),
        "messages": CHURN_BURST,
        "live_converged_s": conv.ok().map(round2),
        "live_short_at_timeout": conv.err(),
        "copies_per_node_per_message": round2((received + dups) as f64 / deliveries),
        "live_connections": { "min": cmin, "median": cmed, "max": cmax },
        "returned_hold_all_s": back.ok().map(round2),
        "returned_short_at_timeout": back.err(),
        "all_reach_all_again_s": reach_again_s.map(round2),
    }))
}

pub(crate) fn run(ctx: &Ctx) -> Result<Section> {
    if let Some(why) = crate::netns_precheck(ctx)? {
        return Ok(skipped(why));
    }
    let sizes: Vec<usize> = if !ctx.scale_sizes.is_empty() {
        ctx.scale_sizes.clone()
    } else if ctx.quick {
        QUICK_SIZES.to_vec()
    } else {
        SIZES.to_vec()
    };
    if let Some(bad) = sizes.iter().find(|n| !(2..=200).contains(*n)) {
        bail!("scale: a size must be 2..=200, not {bad}");
    }
    std::env::set_var("DISASTERNET_BIN", &ctx.disasternet);
    if std::env::var_os("RUST_LOG").is_none() {
        // `dn_node::map`: each node logs when its network graph grows (the listing times).
        std::env::set_var("RUST_LOG", "info,dn_node::map=debug");
    }
    let limits = NeighLimits::raise()?;
    let neigh = limits.describe();
    let mut runs = Vec::new();
    for &n in &sizes {
        let mut r = SizeRun {
            n,
            ..SizeRun::default()
        };
        if let Err(e) = run_size(ctx, n, &mut r) {
            ctx.note(&format!("scale: {n} hosts failed: {e:#}"));
            r.error = Some(format!("{e:#}"));
        }
        runs.push(r);
    }
    drop(limits);
    Ok(render(ctx, &runs, &neigh))
}

fn render(ctx: &Ctx, runs: &[SizeRun], neigh: &str) -> Section {
    let burst = if ctx.quick { QUICK_BURST } else { BURST };
    let idle = if ctx.quick { QUICK_IDLE } else { IDLE };
    let mut text = String::new();
    let _ = writeln!(
        text,
        "== 15. Scale: N real nodes on one bridge (network namespaces)"
    );
    let _ = writeln!(
        text,
        "   {} node (defaults: mDNS + beacon, bounded view, no --peer), RUST_LOG={}, one room; \
         neighbour table: {neigh}. Reachable = last spawn → the node's graph (`status` \
         → network) holds every other node with hops; listed = its `peers` names every other. Idle: {} s after a {} s settle and at least {} s          after the last spawn; traffic = Σ QUIC link \
         bytes (health) / bridge-port bytes (adds mDNS, beacon, ARP). Burst: {WARMUP} warm-up, \
         then {burst} × {BODY} B, sender k×{SENDER_STRIDE} mod N, {} ms apart; copies = \
         Δ(payloads_received + duplicates) ÷ (messages × (N−1)); wire ÷ payload = Σ Δ link \
         bytes_out ÷ (messages × {BODY} × (N−1)).",
        ctx.disasternet.display(),
        std::env::var("RUST_LOG").unwrap_or_default(),
        idle.as_secs(),
        SETTLE.as_secs(),
        STEADY_AFTER.as_secs(),
        BURST_GAP.as_millis(),
    );
    let _ = writeln!(
        text,
        "   goals (issue #14): per-node connections, idle traffic, CPU, memory independent of N; \
         every node lists all others ≤ 10 s at 100 hosts; copies ≤ 1.1; wire ≤ 1.3× payload. \
         Anchors: iroh-gossip active view 5 (passive 30), 1.45 copies with changing senders \
         (sim); gossipsub D = 6 (5–12), ≈ 3 copies."
    );
    for r in runs {
        let j = r.json();
        let l = &j["listing"];
        let f = |v: &Value| {
            v.as_f64()
                .map_or_else(|| "—".to_owned(), |x| format!("{x}"))
        };
        let _ = writeln!(
            text,
            "   N={:<3} every node's graph reaches all (from the nodes' logs): {} s (median {} s; \
             {}/{} nodes); polled: {} s (median {} s; {}/{} nodes; slowest, with what \
             each lacked at its poll before: {}); lists \
             all in `peers`: {} s ({}/{} nodes); every node answering {:.1} s; polling rounds ≤ {} s",
            r.n,
            f(&l["all_mapped_s"]),
            f(&l["median_mapped_s"]),
            l["nodes_mapping_all"],
            r.n,
            f(&l["all_reachable_s"]),
            f(&l["median_reachable_s"]),
            l["nodes_reaching_all"],
            r.n,
            l["slowest_reachable_s"],
            f(&l["all_listed_s"]),
            l["nodes_listing_all"],
            r.n,
            r.start_s,
            f(&l["longest_poll_round_s"]),
        );
        if let Some(i) = &r.idle {
            let m = |k: &str| {
                format!(
                    "{}/{}/{}",
                    f(&i[k]["min"]),
                    f(&i[k]["median"]),
                    f(&i[k]["max"])
                )
            };
            let _ = writeln!(
                text,
                "         idle (min/median/max per node): connections {}, QUIC KB/s in {} out \
                 {}, port KB/s in {} out {}, CPU % {}, VmRSS MB {}; links changed {}; \
                 start-up (first {} s) port KB/s in {}",
                m("connections"),
                m("quic_kb_s_in"),
                m("quic_kb_s_out"),
                m("port_kb_s_in"),
                m("port_kb_s_out"),
                m("cpu_pct_of_core"),
                m("rss_mb"),
                i["links_changed"],
                f(&i["starts_after_spawn_s"]),
                m("startup_port_kb_s_in"),
            );
        }
        if let Some(b) = &r.burst {
            let _ = writeln!(
                text,
                "         burst: converged {} s (sent in {} s; short at timeout: {}), latency \
                 p50/p99/max {}/{}/{} ms ({}/{} deliveries), copies {} (dups {}), wire ÷ \
                 payload {} ({} idle removed; bridge ports {}); links changed {}",
                f(&b["converged_s"]),
                f(&b["send_s"]),
                b["nodes_short_at_timeout"],
                f(&b["latency_ms"]["p50"]),
                f(&b["latency_ms"]["p99"]),
                f(&b["latency_ms"]["max"]),
                b["latency_ms"]["deliveries"],
                b["latency_ms"]["expected"],
                f(&b["copies_per_node_per_message"]),
                b["duplicates"],
                f(&b["wire_over_payload"]),
                f(&b["wire_over_payload_idle_removed"]),
                f(&b["port_over_payload"]),
                b["links_changed"],
            );
        }
        if let Some(ch) = &r.churn {
            let _ = writeln!(
                text,
                "         churn: {} nodes stopped; the live graphs reach every live node after \
                 {} s; {} messages meanwhile: live nodes converged {} s (short: {}), copies {}, \
                 connections min/median/max {}/{}/{}; restarted: they hold every message after \
                 {} s (short: {}), every graph reaches every node again after {} s (logs; \
                 polled {} s)",
                ch["stopped"],
                f(&ch["live_graphs_reach_all_live_s"]),
                ch["messages"],
                f(&ch["live_converged_s"]),
                ch["live_short_at_timeout"],
                f(&ch["copies_per_node_per_message"]),
                ch["live_connections"]["min"],
                ch["live_connections"]["median"],
                ch["live_connections"]["max"],
                f(&ch["returned_hold_all_s"]),
                ch["returned_short_at_timeout"],
                f(&ch["all_mapped_all_again_s"]),
                f(&ch["all_reach_all_again_s"]),
            );
        }
        if let Some(e) = &r.error {
            let _ = writeln!(text, "         FAILED: {e}");
        }
    }
    let json = json!({
        "params": {
            "body_bytes": BODY, "warmup": WARMUP, "burst": burst,
            "burst_gap_ms": BURST_GAP.as_millis() as u64, "idle_s": idle.as_secs(),
            "settle_s": SETTLE.as_secs(), "list_timeout_s": LIST_TIMEOUT.as_secs(),
            "neighbour_table": neigh,
        },
        "sizes": runs.iter().map(SizeRun::json).collect::<Vec<_>>(),
    });
    Section { text, json }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_delta_counts_growth_new_links_and_churn() {
        let before: HashMap<String, Link> = [
            ("a".to_owned(), (100, 200, 10)),
            ("b".to_owned(), (50, 50, 10)),
            ("gone".to_owned(), (9, 9, 3)),
        ]
        .into();
        let after: HashMap<String, Link> = [
            ("a".to_owned(), (150, 260, 40)),
            // Reconnected: younger than before, so all it carried is new.
            ("b".to_owned(), (5, 7, 2)),
            ("new".to_owned(), (1, 2, 1)),
        ]
        .into();
        assert_eq!(link_delta(&before, &after), (50 + 5 + 1, 60 + 7 + 2, 3));
        assert_eq!(link_delta(&after, &after), (0, 0, 0));
    }

    #[test]
    fn listing_needs_every_other_id() {
        let peers = json!([{ "id": "a", "hops": 1 }, { "id": "b", "hops": null }]);
        let ab: BTreeSet<&str> = ["a", "b"].into();
        assert!(lists_all(&peers, &ab));
        assert!(!lists_all(&peers, &["a", "c"].into()));
        assert!(!lists_all(&json!(null), &ab));
        let st = json!({ "network": { "nodes": [
            { "id": "me", "hops": 0 }, { "id": "a", "hops": 2 }, { "id": "b", "hops": null },
        ] } });
        assert_eq!(unreached(&st, &ab), Some((0, 1)));
        assert_eq!(unreached(&st, &["a"].into()), Some((0, 0)));
        assert_eq!(unreached(&st, &["a", "c"].into()), Some((1, 0)));
        assert_eq!(unreached(&json!({}), &["a"].into()), None);
    }

    #[test]
    fn links_are_read_from_peers() {
        let peers = json!([
            { "id": "a", "link": { "bytes_in": 1, "bytes_out": 2, "age_s": 3 } },
            { "id": "b", "link": null },
        ]);
        let l = links_of(&peers);
        assert_eq!(l.len(), 1);
        assert_eq!(l["a"], (1, 2, 3));
    }

    #[test]
    fn map_times_come_from_the_first_full_map_in_the_log() {
        let log = "=== harness 1 ms: start node1\n\
            2026-11-30T17:15:45.023167Z DEBUG core{me=ab}: dn_node::map: network map changed reachable=3\n\
            2026-11-30T17:15:46.500001Z  INFO core{me=ab}: dn_node::core: peer connected\n\
            2026-11-30T17:15:47.250000Z DEBUG core{me=ab}: dn_node::map: network map changed reachable=4\n\
            2026-11-30T17:15:48.000000Z DEBUG core{me=ab}: dn_node::map: network map changed reachable=3\n";
        let t0 = log_time_of_day_ms("2026-11-30T17:15:44.000000Z").unwrap();
        assert_eq!(t0, ((17 * 60 + 15) * 60 + 44) * 1000);
        assert_eq!(map_reached_s(log, 4, t0), Some(3.25));
        assert_eq!(map_reached_s(log, 3, t0), Some(1.023));
        assert_eq!(map_reached_s(log, 5, t0), None);
        // Only what came after t0 counts.
        let later = log_time_of_day_ms("2026-11-30T17:15:46.000000Z").unwrap();
        assert_eq!(map_reached_s(log, 3, later), Some(1.25));
        // Across midnight.
        let late = log_time_of_day_ms("2026-11-30T23:59:59.500000Z").unwrap();
        let line =
            "2026-12-01T00:00:00.250000Z DEBUG x: dn_node::map: network map changed reachable=1";
        assert_eq!(map_reached_s(line, 1, late), Some(0.75));
    }

    #[test]
    fn all_is_the_slowest_or_none() {
        assert_eq!(SizeRun::all(&[Some(1.0), Some(3.0)]), Some(3.0));
        assert_eq!(SizeRun::all(&[Some(1.0), None]), None);
        assert_eq!(SizeRun::all(&[]), None);
    }
}
