//! DisasterNet desktop shell: a thin Tauri v2 adapter around the `dn-node` engine.
//!
//! How the pieces fit:
//! - [`Args`] reads `--data-dir` (or `DISASTERNET_DATA_DIR`, else [`dn_node::default_data_dir`],
//!   the same default as the CLI) and the node options shared with `disasternet node`
//!   ([`dn_node::NodeOptions`]: `--listen`, `--peer`, `--no-mdns`, `--no-beacon`,
//!   `--carry-quota-mb`, `--relay`); logging and the stop signals come from `dn-node` as well.
//! - Logs go to stderr and to `app.log` in the data directory (owner-only, rotated, capped per
//!   run): a release app on Windows has no console. An error that stops the app before its
//!   window can say anything (bad arguments, no WebView) is also shown in a native message box
//!   on Windows ([`fatal`]); engine start errors are shown by the window itself.
//! - Single instance per data directory: before any window opens, the app asks whatever runs
//!   on the data dir (through its control socket, `Request::Activate`) to show itself. If that
//!   is the app, its window comes to the front and this process exits; if it is a headless
//!   `disasternet node`, the window opens and says so.
//! - `setup` starts the [`Engine`] on Tauri's async runtime without blocking the window and
//!   publishes the outcome (engine or [`ApiError`]) in a `watch` channel held by [`Shell`].
//! - Engine requests go through ONE Tauri command, `engine` (argument `request`: the tagged
//!   `dn_node::api::Request`), which awaits that outcome and returns the request's JSON answer
//!   or an [`ApiError`] (`{ code, message }` in the frontend). The requests and their answer
//!   types are defined once in `dn_node::api`; the UI's typed functions are generated from
//!   that definition (`ui/src/bindings/api.ts`). If the engine could not start (e.g. `busy`:
//!   another node owns the data dir) every request gets that error and the UI shows it.
//! - `restore_identity` checks the backup, stops the engine, swaps the key (the engine's
//!   `restore_identity`, which keeps the old key) and starts the engine again; commands issued
//!   meanwhile wait for it, and the frontend gets `"engine-restarted"`.
//! - A data directory locked with a passphrase (docs/security.md "At rest") does not start the
//!   engine at launch: the UI asks `unlock_status`, shows its unlock screen and calls `unlock`
//!   (a Tauri command, not an engine request: there is no engine yet) with the passphrase; a
//!   wrong one leaves the app waiting for another try. Engine requests wait until then.
//! - One task forwards `engine.subscribe()` to the frontend as the Tauri event `"engine"`
//!   (payload: the `EngineEvent` JSON), except `Activate`, which shows the window. If the
//!   frontend falls behind the broadcast channel it gets `"engine-lagged"` and reloads its state.
//! - SIGTERM/SIGINT and window close end the app through `RunEvent::Exit`, which shuts the engine
//!   down cleanly.
//! - Plugins: the native save/open dialogs, desktop notifications (the UI decides when, see
//!   `ui/src/lib/notify.ts`) and the window state (size and position remembered).
//!
//! No business logic lives here; the UI (`ui/`) and the engine (`crates/dn-node`) own it.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;
use dn_node::api::{calls, ApiError, EngineEvent, ErrorCode, Request, RestoreSummary};
use dn_node::{Engine, NodeConfig, NodeOptions};
use tauri::{AppHandle, Emitter, Manager, RunEvent, State};
use tokio::sync::{broadcast, watch};

/// Name of the Tauri event carrying every [`EngineEvent`].
const ENGINE_EVENT: &str = "engine";
/// Emitted (payload: number of dropped events) when the frontend missed engine events.
const ENGINE_LAGGED_EVENT: &str = "engine-lagged";
/// Emitted (payload: the new node id) when the engine restarted with another identity.
const ENGINE_RESTARTED_EVENT: &str = "engine-restarted";
/// Label of the app's one window (tauri.conf.json).
const MAIN_WINDOW: &str = "main";
/// Longest wait for a clean engine shutdown when the app exits.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Command-line options. Same meaning as the `disasternet` CLI's global options.
#[derive(Debug, Parser)]
#[command(name = "disasternet-app", version, about = "DisasterNet desktop app")]
struct Args {
    /// Data directory (identity, message store). Default: the platform's app data dir.
    #[arg(long, env = "DISASTERNET_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The node's options, shared with `disasternet node`.
    #[command(flatten)]
    node: NodeOptions,
    /// Added by WebKitWebDriver when it launches the app under test; ignored.
    #[arg(long, hide = true)]
    automation: bool,
}

