//! A hostile peer: speaks the real protocol over real QUIC/TLS with keys of its own, and sends
//! what an attacker with a valid key would (issue #9). Used by the `dn-hostile` binary, which
//! the network-namespace tests run on a host of their own next to honest nodes.
//!
//! Every attack runs for a bounded time and stops by itself; it only dials the address it is
//! given (a node inside the test's own namespaces).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use dn_node::tls::{TlsIdentity, SERVER_NAME};
use dn_proto::message::PROTOCOL_VERSION;
use dn_proto::topo::{Neighbour, TopoRecord};
use dn_proto::{Frame, Message, MessageId, NodeId};
use ed25519_dalek::SigningKey;
use rand_core::{OsRng, RngCore};

/// The attacks [`run`] knows, by name.
pub const ATTACKS: &[&str] = &[
    "no-read",
    "recon-storm",
    "spam",
    "sybil-spam",
    "topo-flood",
    "streams",
    "connections",
    "forge-held",
    "prune-flood",
    "ihave-flood",
    "beacon-flood",
    "private-junk",
    "urgent-flood",
    "tree-churn",
];

/// What to attack and how long.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The victim's QUIC address.
    pub target: SocketAddr,
    /// Rooms to name in Hello and frames.
    pub rooms: Vec<String>,
    /// Attack name (one of [`ATTACKS`]).
    pub attack: String,
    /// How long to keep at it.
    pub duration: Duration,
}

/// What an attack did, for the test's log.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    /// Frames (or packets, streams, connections) sent.
    pub sent: u64,
    /// Connections that came up.
    pub connections: u64,
    /// Connections that failed or were closed by the victim.
    pub refused: u64,
    /// Bytes sent.
    pub bytes: u64,
}

/// A QUIC endpoint with a fresh identity of its own.
pub struct Attacker {
    key: SigningKey,
    tls: Arc<TlsIdentity>,
    endpoint: quinn::Endpoint,
}

fn fresh_key() -> SigningKey {
    SigningKey::generate(&mut OsRng)
}

fn node_id(k: &SigningKey) -> NodeId {
    NodeId(k.verifying_key().to_bytes())
}

impl Attacker {
    /// A new identity and a client endpoint bound to any local port.
    pub fn new() -> Result<Attacker> {
        Self::with_key(fresh_key())
    }

    /// An endpoint for a given key.
    pub fn with_key(key: SigningKey) -> Result<Attacker> {
        let tls = Arc::new(TlsIdentity::new(&key).map_err(|e| anyhow!("tls: {e}"))?);
        let endpoint = quinn::Endpoint::client(SocketAddr::from(([0, 0, 0, 0], 0)))?;
        Ok(Attacker { key, tls, endpoint })
    }

    /// This attacker's node id.
    pub fn id(&self) -> NodeId {
        node_id(&self.key)
    }

    /// Connects (any victim identity accepted), opens our stream and says hello.
    pub async fn connect(&self, target: SocketAddr, rooms: &[String]) -> Result<Link> {
        let cfg = self.tls.client_config(None).map_err(|e| anyhow!("{e}"))?;
        let conn = tokio::time::timeout(
            Duration::from_secs(6),
            self.endpoint.connect_with(cfg, target, SERVER_NAME)?,
        )
        .await
        .context("handshake timed out")??;
        let stream = conn.open_uni().await?;
        let mut link = Link {
            conn,
            stream,
            sent: 0,
            bytes: 0,
        };
        link.send(&Frame::Hello {
            version: PROTOCOL_VERSION,
            node: self.id(),
            name: "mallory".into(),
            rooms: rooms.to_vec(),
            listen_port: 0,
        })
        .await?;
        Ok(link)
    }
}

/// One connection to the victim with our stream open.
pub struct Link {
    /// The QUIC connection.
    pub conn: quinn::Connection,
    stream: quinn::SendStream,
    /// Frames sent.
    pub sent: u64,
    /// Bytes sent.
    pub bytes: u64,
}

