//! One hostile peer against one node, on real separate network stacks (issue #9).
//!
//! Three hosts on one bridge: node1 (the victim, with 8,000 stored messages in `ops` so that
//! "send me the whole room" is expensive), node2 (an honest peer chatting with node1 the whole
//! time) and host 3, which runs no node but `dn-hostile`: the real protocol over real QUIC/TLS
//! with keys of its own. For every attack the test asserts, while it runs and after:
//! - node1's memory (VmRSS) stays under a fixed bound above its idle figure;
//! - node1's core keeps answering `status` (the CLI's round trip, spawn included);
//! - node2 and node1 keep getting each other's messages;
//! - the drop is counted under the right reason in `status --json` (`drops`).
//!
//! Figures (memory peak, slowest status, honest latency) go to
//! `target/test-output/netns/hostile/report.txt`; `make bench` has the timed version.
//! Needs root; run: `cargo test -p dn-tests --test hostile -- --test-threads=1`.

#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dn_tests::disasternet::Cluster;
use dn_tests::hostile::{CHAT, ROOM, SEEDED};
use dn_tests::{check, target_dir, Lab};
use serde_json::Value;

/// How long each attack runs.
const ATTACK_SECONDS: u64 = 8;
/// node1's resident memory may grow at most this much over its idle figure during an attack.
/// Without the defences one no-read attack alone added 238 MiB.
const MEMORY_BOUND_KIB: u64 = 96 * 1024;
/// A `status` round trip through the CLI (process start included) slower than this fails:
/// a starved core answers in seconds or not at all. (The 100 ms figure is measured by
/// `make bench`, not asserted in a timed test.)
const STATUS_BOUND: Duration = Duration::from_secs(3);
/// Honest messages sent during an attack must arrive within this after it ends.
const DELIVERY: Duration = Duration::from_secs(120);

/// (attack, drop reasons of which at least one must have counted something; empty: only the
/// liveness and memory checks apply).
const ATTACKS: &[(&str, &[&str])] = &[
    (
        "no-read",
        &[
            "not_reading",
            "reply_queue_full",
            "exchange_busy",
            "rate_limited",
        ],
    ),
    (
        "recon-storm",
        &["exchange_busy", "no_exchange", "rate_limited", "invalid"],
    ),
    ("spam", &["quota_author", "quota_peer", "invalid_dm"]),
    ("sybil-spam", &["quota_peer", "quota_author", "invalid_dm"]),
    ("topo-flood", &["topo_rate", "topo_cap"]),
    ("streams", &[]),
    (
        "connections",
        &["refused_per_address", "refused_full", "refused_handshakes"],
    ),
    // A ReconDone with no exchange open is dropped (no_exchange); if the victim happens to be the
    // initiator (lower id) towards this attacker, the forged ReconDone ends the victim's own
    // exchange instead and only the IHave flood counts (rate_limited). Either way the final
    // check below proves that no forged claim made a message "held".
    ("forge-held", &["no_exchange", "rate_limited"]),
    ("prune-flood", &["unknown_room", "rate_limited"]),
    ("ihave-flood", &["rate_limited", "pending_repairs_full"]),
    ("beacon-flood", &["discovery_dropped", "beacon_dropped"]),
    // Carried private-room messages that show a name or are not envelopes: refused.
    ("private-junk", &["invalid_private"]),
    // Every message marked urgent, five-plus per key: priority past each key's budget is
    // refused (the messages themselves are handled as ordinary ones, under the same quotas).
    ("urgent-flood", &["urgent_over_budget"]),
    // Sybils in the graph writing from rotating authors: past the tree budget their messages
    // follow the shared tree instead of costing a Dijkstra each.
    ("tree-churn", &["tree_over_budget"]),
];

fn drops(status: &Value) -> Value {
    status["drops"].clone()
}

fn counted(drops: &Value, reason: &str) -> u64 {
    drops[reason].as_u64().unwrap_or(0)
}

