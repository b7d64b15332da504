//! The engine API shared by the CLI (directly or over the control socket) and the desktop app.
//! Every type here crosses a process or language boundary: serde for JSON, ts-rs for the
//! generated TypeScript bindings in `ui/src/bindings/`.
//!
//! The requests are defined once, in the `requests!` list below: each one's name, typed
//! fields and typed answer. From it come the [`Request`] enum (the JSON/control-socket
//! protocol), one typed struct per request in [`calls`] ([`Call`]: `engine.call(calls::Rooms)`
//! answers `Vec<RoomView>`), and the generated `ui/src/bindings/api.ts` (one typed function
//! per request, [`typescript_api`]), written with the ts-rs bindings and the UI's limits
//! (`limits.ts`, [`typescript_limits`]) by `cargo test -p dn-node`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ts_rs::TS;

pub use crate::diagnose::{DiagnosisView, Finding, FindingCode, Severity};

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
    /// Text, without the urgent marker (`urgent` says it; the signed bytes keep it).
    pub body: String,
    /// Marked urgent by its author (the signed body starts with `"🚨 URGENT: "`, docs/protocol.md
    /// §2.5).
    #[serde(default)]
    pub urgent: bool,
    /// Urgent and acknowledged here (by the user, or written here). Always false when not
    /// urgent.
    #[serde(default)]
    pub acknowledged: bool,
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
    /// What the message is: text, or (private rooms) a membership notice whose `body` is a
    /// readable sentence.
    #[serde(default)]
    pub kind: MessageKind,
    /// From a private room: decrypted here with the room key (`author_name` and `body` are
    /// the encrypted ones; the signed bytes hold the ciphertext).
    #[serde(default)]
    pub private: bool,
    /// The member a `remove` or `promote` notice is about (64 hex).
    #[serde(default)]
    pub subject: Option<String>,
}

/// What a message is. Open rooms only have `text`; private rooms also carry signed membership
/// notices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum MessageKind {
    /// A chat message.
    #[default]
    Text,
    /// Its author joined the private room.
    Join,
    /// Its author (an admin) removed `subject` and moved the room to a new key.
    Remove,
    /// Its author (an admin) made `subject` an admin.
    Promote,
}

/// A member of a private room, as this node knows the membership (from the signed, encrypted
/// notices and messages it holds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct MemberView {
    /// Node id (64 hex).
    pub id: String,
    /// Short fingerprint.
    pub fingerprint: String,
    /// The name it last wrote in the room with, if any.
    pub name: Option<String>,
    /// May remove members and promote others.
    pub admin: bool,
    /// Created the room.
    pub creator: bool,
    /// This node.
    pub me: bool,
}

/// An invite to a private room: whoever holds the code can read and write the room (at its
/// current key) and pass the invite on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct InviteView {
    /// The room's id on the wire (`p.` + 32 hex).
    pub room: String,
    /// The room's name.
    pub title: String,
    /// The invite code (`DNI1-…`, with a checksum that catches a typo).
    pub code: String,
    /// The code as a QR image (SVG document).
    pub qr_svg: String,
    /// The key epoch the invite opens.
    pub epoch: u32,
    /// The invite file written, when a path was given.
    pub path: Option<String>,
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
    /// Marked urgent by its author (the marker before the envelope, §2.5).
    pub urgent: bool,
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
    /// Text, exactly as signed (an urgent message keeps its marker, so the line verifies).
    pub body: String,
    /// Marked urgent by its author (`body` starts with the urgent marker, docs/protocol.md
    /// §2.5). Absent when false; `verify` refuses a line that claims it without the marker.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[ts(type = "boolean | undefined")]
    pub urgent: bool,
    /// Signature, hex.
    pub signature: String,
    /// Signed bytes, base64.
    pub signed: String,
    /// A private-room message as the exporting member read it (absent for open rooms and for
    /// private rooms the exporter holds no key for). Not covered by the author's signature
    /// (that covers the ciphertext in `body`); covered by the export's signed manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub private: Option<PrivateText>,
}

/// The decrypted text of a private-room message in an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct PrivateText {
    /// The room's name.
    pub title: String,
    /// The author's display name inside the message.
    pub author_name: String,
    /// The text (for a membership notice, a readable sentence).
    pub body: String,
}

