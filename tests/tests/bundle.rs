//! Bundles between camps (issue 12, sneakernet): two networks with no link at all, three nodes
//! each. Messages written on network 1 (room messages and a direct message) go into a bundle
//! written with the CLI on one node there; the file is imported with the CLI on one node of
//! network 2; every message then reaches every node of network 2 exactly once, and an export
//! there verifies.
//!
//! Needs root (or `DN_SKIP_NETNS=1` to skip when not root) and a built binary
//! (`cargo build --bins`). Run: `cargo test -p dn-tests --test bundle -- --nocapture`.
//! Node logs: `target/test-output/netns/<test>/nodeN.log`; `diagnostics.txt` on failure.

#![cfg(target_os = "linux")]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Result;
use dn_tests::disasternet::Cluster;
use dn_tests::{check, Lab};
use serde_json::Value;

const ROOM: &str = "ops";
/// mDNS/beacon discovery and the first connections.
const DISCOVERY: Duration = Duration::from_secs(30);
/// A push over live links (or a catch-up).
const DELIVERY: Duration = Duration::from_secs(30);
/// Messages written on network 1.
const MESSAGES: usize = 30;

fn field(init: &[Value], f: &str) -> Vec<String> {
    init.iter()
        .map(|v| v[f].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn idset(ids: &[String], nodes: &[usize]) -> BTreeSet<String> {
    nodes.iter().map(|&j| ids[j - 1].clone()).collect()
}

/// Each node of `nodes` connected to exactly the others.
fn mesh(ids: &[String], nodes: &[usize]) -> Vec<(usize, BTreeSet<String>)> {
    nodes
        .iter()
        .map(|&i| {
            let others: Vec<usize> = nodes.iter().copied().filter(|&j| j != i).collect();
            (i, idset(ids, &others))
        })
        .collect()
}

/// Every node of `nodes` holds exactly `want` in ROOM, each id once.
fn check_exactly(c: &mut Cluster, nodes: &[usize], want: &BTreeSet<String>) -> Result<()> {
    for &i in nodes {
        let list = c.log_id_list(i, ROOM)?;
        let set: BTreeSet<String> = list.iter().cloned().collect();
        check!(
            c,
            set.len() == list.len(),
            "node{i}: duplicate ids in log --json ({} entries, {} distinct)",
            list.len(),
            set.len()
        );
        let missing: Vec<_> = want.difference(&set).collect();
        let extra: Vec<_> = set.difference(want).collect();
        check!(
            c,
            missing.is_empty() && extra.is_empty(),
            "node{i}: log differs from the expected {} ids: missing {missing:?}, extra {extra:?}",
            want.len()
        );
    }
    Ok(())
}

#[test]
fn a_bundle_carries_messages_between_networks_with_no_link() -> Result<()> {
    let t0 = Instant::now();
    // Nodes 1-3 on network 1 (10.77.1.x), nodes 4-6 on network 2 (10.77.2.x): no link.
    let Some(mut c) = Cluster::with_lab("bundle_between_networks", || {
        Lab::with_networks(2, &[&[0], &[0], &[0], &[1], &[1], &[1]])
    })?
    else {
        return Ok(());
    };
    let init = c.init_all(ROOM)?;
    let ids = field(&init, "id");
    let ip4 = c.lab.host(4).ip;
    let r = c.lab.run(
        1,
        "ip",
        &["route", "get", &ip4.to_string()],
        Duration::from_secs(5),
    )?;
    check!(c, !r.success(), "node1 has a route to node4: {}", r.stdout);
    for i in 1..=6 {
        c.start(i, &[])?;
    }
    let mut both = mesh(&ids, &[1, 2, 3]);
    both.extend(mesh(&ids, &[4, 5, 6]));
    c.wait_connected_exactly("each network connected, not to the other", &both, DISCOVERY)?;

    // Network 1 talks: room messages from all three, and a DM from node 2 to node 5 (who is
    // on the other network and has never been reachable).
    let mut want = BTreeSet::new();
    for k in 0..MESSAGES {
        let from = 1 + k % 3;
        let v = c.send(from, ROOM, &format!("camp one report {k}"))?;
        want.insert(v["id"].as_str().unwrap_or_default().to_owned());
    }
    c.cli(2, &["dm", "--to", &ids[4], "bring insulin to camp two"])?;
    c.wait_holds(&[1, 2, 3], ROOM, &want, DELIVERY)?;
    check_exactly(&mut c, &[4, 5, 6], &BTreeSet::new())?;

    // The bundle: written by the running node 1 (CLI over its control socket).
    let file = c.out_dir.join("camp1.dnb");
    let path = file.display().to_string();
    let out = c.cli(1, &["bundle", "export", &path])?;
    eprintln!("{}", out.both().trim());
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file)?.permissions());
    check!(c, mode & 0o077 == 0, "bundle mode {mode:o}");

    // Carried to network 2 and imported on node 4.
    let t_import = Instant::now();
    let rep = c.cli_json(4, &["bundle", "import", &path])?;
    eprintln!("import report: {rep}");
    check!(
        c,
        rep["invalid"] == 0 && rep["refused"] == 0 && rep["checksum_ok"] == true,
        "import report: {rep}"
    );
    check!(
        c,
        rep["imported"].as_u64() == Some(MESSAGES as u64 + 1),
        "import report: {rep}"
    );
    let took = c.wait_holds(&[4, 5, 6], ROOM, &want, DELIVERY)?;
    eprintln!(
        "every message on all of network 2 {took:.1?} after the import ({:.1?} since it began)",
        t_import.elapsed()
    );
    check_exactly(&mut c, &[4, 5, 6], &want)?;
    // The direct message reached node 5 (through node 4) and opens there.
    let dm_id = ids[1].clone();
    let what = "node5 reads node2's direct message";
    c.wait_for(what, DELIVERY, |c| {
        let v = c.cli_json(5, &["dm", "log", "--with", &dm_id])?;
        Ok(v.as_array()
            .is_some_and(|a| a.iter().any(|m| m["body"] == "bring insulin to camp two")))
    })?;

    // Importing again adds nothing; nothing is duplicated anywhere.
    let again = c.cli_json(6, &["bundle", "import", &path])?;
    check!(c, again["imported"] == 0, "second import: {again}");
    std::thread::sleep(Duration::from_secs(2));
    check_exactly(&mut c, &[4, 5, 6], &want)?;

    // What network 2 holds verifies (every signature, and the manifest of node 6's export).
    let jsonl = c.out_dir.join("node6.jsonl");
    c.cli(
        6,
        &[
            "export",
            "--room",
            ROOM,
            "--out",
            &jsonl.display().to_string(),
        ],
    )?;
    let v = c.cli_json(6, &["verify", &jsonl.display().to_string()])?;
    check!(
        c,
        v["valid"].as_u64() == Some(want.len() as u64)
            && v["lines"].as_u64() == Some(want.len() as u64)
            && v["manifest"]["status"] == "valid",
        "verify: {v}"
    );
    // Network 1 learned nothing from network 2 (there is no link).
    check!(
        c,
        c.log_id_list(1, ROOM)?.len() == want.len(),
        "network 1 changed"
    );
    for i in 1..=6 {
        c.stop(i)?;
    }
    eprintln!("total {:.1?}", t0.elapsed());
    Ok(())
}
