//! The local control channel: how the CLI (and a second app instance) reach the node or app
//! running on a data directory. Each line is one JSON [`Request`]; each answer one JSON line,
//! either `{"ok": <value>}` or `{"error": {"code": "...", "message": "..."}}`.
//!
//! The transport is a local socket from the `interprocess` crate, one code path for every
//! platform; only where it listens and who may connect differ ([`Endpoint`]):
//! - **Unix** (Linux, macOS): a Unix socket `control.sock` in the data directory, mode 0600 set
//!   before `bind`, in a directory that is private (0700) before the bind; a data directory
//!   whose path is too long for a socket uses a private runtime directory instead
//!   ([`socket_path`]).
//! - **Windows**: a named pipe `\\.\pipe\disasternet-<32 random hex>`. The random name is
//!   written to `control.pipe` in the data directory (which sits in the user's profile, closed
//!   to other users), so another local user can neither guess the name to squat it nor find it;
//!   the pipe's security descriptor lets only its owner connect, and its first instance is
//!   created with the first-instance flag, so the node cannot end up as a second server on a
//!   name someone else created.

use std::path::{Path, PathBuf};

use interprocess::local_socket::tokio::{prelude::*, Listener, Stream};
use interprocess::local_socket::{ListenerOptions, Name};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tracing::{debug, warn};

use crate::api::{ApiError, ErrorCode, Request};
use crate::Engine;

/// File name of the socket inside the data directory (Unix).
pub const SOCKET_FILE: &str = "control.sock";
/// File inside the data directory naming the control pipe (Windows).
pub const PIPE_NAME_FILE: &str = "control.pipe";
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

/// Path of the Unix socket for a data directory: `<data_dir>/control.sock`, or, when that path
/// is too long for a Unix socket, `<runtime dir>/disasternet-<uid>/<hash of the data dir>.sock`
/// in a private (0700, owner-checked) directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    use sha2::Digest;
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

/// Reads the pipe name a node on `data_dir` wrote to [`PIPE_NAME_FILE`]; `None` when there is
/// none (no node ever served this directory) or it is not one of ours.
pub fn read_pipe_name(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join(PIPE_NAME_FILE)).ok()?;
    let name = text.trim();
    let hex = name.strip_prefix("disasternet-")?;
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| name.to_string())
}

/// Picks a fresh random pipe name and writes it to [`PIPE_NAME_FILE`] (owner-only, atomic).
/// Called by the node that serves `data_dir` while it holds the directory's lock.
pub fn new_pipe_name(data_dir: &Path) -> std::io::Result<String> {
    use rand_core::RngCore;
    let mut rnd = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut rnd);
    let name = format!("disasternet-{}", hex::encode(rnd));
    crate::fsutil::write_private_atomic(&data_dir.join(PIPE_NAME_FILE), name.as_bytes())?;
    Ok(name)
}

/// Where the control channel of a data directory is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix socket at this path.
    Socket(PathBuf),
    /// A Windows named pipe `\\.\pipe\<name>`.
    Pipe(String),
}

impl Endpoint {
    /// The endpoint a client uses for `data_dir`; `None` when no node can be listening there
    /// (Windows: no pipe name was ever written).
    pub fn of(data_dir: &Path) -> Option<Self> {
        if cfg!(windows) {
            read_pipe_name(data_dir).map(Endpoint::Pipe)
        } else {
            Some(Endpoint::Socket(socket_path(data_dir)))
        }
    }

    fn name(&self) -> std::io::Result<Name<'_>> {
        match self {
            Endpoint::Socket(p) => p
                .as_path()
                .to_fs_name::<interprocess::local_socket::GenericFilePath>(),
            Endpoint::Pipe(n) => n
                .as_str()
                .to_ns_name::<interprocess::local_socket::GenericNamespaced>(),
        }
    }
}

/// Creates the listener for `data_dir`: on Unix a socket made private before anyone can reach
/// it (see [`prepare_socket_dir`]; a stale socket left by a crashed node is removed: the caller
/// holds the data directory's lock, so no live node owns it), on Windows a fresh owner-only
/// pipe.
fn listen(data_dir: &Path) -> std::io::Result<Listener> {
    #[cfg(unix)]
    {
        use interprocess::os::unix::local_socket::ListenerOptionsExt as _;
        let path = socket_path(data_dir);
        prepare_socket_dir(&path, data_dir)?;
        let _ = std::fs::remove_file(&path);
        let endpoint = Endpoint::Socket(path);
        ListenerOptions::new()
            .name(endpoint.name()?)
            .mode(crate::fsutil::PRIVATE_FILE_MODE)
            .create_tokio()
    }
    #[cfg(windows)]
    {
        use interprocess::os::windows::local_socket::ListenerOptionsExt as _;
        use interprocess::os::windows::security_descriptor::SecurityDescriptor;
        crate::fsutil::create_private_dir(data_dir)?;
        let endpoint = Endpoint::Pipe(new_pipe_name(data_dir)?);
        // Protected DACL, one entry: generic-all for the pipe's owner (the user running the
        // node). Everyone else, including the default "Everyone: read", is left out.
        let sddl = widestring::U16CString::from_str("D:P(A;;GA;;;OW)")
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        ListenerOptions::new()
            .name(endpoint.name()?)
            .security_descriptor(SecurityDescriptor::deserialize(&sddl)?)
            .create_tokio()
    }
}

