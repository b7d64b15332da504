//! Encryption at rest: "Lock this laptop's DisasterNet".
//!
//! Without a passphrase the data directory is as it always was: `identity.key` holds the secret
//! key as 64 hex characters and `store.sqlite3` is plain SQLite. With one:
//!
//! - `identity.key` holds one line, a *locked record* (below) sealing the node's secret key
//!   and a random 32-byte store key;
//! - `store.sqlite3` (and its `-wal`) is encrypted by SQLCipher with that store key
//!   ([`dn_store::StoreKey`]).
//!
//! ## The locked record (format version 1)
//!
//! One line of ASCII, fields separated by single spaces:
//!
//! ```text
//! DNLOCK1 argon2id m=<KiB> t=<passes> p=<lanes> id=<64 hex> salt=<32 hex> nonce=<48 hex> ct=<hex>
//! ```
//!
//! - Argon2id (version 0x13) derives a 32-byte key-encryption key from the passphrase (UTF-8
//!   bytes, as typed) and the 16-byte random `salt`, with memory `m` KiB, `t` passes and `p`
//!   lanes. Product parameters: m = 65536 (64 MiB), t = 3, p = 1 ([`KdfParams::PRODUCT`]),
//!   above OWASP's minimum for Argon2id (19 MiB, t = 2); about 0.1 s on a 2-core machine
//!   (108 ms measured, docs/benchmarks.md §6). A record states its own parameters; a reader
//!   refuses m > 1 GiB, t > 64, p > 16.
//! - XChaCha20-Poly1305 seals the payload under that key with the random 24-byte `nonce`;
//!   the associated data is the record's text up to and excluding ` nonce=` (format version,
//!   algorithm, parameters, node id and salt): changing any of them fails the tag.
//! - Payload: in `identity.key`, the 32-byte Ed25519 secret key then the 32-byte store key; in
//!   a locked identity backup, the secret key alone. `id` is the node's public id (not
//!   secret), so a front end can name the identity before it is unlocked.
//!
//! A wrong passphrase fails the tag: [`ErrorCode::WrongPassphrase`], nothing changes. A locked
//! directory opened without a passphrase is [`ErrorCode::Locked`].
//!
//! ## Turning it on and off, crash-safely
//!
//! The core (which owns the store connection) switches: it exports the store into
//! `store.sqlite3.next` with the new key (or none) and verifies it (key opens it, integrity
//! check, same row count in every table); then writes the new `identity.key` (atomic rename);
//! then closes the store, removes its `-wal`/`-shm`, and renames `store.sqlite3.next` over
//! `store.sqlite3`. The old copy is kept until the new one is verified and the key file names
//! its key. At start-up ([`unlock`]), a left-over `store.sqlite3.next` is finished (renamed into
//! place) when the key file's store key opens it, and removed when the current store opens with
//! that key instead; otherwise everything is left as it is with an error.

use std::fmt;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use dn_proto::NodeId;
use dn_store::{StoreError, StoreKey};
use ed25519_dalek::SigningKey;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::api::{ApiError, ErrorCode};
use crate::core::STORE_FILE;
use crate::fsutil;
use crate::identity::{self, KEY_FILE};

/// Shortest passphrase accepted, in characters.
pub const MIN_PASSPHRASE_CHARS: usize = 8;
/// First word of a locked record (format version 1).
pub const RECORD_MAGIC: &str = "DNLOCK1";
/// The store copy being switched to (encryption on or off), beside the store.
pub const NEXT_STORE_SUFFIX: &str = ".next";

/// A passphrase: zeroed when dropped, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(Zeroizing<String>);

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

impl Passphrase {
    /// Takes ownership of the text (which is zeroed when the passphrase is dropped). A
    /// trailing newline (`\n` or `\r\n`, from a pipe or a prompt) is not part of it.
    pub fn new(mut text: String) -> Self {
        while text.ends_with('\n') || text.ends_with('\r') {
            text.pop();
        }
        Passphrase(Zeroizing::new(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `invalid_input` unless it has at least [`MIN_PASSPHRASE_CHARS`] characters.
    pub fn check_new(&self) -> Result<(), ApiError> {
        if self.0.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!(
                    "the passphrase is too short: use at least {MIN_PASSPHRASE_CHARS} characters"
                ),
            ));
        }
        Ok(())
    }
}

