//! # dn-proto — DisasterNet protocol logic, with no I/O
//!
//! Everything two DisasterNet nodes must agree on lives here, and nothing else: no tokio, no
//! sockets, no SQLite, no wall clock. That keeps it deterministic and testable.
//!
//! - [`coding`]: the leaf every byte layout builds on: a bounds-checked big-endian
//!   [`coding::Reader`], a [`coding::Writer`] and the [`coding::Encode`] / [`coding::Decode`]
//!   traits that every wire type ([`Message`], [`topo::TopoRecord`], [`recon::ReconMsg`],
//!   [`dm::DmEnvelope`], [`Frame`]) implements. It imports nothing from the crate.
//! - [`message`]: the signed, immutable [`Message`], its signed bytes, id and validation.
//! - [`codec`]: the [`Frame`]s exchanged over a QUIC stream and their binary encoding; the
//!   only module that knows all the others' wire types.
//! - [`protocol`]: the [`Protocol`] state machine. The driver feeds it [`Input`]s (a peer
//!   connected, a frame arrived, the user published a message) and performs the [`Output`]s it
//!   returns (send a frame, report a stored message, drop a peer). Message storage is reached
//!   through the [`Storage`] trait so the same logic runs over SQLite (`dn-store`) or in memory
//!   (tests and simulators).
//! - [`private`]: private rooms: the encrypted envelope of their messages, invites and key
//!   grants, and the membership rules.
//!
//! - [`bundle`]: bundles, messages carried between camps on a file (sneakernet).
//!
//! The byte layouts are specified in `docs/protocol.md`.

pub mod bundle;
pub mod codec;
pub mod coding;
pub mod dm;
#[doc(hidden)]
pub mod fuzzing;
pub mod message;
pub mod private;
pub mod protocol;
pub mod recon;
pub mod rng;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod topo;

pub use codec::Frame;
pub use message::{Message, MessageId, NodeId};
pub use protocol::{
    Budget, Config, DropReason, Drops, Input, MemStorage, Output, Propagation, Protocol, RoomUsage,
    Storage, StorageError, Time,
};

/// Everything that can be wrong with protocol data.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// Bytes ended early, had trailing data, or broke a structural rule.
    #[error("malformed data: {0}")]
    Malformed(&'static str),
    /// A frame type this version does not know.
    #[error("unknown frame type {0}")]
    UnknownFrame(u8),
    /// A frame over the size limit.
    #[error("frame of {0} bytes is over the limit")]
    FrameTooLarge(usize),
    /// Protocol version we do not speak.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// Not a valid node id (64 hex characters / Ed25519 point).
    #[error("invalid node id")]
    BadNodeId,
    /// Not a valid message id.
    #[error("invalid message id")]
    BadMessageId,
    /// Room name breaks the rules.
    #[error("invalid room name {0:?}: use 1-64 characters a-z, 0-9, '-', '_' or '.'")]
    BadRoom(String),
    /// Display name breaks the rules.
    #[error("invalid display name: use 1-64 bytes of text without control characters")]
    BadName,
    /// Body over the limit.
    #[error("message body is {len} bytes; the limit is {max} bytes")]
    BodyTooLarge {
        /// Actual length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// Body empty or only whitespace.
    #[error("message body is empty")]
    EmptyBody,
    /// The message is dated too far ahead of this node's clock.
    #[error("message dated {ahead_ms} ms in the future (limit {limit_ms} ms); it will be accepted when its time comes")]
    FromTheFuture {
        /// How far ahead.
        ahead_ms: u64,
        /// The limit.
        limit_ms: u64,
    },
    /// A set-reconciliation message was invalid.
    #[error("reconciliation: {0}")]
    Recon(String),
    /// Signature does not verify against the author key.
    #[error("signature does not verify")]
    BadSignature,
}

impl From<coding::CodingError> for ProtoError {
    fn from(e: coding::CodingError) -> Self {
        ProtoError::Malformed(e.as_str())
    }
}
