//! Multi-node test harness: Linux network namespaces joined by a bridge.
//!
//! A [`Lab`] creates N "hosts" (network namespaces `<prefix>-n1` … `<prefix>-nN`) and one more
//! namespace `<prefix>-br` that holds the bridge `br0`. Each host gets a veth pair: `eth0` on
//! the host side with `10.77.0.<i>/24`, `p<i>` on the bridge side. Nothing is created in, or
//! routed through, the namespace the tests run in: every link, address and route lives inside
//! the lab's own namespaces, so all test traffic stays on the lab's bridge.
//!
//! Faults are injected on the bridge with nftables (`bridge` family, `forward` hook):
//! [`Lab::partition`], [`Lab::loss`], [`Lab::drop_mdns`], [`Lab::nft_rule`], or by cutting a
//! link with [`Lab::link_down`]. (This kernel has no `sch_netem`.)
//!
//! [`Lab::with_networks`] builds several separate bridges (L2 networks) instead, with hosts
//! attached to one or more of them (multi-homed hosts get `eth0`, `eth1`, …).
//!
//! Everything is removed when the `Lab` is dropped; leftovers of crashed runs (namespaces whose
//! creating process is gone, or that carry this lab's own prefix) are removed at start.
//!
//! [`disasternet`] drives the real `disasternet` binary on top of a lab.
//!
//! Linux only (network namespaces, nftables, `/proc`): on other platforms this crate, its
//! tests and its binaries are empty, so the workspace still checks for every target.

#![cfg(target_os = "linux")]

pub mod disasternet;
pub mod hostile;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// Every namespace a lab creates starts with this.
pub const NS_PREFIX: &str = "dnlab-";
/// First three octets of the lab subnet (a /24 that exists only inside the lab).
pub const SUBNET: [u8; 3] = [10, 77, 0];
/// Name of the nftables table (bridge family) in the bridge namespace.
pub const NFT_TABLE: &str = "dnlab";
/// Timeout for one short administrative command (`ip`, `nft`).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

// ---------------------------------------------------------------------------------------------
// Environment checks
// ---------------------------------------------------------------------------------------------

/// `VmRSS` and `VmHWM` of a process, in kB (from `/proc/<pid>/status`).
pub fn mem_kb(pid: u32) -> Result<(u64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Whether the current process runs with effective uid 0.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Checks that namespace tests can run here. `Ok(true)`: go on. `Ok(false)`: skip (not root
/// and `DN_SKIP_NETNS=1`; a note is printed). `Err`: fail with a clear message.
///
/// As root the tests always run, whatever `DN_SKIP_NETNS` says (CI runs as root and must
/// really run them).
pub fn netns_preflight(test: &str) -> Result<bool> {
    let skip = std::env::var("DN_SKIP_NETNS").is_ok_and(|v| v == "1");
    if !is_root() {
        if skip {
            eprintln!("NOTE: {test}: skipped (not root and DN_SKIP_NETNS=1): network-namespace tests need root");
            return Ok(false);
        }
        bail!(
            "{test}: network-namespace tests must run as root (they create namespaces, veths and \
             a bridge). Run them as root, or set DN_SKIP_NETNS=1 to skip them explicitly."
        );
    }
    if skip {
        eprintln!("NOTE: {test}: DN_SKIP_NETNS=1 is ignored when running as root");
    }
    for tool in ["ip", "nft"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            bail!("{test}: `{tool}` not found in PATH (apt-get install iproute2 nftables)");
        }
    }
    Ok(true)
}

/// The workspace root (parent of this crate).
pub fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The cargo target directory: `$CARGO_TARGET_DIR` (relative paths are taken from the
/// workspace root) or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_dir().join(d)
            }
        }
        _ => workspace_dir().join("target"),
    }
}

