//! Passphrases on the command line: where they come from (`DISASTERNET_PASSPHRASE` /
//! `DISASTERNET_NEW_PASSPHRASE` / `DISASTERNET_BACKUP_PASSPHRASE`, else a prompt without echo
//! when stdin is a terminal), and `disasternet passphrase set|change|remove`.

use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use dn_node::atrest::{self, Passphrase};
use dn_node::{calls, ApiError, Client, ErrorCode};

/// The current passphrase of a locked data directory.
pub(crate) const ENV: &str = "DISASTERNET_PASSPHRASE";
/// A new passphrase (`passphrase set` / `change`), for scripts.
pub(crate) const ENV_NEW: &str = "DISASTERNET_NEW_PASSPHRASE";
/// The passphrase of a locked identity backup (`identity restore`), when it differs from the
/// data directory's.
pub(crate) const ENV_BACKUP: &str = "DISASTERNET_BACKUP_PASSPHRASE";
/// Prompts before giving up on a wrong passphrase typed at the terminal.
const TRIES: usize = 3;

#[derive(Subcommand)]
pub(crate) enum PassphraseCmd {
    /// Lock this laptop's DisasterNet: encrypt the identity key and the store under a new
    /// passphrase (at least 8 characters), asked for at every start from now on.
    Set,
    /// Change the passphrase (the store is not re-written).
    Change,
    /// Remove the passphrase: the identity key and the store are stored unencrypted again.
    Remove,
}

fn from_env(name: &str) -> Option<Passphrase> {
    std::env::var(name).ok().map(Passphrase::new)
}

/// Asks on the terminal without echo; `None` when stdin is not a terminal.
fn prompt(text: &str) -> Result<Option<Passphrase>> {
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let p = rpassword::prompt_password(text)
        .map_err(|e| ApiError::new(ErrorCode::Io, format!("reading the passphrase: {e}")))?;
    Ok(Some(Passphrase::new(p)))
}

/// The current passphrase of `data_dir` when it is locked (environment, else prompt), `None`
/// when it is not locked or none can be had (the engine then says `locked`).
pub(crate) fn for_start(data_dir: &Path) -> Result<Option<Passphrase>> {
    if !atrest::is_locked(data_dir)? {
        return Ok(None);
    }
    match from_env(ENV) {
        Some(p) => Ok(Some(p)),
        None => prompt(&format!("Passphrase for {}: ", data_dir.display())),
    }
}

/// [`Client::open_with`]: no passphrase is needed while a node runs; otherwise a locked data
/// directory takes `DISASTERNET_PASSPHRASE`, else up to three prompts.
pub(crate) async fn open_client(data_dir: &Path) -> Result<Client> {
    let env = from_env(ENV);
    let first = Client::open_with(data_dir, env.as_ref()).await;
    match first {
        Err(e) if e.code == ErrorCode::Locked && env.is_none() => {
            let mut last = e;
            for _ in 0..TRIES {
                let Some(p) = prompt(&format!("Passphrase for {}: ", data_dir.display()))? else {
                    break;
                };
                match Client::open_with(data_dir, Some(&p)).await {
                    Err(e) if e.code == ErrorCode::WrongPassphrase => {
                        eprintln!("{}", e.message);
                        last = e;
                    }
                    r => return Ok(r?),
                }
            }
            Err(last.into())
        }
        r => Ok(r?),
    }
}

/// A new passphrase: `DISASTERNET_NEW_PASSPHRASE`, else asked twice (they must match).
fn new_passphrase() -> Result<Passphrase> {
    if let Some(p) = from_env(ENV_NEW) {
        return Ok(p);
    }
    let none = || {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("no new passphrase: set {ENV_NEW} or run this in a terminal"),
        )
    };
    let a = prompt("New passphrase (at least 8 characters): ")?.ok_or_else(none)?;
    a.check_new()?;
    let b = prompt("The same passphrase again: ")?.ok_or_else(none)?;
    if a != b {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "the two passphrases differ; nothing was changed",
        )
        .into());
    }
    Ok(a)
}

/// The current passphrase for `change` / `remove`.
fn current_passphrase(data_dir: &Path) -> Result<Passphrase> {
    match from_env(ENV) {
        Some(p) => Ok(p),
        None => prompt(&format!("Current passphrase for {}: ", data_dir.display()))?
            .ok_or_else(|| atrest::locked_error(data_dir).into()),
    }
}

/// The passphrases `identity restore` needs: the backup's (when it is locked:
/// `DISASTERNET_BACKUP_PASSPHRASE`, else a prompt; empty at the prompt means "the same as the
/// data directory's") and the data directory's (when it is locked).
pub(crate) fn for_restore(
    data_dir: &Path,
    backup: &Path,
) -> Result<(Option<Passphrase>, Option<Passphrase>)> {
    let dir = for_start(data_dir)?;
    let locked_backup = matches!(
        dn_node::identity::read_backup(backup),
        Err(e) if e.code == ErrorCode::Locked
    );
    let backup = if !locked_backup {
        None
    } else if let Some(p) = from_env(ENV_BACKUP) {
        Some(p)
    } else if dir.is_some() {
        prompt("Passphrase of the backup (empty: the same as this data directory's): ")?
            .filter(|p| !p.as_str().is_empty())
    } else {
        match from_env(ENV) {
            Some(p) => Some(p),
            None => prompt("Passphrase of the backup: ")?,
        }
    };
    Ok((backup, dir))
}

/// `disasternet passphrase set|change|remove`.
pub(crate) async fn run(data_dir: &Path, cmd: PassphraseCmd, json: bool) -> Result<ExitCode> {
    let view = match cmd {
        PassphraseCmd::Set => {
            if atrest::is_locked(data_dir)? {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    "this data directory is already locked; use `passphrase change` or \
                     `passphrase remove`",
                )
                .into());
            }
            let new = new_passphrase()?;
            let client = open_client(data_dir).await?;
            let r = client
                .call(calls::SetPassphrase {
                    passphrase: new.as_str().to_string(),
                })
                .await;
            client.close().await;
            r?
        }
        PassphraseCmd::Change => {
            let old = current_passphrase(data_dir)?;
            // Checked before asking for the new one (a typo is found at once).
            atrest::check_passphrase(data_dir, &old)?;
            let new = new_passphrase()?;
            let client = Client::open_with(data_dir, Some(&old)).await?;
            let r = client
                .call(calls::ChangePassphrase {
                    old: old.as_str().to_string(),
                    new: new.as_str().to_string(),
                })
                .await;
            client.close().await;
            r?
        }
        PassphraseCmd::Remove => {
            let old = current_passphrase(data_dir)?;
            let client = Client::open_with(data_dir, Some(&old)).await?;
            let r = client
                .call(calls::RemovePassphrase {
                    passphrase: old.as_str().to_string(),
                })
                .await;
            client.close().await;
            r?
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else if view.locked {
        println!(
            "{} is locked: the identity key and the store are encrypted; the passphrase is \
             needed at every start (keep it safe: without it the data cannot be recovered)",
            data_dir.display()
        );
    } else {
        println!(
            "{} is no longer locked: the identity key and the store are stored unencrypted",
            data_dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
