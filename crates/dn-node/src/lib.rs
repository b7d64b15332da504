//! # dn-node — the DisasterNet engine
//!
//! Everything a node does besides protocol decisions, shared by the `disasternet` CLI and the
//! desktop app (neither implements anything twice):
//!
//! - [`identity`]: the Ed25519 node key in the data directory.
//! - [`atrest`]: the optional passphrase that encrypts the key and the store at rest
//!   ([`atrest::unlock`] at every start of a locked data directory).
//! - [`tls`]: the same key as a self-signed QUIC/TLS identity, with pinned-id verifiers.
//! - [`core`]: the single thread that owns the store (the one writer) and the
//!   [`dn_proto::Protocol`] state, and answers every [`api::Request`].
//! - [`net`]: the quinn driver (dialing with backoff, one connection per pair, frame streams).
//! - [`discovery`]: mDNS announce + browse; [`beacon`]: UDP broadcast fallback.
//! - [`diagnose`]: what the node observed of its network, and why it may see no one
//!   (`disasternet doctor`, the app's "Why can't I see anyone?").
//! - [`control`]: the owner-only Unix socket through which the CLI reaches a running node.
//! - [`export`]: JSON Lines export and offline verification.
//! - [`bundle`]: bundle files carried between camps (written here, imported by the core,
//!   `core/bundle.rs`, through the same admission as messages from peers).
//! - Private rooms (`core/private.rs`): room keys, invites, membership and key grants on top
//!   of `dn_proto::private`; [`qr`] draws invite codes.
//! - [`addr`]: peer and relay addresses as typed (`host:port`, IPv6 with a scope).
//! - [`api`]: the one definition of the requests (their typed fields and answers), the views
//!   and errors; [`Engine::call`] / [`Client::call`] run a typed request from [`calls`].
//!
//! [`Engine::start`] runs a full node; [`Client::open`] gives the CLI the same request API
//! whether a node runs on the data directory (over the control socket) or not (directly on
//! the store).

pub mod addr;
pub mod api;
pub mod atrest;
pub mod beacon;
pub mod bundle;
pub mod control;
pub mod core;
pub mod diagnose;
pub mod discovery;
pub mod display;
pub mod export;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod identity;
pub mod net;
pub mod options;
pub mod pace;
pub mod qr;
pub mod queue;
pub mod tls;

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, oneshot};
use tracing::{info, warn};

pub use api::*;
use core::{Core, CoreMsg, NetCmd, NetInfo};
pub use options::{init_tracing, init_tracing_to, shutdown_signal, NodeOptions};

/// Application id; also the name of the default data directory (same as the desktop app's).
pub const APP_ID: &str = "org.disasternet.app";
/// Default QUIC port.
pub const DEFAULT_PORT: u16 = 7300;
/// File name of the data directory lock.
pub const LOCK_FILE: &str = "node.lock";

/// How to run a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Data directory (key, store, lock, socket).
    pub data_dir: PathBuf,
    /// Where to listen for QUIC.
    pub listen: SocketAddr,
    /// Peers to dial by address (`host:port`), kept connected.
    pub peers: Vec<String>,
    /// Announce and browse with mDNS.
    pub mdns: bool,
    /// Send and hear UDP broadcast beacons (fallback where multicast is blocked).
    pub beacon: bool,
    /// Storage allowed for rooms not joined (carried for others, `dm`, rooms left), bytes of
    /// signed messages; over it the oldest are evicted (`dn_proto::protocol::evict`).
    pub carry_quota_bytes: u64,
    /// The node runs inside a program with a window (the desktop app): it answers
    /// [`Request::Activate`] with [`EngineEvent::Activate`].
    pub window: bool,
    /// The passphrase of a locked data directory (see [`atrest`]); ignored when it is not
    /// locked. Without it a locked directory does not start (`locked`).
    pub passphrase: Option<atrest::Passphrase>,
    /// Run as a relay (`disasternet node --relay`, docs/relay.md): refuses to join rooms,
    /// carries up to [`RELAY_MAX_CARRIED_ROOMS`] rooms on demand (a sole peer's list of up to
    /// `dn_proto::protocol::CARRY_ROOMS_PER_PEER` rooms counts) and accepts more connections
    /// ([`net::Limits::relay`]).
    pub relay: bool,
    /// The bounded view's target and accept limit (`dn_proto::Config::active_target`,
    /// `active_max`); `None`: the protocol's defaults (8 and 12).
    pub active_view: Option<(usize, usize)>,
}

