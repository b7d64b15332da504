//! Multi-node scenarios with the real `disasternet` binary, one network namespace per node on
//! a private bridge. Needs root (or `DN_SKIP_NETNS=1` to skip when not root) and a built binary
//! (`cargo build --bins`). Run: `cargo test -p dn-tests --test netns -- --test-threads=1`.
//! Node logs: `target/test-output/netns/<test>/nodeN.log`.

#![cfg(target_os = "linux")]

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use dn_tests::check;
use dn_tests::disasternet::Cluster;
use serde_json::Value;

const ROOM: &str = "medical";
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates the cluster or returns `Ok(())` from the test when it is skipped.
macro_rules! cluster {
    ($name:expr, $n:expr) => {
        match Cluster::new($name, $n)? {
            Some(c) => c,
            None => return Ok(()),
        }
    };
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `init --name nodeI` and `room join ROOM` on every node; returns the node ids (index 0 =
/// node 1).
fn init_all(c: &mut Cluster) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for i in 1..=c.len() {
        let name = format!("node{i}");
        let v = c.init(i, &name)?;
        let id = v["id"].as_str().unwrap_or_default().to_owned();
        check!(
            c,
            is_hex64(&id),
            "node{i}: init --json gave no 64-hex id: {v}"
        );
        check!(
            c,
            v["name"] == name.as_str(),
            "node{i}: init --json name: {v}"
        );
        check!(
            c,
            v["fingerprint"].is_string(),
            "node{i}: init --json fingerprint: {v}"
        );
        let plain = c.id(i)?;
        check!(
            c,
            plain == id,
            "node{i}: `id` printed {plain:?}, init said {id}"
        );
        c.join(i, ROOM)?;
        ids.push(id);
    }
    Ok(ids)
}

/// Waits until each node of `nodes` reports exactly the others of `nodes` as connected, in
/// both `status --json` (connected_peers) and `peers --json`.
fn wait_connected(
    c: &mut Cluster,
    nodes: &[usize],
    ids: &[String],
    timeout: Duration,
) -> Result<()> {
    let nodes = nodes.to_vec();
    let ids = ids.to_vec();
    let what = format!("nodes {nodes:?} all connected to each other");
    c.wait_for(&what, timeout, |c| {
        for &i in &nodes {
            let want: BTreeSet<String> = nodes
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| ids[j - 1].clone())
                .collect();
            let st = c.status(i)?;
            if st["connected_peers"].as_u64() != Some(want.len() as u64) {
                return Ok(false);
            }
            if !want.is_subset(&c.connected_peer_ids(i)?) {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .map(drop)
}

/// Waits until every node of `nodes` holds every message id of `want` in its log of ROOM.
fn wait_holds(
    c: &mut Cluster,
    nodes: &[usize],
    want: &BTreeSet<String>,
    timeout: Duration,
) -> Result<()> {
    let nodes = nodes.to_vec();
    let what = format!("nodes {nodes:?} hold messages {want:?}");
    let want = want.clone();
    c.wait_for(&what, timeout, |c| {
        for &i in &nodes {
            if !want.is_subset(&c.log_ids(i, ROOM)?) {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .map(drop)
}

fn msg_id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn three_nodes_discover_by_mdns_and_chat() -> Result<()> {
    let mut c = cluster!("three_nodes_discover_by_mdns_and_chat", 3);
    let ids = init_all(&mut c)?;
    for i in 1..=3 {
        c.start(i, &[])?; // default listen [::]:7300 (dual-stack), mDNS on, no --peer
    }
    for i in 1..=3 {
        let st = c.status(i)?;
        check!(
            c,
            st["mdns"] == Value::Bool(true),
            "node{i}: mdns not on by default: {st}"
        );
    }
    wait_connected(&mut c, &[1, 2, 3], &ids, DISCOVERY_TIMEOUT)?;

    // Peers carry names, addresses on the lab subnet and the room.
    for i in 1..=3 {
        for p in c.peers(i)? {
            let Some(j) = ids.iter().position(|id| p["id"] == id.as_str()) else {
                continue;
            };
            let name = format!("node{}", j + 1);
            check!(
                c,
                p["name"] == name.as_str(),
                "node{i}: peer {name} has name {}",
                p["name"]
            );
            let ip = c.lab.host(j + 1).ip.to_string();
            let addrs = p["addresses"].as_array().cloned().unwrap_or_default();
            check!(
                c,
                addrs
                    .iter()
                    .any(|a| a.as_str().is_some_and(|a| a.starts_with(&ip))),
                "node{i}: peer {name} addresses {addrs:?} lack {ip}"
            );
        }
    }

    // One message from node 1 reaches everyone.
    let first = c.send(1, ROOM, "hello from node1")?;
    check!(
        c,
        first["author"] == ids[0].as_str(),
        "send: author {first}"
    );
    check!(
        c,
        first["author_name"] == "node1",
        "send: author_name {first}"
    );
    check!(
        c,
        first["body"] == "hello from node1" && first["room"] == ROOM,
        "send: {first}"
    );
    check!(
        c,
        first["local"] == Value::Bool(true),
        "send: local should be true: {first}"
    );
    let mut want: BTreeSet<String> = [msg_id(&first)].into();
    wait_holds(&mut c, &[1, 2, 3], &want, DELIVERY_TIMEOUT)?;
    for i in 2..=3 {
        let log = c.log(i, ROOM)?;
        let m = log
            .iter()
            .find(|m| m["id"] == first["id"])
            .cloned()
            .unwrap_or_default();
        check!(
            c,
            m["body"] == "hello from node1",
            "node{i}: received body differs: {m}"
        );
        check!(
            c,
            m["author"] == first["author"],
            "node{i}: received author differs: {m}"
        );
        check!(
            c,
            m["signature"] == first["signature"],
            "node{i}: signature differs: {m}"
        );
        check!(
            c,
            m["local"] == Value::Bool(false),
            "node{i}: received message marked local: {m}"
        );
    }

    // Each node sends one; all hold all four.
    for i in 1..=3 {
        want.insert(msg_id(&c.send(
            i,
            ROOM,
            &format!("status report from node{i}"),
        )?));
    }
    check!(c, want.len() == 4, "message ids not unique: {want:?}");
    wait_holds(&mut c, &[1, 2, 3], &want, DELIVERY_TIMEOUT)?;
    for i in 1..=3 {
        let log = c.log(i, ROOM)?;
        check!(
            c,
            log.len() == 4,
            "node{i}: {} messages in log, expected 4",
            log.len()
        );
        let ts: Vec<u64> = log.iter().filter_map(|m| m["timestamp"].as_u64()).collect();
        check!(
            c,
            ts.windows(2).all(|w| w[0] <= w[1]),
            "node{i}: log not oldest first: {ts:?}"
        );
        let st = c.status(i)?;
        check!(
            c,
            st["messages"].as_u64() == Some(4),
            "node{i}: status.messages: {st}"
        );
        // node1 wrote 2 of the 4 messages, nodes 2 and 3 one each.
        let from_peers = if i == 1 { 2 } else { 3 };
        check!(
            c,
            st["received"].as_u64().is_some_and(|r| r >= from_peers),
            "node{i}: status.received should be >= {from_peers}: {st}"
        );
        check!(
            c,
            st["rejected"].as_u64() == Some(0),
            "node{i}: status.rejected: {st}"
        );
    }
    for i in 1..=3 {
        c.stop(i)?;
    }
    Ok(())
}

#[test]
fn restarted_node_catches_up() -> Result<()> {
    let mut c = cluster!("restarted_node_catches_up", 3);
    let ids = init_all(&mut c)?;
    for i in 1..=3 {
        c.start(i, &[])?;
    }
    wait_connected(&mut c, &[1, 2, 3], &ids, DISCOVERY_TIMEOUT)?;
    let before = c.send(3, ROOM, "node3 before going down")?;
    wait_holds(
        &mut c,
        &[1, 2, 3],
        &[msg_id(&before)].into(),
        DELIVERY_TIMEOUT,
    )?;

    c.stop(3)?;
    let st = c.status(3)?;
    check!(
        c,
        st["running"] == Value::Bool(false),
        "node3 stopped but status says running: {st}"
    );
    // Nodes 1 and 2 should notice the loss (close on shutdown, or QUIC idle timeout). Not
    // the point of this test: a failure here is reported at the end.
    let mut soft = Vec::new();
    if let Err(e) = wait_connected(&mut c, &[1, 2], &ids, DISCOVERY_TIMEOUT) {
        soft.push(format!(
            "after node3 stopped, nodes 1 and 2 did not drop it: {e:#}"
        ));
    }

    let mut missed = BTreeSet::new();
    for k in 1..=5 {
        missed.insert(msg_id(&c.send(
            1,
            ROOM,
            &format!("while node3 is down #{k}"),
        )?));
    }
    missed.insert(msg_id(&c.send(2, ROOM, "node2 while node3 is down")?));
    wait_holds(&mut c, &[1, 2], &missed, DELIVERY_TIMEOUT)?;

    // A send with the node stopped goes to the store directly.
    let offline = c.send(3, ROOM, "written by node3 while offline")?;
    check!(
        c,
        offline["local"] == Value::Bool(true),
        "offline send: {offline}"
    );
    let offline_id: BTreeSet<String> = [msg_id(&offline)].into();
    check!(
        c,
        c.log_ids(3, ROOM)?.is_superset(&offline_id),
        "offline send not in node3's own log"
    );

    c.start(3, &[])?;
    wait_holds(&mut c, &[3], &missed, CATCH_UP_TIMEOUT)?;
    wait_holds(&mut c, &[1, 2], &offline_id, CATCH_UP_TIMEOUT)?;
    wait_connected(&mut c, &[1, 2, 3], &ids, DISCOVERY_TIMEOUT)?;
    for i in 1..=3 {
        let n = c.log(i, ROOM)?.len();
        check!(
            c,
            n == 8,
            "node{i}: {n} messages, expected 8 (1 before + 6 missed + 1 offline)"
        );
    }
    for i in 1..=3 {
        c.stop(i)?;
    }
    if !soft.is_empty() {
        bail!("catch-up worked, but:\n{}", soft.join("\n"));
    }
    Ok(())
}

/// Flips the first character of the `body` value in one JSON line (raw text edit, so
/// everything else stays byte-identical).
fn corrupt_body(line: &str) -> Result<String> {
    let key = "\"body\":";
    let at = line.find(key).context("no \"body\" field")? + key.len();
    let rest = &line[at..];
    let quote = rest.find('"').context("body is not a string")?;
    let start = at + quote + 1;
    let ch = line[start..].chars().next().context("empty body")?;
    let flipped = if ch.is_ascii_lowercase() {
        ch.to_ascii_uppercase()
    } else if ch.is_ascii_uppercase() {
        ch.to_ascii_lowercase()
    } else if ch == 'x' {
        'y'
    } else {
        'x'
    };
    let mut out = line.to_owned();
    out.replace_range(start..start + ch.len_utf8(), &flipped.to_string());
    Ok(out)
}

/// True when `text` names line `n` ("line 2", "line: 2", "line #2", ":2:").
fn names_line(text: &str, n: u64) -> bool {
    let lower = text.to_lowercase();
    let num = n.to_string();
    let mut found = false;
    for (pos, _) in lower.match_indices("line") {
        let after = lower[pos + 4..].trim_start_matches([' ', ':', '#', '\t']);
        if after.starts_with(&num) && !after[num.len()..].starts_with(|c: char| c.is_ascii_digit())
        {
            found = true;
        }
    }
    found || lower.contains(&format!(":{num}:"))
}

#[test]
fn export_and_verify() -> Result<()> {
    let mut c = cluster!("export_and_verify", 2);
    let ids = init_all(&mut c)?;
    for i in 1..=2 {
        c.start(i, &[])?;
    }
    wait_connected(&mut c, &[1, 2], &ids, DISCOVERY_TIMEOUT)?;
    let mut want = BTreeSet::new();
    for k in 1..=2 {
        for i in 1..=2 {
            want.insert(msg_id(&c.send(
                i,
                ROOM,
                &format!("entry {k} from node{i}"),
            )?));
        }
    }
    wait_holds(&mut c, &[1], &want, DELIVERY_TIMEOUT)?;

    // Export (while the node runs: the file is written by the node's process).
    let file = c.out_dir.join("export-medical.jsonl");
    let file_s = file.to_string_lossy().into_owned();
    c.cli(1, &["export", "--room", ROOM, "--out", &file_s])?;
    let text = fs::read_to_string(&file).with_context(|| format!("reading {file_s}"))?;
    // Message lines; a signed export ends with a `{"manifest":…}` line (docs/protocol.md).
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("{\"manifest\""))
        .collect();
    check!(
        c,
        lines.len() == 4,
        "export has {} lines, expected 4:\n{text}",
        lines.len()
    );
    let mut exported = BTreeSet::new();
    for l in &lines {
        let v: Value =
            serde_json::from_str(l).with_context(|| format!("export line is not JSON: {l}"))?;
        for f in [
            "id",
            "room",
            "author",
            "author_name",
            "timestamp",
            "body",
            "signature",
            "signed",
        ] {
            check!(c, !v[f].is_null(), "export line lacks {f}: {l}");
        }
        exported.insert(msg_id(&v));
    }
    check!(
        c,
        exported == want,
        "exported ids {exported:?} != sent {want:?}"
    );

    let ok = c.cli_raw(1, &["verify", &file_s])?;
    check!(
        c,
        ok.success(),
        "verify of a fresh export failed:\n{}",
        ok.both()
    );
    // verify works on any host, with no node and no data dir of its own.
    let ok2 = c.cli_raw(2, &["verify", &file_s])?;
    check!(c, ok2.success(), "verify on node2 failed:\n{}", ok2.both());

    // Export of all rooms (no --room) while stopped works on the store directly.
    c.stop(1)?;
    let all = c.out_dir.join("export-all.jsonl");
    let all_s = all.to_string_lossy().into_owned();
    c.cli(1, &["export", "--out", &all_s])?;
    let all_lines = fs::read_to_string(&all)?
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("{\"manifest\""))
        .count();
    check!(
        c,
        all_lines == 4,
        "export of all rooms: {all_lines} lines, expected 4"
    );
    check!(
        c,
        c.cli_raw(1, &["verify", &all_s])?.success(),
        "verify of all-rooms export failed"
    );

    // Flip one character of the body of line 2.
    let mut corrupted: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    corrupted[1] = corrupt_body(lines[1])?;
    check!(
        c,
        corrupted[1] != lines[1],
        "corruption did not change the line"
    );
    let bad = c.out_dir.join("export-corrupted.jsonl");
    let bad_s = bad.to_string_lossy().into_owned();
    fs::write(&bad, corrupted.join("\n") + "\n")?;
    let out = c.cli_raw(1, &["verify", &bad_s])?;
    check!(
        c,
        !out.success(),
        "verify accepted a corrupted body (exit 0):\n{}",
        out.both()
    );
    check!(
        c,
        names_line(&format!("{}\n{}", out.stdout, out.stderr), 2),
        "verify failed but does not name line 2:\n{}",
        out.both()
    );
    let json = c.cli_raw(1, &["verify", &bad_s, "--json"])?;
    check!(
        c,
        !json.success(),
        "verify --json accepted the corrupted file"
    );
    if let Ok(v) = serde_json::from_str::<Value>(json.stdout.trim()) {
        let lines_failed: Vec<u64> = v["failures"]
            .as_array()
            .map(|a| a.iter().filter_map(|f| f["line"].as_u64()).collect())
            .unwrap_or_default();
        check!(
            c,
            lines_failed == [2],
            "verify --json failures should be [line 2]: {v}"
        );
        check!(
            c,
            v["valid"].as_u64() == Some(3),
            "verify --json valid should be 3: {v}"
        );
    }
    c.stop(2)?;
    Ok(())
}

#[test]
fn sigkill_leaves_no_stale_lock() -> Result<()> {
    let mut c = cluster!("sigkill_leaves_no_stale_lock", 2);
    let ids = init_all(&mut c)?;
    for i in 1..=2 {
        c.start(i, &[])?;
    }
    wait_connected(&mut c, &[1, 2], &ids, DISCOVERY_TIMEOUT)?;
    c.kill(1)?;

    // With the node dead, the CLI must not be fooled by a leftover socket or lock file.
    let st = c.status(1)?;
    check!(
        c,
        st["running"] == Value::Bool(false),
        "node1 SIGKILLed but status says running: {st}"
    );
    let offline = c.send(1, ROOM, "sent after SIGKILL, before restart")?;

    // Restart at once on the same data dir (start() waits ≤ 15 s for running: true).
    c.start(1, &[])?;
    wait_connected(&mut c, &[1, 2], &ids, DISCOVERY_TIMEOUT)?;
    let after = c.send(1, ROOM, "sent after restart")?;
    wait_holds(
        &mut c,
        &[2],
        &[msg_id(&offline), msg_id(&after)].into(),
        DELIVERY_TIMEOUT,
    )?;

    // Twice more in a row: kill and restart immediately.
    for _ in 0..2 {
        c.kill(1)?;
        c.start(1, &[])?;
    }
    c.stop(1)?;
    c.stop(2)?;
    Ok(())
}

#[test]
fn second_node_on_same_data_dir_is_refused() -> Result<()> {
    let mut c = cluster!("second_node_on_same_data_dir_is_refused", 1);
    init_all(&mut c)?;
    c.start(1, &["--no-mdns", "--no-beacon"])?;
    // Another port, so only the data dir can be the reason for a refusal.
    let log = c.out_dir.join("node1-second.log");
    let mut second = c.spawn_node(
        1,
        &["--listen", "0.0.0.0:7302", "--no-mdns", "--no-beacon"],
        &log,
    )?;
    let exit = second.wait_exit(Duration::from_secs(15))?;
    let Some(exit) = exit else {
        second.kill()?;
        let tail = dn_tests::tail_file(&log, 40);
        return Err(c.fail(&format!(
            "a second node on the same data dir is still running after 15 s; its log:\n{tail}"
        )));
    };
    let text = fs::read_to_string(&log).unwrap_or_default();
    check!(
        c,
        !exit.success(),
        "second node exited 0 (should fail); log:\n{text}"
    );
    let lower = text.to_lowercase();
    check!(
        c,
        ["already", "running", "busy", "lock", "in use"]
            .iter()
            .any(|w| lower.contains(w)),
        "second node's error is not clear (no already/running/busy/lock/in use); log:\n{text}"
    );
    // The first node is unharmed.
    c.check_alive()?;
    let st = c.status(1)?;
    check!(
        c,
        st["running"] == Value::Bool(true),
        "first node no longer running: {st}"
    );
    check!(
        c,
        st["listen"].as_str().is_some_and(|l| l.ends_with(":7300")),
        "listen: {st}"
    );
    c.send(1, ROOM, "still works")?;
    c.stop(1)?;
    Ok(())
}

#[test]
fn static_peer_without_mdns() -> Result<()> {
    let mut c = cluster!("static_peer_without_mdns", 2);
    let ids = init_all(&mut c)?;
    // Prove mDNS plays no part: it is dropped on the bridge.
    c.lab.drop_mdns()?;
    c.start(1, &["--no-mdns", "--no-beacon"])?;
    let peer = c.addr(1);
    c.start(2, &["--no-mdns", "--no-beacon", "--peer", &peer])?;
    for i in 1..=2 {
        let st = c.status(i)?;
        check!(
            c,
            st["mdns"] == Value::Bool(false),
            "node{i}: --no-mdns but status.mdns: {st}"
        );
    }
    wait_connected(&mut c, &[1, 2], &ids, DISCOVERY_TIMEOUT)?;
    let a = c.send(1, ROOM, "from node1 over a static peer link")?;
    let b = c.send(2, ROOM, "from node2 over a static peer link")?;
    wait_holds(
        &mut c,
        &[1, 2],
        &[msg_id(&a), msg_id(&b)].into(),
        DELIVERY_TIMEOUT,
    )?;
    for i in 1..=2 {
        c.stop(i)?;
    }
    Ok(())
}

#[test]
fn beacon_finds_peers_when_multicast_is_blocked() -> Result<()> {
    let mut c = cluster!("beacon_finds_peers_when_multicast_is_blocked", 3);
    let ids = init_all(&mut c)?;
    // IPv4 and IPv6 multicast (so mDNS) are dropped on the bridge; broadcast still passes.
    c.lab
        .nft_rule("ether daddr & ff:ff:ff:00:00:00 == 01:00:5e:00:00:00 drop")?;
    c.lab
        .nft_rule("ether daddr & ff:ff:00:00:00:00 == 33:33:00:00:00:00 drop")?;
    for i in 1..=3 {
        c.start(i, &[])?; // no --peer: only the broadcast beacon can find the others
    }
    wait_connected(&mut c, &[1, 2, 3], &ids, DISCOVERY_TIMEOUT)?;
    let a = c.send(3, ROOM, "found you by broadcast")?;
    wait_holds(&mut c, &[1, 2, 3], &[msg_id(&a)].into(), DELIVERY_TIMEOUT)?;
    for i in 1..=3 {
        c.stop(i)?;
    }
    Ok(())
}

/// Each node is given only the previous node's address, no mDNS, no beacon: peer exchange
/// (signed neighbour lists carry addresses) must still connect everyone to everyone, and the
/// network map must show the whole network.
#[test]
fn one_peer_address_is_enough_to_join_the_whole_network() -> Result<()> {
    let mut c = cluster!("one_peer_address_is_enough_to_join_the_whole_network", 4);
    let ids = init_all(&mut c)?;
    c.lab.drop_multicast()?;
    c.start(1, &["--no-mdns", "--no-beacon"])?;
    for i in 2..=4 {
        let prev = c.addr(i - 1);
        c.start(i, &["--no-mdns", "--no-beacon", "--peer", &prev])?;
    }
    wait_connected(&mut c, &[1, 2, 3, 4], &ids, DISCOVERY_TIMEOUT)?;
    for i in 1..=4 {
        let st = c.status(i)?;
        let nodes = st["network"]["nodes"].as_array().map_or(0, Vec::len);
        check!(
            c,
            nodes == 4,
            "node{i} sees {nodes} nodes in its network map: {st}"
        );
    }
    let a = c.send(4, ROOM, "reached everyone from one address")?;
    wait_holds(
        &mut c,
        &[1, 2, 3, 4],
        &[msg_id(&a)].into(),
        DELIVERY_TIMEOUT,
    )?;
    for i in 1..=4 {
        c.stop(i)?;
    }
    Ok(())
}

/// A bounded view (target 2, limit 3 instead of 8 and 12, so six hosts are "many"): every
/// node hears every other by mDNS but keeps at most 3 connections; still every node maps all
/// six with a hop count through the mesh, and messages from changing senders reach everyone.
#[test]
fn a_bounded_view_keeps_few_connections_and_still_reaches_everyone() -> Result<()> {
    const N: usize = 6;
    const MAX: u64 = 3;
    let mut c = cluster!(
        "a_bounded_view_keeps_few_connections_and_still_reaches_everyone",
        N
    );
    let ids = init_all(&mut c)?;
    let all: Vec<usize> = (1..=N).collect();
    for &i in &all {
        c.start(i, &["--view-target", "2", "--view-max", "3"])?;
    }
    // Every node maps all six with hops, holding at most MAX connections.
    let settle = |c: &Cluster| -> Result<bool> {
        for i in 1..=N {
            let st = c.status(i)?;
            let conns = st["connected_peers"].as_u64().unwrap_or(u64::MAX);
            let nodes = st["network"]["nodes"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mapped = nodes.iter().filter(|n| n["hops"].is_u64()).count();
            if conns == 0 || conns > MAX || mapped != N {
                return Ok(false);
            }
        }
        Ok(true)
    };
    c.wait_for(
        "every node maps all six within its connection limit",
        Duration::from_secs(90),
        settle,
    )?;
    let mut far = 0;
    for i in 1..=N {
        let st = c.status(i)?;
        let conns = st["connected_peers"].as_u64().unwrap_or(u64::MAX);
        check!(c, conns <= MAX, "node{i} has {conns} connections: {st}");
        let peers = c.peers(i)?;
        for (j, id) in ids.iter().enumerate() {
            if j + 1 == i {
                continue;
            }
            let hops = st["network"]["nodes"]
                .as_array()
                .and_then(|v| v.iter().find(|n| n["id"] == id.as_str()))
                .and_then(|n| n["hops"].as_u64());
            check!(
                c,
                hops.is_some(),
                "node{i} has no hops to node{}: {st}",
                j + 1
            );
            if hops.is_some_and(|h| h > 1) {
                far += 1;
            }
        }
        // The peer list names every other node, reachable with hops, connected or not.
        for (j, id) in ids.iter().enumerate() {
            if j + 1 == i {
                continue;
            }
            let listed = peers.iter().find(|p| p["id"] == id.as_str());
            check!(
                c,
                listed.is_some_and(|p| p["hops"].is_u64()),
                "node{i}'s peer list lacks node{} with hops: {peers:?}",
                j + 1
            );
        }
    }
    check!(
        c,
        far > 0,
        "with at most {MAX} connections of 5, some nodes are 2+ hops away"
    );
    let mut want = BTreeSet::new();
    for (k, sender) in [1, 4, 6, 2].into_iter().enumerate() {
        want.insert(msg_id(&c.send(
            sender,
            ROOM,
            &format!("view message {k}"),
        )?));
    }
    wait_holds(&mut c, &all, &want, DELIVERY_TIMEOUT)?;
    for i in 1..=N {
        c.stop(i)?;
    }
    Ok(())
}

/// A and C never meet; B meets both and never joins the room: B carries the room anyway
/// (store-and-forward), so A's message reaches C, even when A is gone by the time C arrives.
#[test]
fn relay_that_never_joined_the_room_carries_it() -> Result<()> {
    let mut c = cluster!("relay_that_never_joined_the_room_carries_it", 3);
    for i in 1..=3 {
        c.init(i, &format!("node{i}"))?;
    }
    c.join(1, ROOM)?;
    c.join(3, ROOM)?;
    c.lab.only_neighbours(1, &[2])?;
    c.lab.only_neighbours(3, &[2])?;
    // A and B meet; A says something and leaves.
    c.start(1, &[])?;
    c.start(2, &[])?;
    let a = c.send(1, ROOM, "water point moved to the north gate")?;
    wait_holds(&mut c, &[2], &[msg_id(&a)].into(), DELIVERY_TIMEOUT)?;
    c.stop(1)?;
    let rooms: Value = serde_json::from_str(&c.cli(2, &["room", "list", "--json"])?.stdout)?;
    check!(
        c,
        rooms
            .as_array()
            .is_some_and(|r| r.iter().all(|r| r["joined"] == Value::Bool(false))),
        "B must not have joined any room: {rooms}"
    );
    // C arrives later and only ever meets B.
    c.start(3, &[])?;
    wait_holds(&mut c, &[3], &[msg_id(&a)].into(), DELIVERY_TIMEOUT)?;
    for i in 2..=3 {
        c.stop(i)?;
    }
    Ok(())
}

/// A carrier with a 1 MiB carry quota takes in a room of ≈ 2.8 MB: it keeps the newest part
/// (the oldest go first), passes the newest messages on to a node it meets later, and after a
/// restart does not fetch the evicted messages again (their ids are kept).
#[test]
fn carrier_evicts_the_oldest_over_its_quota_and_does_not_fetch_them_again() -> Result<()> {
    use dn_tests::hostile::{seed, ROOM as OPS};
    let mut c = cluster!(
        "carrier_evicts_the_oldest_over_its_quota_and_does_not_fetch_them_again",
        3
    );
    for i in 1..=3 {
        c.init(i, &format!("node{i}"))?;
    }
    c.join(1, OPS)?;
    c.join(3, OPS)?;
    c.lab.only_neighbours(1, &[2])?;
    c.lab.only_neighbours(3, &[2])?;
    const SEEDED: usize = 2_000; // 1.4 KB bodies: ≈ 2.8 MB
    seed(&c, 1, SEEDED)?;
    let quota: &[&str] = &["--carry-quota-mb", "1"];
    c.start(1, &[])?;
    c.start(2, quota)?;
    let latest = c.send(1, OPS, "convoy leaves at six")?;
    c.wait_holds(&[2], OPS, &[msg_id(&latest)].into(), CATCH_UP_TIMEOUT)?;
    // The catch-up brings everything; the ticks (every 5 s) evict the oldest as it comes.
    let all = SEEDED as u64 + 1;
    c.wait_for(
        "the carrier took in or evicted every message",
        CATCH_UP_TIMEOUT,
        |c| {
            let s = c.status(2)?;
            let evicted = s["carry_evicted"].as_u64().unwrap_or(0);
            Ok(evicted > 0 && evicted + s["messages"].as_u64().unwrap_or(0) == all)
        },
    )?;
    std::thread::sleep(Duration::from_secs(6)); // one more tick: nothing left to evict
    let s = c.status(2)?;
    let kept = s["messages"].as_u64().unwrap_or(0);
    check!(
        c,
        s["carry_quota_full"] == false,
        "quota full after evicting: {s}"
    );
    check!(
        c,
        (300..800).contains(&kept) && s["carry_evicted"].as_u64().unwrap_or(0) + kept == all,
        "kept {kept} of {SEEDED}: {s}"
    );
    // A restart while node 1 is still there: the evicted ids keep the catch-up from
    // fetching them again (nothing to evict afterwards).
    c.stop(2)?;
    c.start(2, quota)?;
    let again = c.send(1, OPS, "second convoy at noon")?;
    c.wait_holds(&[2], OPS, &[msg_id(&again)].into(), CATCH_UP_TIMEOUT)?;
    std::thread::sleep(Duration::from_secs(11)); // two ticks
    let s = c.status(2)?;
    check!(
        c,
        s["carry_evicted"] == 0 && s["messages"].as_u64() == Some(kept + 1),
        "the restarted carrier fetched evicted messages again: kept {kept} before, now {s}"
    );
    // Node 3 meets only the carrier, after node 1 left: the newest messages reach it.
    c.stop(1)?;
    c.start(3, &[])?;
    c.wait_holds(
        &[3],
        OPS,
        &[msg_id(&latest), msg_id(&again)].into(),
        CATCH_UP_TIMEOUT,
    )?;
    let got = c.status(3)?["messages"].as_u64().unwrap_or(0);
    check!(
        c,
        got == kept + 1,
        "node 3 got {got}, the carrier kept {}",
        kept + 1
    );
    for i in 2..=3 {
        c.stop(i)?;
    }
    Ok(())
}

/// A direct message crosses a chain A–B–C–D where only neighbours reach each other; D reads
/// it, A reads its own copy, and no carrier's store (database and WAL files) holds the text.
#[test]
fn direct_message_crosses_a_chain_and_carriers_cannot_read_it() -> Result<()> {
    let mut c = cluster!(
        "direct_message_crosses_a_chain_and_carriers_cannot_read_it",
        4
    );
    let ids = init_all(&mut c)?;
    c.lab.only_neighbours(1, &[2])?;
    c.lab.only_neighbours(2, &[1, 3])?;
    c.lab.only_neighbours(3, &[2, 4])?;
    c.lab.only_neighbours(4, &[3])?;
    for i in 1..=4 {
        c.start(i, &[])?;
    }
    let secret = "team 3, go to the school on Elm street";
    let out = c.cli(1, &["dm", "--to", &ids[3], secret])?;
    let dm_id = out.stdout.trim().to_owned();
    check!(c, dm_id.len() == 64, "dm printed no id: {}", out.stdout);
    let deadline = std::time::Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let log: Value = serde_json::from_str(
            &c.cli(4, &["dm", "log", "--with", &ids[0], "--json"])?
                .stdout,
        )?;
        if log
            .as_array()
            .is_some_and(|a| a.iter().any(|m| m["body"] == secret))
        {
            break;
        }
        check!(
            c,
            std::time::Instant::now() < deadline,
            "D never read the DM: {log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let own: Value = serde_json::from_str(
        &c.cli(1, &["dm", "log", "--with", &ids[3], "--json"])?
            .stdout,
    )?;
    check!(
        c,
        own.as_array().is_some_and(|a| a
            .iter()
            .any(|m| m["body"] == secret && m["outgoing"] == true)),
        "A cannot read its own DM: {own}"
    );
    for carrier in [2, 3] {
        let log: Value = serde_json::from_str(
            &c.cli(carrier, &["dm", "log", "--with", &ids[0], "--json"])?
                .stdout,
        )?;
        check!(
            c,
            log.as_array().is_some_and(Vec::is_empty),
            "carrier {carrier} reads: {log}"
        );
    }
    for i in 1..=4 {
        c.stop(i)?;
    }
    for carrier in [2, 3] {
        let dir = c.node(carrier).data_dir.clone();
        let mut carried = false;
        for f in ["store.sqlite3", "store.sqlite3-wal"] {
            let bytes = std::fs::read(dir.join(f)).unwrap_or_default();
            check!(
                c,
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "carrier {carrier}'s {f} contains the plaintext"
            );
            carried |= bytes.windows(4).any(|w| w == b"dm1:");
        }
        check!(
            c,
            carried,
            "carrier {carrier} did not store the envelope it relayed"
        );
    }
    Ok(())
}

/// Bodies shown in node `i`'s log of `room`.
fn bodies(c: &Cluster, i: usize, room: &str) -> Result<Vec<String>> {
    Ok(c.log(i, room)?
        .iter()
        .filter_map(|m| m["body"].as_str().map(str::to_owned))
        .collect())
}

/// True when some file directly under `dir` holds `needle`.
fn dir_holds(dir: &std::path::Path, needle: &[u8]) -> Result<Vec<String>> {
    let mut hits = Vec::new();
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_file() {
            let bytes = fs::read(&p)?;
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(p.display().to_string());
            }
        }
    }
    Ok(hits)
}

/// A private room on a chain 1 – 2 – 3 – 4 – 5: nodes 1 (creator), 4 and 5 are members, 2 and
/// 3 are carriers that never get the invite. Members read everything both ways across the
/// carriers; a mistyped invite is refused; 1 removes 5, and what 1 writes afterwards reaches 4
/// (its new key crossed the carriers in a direct message) but not 5, which holds the message
/// and cannot open it. The carriers' files (store, WAL, logs) hold neither the room's name nor
/// a body, only envelopes.
#[test]
fn private_room_across_carriers() -> Result<()> {
    let mut c = cluster!("private_room_across_carriers", 5);
    let ids = init_all(&mut c)?;
    c.lab.only_neighbours(1, &[2])?;
    c.lab.only_neighbours(2, &[1, 3])?;
    c.lab.only_neighbours(3, &[2, 4])?;
    c.lab.only_neighbours(4, &[3, 5])?;
    c.lab.only_neighbours(5, &[4])?;
    for i in 1..=5 {
        c.start(i, &[])?;
    }
    let title = "triage-zone7";
    let created = c.cli_json(1, &["room", "create", title, "--private"])?;
    let code = created["invite"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let room = created["room"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    check!(
        c,
        code.starts_with("DNI1-") && room.starts_with("p."),
        "create: {created}"
    );

    // One wrong character: a clear error, nothing joined.
    let mut typo: Vec<char> = code.chars().collect();
    let at = typo.len() / 2;
    typo[at] = if typo[at] == '7' { '8' } else { '7' };
    let typo: String = typo.into_iter().collect();
    let out = c.cli_raw(4, &["room", "join", "--invite", &typo])?;
    check!(
        c,
        !out.success() && out.stderr.contains("typo"),
        "a mistyped invite was not refused clearly: {}",
        out.both()
    );
    let rooms = c.cli(4, &["room", "list", "--json"])?.stdout;
    check!(
        c,
        !rooms.contains(&room),
        "the typo joined something: {rooms}"
    );

    // Node 4 joins with the code, node 5 with an invite file written by node 1.
    let file = c.node(1).data_dir.parent().map_or_else(
        || std::path::PathBuf::from("/tmp/invite.txt"),
        |p| p.join("triage.invite"),
    );
    c.cli(
        1,
        &[
            "room",
            "invite",
            title,
            "--file",
            &file.display().to_string(),
        ],
    )?;
    c.cli(4, &["room", "join", "--invite", &code])?;
    c.cli(
        5,
        &["room", "join", "--invite", &file.display().to_string()],
    )?;

    let first = "patient Zed in tent 4 needs insulin";
    let reply = "Bo here: insulin on its way to tent 4";
    c.send(1, title, first)?;
    c.send(4, title, reply)?;
    c.wait_for("members read both messages", CATCH_UP_TIMEOUT, |c| {
        Ok([1, 4, 5].iter().all(|&i| {
            bodies(c, i, title)
                .is_ok_and(|b| b.iter().any(|x| x == first) && b.iter().any(|x| x == reply))
        }))
    })?;
    for carrier in [2, 3] {
        let out = c.cli_raw(carrier, &["log", "--room", &room, "--json"])?;
        check!(
            c,
            !out.stdout.contains(first) && !out.stdout.contains("tent"),
            "carrier {carrier} shows the room: {}",
            out.both()
        );
    }

    // Node 1 removes node 5; node 4 gets the new key over the carriers.
    c.cli(1, &["room", "remove", title, &ids[4]])?;
    let after = "after removal: Zed moved to tent 9";
    c.send(1, title, after)?;
    c.wait_for(
        "node 4 reads what came after the removal",
        CATCH_UP_TIMEOUT,
        |c| Ok(bodies(c, 4, title)?.iter().any(|x| x == after)),
    )?;
    // Node 5 holds every message node 1 holds (sealed), and shows all but the last one.
    let count = |c: &Cluster, i: usize| -> Result<u64> {
        let rooms = c.cli_json(i, &["room", "list"])?;
        Ok(rooms
            .as_array()
            .and_then(|a| a.iter().find(|r| r["name"] == room.as_str()))
            .and_then(|r| r["messages"].as_u64())
            .unwrap_or(0))
    };
    c.wait_for(
        "node 5 holds the message it cannot read",
        CATCH_UP_TIMEOUT,
        |c| Ok(count(c, 5)? == count(c, 1)?),
    )?;
    let out = c.cli_raw(5, &["send", "--room", title, "still here?"])?;
    check!(
        c,
        !out.success() && out.stderr.contains("you were removed"),
        "a removed member could write: {}",
        out.both()
    );
    let five = bodies(&c, 5, title)?;
    check!(
        c,
        five.iter().any(|b| b.starts_with("removed")) && !five.iter().any(|b| b.contains("tent 9")),
        "node 5 after its removal: {five:?}"
    );

    for i in 1..=5 {
        c.stop(i)?;
    }
    for carrier in [2, 3] {
        let dir = c.node(carrier).data_dir.clone();
        for secret in [title, first, reply, after, "insulin", "tent 9"] {
            let mut hits = dir_holds(&dir, secret.as_bytes())?;
            let log = fs::read(&c.node(carrier).log).unwrap_or_default();
            if log.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                hits.push(c.node(carrier).log.display().to_string());
            }
            check!(
                c,
                hits.is_empty(),
                "carrier {carrier} holds {secret:?} in {hits:?}"
            );
        }
        check!(
            c,
            !dir_holds(&dir, b"pr1:")?.is_empty(),
            "carrier {carrier} did not store the envelopes it relayed"
        );
    }
    // The search finds what is there: the creator's store holds the room's name.
    check!(
        c,
        !dir_holds(&c.node(1).data_dir.clone(), title.as_bytes())?.is_empty(),
        "search broken"
    );
    Ok(())
}

#[test]
fn helpers_work() -> Result<()> {
    let line = r#"{"id":"ab","body":"hello","x":1}"#;
    let bad = corrupt_body(line)?;
    if bad != r#"{"id":"ab","body":"Hello","x":1}"# {
        bail!("corrupt_body: {bad}");
    }
    ensure!(names_line("line 2: bad signature", 2));
    ensure!(names_line("export.jsonl:2: bad", 2));
    ensure!(names_line("Line #2 failed", 2));
    ensure!(!names_line("line 21 failed", 2));
    ensure!(!names_line("2 lines ok", 2));
    Ok(())
}
