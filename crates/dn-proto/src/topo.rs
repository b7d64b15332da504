//! Signed neighbour lists and the network graph built from them.
//!
//! Every node signs a [`TopoRecord`] listing the peers it is connected to (with the address it
//! reaches each at) and a sequence number that only grows. Records flood to every node (a
//! newer record replaces an older one; an old or equal one goes no further), so each node
//! holds the adjacency list of the network it can see. [`Graph`] answers hop distances and
//! shortest paths (BFS), which addresses a node may dial to meet its peers' peers, and each
//! author's *source tree*: the fastest-path tree from that node over the links weighted by
//! their round-trip times ([`Graph::tree_children`]), the same on every node that holds the
//! same records.
//!
//! Signed bytes (docs/protocol.md §4.3):
//! `"DNTOP" | version u8 | node 32 | seq u64 | name str8 | count u16 |
//!  count × (id 32 | flags u8 | [ipv4 4 | port u16] | [rtt_ms u16])`, then the 64-byte
//! signature; flag bit 0 says an address follows, bit 1 a round-trip time.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

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
    /// The round-trip time the record's author measured to it when signing (QUIC's smoothed
    /// RTT), ms, if known: the link's weight in the source trees ([`Graph::tree_children`]).
    pub rtt_ms: Option<u16>,
}

/// Neighbour flag: an IPv4 address and port follow.
const NB_ADDR: u8 = 1;
/// Neighbour flag: a round-trip time (u16, ms) follows.
const NB_RTT: u8 = 2;

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
        let mut w = Writer::with_capacity(64 + self.neighbours.len() * 41);
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

/// Wire form: `id 32 | flags u8 | [ipv4 4 | port u16] | [rtt_ms u16]` (flag bit 0: the
/// address is there, bit 1: the round-trip time is; other bits must be 0).
impl Encode for Neighbour {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.id);
        let mut flags = 0;
        if self.addr.is_some() {
            flags |= NB_ADDR;
        }
        if self.rtt_ms.is_some() {
            flags |= NB_RTT;
        }
        w.u8(flags);
        if let Some(a) = self.addr {
            w.bytes(&a.ip().octets());
            w.u16(a.port());
        }
        if let Some(rtt) = self.rtt_ms {
            w.u16(rtt);
        }
    }
}

impl Decode for Neighbour {
    type Error = ProtoError;
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        let id = r.get::<NodeId>()?;
        let flags = r.u8()?;
        if flags & !(NB_ADDR | NB_RTT) != 0 {
            return Err(ProtoError::Malformed("bad neighbour flags"));
        }
        let addr = if flags & NB_ADDR != 0 {
            let ip = Ipv4Addr::from(r.array::<4>()?);
            Some(SocketAddrV4::new(ip, r.u16()?))
        } else {
            None
        };
        let rtt_ms = if flags & NB_RTT != 0 {
            Some(r.u16()?)
        } else {
            None
        };
        Ok(Neighbour { id, addr, rtt_ms })
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
/// A source tree: every reachable node's parent (`None` for the source).
type Parents = HashMap<NodeId, Option<NodeId>>;

/// Most BFS trees kept at once (one per source asked about; in practice only "me").
const TREE_CACHE_CAP: usize = 8;
/// Most source trees kept at once (one per message author asked about, a parent per node
/// each: ≈ 90 KB at 1,000 nodes); the cache is emptied when full and whenever the records
/// change.
const SOURCE_CACHE_CAP: usize = 32;
/// Most nodes without a record of their own that the graph includes (through the links
/// others report to them). An honest node is in that state only until its own list arrives,
/// seconds; a made-up one stays in it, and 1,024 records of 128 made-up neighbours would
/// otherwise make a graph of ≈ 131 k nodes, which every hop count, tree and view would walk.
/// Those listed by the most records are kept (ties by id), so a new node its peers already
/// list is mapped before its own list comes.
pub const MAX_UNRECORDED: usize = 256;
/// Weight a link adds besides its round-trip time, so that on a LAN, where every RTT rounds
/// to 0–1 ms, the source trees take the fewest hops.
pub const HOP_WEIGHT: u32 = 1;

/// Derived data, rebuilt lazily after the records change.
#[derive(Debug, Default, Clone)]
struct Derived {
    /// [`Graph::weighted_links`].
    links: Option<Arc<Vec<(NodeId, NodeId, u32)>>>,
    adjacency: Option<HashMap<NodeId, Vec<NodeId>>>,
    trees: HashMap<NodeId, Tree>,
    /// Weighted adjacency (sorted by id) for the source trees.
    weighted: Option<HashMap<NodeId, Vec<(NodeId, u32)>>>,
    /// Nodes plus directed links of `weighted`: the work of one Dijkstra over it.
    weighted_size: u64,
    /// Source → every reachable node's parent in the source's tree.
    sources: HashMap<NodeId, Arc<Parents>>,
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
    tree_runs: Cell<u64>,
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

