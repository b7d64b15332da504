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
    /// Connections (besides --peer addresses and relays) this node dials up to, from the
    /// peers it discovers (default 8; docs/architecture.md, "Bounded active view").
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub view_target: Option<u16>,
    /// Connections (besides --peer addresses and relays) past which this node closes a
    /// random one (default 12, at least --view-target; none on a relay).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub view_max: Option<u16>,
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
        if self.view_target.is_some() || self.view_max.is_some() {
            let target = self
                .view_target
                .map_or(dn_proto::protocol::ACTIVE_TARGET, usize::from);
            let max = self
                .view_max
                .map_or(dn_proto::protocol::ACTIVE_MAX, usize::from)
                .max(target);
            cfg.active_view = Some((target, max));
        }
        cfg
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), coloured only on a terminal.
/// Does nothing if a subscriber is already installed.
pub fn init_tracing() {
    init_tracing_to(None);
}

/// Largest log file kept from an earlier run: a bigger one is moved to `<name>.1` (replacing
/// the one before) when the program starts.
pub const LOG_ROTATE_BYTES: u64 = 4 * 1024 * 1024;
/// Most bytes one run writes to its log file; past that, lines go to stderr only (a chatty or
/// attacked node cannot fill the disk through its log).
pub const LOG_RUN_CAP_BYTES: u64 = 16 * 1024 * 1024;

/// [`init_tracing`], plus every line also written to `log_file` when given (the desktop app's
/// `app.log` in its data directory: on Windows the app has no console, so this file is where
/// its messages can be read). The file is owner-only, appended to, rotated at start when over
/// [`LOG_ROTATE_BYTES`], and capped at [`LOG_RUN_CAP_BYTES`] per run. A file that cannot be
/// opened is reported on stderr and logging goes on without it. Does nothing if a subscriber
/// is already installed.
pub fn init_tracing_to(log_file: Option<&std::path::Path>) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let file = log_file.and_then(|path| match LogFile::open(path) {
        Ok(f) => Some(
            tracing_subscriber::fmt::layer()
                .with_writer(std::sync::Mutex::new(f))
                .with_ansi(false),
        ),
        Err(e) => {
            eprintln!("cannot open the log file {}: {e}", path.display());
            None
        }
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file)
        .try_init();
}

/// An append-only, owner-only log file with a per-run byte cap (see [`init_tracing_to`]).
#[derive(Debug)]
pub struct LogFile {
    file: std::fs::File,
    written: u64,
    cap: u64,
    /// Bytes not written because the cap was reached.
    pub dropped: u64,
}

impl LogFile {
    /// Opens `path` for appending (creating it owner-only), first moving a file over
    /// [`LOG_ROTATE_BYTES`] to `<path>.1`.
    pub fn open(path: &std::path::Path) -> std::io::Result<Self> {
        Self::open_with(path, LOG_ROTATE_BYTES, LOG_RUN_CAP_BYTES)
    }

    fn open_with(path: &std::path::Path, rotate: u64, cap: u64) -> std::io::Result<Self> {
        if std::fs::metadata(path).is_ok_and(|m| m.len() > rotate) {
            let mut old = path.as_os_str().to_owned();
            old.push(".1");
            std::fs::rename(path, old)?;
        }
        let mut o = std::fs::OpenOptions::new();
        o.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, crate::fsutil::PRIVATE_FILE_MODE);
        let file = o.open(path)?;
        crate::fsutil::tighten(path, crate::fsutil::PRIVATE_FILE_MODE)?;
        Ok(Self {
            file,
            written: 0,
            cap,
            dropped: 0,
        })
    }
}

