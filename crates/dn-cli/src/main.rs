//! `disasternet` — the DisasterNet command-line program: a headless node (`node`), and
//! commands to script it. While a node (or the desktop app) runs on a data directory, commands
//! talk to it over its control socket; otherwise they work on the store directly.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use dn_node::{
    ApiError, Client, Engine, ExportSummary, IdentityView, MessageView, NodeConfig, PeerView,
    Request, RoomView, StatusView,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

#[derive(Parser)]
#[command(
    name = "disasternet",
    version,
    about = "Offline-first peer-to-peer emergency messaging"
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
    Node {
        /// QUIC listen address.
        #[arg(long, default_value = "0.0.0.0:7300")]
        listen: std::net::SocketAddr,
        /// Peer to dial by address (repeatable), for networks without multicast.
        #[arg(long = "peer", value_name = "HOST:PORT")]
        peers: Vec<String>,
        /// Do not announce or browse with mDNS.
        #[arg(long)]
        no_mdns: bool,
    },
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
    /// Dial a peer by address on the running node.
    Connect {
        /// HOST:PORT.
        addr: String,
    },
    /// Export messages as signed JSON Lines.
    Export {
        /// One room (default: all rooms).
        #[arg(long)]
        room: Option<String>,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify an export file; non-zero exit if any line fails.
    Verify {
        /// File to check.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum RoomCmd {
    /// Create a room (same as join: rooms are addressed by name).
    Create {
        /// Room name.
        name: String,
    },
    /// Join a room.
    Join {
        /// Room name.
        name: String,
    },
    /// Leave a room (its messages stay stored).
    Leave {
        /// Room name.
        name: String,
    },
    /// List rooms.
    List,
}

fn default_data_dir() -> Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x).join(dn_node::APP_ID));
    }
    let home = std::env::var_os("HOME").ok_or_else(|| anyhow!("set --data-dir (no HOME)"))?;
    Ok(PathBuf::from(home)
        .join(".local/share")
        .join(dn_node::APP_ID))
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
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
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

async fn call<T: DeserializeOwned>(client: &Client, req: Request) -> Result<T> {
    let v: Value = client.request(req).await.map_err(api)?;
    serde_json::from_value(v).context("unexpected answer from the engine")
}

