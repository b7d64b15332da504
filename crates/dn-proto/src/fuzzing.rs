//! Fuzz target bodies for the protocol crate: every decoder of peer-supplied bytes and the
//! [`Protocol`] entry point.
//!
//! Each function takes arbitrary bytes and must return without panicking; each also asserts
//! properties that hold for any input (a decoded value re-encodes to the same bytes, the node
//! never emits a frame its peer could not decode, outputs per input stay bounded). The
//! cargo-fuzz targets in `fuzz/` call them under libFuzzer, and `crates/dn-node/tests/
//! fuzz_corpus.rs` replays the committed corpus through them on stable, so `cargo test`
//! checks every input the fuzzer ever kept. Not a public API: hidden from the docs.

use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use crate::codec::{Frame, MAX_FRAME_BYTES, MAX_IDS_PER_FRAME};
use crate::coding::{Decode, Encode, Reader, Writer};
use crate::dm::{self, DmEnvelope};
use crate::message::{Message, MessageId, NodeId, PROTOCOL_VERSION};
use crate::private::{self, Content, Envelope, Invite, Plain, RoomId};
use crate::protocol::{Counters, Input, MemStorage, Output, Protocol, Time};
use crate::recon::{self, ReconMsg, MAX_MSG_BYTES};
use crate::topo::TopoRecord;

/// Secret key seed of the node under test in [`protocol`].
pub const NODE_SEED: [u8; 32] = [0x11; 32];
/// Secret key seeds of its two connected, hello'd peers (chunk selector bit 0 picks one).
pub const PEER_SEEDS: [[u8; 32]; 2] = [[0x22; 32], [0x33; 32]];
/// The room the node under test has joined (its three own messages are in it).
pub const ROOM: &str = "medical";
/// The node's wall clock in [`protocol`] (ms since the Unix epoch, 2023-11-14): fixed, so a
/// message's "from the future" verdict never depends on when the fuzzer runs.
pub const WALL_MS: u64 = 1_700_000_000_000;
/// Most outputs one input may produce. The largest honest fan-out is a frame of
/// [`MAX_IDS_PER_FRAME`] ids each answered once (a `Graft` sends one `Msg` per id, an `IHave`
/// sets one timer per id); twice that plus room for hellos, topology records and
/// reconciliation replies is far above any honest answer and far below a runaway loop.
pub const MAX_OUTPUTS_PER_INPUT: usize = 2 * MAX_IDS_PER_FRAME + 256;
/// Wake-ups at the protocol's deadlines per "fire timers" chunk: bounds the work of one chunk.
const MAX_TIMERS_PER_CHUNK: usize = 64;
/// Time one chunk may advance the clock, per unit of its selector's high nibble, ms.
const CHUNK_TIME_STEP_MS: u64 = 250;

/// `Frame::decode`: never panics; a decoded frame re-encodes to exactly the input bytes.
pub fn frame(data: &[u8]) {
    if let Ok(f) = Frame::decode(data) {
        let enc = f.encode();
        assert_eq!(
            enc,
            data,
            "frame {} does not re-encode to its input",
            f.kind()
        );
    }
}

/// The short-id set the [`recon`] target reconciles against: 64 entries, deterministic.
fn recon_set() -> &'static [(u64, MessageId)] {
    static SET: OnceLock<Vec<(u64, MessageId)>> = OnceLock::new();
    SET.get_or_init(|| {
        (0u64..64)
            .map(|i| {
                let id = MessageId(Sha256::digest(i.to_be_bytes()).into());
                (i * 1_000, id)
            })
            .collect()
    })
}

