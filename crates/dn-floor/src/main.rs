//! The desktop app's memory floor: a bare Tauri v2 window of the app's size showing an empty
//! page, with no engine and no UI code. `dn-bench` section 6 starts it the way it starts the
//! app (`tests/gui/bench-app.mjs`, `FLOOR_BIN`) and reads its memory by the same PSS method,
//! so the app's figure splits into this floor (Tauri, wry, WebKitGTK) and our share.
//! Not shipped: the bundle is the app's (`src-tauri/`).

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    if let Err(e) = tauri::Builder::default().run(tauri::generate_context!()) {
        eprintln!("dn-floor: {e}");
        std::process::exit(1);
    }
}
