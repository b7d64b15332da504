//! Section 5: live propagation latency between real nodes in network namespaces (root only).
//!
//! Four namespaces on one lab bridge (`dn_tests::Lab`), cut into a chain 1 – 2 – 3 – 4 with
//! nftables (every other pair dropped), one `disasternet node` each (mDNS and the beacon run,
//! but only inside the lab). Node 1 sends N messages; the latency of each at node j is node
//! j's own `received_at` (from `log --json`) minus the sender's `timestamp`: both are read
//! from the same host clock, so no CLI polling delay enters the figure. Beside it: the UDP
//! round-trip time of each link, measured inside the namespaces by this binary's hidden
//! `udp-echo` / `udp-rtt` helpers.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::UdpSocket;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dn_tests::disasternet::Cluster;
use dn_tests::Lab;
use serde_json::{json, Value};

use crate::{round2, stats, Ctx, Section};

const ROOM: &str = "bench";
/// Chain length.
const NODES: usize = 4;
/// UDP port of the RTT echo (inside the lab only).
const ECHO_PORT: u16 = 7399;
/// Round trips per link.
const RTT_SAMPLES: usize = 200;
/// Pause between two sends.
const SEND_GAP: Duration = Duration::from_millis(50);
/// Whole-section budget.
const BUDGET: Duration = Duration::from_secs(60);

