//! The `disasternet` exit statuses by error class, and `--json` errors on stdout.

#![allow(clippy::unwrap_used)]
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn dn(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_disasternet"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

/// Runs with `--json`; checks the exit status and the `{"error": {code, message}}` on stdout.
fn json_error(dir: &Path, args: &[&str], status: i32, code: &str) -> String {
    let mut all = args.to_vec();
    all.push("--json");
    let out = dn(dir, &all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(status), "{args:?}: {stdout}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["error"]["code"], code, "{v}");
    let message = v["error"]["message"].as_str().unwrap().to_string();
    assert!(!message.is_empty(), "{v}");
    message
}

#[test]
fn exit_status_encodes_the_error_class() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("node");
    // invalid input → 2 (the engine refuses the room name; the CLI refuses a dm without text).
    json_error(&d, &["room", "join", ""], 2, "invalid_input");
    json_error(&d, &["dm", "--to", &"ab".repeat(32)], 2, "invalid_input");
    // no display name → 7.
    assert!(dn(&d, &["room", "join", "medical"]).status.success());
    let m = json_error(&d, &["send", "--room", "medical", "hello"], 7, "no_name");
    assert!(m.to_lowercase().contains("name"), "{m}");
    // not found → 6 (a data directory without a store).
    json_error(&t.path().join("empty"), &["salvage"], 6, "not_found");
    // Without --json: the message on stderr, nothing on stdout, same status.
    let out = dn(&d, &["room", "join", ""]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
    // Usage errors stay 2, success 0.
    assert_eq!(dn(&d, &["no-such-command"]).status.code(), Some(2));
    assert_eq!(dn(&d, &["id"]).status.code(), Some(0));
}

#[test]
fn help_lists_the_exit_statuses() {
    let t = tempfile::tempdir().unwrap();
    let out = dn(t.path(), &["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Exit status:"), "{help}");
    assert!(help.contains("  3  busy"), "{help}");
}

#[test]
fn busy_data_dir_is_status_3() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("node");
    let mut node = Command::new(env!("CARGO_BIN_EXE_disasternet"))
        .arg("--data-dir")
        .arg(&d)
        .args([
            "node",
            "--listen",
            "127.0.0.1:0",
            "--no-mdns",
            "--no-beacon",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let running = loop {
        let out = dn(&d, &["status", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if v["running"] == true {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let busy = running.then(|| json_error(&d, &["salvage"], 3, "busy"));
    node.kill().unwrap();
    node.wait().unwrap();
    assert!(running, "the node did not start");
    assert!(busy.unwrap().contains("stop it before"));
}
