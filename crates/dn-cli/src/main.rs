//! `disasternet` — the DisasterNet command-line program: a headless node (`node`), and
//! commands to script it. While a node (or the desktop app) runs on a data directory, commands
//! talk to it over its control socket; otherwise they work on the store directly.
//!
//! A data directory locked with a passphrase (`disasternet passphrase set`) is opened with
//! `DISASTERNET_PASSPHRASE`, else a passphrase asked for on the terminal (no echo), else the
//! command fails with `locked` (exit status 8). Commands served by a running node need none.

mod passphrase;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::{Parser, Subcommand};
use dn_node::api::{HealthSummary, LinkHealth, LinkQuality, NodeHealth};
use dn_node::display::safe_line;
use dn_node::export::{utc_human, FileVerification, ManifestStatus, NO_MANIFEST_WARNING};
use dn_node::{
    calls, ApiError, BlockedView, Call, Client, DiagnosisView, DmView, Engine, ErrorCode,
    ExportFormat, IdentityView, MemberView, MessageView, NodeConfig, NodeOptions, PeerView,
    RelayView, Request, RoomView, Severity,
};
use dn_proto::sim;

#[derive(Parser)]
#[command(
    name = "disasternet",
    version,
    about = "Offline-first peer-to-peer emergency messaging",
    after_help = EXIT_STATUS_HELP
)]
struct Cli {
    /// Data directory (identity key, message store). Defaults to the desktop app's.
    #[arg(long, global = true, env = "DISASTERNET_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the node identity (if missing) and optionally set the display name.
    Init {
        /// Display name shown to others.
        #[arg(long)]
        name: Option<String>,
    },
    /// Print this node's id (64 hex characters).
    Id,
    /// Set the display name.
    Name {
        /// New display name.
        name: String,
    },
    /// Run a headless node in the foreground until Ctrl-C or SIGTERM.
    Node(NodeOptions),
    /// Manage rooms.
    Room {
        #[command(subcommand)]
        cmd: RoomCmd,
    },
    /// Send a message to a room.
    Send {
        /// Room name.
        #[arg(long)]
        room: String,
        /// Text (several words are joined with spaces).
        #[arg(required = true)]
        text: Vec<String>,
        /// Mark it urgent: it goes first on every link and stays pinned on every member's
        /// screen until acknowledged (the marker "🚨 URGENT: " is part of the signed text).
        #[arg(long)]
        urgent: bool,
    },
    /// List urgent messages not acknowledged yet, newest first (one room, or every joined
    /// room).
    Urgent {
        /// Room name (default: every joined room).
        room: Option<String>,
    },
    /// Acknowledge urgent messages of a room: one by id, or all with --all.
    Ack {
        /// Room name.
        room: String,
        /// Message id (64 hex; `urgent --json` shows it as `id`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Every urgent message of the room.
        #[arg(long)]
        all: bool,
    },
    /// Show a room's messages, oldest first.
    Log {
        /// Room name.
        #[arg(long)]
        room: String,
        /// Most messages shown (newest ones).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Known peers.
    Peers,
    /// Node status.
    Status,
    /// The network this node can see: nodes with hop distances, and links.
    Network,
    /// "Why can't I see anyone?": asks the running node what it observed of its network
    /// (addresses, mDNS and beacons heard, dials and how each failed, ports) and prints its
    /// findings with advice. It runs no probe of its own: start a node first (`disasternet
    /// node`) and give it about 20 s.
    ///
    /// Exit status: 0 healthy (or nothing wrong yet), 10 warnings (works, but degraded), 11
    /// problems (nobody can be reached this way), 12 no node runs on this data directory;
    /// other errors as below.
    Doctor,
    /// Direct messages: `dm --to ID TEXT` sends one, end-to-end encrypted; `dm log --with ID`
    /// shows a conversation.
    #[command(args_conflicts_with_subcommands = true)]
    Dm(DmArgs),
    /// Block an author on this data directory: their messages are hidden, not stored when they
    /// arrive, and not relayed or carried by this node.
    Block {
        /// The author's node id (64 hex characters; `log --json` shows it as `author`).
        id: String,
    },
    /// Unblock an author.
    Unblock {
        /// The author's node id (64 hex characters).
        id: String,
    },
    /// Authors blocked on this data directory.
    Blocked,
    /// Relay addresses this node keeps dialling (a relay is a `disasternet node --relay` on a
    /// host laptops at several sites can reach; see docs/relay.md).
    Relay {
        #[command(subcommand)]
        cmd: RelayCmd,
    },
    /// Dial a peer by address on the running node.
    Connect {
        /// HOST:PORT.
        addr: String,
    },
    /// Export messages: signed JSON Lines (verifiable), CSV, or a printable HTML report.
    Export {
        /// One room (default: all rooms).
        #[arg(long)]
        room: Option<String>,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// File format: jsonl (verifiable with `verify`), csv, html.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: FormatArg,
    },
    /// Bundles: carry messages to a network with no link at all (a file on a USB stick).
    /// `bundle export FILE` writes one, `bundle import FILE` takes one in.
    #[command(after_help = BUNDLE_HELP)]
    Bundle {
        #[command(subcommand)]
        cmd: BundleCmd,
    },
    /// Back up or restore this node's identity key.
    Identity {
        #[command(subcommand)]
        cmd: IdentityCmd,
    },
    /// Verify an export file: every line's signature, and with a manifest (the exporting
    /// node's signature over the whole file) that no line was removed, added, reordered or
    /// edited. Non-zero exit if anything fails.
    Verify {
        /// File to check.
        file: PathBuf,
    },
    /// Recover a damaged message store: copy every readable, correctly signed message (and
    /// the rooms and settings) into a new store, then move the damaged file aside as
    /// store.sqlite3.damaged-<unix ms> and put the new one in place. Deletes nothing. Only
    /// while no node or app runs on the data dir.
    Salvage {
        /// Rebuild the store even when its integrity check passes.
        #[arg(long)]
        force: bool,
    },
    /// Run the deterministic protocol simulator (tree propagation beside the flooding baseline).
    Sim(SimArgs),
    /// Lock this laptop's DisasterNet with a passphrase (the identity key and the message
    /// store encrypted at rest), change it or remove it. The passphrase is asked for twice on
    /// the terminal, or read from DISASTERNET_NEW_PASSPHRASE (the current one from
    /// DISASTERNET_PASSPHRASE). Forgetting it loses the data: there is no recovery.
    Passphrase {
        #[command(subcommand)]
        cmd: passphrase::PassphraseCmd,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Jsonl,
    Csv,
    Html,
}

impl From<FormatArg> for ExportFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Jsonl => ExportFormat::Jsonl,
            FormatArg::Csv => ExportFormat::Csv,
            FormatArg::Html => ExportFormat::Html,
        }
    }
}

#[derive(Subcommand)]
enum BundleCmd {
    /// Write a bundle of all rooms (or the chosen ones): every message as its author signed it,
    /// direct messages and private rooms as ciphertext. Written atomically, mode 0600.
    Export {
        /// Output file (e.g. /media/usb/camp1.dnb).
        file: PathBuf,
        /// Only this room (repeat for several; private rooms by id or name).
        #[arg(long = "room")]
        rooms: Vec<String>,
        /// Only messages dated at or after: 2026-11-28 (midnight UTC), an RFC 3339 time, or
        /// milliseconds since the Unix epoch.
        #[arg(long)]
        since: Option<String>,
    },
    /// Import a bundle: every message verified, duplicates skipped (importing twice adds
    /// nothing), then spread to this camp's network like any received message.
    Import {
        /// The bundle file.
        file: PathBuf,
    },
}

