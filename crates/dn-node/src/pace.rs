//! Discovery pacing: what LAN discovery costs must not grow with the number of nodes.
//!
//! Every beacon and every mDNS query reaches every host on the LAN, so with each node
//! discovering at a fixed rate a host's share grows with N and the LAN's with N² (issue #14
//! measured 34 KB/s of discovery per laptop at 100 hosts, against 0.3 KB/s of QUIC). Once a
//! node is in the overlay it learns of everyone through the signed neighbour lists, so
//! discovery only has to let newcomers in and let separate groups find each other. Two rules:
//!
//! - **The beacon slows down as the LAN fills up**: its period is [`beacon_period`]`(known)`,
//!   one beacon per [`BEACON_SPACING`] per known node, between [`BEACON_MIN`] and
//!   [`BEACON_MAX`]. What a host receives stays at about 1 ÷ [`BEACON_SPACING`] beacons per
//!   second whatever N (up to `BEACON_MAX ÷ BEACON_SPACING` nodes), and a newcomer still
//!   hears its first beacon within that spacing, from someone.
//! - **mDNS browses only while it is needed** ([`BrowseGate`]): from the start for at least
//!   [`BROWSE_FIRST`], and again whenever the active view stays short of its target for
//!   [`SHORT_GRACE`]; otherwise it stops (mdns-sd's queries and its cache refreshes go with
//!   it, which are what grow as N²). A node that does not browse still answers queries, so
//!   newcomers find it. To let groups that were apart find each other even without the beacon,
//!   it browses for [`SWEEP_FOR`] every [`sweep_period`]`(known)` (± 25 %), which again
//!   spreads one sweep per [`SWEEP_SPACING`] across the LAN, whatever N.
//!
//! "Known" is the number of distinct nodes discovery heard within [`KNOWN_WINDOW`] (at most
//! [`KNOWN_CAP`]: forged beacons can only make this node discover more slowly, never more
//! often).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dn_proto::rng::Rng;
use dn_proto::NodeId;

/// Beacon spacing per known node: a host receives about one beacon per this, whatever N.
pub const BEACON_SPACING: Duration = Duration::from_millis(250);
/// Shortest beacon period (a small LAN, or a node that knows nobody yet).
pub const BEACON_MIN: Duration = Duration::from_secs(2);
/// Longest beacon period; [`crate::diagnose::BEACON_GONE`] is three of these.
pub const BEACON_MAX: Duration = Duration::from_secs(20);
/// mDNS browses at least this long after the node starts.
pub const BROWSE_FIRST: Duration = Duration::from_secs(60);
/// The active view short of its target this long starts a browse (and it lasts as long).
pub const SHORT_GRACE: Duration = Duration::from_secs(15);
/// A sweep (a browse while the view is full) lasts this long.
pub const SWEEP_FOR: Duration = Duration::from_secs(10);
/// Sweep spacing per known node: the LAN sees about one sweep per this, whatever N.
pub const SWEEP_SPACING: Duration = Duration::from_secs(30);
/// Shortest and longest sweep period.
pub const SWEEP_MIN: Duration = Duration::from_secs(5 * 60);
/// See [`SWEEP_MIN`].
pub const SWEEP_MAX: Duration = Duration::from_secs(60 * 60);
/// A node counts as known this long after discovery last heard of it.
pub const KNOWN_WINDOW: Duration = Duration::from_secs(30 * 60);
/// Nodes counted at most.
pub const KNOWN_CAP: usize = 1024;

/// The beacon period for a node that knows `known` other nodes.
pub fn beacon_period(known: usize) -> Duration {
    BEACON_SPACING
        .saturating_mul(u32::try_from(known).unwrap_or(u32::MAX))
        .clamp(BEACON_MIN, BEACON_MAX)
}

/// The mean time between two mDNS sweeps of a node that knows `known` other nodes.
pub fn sweep_period(known: usize) -> Duration {
    SWEEP_SPACING
        .saturating_mul(u32::try_from(known).unwrap_or(u32::MAX))
        .clamp(SWEEP_MIN, SWEEP_MAX)
}

/// `base` scaled by a factor in [0.75, 1.25) drawn from `r`.
pub fn jittered(base: Duration, r: u64) -> Duration {
    let permille = 750 + r % 500;
    base.saturating_mul(u32::try_from(permille).unwrap_or(1000)) / 1000
}

