//! The node key: an Ed25519 key pair kept in `identity.key` in the data directory (64 hex
//! characters of the secret key, file mode 0600). Created on first start, never overwritten.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use dn_proto::NodeId;
use ed25519_dalek::SigningKey;
use rand_core::OsRng;

use crate::api::{ApiError, ErrorCode};

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
            if let Ok(meta) = fs::metadata(&path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o600));
                }
            }
            Ok(SigningKey::from_bytes(&secret))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(data_dir).map_err(|e| io_err(data_dir, &e))?;
            let key = SigningKey::generate(&mut OsRng);
            let tmp = data_dir.join(format!("{KEY_FILE}.tmp"));
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| io_err(&tmp, &e))?;
            f.write_all(format!("{}\n", hex::encode(key.to_bytes())).as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| io_err(&tmp, &e))?;
            fs::rename(&tmp, &path).map_err(|e| io_err(&path, &e))?;
            tracing::info!(id = %NodeId(key.verifying_key().to_bytes()), "created new node identity");
            Ok(key)
        }
        Err(e) => Err(io_err(&path, &e)),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