/// Hidden helper: echo datagrams on `addr` for at most `seconds`.
pub(crate) fn udp_echo(addr: &str, seconds: u64) -> Result<ExitCode> {
    let sock = UdpSocket::bind(addr).with_context(|| format!("binding {addr}"))?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut buf = [0u8; 256];
    while Instant::now() < end {
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            let _ = sock.send_to(&buf[..n], from);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Hidden helper: `count` sequential round trips to the echo at `addr` after a warm-up (ARP,
/// echo start-up); prints a JSON array of microseconds. Lost probes are left out.
pub(crate) fn udp_rtt(addr: &str, count: usize) -> Result<ExitCode> {
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    sock.connect(addr)
        .with_context(|| format!("connecting to {addr}"))?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut buf = [0u8; 64];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        sock.send(&u64::MAX.to_be_bytes())?;
        if sock.recv(&mut buf).is_ok() {
            break;
        }
        if Instant::now() > deadline {
            bail!("no echo from {addr} within 5 s");
        }
    }
    let mut out = Vec::with_capacity(count);
    for k in 0..count as u64 {
        let probe = k.to_be_bytes();
        let t = Instant::now();
        sock.send(&probe)?;
        while t.elapsed() < Duration::from_millis(500) {
            match sock.recv(&mut buf) {
                Ok(8) if buf[..8] == probe => {
                    out.push(t.elapsed().as_secs_f64() * 1e6);
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    println!("{}", serde_json::to_string(&out)?);
    Ok(ExitCode::SUCCESS)
}

fn skipped(reason: &str) -> Section {
    Section {
        text: format!(
            "== 5. Live propagation latency (network namespaces)\n   skipped: {reason}\n"
        ),
        json: json!({ "skipped": reason }),
    }
}

/// UDP RTT samples (µs) from host `a` to an echo on host `b`.
fn link_rtt(c: &Cluster, a: usize, b: usize) -> Result<Vec<f64>> {
    let exe = std::env::current_exe()?;
    let exe_s = exe.to_str().context("dn-bench path is not UTF-8")?;
    let addr = format!("{}:{ECHO_PORT}", c.lab.host(b).ip);
    let mut cmd = c.lab.command(b, &exe);
    cmd.args(["udp-echo", &addr, "15"]);
    let mut echo = c.lab.spawn(
        &format!("echo{b}"),
        cmd,
        &c.out_dir.join(format!("echo{b}.log")),
    )?;
    let out = c
        .lab
        .run(
            a,
            exe_s,
            &["udp-rtt", &addr, &RTT_SAMPLES.to_string()],
            Duration::from_secs(20),
        )?
        .check()?;
    let _ = echo.kill();
    let v: Vec<f64> = serde_json::from_str(out.stdout.trim())
        .with_context(|| format!("udp-rtt output: {}", out.stdout.trim()))?;
    if v.is_empty() {
        bail!("no RTT samples from host {a} to host {b}");
    }
    Ok(v)
}

pub(crate) fn run(ctx: &Ctx) -> Result<Section> {
    if let Some(why) = crate::netns_precheck(ctx)? {
        return Ok(skipped(why));
    }
    let n_msgs = if ctx.quick { 20 } else { 50 };
    let started = Instant::now();
    // The harness takes the binary from DISASTERNET_BIN and node logging from RUST_LOG.
    std::env::set_var("DISASTERNET_BIN", &ctx.disasternet);
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "info");
    }
    ctx.note("live: creating 4 namespaces ...");
    let attach = vec![&[0usize][..]; NODES];
    let Some(mut c) = Cluster::with_lab("bench_live_chain", || Lab::with_networks(1, &attach))?
    else {
        return Ok(skipped("needs root"));
    };
    let init = c.init_all(ROOM)?;
    let ids: Vec<String> = init
        .iter()
        .map(|v| v["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let neighbours: [(usize, &[usize]); NODES] = [(1, &[2]), (2, &[1, 3]), (3, &[2, 4]), (4, &[3])];
    for (i, n) in neighbours {
        c.lab.only_neighbours(i, n)?;
    }
    for i in 1..=NODES {
        c.start(i, &[])?;
    }
    let chain: Vec<(usize, BTreeSet<String>)> = neighbours
        .iter()
        .map(|&(i, n)| (i, n.iter().map(|&j| ids[j - 1].clone()).collect()))
        .collect();
    let connect_s = c
        .wait_connected_exactly("chain 1-2-3-4 connected", &chain, Duration::from_secs(25))?
        .as_secs_f64();

    ctx.note("live: link RTTs ...");
    let mut link_rtts = Vec::new();
    for a in 1..NODES {
        link_rtts.push(link_rtt(&c, a, a + 1)?);
    }

    ctx.note(&format!("live: node 1 sends {n_msgs} messages ..."));
    let mut sent: Vec<(String, u64)> = Vec::new();
    let mut send_ms = Vec::new();
    for k in 0..n_msgs {
        if started.elapsed() > BUDGET {
            bail!("over the {BUDGET:?} budget while sending");
        }
        let t = Instant::now();
        let v = c.send(1, ROOM, &format!("live latency probe {k}"))?;
        send_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let id = v["id"].as_str().unwrap_or_default().to_owned();
        let ts = v["timestamp"]
            .as_u64()
            .context("send --json printed no timestamp")?;
        sent.push((id, ts));
        thread::sleep(SEND_GAP);
    }
    let want: BTreeSet<String> = sent.iter().map(|(id, _)| id.clone()).collect();
    let left = BUDGET
        .saturating_sub(started.elapsed())
        .max(Duration::from_secs(5));
    c.wait_holds(&[2, 3, 4], ROOM, &want, left)?;

    let mut per_node = Vec::new();
    for j in 2..=NODES {
        let got: HashMap<String, u64> = c
            .log(j, ROOM)?
            .iter()
            .filter_map(|m| Some((m["id"].as_str()?.to_owned(), m["received_at"].as_u64()?)))
            .collect();
        let lat: Vec<f64> = sent
            .iter()
            .filter_map(|(id, ts)| got.get(id).map(|r| r.saturating_sub(*ts) as f64))
            .collect();
        per_node.push(lat);
    }
    for i in 1..=NODES {
        c.stop(i)?;
    }
    let wall = started.elapsed().as_secs_f64();

    let mut text = String::new();
    let _ = writeln!(
        text,
        "== 5. Live propagation latency (network namespaces, real nodes)"
    );
    let _ = writeln!(
        text,
        "   {NODES} namespaces on one bridge, cut into a chain 1–2–3–4 with nftables; release \
         `disasternet node` in each (mDNS inside the lab, RUST_LOG={}); connected in {connect_s:.1} s. \
         Node 1 sends {n_msgs} messages ({} ms apart, `send` CLI); latency = receiver's \
         received_at − sender's timestamp (same host clock, 1 ms resolution). Link RTT = UDP \
         echo inside the namespaces, {RTT_SAMPLES} probes per link.",
        std::env::var("RUST_LOG").unwrap_or_default(),
        SEND_GAP.as_millis()
    );
    let _ = writeln!(
        text,
        "   {:<10} {:>5} {:>9} {:>9} {:>9} {:>16}",
        "receiver", "hops", "p50", "p99", "max", "path RTT p50"
    );
    let mut rows = Vec::new();
    let mut path_rtt_us = 0.0;
    for (k, lat) in per_node.iter().enumerate() {
        let hops = k + 1;
        path_rtt_us += stats::pct(&link_rtts[k], 0.5);
        let (p50, p99, mx) = (stats::pct(lat, 0.5), stats::pct(lat, 0.99), stats::max(lat));
        let _ = writeln!(
            text,
            "   node {:<5} {:>5} {:>7.0}ms {:>7.0}ms {:>7.0}ms {:>13.0} µs",
            hops + 1,
            hops,
            p50,
            p99,
            mx,
            path_rtt_us
        );
        rows.push(json!({
            "receiver": hops + 1, "hops": hops, "samples": lat.len(),
            "latency_p50_ms": p50, "latency_p99_ms": p99, "latency_max_ms": mx,
            "path_rtt_p50_us": round2(path_rtt_us),
        }));
    }
    let links: Vec<Value> = link_rtts
        .iter()
        .enumerate()
        .map(|(k, v)| {
            json!({
                "link": format!("{}-{}", k + 1, k + 2), "samples": v.len(),
                "rtt_p50_us": round2(stats::pct(v, 0.5)), "rtt_p99_us": round2(stats::pct(v, 0.99)),
            })
        })
        .collect();
    for l in &links {
        let _ = writeln!(
            text,
            "   link {}: UDP RTT p50 {} µs, p99 {} µs ({} probes)",
            l["link"].as_str().unwrap_or(""),
            l["rtt_p50_us"],
            l["rtt_p99_us"],
            l["samples"]
        );
    }
    let _ = writeln!(
        text,
        "   `send` CLI call on node 1 (process start + control socket + sign + store): p50 {:.1} ms, max {:.1} ms.",
        stats::pct(&send_ms, 0.5),
        stats::max(&send_ms)
    );
    let json = json!({
        "params": {
            "nodes": NODES, "topology": "chain", "messages": n_msgs,
            "send_gap_ms": SEND_GAP.as_millis() as u64, "rtt_probes": RTT_SAMPLES,
        },
        "connect_s": round2(connect_s),
        "receivers": rows,
        "links": links,
        "send_cli_ms": { "p50": round2(stats::pct(&send_ms, 0.5)), "max": round2(stats::max(&send_ms)) },
        "section_wall_s": round2(wall),
    });
    Ok(Section { text, json })
}
