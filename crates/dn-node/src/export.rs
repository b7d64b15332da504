//! Verifiable exports: JSON Lines, one message per line with its exact signed bytes, and the
//! offline verifier that checks such a file with nothing but the file itself.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use base64::Engine as _;
use dn_proto::{Message, MessageId};
use dn_store::Store;
use sha2::{Digest, Sha256};

use crate::api::{ApiError, ErrorCode, ExportLine, ExportSummary, VerifyFailure, VerifySummary};

fn io(path: &Path, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::Io, format!("{}: {e}", path.display()))
}

/// The export line of a message.
pub fn export_line(m: &Message) -> ExportLine {
    let signed = m.signed_bytes();
    ExportLine {
        id: MessageId(Sha256::digest(&signed).into()).to_hex(),
        room: m.room.clone(),
        author: m.author.to_hex(),
        author_name: m.author_name.clone(),
        timestamp: m.timestamp,
        body: m.body.clone(),
        signature: hex::encode(m.signature),
        signed: base64::engine::general_purpose::STANDARD.encode(signed),
    }
}

/// Writes the messages of `room` (or all rooms) in room order to `path`, atomically (a
/// temporary file renamed into place once complete and synced).
pub fn export_jsonl(
    store: &Store,
    room: Option<&str>,
    path: &Path,
) -> Result<ExportSummary, ApiError> {
    let file_name = path.file_name().ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("{} is not a file path", path.display()),
        )
    })?;
    let tmp = path.with_file_name(format!(".{}.partial", file_name.to_string_lossy()));
    let f = File::create(&tmp).map_err(|e| io(&tmp, e))?;
    let mut w = BufWriter::new(f);
    let mut n = 0u64;
    let res = store.for_each_message(room, |sm| -> Result<(), ApiError> {
        let line = serde_json::to_string(&export_line(&sm.message))
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        w.write_all(line.as_bytes())
            .and_then(|()| w.write_all(b"\n"))
            .map_err(|e| io(&tmp, e))?;
        n += 1;
        Ok(())
    });
    let finish = res
        .and_then(|()| w.into_inner().map_err(|e| io(&tmp, e.error())))
        .and_then(|f| f.sync_all().map_err(|e| io(&tmp, e)))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| io(path, e)));
    if let Err(e) = finish {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(ExportSummary {
        path: path.display().to_string(),
        messages: n,
    })
}

/// Checks one export line: JSON shape, signed bytes decode, fields match the signed bytes,
/// id is the SHA-256 of the signed bytes, and the signature verifies against the author key.
pub fn verify_line(line: &str) -> Result<(), String> {
    let l: ExportLine =
        serde_json::from_str(line).map_err(|e| format!("not a valid export line: {e}"))?;
    let signed = base64::engine::general_purpose::STANDARD
        .decode(&l.signed)
        .map_err(|_| "signed is not valid base64".to_string())?;
    let sig: [u8; 64] = hex::decode(&l.signature)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| "signature is not 128 hex characters".to_string())?;
    let m = Message::from_signed_bytes(&signed, sig).map_err(|e| format!("signed bytes: {e}"))?;
    let id = MessageId(Sha256::digest(&signed).into()).to_hex();
    if l.id != id {
        return Err(format!(
            "id does not match the signed bytes (expected {id})"
        ));
    }
    let mismatch = [
        ("room", l.room == m.room),
        ("author", l.author == m.author.to_hex()),
        ("author_name", l.author_name == m.author_name),
        ("timestamp", l.timestamp == m.timestamp),
        ("body", l.body == m.body),
    ];
    if let Some((field, _)) = mismatch.iter().find(|(_, ok)| !ok) {
        return Err(format!("field {field} differs from the signed bytes"));
    }
    m.verify().map_err(|e| e.to_string())
}

/// Verifies every line of an export file.
pub fn verify_file(path: &Path) -> Result<VerifySummary, ApiError> {
    let f = File::open(path).map_err(|e| io(path, e))?;
    let mut s = VerifySummary {
        lines: 0,
        valid: 0,
        failures: vec![],
    };
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let lineno = i as u64 + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                s.lines += 1;
                s.failures.push(VerifyFailure {
                    line: lineno,
                    reason: format!("unreadable: {e}"),
                });
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        s.lines += 1;
        match verify_line(&line) {
            Ok(()) => s.valid += 1,
            Err(reason) => s.failures.push(VerifyFailure {
                line: lineno,
                reason,
            }),
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    #[test]
    fn line_roundtrip_and_tamper_detection() {
        let k = SigningKey::from_bytes(&[5u8; 32]);
        let m = Message::create(&k, "medical", "Ana", 42, "two casualties").unwrap();
        let good = serde_json::to_string(&export_line(&m)).unwrap();
        verify_line(&good).unwrap();
        let bad = good.replace("two casualties", "no casualties");
        assert!(verify_line(&bad).unwrap_err().contains("body"));
        let mut l = export_line(&m);
        l.signature = hex::encode([0u8; 64]);
        assert!(verify_line(&serde_json::to_string(&l).unwrap()).is_err());
        assert!(verify_line("{not json").is_err());
    }
}
