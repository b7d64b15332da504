//! A seeded, deterministic network simulator for [`Protocol`]: N nodes over [`MemStorage`],
//! a topology, per-link latency and loss, partitions that open and heal, nodes that crash and
//! restart with their stored state, and simulated time. The same seed gives the same run, bit
//! for bit, so any failure reproduces from the seed printed in its report.
//!
//! Links model QUIC streams: reliable and ordered. Packet loss therefore shows up as delay (a
//! lost frame is retransmitted after a timeout, and frames behind it wait), not as missing
//! frames. A partition or crash closes the connection: frames in flight are lost, and the two
//! sides see `Disconnected`; healing reconnects them and the protocol's catch-up runs.
//!
//! Every frame is encoded, counted and decoded on delivery, and every message is signed and
//! verified, so the figures (bytes, copies) are those of the real wire protocol.
//!
//! [`Topology::Lan`] models one LAN where discovery hears everyone: no link is up at start,
//! every node is told of every other ([`Input::Discovered`]) and connections open only when a
//! node dials ([`Output::Dial`], one round trip later) and close when one asks
//! ([`Output::Disconnect`]), so the protocol's bounded view ([`crate::protocol::view`])
//! shapes the overlay. [`run_with_churn`] adds nodes leaving and coming back, and the report
//! tells connections per node and whether the overlay stayed connected.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use ed25519_dalek::SigningKey;

use crate::codec::Frame;
use crate::message::{Message, MessageId, NodeId};
use crate::protocol::{Config, Input, MemStorage, Output, Propagation, Protocol, Storage};
use crate::topo::{Neighbour, TopoRecord};

/// The room all simulated traffic uses.
pub const ROOM: &str = "sim";

pub use crate::rng::Rng;

/// Network shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// Connected random graph where every node has about this degree.
    Random(usize),
    /// A line: only neighbours are linked.
    Chain,
    /// A square-ish grid, 4-neighbourhood.
    Grid,
    /// Two random clusters of this degree joined through a single bridge node.
    TwoClusters(usize),
    /// One LAN: any two nodes can connect, every node discovers every other, and the nodes'
    /// own dials and closes decide which links are up (module docs).
    Lan,
}

/// Nodes leaving and coming back during a run ([`run_with_churn`]).
#[derive(Debug, Clone, Copy)]
pub struct Churn {
    /// One random node (never node 0) leaves this often, ms.
    pub every_ms: u64,
    /// It comes back (fresh state, stored messages kept) this long after leaving, ms.
    pub down_ms: u64,
    /// First leave, ms.
    pub from_ms: u64,
    /// No leave after this, ms.
    pub until_ms: u64,
}

/// Who sends the measured messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Senders {
    /// Always node 0.
    Fixed,
    /// A different random node for every message.
    Changing,
}

/// A partition: from `at_ms` to `heal_ms` the nodes are split in two groups (the first
/// `fraction` of node indices vs the rest) and every link across is down.
#[derive(Debug, Clone, Copy)]
pub struct Partition {
    /// When it opens.
    pub at_ms: u64,
    /// When it heals.
    pub heal_ms: u64,
    /// Share of nodes on the first side.
    pub fraction: f64,
}

/// Nodes that crash (state lost except their store) and restart.
#[derive(Debug, Clone, Copy)]
pub struct Crash {
    /// How many nodes (random, never node 0).
    pub nodes: usize,
    /// When they crash.
    pub at_ms: u64,
    /// When they come back.
    pub restart_ms: u64,
}