/// A room as listed in the sidebar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct RoomView {
    /// Normalised room name; for a private room its opaque id on the wire (`p.` + 32 hex).
    /// Requests take this name.
    pub name: String,
    /// What to show: the room name; for a private room the name inside its invite and
    /// messages (never on the wire in clear).
    pub title: String,
    /// A private room: end-to-end encrypted, joined by invite.
    pub private: bool,
    /// Private room: this node may remove members and promote others.
    pub admin: bool,
    /// Private room: stored messages this node cannot read yet (their key has not arrived).
    #[ts(type = "number")]
    pub waiting_for_key: u64,
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
    /// Urgent messages in the room not acknowledged here yet.
    #[serde(default)]
    pub urgent_unacked: u32,
}

impl From<dn_store::RoomRow> for RoomView {
    fn from(r: dn_store::RoomRow) -> Self {
        RoomView {
            title: r.name.clone(),
            name: r.name,
            private: false,
            admin: false,
            waiting_for_key: 0,
            joined: r.joined,
            muted: r.muted,
            messages: r.messages,
            last_timestamp: r.last_timestamp,
            urgent_unacked: 0,
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
    /// Rooms it announced (while connected); a private room by its title when this node is a
    /// member, other private rooms left out.
    pub rooms: Vec<String>,
    /// Hop distance in the network graph (1 = direct neighbour), when reachable.
    pub hops: Option<u32>,
    /// It is one of this node's relays: it answered at a relay address added with
    /// [`Request::AddRelay`] (known locally; nothing on the wire says "relay").
    pub relay: bool,
    /// The relay address it answered at, when [`PeerView::relay`].
    pub relay_addr: Option<String>,
    /// The QUIC connection's health, while connected and once sampled (see
    /// [`crate::health`]).
    #[serde(default)]
    pub link: Option<LinkHealth>,
}

/// Quality of one link, from its RTT and loss ([`crate::health::link_quality`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum LinkQuality {
    /// RTT and loss within the "good" thresholds.
    Good,
    /// Slower or lossier than good, still usable.
    Degraded,
    /// Over the "poor" thresholds.
    Poor,
}

/// One-word health of this node's links ([`crate::health::summarize`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum HealthSummary {
    /// Every measured link is good.
    Good,
    /// At least one link is degraded or poor, the median link is not poor.
    Degraded,
    /// The median link is poor.
    Poor,
    /// No link measured (no connection yet).
    #[default]
    Isolated,
}

/// Health of the QUIC connection to one peer, from quinn's own statistics, sampled by the
/// network driver every [`crate::health::LINK_SAMPLE_EVERY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct LinkHealth {
    /// Smoothed round-trip time, microseconds.
    pub rtt_us: u32,
    /// Packets lost per thousand sent: over the last sample interval when it sent at least
    /// [`crate::health::MIN_LOSS_WINDOW_PACKETS`], else over the connection's life.
    pub loss_permille: u32,
    /// UDP bytes received on this connection.
    #[ts(type = "number")]
    pub bytes_in: u64,
    /// UDP bytes sent on this connection.
    #[ts(type = "number")]
    pub bytes_out: u64,
    /// Packets sent on this connection.
    #[ts(type = "number")]
    pub sent_packets: u64,
    /// Packets deemed lost on this connection.
    #[ts(type = "number")]
    pub lost_packets: u64,
    /// Seconds since the connection was established.
    #[ts(type = "number")]
    pub age_s: u64,
    /// Quality from RTT and loss.
    pub quality: LinkQuality,
}

/// This node's network health: its links summarised, and the protocol's own counters since
/// start.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct NodeHealth {
    /// One word for all links.
    pub summary: HealthSummary,
    /// Links measured.
    pub links: u32,
    /// Median smoothed RTT of the measured links, microseconds.
    pub median_rtt_us: Option<u32>,
    /// Largest smoothed RTT of the measured links, microseconds.
    pub worst_rtt_us: Option<u32>,
    /// Highest loss of the measured links, per thousand.
    pub worst_loss_permille: Option<u32>,
    /// Message payloads received that were already stored (copies beyond the first).
    #[ts(type = "number")]
    pub duplicates: u64,
    /// Message payloads sent.
    #[ts(type = "number")]
    pub payloads_sent: u64,
    /// New messages received and stored.
    #[ts(type = "number")]
    pub payloads_received: u64,
    /// Grafts sent (tree repairs).
    #[ts(type = "number")]
    pub grafts: u64,
    /// Prunes sent.
    #[ts(type = "number")]
    pub prunes: u64,
    /// Catch-up (reconciliation) frame bytes received, length prefixes included.
    #[ts(type = "number")]
    pub catch_up_bytes_in: u64,
    /// Catch-up (reconciliation) frame bytes sent, length prefixes included.
    #[ts(type = "number")]
    pub catch_up_bytes_out: u64,
}

/// One connected peer's link, in [`EngineEvent::Health`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct PeerLink {
    /// Peer node id, hex.
    pub id: String,
    /// Its link.
    pub link: LinkHealth,
}

