//! The node key: an Ed25519 key pair kept in `identity.key` in the data directory (64 hex
//! characters of the secret key, file mode 0600). Created on first start, never overwritten.

use std::fs;
use std::io::Write;
use std::path::Path;

use dn_proto::NodeId;
use ed25519_dalek::SigningKey;
use rand_core::OsRng;

use crate::api::{ApiError, ErrorCode};
use crate::fsutil;

/// File name of the key inside the data directory.
pub const KEY_FILE: &str = "identity.key";

/// Loads the node key from `data_dir`, creating it (and the directory) on first start.
pub fn load_or_create(data_dir: &Path) -> Result<SigningKey, ApiError> {
    let path = data_dir.join(KEY_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim()).map_err(|_| corrupt(&path))?;
            let secret: [u8; 32] = bytes.try_into().map_err(|_| corrupt(&path))?;
            // Tighten permissions if someone loosened them.
            if let Err(e) = fsutil::tighten(&path, fsutil::PRIVATE_FILE_MODE) {
                tracing::warn!("cannot tighten {}: {e}", path.display());
            }
            Ok(SigningKey::from_bytes(&secret))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fsutil::create_private_dir(data_dir).map_err(|e| io_err(data_dir, &e))?;
            let key = SigningKey::generate(&mut OsRng);
            // A fresh 0600 temporary file (exclusive, random name, no symlink followed),
            // synced, then renamed into place.
            fsutil::write_private_atomic(
                &path,
                format!("{}\n", hex::encode(key.to_bytes())).as_bytes(),
            )
            .map_err(|e| io_err(&path, &e))?;
            tracing::info!(id = %NodeId(key.verifying_key().to_bytes()), "created new node identity");
            Ok(key)
        }
        Err(e) => Err(io_err(&path, &e)),
    }
}

/// First line of an identity backup file (the second line is the 64-hex secret key).
pub const BACKUP_HEADER: &str = "# DisasterNet identity backup — this file IS your identity; anyone holding it can sign as you. Keep it safe.";

/// Writes `key` as a backup file at `path`: [`BACKUP_HEADER`], newline, 64 hex characters of
/// the secret key, newline. Mode 0600 from creation: written to a new temporary file with a
/// random name beside `path` (created exclusively, never through a symlink), synced, then
/// renamed into place.
pub fn write_backup(key: &SigningKey, path: &Path) -> Result<(), ApiError> {
    if path.file_name().is_none() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("{} is not a file path", path.display()),
        ));
    }
    let text = format!("{BACKUP_HEADER}\n{}\n", hex::encode(key.to_bytes()));
    fsutil::write_private_atomic(path, text.as_bytes()).map_err(|e| io_err(path, &e))
}

/// Parses a backup (or a plain `identity.key`): lines starting with `#` and blank lines are
/// ignored; exactly one line of 64 hex characters must remain.
pub fn parse_backup(text: &str) -> Result<SigningKey, String> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return Err("expected exactly one line of 64 hex characters".into());
    };
    let secret: [u8; 32] = hex::decode(line)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "the key line is not 64 hex characters".to_string())?;
    Ok(SigningKey::from_bytes(&secret))
}

/// Largest file accepted as a backup (a real one is about 300 bytes).
pub const MAX_BACKUP_BYTES: u64 = 64 * 1024;

/// Reads and validates a backup file (or a plain `identity.key`) without changing anything.
pub fn read_backup(backup: &Path) -> Result<SigningKey, ApiError> {
    let not_backup = |e: &dyn std::fmt::Display| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "{} is not a DisasterNet identity backup: {e}",
                backup.display()
            ),
        )
    };
    let len = fs::metadata(backup).map_err(|e| io_err(backup, &e))?.len();
    if len > MAX_BACKUP_BYTES {
        return Err(not_backup(&format!("{len} bytes is far too large")));
    }
    let text = fs::read_to_string(backup).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => not_backup(&"not text"),
        _ => io_err(backup, &e),
    })?;
    if crate::atrest::backup_record(&text).is_some() {
        return Err(ApiError::new(
            ErrorCode::Locked,
            format!(
                "{} is a backup locked with a passphrase: give its passphrase to restore it",
                backup.display()
            ),
        ));
    }
    parse_backup(&text).map_err(|e| not_backup(&e))
}

