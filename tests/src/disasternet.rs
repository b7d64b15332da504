//! Drives the real `disasternet` binary on a [`Lab`]: one data dir and one node per host.
//!
//! Layout per test, under `<target>/test-output/netns/<test>/`: `nodeN/` (data dir),
//! `nodeN.log` (the node's stderr/stdout, appended across restarts), `diagnostics.txt` (written
//! when a wait fails).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::{
    fresh_output_dir, netns_preflight, run_cmd, tail_file, target_dir, CmdOutput, Lab, Proc,
};

/// Time limit for one CLI call (`status`, `send`, `log`, …).
pub const CLI_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a node gets to exit after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// Port every node listens on by default.
pub const DEFAULT_PORT: u16 = 7300;

/// The `disasternet` binary: `$DISASTERNET_BIN`, else `<target>/debug/disasternet`. Fails with
/// a clear message when it does not exist.
pub fn disasternet_bin() -> Result<PathBuf> {
    let path = match std::env::var_os("DISASTERNET_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => target_dir().join("debug").join("disasternet"),
    };
    if !path.is_file() {
        bail!(
            "disasternet binary not found at {}: run `cargo build --bins` first (or set \
             DISASTERNET_BIN to the binary)",
            path.display()
        );
    }
    Ok(path)
}

/// Default `RUST_LOG` for nodes (overridden by `RUST_LOG` in the test's environment).
fn node_log_filter() -> String {
    std::env::var("RUST_LOG")
        .unwrap_or_else(|_| "info,dn_node=debug,dn_store=debug,disasternet=debug".to_owned())
}

/// One node: a host of the lab, its data dir and (while started) its process.
#[derive(Debug)]
pub struct Node {
    /// 1-based index (= lab host index).
    pub index: usize,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Log file of the node process.
    pub log: PathBuf,
    /// The running `node` process, if started.
    pub proc: Option<Proc>,
    /// How many times it was started.
    pub starts: u32,
    /// Exit status of the last stopped process.
    pub last_exit: Option<ExitStatus>,
}

/// Runs one node's CLI from any thread; see [`Cluster::cli_handle`].
#[derive(Debug, Clone)]
pub struct Cli {
    /// Node index.
    pub index: usize,
    ns: String,
    bin: PathBuf,
    data_dir: PathBuf,
}

impl Cli {
    /// Runs `disasternet --data-dir D args…` in the node's namespace, any exit status.
    pub fn run(&self, args: &[&str]) -> Result<CmdOutput> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns])
            .arg(&self.bin)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(args);
        run_cmd(cmd, None, CLI_TIMEOUT)
    }
}

/// A lab plus one `disasternet` data dir per host.
#[derive(Debug)]
pub struct Cluster {
    /// Test name (output directory).
    pub test: String,
    /// `<target>/test-output/netns/<test>/`.
    pub out_dir: PathBuf,
    /// The binary under test.
    pub bin: PathBuf,
    // Declared before `lab`: node processes are killed before the namespaces go.
    nodes: Vec<Node>,
    /// The network.
    pub lab: Lab,
}

impl Cluster {
    /// Creates a lab of `n` hosts and their (empty) data dirs. `Ok(None)`: skipped (not root
    /// and `DN_SKIP_NETNS=1`).
    pub fn new(test: &str, n: usize) -> Result<Option<Cluster>> {
        if !netns_preflight(test)? {
            return Ok(None);
        }
        let bin = disasternet_bin()?;
        let out_dir = fresh_output_dir(test)?;
        let lab = Lab::new(n)?;
        let nodes = (1..=n)
            .map(|i| Node {
                index: i,
                data_dir: out_dir.join(format!("node{i}")),
                log: out_dir.join(format!("node{i}.log")),
                proc: None,
                starts: 0,
                last_exit: None,
            })
            .collect::<Vec<_>>();
        for node in &nodes {
            fs::create_dir_all(&node.data_dir)?;
        }
        eprintln!(
            "lab {} ({} hosts), output in {}",
            lab.prefix(),
            n,
            out_dir.display()
        );
        Ok(Some(Cluster {
            test: test.to_owned(),
            out_dir,
            bin,
            nodes,
            lab,
        }))
    }

