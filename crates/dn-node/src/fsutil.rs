//! Owner-only files and directories, created without a window in which another local user
//! could read them, and temporary files that never follow a planted symlink.
//!
//! Every platform specific (modes, `O_NOFOLLOW`, owner checks) lives here behind
//! `#[cfg(unix)]`. On Windows the same functions create the same files without modes: the data
//! directory sits in the user's profile (`%LOCALAPPDATA%`, see `default_data_dir`), whose ACL
//! (inherited by every file created in it) already admits only the user, SYSTEM and
//! administrators, which is what 0700/0600 give on Unix. Files written elsewhere (an export
//! to a USB stick) get that folder's ACL on every system but Unix, where they are 0600.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore};

/// Mode of private directories (the data directory, the socket's fallback directory): only
/// the owner may list, enter or create files in them.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of private files (key, store, temporary files of exports and backups).
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Random bytes in a temporary file's name: 64 bits, so another user cannot pre-create it.
const TEMP_SUFFIX_BYTES: usize = 8;

/// Creates `dir` and its missing parents with mode 0700 from the start (no chmod window). An
/// existing directory (the final component, or where it links to: a user may keep the data
/// directory elsewhere through a symlink) that is open to group or others is tightened to
/// 0700, with a log line. Returns `true` when it had to tighten it.
pub fn create_private_dir(dir: &Path) -> io::Result<bool> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, PRIVATE_DIR_MODE);
    b.create(dir)?;
    tighten(&fs::canonicalize(dir)?, PRIVATE_DIR_MODE)
}

/// Removes group/other permission bits from `path` when it has any beyond `mode` (logging
/// it). Symlinks are not followed. Returns `true` when the mode changed; a missing file is
/// not an error (`false`).
pub fn tighten(path: &Path, mode: u32) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        if meta.file_type().is_symlink() {
            return Ok(false);
        }
        let old = meta.permissions().mode() & 0o777;
        if old & !mode == 0 {
            return Ok(false);
        }
        fs::set_permissions(path, fs::Permissions::from_mode(old & mode))?;
        tracing::warn!(
            path = %path.display(),
            old = format!("{old:o}"),
            new = format!("{:o}", old & mode),
            "tightened permissions: other local users could read it"
        );
        Ok(true)
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(false)
    }
}

/// Options that create a new file exclusively (fails if anything, even a dangling symlink,
/// exists at the path), mode 0600 from creation, never following a symlink.
pub fn private_new_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(PRIVATE_FILE_MODE).custom_flags(libc::O_NOFOLLOW);
    }
    o
}

/// Creates the new file `path` (see [`private_new_options`]).
pub fn create_private_new(path: &Path) -> io::Result<File> {
    private_new_options().open(path)
}

/// A fresh temporary file beside `dest` (same directory, so a rename is atomic), named
/// `.<dest name>.<16 random hex>.partial`, created by [`create_private_new`].
pub fn create_temp_beside(dest: &Path) -> io::Result<(File, PathBuf)> {
    let name = dest.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a file path", dest.display()),
        )
    })?;
    let mut rnd = [0u8; TEMP_SUFFIX_BYTES];
    OsRng.fill_bytes(&mut rnd);
    let tmp = dest.with_file_name(format!(
        ".{}.{}.partial",
        name.to_string_lossy(),
        hex::encode(rnd)
    ));
    let f = create_private_new(&tmp)?;
    Ok((f, tmp))
}

/// Writes `bytes` to `dest` atomically and owner-only: a [`create_temp_beside`] file,
/// written, synced, renamed over `dest` (a symlink at `dest` is replaced, not followed), then
/// the directory synced. The temporary file is removed on failure.
pub fn write_private_atomic(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let (mut f, tmp) = create_temp_beside(dest)?;
    let res = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| fs::rename(&tmp, dest));
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
        return res;
    }
    sync_parent(dest);
    Ok(())
}

/// Best-effort fsync of the directory holding `path` (makes a rename durable).
pub fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// The effective user id of this process (0 where there is no such notion).
pub fn my_uid() -> u32 {
    #[cfg(unix)]
    {
        rustix::process::geteuid().as_raw()
    }
    #[cfg(not(unix))]
    {
        0
    }
}

/// Checks that `dir` is a real directory (not a symlink) owned by this user and not writable
/// or readable by group or others; the error says which check failed.
pub fn check_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = fs::symlink_metadata(dir)?;
        let refuse = |why: &str| {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} {why}; refusing to use it", dir.display()),
            ))
        };
        if !meta.is_dir() {
            return refuse("is not a directory");
        }
        if meta.uid() != my_uid() {
            return refuse(&format!(
                "is owned by uid {}, not by this user ({})",
                meta.uid(),
                my_uid()
            ));
        }
        if meta.permissions().mode() & 0o077 != 0 {
            return refuse(&format!(
                "is open to other users (mode {:o})",
                meta.permissions().mode() & 0o777
            ));
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_dir_is_0700_from_creation_and_existing_ones_are_tightened() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        assert!(!create_private_dir(&d).unwrap());
        assert_eq!(mode(&d), 0o700);
        assert_eq!(mode(&t.path().join("a")), 0o700);
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(create_private_dir(&d).unwrap());
        assert_eq!(mode(&d), 0o700);
        check_private_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o770)).unwrap();
        assert!(check_private_dir(&d).is_err());
        // Through a symlink (a data dir kept elsewhere), the real directory is tightened.
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert!(create_private_dir(&link).unwrap());
        assert_eq!(mode(&d), 0o700);
    }

    #[test]
    fn new_private_file_is_0600_exclusive_and_never_follows_a_symlink() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        create_private_new(&p).unwrap();
        assert_eq!(mode(&p), 0o600);
        assert_eq!(
            create_private_new(&p).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        // A planted symlink (even dangling) is refused, and its target is not created.
        let target = t.path().join("target");
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(create_private_new(&link).is_err());
        assert!(!target.exists());
    }

    #[test]
    fn atomic_write_replaces_a_symlink_instead_of_writing_through_it() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        let dest = t.path().join("out");
        std::os::unix::fs::symlink(&victim, &dest).unwrap();
        write_private_atomic(&dest, b"new").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(fs::read_to_string(&dest).unwrap(), "new");
        assert_eq!(mode(&dest), 0o600);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".partial")), "{names:?}");
    }

    #[test]
    fn temp_names_are_random() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("x.jsonl");
        let (_, a) = create_temp_beside(&dest).unwrap();
        let (_, b) = create_temp_beside(&dest).unwrap();
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(".x.jsonl.") && name.ends_with(".partial"),
            "{name}"
        );
    }
}
