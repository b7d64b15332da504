//! Signed neighbour lists and the network graph built from them.
//!
//! Every node signs a [`TopoRecord`] listing the peers it is connected to (with the address it
//! reaches each at) and a sequence number that only grows. Records flood to every node (a
//! newer record replaces an older one; an old or equal one goes no further), so each node
//! holds the adjacency list of the network it can see. [`Graph`] answers hop distances and
//! shortest paths (BFS), and which addresses a node may dial to meet its peers' peers.
//!
//! Signed bytes (docs/protocol.md §4.3):
//! `"DNTOP" | version u8 | node 32 | seq u64 | name str8 | count u16 |
//!  count × (id 32 | has_addr u8 | [ipv4 4 | port u16])`, then the 64-byte signature.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};

use crate::coding::{Decode, Encode, Reader, Writer};
use crate::message::{NodeId, PROTOCOL_VERSION};
use crate::ProtoError;

/// Domain-separation prefix of the signed bytes.
pub const TOPO_MAGIC: &[u8; 5] = b"DNTOP";
/// Most neighbours one record may list.
pub const MAX_NEIGHBOURS: usize = 128;

/// One neighbour in a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// Its node id.
    pub id: NodeId,
    /// Where the record's author reaches it (its listen address), if known.
    pub addr: Option<SocketAddrV4>,
}

/// A node's signed list of current neighbours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopoRecord {
    /// Author.
    pub node: NodeId,
    /// Grows with every new record of this author (the driver uses wall-clock ms).
    pub seq: u64,
    /// Author's display name (may be empty).
    pub name: String,
    /// Current neighbours.
    pub neighbours: Vec<Neighbour>,
    /// Ed25519 signature over [`TopoRecord::signed_bytes`].
    pub signature: [u8; 64],
}

impl TopoRecord {
    /// Creates and signs a record (at most [`MAX_NEIGHBOURS`] are kept).
    pub fn create(key: &SigningKey, seq: u64, name: &str, mut neighbours: Vec<Neighbour>) -> Self {
        neighbours.truncate(MAX_NEIGHBOURS);
        let name: String = name.chars().take(64).collect();
        let mut r = TopoRecord {
            node: NodeId(key.verifying_key().to_bytes()),
            seq,
            name,
            neighbours,
            signature: [0; 64],
        };
        r.signature = key.sign(&r.signed_bytes()).to_bytes();
        r
    }

    /// The bytes the author signs.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64 + self.neighbours.len() * 39);
        w.bytes(TOPO_MAGIC);
        w.u8(PROTOCOL_VERSION);
        w.put(&self.node);
        w.u64(self.seq);
        w.str8(&self.name);
        let n = self.neighbours.len().min(MAX_NEIGHBOURS);
        w.u16(n as u16);
        for nb in &self.neighbours[..n] {
            w.put(nb);
        }
        w.into_vec()
    }

    /// Checks the signature and limits.
    pub fn verify(&self) -> Result<(), ProtoError> {
        if self.neighbours.len() > MAX_NEIGHBOURS || self.name.len() > 255 {
            return Err(ProtoError::Malformed("topology record over limits"));
        }
        self.node
            .verifying_key()?
            .verify(
                &self.signed_bytes(),
                &Signature::from_bytes(&self.signature),
            )
            .map_err(|_| ProtoError::BadSignature)
    }
}

/// Wire form: `id 32 | has_addr u8 | [ipv4 4 | port u16]`.
impl Encode for Neighbour {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.id);
        match self.addr {
            Some(a) => {
                w.u8(1);
                w.bytes(&a.ip().octets());
                w.u16(a.port());
            }
            None => w.u8(0),
        }
    }
}

impl Decode for Neighbour {
    type Error = ProtoError;
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        let id = r.get::<NodeId>()?;
        let addr = match r.u8()? {
            0 => None,
            1 => {
                let ip = Ipv4Addr::from(r.array::<4>()?);
                Some(SocketAddrV4::new(ip, r.u16()?))
            }
            _ => return Err(ProtoError::Malformed("bad address flag")),
        };
        Ok(Neighbour { id, addr })
    }
}

/// Wire form: `signed_len u16 | signed bytes | signature 64`.
impl Encode for TopoRecord {
    fn encode(&self, w: &mut Writer) {
        let signed = self.signed_bytes();
        w.u16(signed.len() as u16);
        w.bytes(&signed);
        w.bytes(&self.signature);
    }
}

/// Reads the wire form (does not verify; call [`TopoRecord::verify`]).
impl Decode for TopoRecord {
    type Error = ProtoError;
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        let mut s = Reader::new(r.bytes16()?);
        let signature = r.array()?;
        if s.bytes(5)? != TOPO_MAGIC {
            return Err(ProtoError::Malformed("bad topology magic"));
        }
        let version = s.u8()?;
        if version != PROTOCOL_VERSION {
            return Err(ProtoError::UnsupportedVersion(version));
        }
        let node = s.get::<NodeId>()?;
        let seq = s.u64()?;
        let name = s.str8()?;
        let n = usize::from(s.u16()?);
        if n > MAX_NEIGHBOURS {
            return Err(ProtoError::Malformed("too many neighbours"));
        }
        let mut neighbours = Vec::with_capacity(n);
        for _ in 0..n {
            neighbours.push(s.get::<Neighbour>()?);
        }
        s.finish()?;
        Ok(TopoRecord {
            node,
            seq,
            name,
            neighbours,
            signature,
        })
    }
}