/// Argon2id parameters of a locked record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// What new records use: 64 MiB, 3 passes, 1 lane.
    pub const PRODUCT: KdfParams = KdfParams {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };
    /// Largest memory a record may ask for (1 GiB): a planted record (a backup someone hands
    /// over) cannot ask for more, though at these caps one unlock may take a minute.
    pub const MAX_M_KIB: u32 = 1024 * 1024;
    /// Most passes a record may ask for.
    pub const MAX_T: u32 = 64;
    /// Most lanes a record may ask for.
    pub const MAX_P: u32 = 16;
}

/// A key-encryption key derived from a passphrase, with the parameters and salt it came from
/// (so a backup can be sealed under it without asking for the passphrase again).
#[derive(Clone)]
pub struct Kek {
    params: KdfParams,
    salt: [u8; 16],
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Kek {
    /// Argon2id over `passphrase` and `salt` with `params`.
    pub fn derive(
        passphrase: &Passphrase,
        params: KdfParams,
        salt: [u8; 16],
    ) -> Result<Kek, ApiError> {
        let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(32))
            .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("argon2: {e}")))?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
        let mut key = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(passphrase.as_str().as_bytes(), &salt, &mut key[..])
            .map_err(|e| ApiError::new(ErrorCode::Internal, format!("argon2: {e}")))?;
        Ok(Kek { params, salt, key })
    }

    /// A new key with a fresh random salt.
    pub fn fresh(passphrase: &Passphrase, params: KdfParams) -> Result<Kek, ApiError> {
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        Self::derive(passphrase, params, salt)
    }

    /// Seals `payload` for node `id` into a new record (random nonce).
    pub fn seal(&self, id: &NodeId, payload: &[u8]) -> Result<Record, ApiError> {
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut nonce);
        let mut r = Record {
            params: self.params,
            id: *id,
            salt: self.salt,
            nonce,
            ct: vec![],
        };
        let aad = r.header();
        r.ct = XChaCha20Poly1305::new((&*self.key).into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: payload,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| ApiError::new(ErrorCode::Internal, "sealing the key failed"))?;
        Ok(r)
    }

    /// Opens `record` (sealed with this key's parameters and salt).
    fn open(&self, record: &Record) -> Result<Zeroizing<Vec<u8>>, ApiError> {
        XChaCha20Poly1305::new((&*self.key).into())
            .decrypt(
                XNonce::from_slice(&record.nonce),
                Payload {
                    msg: &record.ct,
                    aad: record.header().as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| wrong_passphrase())
    }
}

fn wrong_passphrase() -> ApiError {
    ApiError::new(
        ErrorCode::WrongPassphrase,
        "wrong passphrase: nothing was changed; try again",
    )
}

/// `locked`: a passphrase is needed, with how to give one.
pub fn locked_error(data_dir: &Path) -> ApiError {
    ApiError::new(
        ErrorCode::Locked,
        format!(
            "{} is locked with a passphrase: give it in DISASTERNET_PASSPHRASE, or run the \
             command in a terminal to be asked for it",
            data_dir.display()
        ),
    )
}

/// A parsed locked record (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Argon2id parameters.
    pub params: KdfParams,
    /// The node's public id.
    pub id: NodeId,
    /// Argon2 salt.
    pub salt: [u8; 16],
    /// XChaCha20-Poly1305 nonce.
    pub nonce: [u8; 24],
    /// Ciphertext and tag.
    pub ct: Vec<u8>,
}

impl Record {
    /// The authenticated header: everything before ` nonce=`.
    fn header(&self) -> String {
        format!(
            "{RECORD_MAGIC} argon2id m={} t={} p={} id={} salt={}",
            self.params.m_kib,
            self.params.t,
            self.params.p,
            self.id.to_hex(),
            hex::encode(self.salt)
        )
    }

    /// The record as its one line (no newline).
    pub fn to_line(&self) -> String {
        format!(
            "{} nonce={} ct={}",
            self.header(),
            hex::encode(self.nonce),
            hex::encode(&self.ct)
        )
    }

