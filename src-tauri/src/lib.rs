//! DisasterNet desktop shell: a thin Tauri v2 adapter around the `dn-node` engine.
//!
//! How the pieces fit:
//! - [`Args`] reads `--data-dir` (or `DISASTERNET_DATA_DIR`, else Tauri's app data dir),
//!   `--listen`, `--peer` (repeatable), `--no-mdns` and `--no-beacon`, with the same meaning as
//!   the CLI.
//! - `setup` starts the [`Engine`] on Tauri's async runtime without blocking the window and
//!   publishes the outcome (engine or [`ApiError`]) in a `watch` channel held by [`Shell`].
//! - Every Tauri command awaits that outcome and maps 1:1 to one engine method, returning
//!   `Result<T, ApiError>`: the frontend receives `{ code, message }` on failure. If the engine
//!   could not start (e.g. `busy`: another node owns the data dir) every command returns that
//!   error and the UI shows it.
//! - One task forwards `engine.subscribe()` to the frontend as the Tauri event `"engine"`
//!   (payload: the `EngineEvent` JSON). If the frontend falls behind the broadcast channel it
//!   gets `"engine-lagged"` and reloads its state.
//! - SIGTERM/SIGINT and window close end the app through `RunEvent::Exit`, which shuts the engine
//!   down cleanly.
//! - Plugins: the native save dialog, desktop notifications (the UI decides when, see
//!   `ui/src/lib/notify.ts`) and the window state (size and position remembered).
//!
//! No business logic lives here; the UI (`ui/`) and the engine (`crates/dn-node`) own it.

use std::{io::IsTerminal, net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;
use dn_node::api::{
    ApiError, BackupSummary, DmView, EngineEvent, ErrorCode, ExportFormat, ExportSummary,
    IdentityView, MessageView, NetworkView, PeerView, Request, RoomView, StatusView,
};
use dn_node::{Engine, NodeConfig};
use tauri::{AppHandle, Emitter, Manager, RunEvent, State};
use tokio::sync::{broadcast, watch};

/// Name of the Tauri event carrying every [`EngineEvent`].
const ENGINE_EVENT: &str = "engine";
/// Emitted (payload: number of dropped events) when the frontend missed engine events.
const ENGINE_LAGGED_EVENT: &str = "engine-lagged";
/// Longest wait for a clean engine shutdown when the app exits.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Command-line options. Same meaning as the `disasternet` CLI's global options.
#[derive(Debug, Parser)]
#[command(name = "disasternet-app", version, about = "DisasterNet desktop app")]
struct Args {
    /// Data directory (identity, message store). Default: the platform's app data dir.
    #[arg(long, env = "DISASTERNET_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// QUIC listen address (default 0.0.0.0:7300, falling back to a free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Peer to dial at start (`host:port`); repeatable.
    #[arg(long = "peer", value_name = "ADDR")]
    peers: Vec<String>,
    /// Turn off mDNS discovery on the local network.
    #[arg(long)]
    no_mdns: bool,
    /// Turn off the UDP broadcast beacon (discovery where multicast is blocked).
    #[arg(long)]
    no_beacon: bool,
    /// Added by WebKitWebDriver when it launches the app under test; ignored.
    #[arg(long, hide = true)]
    automation: bool,
}

/// Outcome of starting the engine: `None` while it is still starting.
type EngineSlot = Option<Result<Engine, ApiError>>;

/// Managed state: the engine once started (or why it could not start).
struct Shell {
    engine: watch::Receiver<EngineSlot>,
}

impl Shell {
    /// Waits until the engine has started, then returns it or its start error.
    async fn engine(&self) -> Result<Engine, ApiError> {
        let mut rx = self.engine.clone();
        let slot = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| ApiError::new(ErrorCode::Internal, "the engine start task ended"))?;
        match &*slot {
            Some(result) => result.clone(),
            None => Err(ApiError::new(
                ErrorCode::Internal,
                "the engine has not started",
            )),
        }
    }

    /// The engine if it is running now (no waiting).
    fn running(&self) -> Option<Engine> {
        match &*self.engine.borrow() {
            Some(Ok(engine)) => Some(engine.clone()),
            _ => None,
        }
    }
}

#[tauri::command]
async fn identity(shell: State<'_, Shell>) -> Result<IdentityView, ApiError> {
    shell.engine().await?.identity().await
}

#[tauri::command]
async fn set_name(shell: State<'_, Shell>, name: String) -> Result<IdentityView, ApiError> {
    shell.engine().await?.set_name(name).await
}