/// Reads a backup, plain or locked: a locked one is opened with `passphrase` (`locked` when
/// none is given, `wrong_passphrase` when it does not open it). Changes nothing.
pub fn read_any_backup(
    backup: &Path,
    passphrase: Option<&crate::atrest::Passphrase>,
) -> Result<SigningKey, ApiError> {
    match read_backup(backup) {
        Err(e) if e.code == ErrorCode::Locked => {
            let text = fs::read_to_string(backup).map_err(|e| io_err(backup, &e))?;
            let record = crate::atrest::backup_record(&text)
                .ok_or_else(|| e.clone())?
                .map_err(|why| {
                    ApiError::new(
                        ErrorCode::InvalidInput,
                        format!("{}: damaged locked backup: {why}", backup.display()),
                    )
                })?;
            let pass = passphrase.ok_or(e)?;
            crate::atrest::unseal_backup(&record, pass)
        }
        other => other,
    }
}

/// The node id a backup holds, plain or locked (a locked backup names its id in clear), without
/// a passphrase and without changing anything.
pub fn backup_id(backup: &Path) -> Result<NodeId, ApiError> {
    match read_backup(backup) {
        Ok(k) => Ok(node_id(&k)),
        Err(e) if e.code == ErrorCode::Locked => {
            let text = fs::read_to_string(backup).map_err(|e| io_err(backup, &e))?;
            match crate::atrest::backup_record(&text) {
                Some(Ok(r)) => Ok(r.id),
                _ => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Replaces the key in `data_dir` with the one in the backup file `backup`. The backup is
/// validated first (a bad one changes nothing). A previous key different from the restored one
/// is kept as `identity.key.replaced-<unix ms>`. The caller must hold the data dir's lock.
/// Returns the restored key and where the previous key was kept.
pub fn restore(
    data_dir: &Path,
    backup: &Path,
    now_ms: u64,
) -> Result<(SigningKey, Option<std::path::PathBuf>), ApiError> {
    let key = read_backup(backup)?;
    if crate::atrest::is_locked(data_dir)? {
        // A plain key file would orphan the encrypted store: that restore needs the passphrase
        // (`crate::restore_identity_with`).
        return Err(crate::atrest::locked_error(data_dir));
    }
    let text = crate::atrest::plain_key_file(&key);
    let kept = install_key(data_dir, &key, &text, now_ms)?;
    Ok((key, kept))
}

/// Puts `text` (the key file for `key`: hex, or a locked record) in place of the data dir's
/// `identity.key`, unless that file already holds the same identity (`Ok(None)`). A previous,
/// different key file is kept as `identity.key.replaced-<now_ms>` (its path is returned). The
/// caller must hold the data dir's lock.
pub fn install_key(
    data_dir: &Path,
    key: &SigningKey,
    text: &str,
    now_ms: u64,
) -> Result<Option<std::path::PathBuf>, ApiError> {
    let path = data_dir.join(KEY_FILE);
    let previous = match fs::read_to_string(&path) {
        Ok(old) => Some(old),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(&path, &e)),
    };
    let previous_id = |old: &str| {
        if crate::atrest::Record::is_record(old) {
            crate::atrest::Record::parse(old).ok().map(|r| r.id)
        } else {
            parse_backup(old).ok().map(|k| node_id(&k))
        }
    };
    if previous
        .as_deref()
        .and_then(previous_id)
        .is_some_and(|old| old == node_id(key))
    {
        return Ok(None);
    }
    fsutil::create_private_dir(data_dir).map_err(|e| io_err(data_dir, &e))?;
    let (mut f, tmp) = fsutil::create_temp_beside(&path).map_err(|e| io_err(&path, &e))?;
    if let Err(e) = f.write_all(text.as_bytes()).and_then(|()| f.sync_all()) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&tmp, &e));
    }
    drop(f);
    // Keep the previous key (a second name for the same file) before the new one replaces it,
    // so a crash at any point leaves either key reachable.
    let kept = if previous.is_some() {
        let kept = data_dir.join(format!("{KEY_FILE}.replaced-{now_ms}"));
        if let Err(e) = fs::hard_link(&path, &kept) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&kept, &e));
        }
        Some(kept)
    } else {
        None
    };
    if let Err(e) = fs::rename(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&path, &e));
    }
    fsutil::sync_parent(&path);
    tracing::info!(id = %node_id(key), "restored node identity from a backup");
    Ok(kept)
}

/// The node id of a key.
pub fn node_id(key: &SigningKey) -> NodeId {
    NodeId(key.verifying_key().to_bytes())
}