/// `<target>/test-output/netns/<test>/`, emptied and created.
pub fn fresh_output_dir(test: &str) -> Result<PathBuf> {
    let dir = target_dir().join("test-output").join("netns").join(test);
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Milliseconds since the Unix epoch (the one wall clock, `dn_store::system_clock_ms`).
pub use dn_store::system_clock_ms as now_ms;

// ---------------------------------------------------------------------------------------------
// Running commands
// ---------------------------------------------------------------------------------------------

/// Result of a finished command.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// The command line, for messages.
    pub cmdline: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

impl CmdOutput {
    /// True when it exited with 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// `Ok(self)` when it exited with 0, else an error that shows the command and its output.
    pub fn check(self) -> Result<Self> {
        if self.success() {
            Ok(self)
        } else {
            Err(anyhow!(
                "command failed ({}): {}\n{}",
                self.status,
                self.cmdline,
                self.both()
            ))
        }
    }

    /// Stdout and stderr, labelled, for messages.
    pub fn both(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
            s.push_str(&format!(" '{}'", a.replace('\'', "'\\''")));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

fn reader<R: Read + Send + 'static>(r: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        buf
    })
}

/// Runs `cmd` to completion with a time limit (the process is SIGKILLed when it is exceeded,
/// and an error is returned). `stdin`: bytes fed to its standard input (else /dev/null).
pub fn run_cmd(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Result<CmdOutput> {
    let cmdline = describe(&cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("spawning {cmdline}"))?;
    if let Some(data) = stdin {
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(data)
                .with_context(|| format!("writing stdin of {cmdline}"))?;
        }
    }
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    let status = loop {
        if let Some(st) = child
            .try_wait()
            .with_context(|| format!("waiting for {cmdline}"))?
        {
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    };
    let stdout = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    match status {
        Some(status) => Ok(CmdOutput { cmdline, status, stdout, stderr }),
        None => bail!(
            "timed out after {timeout:?} (killed): {cmdline}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            stdout.trim_end(),
            stderr.trim_end()
        ),
    }
}

/// Runs `program args…` (not in any namespace) and requires exit 0.
fn admin(program: &str, args: &[&str]) -> Result<CmdOutput> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    run_cmd(cmd, None, ADMIN_TIMEOUT)?.check()
}

/// Polls `f` until it returns `Ok(true)` or `timeout` passes (then an error naming `what`).
/// An `Err` from `f` ends the wait at once. The pause between polls grows from 50 to 500 ms.
pub fn poll_until(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<bool>,
) -> Result<Duration> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        if f()? {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= timeout {
            bail!("timed out after {timeout:?} waiting for: {what}");
        }
        thread::sleep(pause.min(timeout.saturating_sub(start.elapsed())));
        pause = (pause * 3 / 2).min(Duration::from_millis(500));
    }
}