/// [`ReconMsg::decode`], then one [`recon::step`] against a fixed 64-entry set: never panics;
/// a decoded message re-encodes to its input; every reply fits [`MAX_MSG_BYTES`] and decodes
/// back to itself; pushes are ids of the set.
pub fn recon(data: &[u8]) {
    let Ok(msg) = ReconMsg::decode(data) else {
        return;
    };
    assert_eq!(
        msg.encode(),
        data,
        "recon message does not re-encode to its input"
    );
    let set = recon_set();
    let Ok(step) = recon::step(set, &msg) else {
        return;
    };
    for reply in &step.replies {
        let enc = reply.encode();
        assert!(enc.len() <= MAX_MSG_BYTES, "reply of {} bytes", enc.len());
        assert_eq!(
            ReconMsg::decode(&enc).as_ref(),
            Ok(reply),
            "reply does not decode"
        );
    }
    for id in &step.we_have_they_lack {
        assert!(
            set.iter().any(|(_, x)| x == id),
            "pushes an id not in the set"
        );
    }
}

/// The recipient key of the [`dm`] target.
pub const DM_RECIPIENT_SEED: [u8; 32] = [0x44; 32];
/// The sender key of the [`dm`] target.
pub const DM_SENDER_SEED: [u8; 32] = [0x55; 32];
/// The timestamp the [`dm`] target opens envelopes with.
pub const DM_TIMESTAMP: u64 = WALL_MS;

fn dm_keys() -> &'static (SigningKey, NodeId) {
    static KEYS: OnceLock<(SigningKey, NodeId)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let sender = SigningKey::from_bytes(&DM_SENDER_SEED).verifying_key();
        (
            SigningKey::from_bytes(&DM_RECIPIENT_SEED),
            NodeId(sender.to_bytes()),
        )
    })
}

/// [`DmEnvelope::decode`] of the bytes and [`dm::from_body`] of them as text: never panic; a
/// decoded envelope re-encodes to its input and [`dm::open`] with a fixed key returns (an
/// error for anything not sealed for it).
pub fn dm(data: &[u8]) {
    if let Ok(env) = DmEnvelope::decode(data) {
        assert_eq!(
            env.encode(),
            data,
            "envelope does not re-encode to its input"
        );
        let (me, sender) = dm_keys();
        let _ = dm::open(me, sender, &env, DM_TIMESTAMP);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(env) = dm::from_body(text) {
            let back = dm::from_body(&dm::to_body(&env));
            assert_eq!(back.as_ref(), Ok(&env), "body does not round-trip");
        }
    }
}

/// The first key of the room the [`private`] target opens envelopes of (its id is the room).
pub const PRIVATE_FIRST_KEY: [u8; 32] = [0x42; 32];
/// The epoch key the [`private`] target opens envelopes with (any epoch number).
pub const PRIVATE_EPOCH_KEY: [u8; 32] = [0x07; 32];
/// The author key of the messages the [`private`] target opens.
pub const PRIVATE_AUTHOR_SEED: [u8; 32] = [0x55; 32];
/// The timestamp the [`private`] target opens envelopes with.
pub const PRIVATE_TIMESTAMP: u64 = WALL_MS;

/// Opens `env` with the fixed key of the [`private`] target; an envelope that opens must be
/// exactly what sealing its plaintext with its nonce gives (the plaintext is canonical).
fn open_fixed(env: &Envelope) {
    let room = RoomId::from_key(&PRIVATE_FIRST_KEY);
    let author = node_id(&PRIVATE_AUTHOR_SEED);
    let (key, ts) = (&PRIVATE_EPOCH_KEY, PRIVATE_TIMESTAMP);
    if let Ok(plain) = private::open(&room, key, &author, ts, env) {
        let again = private::seal(&room, env.epoch, key, &author, ts, &plain, env.nonce);
        assert_eq!(
            again,
            Ok(private::to_body(env)),
            "an opened envelope does not re-seal to itself"
        );
    }
}

