//! What the CLI's `disasternet node` and the desktop app share about running a node: the
//! command-line options that configure it ([`NodeOptions`], flattened into both programs'
//! argument parsers), logging ([`init_tracing`]) and the signals that stop it
//! ([`shutdown_signal`]). One place, so the two front ends cannot drift apart.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::{NodeConfig, DEFAULT_CARRY_QUOTA_BYTES, RELAY_CARRY_QUOTA_BYTES};

/// Options of a running node, the same in `disasternet node` and `disasternet-app`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct NodeOptions {
    /// QUIC listen address (default [::]:7300 dual-stack, else 0.0.0.0:7300; a free port if
    /// 7300 is taken).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Peer to dial by address (repeatable), for networks without multicast.
    #[arg(long = "peer", value_name = "HOST:PORT")]
    pub peers: Vec<String>,
    /// Do not announce or browse with mDNS.
    #[arg(long)]
    pub no_mdns: bool,
    /// Do not send or listen for UDP broadcast beacons (port 7301; discovery where multicast
    /// is blocked).
    #[arg(long)]
    pub no_beacon: bool,
    /// Storage for rooms not joined (carried for others, `dm`, rooms left), in MiB; over it
    /// the oldest of those messages are evicted. Default 256, or 4096 with --relay.
    #[arg(long, value_name = "MIB")]
    pub carry_quota_mb: Option<u64>,
    /// Run as a relay (a headless node on a host laptops at other sites can reach): joins no
    /// room, carries the rooms its peers want (up to 1,024, 4 GiB by default), no mDNS or
    /// beacon unless --mdns.
    #[arg(long)]
    pub relay: bool,
    /// With --relay: announce and browse with mDNS anyway (a relay on a site's own LAN).
    #[arg(long, requires = "relay", conflicts_with = "no_mdns")]
    pub mdns: bool,
}

impl NodeOptions {
    /// The engine configuration for a node on `data_dir` with these options.
    pub fn config(&self, data_dir: PathBuf) -> NodeConfig {
        let mut cfg = NodeConfig::new(data_dir);
        if let Some(listen) = self.listen {
            cfg.listen = listen;
        }
        cfg.peers = self.peers.clone();
        cfg.relay = self.relay;
        cfg.mdns = if self.relay { self.mdns } else { !self.no_mdns };
        cfg.beacon = !self.no_beacon && !self.relay;
        let default_quota = if self.relay {
            RELAY_CARRY_QUOTA_BYTES
        } else {
            DEFAULT_CARRY_QUOTA_BYTES
        };
        cfg.carry_quota_bytes = self
            .carry_quota_mb
            .map_or(default_quota, |mb| mb.saturating_mul(1024 * 1024));
        cfg
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), coloured only on a terminal.
/// Does nothing if a subscriber is already installed.
pub fn init_tracing() {
    use std::io::IsTerminal as _;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Resolves when the process is asked to stop (SIGINT / Ctrl-C, or SIGTERM on Unix), with the
/// signal's name; logs it.
pub async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    let name = {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    };
    #[cfg(not(unix))]
    let name = {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    };
    tracing::info!("{name}: stopping");
    name
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        node: NodeOptions,
    }

    #[test]
    fn options_map_to_the_engine_config() {
        let cmd = Cmd::try_parse_from([
            "x",
            "--listen",
            "127.0.0.1:7301",
            "--peer",
            "10.0.0.2:7300",
            "--peer",
            "camp-b.local:7300",
            "--no-mdns",
            "--no-beacon",
            "--carry-quota-mb",
            "3",
        ])
        .unwrap();
        let cfg = cmd.node.config(PathBuf::from("/tmp/dn"));
        assert_eq!(cfg.listen, SocketAddr::from(([127, 0, 0, 1], 7301)));
        assert_eq!(cfg.peers, ["10.0.0.2:7300", "camp-b.local:7300"]);
        assert!(!cfg.mdns && !cfg.beacon);
        assert_eq!(cfg.carry_quota_bytes, 3 * 1024 * 1024);
        assert_eq!(cfg.data_dir, PathBuf::from("/tmp/dn"));
    }

    #[test]
    fn no_options_give_the_front_ends_defaults() {
        let cfg = Cmd::try_parse_from(["x"])
            .unwrap()
            .node
            .config(PathBuf::from("/d"));
        let defaults = NodeConfig::new(PathBuf::from("/d"));
        assert_eq!(cfg.listen, defaults.listen);
        assert_eq!(cfg.carry_quota_bytes, DEFAULT_CARRY_QUOTA_BYTES);
        assert!(cfg.mdns && cfg.beacon && cfg.peers.is_empty() && !cfg.relay);
        assert!(Cmd::try_parse_from(["x", "--carry-quota-mb", "-1"]).is_err());
    }

    #[test]
    fn a_relay_has_no_local_discovery_and_a_bigger_quota() {
        let parse = |args: &[&str]| {
            Cmd::try_parse_from(args)
                .unwrap()
                .node
                .config(PathBuf::from("/d"))
        };
        let cfg = parse(&["x", "--relay"]);
        assert!(cfg.relay && !cfg.mdns && !cfg.beacon);
        assert_eq!(cfg.carry_quota_bytes, RELAY_CARRY_QUOTA_BYTES);
        let cfg = parse(&["x", "--relay", "--mdns", "--carry-quota-mb", "10"]);
        assert!(cfg.relay && cfg.mdns);
        assert_eq!(cfg.carry_quota_bytes, 10 * 1024 * 1024);
        assert!(
            Cmd::try_parse_from(["x", "--mdns"]).is_err(),
            "--mdns needs --relay"
        );
    }
}