/// A BFS tree from one source: hop distance and parent of every reachable node.
type Tree = HashMap<NodeId, (u32, Option<NodeId>)>;

/// Most BFS trees kept at once (one per source asked about; in practice only "me").
const TREE_CACHE_CAP: usize = 8;

/// Derived data, rebuilt lazily after the records change.
#[derive(Debug, Default, Clone)]
struct Derived {
    adjacency: Option<HashMap<NodeId, Vec<NodeId>>>,
    trees: HashMap<NodeId, Tree>,
}

/// The network as seen through the records received.
///
/// Hop distances and paths are answered from a cached BFS tree per source, recomputed only
/// when a record is stored, removed or expires: a path lookup per direct-message push costs
/// a walk up the tree, not a BFS over the whole graph ([`Graph::bfs_runs`] counts the BFS runs).
#[derive(Debug, Default, Clone)]
pub struct Graph {
    records: HashMap<NodeId, (TopoRecord, u64)>,
    derived: RefCell<Derived>,
    bfs_runs: Cell<u64>,
}

impl Graph {
    /// Stores `rec` (received at `now`) if it is newer than what we hold. True if stored.
    pub fn update(&mut self, rec: TopoRecord, now: u64) -> bool {
        match self.records.get(&rec.node) {
            Some((old, _)) if old.seq >= rec.seq => false,
            _ => {
                self.records.insert(rec.node, (rec, now));
                self.invalidate();
                true
            }
        }
    }

    /// Drops records not refreshed for `max_age` ms (the node left). True if any went.
    pub fn expire(&mut self, now: u64, max_age: u64, keep: &NodeId) -> bool {
        let before = self.records.len();
        self.records
            .retain(|id, (_, at)| id == keep || now.saturating_sub(*at) <= max_age);
        let changed = before != self.records.len();
        if changed {
            self.invalidate();
        }
        changed
    }