/// Outcome of starting the engine: `None` while it is still starting.
type EngineSlot = Option<Result<Engine, ApiError>>;

/// Managed state: the engine once started (or why it could not start), and what is needed to
/// restart it in place.
struct Shell {
    engine: watch::Receiver<EngineSlot>,
    slot: watch::Sender<EngineSlot>,
    /// How the engine was started (absent when the configuration itself failed).
    cfg: Option<NodeConfig>,
    /// Held while the engine is stopped and restarted (identity restore, unlock).
    restart: tokio::sync::Mutex<()>,
    /// The data directory is locked and the engine waits for [`unlock`].
    waiting_for_passphrase: std::sync::atomic::AtomicBool,
    /// The passphrase the engine was unlocked with (to restart it after an identity restore).
    passphrase: std::sync::Mutex<Option<dn_node::atrest::Passphrase>>,
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

/// Runs any engine request (the tagged [`Request`], defined once in `dn_node::api`) and
/// returns its JSON answer. The UI calls it through the generated `ui/src/bindings/api.ts`
/// (one typed function per request); its name is [`dn_node::api::ENGINE_COMMAND`].
#[tauri::command]
async fn engine(shell: State<'_, Shell>, request: Request) -> Result<serde_json::Value, ApiError> {
    // The passphrase the engine restarts with (after an identity restore) follows the lock.
    let follows = match &request {
        Request::SetPassphrase { passphrase } => Some(Some(passphrase.clone())),
        Request::ChangePassphrase { new, .. } => Some(Some(new.clone())),
        Request::RemovePassphrase { .. } => Some(None),
        _ => None,
    };
    let answer = shell.engine().await?.request(request).await?;
    if let (Some(next), Ok(mut p)) = (follows, shell.passphrase.lock()) {
        *p = next.map(dn_node::atrest::Passphrase::new);
    }
    Ok(answer)
}

/// Builds the engine configuration from the command line (data dir: `--data-dir`, else the
/// default shared with the CLI, [`dn_node::default_data_dir`]).
fn node_config(args: &Args) -> Result<NodeConfig, ApiError> {
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => dn_node::default_data_dir()?,
    };
    dn_node::fsutil::create_private_dir(&data_dir).map_err(|e| {
        ApiError::new(
            ErrorCode::Io,
            format!("cannot create {}: {e}", data_dir.display()),
        )
    })?;
    let mut cfg = args.node.config(data_dir);
    cfg.window = true;
    Ok(cfg)
}

/// What to do about another program already running a node on the data directory.
enum Instance {
    /// Nothing runs there: start the engine.
    First,
    /// The app runs there and now shows its window: this process has nothing to do.
    Activated,
    /// A headless `disasternet node` runs there: show why the app cannot start.
    Headless(ApiError),
}

/// Single instance per data directory: asks a program already running there to show itself.
fn check_instance(cfg: &NodeConfig) -> Instance {
    let dir = &cfg.data_dir;
    match tauri::async_runtime::block_on(dn_node::activate_running(dir)) {
        Ok(None) => Instance::First,
        Ok(Some(v)) if v.window => Instance::Activated,
        Ok(Some(_)) => Instance::Headless(ApiError::new(
            ErrorCode::Busy,
            format!(
                "a headless DisasterNet node (`disasternet node`) is running on {}: stop it, \
                 or start the app with another --data-dir",
                dir.display()
            ),
        )),
        Err(e) => {
            tracing::warn!(
                "cannot ask the program running on {} to show itself: {}",
                dir.display(),
                e.message
            );
            Instance::First
        }
    }
}

/// Brings the main window to the front (another start of the app asked for it).
fn show_window(app: &AppHandle) {
    let Some(window) = app.get_webview_window(MAIN_WINDOW) else {
        return;
    };
    for (what, r) in [
        ("unminimize", window.unminimize()),
        ("show", window.show()),
        ("focus", window.set_focus()),
    ] {
        if let Err(e) = r {
            tracing::warn!("cannot {what} the window: {e}");
        }
    }
}

