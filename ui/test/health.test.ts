import { describe, expect, it } from "vitest";
import { formatAge, formatBytes, formatLoss, formatRtt, healthLine, linkQuality, linkText } from "../src/lib/health";
import {
  DEGRADED_MAX_LOSS_PERMILLE,
  DEGRADED_MAX_RTT_MS,
  GOOD_MAX_LOSS_PERMILLE,
  GOOD_MAX_RTT_MS,
} from "../src/bindings/limits";
import type { NodeHealth } from "../src/bindings/NodeHealth";

describe("link quality", () => {
  it("uses the engine's thresholds: the worse of RTT and loss", () => {
    // Same cases as the Rust unit test `quality_is_the_worse_of_rtt_and_loss`.
    expect(linkQuality(2_000, 0)).toBe("good");
    expect(linkQuality(GOOD_MAX_RTT_MS * 1000, GOOD_MAX_LOSS_PERMILLE)).toBe("good");
    expect(linkQuality(GOOD_MAX_RTT_MS * 1000 + 1000, 0)).toBe("degraded");
    expect(linkQuality(1_000, GOOD_MAX_LOSS_PERMILLE + 1)).toBe("degraded");
    expect(linkQuality(DEGRADED_MAX_RTT_MS * 1000, 0)).toBe("degraded");
    expect(linkQuality(DEGRADED_MAX_RTT_MS * 1000 + 1000, 0)).toBe("poor");
    expect(linkQuality(1_000, DEGRADED_MAX_LOSS_PERMILLE + 1)).toBe("poor");
    expect(linkQuality(4_294_967_295, 1000)).toBe("poor");
  });

  it("has the documented numbers", () => {
    expect([GOOD_MAX_RTT_MS, DEGRADED_MAX_RTT_MS, GOOD_MAX_LOSS_PERMILLE, DEGRADED_MAX_LOSS_PERMILLE]).toEqual([
      100, 400, 20, 100,
    ]);
  });
});

describe("health texts", () => {
  it("formats a link compactly", () => {
    expect(formatRtt(1_234)).toBe("1.2 ms");
    expect(formatRtt(250_400)).toBe("250 ms");
    expect(formatLoss(15)).toBe("1.5 %");
    expect(formatBytes(900)).toBe("900 B");
    expect(formatBytes(12 * 1024 + 5)).toBe("12 KB");
    expect(formatBytes(3.5 * 1024 * 1024)).toBe("3.5 MB");
    expect(formatAge(330)).toBe("5 min");
    expect(
      linkText({
        rtt_us: 1_234,
        loss_permille: 0,
        bytes_in: 2048,
        bytes_out: 100,
        sent_packets: 10,
        lost_packets: 0,
        age_s: 42,
        quality: "good",
      }),
    ).toBe("RTT 1.2 ms · loss 0.0 % · 2 KB in, 100 B out · up 42 s");
  });

  it("summarises the node", () => {
    const h: NodeHealth = {
      summary: "degraded",
      links: 3,
      median_rtt_us: 800,
      worst_rtt_us: 150_000,
      worst_loss_permille: 25,
      duplicates: 1,
      payloads_sent: 4,
      payloads_received: 7,
      grafts: 0,
      prunes: 2,
      catch_up_bytes_in: 0,
      catch_up_bytes_out: 0,
    };
    expect(healthLine(h)).toBe(
      "Network health: degraded · 3 links, RTT median 0.8 ms, worst 150 ms · worst loss 2.5 % · 4 sent, 7 received, 1 duplicate",
    );
    expect(
      healthLine({ ...h, summary: "isolated", links: 0, median_rtt_us: null, worst_rtt_us: null, worst_loss_permille: null }),
    ).toBe("Network health: no links · 4 sent, 7 received, 1 duplicate");
  });
});