/// The last `n` lines of a file (or a note if it cannot be read).
pub fn tail_file(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(n);
            lines[from..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

// ---------------------------------------------------------------------------------------------
// Long-running processes
// ---------------------------------------------------------------------------------------------

/// A long-running process (e.g. a node) with its output appended to a log file. It is
/// SIGKILLed and reaped on drop if it still runs.
#[derive(Debug)]
pub struct Proc {
    label: String,
    child: Child,
    log: PathBuf,
    exit: Option<ExitStatus>,
}

impl Proc {
    /// Process id (the program itself: `ip netns exec` execs it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Label given at spawn.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Log file (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Exit status if it has exited (reaps it), `None` while it runs.
    pub fn try_exit(&mut self) -> Result<Option<ExitStatus>> {
        if self.exit.is_none() {
            self.exit = self
                .child
                .try_wait()
                .with_context(|| format!("waiting for {}", self.label))?;
        }
        Ok(self.exit)
    }

    /// True while it runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_exit(), Ok(None))
    }

    /// Sends a signal (no-op once it has been reaped, so a reused pid is never hit).
    pub fn signal(&mut self, sig: rustix::process::Signal) -> Result<()> {
        if self.try_exit()?.is_some() {
            return Ok(());
        }
        let raw = i32::try_from(self.child.id()).context("pid out of range")?;
        let pid = rustix::process::Pid::from_raw(raw).context("pid 0")?;
        match rustix::process::kill_process(pid, sig) {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::SRCH => Ok(()),
            Err(e) => Err(anyhow!("kill({raw}, {sig:?}) for {}: {e}", self.label)),
        }
    }

    /// Waits up to `timeout` for it to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_exit()? {
                return Ok(Some(st));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then wait up to `grace`. If it has not exited by then it is SIGKILLed and an
    /// error is returned (a node must stop on SIGTERM).
    pub fn terminate(&mut self, grace: Duration) -> Result<ExitStatus> {
        self.signal(rustix::process::Signal::TERM)?;
        if let Some(st) = self.wait_exit(grace)? {
            return Ok(st);
        }
        self.kill()?;
        bail!(
            "{} did not exit within {grace:?} of SIGTERM; it was SIGKILLed",
            self.label
        )
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        self.signal(rustix::process::Signal::KILL)?;
        match self.wait_exit(Duration::from_secs(10))? {
            Some(st) => Ok(st),
            None => bail!("{} survived SIGKILL for 10 s", self.label),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.kill();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The lab
// ---------------------------------------------------------------------------------------------

/// One lab host: a network namespace with `eth0` on the lab bridge.
#[derive(Debug, Clone)]
pub struct Host {
    /// 1-based index.
    pub index: usize,
    /// Namespace name.
    pub ns: String,
    /// Address of `eth0` (`10.77.0.<index>`).
    pub ip: Ipv4Addr,
    /// Name of this host's port on the bridge (in the bridge namespace), for nft rules.
    pub port: String,
    /// Every interface of the host, in order (`eth0` first). A host of [`Lab::new`] has one;
    /// a host of [`Lab::with_networks`] has one per network it is attached to.
    pub links: Vec<HostLink>,
}

/// One interface of a lab host, attached to one of the lab's networks (bridges).
#[derive(Debug, Clone)]
pub struct HostLink {
    /// Network (0-based; bridge `br<net>` in the bridge namespace).
    pub net: usize,
    /// Interface name inside the host (`eth0`, `eth1`, …).
    pub ifname: String,
    /// Its IPv4 address (/24).
    pub ip: Ipv4Addr,
    /// Its port on the bridge (in the bridge namespace), for nft rules.
    pub port: String,
}

/// A set of network namespaces on one bridge. See the crate docs.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    bridge_ns: String,
    hosts: Vec<Host>,
    nft_ready: bool,
}

fn netns_list() -> Result<Vec<String>> {
    let out = admin("ip", &["netns", "list"])?;
    Ok(out
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

fn kill_ns_pids(ns: &str) {
    let Ok(out) = admin("ip", &["netns", "pids", ns]) else {
        return;
    };
    for pid in out
        .stdout
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

fn delete_ns(ns: &str) -> Result<()> {
    kill_ns_pids(ns);
    match admin("ip", &["netns", "del", ns]) {
        Ok(_) => Ok(()),
        // Someone else (a parallel lab's stale cleanup) removed it first: fine.
        Err(_) if !netns_list()?.iter().any(|n| n == ns) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes lab namespaces left by processes that no longer exist (a crashed or killed test
/// run), plus any whose name starts with `own_prefix`. Namespaces of live test processes are
/// left alone. Returns the names removed.
pub fn cleanup_stale(own_prefix: Option<&str>) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for ns in netns_list()? {
        let Some(rest) = ns.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let own = own_prefix.is_some_and(|p| ns.starts_with(&format!("{p}-")));
        let dead = rest
            .split('-')
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        if own || dead {
            delete_ns(&ns).with_context(|| format!("removing stale namespace {ns}"))?;
            removed.push(ns);
        }
    }
    Ok(removed)
}

impl Lab {
    /// Creates a lab with `n` hosts (1 ≤ n ≤ 200). Requires root (see [`netns_preflight`]).
    pub fn new(n: usize) -> Result<Lab> {
        if !(1..=200).contains(&n) {
            bail!("a lab has 1..=200 hosts, not {n}");
        }
        let prefix = format!(
            "{NS_PREFIX}{}-{}",
            std::process::id(),
            LAB_COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let removed = cleanup_stale(Some(&prefix))?;
        if !removed.is_empty() {
            eprintln!("lab: removed leftover namespaces {removed:?}");
        }
        let mut lab = Lab {
            bridge_ns: format!("{prefix}-br"),
            prefix,
            hosts: Vec::new(),
            nft_ready: false,
        };
        // From here on, Drop cleans up whatever was created if a step fails.
        let br = lab.bridge_ns.clone();
        admin("ip", &["netns", "add", &br])?;
        admin("ip", &["-n", &br, "link", "set", "lo", "up"])?;
        admin(
            "ip",
            &[
                "-n",
                &br,
                "link",
                "add",
                "br0",
                "type",
                "bridge",
                "mcast_snooping",
                "0",
                "stp_state",
                "0",
            ],
        )?;
        admin("ip", &["-n", &br, "link", "set", "br0", "up"])?;
        for i in 1..=n {
            let ns = format!("{}-n{i}", lab.prefix);
            let port = format!("p{i}");
            let ip = Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], i as u8);
            admin("ip", &["netns", "add", &ns])?;
            lab.hosts.push(Host {
                index: i,
                ns: ns.clone(),
                ip,
                port: port.clone(),
                links: vec![HostLink {
                    net: 0,
                    ifname: "eth0".to_owned(),
                    ip,
                    port: port.clone(),
                }],
            });
            // The veth is created inside the bridge namespace and its other end moved straight
            // into the host namespace: nothing ever appears in the caller's namespace.
            admin(
                "ip",
                &[
                    "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                    "netns", &ns,
                ],
            )?;
            admin("ip", &["-n", &br, "link", "set", &port, "master", "br0"])?;
            admin("ip", &["-n", &br, "link", "set", &port, "up"])?;
            admin("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
            admin(
                "ip",
                &["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
            )?;
            admin("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
            admin(
                "ip",
                &["-n", &ns, "route", "add", "224.0.0.0/4", "dev", "eth0"],
            )?;
        }
        for h in lab.hosts.clone() {
            poll_until(
                &format!("{} eth0 up", h.ns),
                Duration::from_secs(10),
                || {
                    let out = admin("ip", &["-n", &h.ns, "-o", "link", "show", "eth0"])?;
                    Ok(out.stdout.contains("state UP"))
                },
            )?;
        }
        Ok(lab)
    }

    /// Creates a lab of several separate L2 networks: one bridge per network (`br0`, `br1`, …,
    /// all in the bridge namespace, not connected to each other) and hosts attached to one or
    /// more of them. `attach[h - 1]` lists the networks (0-based, `< networks`) of host `h` in
    /// interface order: the first is its `eth0`, the second its `eth1`, … On network `k` host
    /// `h` has `10.77.<k + 1>.<h>/24` with the subnet broadcast address set (as DHCP would set
    /// it, so broadcast discovery works), and bridge port `p<h>` (network 0) or `p<h>n<k>`.
    /// [`Host::ip`] and [`Host::port`] are those of the host's first interface. Hosts never
    /// forward between their interfaces (`ip_forward` stays 0 in a new namespace) and have no
    /// default route, so networks only meet in the processes of multi-homed hosts.
    pub fn with_networks(networks: usize, attach: &[&[usize]]) -> Result<Lab> {
        let n = attach.len();
        if !(1..=200).contains(&n) || !(1..=8).contains(&networks) {
            bail!("a lab has 1..=200 hosts and 1..=8 networks, not {n} and {networks}");
        }
        for (h, nets) in attach.iter().enumerate() {
            if nets.is_empty() || nets.iter().any(|&k| k >= networks) {
                bail!("host {}: bad networks {nets:?} (lab has {networks})", h + 1);
            }
            let mut sorted = nets.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted.len() != nets.len() {
                bail!("host {}: a network twice in {nets:?}", h + 1);
            }
        }
        let prefix = format!(
            "{NS_PREFIX}{}-{}",
            std::process::id(),
            LAB_COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let removed = cleanup_stale(Some(&prefix))?;
        if !removed.is_empty() {
            eprintln!("lab: removed leftover namespaces {removed:?}");
        }
        let mut lab = Lab {
            bridge_ns: format!("{prefix}-br"),
            prefix,
            hosts: Vec::new(),
            nft_ready: false,
        };
        let br = lab.bridge_ns.clone();
        admin("ip", &["netns", "add", &br])?;
        admin("ip", &["-n", &br, "link", "set", "lo", "up"])?;
        for k in 0..networks {
            let bridge = format!("br{k}");
            admin(
                "ip",
                &[
                    "-n",
                    &br,
                    "link",
                    "add",
                    &bridge,
                    "type",
                    "bridge",
                    "mcast_snooping",
                    "0",
                    "stp_state",
                    "0",
                ],
            )?;
            admin("ip", &["-n", &br, "link", "set", &bridge, "up"])?;
        }
        for (h0, nets) in attach.iter().enumerate() {
            let i = h0 + 1;
            let ns = format!("{}-n{i}", lab.prefix);
            admin("ip", &["netns", "add", &ns])?;
            admin("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
            let mut links = Vec::new();
            for (j, &k) in nets.iter().enumerate() {
                let ifname = format!("eth{j}");
                let port = if k == 0 {
                    format!("p{i}")
                } else {
                    format!("p{i}n{k}")
                };
                let ip = Ipv4Addr::new(SUBNET[0], SUBNET[1], k as u8 + 1, i as u8);
                admin(
                    "ip",
                    &[
                        "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", &ifname,
                        "netns", &ns,
                    ],
                )?;
                admin(
                    "ip",
                    &["-n", &br, "link", "set", &port, "master", &format!("br{k}")],
                )?;
                admin("ip", &["-n", &br, "link", "set", &port, "up"])?;
                admin(
                    "ip",
                    &[
                        "-n",
                        &ns,
                        "addr",
                        "add",
                        &format!("{ip}/24"),
                        "brd",
                        "+",
                        "dev",
                        &ifname,
                    ],
                )?;
                admin("ip", &["-n", &ns, "link", "set", &ifname, "up"])?;
                // Multicast leaves by the first interface unless a socket picks another one.
                let metric = (100 + j).to_string();
                admin(
                    "ip",
                    &[
                        "-n",
                        &ns,
                        "route",
                        "add",
                        "224.0.0.0/4",
                        "dev",
                        &ifname,
                        "metric",
                        &metric,
                    ],
                )?;
                links.push(HostLink {
                    net: k,
                    ifname,
                    ip,
                    port,
                });
            }
            lab.hosts.push(Host {
                index: i,
                ns,
                ip: links[0].ip,
                port: links[0].port.clone(),
                links,
            });
        }
        for h in lab.hosts.clone() {
            for l in &h.links {
                poll_until(
                    &format!("{} {} up", h.ns, l.ifname),
                    Duration::from_secs(10),
                    || {
                        let out = admin("ip", &["-n", &h.ns, "-o", "link", "show", &l.ifname])?;
                        Ok(out.stdout.contains("state UP"))
                    },
                )?;
            }
        }
        Ok(lab)
    }

    /// Sites behind NAT routers and a "WAN" between them (see [`NatLayout`]): `laptops[k]`
    /// laptops at site `k`. Network 0 is the WAN (`10.77.1.0/24`); site `k` is network
    /// `k + 1` (`10.77.<k + 2>.0/24`). Each router forwards (`ip_forward=1`), masquerades what
    /// leaves by its WAN side (nftables `masquerade`), and drops whatever the WAN starts towards
    /// its site (a stateful filter: only replies come in). Laptops route everything through
    /// their router; WAN hosts have routes to each site through its router, so only the
    /// router's filter keeps them out, as on the internet.
    pub fn with_nat_sites(laptops: &[usize]) -> Result<Lab> {
        let layout = NatLayout::new(laptops);
        let mut attach: Vec<Vec<usize>> = vec![vec![0]];
        for k in 0..laptops.len() {
            attach.push(vec![0, k + 1]);
        }
        for (k, l) in layout.laptops.iter().enumerate() {
            attach.extend(l.iter().map(|_| vec![k + 1]));
        }
        let refs: Vec<&[usize]> = attach.iter().map(Vec::as_slice).collect();
        let lab = Lab::with_networks(laptops.len() + 1, &refs)?;
        for (k, &r) in layout.routers.iter().enumerate() {
            let ns = lab.host(r).ns.clone();
            admin(
                "ip",
                &[
                    "netns",
                    "exec",
                    &ns,
                    "sysctl",
                    "-qw",
                    "net.ipv4.ip_forward=1",
                ],
            )?;
            let rules = "table inet dnnat {\n\
                 chain dn_post { type nat hook postrouting priority srcnat; oifname \"eth0\" masquerade; }\n\
                 chain dn_forward { type filter hook forward priority filter; policy drop;\n\
                   ct state established,related accept; iifname \"eth1\" oifname \"eth0\" accept; }\n\
                 }\n";
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &ns, "nft", "-f", "-"]);
            run_cmd(cmd, Some(rules.as_bytes()), ADMIN_TIMEOUT)?.check()?;
            let lan_gw = lab.host(r).links[1].ip.to_string();
            for &l in &layout.laptops[k] {
                admin(
                    "ip",
                    &[
                        "-n",
                        &lab.host(l).ns,
                        "route",
                        "add",
                        "default",
                        "via",
                        &lan_gw,
                    ],
                )?;
            }
            let wan_gw = lab.host(r).links[0].ip.to_string();
            let site = format!("{}.{}.{}.0/24", SUBNET[0], SUBNET[1], k + 2);
            for &w in std::iter::once(&layout.relay).chain(&layout.routers) {
                if w != r {
                    admin(
                        "ip",
                        &["-n", &lab.host(w).ns, "route", "add", &site, "via", &wan_gw],
                    )?;
                }
            }
        }
        Ok(lab)
    }

    /// Only IPv6 on every host: IPv4 addresses removed, duplicate address detection off (so
    /// link-local addresses are usable at once), and host `i` given the unique local address
    /// `fd00::<i>/64` when `i` is in `ula`. Run on a lab from [`Lab::new`].
    pub fn ipv6_only(&self, ula: &[usize]) -> Result<()> {
        for h in &self.hosts {
            let ns = h.ns.as_str();
            admin("ip", &["-n", ns, "link", "set", "eth0", "down"])?;
            for key in ["all", "default", "eth0"] {
                admin(
                    "ip",
                    &[
                        "netns",
                        "exec",
                        ns,
                        "sysctl",
                        "-qw",
                        &format!("net.ipv6.conf.{key}.accept_dad=0"),
                        &format!("net.ipv6.conf.{key}.disable_ipv6=0"),
                    ],
                )?;
            }
            admin("ip", &["-n", ns, "-4", "addr", "flush", "dev", "eth0"])?;
            admin("ip", &["-n", ns, "link", "set", "eth0", "up"])?;
            if ula.contains(&h.index) {
                let a = format!("fd00::{:x}/64", h.index);
                admin(
                    "ip",
                    &["-n", ns, "-6", "addr", "add", &a, "dev", "eth0", "nodad"],
                )?;
            }
            poll_until(
                &format!("{ns} has a link-local IPv6 address"),
                Duration::from_secs(10),
                || {
                    let out = admin("ip", &["-n", ns, "-6", "-o", "addr", "show", "dev", "eth0"])?;
                    Ok(out.stdout.contains("fe80::") && !out.stdout.contains("tentative"))
                },
            )?;
        }
        Ok(())
    }

    /// Name prefix of every namespace of this lab.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The bridge's namespace.
    pub fn bridge_ns(&self) -> &str {
        &self.bridge_ns
    }

    /// All hosts.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Host `i` (1-based). Panics on a bad index (a test bug).
    pub fn host(&self, i: usize) -> &Host {
        assert!(
            i >= 1 && i <= self.hosts.len(),
            "no host {i} in a lab of {}",
            self.hosts.len()
        );
        &self.hosts[i - 1]
    }

    /// A `Command` that runs `program` inside host `i`'s namespace.
    pub fn command(&self, i: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.host(i).ns]).arg(program);
        cmd
    }

    /// Runs `program args…` in host `i` with a time limit; any exit status is returned.
    pub fn run(
        &self,
        i: usize,
        program: &str,
        args: &[&str],
        timeout: Duration,
    ) -> Result<CmdOutput> {
        let mut cmd = self.command(i, program);
        cmd.args(args);
        run_cmd(cmd, None, timeout)
    }

    /// Runs `program args…` in the bridge namespace and requires exit 0.
    pub fn run_bridge(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<CmdOutput> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.bridge_ns, program])
            .args(args);
        run_cmd(cmd, stdin, ADMIN_TIMEOUT)?.check()
    }

    /// Starts a long-running `cmd` (built with [`Lab::command`]); its stdout and stderr are
    /// appended to `log`, after a header line naming the command.
    pub fn spawn(&self, label: &str, mut cmd: Command, log: &Path) -> Result<Proc> {
        if let Some(dir) = log.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        writeln!(
            file,
            "=== harness {} ms: start {label}: {}",
            now_ms(),
            describe(&cmd)
        )?;
        let err: File = file.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(file).stderr(err);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {label}: {}", describe(&cmd)))?;
        Ok(Proc {
            label: label.to_owned(),
            child,
            log: log.to_path_buf(),
            exit: None,
        })
    }

    /// Adds one nftables rule to the lab's bridge `forward` chain, e.g.
    /// `iifname "p1" oifname "p2" drop`. Port names are in [`Host::port`].
    pub fn nft_rule(&mut self, rule: &str) -> Result<()> {
        if !self.nft_ready {
            let setup = format!(
                "table bridge {NFT_TABLE} {{\n  chain forward {{\n    type filter hook forward priority 0; policy accept;\n  }}\n}}\n"
            );
            self.run_bridge("nft", &["-f", "-"], Some(setup.as_bytes()))?;
            self.nft_ready = true;
        }
        let script = format!("add rule bridge {NFT_TABLE} forward {rule}\n");
        self.run_bridge("nft", &["-f", "-"], Some(script.as_bytes()))
            .map(drop)
    }

    /// Removes every rule added so far.
    pub fn clear_rules(&mut self) -> Result<()> {
        if self.nft_ready {
            self.run_bridge(
                "nft",
                &["flush", "chain", "bridge", NFT_TABLE, "forward"],
                None,
            )?;
        }
        Ok(())
    }

    /// The current ruleset of the bridge namespace (for diagnostics).
    pub fn ruleset(&self) -> Result<String> {
        Ok(self.run_bridge("nft", &["list", "ruleset"], None)?.stdout)
    }

    /// Drops all frames between every host of `a` and every host of `b` (both directions).
    pub fn partition(&mut self, a: &[usize], b: &[usize]) -> Result<()> {
        for &x in a {
            for &y in b {
                let (px, py) = (self.host(x).port.clone(), self.host(y).port.clone());
                self.nft_rule(&format!("iifname \"{px}\" oifname \"{py}\" drop"))?;
                self.nft_rule(&format!("iifname \"{py}\" oifname \"{px}\" drop"))?;
            }
        }
        Ok(())
    }

    /// Drops `percent`% of the frames host `i` sends and of those sent to it (random, per
    /// frame, each direction).
    pub fn loss(&mut self, i: usize, percent: u32) -> Result<()> {
        let p = self.host(i).port.clone();
        let cond = match percent {
            0 => return Ok(()),
            1..=99 => format!("numgen random mod 100 < {percent} "),
            _ => String::new(),
        };
        self.nft_rule(&format!("iifname \"{p}\" {cond}counter drop"))?;
        self.nft_rule(&format!("oifname \"{p}\" {cond}counter drop"))
    }

    /// Rules of the bridge's forward chain that carry a `counter`, with the packets they
    /// matched so far: `(rule text, packets)`. Evidence that a fault really bit.
    pub fn rule_counters(&self) -> Result<Vec<(String, u64)>> {
        if !self.nft_ready {
            return Ok(Vec::new());
        }
        let out = self.run_bridge(
            "nft",
            &["list", "chain", "bridge", NFT_TABLE, "forward"],
            None,
        )?;
        Ok(out
            .stdout
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                let at = l.find("counter packets ")?;
                let n = l[at + 16..].split_whitespace().next()?.parse().ok()?;
                Some((l.to_owned(), n))
            })
            .collect())
    }

    /// Drops all mDNS traffic (UDP port 5353, IPv4 and IPv6) on the bridge.
    pub fn drop_mdns(&mut self) -> Result<()> {
        self.nft_rule("udp dport 5353 drop")?;
        self.nft_rule("udp sport 5353 drop")
    }

    /// Drops every multicast frame on the bridge. Broadcast frames (ARP, IPv4 subnet
    /// broadcast) pass: their destination ff:ff:ff:ff:ff:ff also has the group bit, and
    /// dropping ARP would cut all unicast too (see [`Lab::drop_broadcast`]).
    pub fn drop_multicast(&mut self) -> Result<()> {
        self.nft_rule(
            "ether daddr != ff:ff:ff:ff:ff:ff ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 drop",
        )
    }

    /// Drops every broadcast frame on the bridge except ARP (so unicast still works): e.g.
    /// IPv4 subnet-broadcast discovery beacons.
    pub fn drop_broadcast(&mut self) -> Result<()> {
        self.nft_rule("ether daddr ff:ff:ff:ff:ff:ff ether type != arp drop")
    }

    /// Drops all UDP traffic to or from `port` on the bridge (both directions).
    pub fn drop_udp_port(&mut self, port: u16) -> Result<()> {
        self.nft_rule(&format!("udp dport {port} drop"))?;
        self.nft_rule(&format!("udp sport {port} drop"))
    }

    /// Lets host `a` exchange frames only with the hosts in `allowed` (and itself): drops
    /// every frame between `a` and any other host, both directions, unicast, broadcast and
    /// multicast alike (the bridge's forward hook sees each flooded copy with its out port).
    pub fn only_neighbours(&mut self, a: usize, allowed: &[usize]) -> Result<()> {
        let others: Vec<usize> = (1..=self.hosts.len())
            .filter(|&j| j != a && !allowed.contains(&j))
            .collect();
        self.partition(&[a], &others)
    }

    /// Takes host `i`'s bridge port down (a hard cut).
    pub fn link_down(&self, i: usize) -> Result<()> {
        admin(
            "ip",
            &[
                "-n",
                &self.bridge_ns,
                "link",
                "set",
                &self.host(i).port,
                "down",
            ],
        )
        .map(drop)
    }

    /// Brings host `i`'s bridge port back up.
    pub fn link_up(&self, i: usize) -> Result<()> {
        admin(
            "ip",
            &[
                "-n",
                &self.bridge_ns,
                "link",
                "set",
                &self.host(i).port,
                "up",
            ],
        )
        .map(drop)
    }

    /// Removes every namespace of this lab (processes in them are SIGKILLed first). Also run
    /// on drop.
    pub fn cleanup(&mut self) -> Result<()> {
        let mut errors = Vec::new();
        let ours: Vec<String> = match netns_list() {
            Ok(list) => list
                .into_iter()
                .filter(|ns| ns.starts_with(&format!("{}-", self.prefix)))
                .collect(),
            Err(e) => {
                errors.push(e.to_string());
                Vec::new()
            }
        };
        for ns in ours {
            if let Err(e) = delete_ns(&ns) {
                errors.push(format!("{ns}: {e:#}"));
            }
        }
        self.hosts.clear();
        if errors.is_empty() {
            Ok(())
        } else {
            bail!("lab cleanup: {}", errors.join("; "))
        }
    }
}

/// Which host is what in a lab from [`Lab::with_nat_sites`] (1-based host indices): host 1
/// is the relay's host on the WAN, then one router per site, then the laptops site by site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatLayout {
    /// The host on the WAN (for a relay): `10.77.1.1`.
    pub relay: usize,
    /// Site `k`'s router: WAN `eth0` `10.77.1.<i>`, LAN `eth1` `10.77.<k + 2>.<i>`.
    pub routers: Vec<usize>,
    /// Site `k`'s laptops (`eth0` `10.77.<k + 2>.<i>`).
    pub laptops: Vec<Vec<usize>>,
}

impl NatLayout {
    /// The layout for `laptops[k]` laptops at site `k`.
    pub fn new(laptops: &[usize]) -> NatLayout {
        let routers: Vec<usize> = (0..laptops.len()).map(|k| k + 2).collect();
        let mut next = laptops.len() + 2;
        let laptops = laptops
            .iter()
            .map(|&n| {
                let v: Vec<usize> = (next..next + n).collect();
                next += n;
                v
            })
            .collect();
        NatLayout {
            relay: 1,
            routers,
            laptops,
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            eprintln!("WARNING: {e:#}");
        }
    }
}

/// In a scenario test returning `anyhow::Result`: fails with the cluster's diagnostics (node
/// logs, status, nft rules) unless `cond`.
#[macro_export]
macro_rules! check {
    ($c:expr, $cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($c.fail(&format!($($fmt)+)));
        }
    };
}