#[test]
fn one_hostile_peer_cannot_starve_fill_or_fool_a_node() -> Result<()> {
    let Some(mut c) = Cluster::with_lab("hostile", || Lab::with_networks(1, &[&[0], &[0], &[0]]))?
    else {
        return Ok(());
    };
    let hostile_bin = target_dir().join("debug/dn-hostile");
    if !hostile_bin.exists() {
        bail!(
            "{} missing: cargo build --workspace --bins",
            hostile_bin.display()
        );
    }
    dn_tests::hostile::start_victim_and_honest(&mut c)?;
    let pid = c
        .node(1)
        .proc
        .as_ref()
        .map(|p| p.pid())
        .context("node1 has no process")?;
    std::thread::sleep(Duration::from_secs(2));
    let idle_kib = dn_tests::mem_kb(pid).context("reading node1's VmRSS")?.0;
    let target = format!("{}:7300", c.lab.host(1).links[0].ip);
    let mut report = vec![format!(
        "idle VmRSS of node1: {} KiB; {SEEDED} messages stored\n\
         attack        | peak VmRSS over idle | slowest status | honest msgs | drops counted",
        idle_kib
    )];
    // DN_HOSTILE_ONLY=a,b runs only those attacks (for investigating one).
    let only: Vec<String> = std::env::var("DN_HOSTILE_ONLY")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    for (attack, reasons) in ATTACKS {
        if !only.is_empty() && !only.iter().any(|o| o == attack) {
            continue;
        }
        eprintln!("--- attack {attack}");
        // The last attacker's connections must be gone first (a process that exits without
        // closing them is noticed by the idle timeout, ~8 s): otherwise this attacker would
        // meet the per-address cap instead of the defence under test.
        c.wait_for(
            "node1 connected to node2 only",
            Duration::from_secs(30),
            |c| Ok(c.status(1)?["connected_peers"].as_u64() == Some(1)),
        )?;
        let before = drops(&c.status(1)?);
        let log = c.out_dir.join(format!("hostile-{attack}.log"));
        let mut cmd = c.lab.command(3, &hostile_bin);
        cmd.args([
            "--target",
            &target,
            "--attack",
            attack,
            "--seconds",
            &ATTACK_SECONDS.to_string(),
            "--room",
            ROOM,
            "--room",
            CHAT,
        ]);
        if *attack == "forge-held" {
            // The ids of what node1 wrote: the attacker claims to hold them all.
            let ids: Vec<String> = c
                .log(1, CHAT)?
                .iter()
                .filter(|m| m["local"] == Value::Bool(true))
                .filter_map(|m| m["id"].as_str().map(str::to_owned))
                .collect();
            cmd.env("DN_HOSTILE_IDS", ids.join(","));
        }
        let mut attacker = c.lab.spawn(&format!("hostile-{attack}"), cmd, &log)?;
        let started = Instant::now();
        let mut peak_kib = idle_kib;
        let mut slowest = Duration::ZERO;
        let mut sent = Vec::new();
        let mut k = 0;
        while started.elapsed() < Duration::from_secs(ATTACK_SECONDS) {
            k += 1;
            let t = Instant::now();
            let st = c
                .status(1)
                .with_context(|| format!("status of node1 during {attack}"))?;
            slowest = slowest.max(t.elapsed());
            check!(
                c,
                st["running"] == Value::Bool(true),
                "node1 stopped during {attack}"
            );
            peak_kib = peak_kib.max(dn_tests::mem_kb(pid).map_or(0, |m| m.0));
            let from2 = format!("honest {attack} {k}");
            let from1 = format!("victim {attack} {k}");
            c.send(2, CHAT, &from2)?;
            c.send(1, CHAT, &from1)?;
            sent.push((from2, from1));
            std::thread::sleep(Duration::from_millis(700));
        }
        attacker.wait_exit(Duration::from_secs(30))?;
        peak_kib = peak_kib.max(dn_tests::mem_kb(pid).map_or(0, |m| m.0));
        let grew = peak_kib.saturating_sub(idle_kib);
        check!(
            c,
            grew <= MEMORY_BOUND_KIB,
            "{attack}: node1's memory grew by {grew} KiB (bound {MEMORY_BOUND_KIB} KiB)"
        );
        check!(
            c,
            slowest <= STATUS_BOUND,
            "{attack}: a status round trip took {slowest:?} (bound {STATUS_BOUND:?})"
        );
        // Every honest message of the attack window arrives on the other side.
        let want2: Vec<String> = sent.iter().map(|(a, _)| a.clone()).collect();
        let want1: Vec<String> = sent.iter().map(|(_, b)| b.clone()).collect();
        let delivered = c.wait_for(
            &format!("honest messages of the {attack} window delivered both ways"),
            DELIVERY,
            |c| {
                let bodies = |i: usize| -> Result<Vec<String>> {
                    Ok(c.log(i, CHAT)?
                        .iter()
                        .filter_map(|m| m["body"].as_str().map(str::to_owned))
                        .collect())
                };
                let on1 = bodies(1)?;
                let on2 = bodies(2)?;
                Ok(want2.iter().all(|b| on1.contains(b)) && want1.iter().all(|b| on2.contains(b)))
            },
        )?;
        let st = c.status(1)?;
        if *attack == "urgent-flood" {
            // Pinned counts stay capped per room however many marked messages came in.
            let pinned = st["urgent_unacked"].as_u64().unwrap_or(u64::MAX);
            check!(
                c,
                pinned <= 2 * 999,
                "urgent-flood: node1 counts {pinned} urgent messages (cap 999 a room)"
            );
        }
        let after = drops(&st);
        let counts: Vec<String> = reasons
            .iter()
            .map(|r| {
                format!(
                    "{r}={}",
                    counted(&after, r).saturating_sub(counted(&before, r))
                )
            })
            .collect();
        if !reasons.is_empty() {
            check!(
                c,
                reasons
                    .iter()
                    .any(|r| counted(&after, r) > counted(&before, r)),
                "{attack}: no drop counted under {reasons:?}; drops before {before}, after {after}"
            );
        }
        report.push(format!(
            "{attack:<13} | {:>17} KiB | {:>12.0?} | {} (+{:.1?}) | {}",
            grew,
            slowest,
            sent.len() * 2,
            delivered,
            counts.join(" ")
        ));
    }
    // The forged "held by" claims changed nothing: node1's own messages are held by node2 only.
    let own: Vec<Value> = c
        .log(1, CHAT)?
        .into_iter()
        .filter(|m| m["local"] == Value::Bool(true))
        .collect();
    check!(c, !own.is_empty(), "node1 wrote no messages?");
    let over: Vec<&Value> = own
        .iter()
        .filter(|m| m["held_by"].as_u64().unwrap_or(0) > 1)
        .collect();
    check!(
        c,
        over.is_empty(),
        "messages of node1 shown as held by more peers than the one honest peer: {over:?}"
    );
    let text = report.join("\n");
    eprintln!("{text}");
    std::fs::write(c.out_dir.join("report.txt"), &text)?;
    c.stop(1)?;
    c.stop(2)?;
    Ok(())
}

