//! Network health: what a link's QUIC statistics and the node's counters say, in pure
//! functions (no clock, no I/O), with their thresholds.
//!
//! The network driver ([`crate::net`]) samples quinn's `Connection::stats()` of every live
//! connection every [`LINK_SAMPLE_EVERY`] (one call per connection, nothing per packet) and
//! hands the samples to the core, which shows them in `peers` ([`crate::api::PeerView::link`]),
//! summarises them in `status` ([`crate::api::NodeHealth`]) and pushes
//! [`crate::api::EngineEvent::Health`] when they change.
//!
//! Thresholds (the app's map uses the same numbers, generated into `limits.ts`): a LAN link,
//! wired or a healthy Wi-Fi, has an RTT of a few milliseconds and no loss. Up to
//! [`GOOD_MAX_RTT_MS`] and [`GOOD_MAX_LOSS_PERMILLE`] a link is good (messages arrive
//! instantly to a person); up to [`DEGRADED_MAX_RTT_MS`] and [`DEGRADED_MAX_LOSS_PERMILLE`]
//! it is degraded (a crowded Wi-Fi: QUIC retransmits and delivery slows); beyond either, poor.

use std::time::Duration;

use crate::api::{HealthSummary, LinkQuality};

/// How often the driver samples its connections' statistics.
pub const LINK_SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// Health events are sent at most this often.
pub const HEALTH_EVENT_EVERY: Duration = Duration::from_secs(2);
/// A link with a smoothed RTT up to this (milliseconds) and loss up to
/// [`GOOD_MAX_LOSS_PERMILLE`] is good.
pub const GOOD_MAX_RTT_MS: u32 = 100;
/// A link with a smoothed RTT over this (milliseconds) is poor.
pub const DEGRADED_MAX_RTT_MS: u32 = 400;
/// A link losing up to this many packets per thousand (2 %) can be good.
pub const GOOD_MAX_LOSS_PERMILLE: u32 = 20;
/// A link losing more than this many packets per thousand (10 %) is poor.
pub const DEGRADED_MAX_LOSS_PERMILLE: u32 = 100;
/// Loss is measured over the last sample interval when the link sent at least this many
/// packets in it (an idle link sends a keep-alive or two: too few to say), else over the
/// connection's life.
pub const MIN_LOSS_WINDOW_PACKETS: u64 = 20;

/// Packet counters of a connection at one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketCounts {
    /// Packets sent since the connection started.
    pub sent: u64,
    /// Packets deemed lost since the connection started.
    pub lost: u64,
}

/// Lost packets per thousand sent, between `prev` and `now` when at least
/// [`MIN_LOSS_WINDOW_PACKETS`] were sent in between, else over the connection's life (`now`).
pub fn loss_permille(prev: PacketCounts, now: PacketCounts) -> u32 {
    let sent = now.sent.saturating_sub(prev.sent);
    let (sent, lost) = if sent >= MIN_LOSS_WINDOW_PACKETS {
        (sent, now.lost.saturating_sub(prev.lost))
    } else {
        (now.sent, now.lost)
    };
    if sent == 0 {
        return 0;
    }
    let permille = lost.min(sent).saturating_mul(1000) / sent;
    u32::try_from(permille).unwrap_or(1000)
}

/// A link's quality from its smoothed RTT (µs) and loss (per thousand): the worse of the two.
pub fn link_quality(rtt_us: u32, loss_permille: u32) -> LinkQuality {
    let rtt_ms = rtt_us / 1000;
    if rtt_ms > DEGRADED_MAX_RTT_MS || loss_permille > DEGRADED_MAX_LOSS_PERMILLE {
        LinkQuality::Poor
    } else if rtt_ms > GOOD_MAX_RTT_MS || loss_permille > GOOD_MAX_LOSS_PERMILLE {
        LinkQuality::Degraded
    } else {
        LinkQuality::Good
    }
}

