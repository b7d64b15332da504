//! Signed test messages, made fast and deterministically.

use anyhow::Result;
use dn_proto::Message;
use ed25519_dalek::SigningKey;

/// Room used by the fixtures.
pub(crate) const ROOM: &str = "bench";

/// `n` messages in [`ROOM`] by `authors` different keys (round robin), timestamps 1 s apart
/// from `t0_ms`, bodies of about 200 bytes (the size of a typical field report).
pub(crate) fn messages(n: usize, authors: usize, t0_ms: u64) -> Result<Vec<Message>> {
    messages_in(ROOM, n, authors, t0_ms)
}

/// [`messages`] in `room`.
pub(crate) fn messages_in(
    room: &str,
    n: usize,
    authors: usize,
    t0_ms: u64,
) -> Result<Vec<Message>> {
    let keys: Vec<SigningKey> = (0..authors.max(1))
        .map(|i| {
            let mut seed = [0x5eu8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            SigningKey::from_bytes(&seed)
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let key = &keys[k % keys.len()];
        let body = format!(
            "report {k:07}: water point at sector {} is working again, about {} people queued; \
             we need blankets, clean water containers and a medic with insulin. Reply on ops.",
            k % 97,
            20 + k % 180
        );
        out.push(Message::create(
            key,
            room,
            &format!("author{}", k % keys.len()),
            t0_ms + 1000 * k as u64,
            &body,
        )?);
    }
    Ok(out)
}

/// Fills `dir`'s store with `per_room` messages in each room `name(0..rooms)` (64 authors,
/// timestamps 1 s apart ending a minute ago), joining each room first when `join` (else they
/// are stored as carried rooms are); `label` names the section in progress notes.
pub(crate) fn store_rooms(
    ctx: &crate::Ctx,
    dir: &std::path::Path,
    label: &str,
    rooms: usize,
    per_room: usize,
    name: fn(usize) -> String,
    join: bool,
) -> Result<()> {
    let store = dn_store::Store::open(&dir.join("store.sqlite3"))?;
    let now = dn_store::system_clock_ms();
    let t0 = now.saturating_sub(1000 * per_room as u64 + 60_000);
    for r in 0..rooms {
        let room = name(r);
        ctx.note(&format!(
            "{label}: signing and storing {per_room} messages in {room} ({}/{rooms}) ...",
            r + 1
        ));
        if join {
            store.join_room(&room, now)?;
        }
        let batch: Vec<(Message, u64, bool)> = messages_in(&room, per_room, 64, t0)?
            .into_iter()
            .map(|m| (m, now, false))
            .collect();
        for chunk in batch.chunks(1000) {
            store.insert_messages(chunk)?;
        }
    }
    Ok(())
}