    /// True when `text` (a key file or backup line) is a locked record rather than hex.
    pub fn is_record(text: &str) -> bool {
        text.trim_start().starts_with(RECORD_MAGIC)
    }

    /// Parses one record line; the reason when it is not one.
    pub fn parse(line: &str) -> Result<Record, String> {
        let mut f = line.trim().split(' ');
        let mut next = |name: &str| -> Result<&str, String> {
            let field = f.next().ok_or_else(|| format!("missing {name}"))?;
            if name.is_empty() {
                return Ok(field);
            }
            field
                .strip_prefix(name)
                .and_then(|v| v.strip_prefix('='))
                .ok_or_else(|| format!("expected {name}=…, found {field:?}"))
        };
        if next("")? != RECORD_MAGIC {
            return Err(format!("not a {RECORD_MAGIC} record"));
        }
        if next("")? != "argon2id" {
            return Err("unknown key derivation (expected argon2id)".into());
        }
        let num = |v: &str, what: &str, max: u32| -> Result<u32, String> {
            v.parse::<u32>()
                .ok()
                .filter(|n| *n >= 1 && *n <= max)
                .ok_or_else(|| format!("{what} {v:?} out of range (1..={max})"))
        };
        let m_kib = num(next("m")?, "m", KdfParams::MAX_M_KIB)?;
        let t = num(next("t")?, "t", KdfParams::MAX_T)?;
        let p = num(next("p")?, "p", KdfParams::MAX_P)?;
        let id = NodeId::from_hex(next("id")?).map_err(|e| format!("id: {e}"))?;
        let salt: [u8; 16] = hex_array(next("salt")?, "salt")?;
        let nonce: [u8; 24] = hex_array(next("nonce")?, "nonce")?;
        let ct = hex::decode(next("ct")?).map_err(|e| format!("ct: {e}"))?;
        if f.next().is_some() {
            return Err("unexpected text after ct".into());
        }
        if ct.len() > 1024 {
            return Err("ct is far too long".into());
        }
        Ok(Record {
            params: KdfParams { m_kib, t, p },
            id,
            salt,
            nonce,
            ct,
        })
    }

    /// Derives the key from `passphrase` and opens the record.
    pub fn unseal(&self, passphrase: &Passphrase) -> Result<(Kek, Zeroizing<Vec<u8>>), ApiError> {
        let kek = Kek::derive(passphrase, self.params, self.salt)?;
        let payload = kek.open(self)?;
        Ok((kek, payload))
    }
}

fn hex_array<const N: usize>(v: &str, what: &str) -> Result<[u8; N], String> {
    hex::decode(v)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{what} is not {} hex characters", 2 * N))
}

/// The secret key in a payload, checked against the record's id.
fn secret_of(record: &Record, payload: &[u8]) -> Result<SigningKey, ApiError> {
    let secret: [u8; 32] = payload
        .get(..32)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| damaged("the sealed key is too short"))?;
    let key = SigningKey::from_bytes(&secret);
    if identity::node_id(&key) != record.id {
        return Err(damaged("the sealed key does not match the id in the file"));
    }
    Ok(key)
}

fn damaged(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Storage,
        format!("the locked identity file is damaged ({what}); it was left untouched"),
    )
}

fn io_err(path: &Path, e: &std::io::Error) -> ApiError {
    ApiError::new(ErrorCode::Io, format!("{}: {e}", path.display()))
}

/// The at-rest keys of an unlocked, locked-with-a-passphrase data directory.
#[derive(Debug, Clone)]
pub struct LockKeys {
    /// The store's SQLCipher key.
    pub store_key: StoreKey,
    /// The key-encryption key of `identity.key` (seals backups under the same passphrase).
    pub kek: Kek,
}

/// An unlocked data directory: the node key, and the at-rest keys when it is locked.
#[derive(Debug)]
pub struct Unlocked {
    /// The node's secret key.
    pub key: SigningKey,
    /// `None` for a data directory without a passphrase.
    pub lock: Option<LockKeys>,
}