/// One word for a node's links: isolated without any, poor when the median link is poor
/// (the lower median: more than half of the node's connections are poor), degraded when any
/// link is not good, else good.
pub fn summarize(qualities: &[LinkQuality]) -> HealthSummary {
    let mut q = qualities.to_vec();
    q.sort();
    let (Some(median), Some(worst)) = (q.get(q.len().saturating_sub(1) / 2), q.last()) else {
        return HealthSummary::Isolated;
    };
    match (median, worst) {
        (LinkQuality::Poor, _) => HealthSummary::Poor,
        (_, LinkQuality::Good) => HealthSummary::Good,
        _ => HealthSummary::Degraded,
    }
}

/// The median of `values` (the upper one of an even count), `None` when empty.
pub fn median(values: &[u32]) -> Option<u32> {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinkQuality::{Degraded, Good, Poor};

    fn counts(sent: u64, lost: u64) -> PacketCounts {
        PacketCounts { sent, lost }
    }

    #[test]
    fn loss_uses_the_window_when_busy_else_the_whole_life() {
        // 100 sent in the window, 5 of them lost: 50 ‰ (life: 15/1100 would be 13 ‰).
        assert_eq!(loss_permille(counts(1000, 10), counts(1100, 15)), 50);
        // A keep-alive or two: the connection's life.
        assert_eq!(loss_permille(counts(1000, 10), counts(1002, 10)), 9);
        assert_eq!(loss_permille(counts(0, 0), counts(0, 0)), 0);
        // Counters that went backwards (a new connection) or more lost than sent: bounded.
        assert_eq!(loss_permille(counts(50, 40), counts(10, 30)), 1000);
    }

    #[test]
    fn quality_is_the_worse_of_rtt_and_loss() {
        assert_eq!(link_quality(2_000, 0), Good);
        assert_eq!(
            link_quality(GOOD_MAX_RTT_MS * 1000, GOOD_MAX_LOSS_PERMILLE),
            Good
        );
        assert_eq!(link_quality(GOOD_MAX_RTT_MS * 1000 + 1000, 0), Degraded);
        assert_eq!(link_quality(1_000, GOOD_MAX_LOSS_PERMILLE + 1), Degraded);
        assert_eq!(link_quality(DEGRADED_MAX_RTT_MS * 1000, 0), Degraded);
        assert_eq!(link_quality(DEGRADED_MAX_RTT_MS * 1000 + 1000, 0), Poor);
        assert_eq!(link_quality(1_000, DEGRADED_MAX_LOSS_PERMILLE + 1), Poor);
        assert_eq!(link_quality(u32::MAX, 1000), Poor);
    }

    #[test]
    fn summary_from_median_and_worst_link() {
        assert_eq!(summarize(&[]), HealthSummary::Isolated);
        assert_eq!(summarize(&[Good]), HealthSummary::Good);
        assert_eq!(summarize(&[Good, Good, Good]), HealthSummary::Good);
        assert_eq!(summarize(&[Good, Poor, Good]), HealthSummary::Degraded);
        assert_eq!(summarize(&[Degraded]), HealthSummary::Degraded);
        assert_eq!(summarize(&[Poor, Good, Poor]), HealthSummary::Poor);
        assert_eq!(summarize(&[Poor]), HealthSummary::Poor);
        // Two links, one poor: not most of them.
        assert_eq!(summarize(&[Good, Poor]), HealthSummary::Degraded);
        assert_eq!(
            summarize(&[Degraded, Poor, Poor, Good]),
            HealthSummary::Degraded
        );
        assert_eq!(summarize(&[Poor, Poor, Poor, Good]), HealthSummary::Poor);
    }

    #[test]
    fn median_takes_the_upper_middle() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7]), Some(7));
        assert_eq!(median(&[9, 1, 5]), Some(5));
        assert_eq!(median(&[1, 2, 3, 4]), Some(3));
    }
}