/// A simulation run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// PRNG seed: the whole run follows from it.
    pub seed: u64,
    /// Number of nodes.
    pub nodes: usize,
    /// Shape.
    pub topology: Topology,
    /// One-way link latency range, ms (each link draws its own).
    pub latency_ms: (u64, u64),
    /// Packet loss probability per frame transmission (0.0–1.0), seen as retransmission delay.
    pub loss: f64,
    /// Messages sent before measuring (lets the tree settle).
    pub warmup: usize,
    /// Messages measured.
    pub messages: usize,
    /// Sender choice.
    pub senders: Senders,
    /// Time between messages, ms.
    pub interval_ms: u64,
    /// Propagation strategy under test.
    pub propagation: Propagation,
    /// Source trees ([`crate::protocol::Config::source_trees`]): the nodes sign and exchange
    /// neighbour lists (each link's round-trip time is twice its latency) and a message
    /// follows its author's fastest-path tree. Off: no neighbour lists, one shared tree.
    pub source_trees: bool,
    /// Optional partition.
    pub partition: Option<Partition>,
    /// Optional crashes.
    pub crash: Option<Crash>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            nodes: 100,
            topology: Topology::Random(6),
            latency_ms: (10, 50),
            loss: 0.0,
            warmup: 10,
            messages: 50,
            senders: Senders::Changing,
            interval_ms: 200,
            propagation: Propagation::Tree,
            source_trees: true,
            partition: None,
            crash: None,
        }
    }
}

/// What a run measured (over the measured messages only).
#[derive(Debug, Clone, PartialEq)]
pub struct SimReport {
    /// Seed of the run.
    pub seed: u64,
    /// Propagation strategy.
    pub propagation: Propagation,
    /// Fraction of (message, node ≠ author) pairs delivered by the end.
    pub delivery: f64,
    /// Message payloads received per node per message (1.0 = no duplicates).
    pub copies_per_node: f64,
    /// Hops from the author at first arrival: median, 99th percentile, maximum.
    pub hops_p50: u32,
    /// 99th percentile of hops.
    pub hops_p99: u32,
    /// Maximum hops.
    pub hops_max: u32,
    /// Time from publish to first arrival, ms: median and 99th percentile.
    pub latency_p50_ms: u64,
    /// 99th percentile latency.
    pub latency_p99_ms: u64,
    /// Whether messages followed their authors' source trees ([`SimConfig::source_trees`]).
    pub source_trees: bool,
    /// All bytes sent (frames with their length prefix), measured phase and catch-up included.
    pub bytes_sent: u64,
    /// Of those, neighbour lists (`Topo` frames): the one-time map of the network the source
    /// trees need (every node's list reaches every node once it is signed).
    pub topology_bytes: u64,
    /// Bytes sent per measured message per node, neighbour lists not counted.
    pub bytes_per_msg_node: f64,
    /// Grafts sent (tree repairs).
    pub grafts: u64,
    /// Tree swaps (PlumTree's optimisation) by all nodes over the whole run.
    pub swaps: u64,
    /// Messages that followed the shared tree because a node's source-tree budget was spent
    /// ([`crate::protocol::Counters::tree_over_budget`]), all nodes, whole run.
    pub tree_over_budget: u64,
    /// Simulated time at the end, ms.
    pub end_ms: u64,
    /// Most connections one node had, over the samples (once a second) and the end.
    pub max_connections: usize,
    /// Mean connections per running node, over the samples.
    pub mean_connections: f64,
    /// Samples in which the running nodes did not form one connected overlay.
    pub split_samples: usize,
    /// Samples taken.
    pub samples: usize,
}

/// `tree` (source trees), `shared` (one shared tree) or `flood`.
fn mode_name(propagation: Propagation, source_trees: bool) -> &'static str {
    match (propagation, source_trees) {
        (Propagation::Flood, _) => "flood",
        (Propagation::Tree, true) => "tree",
        (Propagation::Tree, false) => "shared",
    }
}

impl SimConfig {
    /// `tree` (source trees), `shared` (one shared tree) or `flood`.
    pub fn mode(&self) -> &'static str {
        mode_name(self.propagation, self.source_trees)
    }
}

impl SimReport {
    /// `tree` (source trees), `shared` (one shared tree) or `flood`.
    pub fn mode(&self) -> &'static str {
        mode_name(self.propagation, self.source_trees)
    }
}

impl std::fmt::Display for SimReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<6} seed={} delivery={:.4} copies/node/msg={:.3} hops p50/p99/max={}/{}/{} \
             latency p50/p99={}/{} ms bytes={} (neighbour lists {}; others {:.0} B/msg/node) \
             grafts={} swaps={} tree over budget={}",
            self.mode(),
            self.seed,
            self.delivery,
            self.copies_per_node,
            self.hops_p50,
            self.hops_p99,
            self.hops_max,
            self.latency_p50_ms,
            self.latency_p99_ms,
            self.bytes_sent,
            self.topology_bytes,
            self.bytes_per_msg_node,
            self.grafts,
            self.swaps,
            self.tree_over_budget,
        )?;
        if self.samples > 0 {
            write!(
                f,
                " connections max/mean={}/{:.1} split samples={}/{}",
                self.max_connections, self.mean_connections, self.split_samples, self.samples
            )?;
        }
        Ok(())
    }
}