    /// Like [`Cluster::new`], on a lab made by `make_lab` (e.g. [`Lab::with_networks`]), which
    /// is only called once the preflight passed. The cluster has one node per lab host.
    pub fn with_lab(test: &str, make_lab: impl FnOnce() -> Result<Lab>) -> Result<Option<Cluster>> {
        if !netns_preflight(test)? {
            return Ok(None);
        }
        let bin = disasternet_bin()?;
        let out_dir = fresh_output_dir(test)?;
        let lab = make_lab()?;
        let n = lab.hosts().len();
        let nodes = (1..=n)
            .map(|i| Node {
                index: i,
                data_dir: out_dir.join(format!("node{i}")),
                log: out_dir.join(format!("node{i}.log")),
                proc: None,
                starts: 0,
                last_exit: None,
            })
            .collect::<Vec<_>>();
        for node in &nodes {
            fs::create_dir_all(&node.data_dir)?;
        }
        let nets: Vec<String> = lab
            .hosts()
            .iter()
            .map(|h| {
                let ips: Vec<String> = h.links.iter().map(|l| l.ip.to_string()).collect();
                format!("n{}={}", h.index, ips.join("+"))
            })
            .collect();
        eprintln!(
            "lab {} ({} hosts: {}), output in {}",
            lab.prefix(),
            n,
            nets.join(" "),
            out_dir.display()
        );
        Ok(Some(Cluster {
            test: test.to_owned(),
            out_dir,
            bin,
            nodes,
            lab,
        }))
    }

    /// A handle that runs node `i`'s CLI from any thread (e.g. a burst of `send`s in the
    /// background while the test kills the node).
    pub fn cli_handle(&self, i: usize) -> Cli {
        Cli {
            index: i,
            ns: self.lab.host(i).ns.clone(),
            bin: self.bin.clone(),
            data_dir: self.node(i).data_dir.clone(),
        }
    }

    /// `init --name nodeI` and `room join ROOM` on every node. Returns the `init --json`
    /// answers (`{id, fingerprint, name}`; index 0 = node 1).
    pub fn init_all(&mut self, room: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for i in 1..=self.len() {
            let v = self.init(i, &format!("node{i}"))?;
            let ok =
                v["id"].as_str().is_some_and(|s| s.len() == 64) && v["fingerprint"].is_string();
            if !ok {
                return Err(self.fail(&format!("node{i}: init --json: {v}")));
            }
            self.join(i, room)?;
            out.push(v);
        }
        Ok(out)
    }

    /// Waits until every node `i` of `want` (node → ids) reports exactly the ids `want[i]` as
    /// connected, in both `status --json` (`connected_peers`) and `peers --json`.
    pub fn wait_connected_exactly(
        &mut self,
        what: &str,
        want: &[(usize, BTreeSet<String>)],
        timeout: Duration,
    ) -> Result<Duration> {
        self.wait_for(what, timeout, |c| {
            for (i, ids) in want {
                if c.status(*i)?["connected_peers"].as_u64() != Some(ids.len() as u64) {
                    return Ok(false);
                }
                if &c.connected_peer_ids(*i)? != ids {
                    return Ok(false);
                }
            }
            Ok(true)
        })
    }

    /// Waits until every node of `nodes` holds every message id of `want` in its log of
    /// `room`.
    pub fn wait_holds(
        &mut self,
        nodes: &[usize],
        room: &str,
        want: &BTreeSet<String>,
        timeout: Duration,
    ) -> Result<Duration> {
        let what = format!("nodes {nodes:?} hold {} messages in {room}", want.len());
        self.wait_for(&what, timeout, |c| {
            for &i in nodes {
                if !want.is_subset(&c.log_ids(i, room)?) {
                    return Ok(false);
                }
            }
            Ok(true)
        })
    }

    /// Node `i`'s log of `room` as ids in log order, duplicates kept.
    pub fn log_id_list(&self, i: usize, room: &str) -> Result<Vec<String>> {
        Ok(self
            .log(i, room)?
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect())
    }

    /// The other nodes (indexes) that node `i`'s log file says it discovered: lines with
    /// "discovered" (mDNS) or "beacon" that name their fingerprint, given every node's
    /// fingerprint (index 0 = node 1). Evidence of which discovery reached it.
    pub fn discovered_in_log(&self, i: usize, fingerprints: &[String]) -> BTreeSet<usize> {
        let text = fs::read_to_string(&self.node(i).log).unwrap_or_default();
        let mut found = BTreeSet::new();
        for line in text
            .lines()
            .filter(|l| l.contains("discovered") || l.contains("beacon"))
        {
            for (j, fp) in fingerprints.iter().enumerate() {
                if j + 1 != i && line.contains(fp.as_str()) {
                    found.insert(j + 1);
                }
            }
        }
        found
    }