/// Private rooms: the bytes as an [`Envelope`] (then [`private::open`] with a fixed key), as a
/// message body ([`private::from_body`]) and as a plaintext (what `open` parses after
/// decrypting, which a fuzzer cannot reach through the AEAD): never panic; a decoded envelope
/// or body re-encodes to its input (without an urgent marker in front), a valid plaintext re-encodes to its input, an envelope
/// that opens re-seals to itself.
pub fn private(data: &[u8]) {
    if let Ok(env) = Envelope::decode(data) {
        assert_eq!(
            env.encode(),
            data,
            "envelope does not re-encode to its input"
        );
        open_fixed(&env);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(env) = private::from_body(text) {
            // An urgent body carries the marker in front of the envelope (docs/protocol.md §2.5).
            assert_eq!(
                private::to_body(&env),
                crate::message::strip_urgent(text),
                "body does not re-encode to its input"
            );
            open_fixed(&env);
        }
    }
    if let Ok(p) = private::decode_plain(data) {
        let enc = private::encode_plain(&p.room_name, &p.author_name, &p.content);
        assert_eq!(&enc[..], data, "plaintext does not re-encode to its input");
    }
}

/// Invite codes: the bytes as text through [`Invite::from_code`] and
/// [`private::grant_from_text`]: never panic; an accepted code's canonical form
/// ([`Invite::to_code`]) reads back to the same invite; error messages render.
pub fn invite(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Invite::from_code(text) {
        Ok(inv) => {
            let code = inv.to_code();
            assert_eq!(
                Invite::from_code(&code).as_ref(),
                Ok(&inv),
                "code does not round-trip"
            );
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Some(Ok(inv)) = private::grant_from_text(text) {
        let back = private::grant_from_text(&private::grant_text(&inv));
        assert_eq!(back, Some(Ok(inv)), "grant does not round-trip");
    }
}

/// Hand-made seeds of the [`private`] and [`invite`] targets: `(target, label, bytes)`, written
/// to `fuzz/corpus/<target>/seed-<label>`: envelopes of every kind sealed so that the
/// [`private`] target opens them, their bodies, plaintexts, and invite codes and grants.
pub fn private_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let room = RoomId::from_key(&PRIVATE_FIRST_KEY);
    let author = node_id(&PRIVATE_AUTHOR_SEED);
    let contents = [
        (
            "text",
            Content::Text("patient in tent 4 needs insulin".into()),
        ),
        ("join", Content::Join),
        (
            "remove",
            Content::Remove {
                member: node_id(&PEER_SEEDS[0]),
                new_epoch: 4,
            },
        ),
        (
            "promote",
            Content::Promote {
                member: node_id(&PEER_SEEDS[1]),
            },
        ),
    ];
    let mut out = Vec::new();
    for (i, (label, content)) in contents.into_iter().enumerate() {
        let plain = Plain {
            room_name: "medical".into(),
            author_name: "Ana".into(),
            content,
        };
        let bytes = private::encode_plain(&plain.room_name, &plain.author_name, &plain.content);
        out.push(("private", format!("plain-{label}"), bytes.to_vec()));
        let nonce = [i as u8 + 1; 24];
        let (key, ts) = (&PRIVATE_EPOCH_KEY, PRIVATE_TIMESTAMP);
        if let Ok(body) = private::seal(&room, 3, key, &author, ts, &plain, nonce) {
            if let Ok(env) = private::from_body(&body) {
                out.push(("private", format!("envelope-{label}"), env.encode()));
            }
            out.push(("private", format!("body-{label}"), body.into_bytes()));
        }
    }
    let inv = Invite {
        room,
        epoch: 3,
        key: PRIVATE_EPOCH_KEY,
        creator: author,
        name: "medical".into(),
    };
    let code = inv.to_code();
    let sloppy = code.to_lowercase().replace('-', " ").replace('0', "o");
    let typo = code.replacen('0', "1", 1);
    for (label, text) in [
        ("code", code.clone()),
        ("code-sloppy", format!(" {sloppy}\n")),
        ("code-typo", typo),
        ("grant", private::grant_text(&inv)),
        ("not-an-invite", "DNI2-ABCDE".to_string()),
    ] {
        out.push(("invite", label.to_string(), text.into_bytes()));
    }
    out
}

/// [`TopoRecord::decode`] then [`TopoRecord::verify`]: never panic; a decoded record with no
/// trailing bytes re-encodes to its input.
pub fn topo(data: &[u8]) {
    let mut r = Reader::new(data);
    let Ok(rec) = TopoRecord::decode(&mut r) else {
        return;
    };
    let _ = rec.verify();
    if r.finish().is_ok() {
        let mut w = Writer::default();
        rec.encode(&mut w);
        assert_eq!(
            w.into_vec(),
            data,
            "topology record does not re-encode to its input"
        );
    }
}

/// One step of the [`protocol`] harness, chosen by bits 1..=3 of a chunk's selector byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Action {
    /// Decode the chunk's bytes as a frame from the selected peer and hand it to the node.
    Frame = 0,
    /// Housekeeping ([`Input::Tick`]).
    Tick = 5,
    /// The selected peer disconnects and connects again, then says hello.
    Reconnect = 6,
    /// Fire due timers (the clock jumps to each one's time).
    Timers = 7,
}