enum Event {
    Deliver {
        from: usize,
        to: usize,
        gen: u64,
        bytes: Vec<u8>,
    },
    /// The node's `poll_timeout` deadline `at` (stale if the node asked for another since).
    Wake {
        node: usize,
        epoch: u64,
        at: u64,
    },
    Publish {
        node: usize,
        measured: bool,
        k: usize,
    },
    PartitionOpen,
    PartitionHeal,
    Crash(Vec<usize>),
    Restart(Vec<usize>),
    /// A dial from the first node reaches the second (LAN).
    Connect(usize, usize),
    /// One random running node leaves; it comes back `down_ms` later (churn).
    Leave {
        down_ms: u64,
    },
    /// Connections per node and connectivity are sampled.
    Sample,
    /// The node's driver signs its neighbour list (asked by [`Output::SignNeighbours`]).
    Sign(usize),
}

struct Node {
    key: SigningKey,
    /// Sequence number of its last signed neighbour list.
    topo_seq: u64,
    proto: Option<Protocol>,
    store: MemStorage,
    epoch: u64,
    /// The wake-up scheduled for the protocol's next deadline.
    wake_at: Option<u64>,
}

/// Builds the undirected edge list of a topology (connected for every variant).
pub fn build_topology(rng: &mut Rng, n: usize, topo: Topology) -> Vec<(usize, usize)> {
    let mut edges: HashSet<(usize, usize)> = HashSet::new();
    let add = |a: usize, b: usize, e: &mut HashSet<(usize, usize)>| {
        if a != b {
            e.insert((a.min(b), a.max(b)));
        }
    };
    let random =
        |rng: &mut Rng, nodes: &[usize], degree: usize, e: &mut HashSet<(usize, usize)>| {
            // A random spanning tree first (connectivity), then random extra edges up to the degree.
            for i in 1..nodes.len() {
                let j = rng.below(i as u64) as usize;
                let (a, b) = (nodes[i], nodes[j]);
                e.insert((a.min(b), a.max(b)));
            }
            let target = nodes.len() * degree / 2;
            let mut guard = 0;
            while e
                .iter()
                .filter(|(a, b)| nodes.contains(a) && nodes.contains(b))
                .count()
                < target
                && guard < target * 20
            {
                guard += 1;
                let a = nodes[rng.below(nodes.len() as u64) as usize];
                let b = nodes[rng.below(nodes.len() as u64) as usize];
                if a != b {
                    e.insert((a.min(b), a.max(b)));
                }
            }
        };
    match topo {
        Topology::Random(d) => {
            let all: Vec<usize> = (0..n).collect();
            random(rng, &all, d, &mut edges);
        }
        Topology::Chain => {
            for i in 1..n {
                add(i - 1, i, &mut edges);
            }
        }
        Topology::Grid => {
            let w = (n as f64).sqrt().ceil() as usize;
            for i in 0..n {
                if (i + 1) % w != 0 && i + 1 < n {
                    add(i, i + 1, &mut edges);
                }
                if i + w < n {
                    add(i, i + w, &mut edges);
                }
            }
        }
        Topology::TwoClusters(d) => {
            let bridge = n / 2;
            let a: Vec<usize> = (0..bridge).collect();
            let b: Vec<usize> = (bridge + 1..n).collect();
            random(rng, &a, d, &mut edges);
            random(rng, &b, d, &mut edges);
            if let Some(&x) = a.first() {
                add(bridge, x, &mut edges);
            }
            if let Some(&y) = b.first() {
                add(bridge, y, &mut edges);
            }
        }
        // No link is up at start: the nodes dial (Sim::lan_link makes links on demand).
        Topology::Lan => {}
    }
    let mut v: Vec<_> = edges.into_iter().collect();
    v.sort_unstable();
    v
}