fn corrupt(path: &Path) -> ApiError {
    ApiError::new(
        ErrorCode::Storage,
        format!(
            "identity file {} is damaged (expected 64 hex characters); it was left untouched — \
             restore it from your backup",
            path.display()
        ),
    )
}

fn io_err(path: &Path, e: &std::io::Error) -> ApiError {
    ApiError::new(ErrorCode::Io, format!("{}: {e}", path.display()))
}

// File modes and symlinks: Unix only (Windows protects the data dir by the profile's ACL).
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_once_then_reloaded_with_owner_only_mode() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn damaged_key_is_an_error_and_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), "not a key").unwrap();
        let e = load_or_create(dir.path()).unwrap_err();
        assert!(e.message.contains("damaged"));
        assert_eq!(
            fs::read_to_string(dir.path().join(KEY_FILE)).unwrap(),
            "not a key"
        );
    }

    #[test]
    fn backup_then_restore_roundtrip_keeps_the_replaced_key() {
        let a = tempfile::tempdir().unwrap();
        let key = load_or_create(a.path()).unwrap();
        let file = a.path().join("me.dnkey");
        write_backup(&key, &file).unwrap();
        let text = fs::read_to_string(&file).unwrap();
        assert!(text.starts_with(&format!("{BACKUP_HEADER}\n")));
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );

        let b = tempfile::tempdir().unwrap();
        let other = load_or_create(b.path()).unwrap();
        let old_text = fs::read_to_string(b.path().join(KEY_FILE)).unwrap();
        let (restored, kept) = restore(b.path(), &file, 1234).unwrap();
        assert_eq!(restored.to_bytes(), key.to_bytes());
        assert_eq!(load_or_create(b.path()).unwrap().to_bytes(), key.to_bytes());
        let kept = kept.unwrap();
        assert_eq!(kept, b.path().join("identity.key.replaced-1234"));
        assert_eq!(fs::read_to_string(&kept).unwrap(), old_text);
        assert_ne!(other.to_bytes(), key.to_bytes());
        assert_eq!(
            fs::metadata(b.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        // Restoring the same identity again changes nothing.
        assert_eq!(restore(b.path(), &file, 5678).unwrap().1, None);
        // Into an empty data dir: nothing to keep.
        let c = tempfile::tempdir().unwrap();
        assert_eq!(restore(c.path(), &file, 1).unwrap().1, None);
        assert_eq!(load_or_create(c.path()).unwrap().to_bytes(), key.to_bytes());
    }

    #[test]
    fn corrupt_backup_is_refused_and_the_key_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path()).unwrap();
        let before = fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
        let bad = dir.path().join("bad");
        for text in [
            "",
            "# header only\n",
            &format!("{BACKUP_HEADER}\nzz{}\n", "0".repeat(62)),
            &format!("{BACKUP_HEADER}\n{}\n", "0".repeat(60)),
            &format!("{}\n{}\n", "1".repeat(64), "2".repeat(64)),
        ] {
            fs::write(&bad, text).unwrap();
            let e = restore(dir.path(), &bad, 99).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidInput, "{text:?}");
        }
        assert!(restore(dir.path(), &dir.path().join("missing"), 99).is_err());
        assert_eq!(
            fs::read_to_string(dir.path().join(KEY_FILE)).unwrap(),
            before
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.contains("replaced")), "{names:?}");
    }

    #[test]
    fn new_data_dir_is_private_and_backups_never_write_through_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("fresh");
        let key = load_or_create(&data).unwrap();
        assert_eq!(
            fs::metadata(&data).unwrap().permissions().mode() & 0o777,
            0o700
        );
        // A symlink planted at the backup path (or at the old fixed temp name) is replaced
        // or ignored, never written through.
        let victim = t.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        let out = t.path().join("me.dnkey");
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        std::os::unix::fs::symlink(&victim, t.path().join(".me.dnkey.partial")).unwrap();
        write_backup(&key, &out).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        assert!(fs::symlink_metadata(&out).unwrap().is_file());
        assert_eq!(read_backup(&out).unwrap().to_bytes(), key.to_bytes());
        // A loosened key file is tightened at the next load.
        let kf = data.join(KEY_FILE);
        fs::set_permissions(&kf, fs::Permissions::from_mode(0o644)).unwrap();
        load_or_create(&data).unwrap();
        assert_eq!(
            fs::metadata(&kf).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
