//! The `disasternet` binary end to end on offline data dirs: identity backup and restore,
//! export formats.

#![allow(clippy::unwrap_used)]
use std::path::Path;
use std::process::{Command, Output};

fn dn(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_disasternet"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = dn(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn backup_restore_and_export_formats() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    let b = t.path().join("b");
    let id_a = ok(&a, &["init", "--name", "Ana, \"medic\""]);
    let id_b = ok(&b, &["id"]);
    ok(&a, &["room", "join", "medical"]);
    ok(
        &a,
        &[
            "send",
            "--room",
            "medical",
            "<script>x</script>, \"two\"\nlines",
        ],
    );

    let backup = t.path().join("ana.key");
    let backup_s = backup.to_str().unwrap();
    let out = dn(&a, &["identity", "backup", "--out", backup_s]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("IS your identity"));
    #[cfg(unix)]
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&backup).unwrap().permissions())
            & 0o777,
        0o600
    );

    // A corrupt backup changes nothing.
    let bad = t.path().join("bad.key");
    std::fs::write(&bad, "# nothing here\n").unwrap();
    assert!(!dn(&b, &["identity", "restore", bad.to_str().unwrap()])
        .status
        .success());
    assert_eq!(ok(&b, &["id"]), id_b);

    let out = ok(&b, &["identity", "restore", backup_s]);
    assert!(out.contains("identity.key.replaced-"), "{out}");
    let ida = ok(&a, &["id"]);
    assert_eq!(ok(&b, &["id"]), ida);
    assert!(id_a.contains(ida.trim()), "{id_a} / {ida}");

    for (fmt, check) in [
        ("jsonl", "\"signed\""),
        (
            "csv",
            "timestamp_utc,room,author_name,author_fingerprint,body,id,urgent\r\n",
        ),
        ("html", "&lt;script&gt;x&lt;/script&gt;"),
    ] {
        let f = t.path().join(format!("medical.{fmt}"));
        let fs = f.to_str().unwrap();
        ok(
            &a,
            &["export", "--room", "medical", "--format", fmt, "--out", fs],
        );
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.contains(check), "{fmt}: {text}");
        if fmt == "csv" {
            assert!(text.contains("\"Ana, \"\"medic\"\"\""), "{text}");
            assert!(
                text.contains("\"<script>x</script>, \"\"two\"\"\nlines\""),
                "{text}"
            );
        }
        if fmt == "html" {
            assert!(!text.contains("<script>"));
        }
        if fmt == "jsonl" {
            ok(t.path(), &["verify", fs]);
        }
    }
}
