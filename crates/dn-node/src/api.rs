//! The engine API shared by the CLI (directly or over the control socket) and the desktop app.
//! Every type here crosses a process or language boundary: serde for JSON, ts-rs for the
//! generated TypeScript bindings in `ui/src/bindings/`.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// A stored message as shown to users and scripts. `log --json` and `export` use these field
/// names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct MessageView {
    /// Message id: lowercase hex SHA-256 of the signed bytes.
    pub id: String,
    /// Room name.
    pub room: String,
    /// Author node id (64 lowercase hex).
    pub author: String,
    /// Author display name at sending time.
    pub author_name: String,
    /// Author clock, ms since the Unix epoch.
    #[ts(type = "number")]
    pub timestamp: u64,
    /// Text.
    pub body: String,
    /// Ed25519 signature, hex.
    pub signature: String,
    /// The exact signed bytes, base64 (standard alphabet, padded).
    pub signed: String,
    /// When this node stored it, ms since the Unix epoch.
    #[ts(type = "number")]
    pub received_at: u64,
    /// True when this node wrote it.
    pub local: bool,
    /// Written here: peers it was pushed to or that hold it (0 = stored locally only).
    pub sent_to: u32,
    /// Written here: peers known to hold it (they returned or announced it, or reconciled the
    /// room with this node since).
    pub held_by: u32,
}

/// A direct message, decrypted (only its sender and recipient ever see this).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DmView {
    /// Id of the carrying message.
    pub id: String,
    /// The other party (hex id).
    pub peer: String,
    /// Author (hex id).
    pub author: String,
    /// Author display name.
    pub author_name: String,
    /// Author clock, ms since the Unix epoch.
    #[ts(type = "number")]
    pub timestamp: u64,
    /// Plain text.
    pub body: String,
    /// True when this node sent it.
    pub outgoing: bool,
    /// When this node stored it.
    #[ts(type = "number")]
    pub received_at: u64,
}

/// One line of a JSON Lines export: exactly the fields needed to verify a message offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ExportLine {
    /// Message id (hex SHA-256 of `signed`).
    pub id: String,
    /// Room.
    pub room: String,
    /// Author id, hex.
    pub author: String,
    /// Author display name.
    pub author_name: String,
    /// ms since the Unix epoch.
    #[ts(type = "number")]
    pub timestamp: u64,
    /// Text.
    pub body: String,
    /// Signature, hex.
    pub signature: String,
    /// Signed bytes, base64.
    pub signed: String,
}

/// A room as listed in the sidebar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct RoomView {
    /// Normalised room name.
    pub name: String,
    /// Whether this node is a member.
    pub joined: bool,
    /// The user muted the room's notifications (kept in the store, per data directory).
    pub muted: bool,
    /// Stored messages in the room.
    #[ts(type = "number")]
    pub messages: u64,
    /// Timestamp of the newest message, if any.
    #[ts(type = "number | null")]
    pub last_timestamp: Option<u64>,
}

impl From<dn_store::RoomRow> for RoomView {
    fn from(r: dn_store::RoomRow) -> Self {
        RoomView {
            name: r.name,
            joined: r.joined,
            muted: r.muted,
            messages: r.messages,
            last_timestamp: r.last_timestamp,
        }
    }
}

/// An author this user blocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct BlockedView {
    /// Node id (64 hex).
    pub id: String,
    /// Short fingerprint.
    pub fingerprint: String,
    /// The name it last signed a message with or said hello with, if known.
    pub name: Option<String>,
    /// When it was blocked, ms since the Unix epoch.
    #[ts(type = "number")]
    pub since: u64,
}

/// A known peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct PeerView {
    /// Node id, hex.
    pub id: String,
    /// Short fingerprint (`abcd-ef01-2345-6789`, 64 bits).
    pub fingerprint: String,
    /// Last display name it announced.
    pub name: String,
    /// Last known addresses (`ip:port`).
    pub addresses: Vec<String>,
    /// Connected right now.
    pub connected: bool,
    /// Last time it was connected, ms since the Unix epoch.
    #[ts(type = "number | null")]
    pub last_seen: Option<u64>,
    /// Rooms it announced (while connected).
    pub rooms: Vec<String>,
    /// Hop distance in the network graph (1 = direct neighbour), when reachable.
    pub hops: Option<u32>,
}

/// A node in the network map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct NetworkNode {
    /// Node id, hex.
    pub id: String,
    /// Short fingerprint.
    pub fingerprint: String,
    /// Display name from its signed neighbour list (may be empty).
    pub name: String,
    /// Hop distance from this node (0 = this node), when reachable.
    pub hops: Option<u32>,
    /// Directly connected to this node.
    pub connected: bool,
    /// This node itself.
    pub me: bool,
}

/// A link in the network map (undirected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct NetworkLink {
    /// One end (hex id).
    pub a: String,
    /// Other end (hex id).
    pub b: String,
}