#[tauri::command]
async fn join_room(shell: State<'_, Shell>, room: String) -> Result<RoomView, ApiError> {
    shell.engine().await?.join_room(room).await
}

#[tauri::command]
async fn leave_room(shell: State<'_, Shell>, room: String) -> Result<RoomView, ApiError> {
    shell.engine().await?.leave_room(room).await
}

#[tauri::command]
async fn rooms(shell: State<'_, Shell>) -> Result<Vec<RoomView>, ApiError> {
    shell.engine().await?.rooms().await
}

#[tauri::command]
async fn send(
    shell: State<'_, Shell>,
    room: String,
    body: String,
) -> Result<MessageView, ApiError> {
    shell.engine().await?.send(room, body).await
}

#[tauri::command]
async fn messages(
    shell: State<'_, Shell>,
    room: String,
    limit: u32,
    before: Option<String>,
) -> Result<Vec<MessageView>, ApiError> {
    shell.engine().await?.messages(room, limit, before).await
}

#[tauri::command]
async fn peers(shell: State<'_, Shell>) -> Result<Vec<PeerView>, ApiError> {
    shell.engine().await?.peers().await
}

#[tauri::command]
async fn status(shell: State<'_, Shell>) -> Result<StatusView, ApiError> {
    shell.engine().await?.status().await
}

#[tauri::command]
async fn export(
    shell: State<'_, Shell>,
    room: Option<String>,
    path: String,
    format: Option<ExportFormat>,
) -> Result<ExportSummary, ApiError> {
    shell
        .engine()
        .await?
        .export(room, path, format.unwrap_or_default())
        .await
}

/// Export of one room (or all) in a chosen format, to a path picked by the user.
#[tauri::command]
async fn export_messages(
    shell: State<'_, Shell>,
    room: Option<String>,
    format: ExportFormat,
    path: String,
) -> Result<ExportSummary, ApiError> {
    shell.engine().await?.export(room, path, format).await
}

/// Writes a backup of the node's identity key (the file IS the identity).
#[tauri::command]
async fn backup_identity(shell: State<'_, Shell>, path: String) -> Result<BackupSummary, ApiError> {
    shell.engine().await?.backup_identity(path).await
}

/// Runs a generic engine request and decodes its JSON answer.
async fn typed<T: serde::de::DeserializeOwned>(
    shell: &State<'_, Shell>,
    req: Request,
) -> Result<T, ApiError> {
    let value = shell.engine().await?.request(req).await?;
    serde_json::from_value(value).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("unexpected engine answer: {e}"),
        )
    })
}

#[tauri::command]
async fn send_dm(shell: State<'_, Shell>, to: String, body: String) -> Result<DmView, ApiError> {
    typed(&shell, Request::SendDm { to, body }).await
}

#[tauri::command]
async fn dm_log(
    shell: State<'_, Shell>,
    with: String,
    limit: u32,
) -> Result<Vec<DmView>, ApiError> {
    typed(&shell, Request::DmLog { with, limit }).await
}

#[tauri::command]
async fn network(shell: State<'_, Shell>) -> Result<NetworkView, ApiError> {
    typed(&shell, Request::Network).await
}

/// Builds the engine configuration from the command line and the app's default data dir.
fn node_config(app: &AppHandle, args: Args) -> Result<NodeConfig, ApiError> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => app.path().app_data_dir().map_err(|e| {
            ApiError::new(
                ErrorCode::Io,
                format!("cannot find the app data directory: {e}"),
            )
        })?,
    };
    std::fs::create_dir_all(&data_dir).map_err(|e| {
        ApiError::new(
            ErrorCode::Io,
            format!("cannot create {}: {e}", data_dir.display()),
        )
    })?;
    let mut cfg = NodeConfig::new(data_dir);
    if let Some(listen) = args.listen {
        cfg.listen = listen;
    }
    cfg.peers = args.peers;
    cfg.mdns = !args.no_mdns;
    cfg.beacon = !args.no_beacon;
    Ok(cfg)
}