impl Action {
    fn of(selector: u8) -> Action {
        match (selector >> 1) & 0x7 {
            5 => Action::Tick,
            6 => Action::Reconnect,
            7 => Action::Timers,
            _ => Action::Frame,
        }
    }
}

/// Builds a [`protocol`] input from chunks: `selector u8 | len u16 BE | bytes`. Selector bit 0
/// picks the peer, bits 1..=3 the [`Action`] (0..=4 all mean [`Action::Frame`]), bits 4..=7
/// advance the clock by that many × 250 ms first. Used by the seed generator.
pub fn protocol_input(chunks: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (sel, bytes) in chunks {
        let n = bytes.len().min(usize::from(u16::MAX));
        out.push(*sel);
        out.extend_from_slice(&(n as u16).to_be_bytes());
        out.extend_from_slice(&bytes[..n]);
    }
    out
}

/// Selector byte for a chunk: `peer` 0 or 1, `action`, clock advance in 250 ms steps (0..=15).
pub fn selector(peer: u8, action: Action, advance: u8) -> u8 {
    (peer & 1) | ((action as u8) << 1) | ((advance & 0xf) << 4)
}

fn split_chunks(mut data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (&sel, rest) = data.split_first()?;
        let (len, rest) = match rest {
            [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
            _ => (0, &[][..]),
        };
        let (chunk, rest) = rest.split_at(len.min(rest.len()));
        data = rest;
        Some((sel, chunk))
    })
}

/// The node's own three messages in [`ROOM`], signed once.
fn own_messages() -> &'static [Message] {
    static MSGS: OnceLock<Vec<Message>> = OnceLock::new();
    MSGS.get_or_init(|| {
        let key = SigningKey::from_bytes(&NODE_SEED);
        ["water at the school", "need insulin", "road north is open"]
            .iter()
            .enumerate()
            .filter_map(|(i, body)| {
                Message::create(&key, ROOM, "hub", WALL_MS - 60_000 + i as u64, body).ok()
            })
            .collect()
    })
}

/// The node id of `seed`.
pub fn node_id(seed: &[u8; 32]) -> NodeId {
    NodeId(SigningKey::from_bytes(seed).verifying_key().to_bytes())
}

/// The `Hello` a fuzz peer sends on connecting.
pub fn peer_hello(peer: NodeId) -> Frame {
    Frame::Hello {
        version: PROTOCOL_VERSION,
        node: peer,
        name: "peer".into(),
        rooms: vec![ROOM.into(), dm::DM_ROOM.into()],
        listen_port: 7300,
    }
}

struct Harness {
    node: Protocol,
    store: MemStorage,
    now: u64,
}