/// The network this node can see, from the signed neighbour lists it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct NetworkView {
    /// Nodes, this node first, then by hop distance.
    pub nodes: Vec<NetworkNode>,
    /// Links.
    pub links: Vec<NetworkLink>,
}

/// This node's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct IdentityView {
    /// Node id (Ed25519 public key), 64 lowercase hex.
    pub id: String,
    /// Short fingerprint.
    pub fingerprint: String,
    /// Display name, once set.
    pub name: Option<String>,
}

/// Live state of the node, for `status` and the app's status bar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct StatusView {
    /// Identity.
    pub identity: IdentityView,
    /// True when a node (network engine) runs on this data dir.
    pub running: bool,
    /// Address the QUIC endpoint listens on, when running.
    pub listen: Option<String>,
    /// Whether mDNS discovery is on.
    pub mdns: bool,
    /// Peers connected now.
    pub connected_peers: u32,
    /// Peers ever seen.
    pub known_peers: u32,
    /// Rooms joined.
    pub rooms: Vec<RoomView>,
    /// Messages stored.
    #[ts(type = "number")]
    pub messages: u64,
    /// Messages received from peers since start.
    #[ts(type = "number")]
    pub received: u64,
    /// Invalid frames/messages dropped since start.
    #[ts(type = "number")]
    pub rejected: u64,
    /// Last time a message arrived from a peer, ms since the Unix epoch.
    #[ts(type = "number | null")]
    pub last_received_at: Option<u64>,
    /// Last time a peer finished offering a shared room (catch-up), ms since the Unix epoch.
    #[ts(type = "number | null")]
    pub last_sync_at: Option<u64>,
    /// The outgoing queue: messages written here that no peer is known to hold yet (they stay
    /// stored and go out when peers are reachable).
    #[ts(type = "number")]
    pub queued: u64,
    /// Data directory.
    pub data_dir: String,
    /// The network graph as seen from here.
    pub network: NetworkView,
    /// Rooms carried for others (not joined; direct messages not listed).
    pub carried_rooms: Vec<String>,
    /// The carry quota is used up: carried rooms are not being taken in (what is kept for
    /// others is this node's own messages, its DMs and ids of evicted messages).
    pub carry_quota_full: bool,
    /// Messages kept for others (rooms not joined) evicted under the carry quota since start,
    /// oldest first.
    #[ts(type = "number")]
    pub carry_evicted: u64,
    /// What this node refused, dropped or cut since start to protect itself, by reason
    /// (`rate_limited`, `not_reading`, `quota_author`, …; see docs/security.md). Only reasons
    /// that counted something are listed.
    #[ts(type = "Record<string, number>")]
    pub drops: std::collections::BTreeMap<String, u64>,
}

/// Result of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ExportSummary {
    /// File written.
    pub path: String,
    /// Messages written.
    #[ts(type = "number")]
    pub messages: u64,
}

/// Answer to [`Request::Activate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ActivateView {
    /// True when the node runs inside the desktop app, which now shows its window; false for a
    /// headless `disasternet node`.
    pub window: bool,
}

/// Result of verifying an export file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct VerifySummary {
    /// Lines checked (blank lines are skipped).
    #[ts(type = "number")]
    pub lines: u64,
    /// Lines that verified.
    #[ts(type = "number")]
    pub valid: u64,
    /// Failures: line number (1-based) and reason.
    pub failures: Vec<VerifyFailure>,
}

/// One failing line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct VerifyFailure {
    /// 1-based line number.
    #[ts(type = "number")]
    pub line: u64,
    /// Why it failed.
    pub reason: String,
}

/// An error that crosses to the CLI or the UI: a stable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, thiserror::Error)]
#[ts(export)]
#[error("{message}")]
pub struct ApiError {
    /// Stable machine code, e.g. `invalid_input`, `not_found`, `storage`, `io`, `busy`.
    pub code: ErrorCode,
    /// One line for humans.
    pub message: String,
}

/// Stable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ErrorCode {
    /// The request was wrong (bad room name, body too large, bad argument).
    InvalidInput,
    /// A room, peer or file does not exist.
    NotFound,
    /// A display name must be set first.
    NoName,
    /// The database failed.
    Storage,
    /// A file or socket operation failed.
    Io,
    /// Another node already runs on this data dir.
    Busy,
    /// Anything else.
    Internal,
}

impl ApiError {
    /// Builds an error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

/// Format of an export file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum ExportFormat {
    /// JSON Lines with the signed bytes: verifiable offline (`disasternet verify`).
    #[default]
    Jsonl,
    /// Spreadsheet table (RFC 4180): `timestamp_utc,room,author_name,author_fingerprint,body,id`.
    Csv,
    /// A printable, self-contained HTML report grouped by room.
    Html,
}

/// Result of an identity backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct BackupSummary {
    /// File written.
    pub path: String,
}

/// Result of an identity restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct RestoreSummary {
    /// The node id now in use (64 hex).
    pub id: String,
    /// Where the previous, different key was kept (absent when there was none or it was the
    /// same identity).
    pub previous_key: Option<String>,
}

