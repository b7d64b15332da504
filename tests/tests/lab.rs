//! Tests of the lab itself (no `disasternet` binary needed): namespaces, bridge, addresses,
//! multicast/mDNS across the bridge, nftables faults, cleanup.

#![cfg(target_os = "linux")]

use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Result};
use dn_tests::{cleanup_stale, netns_preflight, Lab, Proc, NS_PREFIX};

const PROBE: &str = env!("CARGO_BIN_EXE_dn-netprobe");

fn ns_names() -> Result<Vec<String>> {
    let out = Command::new("ip").args(["netns", "list"]).output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

fn echo_server(lab: &Lab, i: usize, test: &str) -> Result<Proc> {
    let mut cmd = lab.command(i, PROBE);
    cmd.args(["udp-echo", "0.0.0.0:9999", "60"]);
    let log = dn_tests::target_dir()
        .join("test-output/lab")
        .join(format!("{test}-echo{i}.log"));
    lab.spawn(&format!("echo{i}"), cmd, &log)
}

/// One UDP round trip from host `from` to host `to` (echo server on 9999), bounded.
fn udp_ping(lab: &Lab, from: usize, to: usize, timeout_ms: u32) -> Result<bool> {
    let target = format!("{}:9999", lab.host(to).ip);
    let out = lab.run(
        from,
        PROBE,
        &["udp-ping", &target, &timeout_ms.to_string()],
        Duration::from_secs(30),
    )?;
    Ok(out.success())
}

#[test]
fn three_namespaces_reach_each_other_and_faults_apply() -> Result<()> {
    if !netns_preflight("three_namespaces_reach_each_other_and_faults_apply")? {
        return Ok(());
    }
    let mut lab = Lab::new(3)?;
    let names = ns_names()?;
    for h in lab.hosts() {
        ensure!(names.contains(&h.ns), "namespace {} missing", h.ns);
        let addr = lab.run(
            h.index,
            "ip",
            &["-4", "-o", "addr", "show", "dev", "eth0"],
            Duration::from_secs(5),
        )?;
        ensure!(
            addr.stdout.contains(&format!("{}/24", h.ip)),
            "bad address in {}: {}",
            h.ns,
            addr.stdout
        );
        let route = lab.run(
            h.index,
            "ip",
            &["route", "show", "224.0.0.0/4"],
            Duration::from_secs(5),
        )?;
        ensure!(
            route.stdout.contains("dev eth0"),
            "no multicast route in {}: {}",
            h.ns,
            route.stdout
        );
        let lo = lab.run(
            h.index,
            "ip",
            &["-o", "link", "show", "lo"],
            Duration::from_secs(5),
        )?;
        ensure!(lo.stdout.contains("UP"), "lo down in {}", h.ns);
    }
    let snoop = lab.run_bridge("ip", &["-d", "link", "show", "br0"], None)?;
    ensure!(
        snoop.stdout.contains("mcast_snooping 0"),
        "snooping on: {}",
        snoop.stdout
    );

    let _e2 = echo_server(&lab, 2, "reach")?;
    let _e3 = echo_server(&lab, 3, "reach")?;
    ensure!(udp_ping(&lab, 1, 2, 5000)?, "1 -> 2 unreachable");
    ensure!(udp_ping(&lab, 1, 3, 5000)?, "1 -> 3 unreachable");
    ensure!(udp_ping(&lab, 3, 2, 5000)?, "3 -> 2 unreachable");

    // Partition 1 | 2: 1 -> 2 blocked, 1 -> 3 still fine.
    lab.partition(&[1], &[2])?;
    ensure!(!udp_ping(&lab, 1, 2, 1000)?, "partition 1|2 did not block");
    ensure!(udp_ping(&lab, 1, 3, 5000)?, "partition 1|2 blocked 1 -> 3");
    lab.clear_rules()?;
    ensure!(
        udp_ping(&lab, 1, 2, 5000)?,
        "1 -> 2 still blocked after clear_rules"
    );

    // 100 % loss on host 3.
    lab.loss(3, 100)?;
    ensure!(!udp_ping(&lab, 1, 3, 1000)?, "100% loss did not block");
    lab.clear_rules()?;

    // Hard cut.
    lab.link_down(2)?;
    ensure!(!udp_ping(&lab, 1, 2, 1000)?, "link_down did not cut");
    lab.link_up(2)?;
    ensure!(udp_ping(&lab, 1, 2, 10000)?, "link_up did not restore");

    let prefix = lab.prefix().to_owned();
    drop(lab);
    let left: Vec<String> = ns_names()?
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    ensure!(left.is_empty(), "namespaces left after drop: {left:?}");
    Ok(())
}

#[test]
fn mdns_crosses_the_bridge_and_can_be_dropped() -> Result<()> {
    if !netns_preflight("mdns_crosses_the_bridge_and_can_be_dropped")? {
        return Ok(());
    }
    let mut lab = Lab::new(3)?;
    let log_dir = dn_tests::target_dir().join("test-output/lab");
    let mut regs = Vec::new();
    for i in [2, 3] {
        let mut cmd = lab.command(i, PROBE);
        cmd.args(["mdns-register", &format!("probe{i}"), "7300", "60"]);
        regs.push(lab.spawn(
            &format!("reg{i}"),
            cmd,
            &log_dir.join(format!("mdns-reg{i}.log")),
        )?);
    }
    let out = lab.run(
        1,
        PROBE,
        &["mdns-browse", "2", "15000"],
        Duration::from_secs(30),
    )?;
    ensure!(
        out.success(),
        "browse in ns1 did not see both services:\n{}",
        out.both()
    );
    ensure!(
        out.stdout.contains("10.77.0.2") && out.stdout.contains("10.77.0.3"),
        "unexpected addresses:\n{}",
        out.stdout
    );

    lab.drop_mdns()?;
    let out = lab.run(
        1,
        PROBE,
        &["mdns-browse", "1", "3000"],
        Duration::from_secs(30),
    )?;
    ensure!(
        !out.success(),
        "mDNS still seen with udp 5353 dropped:\n{}",
        out.both()
    );
    Ok(())
}

#[test]
fn stale_namespaces_of_dead_runs_are_removed() -> Result<()> {
    if !netns_preflight("stale_namespaces_of_dead_runs_are_removed")? {
        return Ok(());
    }
    // pid 4294967 is above the kernel's pid_max limit (4194304): never alive.
    let stale = format!("{NS_PREFIX}4294967-0-n1");
    let st = Command::new("ip").args(["netns", "add", &stale]).status()?;
    ensure!(st.success(), "could not create {stale}");
    // A namespace of a live process (ours) with a different lab counter is kept.
    let live = format!("{NS_PREFIX}{}-999999-n1", std::process::id());
    let st = Command::new("ip").args(["netns", "add", &live]).status()?;
    ensure!(st.success(), "could not create {live}");
    let removed = cleanup_stale(None);
    let names = ns_names();
    let _ = Command::new("ip").args(["netns", "del", &live]).status();
    let (removed, names) = (removed?, names?);
    // (A lab created in parallel may have removed it first.)
    eprintln!("removed: {removed:?}");
    ensure!(!names.contains(&stale), "stale namespace still there");
    ensure!(names.contains(&live), "namespace of a live run was removed");
    Ok(())
}