fn api(e: ApiError) -> anyhow::Error {
    anyhow!(e.message)
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let data_dir = match cli.data_dir {
        Some(d) => d,
        None => default_data_dir()?,
    };
    let json = cli.json;
    match cli.cmd {
        Cmd::Node {
            listen,
            peers,
            no_mdns,
        } => return run_node(&data_dir, listen, peers, !no_mdns).await,
        Cmd::Verify { file } => return verify(&file, json),
        _ => {}
    }
    let client = Client::open(&data_dir).await.map_err(api)?;
    let result = command(&client, cli.cmd, json).await;
    client.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

async fn command(client: &Client, cmd: Cmd, json: bool) -> Result<()> {
    match cmd {
        Cmd::Init { name } => {
            let id: IdentityView = match name {
                Some(name) => call(client, Request::SetName { name }).await?,
                None => call(client, Request::Identity).await?,
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
            let id: IdentityView = call(client, Request::Identity).await?;
            if json {
                print_json(&id)?;
            } else {
                println!("{}", id.id);
            }
        }
        Cmd::Name { name } => {
            let id: IdentityView = call(client, Request::SetName { name }).await?;
            if json {
                print_json(&id)?;
            } else {
                println!("display name set to {}", id.name.unwrap_or_default());
            }
        }
        Cmd::Room { cmd } => {
            let (req, verb) = match cmd {
                RoomCmd::Create { name } | RoomCmd::Join { name } => {
                    (Request::JoinRoom { room: name }, "joined")
                }
                RoomCmd::Leave { name } => (Request::LeaveRoom { room: name }, "left"),
                RoomCmd::List => {
                    let rooms: Vec<RoomView> = call(client, Request::Rooms).await?;
                    if json {
                        return print_json(&rooms);
                    }
                    for r in rooms {
                        let mark = if r.joined { "*" } else { " " };
                        println!("{mark} {:<24} {:>7} messages", r.name, r.messages);
                    }
                    return Ok(());
                }
            };
            let room: RoomView = call(client, req).await?;
            if json {
                print_json(&room)?;
            } else {
                println!("{verb} room {}", room.name);
            }
        }
        Cmd::Send { room, text } => {
            let m: MessageView = call(
                client,
                Request::Send {
                    room,
                    body: text.join(" "),
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
        Cmd::Log { room, limit } => {
            let msgs: Vec<MessageView> = call(
                client,
                Request::Messages {
                    room,
                    limit,
                    before: None,
                },
            )
            .await?;
            if json {
                return print_json(&msgs);
            }
            for m in msgs {
                let fp = &m.author[..8];
                println!(
                    "{} {} ({}-{}): {}",
                    utc(m.timestamp),
                    m.author_name,
                    &fp[..4],
                    &fp[4..],
                    m.body
                );
            }
        }
        Cmd::Peers => {
            let peers: Vec<PeerView> = call(client, Request::Peers).await?;
            if json {
                return print_json(&peers);
            }
            if peers.is_empty() {
                println!("no peers known yet");
            }
            for p in peers {
                let state = if p.connected {
                    "online ".to_string()
                } else {
                    p.last_seen.map_or("offline".to_string(), |t| {
                        format!("offline, last seen {}", utc(t))
                    })
                };
                println!(
                    "{} {:<20} {} {}",
                    p.fingerprint,
                    p.name,
                    state,
                    p.addresses.join(",")
                );
            }
        }
        Cmd::Status => {
            let s: StatusView = call(client, Request::Status).await?;
            if json {
                return print_json(&s);
            }
            println!(
                "node      {} ({})",
                s.identity.id,
                s.identity.name.as_deref().unwrap_or("no name")
            );
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
                println!(
                    "network   {health}; {} connected, {} known",
                    s.connected_peers, s.known_peers
                );
            } else {
                println!("running   no (start one with `disasternet node`)");
            }
            let rooms: Vec<&str> = s.rooms.iter().map(|r| r.name.as_str()).collect();
            println!(
                "rooms     {}",
                if rooms.is_empty() {
                    "none".to_string()
                } else {
                    rooms.join(", ")
                }
            );
            println!(
                "messages  {} stored, {} received this run, {} rejected",
                s.messages, s.received, s.rejected
            );
        }
        Cmd::Connect { addr } => {
            client
                .request(Request::AddPeer { addr: addr.clone() })
                .await
                .map_err(api)?;
            if !json {
                println!("dialing {addr}");
            }
        }
        Cmd::Export { room, out } => {
            let path = absolute(&out)?;
            let s: ExportSummary = call(
                client,
                Request::Export {
                    room,
                    path: path.display().to_string(),
                },
            )
            .await?;
            if json {
                print_json(&s)?;
            } else {
                println!("exported {} messages to {}", s.messages, s.path);
            }
        }
        Cmd::Node { .. } | Cmd::Verify { .. } => unreachable_cmd()?,
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
        Ok(std::env::current_dir()?.join(p))
    }
}

fn verify(file: &Path, json: bool) -> Result<ExitCode> {
    let s = dn_node::export::verify_file(file).map_err(api)?;
    if json {
        print_json(&s)?;
    } else {
        for f in &s.failures {
            println!("line {}: FAILED: {}", f.line, f.reason);
        }
        println!(
            "{} lines checked: {} valid, {} failed",
            s.lines,
            s.valid,
            s.failures.len()
        );
    }
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

async fn run_node(
    data_dir: &Path,
    listen: std::net::SocketAddr,
    peers: Vec<String>,
    mdns: bool,
) -> Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut cfg = NodeConfig::new(data_dir.to_path_buf());
    cfg.listen = listen;
    cfg.peers = peers;
    cfg.mdns = mdns;
    let engine = Engine::start(cfg).await.map_err(api)?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tracing::info!("stopping");
    engine.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// `YYYY-MM-DD HH:MM:SS UTC` from ms since the epoch (civil-from-days, no time zone database).
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}