/// The random numbers pacing needs: [`Rng`] seeded from the node id and a `salt` (one stream
/// per use).
pub fn rng(id: &NodeId, salt: u64) -> Rng {
    let mut s = salt;
    for c in id.0.chunks_exact(8) {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        s ^= u64::from_le_bytes(b);
    }
    Rng::new(s)
}

/// What discovery knows, shared by the beacon, mDNS and the network driver.
#[derive(Debug, Default)]
pub struct Pace {
    heard: Mutex<HashMap<NodeId, Instant>>,
    connected: AtomicUsize,
}

impl Pace {
    /// Discovery heard of `id` at `now`.
    pub fn heard(&self, id: NodeId, now: Instant) {
        let Ok(mut h) = self.heard.lock() else {
            return;
        };
        if h.len() >= KNOWN_CAP && !h.contains_key(&id) {
            h.retain(|_, t| now.saturating_duration_since(*t) < KNOWN_WINDOW);
            if h.len() >= KNOWN_CAP {
                return;
            }
        }
        h.insert(id, now);
    }

    /// Nodes heard within [`KNOWN_WINDOW`] of `now`.
    pub fn known(&self, now: Instant) -> usize {
        self.heard.lock().map_or(0, |h| {
            h.values()
                .filter(|t| now.saturating_duration_since(**t) < KNOWN_WINDOW)
                .count()
        })
    }

    /// The network driver's connection count changed.
    pub fn set_connected(&self, n: usize) {
        self.connected.store(n, Ordering::Relaxed);
    }

    /// Peers connected now.
    pub fn connected(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }
}

/// What [`BrowseGate::step`] asks of mDNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Browse {
    /// Start browsing.
    Start,
    /// Stop browsing.
    Stop,
}

/// When mDNS browses (see the module docs). Pure: the caller passes the time and the counts.
#[derive(Debug)]
pub struct BrowseGate {
    browsing: bool,
    /// While browsing: not stopped before this.
    until: Instant,
    /// While not browsing: since when the view has been short of its target.
    short_since: Option<Instant>,
    /// While not browsing: the next sweep.
    next_sweep: Instant,
    rng: Rng,
}

impl BrowseGate {
    /// A gate for a node that starts browsing at `now`.
    pub fn new(now: Instant, rng: Rng) -> BrowseGate {
        BrowseGate {
            browsing: true,
            until: now + BROWSE_FIRST,
            short_since: None,
            next_sweep: now,
            rng,
        }
    }

    /// Whether mDNS is browsing.
    pub fn browsing(&self) -> bool {
        self.browsing
    }

    /// The browse ended on its own (the daemon closed it): the gate counts it as stopped.
    pub fn ended(&mut self, now: Instant, known: usize) {
        if self.browsing {
            self.stop(now, known);
        }
    }

    fn stop(&mut self, now: Instant, known: usize) {
        self.browsing = false;
        self.short_since = None;
        self.next_sweep = now + jittered(sweep_period(known), self.rng.next_u64());
    }

    fn start(&mut self, now: Instant, lasting: Duration) {
        self.browsing = true;
        self.until = now + lasting;
    }

