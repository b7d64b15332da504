//! `disasternet doctor` in network namespaces: three nodes on one bridge, each case a
//! different fault, and the affected node's diagnosis names that fault (each its own code)
//! within about 20 s. Needs root (or `DN_SKIP_NETNS=1`) and `cargo build --bins`. Run:
//! `cargo test -p dn-tests --test doctor -- --test-threads=1`.

#![cfg(target_os = "linux")]

use std::time::Duration;

use anyhow::{Context, Result};
use dn_tests::check;
use dn_tests::disasternet::Cluster;
use dn_tests::run_cmd;
use serde_json::Value;

/// How long a diagnosis may take to settle (a dial times out after 6 s, the probe after 5).
const DIAGNOSIS_TIMEOUT: Duration = Duration::from_secs(30);

macro_rules! cluster {
    ($name:expr, $n:expr) => {
        match Cluster::new($name, $n)? {
            Some(c) => c,
            None => return Ok(()),
        }
    };
}

/// `doctor --json` on node `i` (any exit status): the answer and the exit status.
fn doctor(c: &Cluster, i: usize) -> Result<(Value, Option<i32>)> {
    let out = c.cli_raw(i, &["doctor", "--json"])?;
    let v: Value = serde_json::from_str(out.stdout.trim())
        .with_context(|| format!("node{i}: doctor --json is not JSON: {}", out.both()))?;
    Ok((v, out.status.code()))
}

fn codes(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["code"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until node `i`'s first (worst) finding is `code`; returns the last answer, and
/// checks the exit status.
fn wait_diagnosis(c: &mut Cluster, i: usize, code: &str, exit: i32) -> Result<Value> {
    c.wait_for(
        &format!("node{i}: doctor says {code}"),
        DIAGNOSIS_TIMEOUT,
        |c| Ok(codes(&doctor(c, i)?.0).first().map(String::as_str) == Some(code)),
    )?;
    let (v, status) = doctor(c, i)?;
    eprintln!("node{i} doctor: {v:#}");
    check!(
        c,
        codes(&v).first().map(String::as_str) == Some(code),
        "node{i}: the diagnosis changed again: {v}"
    );
    check!(
        c,
        status == Some(exit),
        "node{i}: doctor exit status {status:?}, want {exit}"
    );
    let text = c.cli_raw(i, &["doctor"])?;
    eprintln!("node{i} doctor (text):\n{}", text.stdout);
    check!(
        c,
        text.stdout.contains(&format!("[{code}]")),
        "node{i}: doctor's text does not name {code}: {}",
        text.stdout
    );
    Ok(v)
}

fn init(c: &Cluster) -> Result<()> {
    for i in 1..=c.len() {
        c.init(i, &format!("node{i}"))?;
    }
    Ok(())
}

#[test]
fn doctor_healthy_baseline() -> Result<()> {
    let mut c = cluster!("doctor_healthy_baseline", 3);
    init(&c)?;
    let (v, status) = doctor(&c, 1)?;
    check!(
        c,
        v["running"] == Value::Bool(false) && status == Some(12),
        "no node yet: {v} (exit {status:?})"
    );
    for i in 1..=3 {
        c.start(i, &[])?;
    }
    c.wait_for(
        "node1 connected to both, heard by mDNS",
        DIAGNOSIS_TIMEOUT,
        |c| {
            let o = doctor(c, 1)?.0["observations"].clone();
            Ok(o["mdns_heard"].as_u64().unwrap_or(0) > 0
                && o["connected"].as_array().map_or(0, Vec::len) == 2)
        },
    )?;
    wait_diagnosis(&mut c, 1, "healthy", 0)?;
    for i in 1..=3 {
        c.stop(i)?;
    }
    Ok(())
}

/// Client isolation as access points do it: multicast and broadcast from the AP still reach
/// everyone, unicast UDP between two hosts is dropped.
#[test]
fn doctor_client_isolation() -> Result<()> {
    let mut c = cluster!("doctor_client_isolation", 3);
    init(&c)?;
    c.lab.nft_rule(
        "ether daddr & 01:00:00:00:00:00 == 00:00:00:00:00:00 ip protocol udp counter drop",
    )?;
    for i in 1..=3 {
        c.start(i, &[])?;
    }
    let v = wait_diagnosis(&mut c, 1, "client_isolation", 11)?;
    let o = &v["observations"];
    check!(
        c,
        o["heard"].as_array().map_or(0, Vec::len) == 2 && o["incoming"] == 0,
        "isolation: both peers heard, nobody came in: {o}"
    );
    for i in 1..=3 {
        c.stop(i)?;
    }
    Ok(())
}

/// Multicast and broadcast dropped: no mDNS, no beacons; peers given by `--peer` connect.
#[test]
fn doctor_multicast_blocked() -> Result<()> {
    let mut c = cluster!("doctor_multicast_blocked", 3);
    init(&c)?;
    c.lab.drop_multicast()?;
    c.lab.drop_broadcast()?;
    c.start(1, &[])?;
    let first = c.addr(1);
    c.start(2, &["--peer", &first])?;
    c.start(3, &["--peer", &first])?;
    let v = wait_diagnosis(&mut c, 2, "multicast_blocked", 10)?;
    let o = &v["observations"];
    check!(
        c,
        o["mdns_heard"] == 0 && o["beacons_heard"] == 0,
        "multicast dropped, yet heard: {o}"
    );
    for i in 1..=3 {
        c.stop(i)?;
    }
    Ok(())
}

/// Host 3's own firewall drops incoming UDP to port 7300 (nftables `inet` input hook).
#[test]
fn doctor_port_blocked() -> Result<()> {
    let mut c = cluster!("doctor_port_blocked", 3);
    init(&c)?;
    let rules = "table inet dn_doctor {\n  chain input {\n    type filter hook input priority 0; \
                 policy accept;\n    udp dport 7300 counter drop\n  }\n}\n";
    let mut nft = c.lab.command(3, "nft");
    nft.args(["-f", "-"]);
    run_cmd(nft, Some(rules.as_bytes()), Duration::from_secs(10))?.check()?;
    for i in 1..=3 {
        c.start(i, &[])?;
    }
    let v = wait_diagnosis(&mut c, 3, "port_blocked", 11)?;
    let advice = v["findings"][0]["advice"].as_str().unwrap_or_default();
    check!(
        c,
        advice.contains("ufw allow 7300/udp"),
        "port_blocked advice without the rule: {advice}"
    );
    // The others are connected to each other and only miss node 3: not their fault.
    let (v1, _) = doctor(&c, 1)?;
    check!(
        c,
        !codes(&v1)
            .iter()
            .any(|x| x == "port_blocked" || x == "client_isolation"),
        "node1 blames its own network: {v1}"
    );
    for i in 1..=3 {
        c.stop(i)?;
    }
    Ok(())
}