impl Unlocked {
    /// The store key, when the store is encrypted.
    pub fn store_key(&self) -> Option<&StoreKey> {
        self.lock.as_ref().map(|l| &l.store_key)
    }
}

/// What `identity.key` holds.
enum KeyFile {
    Missing,
    Plain,
    Locked(Record),
}

fn read_key_file(data_dir: &Path) -> Result<KeyFile, ApiError> {
    let path = data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if Record::is_record(&text) => Record::parse(&text)
            .map(KeyFile::Locked)
            .map_err(|e| damaged(&e)),
        Ok(_) => Ok(KeyFile::Plain),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyFile::Missing),
        Err(e) => Err(io_err(&path, &e)),
    }
}

/// True when the data directory is locked with a passphrase (its `identity.key` is a locked
/// record). Reads one small file; needs no lock.
pub fn is_locked(data_dir: &Path) -> Result<bool, ApiError> {
    Ok(matches!(read_key_file(data_dir)?, KeyFile::Locked(_)))
}

/// Opens the data directory's identity: creates a plain one on first start, reads a plain
/// one, or unlocks a locked one with `passphrase` (`locked` without one, `wrong_passphrase`
/// when it does not open; neither changes anything). Then finishes or rolls back a switch of
/// the store's encryption that a crash interrupted (see the [module docs](self)). The caller
/// must hold the data directory's lock.
pub fn unlock(data_dir: &Path, passphrase: Option<&Passphrase>) -> Result<Unlocked, ApiError> {
    let unlocked = match read_key_file(data_dir)? {
        KeyFile::Missing | KeyFile::Plain => {
            if passphrase.is_some() && data_dir.join(KEY_FILE).exists() {
                tracing::info!("a passphrase was given but this data directory is not locked");
            }
            Unlocked {
                key: identity::load_or_create(data_dir)?,
                lock: None,
            }
        }
        KeyFile::Locked(record) => {
            let pass = passphrase.ok_or_else(|| locked_error(data_dir))?;
            let (kek, payload) = record.unseal(pass)?;
            let key = secret_of(&record, &payload)?;
            let store_key: [u8; 32] = payload
                .get(32..64)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| damaged("no store key in the sealed data"))?;
            if let Err(e) = fsutil::tighten(&data_dir.join(KEY_FILE), fsutil::PRIVATE_FILE_MODE) {
                tracing::warn!("cannot tighten {KEY_FILE}: {e}");
            }
            Unlocked {
                key,
                lock: Some(LockKeys {
                    store_key: StoreKey::from_bytes(store_key),
                    kek,
                }),
            }
        }
    };
    recover_switch(data_dir, unlocked.store_key())?;
    Ok(unlocked)
}

/// `path` with `suffix` appended to its file name.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

/// Finishes or rolls back an interrupted switch (a `store.sqlite3.next` left beside the
/// store), given the store key the key file names (`None`: plain).
pub fn recover_switch(data_dir: &Path, store_key: Option<&StoreKey>) -> Result<(), ApiError> {
    let db = data_dir.join(STORE_FILE);
    let next = with_suffix(&db, NEXT_STORE_SUFFIX);
    // A copy interrupted before it was verified never became `.next`: it is only removed.
    dn_store::remove_with_companions(&dn_store::partial_path(&next));
    if std::fs::symlink_metadata(&next).is_err() {
        return Ok(());
    }
    match dn_store::verify_copy(&next, store_key, None) {
        Ok(()) => {
            // The key file already names the new copy's key: finish the switch.
            install_next(&db)?;
            tracing::warn!("finished switching the store's encryption (interrupted last time)");
            Ok(())
        }
        Err(e) => {
            // The key file names the current store's key: the switch never got that far.
            match dn_store::Store::open_with_key(&db, store_key) {
                Ok(s) => {
                    drop(s);
                    for suffix in ["", "-journal", "-wal", "-shm"] {
                        let p = with_suffix(&next, suffix);
                        if let Err(e) = std::fs::remove_file(&p) {
                            if e.kind() != std::io::ErrorKind::NotFound {
                                return Err(io_err(&p, &e));
                            }
                        }
                    }
                    tracing::warn!(
                        "rolled back an interrupted switch of the store's encryption ({e})"
                    );
                    Ok(())
                }
                Err(cur) => Err(ApiError::new(
                    ErrorCode::Storage,
                    format!(
                        "an interrupted switch of the store's encryption cannot be finished: \
                         {} does not open ({e}) and neither does the store ({cur}); the files \
                         were left as they are",
                        next.display()
                    ),
                )),
            }
        }
    }
}

