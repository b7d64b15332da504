//! The local control channel: a Unix socket `control.sock` in the data directory (mode 0600,
//! owner only). Each line is one JSON [`Request`]; each answer one JSON line, either
//! `{"ok": <value>}` or `{"error": {"code": "...", "message": "..."}}`. The CLI uses it to reach
//! a running node (or the app) on the same data directory.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::{debug, warn};

use crate::api::{ApiError, ErrorCode, Request};
use crate::Engine;

/// File name of the socket inside the data directory.
pub const SOCKET_FILE: &str = "control.sock";
/// Longest request line accepted.
const MAX_LINE: usize = 64 * 1024;

/// One answer line.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Ok(Value),
    Error(ApiError),
}

/// Longest socket path we use directly (Linux allows 107 bytes plus the terminating NUL).
const MAX_SOCKET_PATH: usize = 100;

/// Path of the socket for a data directory: `<data_dir>/control.sock`, or, when that path is
/// too long for a Unix socket, `<runtime dir>/disasternet-<uid>/<hash of the data dir>.sock`
/// in a private (0700, owner-checked) directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    let direct = data_dir.join(SOCKET_FILE);
    if direct.as_os_str().len() <= MAX_SOCKET_PATH {
        return direct;
    }
    let canonical = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let digest = sha2::Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let uid = crate::fsutil::my_uid();
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    base.join(format!("disasternet-{uid}"))
        .join(format!("{}.sock", hex::encode(&digest[..12])))
}

/// Makes sure the directory the socket is bound in is a real directory owned by this user and
/// closed to everyone else (mode 0700) *before* the bind.
///
/// This is what makes the bind race-free: connecting to a Unix socket needs search permission
/// on its directory, so while the directory is private no other user can reach the socket in
/// the moment between `bind` (which creates it with the process umask) and the `chmod 0600`
/// that follows. The data directory is tightened to 0700 if it is looser; the runtime-dir
/// fallback (`<runtime dir>/disasternet-<uid>`) is created 0700 and refused when it already
/// exists but is not ours, is a symlink, or is open to group or others (another user could
/// otherwise pre-create it and read or replace our socket).
fn prepare_socket_dir(path: &Path, data_dir: &Path) -> std::io::Result<()> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    if dir == data_dir {
        // The user's own data dir may be a symlink to where they keep it: check the real one.
        crate::fsutil::create_private_dir(dir)?;
        return crate::fsutil::check_private_dir(&std::fs::canonicalize(dir)?);
    }
    let mut b = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut b, crate::fsutil::PRIVATE_DIR_MODE);
    match b.create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    crate::fsutil::check_private_dir(dir)
}

/// Binds the socket (removing a stale one left by a crashed node: the caller holds the data
/// directory lock, so no live node owns it) and serves requests until the engine stops.
pub(crate) fn serve(
    engine: Engine,
    data_dir: &Path,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let path = socket_path(data_dir);
    prepare_socket_dir(&path, data_dir)?;
    let _ = std::fs::remove_file(&path);
    // The directory is private (checked above), so nobody else can connect before this chmod.
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(
        &path,
        std::fs::Permissions::from_mode(crate::fsutil::PRIVATE_FILE_MODE),
    )?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let engine = engine.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve_one(engine, stream).await {
                            debug!("control client: {e}");
                        }
                    });
                }
                Err(e) => {
                    warn!("control socket accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }))
}

async fn serve_one(engine: Engine, stream: UnixStream) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r);
    let mut line = String::new();
    loop {
        line.clear();
        let n = (&mut lines)
            .take(MAX_LINE as u64 + 1)
            .read_line(&mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        let answer = if line.len() > MAX_LINE {
            Answer::Error(ApiError::new(ErrorCode::InvalidInput, "request too long"))
        } else {
            match serde_json::from_str::<Request>(&line) {
                Ok(req) => match engine.request(req).await {
                    Ok(v) => Answer::Ok(v),
                    Err(e) => Answer::Error(e),
                },
                Err(e) => Answer::Error(ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("bad request: {e}"),
                )),
            }
        };
        let mut out = serde_json::to_vec(&answer).unwrap_or_else(|_| b"{}".to_vec());
        out.push(b'\n');
        w.write_all(&out).await?;
        if line.len() > MAX_LINE {
            return Ok(());
        }
    }
}

/// Sends one request to the node serving `data_dir`. `Ok(None)` when no node listens there.
pub async fn call(data_dir: &Path, req: &Request) -> Result<Option<Value>, ApiError> {
    let Ok(stream) = UnixStream::connect(socket_path(data_dir)).await else {
        return Ok(None);
    };
    let io = |e: std::io::Error| ApiError::new(ErrorCode::Io, format!("control socket: {e}"));
    let (r, mut w) = stream.into_split();
    let mut line =
        serde_json::to_vec(req).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    line.push(b'\n');
    w.write_all(&line).await.map_err(io)?;
    let mut answer = String::new();
    BufReader::new(r).read_line(&mut answer).await.map_err(io)?;
    match serde_json::from_str::<Answer>(&answer) {
        Ok(Answer::Ok(v)) => Ok(Some(v)),
        Ok(Answer::Error(e)) => Err(e),
        Err(e) => Err(ApiError::new(
            ErrorCode::Io,
            format!("node sent an unreadable answer: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_dir_is_created_private() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        let sock = t.path().join("run/disasternet-x/abc.sock");
        std::fs::create_dir_all(t.path().join("run")).unwrap();
        prepare_socket_dir(&sock, &data).unwrap();
        let mode = std::fs::metadata(t.path().join("run/disasternet-x"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn fallback_dir_open_to_others_or_a_symlink_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        let shared = t.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = prepare_socket_dir(&shared.join("a.sock"), &data).unwrap_err();
        assert!(e.to_string().contains("open to other users"), "{e}");
        // Loose permissions are not "fixed" on a directory we did not create.
        let mode = std::fs::metadata(&shared).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o777);
        let private = t.path().join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&private, &link).unwrap();
        let e = prepare_socket_dir(&link.join("a.sock"), &data).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
    }

    #[test]
    fn data_dir_socket_dir_is_tightened_before_bind() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare_socket_dir(&data.join(SOCKET_FILE), &data).unwrap();
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // A data dir reached through a symlink is fine (its target is checked).
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&data, &link).unwrap();
        prepare_socket_dir(&link.join(SOCKET_FILE), &link).unwrap();
    }

    #[test]
    fn fallback_path_names_this_user() {
        let t = tempfile::tempdir().unwrap();
        let long = t.path().join("d".repeat(120));
        let p = socket_path(&long);
        let parent = p
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(parent, format!("disasternet-{}", crate::fsutil::my_uid()));
    }
}
