//! `dn-lab`: a [`dn_tests::Lab`] for tests written in other languages (the GUI end-to-end test
//! in `tests/gui/two-apps.test.mjs`), so there is one implementation of the namespace lab.
//!
//! `dn-lab up N` creates a lab of N hosts (network namespaces `dnlab-<pid>-0-n1` … `-nN` on a
//! bridge in `dnlab-<pid>-0-br`, hosts at `10.77.0.<i>/24`, multicast routed to `eth0`; nothing
//! in the caller's namespace), prints one JSON line describing it:
//!
//! ```text
//! {"prefix":"dnlab-123-0","bridge_ns":"dnlab-123-0-br","namespaces":["dnlab-123-0-n1",…],
//!  "ips":["10.77.0.1",…],"hosts":[{"index":1,"ns":"…","ip":"10.77.0.1","port":"p1"},…]}
//! ```
//!
//! then reads commands from stdin, one per line, answering each with one JSON line
//! (`{"ok":true}` or `{"ok":false,"error":"…"}`):
//!
//! - `link-down I` / `link-up I`: take host I's bridge port down (a hard cut) / back up.
//! - `partition I J` / `heal`: drop all frames between hosts I and J / remove every rule.
//! - `quit`: clean up and exit (as does end of input).
//!
//! The lab (and every process still running in its namespaces) is removed when stdin reaches
//! end of file, so a test that dies for any reason takes its lab with it; a lab whose `dn-lab`
//! was killed outright is removed by the next lab created (see `cleanup_stale`).
//!
//! Needs root. Not root: fails with a clear message, or prints `{"skipped":true,…}` and exits 0
//! when `DN_SKIP_NETNS=1` (the policy of `netns_preflight`).

#[cfg(target_os = "linux")]
fn main() -> anyhow::Result<()> {
    linux::main()
}

/// Network namespaces are Linux only.
#[cfg(not(target_os = "linux"))]
fn main() -> std::process::ExitCode {
    eprintln!("dn-lab: network namespaces are Linux only");
    std::process::ExitCode::from(2)
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{BufRead, Write};

    use anyhow::{bail, Context, Result};
    use dn_tests::{netns_preflight, Lab};
    use serde_json::{json, Value};

    fn usage() -> ! {
        eprintln!("usage: dn-lab up N    (N hosts, 1..=200; commands on stdin, see the source)");
        std::process::exit(2);
    }

    fn host_index(lab: &Lab, arg: Option<&str>) -> Result<usize> {
        let i: usize = arg
            .context("missing host index")?
            .parse()
            .context("host index is not a number")?;
        if i == 0 || i > lab.hosts().len() {
            bail!("no host {i} in a lab of {}", lab.hosts().len());
        }
        Ok(i)
    }

    fn command(lab: &mut Lab, line: &str) -> Result<()> {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("link-down") => {
                let i = host_index(lab, words.next())?;
                lab.link_down(i)
            }
            Some("link-up") => {
                let i = host_index(lab, words.next())?;
                lab.link_up(i)
            }
            Some("partition") => {
                let i = host_index(lab, words.next())?;
                let j = host_index(lab, words.next())?;
                lab.partition(&[i], &[j])
            }
            Some("heal") => lab.clear_rules(),
            Some(other) => bail!("unknown command {other:?}"),
            None => bail!("empty command"),
        }
    }

    fn reply(out: &mut impl Write, value: &Value) -> Result<()> {
        writeln!(out, "{value}")?;
        out.flush()?;
        Ok(())
    }

    pub(crate) fn main() -> Result<()> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let n: usize = match args.as_slice() {
            [up, n] if up == "up" => n.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        };
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        if !netns_preflight("dn-lab")? {
            return reply(
                &mut out,
                &json!({"skipped": true, "reason": "not root and DN_SKIP_NETNS=1"}),
            );
        }
        let mut lab = Lab::new(n)?;
        let hosts: Vec<Value> = lab
            .hosts()
            .iter()
            .map(|h| json!({"index": h.index, "ns": h.ns, "ip": h.ip.to_string(), "port": h.port}))
            .collect();
        reply(
            &mut out,
            &json!({
                "prefix": lab.prefix(),
                "bridge_ns": lab.bridge_ns(),
                "namespaces": lab.hosts().iter().map(|h| h.ns.clone()).collect::<Vec<_>>(),
                "ips": lab.hosts().iter().map(|h| h.ip.to_string()).collect::<Vec<_>>(),
                "hosts": hosts,
            }),
        )?;
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let line = line.trim();
            if line == "quit" {
                break;
            }
            if line.is_empty() {
                continue;
            }
            let answer = match command(&mut lab, line) {
                Ok(()) => json!({"ok": true}),
                Err(e) => json!({"ok": false, "error": format!("{e:#}")}),
            };
            // The reader may be gone (its test died): clean up all the same.
            if reply(&mut out, &answer).is_err() {
                break;
            }
        }
        lab.cleanup()
    }
}