    /// How many source trees [`Graph::tree_children`] and [`Graph::tree_parent`] computed so
    /// far (each tree is cached until the graph changes).
    pub fn tree_runs(&self) -> u64 {
        self.tree_runs.get()
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
    /// counts while the other end's record is unknown (it has not reached us yet), for at
    /// most [`MAX_UNRECORDED`] such nodes: those most records list (ties by id).
    pub fn links(&self) -> Vec<(NodeId, NodeId)> {
        self.cached_links()
            .iter()
            .map(|(a, b, _)| (*a, *b))
            .collect()
    }

    /// [`Graph::weighted_links`], computed once per change of the records.
    fn cached_links(&self) -> Arc<Vec<(NodeId, NodeId, u32)>> {
        if let Some(l) = &self.derived.borrow().links {
            return l.clone();
        }
        let l = Arc::new(self.weighted_links());
        self.derived.borrow_mut().links = Some(l.clone());
        l
    }

    /// [`Graph::links`] with each link's weight: [`HOP_WEIGHT`] plus the larger of the
    /// round-trip times its two ends reported (a missing report counts 0). Taking the larger
    /// means one end cannot make a link look faster than the other end measured it.
    pub fn weighted_links(&self) -> Vec<(NodeId, NodeId, u32)> {
        // Every report (author, neighbour) → its RTT, so the other end's report is one
        // lookup: linear in the neighbour entries, not in entries × list length.
        let reports: HashMap<(NodeId, NodeId), Option<u16>> = self
            .records
            .iter()
            .flat_map(|(a, (rec, _))| rec.neighbours.iter().map(|nb| ((*a, nb.id), nb.rtt_ms)))
            .collect();
        // Nodes listed but without a record of their own, by how many records list them.
        let mut unrecorded: HashMap<NodeId, u32> = HashMap::new();
        for (a, b) in reports.keys() {
            if a != b && !self.records.contains_key(b) {
                *unrecorded.entry(*b).or_default() += 1;
            }
        }
        if unrecorded.len() > MAX_UNRECORDED {
            let mut ranked: Vec<(u32, NodeId)> =
                unrecorded.iter().map(|(id, n)| (*n, *id)).collect();
            ranked.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
            unrecorded = ranked
                .into_iter()
                .take(MAX_UNRECORDED)
                .map(|(n, id)| (id, n))
                .collect();
        }
        let mut set: HashMap<(NodeId, NodeId), u32> = HashMap::new();
        for (a, (rec, _)) in &self.records {
            for nb in &rec.neighbours {
                let b = nb.id;
                if *a == b {
                    continue;
                }
                let other_end = if self.records.contains_key(&b) {
                    match reports.get(&(b, *a)) {
                        Some(rtt) => Some(*rtt),
                        None => continue,
                    }
                } else if unrecorded.contains_key(&b) {
                    None
                } else {
                    continue;
                };
                let rtt = nb.rtt_ms.max(other_end.flatten()).unwrap_or(0);
                let key = if *a < b { (*a, b) } else { (b, *a) };
                set.insert(key, HOP_WEIGHT + u32::from(rtt));
            }
        }
        let mut v: Vec<_> = set.into_iter().map(|((a, b), w)| (a, b, w)).collect();
        v.sort();
        v
    }

    /// The children of `node` in `source`'s source tree: the neighbours of `node` whose
    /// fastest path from `source` (Dijkstra over [`Graph::weighted_links`], ties broken by
    /// node id) runs through `node`. Every node holding the same records computes the same
    /// tree, so a message pushed along it reaches each node once, along its fastest path.
    /// `None` if `source` or `node` is not in the graph (no tree to follow).
    pub fn tree_children(&self, source: &NodeId, node: &NodeId) -> Option<Vec<NodeId>> {
        let parents = self.source_tree(source);
        parents.get(node)?;
        let d = self.derived.borrow();
        let mut c: Vec<NodeId> = d
            .weighted
            .as_ref()
            .and_then(|adj| adj.get(node))
            .into_iter()
            .flatten()
            .filter(|(m, _)| parents.get(m) == Some(&Some(*node)))
            .map(|(m, _)| *m)
            .collect();
        c.sort();
        Some(c)
    }

    /// The parent of `node` in `source`'s source tree: `Some(None)` for the source itself,
    /// `None` if `source` or `node` is not in the graph.
    pub fn tree_parent(&self, source: &NodeId, node: &NodeId) -> Option<Option<NodeId>> {
        self.source_tree(source).get(node).copied()
    }

    /// Whether `node` sits below `below` in `source`'s source tree (its path from `source`
    /// runs through `below`; `node` itself counts). False if either is not in the tree.
    pub fn in_subtree(&self, source: &NodeId, below: &NodeId, node: &NodeId) -> bool {
        let parents = self.source_tree(source);
        let mut cur = *node;
        // A tree's paths are at most as long as it has nodes.
        for _ in 0..=parents.len() {
            if cur == *below {
                return true;
            }
            match parents.get(&cur) {
                Some(Some(p)) => cur = *p,
                _ => return false,
            }
        }
        false
    }

    /// Whether `source`'s source tree is cached: asking about it costs no computation.
    pub fn has_source_tree(&self, source: &NodeId) -> bool {
        self.derived.borrow().sources.contains_key(source)
    }

    /// The work asking about `source`'s source tree would cost now, in entries visited
    /// (nodes plus directed links, and the neighbour entries read to build the weighted
    /// adjacency if the records changed since it was built): 0 when the tree is cached or,
    /// with the adjacency built, when `source` is not in the graph. Deterministic and cheap
    /// (a pass over at most [`crate::protocol::MAX_TOPO_RECORDS`] records), so a caller can
    /// charge it to a budget before asking ([`crate::protocol::TREE_WORK_PER_MIN`]).
    pub fn source_tree_work(&self, source: &NodeId) -> u64 {
        let d = self.derived.borrow();
        if d.sources.contains_key(source) {
            return 0;
        }
        match &d.weighted {
            Some(adj) if adj.contains_key(source) => d.weighted_size,
            Some(_) => 0,
            None => {
                // Not built: the build reads every entry; the tree then visits at most every
                // link twice and every node (a list's author or one of the unrecorded) once.
                let entries: u64 = self
                    .records
                    .values()
                    .map(|(r, _)| r.neighbours.len() as u64)
                    .sum();
                let records = self.records.len() as u64;
                entries + 2 * entries + records + MAX_UNRECORDED as u64
            }
        }
    }

    /// `source`'s source tree, cached until the records change (an empty one, of a source
    /// not in the graph, is not cached: it costs a lookup).
    fn source_tree(&self, source: &NodeId) -> Arc<Parents> {
        if let Some(t) = self.derived.borrow().sources.get(source) {
            return t.clone();
        }
        let build = self.derived.borrow().weighted.is_none();
        let links = build.then(|| self.cached_links());
        let mut d = self.derived.borrow_mut();
        if let Some(links) = links {
            let mut adj: HashMap<NodeId, Vec<(NodeId, u32)>> = HashMap::new();
            for &(a, b, w) in links.iter() {
                adj.entry(a).or_default().push((b, w));
                adj.entry(b).or_default().push((a, w));
            }
            for v in adj.values_mut() {
                v.sort();
            }
            d.weighted_size = adj.values().map(|v| 1 + v.len() as u64).sum();
            d.weighted = Some(adj);
        }
        let empty = HashMap::new();
        let tree = Arc::new(dijkstra(d.weighted.as_ref().unwrap_or(&empty), source));
        if tree.is_empty() {
            return tree;
        }
        self.tree_runs.set(self.tree_runs.get() + 1);
        if d.sources.len() >= SOURCE_CACHE_CAP {
            d.sources.clear();
        }
        d.sources.insert(*source, tree.clone());
        tree
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
        let build = {
            let d = self.derived.borrow();
            !d.trees.contains_key(from) && d.adjacency.is_none()
        };
        let adjacency = build.then(|| self.adjacency());
        let mut d = self.derived.borrow_mut();
        if !d.trees.contains_key(from) {
            if let Some(adj) = adjacency {
                d.adjacency = Some(adj);
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

/// Fastest-path tree from `from` over a weighted adjacency: every reachable node's parent
/// (`None` for `from`). Nodes leave the heap in (distance, id) order and a parent is replaced
/// only by a strictly shorter path, so the tree is the same on every node for the same links.
fn dijkstra(adj: &HashMap<NodeId, Vec<(NodeId, u32)>>, from: &NodeId) -> Parents {
    let mut dist: HashMap<NodeId, u64> = HashMap::new();
    let mut parent: Parents = HashMap::new();
    let mut done: HashSet<NodeId> = HashSet::new();
    if !adj.contains_key(from) {
        return parent;
    }
    dist.insert(*from, 0);
    parent.insert(*from, None);
    let mut heap = BinaryHeap::from([Reverse((0u64, *from))]);
    while let Some(Reverse((du, u))) = heap.pop() {
        if !done.insert(u) {
            continue;
        }
        for (v, w) in adj.get(&u).into_iter().flatten() {
            let dv = du + u64::from(*w);
            if dist.get(v).is_none_or(|old| dv < *old) {
                dist.insert(*v, dv);
                parent.insert(*v, Some(u));
                heap.push(Reverse((dv, *v)));
            }
        }
    }
    parent
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
                rtt_ms: None,
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

    /// A record whose neighbours carry round-trip times: `(neighbour, rtt_ms)`.
    fn timed(i: u8, seq: u64, nbs: &[(u8, Option<u16>)]) -> TopoRecord {
        let n = nbs
            .iter()
            .map(|&(j, rtt_ms)| Neighbour {
                id: id(j),
                addr: None,
                rtt_ms,
            })
            .collect();
        TopoRecord::create(&key(i), seq, "", n)
    }

    #[test]
    fn round_trip_times_roundtrip_and_unknown_flags_are_refused() {
        let r = timed(1, 3, &[(2, Some(42)), (3, None)]);
        r.verify().unwrap();
        let mut w = Writer::default();
        r.encode(&mut w);
        let bytes = w.into_vec();
        assert_eq!(TopoRecord::decode(&mut Reader::new(&bytes)).unwrap(), r);
        // The first neighbour's flags byte sits after the 2-byte length, magic, version,
        // node, seq, empty name and count; a bit beyond address and RTT is malformed.
        let flags_at = 2 + 5 + 1 + 32 + 8 + 1 + 2 + 32;
        assert_eq!(bytes[flags_at], NB_RTT);
        let mut bad = bytes.clone();
        bad[flags_at] |= 4;
        assert_eq!(
            TopoRecord::decode(&mut Reader::new(&bad)),
            Err(ProtoError::Malformed("bad neighbour flags"))
        );
    }

    #[test]
    fn a_link_weighs_the_slower_of_its_two_ends_reports() {
        let mut g = Graph::default();
        g.update(timed(1, 1, &[(2, Some(10))]), 0);
        g.update(timed(2, 1, &[(1, Some(30))]), 0);
        g.update(timed(3, 1, &[(1, None)]), 0);
        g.update(timed(1, 2, &[(2, Some(10)), (3, Some(0))]), 0);
        let w: HashMap<(NodeId, NodeId), u32> = g
            .weighted_links()
            .into_iter()
            .map(|(a, b, w)| ((a, b), w))
            .collect();
        let key = |a: u8, b: u8| (id(a).min(id(b)), id(a).max(id(b)));
        // One end cannot make a link look faster than the other end measured it.
        assert_eq!(w[&key(1, 2)], HOP_WEIGHT + 30);
        assert_eq!(w[&key(1, 3)], HOP_WEIGHT);
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn source_trees_follow_the_fastest_paths_and_agree_everywhere() {
        // A square 1-2-4 and 1-3-4 where 1-2 and 2-4 are slow: 4 hears 1 through 3; 2 hears
        // 1 directly (going round is slower still). A fifth node hangs off 4.
        let recs = [
            timed(1, 1, &[(2, Some(200)), (3, Some(20))]),
            timed(2, 1, &[(1, Some(200)), (4, Some(300))]),
            timed(3, 1, &[(1, Some(20)), (4, Some(20))]),
            timed(4, 1, &[(2, Some(300)), (3, Some(20)), (5, Some(20))]),
            timed(5, 1, &[(4, Some(20))]),
        ];
        let mut a = Graph::default();
        let mut b = Graph::default();
        for r in &recs {
            a.update(r.clone(), 0);
        }
        for r in recs.iter().rev() {
            b.update(r.clone(), 0);
        }
        for g in [&a, &b] {
            let mut one = vec![id(2), id(3)];
            one.sort();
            assert_eq!(g.tree_children(&id(1), &id(1)), Some(one));
            assert_eq!(g.tree_children(&id(1), &id(3)), Some(vec![id(4)]));
            assert_eq!(g.tree_children(&id(1), &id(2)), Some(vec![]));
            assert_eq!(g.tree_children(&id(1), &id(4)), Some(vec![id(5)]));
            // From 5 the tree runs the other way, and 2 hears 5 through 3 and 1.
            assert_eq!(g.tree_children(&id(5), &id(4)), Some(vec![id(3)]));
            assert_eq!(g.tree_children(&id(5), &id(1)), Some(vec![id(2)]));
            // Unknown source or node: no tree.
            assert_eq!(g.tree_children(&id(9), &id(1)), None);
            assert_eq!(g.tree_children(&id(1), &id(9)), None);
        }
        // Subtrees: 5 hangs below 3 in 1's tree (1-3-4-5), not below 2.
        assert!(a.in_subtree(&id(1), &id(3), &id(5)));
        assert!(a.in_subtree(&id(1), &id(5), &id(5)));
        assert!(!a.in_subtree(&id(1), &id(2), &id(5)));
        assert!(!a.in_subtree(&id(1), &id(3), &id(9)));
        // Answers are cached until the records change.
        let runs = a.tree_runs();
        a.tree_children(&id(1), &id(3));
        assert_eq!(a.tree_runs(), runs);
        // 1-3 gets slow: now 4 hears 1 through 2.
        a.update(timed(3, 2, &[(1, Some(500)), (4, Some(20))]), 1);
        assert_eq!(a.tree_children(&id(1), &id(2)), Some(vec![id(4)]));
        assert_eq!(a.tree_children(&id(1), &id(3)), Some(vec![]));
        assert!(a.tree_runs() > runs);
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

    /// An unsigned record (the graph does not verify; the protocol does before storing).
    fn bulk(node: NodeId, neighbours: Vec<NodeId>) -> TopoRecord {
        TopoRecord {
            node,
            seq: 1,
            name: String::new(),
            neighbours: neighbours
                .into_iter()
                .map(|id| Neighbour {
                    id,
                    addr: None,
                    rtt_ms: None,
                })
                .collect(),
            signature: [0; 64],
        }
    }

    fn made_up(a: u32, b: u32) -> NodeId {
        let mut x = [0x77; 32];
        x[..4].copy_from_slice(&a.to_le_bytes());
        x[4..8].copy_from_slice(&b.to_le_bytes());
        NodeId(x)
    }

    #[test]
    fn tree_work_is_free_when_cached_or_absent_and_counts_the_graph_otherwise() {
        let mut g = Graph::default();
        g.update(rec(1, 1, &[2]), 0);
        g.update(rec(2, 1, &[1, 3]), 0);
        g.update(rec(3, 1, &[2]), 0);
        // Nothing built yet: even an absent source is charged the adjacency build.
        let unbuilt = g.source_tree_work(&id(9));
        assert!(unbuilt > 0);
        assert_eq!(g.source_tree_work(&id(1)), unbuilt);
        assert!(g.tree_parent(&id(9), &id(1)).is_none());
        // Built: an absent source costs nothing and is not cached (no entry to evict others).
        assert_eq!(g.source_tree_work(&id(9)), 0);
        assert!(!g.has_source_tree(&id(9)));
        // 3 nodes + 2 links both ways.
        assert_eq!(g.source_tree_work(&id(1)), 3 + 4);
        assert!(g.tree_parent(&id(1), &id(3)).is_some());
        assert!(g.has_source_tree(&id(1)));
        assert_eq!(g.source_tree_work(&id(1)), 0, "cached");
        // A new record: caches dropped, the build charged again.
        g.update(rec(3, 2, &[2, 1]), 1);
        assert!(!g.has_source_tree(&id(1)));
        assert!(g.source_tree_work(&id(1)) > 3 + 4);
    }

    #[test]
    fn made_up_neighbours_cannot_grow_the_graph_past_the_unrecorded_cap() {
        // 600 records each listing its ring neighbours and 120 made-up nodes (72 k of them),
        // one made-up node listed by two records (a new node whose list has not come yet),
        // and node 1 linked to the first ring node.
        let ring = |i: u32| made_up(i, u32::MAX);
        let newcomer = made_up(u32::MAX, u32::MAX);
        let mut g = Graph::default();
        for i in 0..600u32 {
            let mut nbs = vec![ring((i + 1) % 600), ring((i + 599) % 600)];
            nbs.extend((0..120).map(|j| made_up(i, j)));
            if i < 2 {
                nbs.push(newcomer);
            }
            if i == 0 {
                nbs.push(id(1));
            }
            g.update(bulk(ring(i), nbs), 0);
        }
        g.update(bulk(id(1), vec![ring(0)]), 0);
        let hops = g.hops_from(&id(1));
        assert_eq!(hops.len(), 1 + 600 + MAX_UNRECORDED);
        assert!(hops.contains_key(&newcomer), "listed by two: kept first");
        assert_eq!(g.tree_parent(&id(1), &newcomer), Some(Some(ring(0))));
        // Its own record arrives: it is an ordinary node, and the cap still holds.
        g.update(bulk(newcomer, vec![ring(0), ring(1)]), 1);
        assert_eq!(g.hops_from(&id(1)).len(), 1 + 601 + MAX_UNRECORDED);
        // Built once (which reads all 72 k entries), every tree is small.
        assert!(g.source_tree_work(&ring(7)) > 72_000);
        assert!(g.tree_parent(&ring(0), &id(1)).is_some());
        let work = g.source_tree_work(&ring(7));
        assert!(work < 5_000, "a tree stays small: {work}");
    }
}