/// Default carry quota of a relay (`--relay` without `--carry-quota-mb`): 4 GiB.
pub const RELAY_CARRY_QUOTA_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Rooms a relay carries at most (a laptop carries `dn_proto::Config`'s default, 64).
pub const RELAY_MAX_CARRIED_ROOMS: usize = 1024;

pub use dn_proto::protocol::DEFAULT_CARRY_QUOTA_BYTES;

impl NodeConfig {
    /// Defaults: listen on `[::]:7300` dual-stack (IPv4 and IPv6; `0.0.0.0:7300` where IPv6
    /// is unavailable; a free port if 7300 is taken), mDNS on, beacon off (front ends opt in:
    /// the CLI node turns it on unless `--no-beacon`).
    pub fn new(data_dir: PathBuf) -> Self {
        NodeConfig {
            data_dir,
            listen: SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, DEFAULT_PORT)),
            peers: vec![],
            mdns: true,
            beacon: false,
            carry_quota_bytes: DEFAULT_CARRY_QUOTA_BYTES,
            window: false,
            passphrase: None,
            relay: false,
            active_view: None,
        }
    }
}

/// The default data directory, shared by the desktop app and the CLI: `org.disasternet.app`
/// in the platform's local app-data directory (the `dirs` crate):
/// - Linux: `$XDG_DATA_HOME`, else `~/.local/share` (where Tauri puts the app's data too);
/// - macOS: `~/Library/Application Support`;
/// - Windows: `%LOCALAPPDATA%` (`C:\Users\<user>\AppData\Local`: not roaming, so a domain
///   profile does not copy the store around).
pub fn default_data_dir() -> Result<PathBuf, ApiError> {
    dirs::data_local_dir()
        .map(|d| d.join(APP_ID))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidInput,
                "cannot find this user's application data directory: pass --data-dir",
            )
        })
}

/// Checks that `backup` is a readable identity backup and returns the node id it holds,
/// changing nothing (so a front end can refuse a wrong file before stopping its node).
/// A backup locked with a passphrase names its id in clear, so this needs no passphrase.
pub fn check_backup(backup: &Path) -> Result<String, ApiError> {
    identity::backup_id(backup).map(|id| id.to_hex())
}

/// Single instance per data directory: asks the program already running a node on
/// `data_dir` (if any) to show its window. `Ok(None)`: nothing runs there (start normally);
/// `Ok(Some(view))`: something answered, `view.window` says whether it was the desktop app
/// (which now shows its window) or a headless node.
/// Gives up after 3 s (a program that holds the socket but does not answer) with `busy`.
pub async fn activate_running(data_dir: &Path) -> Result<Option<ActivateView>, ApiError> {
    let call = control::call(data_dir, &Request::Activate);
    let answer = tokio::time::timeout(Duration::from_secs(3), call)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::Busy,
                "the program running on this data directory does not answer",
            )
        })??;
    match answer {
        None => Ok(None),
        Some(v) => decode(v).map(Some),
    }
}