/// Puts `<db>.next` in place of `db`: the old store's `-wal`/`-shm` go first (they must never
/// be paired with the new file), then the rename, then the directory is synced.
pub(crate) fn install_next(db: &Path) -> Result<(), ApiError> {
    let next = with_suffix(db, NEXT_STORE_SUFFIX);
    for suffix in ["-wal", "-shm"] {
        let p = with_suffix(db, suffix);
        if let Err(e) = std::fs::remove_file(&p) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(io_err(&p, &e));
            }
        }
    }
    std::fs::rename(&next, db).map_err(|e| io_err(db, &e))?;
    fsutil::sync_parent(db);
    Ok(())
}

/// The text of a locked `identity.key`: the record sealing `key` and `store_key` under `kek`.
pub fn locked_key_file(
    kek: &Kek,
    key: &SigningKey,
    store_key: &StoreKey,
) -> Result<Zeroizing<String>, ApiError> {
    let mut payload = Zeroizing::new(Vec::with_capacity(64));
    payload.extend_from_slice(&key.to_bytes());
    payload.extend_from_slice(store_key.as_bytes());
    let r = kek.seal(&identity::node_id(key), &payload)?;
    Ok(Zeroizing::new(format!("{}\n", r.to_line())))
}

/// The text of a plain `identity.key`.
pub fn plain_key_file(key: &SigningKey) -> Zeroizing<String> {
    Zeroizing::new(format!("{}\n", hex::encode(key.to_bytes())))
}

/// Writes `identity.key` atomically (owner-only temporary file, synced, renamed, directory
/// synced).
pub fn write_key_file(data_dir: &Path, text: &str) -> Result<(), ApiError> {
    let path = data_dir.join(KEY_FILE);
    fsutil::write_private_atomic(&path, text.as_bytes()).map_err(|e| io_err(&path, &e))
}

/// Checks `passphrase` against the data directory's locked `identity.key` (`wrong_passphrase`
/// when it does not open it; `invalid_input` when the directory is not locked).
pub fn check_passphrase(data_dir: &Path, passphrase: &Passphrase) -> Result<Kek, ApiError> {
    match read_key_file(data_dir)? {
        KeyFile::Locked(r) => Ok(r.unseal(passphrase)?.0),
        _ => Err(ApiError::new(
            ErrorCode::InvalidInput,
            "this data directory is not locked with a passphrase",
        )),
    }
}

/// First line of a locked identity backup (the second line is the locked record).
pub const LOCKED_BACKUP_HEADER: &str = "# DisasterNet identity backup, locked with a passphrase — this file IS your identity once unlocked. Keep it safe, and remember the passphrase.";

/// The text of a locked identity backup of `key` sealed under `kek`.
pub fn locked_backup(kek: &Kek, key: &SigningKey) -> Result<Zeroizing<String>, ApiError> {
    let secret = Zeroizing::new(key.to_bytes());
    let r = kek.seal(&identity::node_id(key), &secret[..])?;
    Ok(Zeroizing::new(format!(
        "{LOCKED_BACKUP_HEADER}\n{}\n",
        r.to_line()
    )))
}

/// The locked record in a backup's text (comment lines skipped), or `None` when it is not a
/// locked backup.
pub fn backup_record(text: &str) -> Option<Result<Record, String>> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    Record::is_record(line).then(|| Record::parse(line))
}

/// Opens a locked backup's record with its passphrase: the secret key.
pub fn unseal_backup(record: &Record, passphrase: &Passphrase) -> Result<SigningKey, ApiError> {
    let (_, payload) = record.unseal(passphrase)?;
    secret_of(record, &payload)
}

