//! Fuzz target bodies for the node crate: the inputs that reach a node from outside the QUIC
//! protocol (LAN beacons, control-socket requests, export files, key backups).
//!
//! Each function takes arbitrary bytes and must return without panicking; where a decoded
//! value has an encoding, it also asserts the round trip. The cargo-fuzz targets in `fuzz/`
//! call them under libFuzzer and `tests/fuzz_corpus.rs` replays the committed corpus through
//! them (and through [`dn_proto::fuzzing`]) on stable. Not a public API: hidden from the docs.

use crate::api::Request;
use crate::{beacon as lan_beacon, export, identity};

/// [`lan_beacon::decode`]: never panics; a decoded beacon re-encodes to its input.
pub fn beacon(data: &[u8]) {
    if let Some((id, port)) = lan_beacon::decode(data) {
        assert_eq!(
            lan_beacon::encode(&id, port),
            data,
            "beacon does not re-encode"
        );
    }
}

/// A control-socket request line (`serde_json::from_str::<Request>`, as the control socket
/// parses it): never panics; a parsed request serialises and parses back to itself.
pub fn control_request(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(req) = serde_json::from_str::<Request>(line) else {
        return;
    };
    let json = serde_json::to_string(&req);
    let back = json.as_deref().map(serde_json::from_str::<Request>);
    assert!(
        matches!(back, Ok(Ok(ref r)) if *r == req),
        "request does not round-trip: {req:?}"
    );
}

/// [`export::verify_line`] on the bytes as text: never panics.
pub fn export_line(data: &[u8]) {
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = export::verify_line(line);
    }
}

/// [`identity::parse_backup`] on the bytes as text: never panics; a parsed key written as a
/// backup parses back to the same key.
pub fn backup(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = identity::parse_backup(text) {
        let written = format!(
            "{}\n{}\n",
            identity::BACKUP_HEADER,
            hex::encode(key.to_bytes())
        );
        let back = identity::parse_backup(&written).map(|k| k.to_bytes());
        assert_eq!(back, Ok(key.to_bytes()), "backup does not round-trip");
    }
}