/// Resolves a peer or relay address (see [`addr`]): an address literal as it is (IPv6 with its
/// scope), a `host:port` name by a lookup: IPv4 addresses first, then IPv6.
pub async fn resolve_addr(s: &str) -> Result<Vec<SocketAddr>, ApiError> {
    if let Ok(a) = addr::parse_socket_addr(s) {
        return Ok(vec![a]);
    }
    // A literal with a bad form (a link-local address without its scope) says why.
    let (host, _) = addr::split_host_port(s)?;
    if host.parse::<std::net::IpAddr>().is_ok() || host.contains('%') {
        addr::parse_socket_addr(s)?;
    }
    let bad = |e: &dyn std::fmt::Display| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("bad peer address {s:?}: {e}"),
        )
    };
    // A name lookup can hang for as long as the resolver likes on a LAN without DNS: bound it.
    let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(s.trim()))
        .await
        .map_err(|_| {
            bad(&format!(
                "no answer from the resolver within {RESOLVE_TIMEOUT:?}"
            ))
        })?
        .map_err(|e| bad(&e))?;
    let mut addrs: Vec<SocketAddr> = found.collect();
    addrs.sort_by_key(SocketAddr::is_ipv6);
    addrs.dedup();
    if addrs.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("{s:?} has no address"),
        ));
    }
    Ok(addrs)
}

/// How long [`resolve_addr`] waits for a host name lookup.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Takes the exclusive lock of a data directory. The OS releases it when the process dies,
/// so a crashed node never blocks the next start.
/// [`lock_data_dir`] for an offline operation: `busy` says that a node or the app must stop
/// before `what`.
fn lock_data_dir_to(data_dir: &Path, what: &str) -> Result<File, ApiError> {
    lock_data_dir(data_dir).map_err(|e| {
        if e.code == ErrorCode::Busy {
            ApiError::new(
                ErrorCode::Busy,
                format!(
                    "a DisasterNet node or the app is running on {}; stop it before {what}",
                    data_dir.display()
                ),
            )
        } else {
            e
        }
    })
}