/// The p-th percentile (0–100) of sorted values.
fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) * p) / 100]
}

/// Four honest nodes chat while one host attacks them all at once: spam at full rate into a
/// room they serve (at node1), a catch-up storm (node2), forged neighbour lists (node3) and
/// forged beacons (node4). Every honest message must reach every honest node; honest latency
/// (coarse: found by polling `log` twice a second) and each node's peak memory are reported.
#[test]
fn four_honest_nodes_chat_through_a_combined_attack() -> Result<()> {
    let Some(mut c) = Cluster::with_lab("hostile-combined", || {
        Lab::with_networks(1, &[&[0usize][..]; 5])
    })?
    else {
        return Ok(());
    };
    let hostile_bin = target_dir().join("debug/dn-hostile");
    if !hostile_bin.exists() {
        bail!(
            "{} missing: cargo build --workspace --bins",
            hostile_bin.display()
        );
    }
    let honest = [1usize, 2, 3, 4];
    let mut ids = Vec::new();
    for &i in &honest {
        c.init(i, &format!("honest{i}"))?;
        c.join(i, ROOM)?;
        c.join(i, CHAT)?;
    }
    for &i in &honest {
        c.start(i, &[])?;
        ids.push(c.id(i)?);
    }
    let everyone: std::collections::BTreeSet<String> = ids.iter().cloned().collect();
    c.wait_for(
        "the four honest nodes connected",
        Duration::from_secs(60),
        |c| {
            for (k, &i) in honest.iter().enumerate() {
                let mut want = everyone.clone();
                want.remove(&ids[k]);
                if c.connected_peer_ids(i)? != want {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )?;
    let pids: Vec<u32> = honest
        .iter()
        .map(|&i| c.node(i).proc.as_ref().map(|p| p.pid()))
        .collect::<Option<_>>()
        .context("a node has no process")?;
    let idle: Vec<u64> = pids
        .iter()
        .map(|&p| dn_tests::mem_kb(p).map_or(0, |m| m.0))
        .collect();
    let plan = [
        ("spam", 1usize),
        ("recon-storm", 2),
        ("topo-flood", 3),
        ("beacon-flood", 4),
    ];
    let mut attackers = Vec::new();
    for (attack, victim) in plan {
        let target = format!("{}:7300", c.lab.host(victim).links[0].ip);
        let mut cmd = c.lab.command(5, &hostile_bin);
        cmd.args(["--target", &target, "--attack", attack, "--seconds", "15"]);
        cmd.args(["--room", ROOM, "--room", CHAT]);
        let log = c.out_dir.join(format!("hostile-{attack}.log"));
        attackers.push(c.lab.spawn(&format!("hostile-{attack}"), cmd, &log)?);
    }
    // Each honest node writes a message a second; every node's log is polled for arrivals.
    let started = Instant::now();
    let mut sent: Vec<(String, Instant)> = Vec::new();
    let mut seen: std::collections::HashMap<(usize, String), Instant> = Default::default();
    let mut peak = idle.clone();
    let mut k = 0;
    let poll = |c: &Cluster,
                seen: &mut std::collections::HashMap<(usize, String), Instant>|
     -> Result<()> {
        for &i in &honest {
            for m in c.log(i, CHAT)? {
                if let Some(b) = m["body"].as_str() {
                    seen.entry((i, b.to_owned())).or_insert_with(Instant::now);
                }
            }
        }
        Ok(())
    };
    while started.elapsed() < Duration::from_secs(15) {
        k += 1;
        for &i in &honest {
            let body = format!("node{i} says {k}");
            c.send(i, CHAT, &body)?;
            sent.push((body, Instant::now()));
        }
        for (n, &p) in pids.iter().enumerate() {
            peak[n] = peak[n].max(dn_tests::mem_kb(p).map_or(0, |m| m.0));
        }
        poll(&c, &mut seen)?;
    }
    for mut a in attackers {
        a.wait_exit(Duration::from_secs(30))?;
    }
    let want = sent.len() * honest.len();
    c.wait_for("every honest message on every honest node", DELIVERY, |c| {
        let mut s = std::mem::take(&mut seen);
        poll(c, &mut s)?;
        let n = sent
            .iter()
            .map(|(b, _)| {
                honest
                    .iter()
                    .filter(|&&i| s.contains_key(&(i, b.clone())))
                    .count()
            })
            .sum::<usize>();
        seen = s;
        Ok(n == want)
    })?;
    let mut latencies: Vec<u64> = sent
        .iter()
        .flat_map(|(b, at)| {
            honest
                .iter()
                .filter_map(|&i| seen.get(&(i, b.clone())))
                .map(move |t| t.saturating_duration_since(*at).as_millis() as u64)
        })
        .collect();
    latencies.sort_unstable();
    let mut report = vec![format!(
        "{} honest messages x {} nodes delivered; latency (coarse, log polled every round) \
         p50 {} ms, p99 {} ms, max {} ms",
        sent.len(),
        honest.len(),
        percentile(&latencies, 50),
        percentile(&latencies, 99),
        latencies.last().copied().unwrap_or(0)
    )];
    for (n, &i) in honest.iter().enumerate() {
        let grew = peak[n].saturating_sub(idle[n]);
        report.push(format!(
            "node{i}: idle {} KiB, peak {} KiB (+{grew} KiB), drops {}",
            idle[n],
            peak[n],
            drops(&c.status(i)?)
        ));
        check!(
            c,
            grew <= MEMORY_BOUND_KIB,
            "node{i}'s memory grew by {grew} KiB under the combined attack"
        );
    }
    let text = report.join("\n");
    eprintln!("{text}");
    std::fs::write(c.out_dir.join("report.txt"), &text)?;
    for &i in &honest {
        c.stop(i)?;
    }
    Ok(())
}