struct Sim {
    cfg: SimConfig,
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Event>,
    nodes: Vec<Node>,
    ids: Vec<NodeId>,
    index: HashMap<NodeId, usize>,
    /// Undirected link → (latency ms, connected, generation).
    links: HashMap<(usize, usize), (u64, bool, u64)>,
    /// Per directed link: time the last frame is delivered (streams are ordered).
    busy_until: HashMap<(usize, usize), u64>,
    cut: HashSet<(usize, usize)>,
    measured: HashMap<MessageId, (usize, u64)>,
    first_arrival: HashMap<(MessageId, usize), (u64, u8)>,
    payload_copies: u64,
    bytes: u64,
    topology_bytes: u64,
    /// Events scheduled other than wake-ups (deliveries, publishes, faults).
    work: usize,
    /// Connections per node and connectivity samples (LAN).
    max_conns: usize,
    conn_sum: f64,
    split_samples: usize,
    samples: usize,
}

impl Sim {
    fn schedule(&mut self, at: u64, ev: Event) {
        if !matches!(ev, Event::Wake { .. }) {
            self.work += 1;
        }
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.events.insert(self.seq, ev);
    }

    fn link_key(a: usize, b: usize) -> (usize, usize) {
        (a.min(b), a.max(b))
    }

    fn input(&mut self, i: usize, input: Input) {
        let now = self.now;
        let node = &mut self.nodes[i];
        let Some(proto) = node.proto.as_mut() else {
            return;
        };
        let outs = proto.handle(&mut node.store, input, now);
        self.apply(i, outs);
    }

    /// Runs node `i`'s due deadlines (a scheduled wake-up).
    fn wake(&mut self, i: usize) {
        let now = self.now;
        let node = &mut self.nodes[i];
        node.wake_at = None;
        let Some(proto) = node.proto.as_mut() else {
            return;
        };
        let outs = proto.handle_timeout(&mut node.store, now);
        self.apply(i, outs);
    }

    /// Carries out node `i`'s outputs, then schedules a wake-up at its next deadline if it is
    /// earlier than the one already scheduled (as a driver sleeping on `poll_timeout` would).
    fn apply(&mut self, i: usize, outs: Vec<Output>) {
        for o in outs {
            match o {
                Output::Send { peer, frame } => self.send(i, peer, &frame),
                Output::Dial { node, .. } if self.cfg.topology == Topology::Lan => {
                    if let Some(&j) = self.index.get(&node) {
                        let lat = self.lan_link(i, j);
                        self.schedule(self.now + 2 * lat, Event::Connect(i, j));
                    }
                }
                Output::Disconnect { peer } => {
                    if let Some(&j) = self.index.get(&peer) {
                        self.disconnect(i, j);
                    }
                }
                Output::SignNeighbours if self.cfg.source_trees => {
                    self.schedule(self.now, Event::Sign(i));
                }
                Output::Stored { message, hops, .. } => {
                    let id = message.id();
                    if self.measured.contains_key(&id) {
                        self.first_arrival
                            .entry((id, i))
                            .or_insert((self.now, hops));
                    }
                }
                _ => {}
            }
        }
        let node = &mut self.nodes[i];
        if let Some(at) = node.proto.as_ref().and_then(|p| p.poll_timeout()) {
            if node.wake_at.is_none_or(|w| at < w) {
                node.wake_at = Some(at);
                let epoch = node.epoch;
                self.schedule(at.max(self.now), Event::Wake { node: i, epoch, at });
            }
        }
    }

    fn send(&mut self, from: usize, peer: NodeId, frame: &Frame) {
        let Some(&to) = self.index.get(&peer) else {
            return;
        };
        let key = Self::link_key(from, to);
        let Some(&(lat, up, gen)) = self.links.get(&key) else {
            return;
        };
        if !up {
            return;
        }
        let bytes = frame.encode_prefixed();
        self.bytes += bytes.len() as u64;
        if matches!(frame, Frame::Topo(_)) {
            self.topology_bytes += bytes.len() as u64;
        }
        let mut delay = lat;
        // Each loss costs a retransmission timeout (about 3 RTT, at least 50 ms).
        while self.rng.chance(self.cfg.loss) {
            delay += (6 * lat).max(50);
        }
        let at = (self.now + delay).max(*self.busy_until.get(&(from, to)).unwrap_or(&0));
        self.busy_until.insert((from, to), at);
        self.schedule(
            at,
            Event::Deliver {
                from,
                to,
                gen,
                bytes: bytes[4..].to_vec(),
            },
        );
    }