fn lock_data_dir(data_dir: &Path) -> Result<File, ApiError> {
    // 0700 from creation; an existing too-open data dir is tightened (and logged).
    fsutil::create_private_dir(data_dir)
        .map_err(|e| ApiError::new(ErrorCode::Io, format!("{}: {e}", data_dir.display())))?;
    let path = data_dir.join(LOCK_FILE);
    let mut opts = File::options();
    opts.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, fsutil::PRIVATE_FILE_MODE);
    let f = opts
        .open(&path)
        .map_err(|e| ApiError::new(ErrorCode::Io, format!("{}: {e}", path.display())))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(ApiError::new(
            ErrorCode::Busy,
            format!(
                "another DisasterNet node is already running on {}",
                data_dir.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(ApiError::new(
            ErrorCode::Io,
            format!("{}: {e}", path.display()),
        )),
    }
}

/// Like [`lock_data_dir`], but waits up to `patience` while another process holds the lock
/// briefly (a CLI command working on the store offline).
async fn lock_data_dir_patiently(data_dir: &Path, patience: Duration) -> Result<File, ApiError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match lock_data_dir(data_dir) {
            Err(e) if e.code == ErrorCode::Busy && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// Replaces the identity key of `data_dir` with the one in the backup file `backup`. Works only
/// while no node (or app, or other command) runs on the data dir: it takes the data dir's lock
/// and fails with `busy` otherwise. The backup is validated before anything changes; a
/// previous, different key is kept as `identity.key.replaced-<unix ms>`.
pub fn restore_identity(data_dir: &Path, backup: &Path) -> Result<RestoreSummary, ApiError> {
    restore_identity_with(data_dir, backup, None, None)
}

/// [`restore_identity`] with passphrases: `backup_pass` opens a backup locked with a
/// passphrase, `dir_pass` a locked data directory, whose new `identity.key` is then sealed
/// under the same passphrase with the same store key (the store stays readable). Each falls
/// back to the other when absent. `locked` when one is needed and none is given,
/// `wrong_passphrase` when one does not open; nothing changes in either case.
pub fn restore_identity_with(
    data_dir: &Path,
    backup: &Path,
    backup_pass: Option<&atrest::Passphrase>,
    dir_pass: Option<&atrest::Passphrase>,
) -> Result<RestoreSummary, ApiError> {
    let _lock = lock_data_dir_to(data_dir, "restoring an identity")?;
    let key = identity::read_any_backup(backup, backup_pass.or(dir_pass))?;
    let text = if atrest::is_locked(data_dir)? {
        let pass = dir_pass
            .or(backup_pass)
            .ok_or_else(|| atrest::locked_error(data_dir))?;
        let unlocked = atrest::unlock(data_dir, Some(pass))?;
        let lock = unlocked
            .lock
            .ok_or_else(|| internal("a locked data directory unlocked without its keys"))?;
        atrest::locked_key_file(&lock.kek, &key, &lock.store_key)?
    } else {
        atrest::plain_key_file(&key)
    };
    let kept = identity::install_key(data_dir, &key, &text, core::now_ms())?;
    Ok(RestoreSummary {
        id: identity::node_id(&key).to_hex(),
        previous_key: kept.map(|p| p.display().to_string()),
    })
}

/// Recovers a damaged store (see [`dn_store::salvage_store`]): the readable, correctly
/// signed messages, rooms and settings go into a new store, which replaces the damaged one
/// once it checks out; the damaged file is kept as `store.sqlite3.damaged-<unix ms>`. Works
/// only while no node (or app, or other command) runs on the data dir (`busy` otherwise).
/// A store whose integrity check passes is left alone (`invalid_input`) unless `force`:
/// rebuilding it would drop the delivery state and the peers list for nothing.
pub fn salvage_store(data_dir: &Path, force: bool) -> Result<dn_store::SalvageOutcome, ApiError> {
    salvage_store_with(data_dir, force, None)
}

/// [`salvage_store`] on a data directory that may be locked with a passphrase (the salvaged
/// store is encrypted with the same store key).
pub fn salvage_store_with(
    data_dir: &Path,
    force: bool,
    passphrase: Option<&atrest::Passphrase>,
) -> Result<dn_store::SalvageOutcome, ApiError> {
    let _lock = lock_data_dir_to(data_dir, "salvaging its store")?;
    let unlocked = atrest::unlock(data_dir, passphrase)?;
    let store_key = unlocked.store_key();
    let db = data_dir.join(core::STORE_FILE);
    if !db.exists() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("{}: no store to salvage", db.display()),
        ));
    }
    if !force && dn_store::Store::open_with_key(&db, store_key).is_ok() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "{}: the store is not damaged (its integrity check passes); nothing to salvage \
                 (--force rebuilds it anyway)",
                db.display()
            ),
        ));
    }
    dn_store::salvage_store_with_key(&db, store_key, core::now_ms()).map_err(|e| match e {
        dn_store::StoreError::WrongKey(_) => atrest::store_open_error(e),
        e => ApiError::from(e),
    })
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::Internal, e.to_string())
}

struct Inner {
    /// Requests to the core (its bounded request channel).
    core: tokio::sync::mpsc::Sender<CoreMsg>,
    events: broadcast::Sender<EngineEvent>,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    core_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    mdns: Option<Arc<discovery::Mdns>>,
    data_dir: PathBuf,
    /// Only the engine that serves the control socket may remove it.
    serves_socket: bool,
    /// The control socket's accept loop (stopped first at shutdown).
    control: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The data directory's lock, released by [`Engine::shutdown`] (or when dropped).
    lock: Mutex<Option<File>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        // The last handle is gone: if the request channel is full the core still ends, when
        // it finds every request sender dropped.
        let _ = self.core.try_send(CoreMsg::Shutdown);
        if let Some(m) = &self.mdns {
            m.stop();
        }
    }
}

