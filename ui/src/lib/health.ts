// Link and node health as the network view shows it: pure functions, with the engine's
// thresholds (generated into bindings/limits.ts from crates/dn-node/src/health.rs).

import type { HealthSummary } from "../bindings/HealthSummary";
import type { LinkHealth } from "../bindings/LinkHealth";
import type { LinkQuality } from "../bindings/LinkQuality";
import type { NodeHealth } from "../bindings/NodeHealth";
import {
  DEGRADED_MAX_LOSS_PERMILLE,
  DEGRADED_MAX_RTT_MS,
  GOOD_MAX_LOSS_PERMILLE,
  GOOD_MAX_RTT_MS,
} from "../bindings/limits";

/**
 * A link's quality from its smoothed RTT (µs) and loss (per thousand): the worse of the two,
 * as the engine's `health::link_quality` computes it.
 */
export function linkQuality(rttUs: number, lossPermille: number): LinkQuality {
  const rttMs = Math.floor(rttUs / 1000);
  if (rttMs > DEGRADED_MAX_RTT_MS || lossPermille > DEGRADED_MAX_LOSS_PERMILLE) return "poor";
  if (rttMs > GOOD_MAX_RTT_MS || lossPermille > GOOD_MAX_LOSS_PERMILLE) return "degraded";
  return "good";
}

/** An RTT in µs as `0.4 ms`, `12 ms`. */
export function formatRtt(rttUs: number): string {
  return rttUs < 10_000 ? `${(rttUs / 1000).toFixed(1)} ms` : `${Math.round(rttUs / 1000)} ms`;
}

/** Loss per thousand as `0.0 %`. */
export function formatLoss(lossPermille: number): string {
  return `${(lossPermille / 10).toFixed(1)} %`;
}

/** Bytes as `512 B`, `12 KB`, `3.4 MB` (powers of 1024). */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.floor(bytes / 1024)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
}

/** Seconds as `42 s`, `5 min`, `3 h`, `2 d`. */
export function formatAge(s: number): string {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}

/** One line about a link, for tooltips and the peer row: `RTT 1.2 ms · loss 0.0 % · …`. */
export function linkText(link: LinkHealth): string {
  return `RTT ${formatRtt(link.rtt_us)} · loss ${formatLoss(link.loss_permille)} · ${formatBytes(link.bytes_in)} in, ${formatBytes(link.bytes_out)} out · up ${formatAge(link.age_s)}`;
}

const SUMMARY_WORDS: Record<HealthSummary, string> = {
  good: "Network health: good",
  degraded: "Network health: degraded",
  poor: "Network health: poor",
  isolated: "Network health: no links",
};

/** The health summary line of the network view. */
export function healthLine(h: NodeHealth): string {
  const parts = [SUMMARY_WORDS[h.summary]];
  if (h.links > 0 && h.median_rtt_us !== null && h.worst_rtt_us !== null) {
    parts.push(
      `${h.links} ${h.links === 1 ? "link" : "links"}, RTT median ${formatRtt(h.median_rtt_us)}, worst ${formatRtt(h.worst_rtt_us)}`,
    );
  }
  if (h.worst_loss_permille !== null && h.worst_loss_permille > 0) {
    parts.push(`worst loss ${formatLoss(h.worst_loss_permille)}`);
  }
  parts.push(
    `${h.payloads_sent} sent, ${h.payloads_received} received, ${h.duplicates} ${h.duplicates === 1 ? "duplicate" : "duplicates"}`,
  );
  return parts.join(" · ");
}