/// Forwards engine events to the frontend until the engine stops.
async fn forward_events(app: AppHandle, mut events: broadcast::Receiver<EngineEvent>) {
    loop {
        match events.recv().await {
            Ok(event) => {
                if let Err(e) = app.emit(ENGINE_EVENT, &event) {
                    tracing::warn!("cannot emit engine event: {e}");
                }
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "frontend fell behind engine events; asking it to reload"
                );
                if let Err(e) = app.emit(ENGINE_LAGGED_EVENT, missed) {
                    tracing::warn!("cannot emit {ENGINE_LAGGED_EVENT}: {e}");
                }
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// Ends the app on SIGTERM or SIGINT so that `RunEvent::Exit` shuts the engine down cleanly.
async fn exit_on_signal(app: AppHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!("cannot listen for SIGTERM: {e}");
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: exiting"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: exiting"),
    }
    app.exit(0);
}

/// Starts the engine in the background and publishes the outcome to `slot`.
fn start_engine(app: &AppHandle, args: Args, slot: watch::Sender<EngineSlot>) {
    let cfg = match node_config(app, args) {
        Ok(cfg) => cfg,
        Err(e) => {
            tracing::error!(code = ?e.code, "engine not started: {}", e.message);
            slot.send_replace(Some(Err(e)));
            return;
        }
    };
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tracing::info!(data_dir = %cfg.data_dir.display(), mdns = cfg.mdns, "starting engine");
        let result = Engine::start(cfg).await;
        match &result {
            Ok(engine) => {
                tauri::async_runtime::spawn(forward_events(app, engine.subscribe()));
            }
            Err(e) => tracing::error!(code = ?e.code, "engine failed to start: {}", e.message),
        }
        slot.send_replace(Some(result));
    });
}

/// Stops the engine (if running) before the process exits.
fn shutdown_engine(app: &AppHandle) {
    let Some(engine) = app.try_state::<Shell>().and_then(|shell| shell.running()) else {
        return;
    };
    tracing::info!("stopping engine");
    tauri::async_runtime::block_on(async move {
        if tokio::time::timeout(SHUTDOWN_TIMEOUT, engine.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("engine shutdown timed out");
        }
    });
    tracing::info!("engine stopped");
}

/// Parses the command line, builds the Tauri app and runs it until the last window closes.
pub fn run() -> ExitCode {
    let args = Args::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();

    let (slot_tx, slot_rx) = watch::channel(None);
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        // Remembers the main window's size and position (maximized too) across runs.
        .plugin(
            tauri_plugin_window_state::Builder::new()
                .with_state_flags(
                    tauri_plugin_window_state::StateFlags::SIZE
                        | tauri_plugin_window_state::StateFlags::POSITION
                        | tauri_plugin_window_state::StateFlags::MAXIMIZED,
                )
                .build(),
        )
        .manage(Shell { engine: slot_rx })
        .invoke_handler(tauri::generate_handler![
            identity,
            set_name,
            join_room,
            leave_room,
            rooms,
            send,
            messages,
            peers,
            status,
            export,
            export_messages,
            backup_identity,
            send_dm,
            dm_log,
            network
        ])
        .setup(move |app| {
            start_engine(app.handle(), args, slot_tx);
            tauri::async_runtime::spawn(exit_on_signal(app.handle().clone()));
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            eprintln!("disasternet-app: cannot start the window: {e}");
            return ExitCode::FAILURE;
        }
    };
    app.run(|app, event| {
        if let RunEvent::Exit = event {
            shutdown_engine(app);
        }
    });
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_match_the_cli_options() {
        let args = Args::try_parse_from([
            "disasternet-app",
            "--data-dir",
            "/tmp/dn",
            "--listen",
            "127.0.0.1:7301",
            "--peer",
            "10.0.0.2:7300",
            "--peer",
            "10.0.0.3:7300",
            "--no-mdns",
            "--no-beacon",
            "--automation",
        ])
        .expect("valid arguments");
        assert_eq!(args.data_dir, Some(PathBuf::from("/tmp/dn")));
        assert_eq!(args.listen, Some(SocketAddr::from(([127, 0, 0, 1], 7301))));
        assert_eq!(args.peers, ["10.0.0.2:7300", "10.0.0.3:7300"]);
        assert!(args.no_mdns && args.no_beacon);
    }

    #[test]
    fn defaults_leave_the_engine_defaults() {
        let args = Args::try_parse_from(["disasternet-app"]).expect("no arguments");
        assert!(args.listen.is_none() && args.peers.is_empty() && !args.no_mdns);
    }

    /// The CLI finds the app's default data dir through `dn_node::APP_ID`; Tauri derives it
    /// from the bundle identifier. They must agree.
    #[test]
    fn bundle_identifier_is_the_engine_app_id() {
        let conf: serde_json::Value =
            serde_json::from_str(include_str!("../tauri.conf.json")).expect("tauri.conf.json");
        assert_eq!(conf["identifier"], dn_node::APP_ID);
    }
}
