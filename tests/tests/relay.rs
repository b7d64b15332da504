//! Relays between sites and IPv6, with the real `disasternet` binary in network namespaces
//! (root, or `DN_SKIP_NETNS=1` to skip). Run: `cargo test -p dn-tests --test relay --
//! --test-threads=1`. Node logs: `target/test-output/netns/<test>/nodeN.log`.

#![cfg(target_os = "linux")]

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Result;
use dn_tests::check;
use dn_tests::disasternet::Cluster;
use dn_tests::{Lab, NatLayout};
use serde_json::Value;

const ROOM: &str = "medical";
const TIMEOUT: Duration = Duration::from_secs(45);

fn id_of(v: &Value) -> BTreeSet<String> {
    [v["id"].as_str().unwrap_or_default().to_owned()].into()
}

/// Whether node `i` lists `relay` as a connected peer marked as a relay.
fn sees_relay(c: &Cluster, i: usize, relay: &str) -> Result<bool> {
    Ok(c.peers(i)?.iter().any(|p| {
        p["id"] == relay && p["connected"] == Value::Bool(true) && p["relay"] == Value::Bool(true)
    }))
}

/// Two sites, each behind its own NAT router, and a relay on the WAN that cannot reach into
/// either site. Laptops add the relay's address; messages and catch-up flow both ways through
/// it although it never joined the room; it is killed and restarted on the same data
/// directory, nothing is lost and the laptops come back by themselves.
#[test]
fn two_nat_sites_talk_through_a_relay_that_never_joined_the_room() -> Result<()> {
    let layout = NatLayout::new(&[2, 2]);
    let Some(mut c) = Cluster::with_lab(
        "two_nat_sites_talk_through_a_relay_that_never_joined_the_room",
        || Lab::with_nat_sites(&[2, 2]),
    )?
    else {
        return Ok(());
    };
    let r = layout.relay;
    let (a1, a2) = (layout.laptops[0][0], layout.laptops[0][1]);
    let (b1, b2) = (layout.laptops[1][0], layout.laptops[1][1]);
    let relay_addr = c.addr(r);
    for i in [a1, a2, b1, b2] {
        c.init(i, &format!("node{i}"))?;
        c.join(i, ROOM)?;
    }
    // Every laptop but a1 has the relay before it starts (kept in its store).
    for i in [a2, b1, b2] {
        c.cli(i, &["relay", "add", &relay_addr])?;
    }
    c.start(r, &["--relay"])?;
    let relay_id = c.id(r)?;
    let joined = c.cli_raw(r, &["room", "join", ROOM])?;
    check!(
        c,
        !joined.success() && joined.stderr.contains("relay"),
        "a relay must refuse to join a room: {}",
        joined.both()
    );
    // The relay cannot reach into a site: its dial to a1 never connects.
    c.start(a1, &[])?;
    let a1_lan = format!("{}:7300", c.lab.host(a1).links[0].ip);
    c.cli(r, &["connect", &a1_lan])?;
    std::thread::sleep(Duration::from_secs(4));
    check!(
        c,
        c.status(r)?["connected_peers"] == 0 && c.status(a1)?["connected_peers"] == 0,
        "the relay reached a laptop behind NAT by itself"
    );
    // a1 adds the relay while running.
    let list = c.cli_json(a1, &["relay", "add", &relay_addr])?;
    check!(
        c,
        list[0]["addr"] == relay_addr.as_str(),
        "relay add: {list}"
    );
    for i in [a2, b1, b2] {
        c.start(i, &[])?;
    }
    c.wait_for("every laptop sees the relay as a relay", TIMEOUT, |c| {
        for i in [a1, a2, b1, b2] {
            if !sees_relay(c, i, &relay_id)? {
                return Ok(false);
            }
        }
        Ok(c.status(r)?["connected_peers"] == 4)
    })?;

    // Live, both ways.
    let m1 = c.send(a1, ROOM, "site A: two stretchers free")?;
    c.wait_holds(&[b1, b2], ROOM, &id_of(&m1), TIMEOUT)?;
    let m2 = c.send(b1, ROOM, "site B: need insulin")?;
    c.wait_holds(&[a1, a2], ROOM, &id_of(&m2), TIMEOUT)?;

    // Catch-up, both ways: the whole site is offline while the other writes.
    c.stop(a1)?;
    c.stop(a2)?;
    let m3 = c.send(b2, ROOM, "site B: road to the school is open")?;
    c.wait_holds(&[r], ROOM, &id_of(&m3), TIMEOUT)?;
    c.start(a1, &[])?;
    c.wait_holds(&[a1], ROOM, &id_of(&m3), TIMEOUT)?;
    c.stop(b1)?;
    c.stop(b2)?;
    let m4 = c.send(a1, ROOM, "site A: generator fuel for two days")?;
    c.wait_holds(&[r], ROOM, &id_of(&m4), TIMEOUT)?;
    c.start(b1, &[])?;
    c.wait_holds(&[b1], ROOM, &id_of(&m4), TIMEOUT)?;

    // The relay dies; a message is written meanwhile; it restarts on the same data dir.
    let before = c.log_ids(r, ROOM);
    c.kill(r)?;
    let m5 = c.send(a1, ROOM, "site A: written while the relay was down")?;
    c.start(r, &["--relay"])?;
    let after = c.log_ids(r, ROOM)?;
    if let Ok(before) = before {
        check!(
            c,
            before.is_subset(&after),
            "the relay lost messages in its restart"
        );
    }
    c.wait_holds(&[b1, r], ROOM, &id_of(&m5), TIMEOUT)?;
    c.wait_for(
        "the laptops reconnected to the relay by themselves",
        TIMEOUT,
        |c| Ok(sees_relay(c, a1, &relay_id)? && sees_relay(c, b1, &relay_id)?),
    )?;
    let all: BTreeSet<String> = [&m1, &m2, &m3, &m4, &m5]
        .iter()
        .flat_map(|m| id_of(m))
        .collect();
    c.wait_holds(&[a1, b1, r], ROOM, &all, TIMEOUT)?;
    let rooms = c.cli_json(r, &["room", "list"])?;
    check!(
        c,
        rooms
            .as_array()
            .is_some_and(|v| v.iter().all(|r| r["joined"] == Value::Bool(false))),
        "the relay joined a room: {rooms}"
    );
    for i in [a1, b1, r] {
        c.stop(i)?;
    }
    Ok(())
}

