//! Generates the Tauri context (config, ACL, icons) of the bare window.

fn main() {
    tauri_build::build();
}
