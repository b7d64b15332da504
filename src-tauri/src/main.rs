//! DisasterNet desktop app entry point: everything lives in the library (`lib.rs`).

// No console window on Windows release builds (harmless elsewhere).
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    disasternet_app_lib::run()
}