/// A request to the engine (also the control-socket protocol: one JSON object per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "op", rename_all = "snake_case")]
#[ts(export)]
pub enum Request {
    /// → `IdentityView`
    Identity,
    /// → `IdentityView`
    SetName {
        /// New display name.
        name: String,
    },
    /// Join (creating if new) a room. → `RoomView`
    JoinRoom {
        /// Room name.
        room: String,
    },
    /// Mute or unmute a room's notifications in the app (joined or not). → `RoomView`
    SetMuted {
        /// Room name.
        room: String,
        /// Muted from now on.
        muted: bool,
    },
    /// Leave a room (its messages stay stored). → `RoomView`
    LeaveRoom {
        /// Room name.
        room: String,
    },
    /// → `Vec<RoomView>` (joined rooms first, then rooms with stored messages)
    Rooms,
    /// Sign, store durably, then spread. → `MessageView`
    Send {
        /// Room (must be joined).
        room: String,
        /// Text.
        body: String,
    },
    /// Messages of a room in room order (timestamp, author, id), the newest `limit`, optionally
    /// strictly before a message id. → `Vec<MessageView>` oldest first.
    Messages {
        /// Room.
        room: String,
        /// Most messages returned (1..=1000).
        limit: u32,
        /// Page before this message id.
        before: Option<String>,
    },
    /// → `Vec<PeerView>`
    Peers,
    /// → `StatusView`
    Status,
    /// Write an export (JSON Lines by default). → `ExportSummary`
    Export {
        /// One room, or all when absent.
        room: Option<String>,
        /// Output file (absolute path, written by the engine's process).
        path: String,
        /// File format (absent: `jsonl`).
        #[serde(default)]
        format: ExportFormat,
    },
    /// Write a backup of this node's identity key (mode 0600; the file IS the identity).
    /// → `BackupSummary`
    BackupIdentity {
        /// Output file (absolute path, written by the engine's process).
        path: String,
    },
    /// The network graph. → `NetworkView`
    Network,
    /// Send an end-to-end encrypted direct message. → `DmView`
    SendDm {
        /// Recipient node id (64 hex).
        to: String,
        /// Text (at most 5,900 bytes).
        body: String,
    },
    /// Direct messages exchanged with one node, oldest first. → `Vec<DmView>`
    DmLog {
        /// The other node (64 hex).
        with: String,
        /// Most messages returned (newest ones).
        limit: u32,
    },
    /// Dial a peer by address (`host:port`). → `null`
    AddPeer {
        /// Address.
        addr: String,
    },
    /// Ask the program that runs this node to bring its window to the front (sent by a second
    /// start of the app on the same data directory). → `ActivateView`
    Activate,
    /// Block or unblock an author (local moderation, kept per data directory): a blocked
    /// author's messages are hidden, not stored when they arrive, and not relayed or carried.
    /// → `Vec<BlockedView>` (the list after the change)
    Block {
        /// The author's node id (64 hex).
        author: String,
        /// Blocked from now on.
        blocked: bool,
    },
    /// Blocked authors, oldest block first. → `Vec<BlockedView>`
    Blocked,
}

/// Something that happened, pushed to the app (Tauri events) and subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
#[ts(export)]
pub enum EngineEvent {
    /// A message was stored (sent locally or received).
    Message {
        /// The message.
        message: MessageView,
    },
    /// A peer connected, disconnected or changed name/rooms.
    Peer {
        /// The peer now.
        peer: PeerView,
    },
    /// Counters or room list changed (debounced by the engine).
    Status {
        /// Status now.
        status: StatusView,
    },
    /// The delivery state of a message written here changed.
    Delivery {
        /// Message id.
        id: String,
        /// Peers it was pushed to or that hold it.
        sent_to: u32,
        /// Peers known to hold it.
        held_by: u32,
    },
    /// A room was reconciled with a peer: every message written here in it is held there now
    /// (reload the delivery states of that room).
    DeliveryChanged {
        /// Room.
        room: String,
    },
    /// A direct message to or from this node was stored.
    Dm {
        /// The message, decrypted.
        dm: DmView,
    },
    /// The network graph changed (debounced by the engine).
    Network {
        /// Graph now.
        network: NetworkView,
    },
    /// Progress of an export being written (at most every 100 ms, and once at the end with
    /// `done == total`).
    ExportProgress {
        /// The file being written (as requested).
        path: String,
        /// Messages written so far.
        #[ts(type = "number")]
        done: u64,
        /// Messages to write.
        #[ts(type = "number")]
        total: u64,
    },
    /// Another start of the app on this data directory asked this one to show its window
    /// (single instance per data directory). Front ends without a window ignore it.
    Activate,
}

impl From<dn_store::StoreError> for ApiError {
    fn from(e: dn_store::StoreError) -> Self {
        ApiError::new(ErrorCode::Storage, e.to_string())
    }
}
