// Desktop notifications reach a real notification server.
//
// A private D-Bus session bus and dunst (a freedesktop.org notification daemon, the kind a
// Linux desktop runs) are started for the test; the app, launched through tauri-driver +
// WebKitWebDriver, talks to them exactly as it would on a laptop. Another X window takes the
// focus (xdotool), a headless `disasternet node` sends messages, and dunst's own output says
// which notifications were shown: one per message while unfocused, none for a muted room, one
// summary for a large catch-up.
//
// Needs: dbus-daemon, dunst, xdotool, ImageMagick `display` (all from `make deps`), a display
// (xvfb-run). Everything stays on 127.0.0.1 with mDNS and the beacon off.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { By } from "selenium-webdriver";
import {
  CLI_BIN,
  GuiFixture,
  OUT_DIR,
  cli,
  elementWithText,
  eventually,
  freePort,
  messageWithBody,
  screenshot,
  sleep,
} from "./lib.mjs";

const ROOM = "medical";
const fx = new GuiFixture();
const procs = [];
let env; // environment with the private session bus
let dunstOut = ""; // everything dunst printed

/** Starts a long-running helper process; its output goes to OUT_DIR/notify-<name>.log. */
function start(name, cmd, args, onOutput) {
  const log = createWriteStream(join(OUT_DIR, `notify-${name}.log`));
  const p = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  for (const s of [p.stdout, p.stderr]) {
    s.on("data", (chunk) => {
      log.write(chunk);
      onOutput?.(chunk.toString());
    });
  }
  p.once("error", (e) => console.error(`${name}: ${e.message}`));
  procs.push(p);
  return p;
}

/** Bodies of the notifications dunst has shown so far (from `dunst -print`). */
function shownBodies() {
  return [...dunstOut.matchAll(/^\s*body: '(.*)'$/gm)].map((m) => m[1]);
}

/** Gives the X input focus to a window of another program, as switching apps would. */
function focusElsewhere() {
  const xdotool = (...args) => execFileSync("xdotool", args, { env }).toString().trim();
  const win = xdotool("search", "--name", "dn-other-window").split("\n")[0];
  assert.ok(win, "the other window exists");
  xdotool("windowfocus", "--sync", win);
  assert.equal(xdotool("getwindowfocus"), win);
}

before(async () => {
  mkdirSync(OUT_DIR, { recursive: true });
  assert.ok(process.env.DISPLAY, "run under a display (xvfb-run)");
  // A private session bus, so the test never touches a desktop session of the machine.
  const bus = spawn("dbus-daemon", ["--session", "--nofork", "--print-address=1"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  procs.push(bus);
  const address = await new Promise((ok, fail) => {
    let out = "";
    bus.once("error", fail);
    bus.stdout.on("data", (c) => {
      out += c.toString();
      if (out.includes("\n")) ok(out.trim());
    });
  });
  env = { ...process.env, DBUS_SESSION_BUS_ADDRESS: address };
  start("dunst", "dunst", ["-print"], (text) => {
    dunstOut += text;
  });
  // Another program's window, to move the focus away from the app.
  start("other-window", "display", ["-title", "dn-other-window", "-size", "160x90", "xc:gray"]);

  // The apps get the private bus through tauri-driver's environment.
  await fx.startDriver("notify-tauri-driver", env);
  await eventually("dunst to own org.freedesktop.Notifications", () =>
    execFileSync("dunstctl", ["is-paused"], { env }).toString().trim() === "false",
  );
  await eventually("the other window", () => execFileSync("xdotool", ["search", "--name", "dn-other-window"], { env }).length > 0);
});

after(async () => {
  await fx.close();
  for (const p of procs.reverse()) p.kill("SIGTERM");
});

test("notifications: shown while unfocused, not for a muted room, one summary for a catch-up", async () => {
  const appDir = fx.tempDir("dn-notify-app-");
  const nodeDir = fx.tempDir("dn-notify-node-");
  await cli(appDir, "init", "--name", "Amara");
  await cli(appDir, "room", "join", ROOM);
  await cli(nodeDir, "init", "--name", "Ben");
  await cli(nodeDir, "room", "join", ROOM);
  const appPort = await freePort();

  const driver = await fx.launchApp(appDir, { listen: `127.0.0.1:${appPort}` });
  try {
    await elementWithText(driver, "#room-title", `#${ROOM}`);

    let node = start("node", CLI_BIN, [
      "--data-dir", nodeDir, "node", "--no-mdns", "--no-beacon", "--listen", "127.0.0.1:0",
      "--peer", `127.0.0.1:${appPort}`,
    ]);
    await elementWithText(driver, "#peer-list .peer.online", "Ben");

    // 1. Unfocused: one notification per message, with author, room and text.
    focusElsewhere();
    await cli(nodeDir, "send", "--room", ROOM, "Generator at the school needs diesel");
    await messageWithBody(driver, "Generator at the school needs diesel");
    await eventually("the notification", () => shownBodies().includes("Ben in #medical: Generator at the school needs diesel"));
    await sleep(1500);
    // The whole screen, with dunst's bubble (WebDriver screenshots show only the page).
    execFileSync("import", ["-window", "root", join(OUT_DIR, "notify-01-desktop.png")], { env });

    // 2. Muted room: the message arrives, no notification.
    const muteButton = await driver.findElement(By.css(`.room[data-room="${ROOM}"] [data-slot="mute"]`));
    await muteButton.click();
    focusElsewhere();
    const before = shownBodies().length;
    await cli(nodeDir, "send", "--room", ROOM, "muted: water truck at noon");
    await messageWithBody(driver, "muted: water truck at noon");
    await sleep(3000); // longer than the 2 s coalescing window
    assert.deepEqual(shownBodies().slice(before), [], "a muted room does not notify");
    await (await driver.findElement(By.css(`.room[data-room="${ROOM}"] [data-slot="mute"]`))).click();

    // 3. A large catch-up: the node was away and wrote 25 messages; one summary, not 25.
    node.kill("SIGTERM");
    await elementWithText(driver, "#peer-list .peer.offline", "Ben");
    const burst = 25;
    for (let i = 1; i <= burst; i++) await cli(nodeDir, "send", "--room", ROOM, `catch-up ${i}`);
    focusElsewhere();
    const beforeBurst = shownBodies().length;
    node = start("node2", CLI_BIN, [
      "--data-dir", nodeDir, "node", "--no-mdns", "--no-beacon", "--listen", "127.0.0.1:0",
      "--peer", `127.0.0.1:${appPort}`,
    ]);
    await messageWithBody(driver, `catch-up ${burst}`);
    await eventually("the summary", () => shownBodies().length > beforeBurst);
    await sleep(3000);
    const shown = shownBodies().slice(beforeBurst);
    assert.deepEqual(shown, [`${burst} new messages in #medical`], "one summary for the catch-up");
    node.kill("SIGTERM");
  } catch (e) {
    await screenshot(driver, "FAILED-notifications").catch(() => {});
    throw e;
  }
});