/// Makes sure the directory the socket is bound in is a real directory owned by this user and
/// closed to everyone else (mode 0700) *before* the bind.
///
/// Defence in depth beside the socket's own mode (set before `bind` by `interprocess`):
/// connecting to a Unix socket needs search permission on its directory. The data directory is
/// tightened to 0700 if it is looser; the runtime-dir fallback
/// (`<runtime dir>/disasternet-<uid>`) is created 0700 and refused when it already exists but
/// is not ours, is a symlink, or is open to group or others (another user could otherwise
/// pre-create it and read or replace our socket).
#[cfg(unix)]
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

/// Starts listening (see [`listen`]) and serves requests until the engine stops (aborting the
/// returned task closes the listener, which removes a Unix socket's file).
pub(crate) fn serve(
    engine: Engine,
    data_dir: &Path,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = listen(data_dir)?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok(stream) => {
                    let engine = engine.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve_one(engine, stream).await {
                            debug!("control client: {e}");
                        }
                    });
                }
                Err(e) => {
                    warn!("control channel accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }))
}

async fn serve_one(engine: Engine, stream: Stream) -> std::io::Result<()> {
    // `&Stream` reads and writes: the two halves of one connection.
    let mut lines = BufReader::new(&stream);
    let mut w = &stream;
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
        w.flush().await?;
        if line.len() > MAX_LINE {
            return Ok(());
        }
    }
}

/// Sends one request to the node serving `data_dir`. `Ok(None)` when no node listens there.
pub async fn call(data_dir: &Path, req: &Request) -> Result<Option<Value>, ApiError> {
    let Some(endpoint) = Endpoint::of(data_dir) else {
        return Ok(None);
    };
    let Ok(name) = endpoint.name() else {
        return Ok(None);
    };
    let Ok(stream) = Stream::connect(name).await else {
        return Ok(None);
    };
    let io = |e: std::io::Error| ApiError::new(ErrorCode::Io, format!("control channel: {e}"));
    let mut w = &stream;
    let mut line =
        serde_json::to_vec(req).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    line.push(b'\n');
    w.write_all(&line).await.map_err(io)?;
    w.flush().await.map_err(io)?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .await
        .map_err(io)?;
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
    fn pipe_names_are_random_private_and_checked_when_read() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(read_pipe_name(t.path()), None);
        let a = new_pipe_name(t.path()).unwrap();
        assert_eq!(read_pipe_name(t.path()).as_deref(), Some(a.as_str()));
        let b = new_pipe_name(t.path()).unwrap();
        assert_ne!(a, b, "a fresh name at every start");
        assert_eq!(read_pipe_name(t.path()).as_deref(), Some(b.as_str()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(t.path().join(PIPE_NAME_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        for bad in [
            "",
            "disasternet-xyz",
            r"..\..\pipe\evil",
            "other-0123456789abcdef0123456789abcdef",
        ] {
            std::fs::write(t.path().join(PIPE_NAME_FILE), bad).unwrap();
            assert_eq!(read_pipe_name(t.path()), None, "{bad:?}");
        }
    }
}

#[cfg(all(test, unix))]
mod unix_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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

    #[tokio::test]
    async fn socket_is_owner_only_and_its_file_goes_with_the_listener() {
        use std::os::unix::fs::FileTypeExt;
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        // A stale socket file from a crashed node is replaced.
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join(SOCKET_FILE), "stale").unwrap();
        let listener = listen(&data).unwrap();
        let meta = std::fs::metadata(data.join(SOCKET_FILE)).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let endpoint = Endpoint::of(&data).unwrap();
        assert_eq!(endpoint, Endpoint::Socket(data.join(SOCKET_FILE)));
        let (accepted, connected) = tokio::join!(listener.accept(), async {
            Stream::connect(endpoint.name().unwrap()).await
        });
        accepted.unwrap();
        connected.unwrap();
        drop(listener);
        assert!(
            !data.join(SOCKET_FILE).exists(),
            "removed with the listener"
        );
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
