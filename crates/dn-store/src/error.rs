//! The store's error type.

use std::path::PathBuf;

use dn_proto::MessageId;
use rusqlite::ErrorCode;

/// Everything that can go wrong in the store.
///
/// Each variant's message already includes its cause, so callers can print it as is.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error (I/O, lock timeout, constraint, …).
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// The file is not a SQLite database, belongs to another program, or holds data this
    /// code cannot read back (a message row that does not parse, a bad id…).
    #[error("database is corrupt or not a DisasterNet database: {0}")]
    Corrupt(String),
    /// The database was written by a newer version of DisasterNet.
    #[error(
        "database schema version {found} is newer than this program supports ({supported}); \
         upgrade DisasterNet"
    )]
    TooNew {
        /// `user_version` found in the file.
        found: i64,
        /// Newest schema version this code knows.
        supported: i64,
    },
    /// A file system operation failed (creating the database directory).
    #[error("{}: {error}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The store is encrypted at rest and the key given does not open it (or no key was given
    /// for an encrypted store, or a key for a plain one). Nothing was changed; this is never a
    /// sign of damage.
    #[error("wrong store key: {0}")]
    WrongKey(String),
    /// A message id given as a reference point is not stored (in that room).
    #[error("message {0} is not stored")]
    NotFound(MessageId),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::Error as E;
        match &e {
            _ if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
                StoreError::Corrupt(format!("not a SQLite database ({e})"))
            }
            _ if e.sqlite_error_code() == Some(ErrorCode::DatabaseCorrupt) => {
                StoreError::Corrupt(format!("damaged database file ({e})"))
            }
            // A stored value of the wrong type or range: the data, not the query, is wrong.
            E::InvalidColumnType(..)
            | E::FromSqlConversionFailure(..)
            | E::IntegralValueOutOfRange(..)
            | E::Utf8Error(..) => StoreError::Corrupt(format!("unexpected stored value ({e})")),
            _ => StoreError::Sqlite(e),
        }
    }
}

impl From<StoreError> for dn_proto::StorageError {
    fn from(e: StoreError) -> Self {
        dn_proto::StorageError(e.to_string())
    }
}