/// Nodes with only IPv6 (link-local on the bridge, no DAD) find each other by mDNS and chat;
/// one of them reaches a relay by its unique local address (`fd00::3`).
#[test]
fn ipv6_only_nodes_chat_and_reach_a_relay_by_a_v6_address() -> Result<()> {
    let Some(mut c) = Cluster::with_lab(
        "ipv6_only_nodes_chat_and_reach_a_relay_by_a_v6_address",
        || {
            let lab = Lab::new(3)?;
            lab.ipv6_only(&[1, 3])?;
            Ok(lab)
        },
    )?
    else {
        return Ok(());
    };
    for i in 1..=2 {
        c.init(i, &format!("node{i}"))?;
        c.join(i, ROOM)?;
    }
    c.start(3, &["--relay"])?;
    let relay_id = c.id(3)?;
    c.start(1, &[])?;
    c.start(2, &[])?;
    let ids = [c.id(1)?, c.id(2)?];
    c.wait_connected_exactly(
        "the two IPv6-only nodes connected",
        &[(1, [ids[1].clone()].into()), (2, [ids[0].clone()].into())],
        TIMEOUT,
    )?;
    let peers = c.peers(2)?;
    check!(
        c,
        peers
            .iter()
            .any(|p| p["addresses"].as_array().is_some_and(|a| a
                .iter()
                .any(|a| a.as_str().is_some_and(|a| a.starts_with("[fe80::"))))),
        "node2 should know node1 by a link-local address: {peers:?}"
    );
    let m1 = c.send(1, ROOM, "v6: water at the church")?;
    c.wait_holds(&[2], ROOM, &id_of(&m1), TIMEOUT)?;
    let m2 = c.send(2, ROOM, "v6: understood")?;
    c.wait_holds(&[1], ROOM, &id_of(&m2), TIMEOUT)?;
    c.cli(1, &["relay", "add", "[fd00::3]:7300"])?;
    c.wait_for("node1 reached the relay over IPv6", TIMEOUT, |c| {
        sees_relay(c, 1, &relay_id)
    })?;
    let both: BTreeSet<String> = id_of(&m1).union(&id_of(&m2)).cloned().collect();
    c.wait_holds(&[3], ROOM, &both, TIMEOUT)?;
    for i in 1..=3 {
        c.stop(i)?;
    }
    Ok(())
}
