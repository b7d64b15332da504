// Names and bodies written by others are shown with control characters and direction
// overrides as visible escapes (the same rule as the CLI and the exports).
import { clearMocks } from "@tauri-apps/api/mocks";
import { describe, expect, it } from "vitest";
import { tauriBackend } from "../src/ipc";
import { single } from "../src/lib/notify";
import { visibleText } from "../src/lib/text";
import { Store } from "../src/store";
import { mountApp } from "../src/views/app";
import { FakeEngine, peerView, settle } from "./fakeEngine";

const RLO = "\u202e";

describe("visibleText", () => {
  it("escapes terminal codes, bidi overrides and separators; keeps ordinary text", () => {
    expect(visibleText("invoice\u202etxt.exe")).toBe("invoice\\u{202e}txt.exe");
    expect(visibleText("\u001b[2J\u001b]52;c;ZXZpbA==\u0007")).toBe("\\x1b[2J\\x1b]52;c;ZXZpbA==\\x07");
    expect(visibleText("a\u2028b\u2066c\u200fd\u0085e")).toBe("a\\u{2028}b\\u{2066}c\\u{200f}d\\x85e");
    expect(visibleText("Amara (clinic 2) — ok ✓ مرحبا")).toBe("Amara (clinic 2) — ok ✓ مرحبا");
    // Bodies keep their lines and tabs; one-line names do not.
    expect(visibleText("line 1\n\tline 2\r", true)).toBe("line 1\n\tline 2\\x0d");
    expect(visibleText("line 1\nline 2")).toBe("line 1\\x0aline 2");
  });

  it("is used for names and bodies in the room, the peer list and notifications", async () => {
    const engine = new FakeEngine();
    engine.install();
    engine.identity.name = "Amara";
    engine.joined.add("medical");
    const mallory = "ab".repeat(32);
    engine.message("medical", `Pay here${RLO}gpj.exe`, mallory, `Admin${RLO}nimdA`);
    engine.peers = [peerView({ id: mallory, name: `Ben${RLO}neB`, connected: true })];
    const root = document.createElement("div");
    document.body.replaceChildren(root);
    const store = new Store(tauriBackend);
    const unmount = mountApp(root, store);
    try {
      await store.start();
      await store.selectRoom("medical");
      await settle();
      const text = root.textContent ?? "";
      expect(text).not.toContain(RLO);
      expect(root.querySelector(".message .author")?.textContent).toBe("Admin\\u{202e}nimdA");
      expect(root.querySelector(".message .body")?.textContent).toBe("Pay here\\u{202e}gpj.exe");
      expect(root.querySelector(".peer-name")?.textContent).toBe("Ben\\u{202e}neB");
      const n = single({ room: "medical", authorName: `x${RLO}`, body: `\u001b[31mred` });
      expect(n.body).toBe("x\\u{202e} in #medical: \\x1b[31mred");
    } finally {
      unmount();
      store.stop();
      clearMocks();
    }
  });
});