/// Exit status of `bundle import` (also in the top-level help).
const BUNDLE_HELP: &str = "\
Exit status of `bundle import`:
  0   every record read, the file is complete and unaltered (duplicates and messages refused
      by this node's rules, e.g. a blocked author, are not errors: see the summary)
  10  the file is truncated or altered: every valid message in it was imported, the summary
      says what was not
  2   not a bundle, or nothing in it is a valid message
Progress goes to stderr: a bar on a terminal, plain lines otherwise.";

#[derive(Subcommand)]
enum IdentityCmd {
    /// Write the identity key to a file (mode 0600). The file IS your identity: anyone holding
    /// it can sign as you. Works while a node runs.
    Backup {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Replace this data dir's identity with the one in a backup file. Only while no node or
    /// app runs on the data dir; the previous key is kept as identity.key.replaced-<unix ms>.
    Restore {
        /// Backup file.
        file: PathBuf,
    },
}

#[derive(clap::Args)]
struct DmArgs {
    #[command(subcommand)]
    cmd: Option<DmCmd>,
    /// Recipient node id (64 hex characters).
    #[arg(long)]
    to: Option<String>,
    /// Mark it urgent: carriers take it first and the recipient sees it highlighted.
    #[arg(long)]
    urgent: bool,
    /// Text (several words are joined with spaces).
    text: Vec<String>,
}

#[derive(Subcommand)]
enum DmCmd {
    /// Show the direct messages exchanged with one node.
    Log {
        /// The other node's id.
        #[arg(long)]
        with: String,
        /// Most messages shown (newest ones).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(clap::Args)]
struct SimArgs {
    /// PRNG seed; the same seed reproduces the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of nodes.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// random:DEGREE, chain, grid or clusters:DEGREE.
    #[arg(long, default_value = "random:6")]
    topology: String,
    /// One-way link latency range in ms, MIN-MAX.
    #[arg(long, default_value = "10-50")]
    latency: String,
    /// Packet loss in percent (shows up as retransmission delay on QUIC streams).
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Warm-up messages (not measured).
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Measured messages.
    #[arg(long, default_value_t = 50)]
    messages: usize,
    /// Always the same sender instead of a random one per message.
    #[arg(long)]
    fixed_sender: bool,
    /// Partition: AT_MS-HEAL_MS:FRACTION, e.g. 2000-6000:0.4.
    #[arg(long)]
    partition: Option<String>,
    /// Crash: COUNT@AT_MS-RESTART_MS, e.g. 20@2000-5000.
    #[arg(long)]
    crash: Option<String>,
    /// Skip the flooding baseline.
    #[arg(long)]
    no_baseline: bool,
    /// One shared tree for every author (PlumTree alone) instead of each author's source
    /// tree over the signed neighbour lists.
    #[arg(long)]
    shared_tree: bool,
}

#[derive(Subcommand)]
enum RelayCmd {
    /// Remember a relay and keep dialling it (now if a node runs, else from its next start).
    Add {
        /// HOST:PORT (a DNS name, looked up again before every dial), IP:PORT, [IPv6]:PORT
        /// or [fe80::1%eth0]:PORT.
        addr: String,
    },
    /// Forget a relay address.
    Remove {
        /// The address as `relay list` shows it.
        addr: String,
    },
    /// Relay addresses and whether each is connected.
    List,
}

#[derive(Subcommand)]
enum RoomCmd {
    /// Create a room (same as join: open rooms are addressed by name). With --private: a new
    /// end-to-end encrypted room, joined by invite only; prints its invite code.
    Create {
        /// Room name.
        name: String,
        /// A private room: a random key, an opaque id on the wire; carriers cannot read it.
        #[arg(long)]
        private: bool,
    },
    /// Join an open room by name, or a private room with its invite (code or file).
    #[command(group = clap::ArgGroup::new("what").required(true).args(["name", "invite"]))]
    Join {
        /// Room name (open room, or a private room you left).
        name: Option<String>,
        /// Invite code (DNI1-…) or the path of an invite file.
        #[arg(long)]
        invite: Option<String>,
    },
    /// Print the invite of a private room (anyone holding it can read and write the room).
    Invite {
        /// The private room (its name or id).
        room: String,
        /// Also write it to this invite file (mode 0600).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Also draw the code as a QR code in the terminal.
        #[arg(long)]
        qr: bool,
    },
    /// List the members of a private room.
    Members {
        /// The private room.
        room: String,
    },
    /// Remove a member of a private room (admins only): the remaining members get a new key;
    /// the removed member reads nothing written after.
    Remove {
        /// The private room.
        room: String,
        /// The member's node id (64 hex).
        member: String,
    },
    /// Make a member of a private room an admin (admins only).
    Promote {
        /// The private room.
        room: String,
        /// The member's node id (64 hex).
        member: String,
    },
    /// Leave a room (its messages stay stored).
    Leave {
        /// Room name.
        name: String,
    },
    /// Mute the room's desktop notifications in the app on this data directory.
    Mute {
        /// Room name.
        name: String,
    },
    /// Unmute the room's desktop notifications.
    Unmute {
        /// Room name.
        name: String,
    },
    /// List rooms.
    List,
}

fn default_data_dir() -> Result<PathBuf> {
    Ok(dn_node::default_data_dir()?)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            let e = api_error(&e);
            if json {
                let out = serde_json::json!({ "error": &e });
                println!("{out}");
            } else {
                eprintln!("error: {}", e.message);
            }
            ExitCode::from(exit_status(e.code))
        }
    }
}

/// The exit statuses, for `--help` (kept in step with [`exit_status`] by a test).
const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success
  1  failure: a verification found bad lines, or an internal error
  2  invalid input: a bad argument, room name, id or file (also command-line usage errors)
  3  busy: another node or the app holds the data directory, or it does not answer
  4  storage: the message store failed
  5  io: a file or socket operation failed
  6  not found: a room, peer or file does not exist
  7  no name: set a display name first (`disasternet name NAME`)
  8  locked: the data directory is locked; give its passphrase (DISASTERNET_PASSPHRASE)
  9  wrong passphrase: nothing was changed
  10 bundle import: the file is truncated or altered; its valid part was imported
With --json, an error is printed on stdout as {\"error\": {\"code\": \"...\", \"message\": \"...\"}}.";

/// The exit status of a failed command, by error class (see [`EXIT_STATUS_HELP`]).
fn exit_status(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::Internal => 1,
        ErrorCode::InvalidInput => 2,
        ErrorCode::Busy => 3,
        ErrorCode::Storage => 4,
        ErrorCode::Io => 5,
        ErrorCode::NotFound => 6,
        ErrorCode::NoName => 7,
        ErrorCode::Locked => 8,
        ErrorCode::WrongPassphrase => 9,
    }
}

/// The engine's error when there is one in the chain (its code and message), else an
/// `internal` error with the whole chain on one line.
fn api_error(e: &anyhow::Error) -> ApiError {
    match e.chain().find_map(|c| c.downcast_ref::<ApiError>()) {
        Some(api) if e.chain().count() == 1 => api.clone(),
        Some(api) => ApiError::new(api.code, one_line(e)),
        None => ApiError::new(ErrorCode::Internal, one_line(e)),
    }
}

/// A wrong argument found by the CLI itself (exit status 2).
fn invalid(message: impl Into<String>) -> anyhow::Error {
    ApiError::new(ErrorCode::InvalidInput, message).into()
}

fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
        .replace('\n', " ")
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// One typed engine request; the answer is decoded by the engine's one JSON → T path.
async fn call<C: Call>(client: &Client, c: C) -> Result<C::Response> {
    Ok(client.call(c).await?)
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let data_dir = match cli.data_dir {
        Some(d) => d,
        None => default_data_dir()?,
    };
    let json = cli.json;
    match cli.cmd {
        Cmd::Node(opts) => {
            let mut cfg = opts.config(data_dir.clone());
            cfg.passphrase = passphrase::for_start(&data_dir)?;
            return run_node(cfg).await;
        }
        Cmd::Verify { file } => return verify(&file, json),
        Cmd::Salvage { force } => return salvage(&data_dir, force, json),
        Cmd::Identity {
            cmd: IdentityCmd::Restore { file },
        } => return restore(&data_dir, &file, json),
        Cmd::Sim(args) => return simulate(&args, json),
        Cmd::Doctor => return doctor(&data_dir, json).await,
        Cmd::Passphrase { cmd } => return passphrase::run(&data_dir, cmd, json).await,
        _ => {}
    }
    let client = passphrase::open_client(&data_dir).await?;
    let result = match cli.cmd {
        Cmd::Bundle { cmd } => bundle(&client, cmd, json).await,
        cmd => command(&client, cmd, json)
            .await
            .map(|()| ExitCode::SUCCESS),
    };
    client.close().await;
    result
}

/// Exit status of a bundle import whose file is truncated or altered (valid part imported).
const EXIT_BUNDLE_PARTIAL: u8 = 10;

/// `bundle export` / `bundle import`, with progress on stderr.
async fn bundle(client: &Client, cmd: BundleCmd, json: bool) -> Result<ExitCode> {
    match cmd {
        BundleCmd::Export { file, rooms, since } => {
            let path = absolute(&file)?;
            let since_ms = since
                .as_deref()
                .map(dn_node::bundle::parse_since)
                .transpose()?;
            let call = calls::ExportBundle {
                path: path.display().to_string(),
                rooms: (!rooms.is_empty()).then_some(rooms),
                since_ms,
            };
            let s =
                with_progress(client, call, "export", &path.display().to_string(), json).await?;
            if json {
                print_json(&s)?;
            } else {
                println!(
                    "wrote {} messages ({} bytes) to {}",
                    s.messages,
                    s.bytes,
                    safe_line(&s.path)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BundleCmd::Import { file } => {
            let path = absolute(&file)?;
            let call = calls::ImportBundle {
                path: path.display().to_string(),
            };
            let r =
                with_progress(client, call, "import", &path.display().to_string(), json).await?;
            let valid = r.imported + r.duplicates + r.refused;
            if json {
                print_json(&r)?;
            } else {
                println!(
                    "{} records: {} imported, {} already here, {} refused by this node's rules, \
                     {} invalid",
                    r.total, r.imported, r.duplicates, r.refused, r.invalid
                );
                if let Some(p) = r.problem.as_ref().filter(|_| !r.truncated) {
                    eprintln!("warning: {}", safe_line(p));
                }
                if !r.checksum_ok && !r.truncated && r.problem.is_none() {
                    eprintln!(
                        "warning: the bundle's checksum does not match: it was altered or \
                         damaged (every valid message in it was imported)"
                    );
                }
                if r.truncated {
                    eprintln!(
                        "warning: the bundle is truncated: messages after the cut are missing"
                    );
                }
            }
            if valid == 0 && (r.total > 0 || !r.checksum_ok) {
                return Err(invalid(format!(
                    "{}: nothing in this bundle is a valid message",
                    path.display()
                )));
            }
            if r.truncated || !r.checksum_ok {
                return Ok(ExitCode::from(EXIT_BUNDLE_PARTIAL));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `c` (a bundle export or import of `path`) while showing its progress on stderr, asked
/// of the engine every 200 ms (`BundleProgress`: works over the control socket too).
async fn with_progress<C: Call>(
    client: &Client,
    c: C,
    what: &str,
    path: &str,
    quiet: bool,
) -> Result<C::Response> {
    use std::io::{IsTerminal as _, Write as _};
    let tty = std::io::stderr().is_terminal();
    let fut = client.call(c);
    tokio::pin!(fut);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    let mut last_line: Option<std::time::Instant> = None;
    let mut drew = false;
    let r = loop {
        tokio::select! {
            r = &mut fut => break r,
            _ = tick.tick(), if !quiet => {
                let asked = calls::BundleProgress { path: path.to_string() };
                let Ok(Some(p)) = client.call(asked).await else { continue };
                let pct = p.done.saturating_mul(100).checked_div(p.total).unwrap_or(0).min(100);
                let records = p.records;
                if tty {
                    let filled = usize::try_from(pct / 4).unwrap_or(25);
                    eprint!(
                        "\r{what} [{}{}] {pct:>3}%  {records} messages",
                        "#".repeat(filled),
                        ".".repeat(25 - filled)
                    );
                    let _ = std::io::stderr().flush();
                    drew = true;
                } else if last_line.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1)) {
                    last_line = Some(std::time::Instant::now());
                    eprintln!("{what}: {pct}% ({records} messages)");
                }
            }
        }
    };
    if drew {
        eprintln!();
    }
    Ok(r?)
}

async fn command(client: &Client, cmd: Cmd, json: bool) -> Result<()> {
    match cmd {
        Cmd::Init { name } => {
            let id: IdentityView = match name {
                Some(name) => call(client, calls::SetName { name }).await?,
                None => call(client, calls::Identity).await?,
            };
            if json {
                print_json(&id)?;
            } else {
                println!("{}", id.id);
                if id.name.is_none() {
                    eprintln!("note: no display name yet; set one with `disasternet name NAME`");
                }
            }
        }
        Cmd::Id => {
            let id = call(client, calls::Identity).await?;
            if json {
                print_json(&id)?;
            } else {
                println!("{}", id.id);
            }
        }
        Cmd::Name { name } => {
            let id = call(client, calls::SetName { name }).await?;
            if json {
                print_json(&id)?;
            } else {
                println!(
                    "display name set to {}",
                    safe_line(&id.name.unwrap_or_default())
                );
            }
        }
        Cmd::Room { cmd } => {
            let (room, verb) = match cmd {
                RoomCmd::Create {
                    name,
                    private: true,
                } => {
                    let room = call(client, calls::CreatePrivateRoom { title: name }).await?;
                    let inv = call(
                        client,
                        calls::RoomInvite {
                            room: room.name.clone(),
                            path: None,
                        },
                    )
                    .await?;
                    if json {
                        return print_json(&serde_json::json!({ "room": room, "invite": inv }));
                    }
                    println!(
                        "created private room {} ({})",
                        safe_line(&room.title),
                        room.name
                    );
                    println!("invite (anyone holding it can read and write the room):");
                    println!("{}", inv.code);
                    return Ok(());
                }
                RoomCmd::Create { name, .. }
                | RoomCmd::Join {
                    name: Some(name),
                    invite: None,
                } => (
                    call(client, calls::JoinRoom { room: name }).await?,
                    "joined",
                ),
                RoomCmd::Join {
                    invite: Some(invite),
                    ..
                } => {
                    let text = invite_text(&invite)?;
                    (
                        call(client, calls::JoinInvite { invite: text }).await?,
                        "joined private",
                    )
                }
                RoomCmd::Join { .. } => return Err(anyhow!("give a room name or --invite")),
                RoomCmd::Invite { room, file, qr } => {
                    let path = file
                        .as_deref()
                        .map(absolute)
                        .transpose()?
                        .map(|p| p.display().to_string());
                    let inv = call(client, calls::RoomInvite { room, path }).await?;
                    if json {
                        return print_json(&inv);
                    }
                    println!("{}", inv.code);
                    if qr {
                        println!("{}", qr_text(&inv.code)?);
                    }
                    if let Some(p) = &inv.path {
                        eprintln!("invite written to {}", safe_line(p));
                    }
                    eprintln!(
                        "anyone holding this invite can read and write {}; share it only with people who should",
                        safe_line(&inv.title)
                    );
                    return Ok(());
                }
                RoomCmd::Members { room } => {
                    let members = call(client, calls::Members { room }).await?;
                    return print_members(&members, json);
                }
                RoomCmd::Remove { room, member } => {
                    let members = call(client, calls::RemoveMember { room, member }).await?;
                    if !json {
                        eprintln!("removed; the remaining members get a new key:");
                    }
                    return print_members(&members, json);
                }
                RoomCmd::Promote { room, member } => {
                    let members = call(client, calls::PromoteMember { room, member }).await?;
                    return print_members(&members, json);
                }
                RoomCmd::Leave { name } => {
                    (call(client, calls::LeaveRoom { room: name }).await?, "left")
                }
                RoomCmd::Mute { name } => (
                    call(
                        client,
                        calls::SetMuted {
                            room: name,
                            muted: true,
                        },
                    )
                    .await?,
                    "muted",
                ),
                RoomCmd::Unmute { name } => (
                    call(
                        client,
                        calls::SetMuted {
                            room: name,
                            muted: false,
                        },
                    )
                    .await?,
                    "unmuted",
                ),
                RoomCmd::List => {
                    let rooms = call(client, calls::Rooms).await?;
                    if json {
                        return print_json(&rooms);
                    }
                    for r in &rooms {
                        println!("{}", room_line(r));
                    }
                    return Ok(());
                }
            };
            if json {
                print_json(&room)?;
            } else {
                println!("{verb} room {}", safe_line(&room.title));
            }
        }
        Cmd::Send { room, text, urgent } => {
            let m = call(
                client,
                calls::Send {
                    room,
                    body: text.join(" "),
                    urgent,
                },
            )
            .await?;
            if json {
                print_json(&m)?;
            } else {
                println!("{}", m.id);
                if !client.is_remote() {
                    eprintln!("note: no node is running; the message is stored and goes out when one runs");
                }
            }
        }
        Cmd::Urgent { room } => {
            let msgs = call(client, calls::Urgent { room }).await?;
            if json {
                return print_json(&msgs);
            }
            if msgs.is_empty() {
                println!("no unacknowledged urgent messages");
            }
            for m in &msgs {
                println!("{}  {}  {}", m.id, safe_line(&m.room), log_line(m));
            }
        }
        Cmd::Ack { room, id, .. } => {
            let r = call(client, calls::AckUrgent { room, id }).await?;
            if json {
                return print_json(&r);
            }
            println!(
                "acknowledged; {} urgent left in {}",
                r.urgent_unacked,
                safe_line(&r.title)
            );
        }
        Cmd::Log { room, limit } => {
            let msgs = call(
                client,
                calls::Messages {
                    room,
                    limit,
                    before: None,
                },
            )
            .await?;
            if json {
                return print_json(&msgs);
            }
            for m in &msgs {
                println!("{}", log_line(m));
            }
        }
        Cmd::Block { id } => {
            let list = call(
                client,
                calls::Block {
                    author: id,
                    blocked: true,
                },
            )
            .await?;
            print_blocked(&list, json, "blocked")?;
        }
        Cmd::Unblock { id } => {
            let list = call(
                client,
                calls::Block {
                    author: id,
                    blocked: false,
                },
            )
            .await?;
            print_blocked(&list, json, "unblocked")?;
        }
        Cmd::Blocked => {
            let list = call(client, calls::Blocked).await?;
            print_blocked(&list, json, "")?;
        }
        Cmd::Peers => {
            let peers = call(client, calls::Peers).await?;
            if json {
                return print_json(&peers);
            }
            if peers.is_empty() {
                println!("no peers known yet");
            }
            for p in &peers {
                println!("{}", peer_line(p));
            }
        }
        Cmd::Status => {
            let s = call(client, calls::Status).await?;
            if json {
                return print_json(&s);
            }
            println!("{}", status_node_line(&s.identity));
            if s.running {
                println!(
                    "running   yes, listening on {} (mDNS {})",
                    s.listen.unwrap_or_default(),
                    if s.mdns { "on" } else { "off" }
                );
                let health = if s.connected_peers == 0 {
                    "OFFLINE: no peers connected (messages are kept and sent later)"
                } else {
                    "online"
                };
                let reachable = s
                    .network
                    .nodes
                    .iter()
                    .filter(|n| !n.me && n.hops.is_some())
                    .count();
                println!(
                    "network   {health}; {} connected, {} reachable, {} known",
                    s.connected_peers, reachable, s.known_peers
                );
                for line in status_health_lines(&s.health) {
                    println!("{line}");
                }
            } else {
                println!("running   no (start one with `disasternet node`)");
            }
            println!("{}", status_rooms_line(&s.rooms));
            if s.urgent_unacked > 0 {
                println!(
                    "urgent    {} urgent not acknowledged (see `disasternet urgent`)",
                    s.urgent_unacked
                );
            }
            println!(
                "messages  {} stored, {} received this run, {} rejected",
                s.messages, s.received, s.rejected
            );
            println!(
                "queue     {} written here and not yet held by any peer; last sync {}",
                s.queued,
                s.last_sync_at
                    .map_or_else(|| "never".to_string(), utc_human)
            );
            if let Some(ms) = s.next_retry_in_ms {
                println!("retry     next in {}", retry_human(ms));
            }
            if !s.drops.is_empty() {
                let reasons: Vec<String> =
                    s.drops.iter().map(|(k, v)| format!("{k} {v}")).collect();
                println!("refused   {} (to protect this node)", reasons.join(", "));
            }
            if s.carry_quota_full || s.carry_evicted > 0 {
                println!(
                    "carrying {} room(s) for others{}; {} old carried message(s) evicted",
                    s.carried_rooms.len(),
                    if s.carry_quota_full {
                        ", quota FULL (not taking in more)"
                    } else {
                        ""
                    },
                    s.carry_evicted
                );
            }
        }
        Cmd::Dm(DmArgs {
            cmd: Some(DmCmd::Log { with, limit }),
            ..
        }) => {
            let msgs = call(client, calls::DmLog { with, limit }).await?;
            if json {
                return print_json(&msgs);
            }
            for m in &msgs {
                println!("{}", dm_line(m));
            }
        }
        Cmd::Dm(DmArgs {
            cmd: None,
            to,
            urgent,
            text,
        }) => {
            let to =
                to.ok_or_else(|| invalid("dm needs --to ID and a text, or `dm log --with ID`"))?;
            if text.is_empty() {
                return Err(invalid("dm --to ID needs a text"));
            }
            let m = call(
                client,
                calls::SendDm {
                    to,
                    body: text.join(" "),
                    urgent,
                },
            )
            .await?;
            if json {
                print_json(&m)?;
            } else {
                println!("{}", m.id);
            }
        }
        Cmd::Network => {
            let n = call(client, calls::Network).await?;
            if json {
                return print_json(&n);
            }
            for node in &n.nodes {
                let hops = node
                    .hops
                    .map_or("unreachable".to_string(), |h| format!("{h} hops"));
                let mark = if node.me {
                    "*"
                } else if node.connected {
                    "="
                } else {
                    " "
                };
                println!(
                    "{mark} {} {:<20} {hops}",
                    safe_line(&node.fingerprint),
                    safe_line(&node.name)
                );
            }
            println!(
                "{} nodes, {} links (* this node, = direct link)",
                n.nodes.len(),
                n.links.len()
            );
        }
        Cmd::Relay { cmd } => {
            let list = match cmd {
                RelayCmd::Add { addr } => call(client, calls::AddRelay { addr }).await?,
                RelayCmd::Remove { addr } => call(client, calls::RemoveRelay { addr }).await?,
                RelayCmd::List => call(client, calls::ListRelays).await?,
            };
            if json {
                return print_json(&list);
            }
            if list.is_empty() {
                println!("no relays (add one with `disasternet relay add HOST:PORT`)");
            }
            for r in &list {
                println!("{}", relay_line(r));
            }
        }
        Cmd::Connect { addr } => {
            call(client, calls::AddPeer { addr: addr.clone() }).await?;
            if !json {
                println!("dialing {addr}");
            }
        }
        Cmd::Export { room, out, format } => {
            let path = absolute(&out)?;
            let s = call(
                client,
                calls::Export {
                    room,
                    path: path.display().to_string(),
                    format: format.into(),
                },
            )
            .await?;
            if json {
                print_json(&s)?;
            } else {
                println!("exported {} messages to {}", s.messages, safe_line(&s.path));
            }
        }
        Cmd::Identity {
            cmd: IdentityCmd::Backup { out },
        } => {
            let path = absolute(&out)?;
            let s = call(
                client,
                calls::BackupIdentity {
                    path: path.display().to_string(),
                },
            )
            .await?;
            if json {
                print_json(&s)?;
            } else {
                println!("identity backed up to {}", safe_line(&s.path));
                eprintln!(
                    "warning: this file IS your identity; anyone holding it can sign as you. \
                     Keep it offline and safe."
                );
            }
        }
        Cmd::Node { .. }
        | Cmd::Bundle { .. }
        | Cmd::Verify { .. }
        | Cmd::Salvage { .. }
        | Cmd::Sim(_)
        | Cmd::Doctor
        | Cmd::Passphrase { .. }
        | Cmd::Identity {
            cmd: IdentityCmd::Restore { .. },
        } => unreachable_cmd()?,
    }
    Ok(())
}

fn unreachable_cmd() -> Result<()> {
    Err(anyhow!("internal: command dispatched twice"))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        let cwd = std::env::current_dir()
            .map_err(|e| ApiError::new(ErrorCode::Io, format!("current directory: {e}")))?;
        Ok(cwd.join(p))
    }
}

fn parse_pair(s: &str, sep: char) -> Result<(u64, u64)> {
    let (a, b) = s
        .split_once(sep)
        .ok_or_else(|| anyhow!("expected A{sep}B, got {s:?}"))?;
    Ok((a.trim().parse()?, b.trim().parse()?))
}

fn sim_config(a: &SimArgs) -> Result<sim::SimConfig> {
    let topology = match a.topology.split_once(':') {
        Some(("random", d)) => sim::Topology::Random(d.parse()?),
        Some(("clusters", d)) => sim::Topology::TwoClusters(d.parse()?),
        None if a.topology == "chain" => sim::Topology::Chain,
        None if a.topology == "grid" => sim::Topology::Grid,
        _ => return Err(anyhow!("unknown topology {:?}", a.topology)),
    };
    if !(0.0..=50.0).contains(&a.loss) {
        return Err(anyhow!("--loss must be between 0 and 50 percent"));
    }
    if a.nodes < 2 || a.nodes > 20_000 {
        return Err(anyhow!("--nodes must be between 2 and 20000"));
    }
    let partition = match &a.partition {
        Some(p) => {
            let (times, frac) = p
                .split_once(':')
                .ok_or_else(|| anyhow!("--partition AT-HEAL:FRACTION"))?;
            let (at_ms, heal_ms) = parse_pair(times, '-')?;
            Some(sim::Partition {
                at_ms,
                heal_ms,
                fraction: frac.parse()?,
            })
        }
        None => None,
    };
    let crash = match &a.crash {
        Some(c) => {
            let (n, times) = c
                .split_once('@')
                .ok_or_else(|| anyhow!("--crash COUNT@AT-RESTART"))?;
            let (at_ms, restart_ms) = parse_pair(times, '-')?;
            Some(sim::Crash {
                nodes: n.parse()?,
                at_ms,
                restart_ms,
            })
        }
        None => None,
    };
    Ok(sim::SimConfig {
        seed: a.seed,
        nodes: a.nodes,
        topology,
        latency_ms: parse_pair(&a.latency, '-')?,
        loss: a.loss / 100.0,
        warmup: a.warmup,
        messages: a.messages,
        senders: if a.fixed_sender {
            sim::Senders::Fixed
        } else {
            sim::Senders::Changing
        },
        interval_ms: 200,
        propagation: dn_proto::Propagation::Tree,
        source_trees: !a.shared_tree,
        partition,
        crash,
    })
}

/// Exit statuses of `doctor` (see its help).
const DOCTOR_WARNINGS: u8 = 10;
/// `doctor`: problems found.
const DOCTOR_PROBLEMS: u8 = 11;
/// `doctor`: no node runs.
const DOCTOR_NOT_RUNNING: u8 = 12;

/// `disasternet doctor`: the running node's diagnosis (no node: says so, exit 12).
async fn doctor(data_dir: &Path, json: bool) -> Result<ExitCode> {
    let answer = dn_node::control::call(data_dir, &Request::Diagnose).await?;
    let view: DiagnosisView = match answer {
        Some(v) => serde_json::from_value(v)?,
        None => DiagnosisView {
            running: false,
            observations: None,
            findings: vec![],
        },
    };
    if json {
        print_json(&view)?;
    } else {
        print!("{}", doctor_text(&view, data_dir));
    }
    Ok(ExitCode::from(doctor_status(&view)))
}

/// A unit enum's JSON name (`timeout`, `client_isolation`), as `--json` prints it.
fn json_word(v: &impl serde::Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|c| c.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn doctor_status(v: &DiagnosisView) -> u8 {
    if !v.running {
        return DOCTOR_NOT_RUNNING;
    }
    match v.worst() {
        Severity::Info => 0,
        Severity::Warning => DOCTOR_WARNINGS,
        Severity::Error => DOCTOR_PROBLEMS,
    }
}

fn doctor_text(v: &DiagnosisView, data_dir: &Path) -> String {
    let Some(o) = v.observations.as_ref().filter(|_| v.running) else {
        return format!(
            "No node is running on {}.\nStart one with `disasternet node` (or open the app), \
             wait about 20 s, and run `disasternet doctor` again.\n",
            data_dir.display()
        );
    };
    let mut out = String::new();
    let addrs: Vec<String> = o
        .interfaces
        .iter()
        .filter(|i| !i.loopback)
        .map(|i| format!("{} {}/{}", i.name, i.addr, i.prefix))
        .collect();
    out.push_str(&format!(
        "addresses  {}\n",
        if addrs.is_empty() {
            "none besides loopback".to_string()
        } else {
            addrs.join(", ")
        }
    ));
    let onoff = |on: bool, up: bool| match (on, up) {
        (false, _) => "off",
        (true, true) => "on",
        (true, false) => "FAILED to start",
    };
    out.push_str(&format!(
        "listening  {} (asked for port {}); mDNS {}, beacon {}\n",
        o.listen,
        o.requested_port,
        onoff(o.mdns_on, o.mdns_up),
        onoff(o.beacon_on, o.beacon_up)
    ));
    out.push_str(&format!(
        "heard      {} mDNS announcements, {} beacons from {} peers; up {} s\n",
        o.mdns_heard,
        o.beacons_heard,
        o.heard.len(),
        o.uptime_s
    ));
    for d in o.dials.iter().take(8) {
        out.push_str(&format!(
            "dialed     {}: {} {}, {} ok, last {}{}\n",
            d.addr,
            d.tries,
            if d.tries == 1 { "try" } else { "tries" },
            d.ok,
            json_word(&d.last),
            d.probe
                .map(|p| format!(", probe from another port: {}", json_word(&p)))
                .unwrap_or_default()
        ));
    }
    out.push_str(&format!(
        "incoming   {} handshakes, {} connected; {} peers connected now\n\n",
        o.incoming,
        o.incoming_ok,
        o.connected.len()
    ));
    for f in &v.findings {
        let tag = match f.severity {
            Severity::Info => "ok",
            Severity::Warning => "WARNING",
            Severity::Error => "PROBLEM",
        };
        out.push_str(&format!(
            "{tag} [{}]\n  {}\n  → {}\n",
            json_word(&f.code),
            f.summary,
            f.advice
        ));
    }
    out
}

fn simulate(args: &SimArgs, json: bool) -> Result<ExitCode> {
    let cfg = sim_config(args).map_err(|e| invalid(one_line(&e)))?;
    let mut runs = vec![cfg.clone()];
    if !args.no_baseline {
        // Flooding follows no tree: its nodes need no neighbour lists.
        runs.push(sim::SimConfig {
            propagation: dn_proto::Propagation::Flood,
            source_trees: false,
            ..cfg
        });
    }
    let mut reports = Vec::new();
    for c in &runs {
        let started = std::time::Instant::now();
        let r = sim::run(c);
        if json {
            reports.push(serde_json::json!({
                "propagation": format!("{:?}", r.propagation).to_lowercase(),
                "mode": r.mode(),
                "seed": r.seed, "nodes": c.nodes, "delivery": r.delivery,
                "copies_per_node_per_msg": r.copies_per_node,
                "hops_p50": r.hops_p50, "hops_p99": r.hops_p99, "hops_max": r.hops_max,
                "latency_p50_ms": r.latency_p50_ms, "latency_p99_ms": r.latency_p99_ms,
                "bytes_sent": r.bytes_sent, "topology_bytes": r.topology_bytes,
                "grafts": r.grafts,
                "wall_ms": started.elapsed().as_millis() as u64,
            }));
        } else {
            println!("{r}  [{:.1} s]", started.elapsed().as_secs_f64());
        }
    }
    if json {
        print_json(&reports)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn restore(data_dir: &Path, file: &Path, json: bool) -> Result<ExitCode> {
    let (backup_pass, dir_pass) = passphrase::for_restore(data_dir, file)?;
    let s =
        dn_node::restore_identity_with(data_dir, file, backup_pass.as_ref(), dir_pass.as_ref())?;
    if json {
        print_json(&s)?;
    } else {
        println!("identity restored: this node is now {}", s.id);
        if let Some(p) = &s.previous_key {
            println!("the previous identity key was kept as {p}");
        }
        eprintln!(
            "warning: this node now signs as the restored identity. Never run two nodes with the \
             same identity at the same time, and keep the backup file safe: it IS the identity."
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(file: &Path, json: bool) -> Result<ExitCode> {
    let v = dn_node::export::verify_file_full(file)?;
    if json {
        print_json(&v)?;
    } else {
        print!("{}", verify_report(&v));
    }
    if matches!(v.manifest, ManifestStatus::Absent) {
        eprintln!("warning: {NO_MANIFEST_WARNING}");
    }
    let s = &v.summary;
    if s.failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: {} of {} lines failed verification",
            s.failures.len(),
            s.lines
        );
        Ok(ExitCode::FAILURE)
    }
}

/// The human-readable `verify` output (stdout).
fn verify_report(v: &FileVerification) -> String {
    let s = &v.summary;
    let mut out = String::new();
    for f in &s.failures {
        out.push_str(&format!(
            "line {}: FAILED: {}\n",
            f.line,
            safe_line(&f.reason)
        ));
    }
    out.push_str(&format!(
        "{} lines checked: {} valid, {} failed\n",
        s.lines,
        s.valid,
        s.failures.len()
    ));
    match &v.manifest {
        ManifestStatus::Absent => {
            out.push_str(&format!("manifest  none ({NO_MANIFEST_WARNING})\n"));
        }
        ManifestStatus::Valid { exporter, lines } => out.push_str(&format!(
            "manifest  valid: exported by node {} with {lines} lines; none removed, added, \
             reordered or edited\n",
            safe_line(exporter)
        )),
        ManifestStatus::Invalid { exporter, .. } => out.push_str(&format!(
            "manifest  DOES NOT MATCH (names node {}): the file was changed after export\n",
            safe_line(exporter)
        )),
    }
    out
}

fn salvage(data_dir: &Path, force: bool, json: bool) -> Result<ExitCode> {
    let o =
        dn_node::salvage_store_with(data_dir, force, passphrase::for_start(data_dir)?.as_ref())?;
    if json {
        print_json(&o)?;
    } else {
        let r = &o.report;
        println!(
            "salvaged {} messages ({} rows read, {} failed their signature check, {} damaged \
             stretches skipped), {} rooms, {} settings",
            r.recovered, r.rows_read, r.invalid, r.damaged_ranges, r.rooms, r.settings
        );
        println!("the damaged store was kept as {}", o.damaged_kept.display());
        println!("the recovered store is now {}", o.store.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `log`: one message on one line. Everything a peer wrote is passed through [`safe_line`].
fn log_line(m: &MessageView) -> String {
    let fp = dn_proto::message::hex_fingerprint(&m.author);
    let state = match (m.local, m.sent_to, m.held_by) {
        (false, ..) => String::new(),
        (true, 0, _) => "  [stored locally]".to_string(),
        (true, n, 0) => format!("  [sent to {n}]"),
        (true, n, h) => format!("  [sent to {n}, held by {h}]"),
    };
    let urgent = match (m.urgent, m.acknowledged) {
        (false, _) => "",
        (true, false) => "[URGENT] ",
        (true, true) => "[urgent, acknowledged] ",
    };
    format!(
        "{} {} ({}): {urgent}{}{state}",
        utc_human(m.timestamp),
        safe_line(&m.author_name),
        safe_line(&fp),
        safe_line(&m.body)
    )
}

/// `dm log`: one direct message on one line.
fn dm_line(m: &DmView) -> String {
    let arrow = if m.outgoing { "->" } else { "<-" };
    let urgent = if m.urgent { "[urgent] " } else { "" };
    format!(
        "{} {arrow} {}: {urgent}{}",
        utc_human(m.timestamp),
        safe_line(&m.author_name),
        safe_line(&m.body)
    )
}

/// `peers`: one peer on one line.
/// Prints the blocked list (after `verb`, when a block changed).
fn print_blocked(list: &[BlockedView], json: bool, verb: &str) -> Result<()> {
    if json {
        return print_json(&list);
    }
    if !verb.is_empty() {
        println!(
            "{verb}; {} author(s) blocked on this data directory",
            list.len()
        );
    } else if list.is_empty() {
        println!("no authors blocked");
    }
    for b in list {
        println!("{}", blocked_line(b));
    }
    Ok(())
}

/// One blocked author: fingerprint, name, since when.
fn blocked_line(b: &BlockedView) -> String {
    format!(
        "{} {:<20} blocked {}  {}",
        safe_line(&b.fingerprint),
        safe_line(b.name.as_deref().unwrap_or("(unknown)")),
        utc_human(b.since),
        safe_line(&b.id)
    )
}

fn relay_line(r: &RelayView) -> String {
    let state = if r.connected {
        "connected"
    } else if r.id.is_some() {
        "not connected (redialling)"
    } else {
        "never reached yet (dialling)"
    };
    let changed = if r.key_changed {
        "  NEW KEY, not trusted: remove and add the address again if the relay was reinstalled"
    } else {
        ""
    };
    format!(
        "{:<32} {:<26} {} {}{changed}",
        safe_line(&r.addr),
        state,
        safe_line(r.fingerprint.as_deref().unwrap_or("")),
        safe_line(r.name.as_deref().unwrap_or(""))
    )
}

fn peer_line(p: &PeerView) -> String {
    let state = if p.connected {
        "online ".to_string()
    } else {
        p.last_seen.map_or("offline".to_string(), |t| {
            format!("offline, last seen {}", utc_human(t))
        })
    };
    let hops = p.hops.map_or("-".to_string(), |h| {
        format!("{h} hop{}", if h == 1 { "" } else { "s" })
    });
    let relay = if p.relay { " [relay]" } else { "" };
    let link = p
        .link
        .as_ref()
        .map_or(String::new(), |l| format!("  {}", link_text(l)));
    format!(
        "{} {:<20} {} {:<7} {}{relay}{link}",
        safe_line(&p.fingerprint),
        safe_line(&p.name),
        state,
        hops,
        safe_line(&p.addresses.join(","))
    )
}

/// A link's health, compactly: `[good] rtt 1.2ms loss 0.0% in 12K out 9K up 5m`.
fn link_text(l: &LinkHealth) -> String {
    format!(
        "[{}] rtt {} loss {}.{}% in {} out {} up {}",
        quality_word(l.quality),
        rtt_text(l.rtt_us),
        l.loss_permille / 10,
        l.loss_permille % 10,
        bytes_short(l.bytes_in),
        bytes_short(l.bytes_out),
        age_short(l.age_s)
    )
}

fn quality_word(q: LinkQuality) -> &'static str {
    match q {
        LinkQuality::Good => "good",
        LinkQuality::Degraded => "degraded",
        LinkQuality::Poor => "poor",
    }
}

/// An RTT in µs as `0.4ms`, `12ms`.
fn rtt_text(us: u32) -> String {
    if us < 10_000 {
        format!("{}.{}ms", us / 1000, us % 1000 / 100)
    } else {
        format!("{}ms", us / 1000)
    }
}

/// Bytes as `512B`, `12K`, `3.4M`, `1.2G` (powers of 1024).
fn bytes_short(b: u64) -> String {
    const K: u64 = 1024;
    if b < K {
        format!("{b}B")
    } else if b < K * K {
        format!("{}K", b / K)
    } else if b < K * K * K {
        format!("{}.{}M", b / (K * K), b % (K * K) * 10 / (K * K))
    } else {
        format!(
            "{}.{}G",
            b / (K * K * K),
            b % (K * K * K) * 10 / (K * K * K)
        )
    }
}

/// Seconds as `42s`, `5m`, `3h`, `2d`.
fn age_short(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// `status`: the links' health and the gossip counters, two lines.
fn status_health_lines(h: &NodeHealth) -> [String; 2] {
    let summary = match h.summary {
        HealthSummary::Good => "good",
        HealthSummary::Degraded => "degraded",
        HealthSummary::Poor => "POOR",
        HealthSummary::Isolated => "no links measured",
    };
    let links = match (h.median_rtt_us, h.worst_rtt_us, h.worst_loss_permille) {
        (Some(median), Some(worst), Some(loss)) => format!(
            "; {} link(s), rtt median {} worst {}, worst loss {}.{}%",
            h.links,
            rtt_text(median),
            rtt_text(worst),
            loss / 10,
            loss % 10
        ),
        _ => String::new(),
    };
    [
        format!("health    {summary}{links}"),
        format!(
            "gossip    {} payloads sent, {} received, {} duplicates, {} grafts, {} prunes; \
             catch-up {} in, {} out",
            h.payloads_sent,
            h.payloads_received,
            h.duplicates,
            h.grafts,
            h.prunes,
            bytes_short(h.catch_up_bytes_in),
            bytes_short(h.catch_up_bytes_out)
        ),
    ]
}

/// `room list`: one room on one line.
fn room_line(r: &RoomView) -> String {
    let mark = if r.joined { "*" } else { " " };
    let muted = if r.muted { "  (muted)" } else { "" };
    let private = if r.private {
        format!("  (private, {})", r.name)
    } else {
        String::new()
    };
    let waiting = if r.waiting_for_key > 0 {
        format!("  ({} waiting for the room key)", r.waiting_for_key)
    } else {
        String::new()
    };
    format!(
        "{mark} {:<24} {:>7} messages{muted}{private}{waiting}",
        safe_line(&r.title),
        r.messages
    )
}

/// `room members`: one member per line.
fn member_line(m: &MemberView) -> String {
    let mut tags = Vec::new();
    if m.creator {
        tags.push("creator");
    }
    if m.admin {
        tags.push("admin");
    }
    if m.me {
        tags.push("you");
    }
    format!(
        "{} {:<24} {}{}",
        m.fingerprint,
        safe_line(m.name.as_deref().unwrap_or("(no name yet)")),
        m.id,
        if tags.is_empty() {
            String::new()
        } else {
            format!("  ({})", tags.join(", "))
        }
    )
}

fn print_members(members: &[MemberView], json: bool) -> Result<()> {
    if json {
        return print_json(&members);
    }
    for m in members {
        println!("{}", member_line(m));
    }
    Ok(())
}

/// The text of `--invite`: the code itself, or the contents of the invite file it names.
fn invite_text(arg: &str) -> Result<String> {
    let p = Path::new(arg);
    if !arg.trim_start().starts_with("DNI") && p.is_file() {
        let meta = std::fs::metadata(p)?;
        if meta.len() > 64 * 1024 {
            return Err(anyhow!("{} is too large to be an invite file", p.display()));
        }
        return std::fs::read_to_string(p)
            .map_err(|e| anyhow!("cannot read the invite file {}: {e}", p.display()));
    }
    Ok(arg.to_string())
}

/// The code as a QR code drawn in the terminal.
fn qr_text(code: &str) -> Result<String> {
    Ok(dn_node::qr::terminal(code)?)
}

/// `status`: the node line.
fn status_node_line(id: &IdentityView) -> String {
    format!(
        "node      {} ({})",
        safe_line(&id.id),
        safe_line(id.name.as_deref().unwrap_or("no name"))
    )
}

/// `status`: the rooms line.
fn status_rooms_line(rooms: &[RoomView]) -> String {
    let names: Vec<String> = rooms
        .iter()
        .map(|r| safe_line(&r.title).into_owned())
        .collect();
    format!(
        "rooms     {}",
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    )
}

/// `status`: when the next retry is due, from ms from now (whole seconds, rounded up).
fn retry_human(ms: u64) -> String {
    let secs = ms.div_ceil(1000);
    match secs {
        0 => "now".to_string(),
        1..=59 => format!("{secs} s"),
        _ if secs.is_multiple_of(60) => format!("{} min", secs / 60),
        _ => format!("{} min {} s", secs / 60, secs % 60),
    }
}

async fn run_node(cfg: NodeConfig) -> Result<ExitCode> {
    dn_node::init_tracing();
    let engine = Engine::start(cfg).await?;
    dn_node::shutdown_signal().await;
    engine.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use dn_node::{MessageKind, VerifyFailure, VerifySummary};

    /// CSI clear screen, OSC 52 clipboard write, RLO "exe.txt" trick, C1 CSI, a forged line.
    const ATTACK: &str =
        "\x1b[2J\x1b[H\x1b]52;c;Y3VybCBldmlsLnNo\x07inv\u{202e}txt.exe\u{9b}1m\nFAKE LINE\r";

    fn assert_inert(out: &str) {
        for c in ['\x1b', '\x07', '\u{202e}', '\u{9b}', '\n', '\r'] {
            assert!(!out.contains(c), "{c:?} reached the terminal: {out:?}");
        }
        assert!(out.contains("\\x1b[2J"), "{out}");
        assert!(out.contains("\\u{202e}"), "{out}");
    }

    #[test]
    fn the_next_retry_reads_in_seconds_and_minutes() {
        assert_eq!(retry_human(0), "now");
        assert_eq!(retry_human(1), "1 s");
        assert_eq!(retry_human(14_200), "15 s");
        assert_eq!(retry_human(60_000), "1 min");
        assert_eq!(retry_human(125_000), "2 min 5 s");
        assert_eq!(retry_human(600_000), "10 min");
    }

    #[test]
    fn log_and_dm_lines_escape_attacks_in_names_and_bodies() {
        let m = MessageView {
            id: "00".repeat(32),
            room: ATTACK.into(),
            author: "abcdef0123456789ff".into(),
            author_name: ATTACK.into(),
            timestamp: 1_700_000_000_000,
            body: ATTACK.into(),
            urgent: false,
            acknowledged: false,
            signature: String::new(),
            signed: String::new(),
            received_at: 0,
            local: false,
            sent_to: 0,
            held_by: 0,
            kind: MessageKind::Text,
            private: false,
            subject: None,
        };
        let l = log_line(&m);
        assert_inert(&l);
        assert!(l.starts_with("2023-11-14 22:13:20 UTC "), "{l}");
        assert!(l.contains("(abcd-ef01-2345-6789)"), "{l}");
        // An author that is not hex (or too short) cannot make the listing panic.
        let short = MessageView {
            author: "é".into(),
            ..m.clone()
        };
        assert_inert(&log_line(&short));
        let urgent = MessageView {
            urgent: true,
            body: "need rescue".into(),
            ..m.clone()
        };
        assert!(
            log_line(&urgent).ends_with("): [URGENT] need rescue"),
            "{}",
            log_line(&urgent)
        );
        let acked = MessageView {
            acknowledged: true,
            ..urgent
        };
        assert!(log_line(&acked).contains("[urgent, acknowledged] need rescue"));
        let d = DmView {
            id: String::new(),
            peer: String::new(),
            author: String::new(),
            author_name: ATTACK.into(),
            timestamp: 0,
            body: ATTACK.into(),
            outgoing: false,
            received_at: 0,
            urgent: false,
        };
        assert_inert(&dm_line(&d));
        let u = DmView {
            urgent: true,
            body: "need insulin".into(),
            ..d
        };
        assert!(dm_line(&u).ends_with(": [urgent] need insulin"));
    }

    #[test]
    fn link_and_health_texts_are_compact() {
        let l = LinkHealth {
            rtt_us: 1_234,
            loss_permille: 15,
            bytes_in: 12 * 1024 + 5,
            bytes_out: 3 * 1024 * 1024 + 512 * 1024,
            sent_packets: 100,
            lost_packets: 1,
            age_s: 330,
            quality: LinkQuality::Good,
        };
        assert_eq!(
            link_text(&l),
            "[good] rtt 1.2ms loss 1.5% in 12K out 3.5M up 5m"
        );
        assert_eq!(rtt_text(250_000), "250ms");
        assert_eq!(bytes_short(900), "900B");
        assert_eq!(age_short(7200), "2h");
        let h = NodeHealth {
            summary: HealthSummary::Degraded,
            links: 2,
            median_rtt_us: Some(800),
            worst_rtt_us: Some(150_000),
            worst_loss_permille: Some(0),
            payloads_sent: 4,
            ..NodeHealth::default()
        };
        let [links, gossip] = status_health_lines(&h);
        assert_eq!(
            links,
            "health    degraded; 2 link(s), rtt median 0.8ms worst 150ms, worst loss 0.0%"
        );
        assert!(
            gossip.starts_with("gossip    4 payloads sent, 0 received"),
            "{gossip}"
        );
        let [none, _] = status_health_lines(&NodeHealth::default());
        assert_eq!(none, "health    no links measured");
    }

    #[test]
    fn peers_rooms_and_status_lines_escape_attacks() {
        let p = PeerView {
            id: String::new(),
            fingerprint: "abcd-ef01-2345-6789".into(),
            name: ATTACK.into(),
            addresses: vec![ATTACK.into()],
            connected: true,
            last_seen: None,
            rooms: vec![],
            hops: Some(1),
            relay: true,
            relay_addr: Some(ATTACK.into()),
            link: None,
        };
        assert_inert(&peer_line(&p));
        assert_inert(&relay_line(&RelayView {
            addr: ATTACK.into(),
            id: None,
            fingerprint: Some(ATTACK.into()),
            name: Some(ATTACK.into()),
            connected: false,
            key_changed: false,
        }));
        let changed = RelayView {
            addr: "relay.example.org:7300".into(),
            id: Some("ab".repeat(32)),
            fingerprint: Some("abab-abab-abab-abab".into()),
            name: None,
            connected: true,
            key_changed: true,
        };
        assert!(relay_line(&changed).contains("NEW KEY, not trusted"));
        let r = RoomView {
            name: ATTACK.into(),
            title: ATTACK.into(),
            private: false,
            admin: false,
            waiting_for_key: 0,
            joined: true,
            muted: false,
            messages: 3,
            last_timestamp: None,
            urgent_unacked: 0,
        };
        assert_inert(&room_line(&r));
        assert_inert(&status_rooms_line(&[r.clone(), r]));
        assert_eq!(status_rooms_line(&[]), "rooms     none");
        let id = IdentityView {
            id: "ab".repeat(32),
            fingerprint: String::new(),
            name: Some(ATTACK.into()),
        };
        assert_inert(&status_node_line(&id));
    }

    #[test]
    fn verify_report_names_failures_and_the_manifest() {
        let v = FileVerification {
            summary: VerifySummary {
                lines: 3,
                valid: 2,
                failures: vec![VerifyFailure {
                    line: 2,
                    reason: "field body differs from the signed bytes".into(),
                }],
            },
            manifest: ManifestStatus::Absent,
        };
        let out = verify_report(&v);
        assert!(out.contains("line 2: FAILED: field body"), "{out}");
        assert!(out.contains("3 lines checked: 2 valid, 1 failed"), "{out}");
        assert!(out.contains(NO_MANIFEST_WARNING), "{out}");
        let v = FileVerification {
            manifest: ManifestStatus::Invalid {
                exporter: ATTACK.into(),
                problems: vec!["1 line(s) removed".into()],
            },
            ..v
        };
        let out = verify_report(&v);
        assert!(out.contains("DOES NOT MATCH"), "{out}");
        assert!(!out.contains('\x1b'), "{out:?}");
    }

    #[test]
    fn doctor_exit_status_and_text_follow_the_findings() {
        use dn_node::{Finding, FindingCode};
        let finding = |code, severity| Finding {
            code,
            severity,
            summary: "observed".into(),
            advice: "do this".into(),
        };
        let mut v = DiagnosisView {
            running: false,
            observations: None,
            findings: vec![],
        };
        let dir = Path::new("/d");
        assert_eq!(doctor_status(&v), DOCTOR_NOT_RUNNING);
        assert!(doctor_text(&v, dir).contains("No node is running on /d"));
        v.running = true;
        v.observations = Some(dn_node::diagnose::Observations {
            uptime_s: 30,
            interfaces: vec![],
            listen: "0.0.0.0:7300".into(),
            requested_port: 7300,
            mdns_on: true,
            mdns_up: true,
            beacon_on: false,
            beacon_up: false,
            mdns_heard: 4,
            beacons_heard: 0,
            mdns_last_ago_s: Some(1),
            beacon_last_ago_s: None,
            heard: vec![],
            dials: vec![dn_node::diagnose::DialObs {
                addr: "10.9.0.3:7300".into(),
                heard: true,
                tries: 1,
                ok: 0,
                timeouts: 1,
                last: dn_node::diagnose::DialOutcome::Timeout,
                ago_s: 2,
                probe: Some(dn_node::diagnose::DialOutcome::Ok),
            }],
            incoming: 0,
            incoming_ok: 0,
            connected: vec![],
        });
        v.findings = vec![finding(FindingCode::Healthy, Severity::Info)];
        assert_eq!(doctor_status(&v), 0);
        v.findings = vec![finding(FindingCode::MulticastBlocked, Severity::Warning)];
        assert_eq!(doctor_status(&v), DOCTOR_WARNINGS);
        v.findings = vec![
            finding(FindingCode::ClientIsolation, Severity::Error),
            finding(FindingCode::PortFallback, Severity::Warning),
        ];
        assert_eq!(doctor_status(&v), DOCTOR_PROBLEMS);
        let text = doctor_text(&v, dir);
        assert!(text.contains("PROBLEM [client_isolation]"), "{text}");
        assert!(text.contains("→ do this"), "{text}");
        assert!(text.contains("none besides loopback"), "{text}");
        assert!(text.contains("4 mDNS announcements"), "{text}");
        assert!(
            text.contains("10.9.0.3:7300: 1 try, 0 ok, last timeout, probe from another port: ok"),
            "{text}"
        );
    }

    /// Every error code has its own documented exit status, distinct from 0 and from the
    /// others, and `--help` lists it.
    #[test]
    fn exit_statuses_are_distinct_and_documented() {
        let codes = [
            (ErrorCode::Internal, "internal"),
            (ErrorCode::InvalidInput, "invalid input"),
            (ErrorCode::Busy, "busy"),
            (ErrorCode::Storage, "storage"),
            (ErrorCode::Io, "io"),
            (ErrorCode::NotFound, "not found"),
            (ErrorCode::NoName, "no name"),
            (ErrorCode::Locked, "locked"),
            (ErrorCode::WrongPassphrase, "wrong passphrase"),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for (code, words) in codes {
            let status = exit_status(code);
            assert_ne!(status, 0);
            assert!(seen.insert(status), "{code:?} shares exit status {status}");
            let line = format!("  {status}  ");
            let doc = EXIT_STATUS_HELP
                .lines()
                .find(|l| l.starts_with(&line))
                .unwrap_or_else(|| panic!("no help line for {status}"));
            assert!(doc.contains(words), "{code:?}: {doc}");
        }
        assert_eq!(
            exit_status(ErrorCode::InvalidInput),
            2,
            "usage errors are 2 (clap)"
        );
    }

    #[test]
    fn errors_keep_the_engine_code_through_context() {
        let e: anyhow::Error = ApiError::new(ErrorCode::Busy, "held").into();
        assert_eq!(api_error(&e), ApiError::new(ErrorCode::Busy, "held"));
        let e = e.context("opening the data directory");
        let a = api_error(&e);
        assert_eq!(a.code, ErrorCode::Busy);
        assert_eq!(a.message, "opening the data directory: held");
        assert_eq!(api_error(&anyhow!("boom")).code, ErrorCode::Internal);
    }

    #[test]
    fn salvage_without_a_store_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let e = dn_node::salvage_store(dir.path(), false).unwrap_err();
        assert!(e.message.contains("no store to salvage"), "{}", e.message);
        // A healthy store is left alone unless forced.
        let db = dir.path().join("store.sqlite3");
        std::fs::write(&db, b"").unwrap();
        let e = dn_node::salvage_store(dir.path(), false).unwrap_err();
        assert!(e.message.contains("not damaged"), "{}", e.message);
        let o = dn_node::salvage_store(dir.path(), true).unwrap();
        assert_eq!(o.report.recovered, 0);
        assert!(o.damaged_kept.exists());
    }
}