/// A handle to a running engine. Cheap to clone; the engine stops on [`Engine::shutdown`] or
/// when the last handle is dropped.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Starts a full node: locks the data dir, opens identity and store, binds QUIC, starts
    /// mDNS, dials the given peers and known peers, serves the control socket.
    pub async fn start(cfg: NodeConfig) -> Result<Engine, ApiError> {
        let lock = lock_data_dir_patiently(&cfg.data_dir, Duration::from_secs(3)).await?;
        // Argon2id takes a good fraction of a second: off the async threads.
        let (dir, pass) = (cfg.data_dir.clone(), cfg.passphrase.clone());
        let unlocked = tokio::task::spawn_blocking(move || atrest::unlock(&dir, pass.as_ref()))
            .await
            .map_err(internal)??;
        let atrest::Unlocked { key, lock: at_rest } = unlocked;
        let me = identity::node_id(&key);
        let tls = Arc::new(tls::TlsIdentity::new(&key).map_err(internal)?);
        let limits = if cfg.relay {
            net::Limits::relay()
        } else {
            net::Limits::default()
        };
        // A laptop on the default port falls back to a free one if it is taken (discovery
        // still finds it); a relay never does: laptops dial it at the port they were given.
        let fallback = cfg.listen.port() == DEFAULT_PORT && !cfg.relay;
        let net = net::Net::bind(&tls, cfg.listen, fallback, limits).map_err(|e| {
            ApiError::new(
                ErrorCode::Io,
                format!("cannot listen on {}: {e}", cfg.listen),
            )
        })?;
        let listen = net.listen;
        let (events, _) = broadcast::channel(4096);
        let (net_tx, net_rx) = tokio::sync::mpsc::channel(net::COMMAND_QUEUE);
        let (disc_tx, disc_rx) = tokio::sync::mpsc::channel(net::DISCOVERY_QUEUE);
        let net_counters = net.counters.clone();
        net_counters.observed.bound(listen, cfg.listen.port());
        let info = NetInfo {
            listen,
            counters: net_counters.clone(),
            mdns: cfg.mdns,
            cmd: net_tx.clone(),
            announcer: None,
            carry_quota_bytes: cfg.carry_quota_bytes,
            window: cfg.window,
            relay: cfg.relay,
            active_view: cfg.active_view,
        };
        let data_dir = cfg.data_dir.clone();
        let ev = events.clone();
        let mut core = tokio::task::spawn_blocking(move || {
            Core::open_locked(&data_dir, key, at_rest, ev, Some(info))
        })
        .await
        .map_err(internal)??;
        let mdns = if cfg.mdns {
            match discovery::Mdns::start(
                me,
                &core.display_name(),
                listen.port(),
                cfg.active_view
                    .map_or(dn_proto::protocol::ACTIVE_TARGET, |(target, _)| target),
                disc_tx.clone(),
                net_counters.clone(),
            ) {
                Ok(m) => Some(Arc::new(m)),
                Err(e) => {
                    warn!("mDNS unavailable ({e}); use --peer to reach other nodes");
                    None
                }
            }
        } else {
            None
        };
        net_counters.observed.mdns(cfg.mdns, mdns.is_some());
        core.set_mdns(mdns.clone());
        let (core_tx, net_core_tx, core_rx) = core::inbox();
        let core_thread = std::thread::Builder::new()
            .name("dn-core".into())
            .spawn(move || core.run(core_rx))
            .map_err(internal)?;
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let net_task = net.spawn(me, tls, net_core_tx, net_rx, disc_rx, shutdown_rx);
        let engine = Engine {
            inner: Arc::new(Inner {
                core: core_tx,
                events,
                shutdown,
                tasks: Mutex::new(vec![net_task]),
                core_thread: Mutex::new(Some(core_thread)),
                mdns,
                data_dir: cfg.data_dir.clone(),
                serves_socket: true,
                control: Mutex::new(None),
                lock: Mutex::new(Some(lock)),
            }),
        };
        let ctl = control::serve(engine.clone(), &cfg.data_dir)
            .map_err(|e| ApiError::new(ErrorCode::Io, format!("control socket: {e}")))?;
        if let Ok(mut c) = engine.inner.control.lock() {
            *c = Some(ctl);
        }
        // Peers met before join the protocol's passive list like discovered ones (it dials as
        // many as its active view wants), after the static peers and relays below.
        let known_tx = disc_tx.clone();
        if cfg.beacon {
            let rx = engine.inner.shutdown.subscribe();
            let observed = net_counters.clone();
            match beacon::start(me, listen.port(), disc_tx, rx, net_counters) {
                Ok(task) => {
                    observed.observed.beacon(true, true);
                    if let Ok(mut t) = engine.inner.tasks.lock() {
                        t.push(task);
                    }
                }
                Err(e) => {
                    observed.observed.beacon(true, false);
                    warn!("broadcast beacon unavailable ({e})");
                }
            }
        }
        // Static peers, then every peer we have met before (last known addresses).
        for p in &cfg.peers {
            for addr in resolve_addr(p).await? {
                let _ = net_tx
                    .send(NetCmd::Dial {
                        addr,
                        id: None,
                        persistent: true,
                    })
                    .await;
            }
        }
        // Relay addresses: dialled for ever, each name looked up again before every dial.
        for r in engine.call(calls::ListRelays).await.unwrap_or_default() {
            let _ = net_tx.send(NetCmd::DialHost { host: r.addr }).await;
        }
        for p in engine.call(calls::Peers).await.unwrap_or_default() {
            let Ok(id) = dn_proto::NodeId::from_hex(&p.id) else {
                continue;
            };
            let addrs: Vec<SocketAddr> = p
                .addresses
                .iter()
                .filter_map(|a| a.parse::<SocketAddr>().ok())
                .collect();
            if !addrs.is_empty() {
                let _ = known_tx.send(discovery::Discovered { id, addrs }).await;
            }
        }
        info!(id = %me, %listen, mdns = cfg.mdns, beacon = cfg.beacon, relay = cfg.relay,
            "node started");
        Ok(engine)
    }

    /// An engine without network, on a data dir where no node runs (used by the CLI).
    fn offline(
        data_dir: &Path,
        lock: File,
        passphrase: Option<&atrest::Passphrase>,
    ) -> Result<Engine, ApiError> {
        let (events, _) = broadcast::channel(16);
        let atrest::Unlocked { key, lock: at_rest } = atrest::unlock(data_dir, passphrase)?;
        let core = Core::open_locked(data_dir, key, at_rest, events.clone(), None)?;
        // No network: its sender is dropped at once (the core then waits on requests only).
        let (core_tx, _, core_rx) = core::inbox();
        let core_thread = std::thread::Builder::new()
            .name("dn-core".into())
            .spawn(move || core.run(core_rx))
            .map_err(internal)?;
        let (shutdown, _) = tokio::sync::watch::channel(false);
        Ok(Engine {
            inner: Arc::new(Inner {
                core: core_tx,
                events,
                shutdown,
                tasks: Mutex::new(vec![]),
                core_thread: Mutex::new(Some(core_thread)),
                mdns: None,
                data_dir: data_dir.to_path_buf(),
                serves_socket: false,
                control: Mutex::new(None),
                lock: Mutex::new(Some(lock)),
            }),
        })
    }

    /// Executes a request on the core thread.
    pub async fn request(&self, req: Request) -> Result<Value, ApiError> {
        // A host name is looked up here, never on the core thread (a slow resolver would stall
        // every message); the core gets one request per address found.
        if let Request::AddPeer { addr } = &req {
            if addr.parse::<SocketAddr>().is_err() {
                for a in resolve_addr(addr).await? {
                    Box::pin(self.request(Request::AddPeer {
                        addr: a.to_string(),
                    }))
                    .await?;
                }
                return Ok(Value::Null);
            }
        }
        let (tx, rx) = oneshot::channel();
        self.inner
            .core
            .send(CoreMsg::Request(req, tx))
            .await
            .map_err(|_| ApiError::new(ErrorCode::Internal, "engine stopped"))?;
        rx.await
            .map_err(|_| ApiError::new(ErrorCode::Internal, "engine stopped"))?
    }

    /// Executes a typed request (one of [`calls`]) and decodes its answer, e.g.
    /// `engine.call(calls::JoinRoom { room }).await` gives a [`RoomView`].
    pub async fn call<C: Call>(&self, call: C) -> Result<C::Response, ApiError> {
        decode(self.request(call.into()).await?)
    }

    /// Engine events (messages, peers, status).
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.inner.events.subscribe()
    }

    /// Stops the network, the control socket and the core thread; waits for them.
    pub async fn shutdown(&self) {
        // First no new control clients: a CLI arriving now finds no socket and waits for the
        // data dir's lock instead of reaching a node that is going away. Requests already
        // read are still answered (their tasks run on; the core stops last).
        if let Some(ctl) = self.inner.control.lock().ok().and_then(|mut c| c.take()) {
            ctl.abort();
            let _ = ctl.await;
        }
        if self.inner.serves_socket {
            let _ = std::fs::remove_file(control::socket_path(&self.inner.data_dir));
        }
        let _ = self.inner.shutdown.send(true);
        if let Some(m) = &self.inner.mdns {
            m.stop();
        }
        let tasks: Vec<_> = self
            .inner
            .tasks
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        let mut tasks = tasks.into_iter();
        // The network driver closes every connection (peers notice at once) and stops itself.
        if let Some(mut net) = tasks.next() {
            if tokio::time::timeout(std::time::Duration::from_secs(3), &mut net)
                .await
                .is_err()
            {
                net.abort();
            }
        }
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
        let _ = self.inner.core.send(CoreMsg::Shutdown).await;
        let th = self
            .inner
            .core_thread
            .lock()
            .ok()
            .and_then(|mut t| t.take());
        if let Some(th) = th {
            let _ = tokio::task::spawn_blocking(move || th.join()).await;
        }
        // Nothing writes any more: another engine may take the data directory now.
        if let Ok(mut lock) = self.inner.lock.lock() {
            lock.take();
        }
    }
}

