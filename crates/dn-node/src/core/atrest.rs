//! Encryption at rest in the core, which owns the store connection: turning the passphrase on
//! (the store is re-written encrypted), changing it (only `identity.key` is re-sealed) and
//! removing it (the store is re-written plain), in the crash-safe order of
//! [`crate::atrest`]; and identity backups sealed under the same passphrase.

use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use super::*;
use crate::atrest::{self as ar, KdfParams, Kek, LockKeys, Passphrase};
use dn_store::StoreKey;

impl Core {
    /// Whether the data directory is locked.
    pub(super) fn lock_view(&self) -> LockView {
        LockView {
            locked: self.lock.is_some(),
        }
    }

    /// Locks the data directory with `passphrase`: a new random store key, the store copied
    /// encrypted under it and verified, `identity.key` re-written as a locked record, then the
    /// encrypted copy put in place of the plain store.
    pub(super) fn set_passphrase(&mut self, passphrase: &Passphrase) -> Result<LockView, ApiError> {
        if self.lock.is_some() {
            return Err(invalid(
                "this data directory is already locked; change or remove its passphrase instead",
            ));
        }
        passphrase.check_new()?;
        let kek = Kek::fresh(passphrase, KdfParams::PRODUCT)?;
        let mut raw = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(&mut raw[..]);
        let store_key = StoreKey::from_bytes(*raw);
        let text = ar::locked_key_file(&kek, &self.key, &store_key)?;
        let old = ar::plain_key_file(&self.key);
        self.switch_store(Some(&store_key), &text, &old, None)?;
        let sealed = self.seal_kept_keys(&kek);
        self.lock = Some(LockKeys { store_key, kek });
        info!(
            kept_keys_sealed = sealed,
            "data directory locked with a passphrase"
        );
        Ok(self.lock_view())
    }

    /// Changes the passphrase: `old` must open `identity.key`; the same store key is sealed
    /// under `new` (the store is not touched).
    pub(super) fn change_passphrase(
        &mut self,
        old: &Passphrase,
        new: &Passphrase,
    ) -> Result<LockView, ApiError> {
        let store_key = self.locked_store_key()?;
        ar::check_passphrase(&self.data_dir, old)?;
        new.check_new()?;
        let kek = Kek::fresh(new, KdfParams::PRODUCT)?;
        let text = ar::locked_key_file(&kek, &self.key, &store_key)?;
        ar::write_key_file(&self.data_dir, &text)?;
        self.lock = Some(LockKeys { store_key, kek });
        info!("passphrase changed");
        Ok(self.lock_view())
    }

    /// Removes the passphrase (it must open `identity.key`): the store is copied plain and
    /// verified, `identity.key` re-written as hex, then the plain copy put in place.
    pub(super) fn remove_passphrase(
        &mut self,
        passphrase: &Passphrase,
    ) -> Result<LockView, ApiError> {
        let store_key = self.locked_store_key()?;
        let kek = ar::check_passphrase(&self.data_dir, passphrase)?;
        let old = ar::locked_key_file(&kek, &self.key, &store_key)?;
        let text = ar::plain_key_file(&self.key);
        self.switch_store(None, &text, &old, Some(&store_key))?;
        self.lock = None;
        info!("passphrase removed: the data directory is no longer encrypted");
        Ok(self.lock_view())
    }

    fn locked_store_key(&self) -> Result<StoreKey, ApiError> {
        self.lock
            .as_ref()
            .map(|l| l.store_key.clone())
            .ok_or_else(|| {
                invalid("this data directory is not locked with a passphrase; set one first")
            })
    }

    /// Writes an identity backup: sealed under the data directory's passphrase when it is
    /// locked (the same Argon2id parameters and salt, a fresh nonce), else plain hex.
    pub(super) fn write_backup(&self, path: &Path) -> Result<(), ApiError> {
        match &self.lock {
            None => identity::write_backup(&self.key, path),
            Some(lock) => {
                let text = ar::locked_backup(&lock.kek, &self.key)?;
                fsutil_write(path, &text)
            }
        }
    }