/// A relay address this node keeps dialling ([`Request::AddRelay`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct RelayView {
    /// As added: `host:port`, `[v6]:port` or `[fe80::1%eth0]:port`.
    pub addr: String,
    /// The node that last answered there (64 hex), once one has.
    pub id: Option<String>,
    /// Its short fingerprint.
    pub fingerprint: Option<String>,
    /// Its display name (often empty for a relay), once known.
    pub name: Option<String>,
    /// Connected right now.
    pub connected: bool,
    /// The node answering there now is not the one first met at this address (a reinstalled
    /// relay, or someone else answering at that name): it is used as an ordinary peer, without
    /// a relay's larger budget, until the address is removed and added again.
    pub key_changed: bool,
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
    /// When the next retry of those messages is due, ms from now (0 = due now): a
    /// reconciliation of their rooms with every connected peer sharing them, 15 s after the
    /// newest one was written and then at doubling intervals up to 10 min (sooner after a new
    /// message or connection). `None` when nothing written here since start is waiting for a
    /// peer.
    #[ts(type = "number | null")]
    pub next_retry_in_ms: Option<u64>,
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
    /// Urgent messages not acknowledged here yet, in joined rooms ("1 urgent").
    #[serde(default)]
    pub urgent_unacked: u32,
    /// Link health and the protocol's counters (boxed: events stay small).
    #[serde(default)]
    pub health: Box<NodeHealth>,
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

/// Result of writing a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct BundleExportSummary {
    /// File written.
    pub path: String,
    /// Messages written.
    #[ts(type = "number")]
    pub messages: u64,
    /// Size of the file, bytes.
    #[ts(type = "number")]
    pub bytes: u64,
}

/// Result of importing a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct BundleImportReport {
    /// File read.
    pub path: String,
    /// Records read.
    #[ts(type = "number")]
    pub total: u64,
    /// Messages new here, verified and stored (they spread to this node's peers).
    #[ts(type = "number")]
    pub imported: u64,
    /// Messages this node already had (or had evicted as a carrier).
    #[ts(type = "number")]
    pub duplicates: u64,
    /// Records that are not a validly signed message (bad signature, malformed bytes).
    #[ts(type = "number")]
    pub invalid: u64,
    /// Valid messages this node's rules refused, as they would from a peer (blocked author,
    /// quota, dated more than 10 minutes ahead, no room left to carry).
    #[ts(type = "number")]
    pub refused: u64,
    /// The file ends before its trailer: records after the cut are missing.
    pub truncated: bool,
    /// The trailer's record count and SHA-256 match the file (false: truncated or altered).
    pub checksum_ok: bool,
    /// What is wrong with the file, if anything (damage that stopped the reading, data after
    /// the end).
    pub problem: Option<String>,
    /// The node that wrote the bundle, as its header says (64 hex; not signed).
    pub creator: Option<String>,
}

/// A bundle being written or imported (see [`EngineEvent::BundleProgress`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct BundleProgressView {
    /// The file (as requested).
    pub path: String,
    /// True for an import, false for an export.
    pub import: bool,
    /// Records written or read so far.
    #[ts(type = "number")]
    pub records: u64,
    /// Export: messages written; import: bytes read.
    #[ts(type = "number")]
    pub done: u64,
    /// Export: messages to write; import: size of the file, bytes.
    #[ts(type = "number")]
    pub total: u64,
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
    /// The data directory is locked with a passphrase and none was given (the message says
    /// how to give one).
    Locked,
    /// The passphrase given does not open the locked data directory or backup; nothing was
    /// changed.
    WrongPassphrase,
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
    /// Spreadsheet table (RFC 4180):
    /// `timestamp_utc,room,author_name,author_fingerprint,body,id,urgent` (`urgent`: `yes` or
    /// empty; `body` without the urgent marker).
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

/// Whether the data directory is locked with a passphrase ("Lock this laptop's DisasterNet":
/// its identity key and store encrypted at rest, docs/security.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct LockView {
    /// Locked: a passphrase is asked for at every start.
    pub locked: bool,
}

/// Name of the Tauri command that runs any [`Request`] (argument `request`, answer: the JSON of
/// its [`Call::Response`]); the generated `ui/src/bindings/api.ts` calls it.
pub const ENGINE_COMMAND: &str = "engine";

/// A typed engine request: one struct per [`Request`] variant (in [`calls`]), converting into
/// it, with the type of its answer. [`crate::Engine::call`] and [`crate::Client::call`] take
/// these and decode the answer with [`decode`].
pub trait Call: Into<Request> {
    /// The answer's type (JSON on the wire and over the control socket, ts-rs in the UI).
    type Response: Serialize + DeserializeOwned + TS;
}

