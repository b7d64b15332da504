//! Where `disasternet` keeps its data when no `--data-dir` is given: the platform's app-data
//! directory (on Linux the XDG one, the same path the app and earlier versions used).

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]
use std::path::Path;
use std::process::Command;

/// Runs `disasternet id` with only the given environment (plus PATH), no `--data-dir`.
fn id(env: &[(&str, &Path)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_disasternet"));
    c.env_clear().arg("id");
    if let Some(path) = std::env::var_os("PATH") {
        c.env("PATH", path);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn default_data_dir_follows_xdg_then_home() {
    let t = tempfile::tempdir().unwrap();
    let (xdg, home) = (t.path().join("xdg"), t.path().join("home"));
    std::fs::create_dir_all(&home).unwrap();

    let out = id(&[("XDG_DATA_HOME", &xdg), ("HOME", &home)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(xdg.join("org.disasternet.app/identity.key").is_file());

    let out = id(&[("HOME", &home)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(home
        .join(".local/share/org.disasternet.app/identity.key")
        .is_file());

    // A relative XDG_DATA_HOME is not a base directory (XDG spec): HOME's default is used.
    let out = id(&[("XDG_DATA_HOME", Path::new("rel")), ("HOME", &home)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!Path::new("rel").exists());
}
