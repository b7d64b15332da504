//! Link health in the core: the driver's samples kept per connection, the node's summary for
//! `status`, and [`EngineEvent::Health`] when something worth showing changed.

use std::time::Instant;

use super::*;
use crate::health::{self as h, HEALTH_EVENT_EVERY};

/// What a health event said, coarsely: a new event goes out only when this changes (bytes,
/// packet counts and ages change all the time and do not count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HealthKey {
    summary: HealthSummary,
    counters: [u64; 5],
    /// Per link: peer, quality, RTT in 10 ms steps, loss in per cent.
    links: Vec<(NodeId, LinkQuality, u32, u32)>,
}

impl Core {
    /// Keeps the driver's samples of connections that are still the current ones.
    pub(super) fn on_links(&mut self, samples: Vec<LinkSample>) {
        for s in samples {
            if let Some(c) = self.conns.get_mut(&s.peer) {
                if c.conn_id == s.conn_id {
                    c.link = Some(s.link);
                    self.health_dirty = true;
                }
            }
        }
    }

    /// The protocol counters shown in the health, in [`HealthKey`] order.
    fn health_counters(&self) -> [u64; 5] {
        let c = self.proto.counters();
        [c.duplicates, c.sent, c.received, c.grafts, c.prunes]
    }

    /// This node's health: its measured links summarised, and its counters.
    pub(super) fn node_health(&self) -> NodeHealth {
        let links: Vec<&LinkHealth> = self
            .conns
            .values()
            .filter_map(|c| c.link.as_ref())
            .collect();
        let qualities: Vec<LinkQuality> = links.iter().map(|l| l.quality).collect();
        let rtts: Vec<u32> = links.iter().map(|l| l.rtt_us).collect();
        let [duplicates, payloads_sent, payloads_received, grafts, prunes] = self.health_counters();
        NodeHealth {
            summary: h::summarize(&qualities),
            links: links.len() as u32,
            median_rtt_us: h::median(&rtts),
            worst_rtt_us: rtts.iter().copied().max(),
            worst_loss_permille: links.iter().map(|l| l.loss_permille).max(),
            duplicates,
            payloads_sent,
            payloads_received,
            grafts,
            prunes,
            catch_up_bytes_in: self.net.as_ref().map_or(0, |n| {
                n.counters
                    .catch_up_bytes_in
                    .load(std::sync::atomic::Ordering::Relaxed)
            }),
            catch_up_bytes_out: self.catch_up_bytes_out,
        }
    }

    /// Every measured link, by peer id.
    pub(super) fn peer_links(&self) -> Vec<PeerLink> {
        let mut v: Vec<PeerLink> = self
            .conns
            .iter()
            .filter_map(|(id, c)| {
                c.link.clone().map(|link| PeerLink {
                    id: id.to_hex(),
                    link,
                })
            })
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    fn health_key(&self, health: &NodeHealth) -> HealthKey {
        let mut links: Vec<(NodeId, LinkQuality, u32, u32)> = self
            .conns
            .iter()
            .filter_map(|(id, c)| {
                let l = c.link.as_ref()?;
                Some((*id, l.quality, l.rtt_us / 10_000, l.loss_permille / 10))
            })
            .collect();
        links.sort_by_key(|l| l.0);
        HealthKey {
            summary: health.summary,
            counters: [
                health.duplicates,
                health.payloads_sent,
                health.payloads_received,
                health.grafts,
                health.prunes,
            ],
            links,
        }
    }

    /// Something may have changed since the last health event.
    fn health_pending(&self) -> bool {
        self.health_dirty
            || self
                .last_health
                .as_ref()
                .is_some_and(|(_, k)| k.counters != self.health_counters())
    }

    /// How long until a pending health event may go out (`None`: nothing pending).
    pub(super) fn health_wait(&self) -> Option<Duration> {
        if !self.health_pending() {
            return None;
        }
        Some(match &self.last_health {
            Some((at, _)) => HEALTH_EVENT_EVERY.saturating_sub(at.elapsed()),
            None => Duration::ZERO,
        })
    }

    /// Sends [`EngineEvent::Health`] if something changed and the last one is at least
    /// [`HEALTH_EVENT_EVERY`] old.
    pub(super) fn maybe_emit_health(&mut self) {
        if self.health_wait() != Some(Duration::ZERO) {
            return;
        }
        self.health_dirty = false;
        let health = self.node_health();
        let key = self.health_key(&health);
        if self.last_health.as_ref().is_some_and(|(_, k)| *k == key) {
            return;
        }
        self.last_health = Some((Instant::now(), key));
        let links = self.peer_links();
        let _ = self.events.send(EngineEvent::Health { health, links });
    }
}