    /// Called every few seconds with the peers `connected`, the view's `target` and the
    /// nodes `known`: what to do, if anything.
    pub fn step(
        &mut self,
        now: Instant,
        connected: usize,
        target: usize,
        known: usize,
    ) -> Option<Browse> {
        let short = connected < target;
        if self.browsing {
            if now >= self.until && !short {
                self.stop(now, known);
                return Some(Browse::Stop);
            }
            return None;
        }
        if short {
            let since = *self.short_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= SHORT_GRACE {
                self.start(now, SHORT_GRACE);
                return Some(Browse::Start);
            }
        } else {
            self.short_since = None;
        }
        if now >= self.next_sweep {
            self.start(now, SWEEP_FOR);
            return Some(Browse::Start);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_beacon_period_grows_with_the_lan_so_a_host_hears_a_constant_rate() {
        assert_eq!(beacon_period(0), BEACON_MIN);
        assert_eq!(beacon_period(8), BEACON_MIN);
        assert_eq!(beacon_period(40), 10 * S);
        assert_eq!(beacon_period(80), BEACON_MAX);
        assert_eq!(beacon_period(usize::MAX), BEACON_MAX);
        // What one host receives per second from `n` nodes that all know each other.
        let rate = |n: usize| n as f64 / beacon_period(n - 1).as_secs_f64();
        for n in [20, 50, 81] {
            assert!((3.9..=4.3).contains(&rate(n)), "{n} nodes: {}", rate(n));
        }
        assert!(rate(10) < 5.0);
        assert!(2 * BEACON_MAX < crate::diagnose::BEACON_GONE);
    }

    #[test]
    fn sweeps_are_spread_so_the_lan_sees_a_constant_rate() {
        assert_eq!(sweep_period(0), SWEEP_MIN);
        assert_eq!(sweep_period(100), 3000 * S);
        assert_eq!(sweep_period(1000), SWEEP_MAX);
        let mut r = rng(&NodeId([3; 32]), 1);
        for _ in 0..1000 {
            let j = jittered(100 * S, r.next_u64());
            assert!(j >= 75 * S && j < 125 * S, "{j:?}");
        }
    }

    #[test]
    fn known_counts_recent_distinct_nodes_and_is_capped() {
        let p = Pace::default();
        let t0 = Instant::now();
        p.heard(NodeId([1; 32]), t0);
        p.heard(NodeId([1; 32]), t0 + S);
        p.heard(NodeId([2; 32]), t0 + S);
        assert_eq!(p.known(t0 + S), 2);
        assert_eq!(
            p.known(t0 + KNOWN_WINDOW + S),
            0,
            "forgotten after the window"
        );
        for i in 0..(KNOWN_CAP as u32 + 50) {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            p.heard(NodeId(id), t0);
        }
        assert_eq!(p.known(t0), KNOWN_CAP);
        p.set_connected(5);
        assert_eq!(p.connected(), 5);
    }

    #[test]
    fn mdns_browses_first_then_only_when_short_or_to_sweep() {
        let t0 = Instant::now();
        let mut g = BrowseGate::new(t0, rng(&NodeId([9; 32]), 0));
        assert!(g.browsing());
        // The first minute browses whatever the view.
        assert_eq!(g.step(t0 + 30 * S, 8, 8, 100), None);
        // Past it, a full view stops the browse; a short one keeps it.
        assert_eq!(g.step(t0 + BROWSE_FIRST, 3, 8, 100), None);
        assert_eq!(
            g.step(t0 + BROWSE_FIRST + 5 * S, 8, 8, 100),
            Some(Browse::Stop)
        );
        assert!(!g.browsing());
        let stopped = t0 + BROWSE_FIRST + 5 * S;
        // A short view starts it again after the grace, not at once.
        assert_eq!(g.step(stopped + S, 7, 8, 100), None);
        assert_eq!(g.step(stopped + 10 * S, 7, 8, 100), None);
        assert_eq!(
            g.step(stopped + S + SHORT_GRACE, 7, 8, 100),
            Some(Browse::Start)
        );
        // It lasts the grace, then stops once the view is full.
        let started = stopped + S + SHORT_GRACE;
        assert_eq!(g.step(started + 5 * S, 8, 8, 100), None);
        assert_eq!(g.step(started + SHORT_GRACE, 8, 8, 100), Some(Browse::Stop));
        // A view that recovers before the grace resets it.
        let t = started + SHORT_GRACE;
        assert_eq!(g.step(t + S, 7, 8, 100), None);
        assert_eq!(g.step(t + 2 * S, 8, 8, 100), None);
        assert_eq!(g.step(t + 2 * S + SHORT_GRACE, 7, 8, 100), None);
        // With a full view it sweeps within [0.75, 1.25] × the period, for SWEEP_FOR.
        let mut n = t + 2 * S + SHORT_GRACE;
        let mut sweep_at = None;
        while n < t + 2 * sweep_period(100) {
            n += 5 * S;
            if g.step(n, 8, 8, 100) == Some(Browse::Start) {
                sweep_at = Some(n);
                break;
            }
        }
        let at = sweep_at.expect("a sweep");
        let after = at.saturating_duration_since(t);
        assert!(after >= sweep_period(100) * 3 / 4 && after <= sweep_period(100) * 5 / 4 + 10 * S);
        assert_eq!(g.step(at + 5 * S, 8, 8, 100), None);
        assert_eq!(g.step(at + SWEEP_FOR, 8, 8, 100), Some(Browse::Stop));
        // A browse the daemon ended counts as stopped.
        let mut g = BrowseGate::new(t0, rng(&NodeId([9; 32]), 0));
        g.ended(t0 + S, 10);
        assert!(!g.browsing());
    }
}