/// Forwards engine events to the frontend until the engine stops.
async fn forward_events(app: AppHandle, mut events: broadcast::Receiver<EngineEvent>) {
    loop {
        match events.recv().await {
            Ok(EngineEvent::Activate) => show_window(&app),
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
    dn_node::shutdown_signal().await;
    app.exit(0);
}

/// Starts the engine and forwards its events to the frontend.
async fn start_engine(app: AppHandle, cfg: NodeConfig) -> Result<Engine, ApiError> {
    tracing::info!(data_dir = %cfg.data_dir.display(), mdns = cfg.mdns, "starting engine");
    let result = Engine::start(cfg).await;
    match &result {
        Ok(engine) => {
            tauri::async_runtime::spawn(forward_events(app, engine.subscribe()));
        }
        Err(e) => tracing::error!(code = ?e.code, "engine failed to start: {}", e.message),
    }
    result
}

/// Replaces this node's identity with a backup: checks the file, stops the engine, swaps the
/// key (the old one is kept next to it, see `dn_node::restore_identity`), and starts the engine
/// again — with the old key if the swap failed. The frontend gets `engine-restarted` and
/// reloads; commands issued meanwhile wait for the new engine.
#[tauri::command]
async fn restore_identity(
    app: AppHandle,
    shell: State<'_, Shell>,
    path: String,
) -> Result<RestoreSummary, ApiError> {
    let _one_at_a_time = shell.restart.lock().await;
    let mut cfg = shell
        .cfg
        .clone()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the engine has no configuration"))?;
    cfg.passphrase = shell.passphrase.lock().ok().and_then(|p| p.clone());
    let pass = cfg.passphrase.clone();
    let backup = PathBuf::from(&path);
    let new_id = dn_node::check_backup(&backup)?;
    let engine = shell.engine().await?;
    if engine.call(calls::Identity).await?.id == new_id {
        return Ok(RestoreSummary {
            id: new_id,
            previous_key: None,
        });
    }
    tracing::info!("restoring an identity backup: stopping the engine");
    shell.slot.send_replace(None);
    engine.shutdown().await;
    drop(engine);
    let dir = cfg.data_dir.clone();
    // A locked backup is tried with this data directory's passphrase.
    let restored = tauri::async_runtime::spawn_blocking(move || {
        dn_node::restore_identity_with(&dir, &backup, pass.as_ref(), pass.as_ref())
    })
    .await
    .map_err(|e| ApiError::new(ErrorCode::Internal, format!("restore task: {e}")))
    .and_then(|r| r);
    let started = start_engine(app.clone(), cfg).await;
    let running = started.is_ok();
    shell.slot.send_replace(Some(started));
    if running {
        let id = restored
            .as_ref()
            .map_or_else(|_| String::new(), |r| r.id.clone());
        if let Err(e) = app.emit(ENGINE_RESTARTED_EVENT, id) {
            tracing::warn!("cannot emit {ENGINE_RESTARTED_EVENT}: {e}");
        }
    }
    restored
}

/// True while the data directory is locked and the engine waits for [`unlock`].
#[tauri::command]
async fn unlock_status(shell: State<'_, Shell>) -> Result<bool, ApiError> {
    Ok(shell
        .waiting_for_passphrase
        .load(std::sync::atomic::Ordering::SeqCst))
}

/// Starts the engine of a locked data directory with `passphrase`. A wrong one is
/// `wrong_passphrase` and the app keeps waiting (nothing changed on disk); any other start
/// error is published to every request, as at launch.
#[tauri::command]
async fn unlock(
    app: AppHandle,
    shell: State<'_, Shell>,
    passphrase: String,
) -> Result<(), ApiError> {
    use std::sync::atomic::Ordering;
    let _one_at_a_time = shell.restart.lock().await;
    if !shell.waiting_for_passphrase.load(Ordering::SeqCst) {
        return Ok(());
    }
    let mut cfg = shell
        .cfg
        .clone()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the engine has no configuration"))?;
    let pass = dn_node::atrest::Passphrase::new(passphrase);
    cfg.passphrase = Some(pass.clone());
    match start_engine(app, cfg).await {
        Err(e) if matches!(e.code, ErrorCode::WrongPassphrase | ErrorCode::Locked) => Err(e),
        result => {
            let started = result.as_ref().map(|_| ()).map_err(Clone::clone);
            if started.is_ok() {
                if let Ok(mut p) = shell.passphrase.lock() {
                    *p = Some(pass);
                }
            }
            shell.waiting_for_passphrase.store(false, Ordering::SeqCst);
            shell.slot.send_replace(Some(result));
            started
        }
    }
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

/// Turns off WebKitGTK's accelerated compositing unless the user chose otherwise
/// (`WEBKIT_DISABLE_COMPOSITING_MODE=0` keeps it on). Without a GPU driver (VMs, old laptops,
/// Xvfb) compositing runs on Mesa's software rasterizer: the first frame came 0.5–0.9 s after
/// the page was ready and the app held ~100 MiB more (docs/benchmarks.md, section 6). Must run
/// before GTK/WebKit start and before any thread exists; WebKit's helper processes inherit it.
#[cfg(target_os = "linux")]
fn prefer_non_composited_rendering() {
    const VAR: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";
    if std::env::var_os(VAR).is_none() {
        std::env::set_var(VAR, "1");
    }
}
#[cfg(not(target_os = "linux"))]
fn prefer_non_composited_rendering() {}

/// The app's log file in its data directory (see [`dn_node::init_tracing_to`]).
const LOG_FILE: &str = "app.log";

/// Reports an error that stops the app before its window can show anything: on stderr, in
/// the log, and, on Windows (where a release app has no console), in a message box naming the
/// log file. Returns the exit status.
fn fatal(message: &str, log_file: Option<&std::path::Path>) -> ExitCode {
    eprintln!("disasternet-app: {message}");
    tracing::error!("{message}");
    let details = log_file.map_or_else(String::new, |p| {
        format!("\n\nDetails are in the log file:\n{}", p.display())
    });
    message_box(&format!(
        "DisasterNet could not start.\n\n{message}{details}"
    ));
    ExitCode::FAILURE
}

/// A native error message box (Windows only: elsewhere stderr and the log are read).
#[cfg(windows)]
fn message_box(text: &str) {
    let _ = rfd::MessageDialog::new()
        .set_level(rfd::MessageLevel::Error)
        .set_title("DisasterNet")
        .set_description(text)
        .set_buttons(rfd::MessageButtons::Ok)
        .show();
}

#[cfg(not(windows))]
fn message_box(_text: &str) {}

/// Panics go to the log file too (the default hook still prints them on stderr).
fn log_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!("panic: {info}");
        default(info);
    }));
}