    /// The LAN link between `a` and `b` (created on first use, with its own latency).
    fn lan_link(&mut self, a: usize, b: usize) -> u64 {
        let key = Self::link_key(a, b);
        if let Some(l) = self.links.get(&key) {
            return l.0;
        }
        let lat = self.rng.range(self.cfg.latency_ms.0, self.cfg.latency_ms.1);
        self.links.insert(key, (lat, false, 0));
        lat
    }

    /// Connections of node `i` that are up.
    fn degree(&self, i: usize) -> usize {
        self.neighbours(i)
            .into_iter()
            .filter(|&j| self.links.get(&Self::link_key(i, j)).is_some_and(|l| l.1))
            .count()
    }

    /// Records connections per running node and whether they form one overlay.
    fn sample(&mut self) {
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].proto.is_some())
            .collect();
        let Some(&start) = up.first() else {
            return;
        };
        let mut adj: HashMap<usize, Vec<usize>> = HashMap::new();
        for (&(a, b), l) in &self.links {
            if l.1 {
                adj.entry(a).or_default().push(b);
                adj.entry(b).or_default().push(a);
            }
        }
        let mut seen: HashSet<usize> = HashSet::from([start]);
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            for &j in adj.get(&i).map_or(&[][..], |v| &v[..]) {
                if seen.insert(j) {
                    stack.push(j);
                }
            }
        }
        if up.iter().any(|i| !seen.contains(i)) {
            self.split_samples += 1;
        }
        let degrees: Vec<usize> = up
            .iter()
            .map(|&i| adj.get(&i).map_or(0, Vec::len))
            .collect();
        self.max_conns = self
            .max_conns
            .max(degrees.iter().copied().max().unwrap_or(0));
        self.conn_sum += degrees.iter().sum::<usize>() as f64 / up.len() as f64;
        self.samples += 1;
    }

    /// Tells every running node of `i`, and `i` of every running node (LAN discovery).
    fn discover(&mut self, i: usize) {
        let addr = |k: usize| {
            std::net::SocketAddr::from(([10, (k >> 16) as u8, (k >> 8) as u8, k as u8], 7300))
        };
        for j in 0..self.nodes.len() {
            if j == i || self.nodes[j].proto.is_none() {
                continue;
            }
            let (ii, ij) = (self.ids[i], self.ids[j]);
            self.input(
                j,
                Input::Discovered {
                    node: ii,
                    addrs: vec![addr(i)],
                },
            );
            self.input(
                i,
                Input::Discovered {
                    node: ij,
                    addrs: vec![addr(j)],
                },
            );
        }
    }

    fn connect(&mut self, a: usize, b: usize) {
        let key = Self::link_key(a, b);
        if self.cut.contains(&key) || self.nodes[a].proto.is_none() || self.nodes[b].proto.is_none()
        {
            return;
        }
        if let Some(l) = self.links.get_mut(&key) {
            if l.1 {
                return;
            }
            l.1 = true;
            l.2 += 1;
        }
        let (ia, ib) = (self.ids[a], self.ids[b]);
        self.input(a, Input::Connected { peer: ib });
        self.input(b, Input::Connected { peer: ia });
    }

    fn disconnect(&mut self, a: usize, b: usize) {
        let key = Self::link_key(a, b);
        if let Some(l) = self.links.get_mut(&key) {
            if !l.1 {
                return;
            }
            l.1 = false;
            l.2 += 1;
        }
        self.busy_until.remove(&(a, b));
        self.busy_until.remove(&(b, a));
        let (ia, ib) = (self.ids[a], self.ids[b]);
        self.input(a, Input::Disconnected { peer: ib });
        self.input(b, Input::Disconnected { peer: ia });
    }

    fn neighbours(&self, i: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .links
            .keys()
            .filter_map(|&(a, b)| {
                if a == i {
                    Some(b)
                } else if b == i {
                    Some(a)
                } else {
                    None
                }
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// Node `i` signs the list of its up links, each with its round-trip time, and hands it
    /// to its protocol (as `dn-node`'s driver does with QUIC's measured RTT).
    fn sign_neighbours(&mut self, i: usize) {
        let Some(proto) = self.nodes[i].proto.as_ref() else {
            return;
        };
        let mut neighbours: Vec<Neighbour> = proto
            .connected()
            .map(|id| Neighbour {
                id: *id,
                addr: None,
                rtt_ms: self
                    .index
                    .get(id)
                    .and_then(|&j| self.links.get(&Self::link_key(i, j)))
                    .map(|l| u16::try_from(2 * l.0).unwrap_or(u16::MAX)),
            })
            .collect();
        neighbours.sort_by_key(|n| n.id);
        let node = &mut self.nodes[i];
        node.topo_seq = self.now.max(node.topo_seq + 1);
        let rec = TopoRecord::create(&node.key, node.topo_seq, &format!("n{i}"), neighbours);
        self.input(i, Input::LocalTopology(rec));
    }

    fn fresh_proto(&self, i: usize) -> Protocol {
        let mut config = Config {
            propagation: self.cfg.propagation,
            source_trees: self.cfg.source_trees,
            ..Config::default()
        };
        if self.cfg.topology != Topology::Lan {
            // A given topology's links are the network itself: none is closed for the view.
            config.active_max = usize::MAX;
        }
        Protocol::with_config(
            self.ids[i],
            format!("n{i}"),
            7300,
            [ROOM.to_string()],
            config,
        )
    }

    fn run(mut self) -> SimReport {
        let mut edges: Vec<(usize, usize)> = self.links.keys().copied().collect();
        edges.sort_unstable();
        for (a, b) in edges {
            self.connect(a, b);
        }
        if self.cfg.topology == Topology::Lan {
            for i in 0..self.nodes.len() {
                self.discover(i);
            }
        }
        // Until the network is quiet: nothing in flight or scheduled, no repair pending. (The
        // nodes' housekeeping ticks would go on forever.)
        while self.work > 0
            || self
                .nodes
                .iter()
                .any(|n| n.proto.as_ref().is_some_and(|p| p.pending_repairs() > 0))
        {
            let Some(Reverse((at, seq))) = self.queue.pop() else {
                break;
            };
            self.now = at;
            let Some(ev) = self.events.remove(&seq) else {
                continue;
            };
            if !matches!(ev, Event::Wake { .. }) {
                self.work -= 1;
            }
            match ev {
                Event::Deliver {
                    from,
                    to,
                    gen,
                    bytes,
                } => {
                    let key = Self::link_key(from, to);
                    if self.links.get(&key).map(|l| (l.1, l.2)) != Some((true, gen)) {
                        continue; // connection closed while in flight
                    }
                    // The sender's driver wrote these bytes: its reply window opens again.
                    let to_id = self.ids[to];
                    let written = bytes.len() as u64 + 4;
                    self.input(
                        from,
                        Input::Drained {
                            peer: to_id,
                            bytes: written,
                        },
                    );
                    let Ok(frame) = Frame::decode(&bytes) else {
                        continue;
                    };
                    if let Frame::Msg { message, .. } = &frame {
                        if self.measured.contains_key(&message.id()) {
                            self.payload_copies += 1;
                        }
                    }
                    let peer = self.ids[from];
                    self.input(to, Input::Frame { peer, frame });
                }
                Event::Wake { node, epoch, at } => {
                    let n = &self.nodes[node];
                    if n.epoch == epoch && n.wake_at == Some(at) {
                        self.wake(node);
                    }
                }
                Event::Publish { node, measured, k } => {
                    if self.nodes[node].proto.is_none() {
                        continue;
                    }
                    let body = format!("message {k} from n{node}");
                    let n = &mut self.nodes[node];
                    let Ok(m) = Message::create(&n.key, ROOM, &format!("n{node}"), self.now, &body)
                    else {
                        continue;
                    };
                    if !matches!(n.store.insert(&m), Ok(true)) {
                        continue;
                    }
                    if measured {
                        self.measured.insert(m.id(), (node, self.now));
                    }
                    self.input(node, Input::Published(m));
                }
                Event::Sign(i) => self.sign_neighbours(i),
                Event::PartitionOpen => {
                    let cut: Vec<(usize, usize)> = self.cut.iter().copied().collect();
                    for (a, b) in cut {
                        self.disconnect(a, b);
                    }
                }
                Event::PartitionHeal => {
                    let cut: Vec<(usize, usize)> = self.cut.drain().collect();
                    for (a, b) in cut {
                        self.connect(a, b);
                    }
                }
                Event::Crash(nodes) => {
                    for &i in &nodes {
                        for j in self.neighbours(i) {
                            self.disconnect(i, j);
                        }
                        self.nodes[i].proto = None;
                        self.nodes[i].epoch += 1;
                        self.nodes[i].wake_at = None;
                    }
                }
                Event::Restart(nodes) => {
                    for &i in &nodes {
                        self.nodes[i].proto = Some(self.fresh_proto(i));
                        if self.cfg.topology == Topology::Lan {
                            self.discover(i);
                            continue;
                        }
                        for j in self.neighbours(i) {
                            self.connect(i, j);
                        }
                    }
                }
                Event::Connect(a, b) => {
                    if self.links.get(&Self::link_key(a, b)).is_some_and(|l| !l.1) {
                        self.connect(a, b);
                    }
                }
                Event::Leave { down_ms } => {
                    let n = self.nodes.len() as u64;
                    let running: Vec<usize> = (1..n as usize)
                        .filter(|&i| self.nodes[i].proto.is_some())
                        .collect();
                    if running.is_empty() {
                        continue;
                    }
                    let i = running[self.rng.below(running.len() as u64) as usize];
                    for j in self.neighbours(i) {
                        self.disconnect(i, j);
                    }
                    self.nodes[i].proto = None;
                    self.nodes[i].epoch += 1;
                    self.nodes[i].wake_at = None;
                    self.schedule(self.now + down_ms, Event::Restart(vec![i]));
                }
                Event::Sample => self.sample(),
            }
        }
        self.report()
    }

    fn report(&self) -> SimReport {
        let n = self.nodes.len();
        let msgs = self.measured.len().max(1);
        let mut delivered = 0usize;
        for (id, (author, _)) in &self.measured {
            for (i, node) in self.nodes.iter().enumerate() {
                if i != *author && matches!(node.store.has(id), Ok(true)) {
                    delivered += 1;
                }
            }
        }
        let pairs = (msgs * (n - 1)).max(1);
        let mut hops: Vec<u32> = self
            .first_arrival
            .values()
            .map(|(_, h)| u32::from(*h))
            .collect();
        let mut lat: Vec<u64> = self
            .first_arrival
            .iter()
            .filter_map(|((id, _), (t, _))| self.measured.get(id).map(|(_, t0)| t - t0))
            .collect();
        hops.sort_unstable();
        lat.sort_unstable();
        let pct = |v: &[u64], p: f64| -> u64 {
            if v.is_empty() {
                0
            } else {
                v[((v.len() - 1) as f64 * p).round() as usize]
            }
        };
        let hops64: Vec<u64> = hops.iter().map(|&h| u64::from(h)).collect();
        let total = |f: fn(&crate::protocol::Counters) -> u64| -> u64 {
            self.nodes
                .iter()
                .filter_map(|n| n.proto.as_ref())
                .map(|p| f(&p.counters()))
                .sum()
        };
        let grafts = total(|c| c.grafts);
        let swaps = total(|c| c.swaps);
        let tree_over_budget = total(|c| c.tree_over_budget);
        SimReport {
            seed: self.cfg.seed,
            propagation: self.cfg.propagation,
            delivery: delivered as f64 / pairs as f64,
            copies_per_node: self.payload_copies as f64 / pairs as f64,
            hops_p50: pct(&hops64, 0.5) as u32,
            hops_p99: pct(&hops64, 0.99) as u32,
            hops_max: hops.last().copied().unwrap_or(0),
            latency_p50_ms: pct(&lat, 0.5),
            latency_p99_ms: pct(&lat, 0.99),
            source_trees: self.cfg.source_trees,
            bytes_sent: self.bytes,
            topology_bytes: self.topology_bytes,
            bytes_per_msg_node: self.bytes.saturating_sub(self.topology_bytes) as f64
                / (msgs * n) as f64,
            grafts,
            swaps,
            tree_over_budget,
            end_ms: self.now,
            max_connections: (0..n)
                .map(|i| self.degree(i))
                .max()
                .unwrap_or(0)
                .max(self.max_conns),
            mean_connections: self.conn_sum / self.samples.max(1) as f64,
            split_samples: self.split_samples,
            samples: self.samples,
        }
    }
}

/// Runs one simulation.
pub fn run(cfg: &SimConfig) -> SimReport {
    run_with_churn(cfg, None)
}

/// Runs one simulation with nodes leaving and coming back ([`Churn`]). On a
/// [`Topology::Lan`], connections and connectivity are sampled every second from 1 s until
/// the last message was published.
pub fn run_with_churn(cfg: &SimConfig, churn: Option<Churn>) -> SimReport {
    let mut rng = Rng::new(cfg.seed);
    let n = cfg.nodes.max(2);
    let edges = build_topology(&mut rng, n, cfg.topology);
    let nodes: Vec<Node> = (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            seed[8..16].copy_from_slice(&cfg.seed.to_le_bytes());
            Node {
                key: SigningKey::from_bytes(&seed),
                topo_seq: 0,
                proto: None,
                store: MemStorage::default(),
                epoch: 0,
                wake_at: None,
            }
        })
        .collect();
    let ids: Vec<NodeId> = nodes
        .iter()
        .map(|n| NodeId(n.key.verifying_key().to_bytes()))
        .collect();
    let index = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut links = HashMap::new();
    for &(a, b) in &edges {
        let lat = rng.range(cfg.latency_ms.0, cfg.latency_ms.1);
        links.insert((a, b), (lat, false, 0u64));
    }
    let mut sim = Sim {
        cfg: cfg.clone(),
        rng,
        now: 0,
        seq: 0,
        queue: BinaryHeap::new(),
        events: HashMap::new(),
        nodes,
        ids,
        index,
        links,
        busy_until: HashMap::new(),
        work: 0,
        max_conns: 0,
        conn_sum: 0.0,
        split_samples: 0,
        samples: 0,
        cut: HashSet::new(),
        measured: HashMap::new(),
        first_arrival: HashMap::new(),
        payload_copies: 0,
        bytes: 0,
        topology_bytes: 0,
    };
    for i in 0..n {
        sim.nodes[i].proto = Some(sim.fresh_proto(i));
    }
    // Traffic: warm-up messages, then measured ones, one every interval, starting at 1 s.
    let total = cfg.warmup + cfg.messages;
    for k in 0..total {
        let node = match cfg.senders {
            Senders::Fixed => 0,
            Senders::Changing => sim.rng.below(n as u64) as usize,
        };
        let at = 1000 + k as u64 * cfg.interval_ms;
        sim.schedule(
            at,
            Event::Publish {
                node,
                measured: k >= cfg.warmup,
                k,
            },
        );
    }
    if let Some(p) = cfg.partition {
        let split = ((n as f64) * p.fraction).round() as usize;
        sim.cut = edges
            .iter()
            .copied()
            .filter(|&(a, b)| (a < split) != (b < split))
            .collect();
        sim.schedule(p.at_ms, Event::PartitionOpen);
        sim.schedule(p.heal_ms, Event::PartitionHeal);
    }
    if let Some(c) = cfg.crash {
        let mut victims: Vec<usize> = Vec::new();
        while victims.len() < c.nodes.min(n - 1) {
            let v = 1 + sim.rng.below((n - 1) as u64) as usize;
            if !victims.contains(&v) {
                victims.push(v);
            }
        }
        sim.schedule(c.at_ms, Event::Crash(victims.clone()));
        sim.schedule(c.restart_ms, Event::Restart(victims));
    }
    let last_publish = 1000 + total as u64 * cfg.interval_ms;
    if let Some(c) = churn {
        let mut at = c.from_ms;
        while at <= c.until_ms && c.every_ms > 0 {
            sim.schedule(at, Event::Leave { down_ms: c.down_ms });
            at += c.every_ms;
        }
    }
    if cfg.topology == Topology::Lan {
        let mut at = 1000;
        while at <= last_publish {
            sim.schedule(at, Event::Sample);
            at += 1000;
        }
    }
    sim.run()
}

#[cfg(test)]
mod tests;
