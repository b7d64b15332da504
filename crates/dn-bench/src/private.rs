//! Section 11: reading a private room. Its messages are stored sealed (as they travel); the
//! core opens them when it shows them. The first read of a room builds its state (membership,
//! names, messages waiting for a key) by opening every message once; later pages open only
//! what they show. Beside the same work on an open room of the same size, through the real
//! engine (`dn_node::Client` on a data directory, no node running).

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Context, Result};
use dn_node::{calls, Client};
use dn_proto::private::{self, Content, Plain, RoomId, HIDDEN_AUTHOR_NAME};
use dn_proto::{Message, NodeId};
use dn_store::Store;
use ed25519_dalek::SigningKey;
use serde_json::json;

use crate::{fixtures, round2, stats, Ctx, Section};

/// Goal: a page of 100 messages of a private room within 2× the open room's (warm), and the
/// first read of a 100k-message room under 2 s.
const GOAL_WARM_RATIO: f64 = 2.0;
const GOAL_COLD_MS: f64 = 2000.0;

fn sealed(n: usize, rid: &RoomId, key: &[u8; 32], t0: u64) -> Result<Vec<Message>> {
    let authors: Vec<SigningKey> = (0..64u8)
        .map(|i| SigningKey::from_bytes(&[i.wrapping_add(100); 32]))
        .collect();
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let a = &authors[k % authors.len()];
        let id = NodeId(a.verifying_key().to_bytes());
        let ts = t0 + 1000 * k as u64;
        let plain = Plain {
            room_name: "bench-private".into(),
            author_name: format!("author{}", k % authors.len()),
            content: Content::Text(format!(
                "report {k:07}: water point at sector {} is working again, about {} people \
                 queued; we need blankets, clean water containers and a medic with insulin.",
                k % 97,
                20 + k % 180
            )),
        };
        let mut nonce = [0u8; 24];
        nonce[..8].copy_from_slice(&(k as u64).to_le_bytes());
        let body = private::seal(rid, 0, key, &id, ts, &plain, nonce)?;
        out.push(Message::create(
            a,
            &rid.room_name(),
            HIDDEN_AUTHOR_NAME,
            ts,
            &body,
        )?);
    }
    Ok(out)
}

/// Times of `Messages {room, limit 100}`: the first call, then `warm` more (ms).
async fn pages(c: &Client, room: &str, warm: usize) -> Result<(f64, Vec<f64>, usize)> {
    let page = || calls::Messages {
        room: room.to_string(),
        limit: 100,
        before: None,
    };
    let t = Instant::now();
    let first = c.call(page()).await?;
    let cold = t.elapsed().as_secs_f64() * 1000.0;
    let mut times = Vec::with_capacity(warm);
    for _ in 0..warm {
        let t = Instant::now();
        c.call(page()).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((cold, times, first.len()))
}

pub(crate) fn run(ctx: &Ctx) -> Result<Section> {
    let n = if ctx.quick { 20_000 } else { 100_000 };
    ctx.note(&format!(
        "private: sealing, signing and storing {n} private and {n} open messages ..."
    ));
    let dir = tempfile::Builder::new()
        .prefix("dn-bench-private-")
        .tempdir()
        .context("creating a temp dir")?;
    let node_key = dn_node::identity::load_or_create(dir.path())?;
    let me = NodeId(node_key.verifying_key().to_bytes());
    let room_key = [9u8; 32];
    let rid = RoomId::from_key(&room_key);
    let room = rid.room_name();
    let t0 = dn_store::system_clock_ms().saturating_sub(200 * 86_400_000);
    {
        let store = Store::open(&dir.path().join(dn_node::core::STORE_FILE))?;
        for msgs in [
            sealed(n, &rid, &room_key, t0)?,
            fixtures::messages(n, 64, t0)?,
        ] {
            for chunk in msgs.chunks(1000) {
                let batch: Vec<_> = chunk.iter().map(|m| (m.clone(), t0, false)).collect();
                store.insert_messages(&batch)?;
            }
        }
        store.add_private_room(&room, "bench-private", &me, 1)?;
        store.add_room_key(&room, 0, &room_key, 1)?;
        store.join_room(&room, 1)?;
        store.join_room(fixtures::ROOM, 1)?;
        store.set_setting("display_name", "bench")?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (p_cold, p_warm, p_len, o_cold, o_warm, rooms_ms) = rt.block_on(async {
        let c = Client::open(dir.path()).await?;
        let (p_cold, p_warm, p_len) = pages(&c, &room, 30).await?;
        let (o_cold, o_warm, _) = pages(&c, fixtures::ROOM, 30).await?;
        let mut rooms_ms = Vec::new();
        for _ in 0..30 {
            let t = Instant::now();
            c.call(calls::Rooms).await?;
            rooms_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        c.close().await;
        anyhow::Ok((p_cold, p_warm, p_len, o_cold, o_warm, rooms_ms))
    })?;
    anyhow::ensure!(
        p_len == 100,
        "the private page showed {p_len} messages, not 100"
    );
    let (pw, ow) = (stats::pct(&p_warm, 0.5), stats::pct(&o_warm, 0.5));
    let ratio = pw / ow.max(1e-9);
    let met = ratio <= GOAL_WARM_RATIO && p_cold <= GOAL_COLD_MS;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "== 11. Private rooms: reading sealed messages through the engine"
    );
    let _ = writeln!(
        text,
        "   {n} messages in a private room and {n} in an open room (~200-byte texts), one data \
         directory, dn_node::Client (no node running). Goal: a warm page ≤ {GOAL_WARM_RATIO}× \
         the open room's, the first read ≤ {GOAL_COLD_MS:.0} ms."
    );
    let _ = writeln!(
        text,
        "   first page of 100 (builds the room state: opens all {n}): private {p_cold:.0} ms \
         ({:.1} µs per message), open {o_cold:.1} ms",
        p_cold * 1000.0 / n as f64
    );
    let _ = writeln!(
        text,
        "   later pages of 100, p50: private {pw:.2} ms, open {ow:.2} ms ({ratio:.2}×); \
         room list p50 {:.2} ms — goal {}",
        stats::pct(&rooms_ms, 0.5),
        if met { "met" } else { "MISSED" }
    );
    let json = json!({
        "params": { "messages": n },
        "private_first_page_ms": round2(p_cold),
        "private_open_us_per_message": round2(p_cold * 1000.0 / n as f64),
        "open_first_page_ms": round2(o_cold),
        "private_page_ms_p50": round2(pw),
        "open_page_ms_p50": round2(ow),
        "rooms_ms_p50": round2(stats::pct(&rooms_ms, 0.5)),
        "goal_met": met,
    });
    Ok(Section { text, json })
}