/// Maps a store error at open: a wrong store key is a damaged key file or a replaced store,
/// never "corrupt" (which would suggest a salvage).
pub fn store_open_error(e: StoreError) -> ApiError {
    match e {
        StoreError::WrongKey(m) => ApiError::new(
            ErrorCode::Storage,
            format!(
                "{m}: the store does not belong to this identity file (was one of them replaced?); \
                 nothing was changed"
            ),
        ),
        e => ApiError::new(ErrorCode::Storage, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Small parameters: the format is the same, the tests stay fast.
    pub(crate) const TEST_PARAMS: KdfParams = KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    fn pass(s: &str) -> Passphrase {
        Passphrase::new(s.to_string())
    }

    #[test]
    fn a_record_round_trips_and_refuses_a_wrong_passphrase_or_any_edit() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let sk = StoreKey::from_bytes([6; 32]);
        let kek = Kek::fresh(&pass("correct horse"), TEST_PARAMS).unwrap();
        let text = locked_key_file(&kek, &key, &sk).unwrap();
        assert!(text.starts_with("DNLOCK1 argon2id m=64 t=1 p=1 id="));
        assert!(!text.contains(&hex::encode(key.to_bytes())));
        let r = Record::parse(&text).unwrap();
        assert_eq!(r.to_line() + "\n", *text);
        let (_, payload) = r.unseal(&pass("correct horse")).unwrap();
        assert_eq!(&payload[..32], &key.to_bytes());
        assert_eq!(&payload[32..], sk.as_bytes());
        let e = r.unseal(&pass("correct horsE")).unwrap_err();
        assert_eq!(e.code, ErrorCode::WrongPassphrase);
        // The header is authenticated: another salt, id or parameter fails the tag.
        let salt_at = text.find("salt=").unwrap() + 5;
        let flipped = if &text[salt_at..=salt_at] == "0" {
            "1"
        } else {
            "0"
        };
        let mut other_salt = text.to_string();
        other_salt.replace_range(salt_at..=salt_at, flipped);
        let other_id = text.replacen(
            &identity::node_id(&key).to_hex(),
            &identity::node_id(&SigningKey::from_bytes(&[9; 32])).to_hex(),
            1,
        );
        for edited in [
            text.replacen("m=64", "m=65", 1),
            text.replacen("t=1", "t=2", 1),
            other_salt,
            other_id,
        ] {
            let r = Record::parse(&edited).unwrap();
            assert!(r.unseal(&pass("correct horse")).is_err(), "{edited}");
        }
        // Hostile parameters are refused before any work.
        let big = text.replacen("m=64", "m=99999999", 1);
        assert!(Record::parse(&big).unwrap_err().contains("out of range"));
        for bad in [
            "",
            "DNLOCK1",
            "DNLOCK1 scrypt m=1",
            "DNLOCK1 argon2id m=64 t=1 p=1",
        ] {
            assert!(Record::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passphrases_drop_the_newline_and_must_be_long_enough() {
        assert_eq!(pass("secret words\n").as_str(), "secret words");
        assert_eq!(pass("secret words\r\n").as_str(), "secret words");
        assert_eq!(
            pass("short").check_new().unwrap_err().code,
            ErrorCode::InvalidInput
        );
        assert!(pass("ünïcödé!").check_new().is_ok());
        assert_eq!(format!("{:?}", pass("hunter22")), "Passphrase(..)");
    }

    #[test]
    fn locked_backups_open_with_their_passphrase_only() {
        let key = SigningKey::from_bytes(&[8; 32]);
        let kek = Kek::fresh(&pass("backup pass"), TEST_PARAMS).unwrap();
        let text = locked_backup(&kek, &key).unwrap();
        assert!(text.starts_with(LOCKED_BACKUP_HEADER));
        let r = backup_record(&text).unwrap().unwrap();
        assert_eq!(r.id, identity::node_id(&key));
        assert_eq!(
            unseal_backup(&r, &pass("backup pass")).unwrap().to_bytes(),
            key.to_bytes()
        );
        assert_eq!(
            unseal_backup(&r, &pass("wrong pass")).unwrap_err().code,
            ErrorCode::WrongPassphrase
        );
        assert!(backup_record(&format!("# x\n{}\n", "a".repeat(64))).is_none());
    }
}