impl Link {
    /// Sends one frame.
    pub async fn send(&mut self, f: &Frame) -> Result<()> {
        let b = f.encode_prefixed();
        self.stream.write_all(&b).await?;
        self.sent += 1;
        self.bytes += b.len() as u64;
        Ok(())
    }

    /// Sends `message` as a `Msg` with a full hop budget, letting other tasks run every 64
    /// frames.
    pub async fn send_msg(&mut self, message: Message) -> Result<()> {
        self.send(&Frame::Msg { hops: 64, message }).await?;
        if self.sent.is_multiple_of(64) {
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    /// Whether the victim closed the connection.
    pub fn closed(&self) -> bool {
        self.conn.close_reason().is_some()
    }
}

/// A catch-up opening that claims to hold nothing of the room: the victim owes us everything.
fn empty_summary(round_salt: u64) -> dn_proto::recon::ReconMsg {
    let mut salt = [0u8; 16];
    salt[..8].copy_from_slice(&round_salt.to_be_bytes());
    dn_proto::recon::start_with_salt(&[], salt)
}

fn random_id() -> MessageId {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    MessageId(b)
}

use crate::now_ms;

/// Runs one attack until its time is up.
pub async fn run(plan: &Plan) -> Result<Report> {
    let end = Instant::now() + plan.duration;
    let mut r = Report::default();
    let room = plan
        .rooms
        .first()
        .cloned()
        .unwrap_or_else(|| "ops".to_string());
    match plan.attack.as_str() {
        // Ask for whole rooms again and again, and never read a byte of the answers.
        "no-read" => {
            let a = Attacker::new()?;
            let mut l = a.connect(plan.target, &plan.rooms).await?;
            r.connections += 1;
            let mut i = 0u64;
            while Instant::now() < end && !l.closed() {
                for room in &plan.rooms {
                    i += 1;
                    let msg = empty_summary(i);
                    if l.send(&Frame::Recon {
                        room: room.clone(),
                        msg,
                    })
                    .await
                    .is_err()
                    {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            r.refused += u64::from(l.closed());
            r.sent += l.sent;
            r.bytes += l.bytes;
        }
        // Catch-up frames of every round as fast as the link takes them.
        "recon-storm" => {
            let a = Attacker::new()?;
            let mut l = a.connect(plan.target, &plan.rooms).await?;
            r.connections += 1;
            let mut i = 0u64;
            while Instant::now() < end && !l.closed() {
                i += 1;
                let mut msg = empty_summary(i);
                msg.round = (i % 4) as u8;
                if l.send(&Frame::Recon {
                    room: room.clone(),
                    msg,
                })
                .await
                .is_err()
                {
                    break;
                }
                if i.is_multiple_of(64) {
                    tokio::task::yield_now().await;
                }
            }
            r.sent += l.sent;
            r.bytes += l.bytes;
        }
        // Valid messages from one key at the link's full rate ("spam"); from a fresh key every
        // 50 ("sybil-spam"); every one marked urgent, from a fresh key every 16 (about 10 of
        // them into the room), so each key asks for twice its priority budget ("urgent-flood").
        "spam" | "sybil-spam" | "urgent-flood" => {
            let a = Attacker::new()?;
            let mut l = a.connect(plan.target, &plan.rooms).await?;
            r.connections += 1;
            let urgent = plan.attack == "urgent-flood";
            let sybil = plan.attack == "sybil-spam" || urgent;
            let every = if urgent { 16 } else { 50 };
            let mut keys = vec![a.key.clone()];
            let mut i = 0u64;
            let body = "x".repeat(1000);
            while Instant::now() < end && !l.closed() {
                i += 1;
                if sybil && i.is_multiple_of(every) {
                    keys.push(fresh_key());
                }
                let k = keys.last().unwrap_or(&a.key);
                let rm = if i.is_multiple_of(3) {
                    "dm"
                } else {
                    room.as_str()
                };
                let body = if rm == "dm" {
                    "AAAA".repeat(10)
                } else {
                    body.clone()
                };
                // Each urgent one distinct (one key writes several within a millisecond).
                let body = if urgent {
                    dn_proto::message::mark_urgent(&format!("{i} {body}"), true)
                } else {
                    body
                };
                let Ok(m) = Message::create(k, rm, "mallory", now_ms(), &body) else {
                    continue;
                };
                if l.send(&Frame::Msg {
                    hops: 64,
                    message: m,
                })
                .await
                .is_err()
                {
                    break;
                }
            }
            r.sent += l.sent;
            r.bytes += l.bytes;
        }
        // Validly signed messages into a private room (named in Hello, so the victim carries
        // it) that a carrier must refuse: the author's real name outside, a plain-text body, a
        // body that only looks like an envelope.
        "private-junk" => {
            use dn_proto::private::{self, Content, Plain, RoomId, HIDDEN_AUTHOR_NAME};
            let a = Attacker::new()?;
            let mut room_key = [0u8; 32];
            OsRng.fill_bytes(&mut room_key);
            let rid = RoomId::from_key(&room_key);
            let mut rooms = plan.rooms.clone();
            rooms.push(rid.room_name());
            let mut l = a.connect(plan.target, &rooms).await?;
            r.connections += 1;
            let me = a.id();
            let mut i = 0u64;
            while Instant::now() < end && !l.closed() {
                i += 1;
                let ts = now_ms();
                let plain = Plain {
                    room_name: "medical".into(),
                    author_name: "mallory".into(),
                    content: Content::Text(format!("leak {i}")),
                };
                let mut nonce = [0u8; 24];
                OsRng.fill_bytes(&mut nonce);
                let sealed = private::seal(&rid, 0, &room_key, &me, ts, &plain, nonce)
                    .map_err(|e| anyhow!("{e}"))?;
                let (name, body) = match i % 3 {
                    0 => ("mallory", sealed),
                    1 => (HIDDEN_AUTHOR_NAME, format!("patient list {i}")),
                    _ => (HIDDEN_AUTHOR_NAME, format!("pr1:{}", "QUFB".repeat(20))),
                };
                let Ok(m) = Message::create(&a.key, &rid.room_name(), name, ts, &body) else {
                    continue;
                };
                if l.send_msg(m).await.is_err() {
                    break;
                }
            }
            r.sent += l.sent;
            r.bytes += l.bytes;
        }
        // Neighbour lists of made-up nodes, each validly signed by its own fresh key.
        "topo-flood" => {
            let a = Attacker::new()?;
            let mut l = a.connect(plan.target, &plan.rooms).await?;
            r.connections += 1;
            let mut seq = now_ms();
            while Instant::now() < end && !l.closed() {
                seq += 1;
                let k = fresh_key();
                let neighbours = (0..8)
                    .map(|_| Neighbour {
                        id: node_id(&fresh_key()),
                        addr: Some(std::net::SocketAddrV4::new([10, 77, 0, 200].into(), 7300)),
                        // Claims the fastest links there are.
                        rtt_ms: Some(0),
                    })
                    .collect();
                let rec = TopoRecord::create(&k, seq, "ghost", neighbours);
                if l.send(&Frame::Topo(rec)).await.is_err() {
                    break;
                }
            }
            r.sent += l.sent;
            r.bytes += l.bytes;
        }
        // Sybils that get into the graph within the caps, then write from rotating authors so
        // that every message asks for a source tree of its own: 400 keys whose lists name us,
        // 120 of each other (a ring, both ends listing each link, so it counts) and 7 made-up
        // nodes (≈ 24 k links, ≈ 50 k entries a tree), then messages from one sybil after
        // another at the link's full rate.
        "tree-churn" => {
            const SYBILS: usize = 400;
            let a = Attacker::new()?;
            let mut l = a.connect(plan.target, &plan.rooms).await?;
            r.connections += 1;
            let keys: Vec<SigningKey> = (0..SYBILS).map(|_| fresh_key()).collect();
            let ids: Vec<NodeId> = keys.iter().map(node_id).collect();
            let seq = now_ms();
            for (i, k) in keys.iter().enumerate() {
                let mut nbs = vec![a.id()];
                for d in 1..=60 {
                    nbs.push(ids[(i + d) % SYBILS]);
                    nbs.push(ids[(i + SYBILS - d) % SYBILS]);
                }
                nbs.extend((0..7).map(|_| node_id(&fresh_key())));
                let neighbours = nbs
                    .into_iter()
                    .map(|id| Neighbour {
                        id,
                        addr: None,
                        rtt_ms: Some(0),
                    })
                    .collect();
                let rec = TopoRecord::create(k, seq, "ghost", neighbours);
                if l.send(&Frame::Topo(rec)).await.is_err() {
                    break;
                }
            }
            let mut i = 0usize;
            while Instant::now() < end && !l.closed() {
                let k = &keys[i % SYBILS];
                i += 1;
                let Ok(m) = Message::create(k, &room, "ghost", now_ms(), &format!("churn {i}"))
                else {
                    continue;
                };
                if l.send_msg(m).await.is_err() {
                    break;
                }
            }
            r.sent += l.sent;
            r.bytes += l.bytes;
        }
        // Many streams opened and left unfinished, each with some bytes in it.
        "streams" => {
            let a = Attacker::new()?;
            let l = a.connect(plan.target, &plan.rooms).await?;
            r.connections += 1;
            let junk = vec![0u8; 60_000];
            while Instant::now() < end && !l.closed() {
                let opened = tokio::time::timeout(Duration::from_millis(200), async {
                    match l.conn.open_uni().await {
                        Ok(mut s) => s.write_all(&junk).await.is_ok(),
                        Err(_) => false,
                    }
                })
                .await;
                match opened {
                    Ok(true) => {
                        r.sent += 1;
                        r.bytes += junk.len() as u64;
                    }
                    // The victim grants no more streams: that is the defence working.
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
                if let Ok(Ok((mut s, _))) =
                    tokio::time::timeout(Duration::from_millis(10), l.conn.open_bi()).await
                {
                    let _ = s.write_all(&junk).await;
                    r.sent += 1;
                }
            }
        }
        // New identities connecting as fast as they can, all kept open.
        "connections" => {
            let mut links = Vec::new();
            while Instant::now() < end {
                let a = Attacker::new()?;
                match a.connect(plan.target, &plan.rooms).await {
                    Ok(l) => {
                        r.connections += 1;
                        links.push((a, l));
                    }
                    Err(_) => {
                        r.refused += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                if links.len() >= 500 {
                    break;
                }
            }
            let still: u64 = links.iter().filter(|(_, l)| !l.closed()).count() as u64;
            r.sent = still;
            tokio::time::sleep(end.saturating_duration_since(Instant::now())).await;
        }
        // Claim to hold what we never read: ReconDone for every room, IHave for given ids.
        "forge-held" => {
            let a = Attacker::new()?;
            let mut l = a.connect(plan.target, &plan.rooms).await?;
            r.connections += 1;
            let ids: Vec<MessageId> = std::env::var("DN_HOSTILE_IDS")
                .unwrap_or_default()
                .split(',')
                .filter_map(|h| MessageId::from_hex(h).ok())
                .collect();
            while Instant::now() < end && !l.closed() {
                for room in &plan.rooms {
                    l.send(&Frame::ReconDone { room: room.clone() }).await?;
                    if !ids.is_empty() {
                        l.send(&Frame::IHave {
                            room: room.clone(),
                            ids: ids.clone(),
                        })
                        .await?;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            r.sent += l.sent;
        }
        "prune-flood" | "ihave-flood" => {
            let a = Attacker::new()?;
            let mut l = a.connect(plan.target, &plan.rooms).await?;
            r.connections += 1;
            let mut i = 0u64;
            while Instant::now() < end && !l.closed() {
                i += 1;
                let f = if plan.attack == "prune-flood" {
                    Frame::Prune {
                        room: format!("junk-{i}"),
                    }
                } else {
                    Frame::IHave {
                        room: room.clone(),
                        ids: (0..64).map(|_| random_id()).collect(),
                    }
                };
                if l.send(&f).await.is_err() {
                    break;
                }
            }
            r.sent += l.sent;
            r.bytes += l.bytes;
        }
        // Forged LAN beacons: a new made-up node id every packet, sent to the victim's host.
        "beacon-flood" => {
            let sock = tokio::net::UdpSocket::bind("0.0.0.0:0").await?;
            let dst = SocketAddr::new(plan.target.ip(), dn_node::beacon::BEACON_PORT);
            let mut i = 0u32;
            while Instant::now() < end {
                i += 1;
                let id = node_id(&fresh_key());
                let pkt = dn_node::beacon::encode(&id, 7000 + (i % 1000) as u16);
                if sock.send_to(&pkt, dst).await.is_ok() {
                    r.sent += 1;
                }
                if i.is_multiple_of(32) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        other => bail!("unknown attack {other:?}; known: {}", ATTACKS.join(", ")),
    }
    Ok(r)
}

/// The room the victim of the attack scenarios holds history in (the attacks aim at it).
pub const ROOM: &str = "ops";
/// The room the honest nodes chat in during an attack (a room of its own keeps checks
/// readable: `log` pages hold the newest 1,000 messages).
pub const CHAT: &str = "chat";
/// Messages seeded into the victim's [`ROOM`] before it starts, so that "send me the whole
/// room" is expensive.
pub const SEEDED: usize = 8_000;

/// Writes `n` messages by 40 authors (1.4 KB bodies, dated the last hour) into node `i`'s
/// store in [`ROOM`] before it starts.
pub fn seed(c: &crate::disasternet::Cluster, i: usize, n: usize) -> Result<()> {
    let store = dn_store::Store::open(&c.node(i).data_dir.join("store.sqlite3"))?;
    let keys: Vec<SigningKey> = (0..40u8)
        .map(|k| SigningKey::from_bytes(&[k + 1; 32]))
        .collect();
    let start = crate::now_ms().saturating_sub(3_600_000);
    let body = "seeded history ".repeat(90);
    let batch: Vec<(Message, u64, bool)> = (0..n)
        .map(|j| {
            let m = Message::create(&keys[j % keys.len()], ROOM, "old", start + j as u64, &body)?;
            Ok((m, start, false))
        })
        .collect::<Result<_, dn_proto::ProtoError>>()?;
    for chunk in batch.chunks(1000) {
        store.insert_messages(chunk)?;
    }
    Ok(())
}

/// The attack scenario's two nodes: node 1 (the victim, [`SEEDED`] messages in [`ROOM`]) and
/// node 2 (an honest peer), both in [`ROOM`] and [`CHAT`], started, connected, and node 2
/// caught up on the seeded history. Returns how long the catch-up took.
pub fn start_victim_and_honest(c: &mut crate::disasternet::Cluster) -> Result<Duration> {
    c.init(1, "victim")?;
    c.init(2, "honest")?;
    for i in [1, 2] {
        c.join(i, ROOM)?;
        c.join(i, CHAT)?;
    }
    seed(c, 1, SEEDED)?;
    c.start(1, &[])?;
    c.start(2, &[])?;
    let id2 = c.id(2)?;
    c.wait_for("node1 and node2 connected", Duration::from_secs(30), |c| {
        Ok(c.connected_peer_ids(1)?.contains(&id2))
    })?;
    c.wait_for(
        "node2 holds the seeded history",
        Duration::from_secs(90),
        |c| Ok(c.status(2)?["messages"].as_u64().unwrap_or(0) >= SEEDED as u64),
    )
}