    /// Switches the store to `new_key` (`None`: plain) and `identity.key` to `key_text`, in
    /// the order start-up can finish or roll back: copy + verify, key file, swap. A failure
    /// before the key file is written removes the copy; a failure after it puts `old_text`
    /// (the previous key file, naming `old_key`) back and keeps the old store open.
    fn switch_store(
        &mut self,
        new_key: Option<&StoreKey>,
        key_text: &str,
        old_text: &str,
        old_key: Option<&StoreKey>,
    ) -> Result<(), ApiError> {
        let db = self.data_dir.join(STORE_FILE);
        let next = ar::with_suffix(&db, ar::NEXT_STORE_SUFFIX);
        let remove_next = || {
            for suffix in ["", "-journal"] {
                let _ = std::fs::remove_file(ar::with_suffix(&next, suffix));
            }
        };
        if self.exports.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            return Err(ApiError::new(
                ErrorCode::Busy,
                "an export is being written; try again when it is done",
            ));
        }
        // A copy left by an earlier failed attempt of this run (start-up cleared older ones).
        remove_next();
        self.store.export_to(&next, new_key).map_err(store_err)?;
        // Made before the key file changes, so nothing can fail between that and the swap.
        let placeholder = Store::open_in_memory().map_err(store_err)?;
        if let Err(e) = ar::write_key_file(&self.data_dir, key_text) {
            remove_next();
            return Err(e);
        }
        // From here on the key file names the copy's key: a crash now is finished at start-up.
        drop(std::mem::replace(&mut self.store, placeholder));
        if let Err(e) = ar::install_next(&db) {
            // The old store is still in place: so is the key file that opens it.
            warn!("switching the store's encryption failed: {}", e.message);
            let back = ar::write_key_file(&self.data_dir, old_text);
            remove_next();
            match Store::open_with_key(&db, old_key) {
                Ok(store) if back.is_ok() => self.store = store,
                _ => {
                    tracing::error!(
                        "the store could not be reopened after a failed switch; restart \
                         DisasterNet (start-up finishes or rolls back the switch)"
                    );
                    self.store_lost = true;
                }
            }
            return Err(e);
        }
        match Store::open_with_key(&db, new_key) {
            Ok(store) => {
                self.store = store;
                Ok(())
            }
            Err(e) => {
                tracing::error!("the store does not reopen after switching its encryption: {e}");
                self.store_lost = true;
                Err(ar::store_open_error(e))
            }
        }
    }
}

impl Core {
    /// Seals the previous identity keys kept in the data directory
    /// (`identity.key.replaced-<ms>`, left by restores) under the new passphrase, as locked
    /// backups: a locked directory keeps no key in the clear. Returns how many it sealed;
    /// one it cannot read or rewrite is left as it is, with a warning.
    fn seal_kept_keys(&self, kek: &Kek) -> usize {
        let prefix = format!("{}.replaced-", crate::identity::KEY_FILE);
        let Ok(entries) = std::fs::read_dir(&self.data_dir) else {
            return 0;
        };
        let mut sealed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let named = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix));
            if !named {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path).map(Zeroizing::new) else {
                warn!(path = %path.display(), "a kept identity key cannot be read; left as it is");
                continue;
            };
            if ar::backup_record(&text).is_some() {
                continue; // locked already
            }
            let Ok(key) = crate::identity::parse_backup(&text) else {
                warn!(path = %path.display(), "a kept identity key does not parse; left as it is");
                continue;
            };
            match ar::locked_backup(kek, &key).and_then(|t| fsutil_write(&path, &t)) {
                Ok(()) => sealed += 1,
                Err(e) => {
                    warn!(path = %path.display(), "sealing a kept identity key: {}", e.message);
                }
            }
        }
        sealed
    }
}

fn fsutil_write(path: &Path, text: &str) -> Result<(), ApiError> {
    if path.file_name().is_none() {
        return Err(invalid(format!("{} is not a file path", path.display())));
    }
    crate::fsutil::write_private_atomic(path, text.as_bytes())
        .map_err(|e| ApiError::new(ErrorCode::Io, format!("{}: {e}", path.display())))
}