/// The CLI's way in: the running node's control socket if there is one, else the store
/// directly. Both answer the same [`Request`]s with the same code.
pub enum Client {
    /// A node runs on the data dir; requests go over its control socket.
    Remote(PathBuf),
    /// No node runs; an offline engine works on the store.
    Local(Engine),
}

impl Client {
    /// Connects to the node on `data_dir`, or opens the data dir directly.
    ///
    /// The running node's socket is tried first. Otherwise the data directory's lock is taken
    /// and held until the client is closed, so a node starting meanwhile waits for it rather
    /// than racing the offline work. While someone else holds the lock (a node starting or
    /// stopping, another offline command), both are retried for a few seconds.
    pub async fn open(data_dir: &Path) -> Result<Client, ApiError> {
        Self::open_with(data_dir, None).await
    }

    /// [`Client::open`] with the passphrase of a locked data directory, used only when no node
    /// runs (a running node is already unlocked). Without one, a locked directory with no node
    /// running is `locked`.
    pub async fn open_with(
        data_dir: &Path,
        passphrase: Option<&atrest::Passphrase>,
    ) -> Result<Client, ApiError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            if control::call(data_dir, &Request::Identity).await?.is_some() {
                return Ok(Client::Remote(data_dir.to_path_buf()));
            }
            match lock_data_dir(data_dir) {
                Ok(lock) => return Ok(Client::Local(Engine::offline(data_dir, lock, passphrase)?)),
                Err(e) if e.code == ErrorCode::Busy => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(ApiError::new(
                            ErrorCode::Busy,
                            "a node holds this data directory but does not answer on its \
                             control socket",
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// True when talking to a running node.
    pub fn is_remote(&self) -> bool {
        matches!(self, Client::Remote(_))
    }

    /// Executes a request.
    pub async fn request(&self, req: Request) -> Result<Value, ApiError> {
        match self {
            Client::Remote(dir) => {
                let stopped = || {
                    ApiError::new(
                        ErrorCode::Io,
                        "the node stopped while we were talking to it",
                    )
                };
                if let Some(v) = control::call(dir, &req).await? {
                    return Ok(v);
                }
                // The node stopped since we opened (its socket is gone, so this request was
                // never sent): do it the way it is done when no node runs.
                match Box::pin(Client::open(dir)).await? {
                    Client::Local(e) => {
                        let r = e.request(req).await;
                        e.shutdown().await;
                        r
                    }
                    Client::Remote(dir) => control::call(&dir, &req).await?.ok_or_else(stopped),
                }
            }
            Client::Local(e) => e.request(req).await,
        }
    }

    /// Executes a typed request (one of [`calls`]) and decodes its answer.
    pub async fn call<C: Call>(&self, call: C) -> Result<C::Response, ApiError> {
        decode(self.request(call.into()).await?)
    }

    /// Closes an offline engine cleanly.
    pub async fn close(self) {
        if let Client::Local(e) = self {
            e.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_refuses_while_the_data_dir_is_locked() {
        let src = tempfile::tempdir().unwrap();
        let key = identity::load_or_create(src.path()).unwrap();
        let backup = src.path().join("backup.key");
        identity::write_backup(&key, &backup).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let old = identity::load_or_create(dir.path()).unwrap();
        let lock = lock_data_dir(dir.path()).unwrap();
        let e = restore_identity(dir.path(), &backup).unwrap_err();
        assert_eq!(e.code, ErrorCode::Busy);
        assert_eq!(
            identity::load_or_create(dir.path()).unwrap().to_bytes(),
            old.to_bytes()
        );
        drop(lock);
        let r = restore_identity(dir.path(), &backup).unwrap();
        assert_eq!(r.id, identity::node_id(&key).to_hex());
        assert!(r.previous_key.unwrap().contains("identity.key.replaced-"));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn activate_gives_up_on_a_program_that_never_answers() {
        let dir = tempfile::tempdir().unwrap();
        let path = control::socket_path(dir.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        // Accepts, reads, never answers.
        let _hold = tokio::spawn(async move {
            let mut held = vec![];
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn);
            }
        });
        let started = std::time::Instant::now();
        let e = activate_running(dir.path()).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Busy);
        assert!(started.elapsed() < Duration::from_secs(6));
    }

    #[tokio::test]
    async fn backup_request_writes_the_running_identity() {
        let dir = tempfile::tempdir().unwrap();
        let client = Client::open(dir.path()).await.unwrap();
        let id = client.call(calls::Identity).await.unwrap();
        let out = dir.path().join("me.backup");
        let v = client
            .request(Request::BackupIdentity {
                path: out.display().to_string(),
            })
            .await
            .unwrap();
        for bad in [
            dir.path().join("identity.key").display().to_string(),
            dir.path().join("store.sqlite3").display().to_string(),
            "relative.key".to_string(),
        ] {
            let e = client
                .request(Request::BackupIdentity { path: bad.clone() })
                .await
                .unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidInput, "{bad}");
        }
        let e = client
            .request(Request::Export {
                room: None,
                path: dir.path().join("identity.key").display().to_string(),
                format: ExportFormat::Csv,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        client.close().await;
        // The key file is intact.
        assert_eq!(
            identity::node_id(&identity::load_or_create(dir.path()).unwrap()).to_hex(),
            id.id
        );
        let s: BackupSummary = serde_json::from_value(v).unwrap();
        assert_eq!(s.path, out.display().to_string());
        let key = identity::parse_backup(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(identity::node_id(&key).to_hex(), id.id);
    }
}