    /// Node `i` (1-based).
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i - 1]
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false (a cluster has at least one node).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Address `ip:7300` of node `i`.
    pub fn addr(&self, i: usize) -> String {
        format!("{}:{DEFAULT_PORT}", self.lab.host(i).ip)
    }

    /// A command running `disasternet --data-dir <node i's dir> args…` in host `i`.
    pub fn command(&self, i: usize, args: &[&str]) -> Command {
        let mut cmd = self.lab.command(i, &self.bin);
        cmd.arg("--data-dir").arg(&self.node(i).data_dir).args(args);
        cmd
    }

    /// Runs a CLI command on node `i`, any exit status.
    pub fn cli_raw(&self, i: usize, args: &[&str]) -> Result<CmdOutput> {
        run_cmd(self.command(i, args), None, CLI_TIMEOUT)
    }

    /// Runs a CLI command on node `i`; it must exit 0.
    pub fn cli(&self, i: usize, args: &[&str]) -> Result<CmdOutput> {
        self.cli_raw(i, args)?
            .check()
            .with_context(|| format!("node{i}"))
    }

    /// Runs a CLI command with `--json` appended; it must exit 0 and print JSON.
    pub fn cli_json(&self, i: usize, args: &[&str]) -> Result<Value> {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.cli(i, &all)?;
        serde_json::from_str(out.stdout.trim()).with_context(|| {
            format!(
                "node{i}: stdout is not JSON: {}\n{}",
                out.cmdline,
                out.both()
            )
        })
    }

    /// `init --name NAME --json` → `{id, fingerprint, name}`.
    pub fn init(&self, i: usize, name: &str) -> Result<Value> {
        self.cli_json(i, &["init", "--name", name])
    }

    /// `room join ROOM`.
    pub fn join(&self, i: usize, room: &str) -> Result<()> {
        self.cli(i, &["room", "join", room]).map(drop)
    }

    /// `id` → 64-hex node id.
    pub fn id(&self, i: usize) -> Result<String> {
        Ok(self.cli(i, &["id"])?.stdout.trim().to_owned())
    }

    /// `status --json`.
    pub fn status(&self, i: usize) -> Result<Value> {
        self.cli_json(i, &["status"])
    }

    /// `peers --json` (an array).
    pub fn peers(&self, i: usize) -> Result<Vec<Value>> {
        match self.cli_json(i, &["peers"])? {
            Value::Array(a) => Ok(a),
            other => bail!("node{i}: peers --json is not an array: {other}"),
        }
    }

    /// Ids of the peers node `i` reports as connected.
    pub fn connected_peer_ids(&self, i: usize) -> Result<BTreeSet<String>> {
        Ok(self
            .peers(i)?
            .iter()
            .filter(|p| p["connected"] == Value::Bool(true))
            .filter_map(|p| p["id"].as_str().map(str::to_owned))
            .collect())
    }

    /// `send --room ROOM TEXT --json` → MessageView.
    pub fn send(&self, i: usize, room: &str, text: &str) -> Result<Value> {
        let v = self.cli_json(i, &["send", "--room", room, text])?;
        if !v["id"].is_string() {
            bail!("node{i}: send --json printed no \"id\": {v}");
        }
        Ok(v)
    }

    /// `log --room ROOM --limit 1000 --json` (oldest first).
    pub fn log(&self, i: usize, room: &str) -> Result<Vec<Value>> {
        match self.cli_json(i, &["log", "--room", room, "--limit", "1000"])? {
            Value::Array(a) => Ok(a),
            other => bail!("node{i}: log --json is not an array: {other}"),
        }
    }

    /// Message ids in node `i`'s log of `room`.
    pub fn log_ids(&self, i: usize, room: &str) -> Result<BTreeSet<String>> {
        Ok(self
            .log(i, room)?
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect())
    }

    /// Spawns `disasternet --data-dir D node extra…` in host `i` and returns the process
    /// without waiting for anything (its output goes to `log`).
    pub fn spawn_node(&self, i: usize, extra: &[&str], log: &Path) -> Result<Proc> {
        let mut args = vec!["node"];
        args.extend_from_slice(extra);
        let mut cmd = self.command(i, &args);
        cmd.env("RUST_LOG", node_log_filter()).env("NO_COLOR", "1");
        self.lab.spawn(&format!("node{i}"), cmd, log)
    }

    /// Starts node `i` (`node extra…`) and waits until `status` says `running: true`.
    pub fn start(&mut self, i: usize, extra: &[&str]) -> Result<()> {
        if self.nodes[i - 1]
            .proc
            .as_mut()
            .is_some_and(Proc::is_running)
        {
            bail!("node{i} is already running");
        }
        let log = self.node(i).log.clone();
        let proc = self.spawn_node(i, extra, &log)?;
        let node = &mut self.nodes[i - 1];
        node.proc = Some(proc);
        node.starts += 1;
        self.wait_for(
            &format!("node{i} reports running"),
            Duration::from_secs(15),
            |c| Ok(c.status(i)?["running"] == Value::Bool(true)),
        )
        .map(drop)
    }

    /// SIGTERM node `i`; it must exit (within [`STOP_GRACE`]) with status 0.
    pub fn stop(&mut self, i: usize) -> Result<ExitStatus> {
        let Some(mut proc) = self.nodes[i - 1].proc.take() else {
            bail!("node{i} is not started")
        };
        let st = proc.terminate(STOP_GRACE);
        let st = match st {
            Ok(st) => st,
            Err(e) => return Err(self.fail(&format!("stopping node{i}: {e:#}"))),
        };
        self.nodes[i - 1].last_exit = Some(st);
        if !st.success() {
            return Err(self.fail(&format!(
                "node{i} exited with {st} after SIGTERM (expected 0)"
            )));
        }
        Ok(st)
    }

    /// SIGKILL node `i`.
    pub fn kill(&mut self, i: usize) -> Result<ExitStatus> {
        let Some(mut proc) = self.nodes[i - 1].proc.take() else {
            bail!("node{i} is not started")
        };
        let st = proc.kill()?;
        self.nodes[i - 1].last_exit = Some(st);
        Ok(st)
    }

    /// Errors (with diagnostics) if a node that was started has exited on its own.
    pub fn check_alive(&mut self) -> Result<()> {
        let mut dead = Vec::new();
        for node in &mut self.nodes {
            if let Some(p) = node.proc.as_mut() {
                if let Some(st) = p.try_exit()? {
                    dead.push(format!("node{} exited unexpectedly ({st})", node.index));
                }
            }
        }
        if dead.is_empty() {
            Ok(())
        } else {
            Err(self.fail(&dead.join("; ")))
        }
    }

    /// Polls `f` (bounded by `timeout`) until it returns true. Fails at once, with
    /// diagnostics, if a started node dies; on timeout the error carries diagnostics and the
    /// last error `f` returned (errors from `f` are retried: a node may not be up yet).
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&Cluster) -> Result<bool>,
    ) -> Result<Duration> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(100);
        let mut last_err: Option<String>;
        loop {
            self.check_alive()
                .with_context(|| format!("while waiting for: {what}"))?;
            match f(self) {
                Ok(true) => {
                    eprintln!("[{}] ok after {:.1?}: {what}", self.test, start.elapsed());
                    return Ok(start.elapsed());
                }
                Ok(false) => last_err = None,
                Err(e) => last_err = Some(format!("{e:#}")),
            }
            if start.elapsed() >= timeout {
                let mut msg = format!("timed out after {timeout:?} waiting for: {what}");
                if let Some(e) = last_err {
                    let _ = write!(msg, "\nlast error: {e}");
                }
                return Err(self.fail(&msg));
            }
            thread::sleep(pause.min(timeout.saturating_sub(start.elapsed())));
            pause = (pause * 3 / 2).min(Duration::from_millis(500));
        }
    }

    /// An error made of `msg` plus diagnostics (also written to `diagnostics.txt`).
    pub fn fail(&mut self, msg: &str) -> anyhow::Error {
        let diag = self.diagnostics();
        let path = self.out_dir.join("diagnostics.txt");
        let _ = fs::write(&path, format!("{msg}\n\n{diag}"));
        anyhow!("{msg}\n\n{diag}\n(diagnostics also in {})", path.display())
    }

    /// Every node's process state, `status --json`, `peers --json` and log tail, plus the
    /// bridge's nft ruleset.
    pub fn diagnostics(&mut self) -> String {
        let mut s = String::from("================ diagnostics ================\n");
        for i in 1..=self.nodes.len() {
            let state = match self.nodes[i - 1].proc.as_mut() {
                Some(p) => match p.try_exit() {
                    Ok(None) => format!("running (pid {})", p.pid()),
                    Ok(Some(st)) => format!("EXITED ({st})"),
                    Err(e) => format!("unknown ({e})"),
                },
                None => format!("not running (last exit: {:?})", self.nodes[i - 1].last_exit),
            };
            let node = self.node(i);
            let _ = writeln!(
                s,
                "---- node{i} [{}] {} data={} starts={} ----",
                self.lab.host(i).ip,
                state,
                node.data_dir.display(),
                node.starts
            );
            for what in ["status", "peers"] {
                let text = match run_cmd(
                    self.command(i, &[what, "--json"]),
                    None,
                    Duration::from_secs(5),
                ) {
                    Ok(out) => {
                        let stdout = serde_json::from_str::<Value>(out.stdout.trim())
                            .map_or_else(|_| out.stdout.trim().to_owned(), |v| v.to_string());
                        format!("({}) {stdout} {}", out.status, out.stderr.trim())
                    }
                    Err(e) => format!("error: {e:#}"),
                };
                let _ = writeln!(s, "{what} --json: {text}");
            }
            let _ = writeln!(
                s,
                "log tail ({}):\n{}",
                node.log.display(),
                tail_file(&node.log, 60)
            );
        }
        match self.lab.ruleset() {
            Ok(r) if !r.trim().is_empty() => {
                let _ = writeln!(s, "---- bridge nft ruleset ----\n{r}");
            }
            _ => {}
        }
        s.push_str("=============================================");
        s
    }
}