/// Decodes an engine answer (JSON) into its type. The one "JSON value → T" path, used by the
/// engine, the CLI and the app.
pub fn decode<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("unexpected engine answer: {e}"),
        )
    })
}

/// Builds a typed call struct: a unit struct for a request without fields.
macro_rules! call_struct {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name;
    };
    ($(#[$m:meta])* $name:ident { $($body:tt)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name { $($body)* }
    };
}

/// The one definition of the engine API: from a list of `Variant { fields } => Response;` it
/// builds the [`Request`] enum (serde-tagged by `op`, the control-socket protocol), one typed
/// struct per request in [`calls`] implementing [`Call`], and [`typescript_api`], the
/// generated `ui/src/bindings/api.ts` (one typed function per request).
macro_rules! requests {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident $({ $(
            $(#[doc = $fdoc:literal])*
            $(#[serde($($serde:tt)*)])?
            $(#[ts(type = $tsty:literal)])?
            $field:ident : $fty:ty
        ),* $(,)? })? => $resp:ty;
    )*) => {
        /// A request to the engine (also the control-socket protocol: one JSON object per line).
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
        #[serde(tag = "op", rename_all = "snake_case")]
        #[ts(export)]
        pub enum Request {
            $(
                $(#[doc = $doc])*
                $variant $({ $(
                    $(#[doc = $fdoc])*
                    $(#[serde($($serde)*)])?
                    $(#[ts(type = $tsty)])?
                    $field: $fty
                ),* })?,
            )*
        }

        /// One typed struct per [`Request`] variant, with the same fields; each implements
        /// [`Call`] (its answer type) and converts into its [`Request`].
        pub mod calls {
            use super::*;
            $(
                call_struct! {
                    $(#[doc = $doc])*
                    $variant $({ $(
                        $(#[doc = $fdoc])*
                        pub $field: $fty
                    ),* })?
                }
                impl Call for $variant {
                    type Response = $resp;
                }
                impl From<$variant> for Request {
                    fn from(call: $variant) -> Request {
                        let $variant $({ $($field),* })? = call;
                        Request::$variant $({ $($field),* })?
                    }
                }
            )*
        }

        /// Describes every request for the TypeScript generator.
        fn request_specs() -> Vec<RequestSpec> {
            vec![$(RequestSpec {
                variant: stringify!($variant),
                op: snake_case(stringify!($variant)),
                docs: &[$($doc),*],
                fields: vec![$($(FieldSpec {
                    name: stringify!($field),
                    docs: &[$($fdoc),*],
                    ts: field_ts(<$fty as TS>::name(), None $(.or(Some($tsty)))?),
                }),*)?],
                response: <$resp as TS>::name(),
            }),*]
        }
    };
}

requests! {
    /// This node's identity.
    Identity => IdentityView;
    /// Sets the display name.
    SetName {
        /// New display name.
        name: String,
    } => IdentityView;
    /// Join (creating if new) a room.
    JoinRoom {
        /// Room name.
        room: String,
    } => RoomView;
    /// Mute or unmute a room's notifications in the app (joined or not).
    SetMuted {
        /// Room name.
        room: String,
        /// Muted from now on.
        muted: bool,
    } => RoomView;
    /// Leave a room (its messages stay stored).
    LeaveRoom {
        /// Room name.
        room: String,
    } => RoomView;
    /// Rooms: joined rooms first, then rooms with stored messages.
    Rooms => Vec<RoomView>;
    /// Sign, store durably, then spread.
    Send {
        /// Room (must be joined).
        room: String,
        /// Text.
        body: String,
        /// Mark it urgent: the signed body starts with the urgent marker, it goes first
        /// and is pinned until acknowledged (a text starting with the marker is urgent anyway).
        #[serde(default)]
        urgent: bool,
    } => MessageView;
    /// Urgent messages not acknowledged yet, newest first (at most 100): of one room, or of
    /// every joined room.
    Urgent {
        /// The room, or all joined rooms when absent.
        room: Option<String>,
    } => Vec<MessageView>;
    /// Acknowledge urgent messages of a room (local only: they stop being pinned and counted).
    AckUrgent {
        /// The room.
        room: String,
        /// The message id (64 hex), or every urgent message of the room when absent.
        id: Option<String>,
    } => RoomView;
    /// Messages of a room in room order (timestamp, author, id), the newest `limit`, optionally
    /// strictly before a message id; oldest first.
    Messages {
        /// Room.
        room: String,
        /// Most messages returned (1..=1000).
        limit: u32,
        /// Page before this message id.
        before: Option<String>,
    } => Vec<MessageView>;
    /// Known peers.
    Peers => Vec<PeerView>;
    /// Live status.
    Status => StatusView;
    /// "Why can't I see anyone?": what the running node observed of its network and what it
    /// concludes (see `diagnose.rs`); `running` is false without a network engine.
    Diagnose => DiagnosisView;
    /// Write an export (JSON Lines by default).
    Export {
        /// One room, or all when absent.
        room: Option<String>,
        /// Output file (absolute path, written by the engine's process).
        path: String,
        /// File format (absent: `jsonl`).
        #[serde(default)]
        format: ExportFormat,
    } => ExportSummary;
    /// Write a bundle (docs/protocol.md §9): the signed messages of all rooms, or of `rooms`,
    /// optionally only those dated `since_ms` or later, for another camp to import. Direct
    /// messages (`dm`) and private rooms go in as the ciphertext they are. Written atomically,
    /// owner-only; progress as `bundle_progress` events.
    ExportBundle {
        /// Output file (absolute path, written by the engine's process).
        path: String,
        /// Only these rooms (names, or private rooms by id or name); all when absent.
        rooms: Option<Vec<String>>,
        /// Only messages dated at or after this time (ms since the Unix epoch).
        #[ts(type = "number | null")]
        since_ms: Option<u64>,
    } => BundleExportSummary;
    /// Import a bundle: every record verified, then admitted like a message from a peer (and
    /// spread to this node's peers); duplicates skipped, so importing twice adds nothing. A
    /// truncated or tampered file imports what is valid and says so in the report. Progress
    /// as `bundle_progress` events.
    ImportBundle {
        /// The bundle file (absolute path, read by the engine's process).
        path: String,
    } => BundleImportReport;
    /// How far the bundle export or import of `path` running now has got (none when no such
    /// bundle is being written or imported): for a client that cannot receive events (the CLI
    /// over the control socket).
    BundleProgress {
        /// The file, exactly as given to `export_bundle` / `import_bundle`.
        path: String,
    } => Option<BundleProgressView>;
    /// Write a backup of this node's identity key (mode 0600; the file IS the identity).
    BackupIdentity {
        /// Output file (absolute path, written by the engine's process).
        path: String,
    } => BackupSummary;
    /// The network graph.
    Network => NetworkView;
    /// Send an end-to-end encrypted direct message.
    SendDm {
        /// Recipient node id (64 hex).
        to: String,
        /// Text (at most 5,900 bytes).
        body: String,
        /// Mark it urgent (docs/protocol.md §2.5): the marker goes before the envelope, so
        /// carriers take it first; the recipient sees it highlighted.
        #[serde(default)]
        urgent: bool,
    } => DmView;
    /// Direct messages exchanged with one node, oldest first.
    DmLog {
        /// The other node (64 hex).
        with: String,
        /// Most messages returned (newest ones).
        limit: u32,
    } => Vec<DmView>;
    /// Dial a peer by address (`host:port`, `[v6]:port`, `[fe80::1%eth0]:port`).
    AddPeer {
        /// Address.
        addr: String,
    } => ();
    /// Remember a relay address (`host:port` with a DNS name or an IP, `[v6]:port`) and keep
    /// dialling it, now and at every start, with backoff; a name is looked up again before
    /// every dial. Works with no node running (dialled at the next start). Answers the list.
    AddRelay {
        /// The address.
        addr: String,
    } => Vec<RelayView>;
    /// Forget a relay address (`not_found` if it is not in the list); answers the list.
    RemoveRelay {
        /// The address, as listed.
        addr: String,
    } => Vec<RelayView>;
    /// Relay addresses, in the order they were added, with their connection state.
    ListRelays => Vec<RelayView>;
    /// Ask the program that runs this node to bring its window to the front (sent by a second
    /// start of the app on the same data directory).
    Activate => ActivateView;
    /// Block or unblock an author (local moderation, kept per data directory): a blocked
    /// author's messages are hidden, not stored when they arrive, and not relayed or carried.
    /// Answers the blocked list after the change.
    Block {
        /// The author's node id (64 hex).
        author: String,
        /// Blocked from now on.
        blocked: bool,
    } => Vec<BlockedView>;
    /// Blocked authors, oldest block first.
    Blocked => Vec<BlockedView>;
    /// Create a private room (a new random key; this node is its creator and admin) and join it.
    CreatePrivateRoom {
        /// The room's name, shown to members only (same rules as a room name).
        title: String,
    } => RoomView;
    /// The invite of a private room (its current key), optionally also written to a file.
    RoomInvite {
        /// The room (its id, or its name if unambiguous).
        room: String,
        /// Also write the invite to this file (absolute path, mode 0600).
        path: Option<String>,
    } => InviteView;
    /// Join a private room with an invite code (or the text of an invite file).
    JoinInvite {
        /// The code (`DNI1-…`) or an invite file's text.
        invite: String,
    } => RoomView;
    /// Members of a private room, admins first.
    Members {
        /// The room.
        room: String,
    } => Vec<MemberView>;
    /// Remove a member of a private room (admins only): a signed notice, then a new key sent
    /// to every remaining member over end-to-end encrypted direct messages. The removed member
    /// keeps what they had and reads nothing written after.
    RemoveMember {
        /// The room.
        room: String,
        /// The member's node id (64 hex).
        member: String,
    } => Vec<MemberView>;
    /// Make a member of a private room an admin (admins only).
    PromoteMember {
        /// The room.
        room: String,
        /// The member's node id (64 hex).
        member: String,
    } => Vec<MemberView>;
    /// Whether this data directory is locked with a passphrase.
    LockState => LockView;
    /// Lock this laptop's DisasterNet: encrypt the identity key and the store under a
    /// passphrase (at least 8 characters), asked for at every start from now on. The store is
    /// copied encrypted and verified before the plain copy goes.
    SetPassphrase {
        /// The new passphrase.
        passphrase: String,
    } => LockView;
    /// Change the passphrase (the store is not re-written).
    ChangePassphrase {
        /// The current passphrase.
        old: String,
        /// The new passphrase (at least 8 characters).
        new: String,
    } => LockView;
    /// Remove the passphrase: the identity key and the store are stored unencrypted again.
    RemovePassphrase {
        /// The current passphrase.
        passphrase: String,
    } => LockView;
}

/// `SetName` → `set_name`, as serde's `rename_all = "snake_case"` writes a variant name.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// One request as the TypeScript generator sees it.
struct RequestSpec {
    variant: &'static str,
    op: String,
    docs: &'static [&'static str],
    fields: Vec<FieldSpec>,
    response: String,
}

/// One field of a request.
struct FieldSpec {
    name: &'static str,
    docs: &'static [&'static str],
    ts: String,
}

/// A field's TypeScript type: ts-rs's, unless the field says otherwise (`#[ts(type = …)]`,
/// e.g. a `u64` that JSON carries as a number).
fn field_ts(generated: String, declared: Option<&str>) -> String {
    declared.map_or(generated, str::to_string)
}

/// Header of the files generated here (not by ts-rs).
const GENERATED: &str =
    "// This file was generated from crates/dn-node/src/api.rs by `cargo test -p dn-node`. \
                         Do not edit this file manually.\n";

/// JavaScript reserved words a field may be named (a parameter cannot be).
const JS_RESERVED: &[&str] = &[
    "with", "default", "delete", "export", "function", "import", "in", "new", "this", "var",
    "void", "while", "yield", "class", "const", "enum", "let", "static",
];

/// The field as a TypeScript parameter name.
fn ts_param(field: &str) -> String {
    if JS_RESERVED.contains(&field) {
        format!("{field}_")
    } else {
        field.to_string()
    }
}

/// The binding types a TypeScript type names (`Array<RoomView>` → `RoomView`): identifiers
/// starting with a capital, except TypeScript's own generics.
fn named_types(ts: &str) -> impl Iterator<Item = &str> {
    ts.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with(|c: char| c.is_ascii_uppercase()))
        .filter(|w| !["Array", "Record", "Promise", "Partial"].contains(w))
}

/// `SetName` → `setName`.
fn lower_camel(variant: &str) -> String {
    let mut c = variant.chars();
    c.next()
        .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// A JSDoc block from doc lines (each `///` line is one literal starting with a space).
fn js_doc(out: &mut String, indent: &str, docs: &[&str], params: &[(String, String)]) {
    if docs.is_empty() && params.is_empty() {
        return;
    }
    out.push_str(&format!("{indent}/**\n"));
    for d in docs {
        out.push_str(&format!("{indent} *{}\n", d.trim_end()));
    }
    for (name, doc) in params {
        out.push_str(&format!("{indent} * @param {name} {doc}\n"));
    }
    out.push_str(&format!("{indent} */\n"));
}

/// The TypeScript module `ui/src/bindings/api.ts`: an `EngineApi` interface with one typed
/// function per [`Request`] (parameters: its fields in order; result: its [`Call::Response`]),
/// and `engineApi(send)`, which builds the tagged request and hands it to `send` (the UI's
/// transport: the Tauri command [`ENGINE_COMMAND`]).
pub fn typescript_api() -> String {
    let specs = request_specs();
    let mut imports = std::collections::BTreeSet::from(["Request"]);
    for s in &specs {
        for ts in s
            .fields
            .iter()
            .map(|f| f.ts.as_str())
            .chain([s.response.as_str()])
        {
            imports.extend(named_types(ts));
        }
    }
    let mut out = String::from(GENERATED);
    for i in &imports {
        out.push_str(&format!("import type {{ {i} }} from \"./{i}\";\n"));
    }
    out.push_str(&format!(
        "\n/** Name of the Tauri command that runs any engine request (argument `request`). */\n\
         export const ENGINE_COMMAND = \"{ENGINE_COMMAND}\";\n\n\
         /** Sends one engine request; resolves to its JSON answer, rejects with an `ApiError`. */\n\
         export type Send = (request: Request) => Promise<unknown>;\n\n\
         /** Every engine request as a typed function (one per `Request` variant). */\n\
         export interface EngineApi {{\n"
    ));
    for s in &specs {
        let params: Vec<(String, String)> = s
            .fields
            .iter()
            .map(|f| (ts_param(f.name), f.docs.join(" ").trim().to_string()))
            .collect();
        js_doc(&mut out, "  ", s.docs, &params);
        let sig: Vec<String> = s
            .fields
            .iter()
            .map(|f| format!("{}: {}", ts_param(f.name), f.ts))
            .collect();
        out.push_str(&format!(
            "  {}({}): Promise<{}>;\n",
            lower_camel(s.variant),
            sig.join(", "),
            s.response
        ));
    }
    out.push_str(
        "}\n\n/** The typed functions over a transport (`send`). */\n\
         export function engineApi(send: Send): EngineApi {\n  return {\n",
    );
    for s in &specs {
        let params: Vec<String> = s.fields.iter().map(|f| ts_param(f.name)).collect();
        let mut body = vec![format!("op: \"{}\"", s.op)];
        for f in &s.fields {
            let p = ts_param(f.name);
            body.push(if p == f.name {
                p
            } else {
                format!("{}: {p}", f.name)
            });
        }
        out.push_str(&format!(
            "    {}: ({}) => send({{ {} }}) as Promise<{}>,\n",
            lower_camel(s.variant),
            params.join(", "),
            body.join(", "),
            s.response
        ));
    }
    out.push_str("  };\n}\n");
    out
}

/// The TypeScript module `ui/src/bindings/limits.ts`: the protocol limits the UI checks
/// before sending (the engine enforces them again).
pub fn typescript_limits() -> String {
    use dn_proto::{dm, message, private};
    let limits: [(&str, usize, &str); 10] = [
        (
            "GOOD_MAX_RTT_MS",
            crate::health::GOOD_MAX_RTT_MS as usize,
            "A link with a smoothed RTT up to this (ms) and loss up to GOOD_MAX_LOSS_PERMILLE is good.",
        ),
        (
            "DEGRADED_MAX_RTT_MS",
            crate::health::DEGRADED_MAX_RTT_MS as usize,
            "A link with a smoothed RTT over this (ms) is poor.",
        ),
        (
            "GOOD_MAX_LOSS_PERMILLE",
            crate::health::GOOD_MAX_LOSS_PERMILLE as usize,
            "A link losing up to this many packets per thousand can be good.",
        ),
        (
            "DEGRADED_MAX_LOSS_PERMILLE",
            crate::health::DEGRADED_MAX_LOSS_PERMILLE as usize,
            "A link losing more than this many packets per thousand is poor.",
        ),
        (
            "MAX_BODY_BYTES",
            message::MAX_BODY_BYTES,
            "Longest message body, UTF-8 bytes.",
        ),
        (
            "MAX_DM_TEXT_BYTES",
            dm::MAX_DM_TEXT_BYTES,
            "Longest direct message text, UTF-8 bytes.",
        ),
        (
            "MIN_PASSPHRASE_CHARS",
            crate::atrest::MIN_PASSPHRASE_CHARS,
            "Shortest passphrase that locks this laptop's DisasterNet, characters.",
        ),
        (
            "MAX_PRIVATE_TEXT_BYTES",
            private::MAX_PRIVATE_TEXT_BYTES,
            "Longest text in a private room, UTF-8 bytes (its sealed envelope must fit a body).",
        ),
        (
            "MAX_NAME_BYTES",
            message::MAX_NAME_BYTES,
            "Longest display name, UTF-8 bytes.",
        ),
        (
            "MAX_ROOM_BYTES",
            message::MAX_ROOM_BYTES,
            "Longest room name, UTF-8 bytes.",
        ),
    ];
    let mut out = String::from(GENERATED);
    for (name, value, doc) in limits {
        out.push_str(&format!("\n/** {doc} */\nexport const {name} = {value};\n"));
    }
    out
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
    /// A private room changed: a key arrived (messages waiting for it can be read now) or
    /// its membership changed. Reload its messages and members.
    RoomChanged {
        /// The room now.
        room: RoomView,
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
    /// Progress of a bundle being written or imported (at most about 10 times a second, and
    /// once at the end).
    BundleProgress {
        /// The file (as requested).
        path: String,
        /// True for an import, false for an export.
        import: bool,
        /// Records written or read so far.
        #[ts(type = "number")]
        records: u64,
        /// Export: messages written; import: bytes read.
        #[ts(type = "number")]
        done: u64,
        /// Export: messages to write; import: size of the file, bytes.
        #[ts(type = "number")]
        total: u64,
    },
    /// The links' health or the protocol's counters changed (at most every
    /// [`crate::health::HEALTH_EVENT_EVERY`]; byte counts and ages alone do not count as a
    /// change).
    Health {
        /// This node's health now.
        health: NodeHealth,
        /// Every measured link, by peer.
        links: Vec<PeerLink>,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Where ts-rs writes the bindings (`TS_RS_EXPORT_DIR`, set in .cargo/config.toml).
    fn bindings_dir() -> std::path::PathBuf {
        std::env::var_os("TS_RS_EXPORT_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/bindings")
            })
    }

    fn write_if_changed(name: &str, text: &str) {
        let path = bindings_dir().join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
            std::fs::write(&path, text).unwrap();
        }
    }

    /// Writes `api.ts` and `limits.ts` beside the ts-rs bindings (`make test-bindings` then
    /// catches a stale committed copy).
    #[test]
    fn export_api_and_limits_bindings() {
        write_if_changed("api.ts", &typescript_api());
        write_if_changed("limits.ts", &typescript_limits());
    }

    #[test]
    fn ops_are_the_serde_tags() {
        let decl = <Request as TS>::decl();
        let specs = request_specs();
        assert_eq!(specs.len(), decl.matches("\"op\": ").count(), "{decl}");
        for s in &specs {
            assert!(
                decl.contains(&format!("\"op\": \"{}\"", s.op)),
                "{} in {decl}",
                s.op
            );
        }
        let v = serde_json::to_value(Request::from(calls::DmLog {
            with: "ab".into(),
            limit: 3,
        }))
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"op": "dm_log", "with": "ab", "limit": 3})
        );
        assert_eq!(Request::from(calls::Identity), Request::Identity);
    }

    #[test]
    fn generated_api_has_one_typed_function_per_request() {
        let ts = typescript_api();
        assert!(
            ts.contains("  setName(name: string): Promise<IdentityView>;"),
            "{ts}"
        );
        assert!(
            ts.contains(
                "  messages(room: string, limit: number, before: string | null): \
                 Promise<Array<MessageView>>;"
            ),
            "{ts}"
        );
        // A reserved word is renamed as a parameter, not in the request.
        assert!(
            ts.contains("dmLog: (with_, limit) => send({ op: \"dm_log\", with: with_, limit })"),
            "{ts}"
        );
        assert!(ts.contains("addPeer(addr: string): Promise<null>;"), "{ts}");
        assert!(
            ts.contains("import type { ExportFormat } from \"./ExportFormat\";"),
            "{ts}"
        );
        assert_eq!(
            ts.matches(") => send({ op: ").count(),
            request_specs().len()
        );
    }

    #[test]
    fn limits_are_the_protocol_constants() {
        let ts = typescript_limits();
        assert!(ts.contains("export const MAX_BODY_BYTES = 8192;"), "{ts}");
        assert!(
            ts.contains("export const MAX_DM_TEXT_BYTES = 5900;"),
            "{ts}"
        );
        assert!(ts.contains("export const MAX_NAME_BYTES = 64;"), "{ts}");
        assert!(ts.contains("export const MAX_ROOM_BYTES = 64;"), "{ts}");
        assert!(ts.contains("export const GOOD_MAX_RTT_MS = 100;"), "{ts}");
    }

    #[test]
    fn decode_names_a_wrong_answer_internal() {
        let e = decode::<RoomView>(serde_json::json!({"name": 1})).unwrap_err();
        assert_eq!(e.code, ErrorCode::Internal);
        let rooms: Vec<RoomView> = decode(serde_json::json!([])).unwrap();
        assert!(rooms.is_empty());
    }
}