impl std::io::Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        const FULL: &[u8] = b"(log file cap reached: further lines go to stderr only)\n";
        if self.written >= self.cap {
            self.dropped += buf.len() as u64;
            return Ok(buf.len());
        }
        self.written += buf.len() as u64;
        self.file.write_all(buf)?;
        if self.written >= self.cap {
            self.file.write_all(FULL)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Resolves when the process is asked to stop, with the reason's name; logs it. The same
/// function for the CLI and the app, on every platform:
/// - everywhere: Ctrl-C (`SIGINT` on Unix, `CTRL_C_EVENT` on Windows);
/// - Unix: `SIGTERM` (systemd, `kill`);
/// - Windows: Ctrl-Break, the console window closed, the user logging off, the system shutting
///   down (Windows gives a process a few seconds after the last three: enough for the store,
///   which commits every message when it is written).
pub async fn shutdown_signal() -> &'static str {
    let name = platform_signal().await;
    tracing::info!("{name}: stopping");
    name
}

#[cfg(unix)]
async fn platform_signal() -> &'static str {
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
}

#[cfg(windows)]
async fn platform_signal() -> &'static str {
    use tokio::signal::windows;
    // One console event kind: its name once it arrives; never, if it cannot be listened for.
    macro_rules! event {
        ($listen:expr, $name:literal) => {
            async {
                match $listen {
                    Ok(mut s) => {
                        s.recv().await;
                        $name
                    }
                    Err(e) => {
                        tracing::warn!("cannot listen for {}: {e}", $name);
                        std::future::pending().await
                    }
                }
            }
        };
    }
    tokio::select! {
        n = event!(windows::ctrl_c(), "Ctrl-C") => n,
        n = event!(windows::ctrl_break(), "Ctrl-Break") => n,
        n = event!(windows::ctrl_close(), "console closed") => n,
        n = event!(windows::ctrl_logoff(), "logoff") => n,
        n = event!(windows::ctrl_shutdown(), "system shutdown") => n,
    }
}

#[cfg(not(any(unix, windows)))]
async fn platform_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
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
    fn log_file_rotates_at_start_and_caps_a_run() {
        use std::io::Write as _;
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("app.log");
        std::fs::write(&path, vec![b'x'; 100]).unwrap();
        // Under the rotation size: appended to.
        let mut f = LogFile::open_with(&path, 100, 50).unwrap();
        f.write_all(b"first run\n").unwrap();
        drop(f);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 110);
        // Over it: moved to app.log.1, a new file started; the cap stops a run's writes.
        let mut f = LogFile::open_with(&path, 100, 50).unwrap();
        assert_eq!(
            std::fs::metadata(t.path().join("app.log.1")).unwrap().len(),
            110
        );
        for _ in 0..10 {
            f.write_all(b"0123456789\n").unwrap();
        }
        assert_eq!(f.dropped, 55, "5 lines of 11 bytes past the cap of 50");
        drop(f);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("0123456789\n"), "{text}");
        assert!(
            text.ends_with("further lines go to stderr only)\n"),
            "{text}"
        );
        assert_eq!(text.matches("0123456789").count(), 5);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn sigterm_resolves_the_shutdown_signal() {
        let wait = tokio::spawn(shutdown_signal());
        // Let the handler install before the signal arrives.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TERM)
            .unwrap();
        let name = tokio::time::timeout(std::time::Duration::from_secs(10), wait)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(name, "SIGTERM");
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
    fn the_view_options_set_target_and_limit() {
        let parse = |args: &[&str]| {
            Cmd::try_parse_from(args)
                .map(|c| c.node.config(PathBuf::from("/d")).active_view)
                .map_err(|e| e.to_string())
        };
        assert_eq!(parse(&["x"]), Ok(None));
        assert_eq!(
            parse(&["x", "--view-target", "2", "--view-max", "3"]),
            Ok(Some((2, 3)))
        );
        assert_eq!(parse(&["x", "--view-target", "3"]), Ok(Some((3, 12))));
        // The limit is never below the target.
        assert_eq!(parse(&["x", "--view-target", "20"]), Ok(Some((20, 20))));
        assert_eq!(parse(&["x", "--view-max", "4"]), Ok(Some((8, 8))));
        assert!(parse(&["x", "--view-target", "0"]).is_err());
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
