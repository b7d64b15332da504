//! Peer exchange: a node with few connections dials nodes it learned from neighbour lists.
//!
//! While this node has fewer than [`Config::active_target`](super::Config) connections in
//! its active view ([`super::view`], dials from the passive list in flight included), it asks
//! the driver ([`Output::Dial`]) to dial the nearest nodes of the network graph it is not
//! connected to (two hops or more, nearest first), at up to [`DIAL_ADDRS_PER_NODE`] addresses their
//! neighbours report. A node suggested once is not suggested again for [`SUGGEST_AGAIN_MS`].
//! The check runs at every housekeeping tick ([`TICK_MS`](super::TICK_MS)) and after the
//! graph changed, at most once per [`EXCHANGE_MIN_GAP_MS`] (a flood of neighbour lists does
//! not become a flood of graph walks).

use std::collections::HashMap;

use super::{Output, Protocol};
use crate::message::NodeId;

/// Wanted number of connections; below it, peers of peers are dialed (the default of
/// [`Config::active_target`](super::Config), [`super::view::ACTIVE_TARGET`]).
pub const TARGET_PEERS: usize = super::view::ACTIVE_TARGET;
/// A node suggested for dialing is not suggested again for this long, ms.
pub const SUGGEST_AGAIN_MS: u64 = 60_000;
/// Addresses dialed per suggested node (its neighbours may report several).
pub const DIAL_ADDRS_PER_NODE: usize = 2;
/// Least time between two peer-exchange checks after graph changes, ms.
pub const EXCHANGE_MIN_GAP_MS: u64 = 500;

/// Peer-exchange state.
#[derive(Debug, Default)]
pub(super) struct Exchange {
    /// Node → when it was last suggested (entries older than [`SUGGEST_AGAIN_MS`] are
    /// forgotten, so this holds at most the graph's nodes).
    suggested: HashMap<NodeId, u64>,
    /// The graph changed since the last check.
    pub(super) due: bool,
    pub(super) last: Option<u64>,
}

impl Protocol {
    /// Notes that the graph (or our connections) changed: a check is due.
    pub(super) fn exchange_due(&mut self) {
        self.exchange.due = true;
    }

    /// Runs the peer-exchange check when due (`tick`: always, the housekeeping cadence).
    /// `dialing`: dials from the passive list in flight ([`super::view`]), counted as peers.
    pub(super) fn exchange_peers(&mut self, tick: bool, dialing: usize, out: &mut Vec<Output>) {
        let now = self.now;
        let ex = &mut self.exchange;
        let gap_ok = ex
            .last
            .is_none_or(|t| now.saturating_sub(t) >= EXCHANGE_MIN_GAP_MS);
        if !(tick || (ex.due && gap_ok)) {
            return;
        }
        ex.due = false;
        ex.last = Some(now);
        ex.suggested
            .retain(|_, t| now.saturating_sub(*t) < SUGGEST_AGAIN_MS);
        let have = self.active_len() + dialing;
        let free = self.config.active_target.saturating_sub(have);
        if free == 0 {
            return;
        }
        let hops = self.graph.hops_from(&self.me);
        // Nodes some list gives an address for, in one pass: asking `addresses_of` (a pass
        // over every list) for each of hundreds of address-less nodes (sybils list none)
        // cost a pass per candidate.
        let dialable: std::collections::HashSet<NodeId> = self
            .graph
            .records()
            .flat_map(|r| r.neighbours.iter())
            .filter(|n| n.addr.is_some())
            .map(|n| n.id)
            .collect();
        let mut candidates: Vec<(u32, NodeId)> = hops
            .iter()
            .filter(|(id, h)| {
                **h >= 2
                    && **id != self.me
                    && !self.peers.contains_key(*id)
                    && dialable.contains(*id)
            })
            .map(|(id, h)| (*h, *id))
            .collect();
        candidates.sort();
        let mut dialed = 0;
        for (_, node) in candidates {
            if dialed >= free {
                break;
            }
            if self.exchange.suggested.contains_key(&node) {
                continue;
            }
            let addrs: Vec<_> = self
                .graph
                .addresses_of(&node)
                .into_iter()
                .take(DIAL_ADDRS_PER_NODE)
                .map(std::net::SocketAddr::V4)
                .collect();
            if addrs.is_empty() {
                continue;
            }
            self.exchange.suggested.insert(node, now);
            out.push(Output::Dial { node, addrs });
            dialed += 1;
        }
    }
}