/// Parses the command line, builds the Tauri app and runs it until the last window closes.
pub fn run() -> ExitCode {
    prefer_non_composited_rendering();
    let args = match Args::try_parse() {
        Ok(args) => args,
        // --help and --version print and exit 0; bad arguments are a start error.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => return fatal(&e.to_string(), None),
    };
    let config = node_config(&args);
    let log_file = config.as_ref().ok().map(|c| c.data_dir.join(LOG_FILE));
    dn_node::init_tracing_to(log_file.as_deref());
    log_panics();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        log = ?log_file,
        "DisasterNet app starting"
    );

    // Before any window: if the app already runs on this data dir, bring it to the front.
    let (cfg, start) = match config {
        Ok(cfg) => match check_instance(&cfg) {
            Instance::Activated => {
                eprintln!(
                    "disasternet-app: already running on {}; brought its window to the front",
                    cfg.data_dir.display()
                );
                return ExitCode::SUCCESS;
            }
            Instance::Headless(e) => (Some(cfg), Err(e)),
            Instance::First => (Some(cfg.clone()), Ok(cfg)),
        },
        Err(e) => (None, Err(e)),
    };
    // Commands see a start error at once; otherwise they wait for the engine.
    let first_slot = start.as_ref().err().map(|e| Err(e.clone()));
    let (slot_tx, slot_rx) = watch::channel(first_slot);
    let shell = Shell {
        engine: slot_rx,
        slot: slot_tx,
        cfg,
        restart: tokio::sync::Mutex::new(()),
        waiting_for_passphrase: std::sync::atomic::AtomicBool::new(false),
        passphrase: std::sync::Mutex::new(None),
    };
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
        .manage(shell)
        .invoke_handler(tauri::generate_handler![
            engine,
            restore_identity,
            unlock_status,
            unlock
        ])
        .setup(move |app| {
            match start {
                // Locked: the engine starts when the UI's unlock screen gives the passphrase.
                Ok(cfg) if dn_node::atrest::is_locked(&cfg.data_dir).unwrap_or(false) => {
                    tracing::info!("the data directory is locked: waiting for the passphrase");
                    app.state::<Shell>()
                        .waiting_for_passphrase
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                }
                Ok(cfg) => {
                    let handle = app.handle().clone();
                    tauri::async_runtime::spawn(async move {
                        let result = start_engine(handle.clone(), cfg).await;
                        handle.state::<Shell>().slot.send_replace(Some(result));
                    });
                }
                Err(e) => tracing::error!(code = ?e.code, "engine not started: {}", e.message),
            }
            tauri::async_runtime::spawn(exit_on_signal(app.handle().clone()));
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            return fatal(
                &format!("cannot start the window: {e}"),
                log_file.as_deref(),
            )
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
    use std::net::SocketAddr;

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
            "--carry-quota-mb",
            "2",
            "--automation",
        ])
        .expect("valid arguments");
        assert_eq!(args.data_dir, Some(PathBuf::from("/tmp/dn")));
        let cfg = node_config(&args).expect("config");
        assert_eq!(cfg.listen, SocketAddr::from(([127, 0, 0, 1], 7301)));
        assert_eq!(cfg.peers, ["10.0.0.2:7300", "10.0.0.3:7300"]);
        assert!(!cfg.mdns && !cfg.beacon && cfg.window);
        assert_eq!(cfg.carry_quota_bytes, 2 * 1024 * 1024);
    }

    /// The UI invokes the command by the name the generated bindings carry.
    #[test]
    fn engine_command_name_is_the_generated_one() {
        fn name_of<T>(_: T) -> &'static str {
            let full = std::any::type_name::<T>();
            full.rsplit("::").next().unwrap_or(full)
        }
        assert_eq!(name_of(engine), dn_node::api::ENGINE_COMMAND);
    }

    #[test]
    fn defaults_leave_the_engine_defaults() {
        let args = Args::try_parse_from(["disasternet-app"]).expect("no arguments");
        let n = &args.node;
        assert!(n.listen.is_none() && n.peers.is_empty() && !n.no_mdns && !n.relay);
        assert_eq!(
            n.config(std::path::PathBuf::from("/d")).carry_quota_bytes,
            dn_node::DEFAULT_CARRY_QUOTA_BYTES
        );
    }

    /// `tauri build` (`make package`) refuses to bundle when a Tauri crate and its npm package
    /// differ in major.minor version; catch that in `make test` instead.
    #[test]
    fn rust_crates_and_npm_packages_are_on_the_same_minor_versions() {
        let lock = include_str!("../../Cargo.lock");
        let npm: serde_json::Value =
            serde_json::from_str(include_str!("../../ui/package.json")).expect("ui/package.json");
        let minor = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
        for (krate, package) in [
            ("tauri", "@tauri-apps/api"),
            ("tauri-plugin-dialog", "@tauri-apps/plugin-dialog"),
            (
                "tauri-plugin-notification",
                "@tauri-apps/plugin-notification",
            ),
        ] {
            let header = format!("name = \"{krate}\"\nversion = \"");
            let at = lock
                .find(&header)
                .unwrap_or_else(|| panic!("{krate} not in Cargo.lock"));
            let rest = &lock[at + header.len()..];
            let rust = &rest[..rest.find('"').expect("version")];
            let js = npm["dependencies"][package]
                .as_str()
                .unwrap_or_else(|| panic!("{package} not in ui/package.json"));
            assert_eq!(
                minor(rust),
                minor(js.trim_start_matches(['^', '~'])),
                "{krate} {rust} vs {package} {js}"
            );
        }
    }

    /// macOS asks before an app uses the local network; the Info.plist names the mDNS service
    /// the engine announces (without the `.local.` domain).
    #[test]
    fn macos_info_plist_names_the_mdns_service() {
        let plist = include_str!("../Info.plist");
        let service = dn_node::discovery::SERVICE_TYPE.trim_end_matches(".local.");
        assert!(
            plist.contains(&format!("<string>{service}</string>")),
            "{service} not in Info.plist"
        );
        assert!(plist.contains("NSLocalNetworkUsageDescription"));
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
