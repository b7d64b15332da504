//! Tiny network probe used by the lab's own tests, run inside lab namespaces:
//!
//! - `udp-echo ADDR:PORT SECONDS`: echo UDP datagrams back, for at most SECONDS.
//! - `udp-ping ADDR:PORT TIMEOUT_MS`: send one datagram, exit 0 when the echo comes back.
//! - `mdns-register INSTANCE PORT SECONDS`: announce `_dnlabprobe._udp.local.` via mdns-sd.
//! - `mdns-browse EXPECT TIMEOUT_MS`: browse that service; print `instance addr,addr` per
//!   resolved instance; exit 0 once EXPECT instances with an IPv4 address were seen, else 1.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};

const SERVICE: &str = "_dnlabprobe._udp.local.";

fn arg(args: &[String], i: usize, what: &str) -> Result<String> {
    args.get(i)
        .cloned()
        .with_context(|| format!("missing argument {i}: {what}"))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = arg(&args, 0, "subcommand")?;
    match cmd.as_str() {
        "udp-echo" => {
            let sock = UdpSocket::bind(arg(&args, 1, "addr")?)?;
            let secs: u64 = arg(&args, 2, "seconds")?.parse()?;
            let end = Instant::now() + Duration::from_secs(secs);
            sock.set_read_timeout(Some(Duration::from_millis(200)))?;
            println!("ready");
            let mut buf = [0u8; 2048];
            while Instant::now() < end {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(&buf[..n], from);
                }
            }
            Ok(())
        }
        "udp-ping" => {
            let target = arg(&args, 1, "addr")?;
            let ms: u64 = arg(&args, 2, "timeout ms")?.parse()?;
            let sock = UdpSocket::bind("0.0.0.0:0")?;
            sock.set_read_timeout(Some(Duration::from_millis(100)))?;
            let end = Instant::now() + Duration::from_millis(ms);
            let mut buf = [0u8; 64];
            while Instant::now() < end {
                sock.send_to(b"dnlab-ping", &target)?;
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    if &buf[..n] == b"dnlab-ping" {
                        println!("reply from {from}");
                        return Ok(());
                    }
                }
            }
            bail!("no reply from {target} within {ms} ms")
        }
        "mdns-register" => {
            let instance = arg(&args, 1, "instance")?;
            let port: u16 = arg(&args, 2, "port")?.parse()?;
            let secs: u64 = arg(&args, 3, "seconds")?.parse()?;
            let mdns = ServiceDaemon::new()?;
            let info = ServiceInfo::new(
                SERVICE,
                &instance,
                &format!("{instance}.local."),
                "",
                port,
                None::<std::collections::HashMap<String, String>>,
            )?
            .enable_addr_auto();
            mdns.register(info)?;
            println!("registered {instance}");
            std::thread::sleep(Duration::from_secs(secs));
            let _ = mdns.shutdown();
            Ok(())
        }
        "mdns-browse" => {
            let expect: usize = arg(&args, 1, "expect")?.parse()?;
            let ms: u64 = arg(&args, 2, "timeout ms")?.parse()?;
            let mdns = ServiceDaemon::new()?;
            let rx = mdns.browse(SERVICE)?;
            let end = Instant::now() + Duration::from_millis(ms);
            let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let ok = loop {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break false;
                }
                if let Ok(ServiceEvent::ServiceResolved(info)) = rx.recv_timeout(left) {
                    if !info.get_addresses_v4().is_empty() {
                        let mut addrs: Vec<String> = info
                            .get_addresses_v4()
                            .iter()
                            .map(ToString::to_string)
                            .collect();
                        addrs.sort();
                        seen.insert(info.get_fullname().to_owned(), addrs);
                    }
                }
                if seen.len() >= expect {
                    break true;
                }
            };
            for (name, addrs) in &seen {
                println!("{name} {}", addrs.join(","));
            }
            let _ = mdns.shutdown();
            if ok {
                Ok(())
            } else {
                bail!("saw {} of {expect} instances within {ms} ms", seen.len())
            }
        }
        other => bail!("unknown subcommand {other}"),
    }
}