    /// Forgets the record of `id`. True if there was one.
    pub fn remove(&mut self, id: &NodeId) -> bool {
        let had = self.records.remove(id).is_some();
        if had {
            self.invalidate();
        }
        had
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// When the record of `id` was stored (the `now` given to [`Graph::update`]).
    pub fn received_at(&self, id: &NodeId) -> Option<u64> {
        self.records.get(id).map(|(_, at)| *at)
    }

    /// How many BFS runs answered [`Graph::hops_from`] / [`Graph::path`] so far (each run is
    /// cached until the graph changes).
    pub fn bfs_runs(&self) -> u64 {
        self.bfs_runs.get()
    }

    fn invalidate(&mut self) {
        *self.derived.get_mut() = Derived::default();
    }

    /// All records.
    pub fn records(&self) -> impl Iterator<Item = &TopoRecord> {
        self.records.values().map(|(r, _)| r)
    }

    /// The record of one node.
    pub fn record(&self, id: &NodeId) -> Option<&TopoRecord> {
        self.records.get(id).map(|(r, _)| r)
    }

    /// Undirected links. A link both ends report is certain; a link only one end reports
    /// counts while the other end's record is unknown (it has not reached us yet).
    pub fn links(&self) -> Vec<(NodeId, NodeId)> {
        let mut set: HashSet<(NodeId, NodeId)> = HashSet::new();
        for (a, (rec, _)) in &self.records {
            for nb in &rec.neighbours {
                let b = nb.id;
                if *a == b {
                    continue;
                }
                let confirmed = match self.records.get(&b) {
                    Some((other, _)) => other.neighbours.iter().any(|n| n.id == *a),
                    None => true,
                };
                if confirmed {
                    set.insert(if *a < b { (*a, b) } else { (b, *a) });
                }
            }
        }
        let mut v: Vec<_> = set.into_iter().collect();
        v.sort();
        v
    }

    fn adjacency(&self) -> HashMap<NodeId, Vec<NodeId>> {
        let mut adj: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
        for (a, b) in self.links() {
            adj.entry(a).or_default().push(b);
            adj.entry(b).or_default().push(a);
        }
        for v in adj.values_mut() {
            v.sort();
        }
        adj
    }

    /// Runs `f` on the (cached) BFS tree from `from`.
    fn with_tree<R>(&self, from: &NodeId, f: impl FnOnce(&Tree) -> R) -> R {
        let mut d = self.derived.borrow_mut();
        if !d.trees.contains_key(from) {
            if d.adjacency.is_none() {
                d.adjacency = Some(self.adjacency());
            }
            let empty = HashMap::new();
            let adj = d.adjacency.as_ref().unwrap_or(&empty);
            let tree = bfs(adj, from);
            self.bfs_runs.set(self.bfs_runs.get() + 1);
            if d.trees.len() >= TREE_CACHE_CAP {
                d.trees.clear();
            }
            d.trees.insert(*from, tree);
        }
        match d.trees.get(from) {
            Some(t) => f(t),
            None => f(&HashMap::new()),
        }
    }

    /// Hop distance from `from` to every reachable node (BFS; `from` itself is 0).
    pub fn hops_from(&self, from: &NodeId) -> HashMap<NodeId, u32> {
        self.with_tree(from, |t| t.iter().map(|(id, (d, _))| (*id, *d)).collect())
    }

    /// Hop distance from `from` to `to`, if reachable.
    pub fn hops(&self, from: &NodeId, to: &NodeId) -> Option<u32> {
        self.with_tree(from, |t| t.get(to).map(|(d, _)| *d))
    }

    /// A shortest path `from` → `to` (both included), if `to` is reachable.
    pub fn path(&self, from: &NodeId, to: &NodeId) -> Option<Vec<NodeId>> {
        self.with_tree(from, |t| {
            let (d, _) = t.get(to)?;
            let mut path = Vec::with_capacity(*d as usize + 1);
            let mut cur = *to;
            path.push(cur);
            while let Some((_, Some(p))) = t.get(&cur) {
                path.push(*p);
                cur = *p;
            }
            path.reverse();
            Some(path)
        })
    }

    /// Addresses at which others reach `id` (from their records), most reported first.
    pub fn addresses_of(&self, id: &NodeId) -> Vec<SocketAddrV4> {
        let mut count: HashMap<SocketAddrV4, usize> = HashMap::new();
        for (rec, _) in self.records.values() {
            for nb in rec.neighbours.iter().filter(|n| n.id == *id) {
                if let Some(a) = nb.addr {
                    *count.entry(a).or_default() += 1;
                }
            }
        }
        let mut v: Vec<_> = count.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.into_iter().map(|(a, _)| a).collect()
    }
}

/// Breadth-first search over sorted adjacency lists: the first parent found wins, so the tree
/// (and every path read from it) is the same on every node for the same records.
fn bfs(adj: &HashMap<NodeId, Vec<NodeId>>, from: &NodeId) -> Tree {
    let mut tree: Tree = HashMap::from([(*from, (0u32, None))]);
    let mut q = VecDeque::from([*from]);
    while let Some(n) = q.pop_front() {
        let d = tree.get(&n).map_or(0, |(d, _)| *d);
        for m in adj.get(&n).into_iter().flatten() {
            if !tree.contains_key(m) {
                tree.insert(*m, (d + 1, Some(n)));
                q.push_back(*m);
            }
        }
    }
    tree
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }
    fn id(i: u8) -> NodeId {
        NodeId(key(i).verifying_key().to_bytes())
    }
    fn rec(i: u8, seq: u64, nbs: &[u8]) -> TopoRecord {
        let n = nbs
            .iter()
            .map(|&j| Neighbour {
                id: id(j),
                addr: Some(SocketAddrV4::new([10, 0, 0, j].into(), 7300)),
            })
            .collect();
        TopoRecord::create(&key(i), seq, &format!("n{i}"), n)
    }

    #[test]
    fn record_roundtrip_verify_and_tamper() {
        let r = rec(1, 5, &[2, 3]);
        r.verify().unwrap();
        let mut w = Writer::default();
        r.encode(&mut w);
        let bytes = w.into_vec();
        let back = TopoRecord::decode(&mut Reader::new(&bytes)).unwrap();
        assert_eq!(back, r);
        let mut forged = r.clone();
        forged.neighbours.pop();
        assert_eq!(forged.verify(), Err(ProtoError::BadSignature));
        for n in 0..bytes.len() {
            assert!(TopoRecord::decode(&mut Reader::new(&bytes[..n])).is_err());
        }
    }

    #[test]
    fn chain_hops_paths_and_addresses() {
        let mut g = Graph::default();
        // 1 - 2 - 3 - 4
        g.update(rec(1, 1, &[2]), 0);
        g.update(rec(2, 1, &[1, 3]), 0);
        g.update(rec(3, 1, &[2, 4]), 0);
        g.update(rec(4, 1, &[3]), 0);
        let h = g.hops_from(&id(1));
        assert_eq!(h[&id(4)], 3);
        assert_eq!(
            g.path(&id(1), &id(4)).unwrap(),
            vec![id(1), id(2), id(3), id(4)]
        );
        assert_eq!(
            g.addresses_of(&id(3)),
            vec![SocketAddrV4::new([10, 0, 0, 3].into(), 7300)]
        );
        // Node 3 drops its link to 4 (newer record); 4's old record alone no longer proves it.
        assert!(g.update(rec(3, 2, &[2]), 1));
        assert!(!g.update(rec(3, 1, &[2, 4]), 2), "older record ignored");
        assert!(!g.hops_from(&id(1)).contains_key(&id(4)));
    }

    #[test]
    fn expiry_forgets_silent_nodes_but_never_self() {
        let mut g = Graph::default();
        g.update(rec(1, 1, &[2]), 0);
        g.update(rec(2, 1, &[1]), 0);
        assert!(g.expire(1000, 500, &id(1)));
        assert!(g.record(&id(1)).is_some());
        assert!(g.record(&id(2)).is_none());
    }
}