impl Harness {
    fn new() -> Harness {
        let node = Protocol::new(node_id(&NODE_SEED), "hub".into(), 7300, [ROOM.into()]);
        let mut h = Harness {
            node,
            store: MemStorage::default(),
            now: 1_000,
        };
        for m in own_messages() {
            // The driver stores a published message durably before telling the protocol.
            let _ = crate::protocol::Storage::insert(&mut h.store, m);
            h.input(Input::Published(m.clone()));
        }
        for seed in &PEER_SEEDS {
            h.connect(node_id(seed));
        }
        h
    }

    fn connect(&mut self, peer: NodeId) {
        self.input(Input::Connected { peer });
        self.input(Input::Frame {
            peer,
            frame: peer_hello(peer),
        });
    }

    /// Both clocks: the harness's monotonic time and a fixed wall clock.
    fn time(&self) -> Time {
        Time {
            mono_ms: self.now,
            wall_ms: WALL_MS,
        }
    }

    /// Feeds one input and checks the outputs, acting on them as the driver would.
    fn input(&mut self, input: Input) {
        let now = self.time();
        let outs = self.node.handle(&mut self.store, input, now);
        self.check(outs);
    }

    /// Checks the outputs of one call, acting on them as the driver would.
    fn check(&mut self, outs: Vec<Output>) {
        assert!(
            outs.len() <= MAX_OUTPUTS_PER_INPUT,
            "{} outputs for one input",
            outs.len()
        );
        let mut close = Vec::new();
        for o in outs {
            match o {
                Output::Send { frame, .. } => {
                    let enc = frame.encode();
                    assert!(
                        enc.len() <= MAX_FRAME_BYTES,
                        "sends a {}-byte frame",
                        enc.len()
                    );
                    let back = Frame::decode(&enc);
                    assert_eq!(back.as_ref(), Ok(&frame), "sends an undecodable frame");
                }
                Output::Close { peer, .. } => close.push(peer),
                _ => {}
            }
        }
        for peer in close {
            self.input(Input::Disconnected { peer });
        }
    }

    /// Moves time to the protocol's next deadlines and runs them, as a driver sleeping on
    /// `poll_timeout` would (a bounded number of wake-ups per chunk).
    fn fire_timers(&mut self) {
        for _ in 0..MAX_TIMERS_PER_CHUNK {
            let Some(at) = self.node.poll_timeout() else {
                return;
            };
            self.now = self.now.max(at);
            let now = self.time();
            let outs = self.node.handle_timeout(&mut self.store, now);
            self.check(outs);
        }
    }
}

/// The protocol entry point: a node with three messages of its own and two connected,
/// hello'd peers is fed the chunks of `data` (see [`protocol_input`]): frames are decoded with
/// [`Frame::decode`] and given to [`Protocol::handle`] as from the chosen peer; the harness
/// also ticks, reconnects peers and fires timers, and closes a peer when told to, like the
/// driver. Asserts that nothing panics, that no input yields more than
/// [`MAX_OUTPUTS_PER_INPUT`] outputs and that every frame the node sends fits
/// [`MAX_FRAME_BYTES`] and decodes back to itself.
pub fn protocol(data: &[u8]) {
    protocol_counters(data);
}

/// [`protocol`], returning the node's counters at the end (for tests of the harness itself).
pub fn protocol_counters(data: &[u8]) -> Counters {
    let mut h = Harness::new();
    for (sel, bytes) in split_chunks(data) {
        h.now += u64::from(sel >> 4) * CHUNK_TIME_STEP_MS;
        let peer = node_id(&PEER_SEEDS[usize::from(sel & 1)]);
        match Action::of(sel) {
            Action::Frame => match Frame::decode(bytes) {
                Ok(frame) => h.input(Input::Frame { peer, frame }),
                Err(_) => h.node.count_rejected(),
            },
            Action::Tick => h.input(Input::Tick),
            Action::Reconnect => {
                h.input(Input::Disconnected { peer });
                h.connect(peer);
            }
            Action::Timers => h.fire_timers(),
        }
    }
    h.node.counters()
}

/// [`crate::bundle::Decoder`] over the input as a bundle file: never panics; the same steps
/// whatever the chunk size (whole, 1 byte, 7 bytes); a bundle re-encoded from what was read
/// (its header and well-formed records) decodes back to the same records with a good trailer.
pub fn bundle(data: &[u8]) {
    use crate::bundle::{decode_chunked, encode};
    let whole = decode_chunked(data, data.len().max(1));
    for chunk in [1, 7] {
        assert_eq!(
            decode_chunked(data, chunk),
            whole,
            "bundle decoding depends on the chunk size ({chunk})"
        );
    }
    if let Some(h) = whole.header {
        let msgs: Vec<Message> = whole
            .records
            .iter()
            .filter_map(|r| r.clone().ok())
            .collect();
        let again = decode_chunked(&encode(&h, &msgs), 64);
        assert!(again.error.is_none() && again.outcome.checksum_ok && !again.outcome.truncated);
        let back: Vec<Message> = again.records.into_iter().filter_map(Result::ok).collect();
        assert_eq!(back, msgs, "re-encoded bundle records differ");
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn corpus(target: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(target)
    }

    /// The committed seeds of the private-room targets are what [`private_seeds`] makes (else
    /// rerun the seed writer, fuzz/README.md), and every committed input of those targets
    /// replays without a panic. (`crates/dn-node/tests/fuzz_corpus.rs` replays all targets.)
    #[test]
    fn private_seed_corpus_is_current_and_replays() {
        let seeds = private_seeds();
        assert!(seeds.iter().any(|(t, _, _)| *t == "private"));
        assert!(seeds.iter().any(|(t, _, _)| *t == "invite"));
        for (target, label, bytes) in &seeds {
            let path = corpus(target).join(format!("seed-{label}"));
            let on_disk =
                std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(&on_disk, bytes, "{} is stale", path.display());
        }
        for (target, body) in [("private", private as fn(&[u8])), ("invite", invite)] {
            let mut n = 0;
            for entry in std::fs::read_dir(corpus(target)).unwrap() {
                body(&std::fs::read(entry.unwrap().path()).unwrap());
                n += 1;
            }
            assert!(n >= 5, "{target}: {n} inputs");
        }
    }

    /// The seeds reach the interesting paths: every envelope opens, the codes parse.
    #[test]
    fn private_seeds_open_and_parse() {
        let room = RoomId::from_key(&PRIVATE_FIRST_KEY);
        let author = node_id(&PRIVATE_AUTHOR_SEED);
        let mut opened = 0;
        for (target, label, bytes) in private_seeds() {
            if label.starts_with("envelope-") {
                let env = Envelope::decode(&bytes).unwrap();
                private::open(&room, &PRIVATE_EPOCH_KEY, &author, PRIVATE_TIMESTAMP, &env).unwrap();
                opened += 1;
            }
            if target == "invite" && label.starts_with("code") && label != "code-typo" {
                Invite::from_code(std::str::from_utf8(&bytes).unwrap()).unwrap();
            }
        }
        assert_eq!(opened, 4);
    }

    /// A private-room body behind the urgent marker goes through the `private` target like the
    /// body itself (docs/protocol.md §2.5).
    #[test]
    fn urgent_private_bodies_replay_through_the_private_target() {
        let mut n = 0;
        for (target, _, bytes) in private_seeds() {
            let Ok(text) = std::str::from_utf8(&bytes) else {
                continue;
            };
            if target == "private" && private::from_body(text).is_ok() {
                private(format!("{}{text}", crate::message::URGENT_MARKER).as_bytes());
                n += 1;
            }
        }
        assert!(n > 0, "no private body among the seeds");
    }

    #[test]
    #[ignore = "writes the private-room seeds into fuzz/corpus; run by hand (see fuzz/README.md)"]
    fn write_private_seed_corpus() {
        for (target, label, bytes) in private_seeds() {
            let dir = corpus(target);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("seed-{label}")), bytes).unwrap();
        }
    }
}
