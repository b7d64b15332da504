// GUI end-to-end tests: drive the real DisasterNet app binary through tauri-driver
// (WebKitWebDriver) and check results with the `disasternet` CLI.
//
// Run under a display, e.g.: xvfb-run -a -s "-screen 0 1280x800x24" npm test
// Environment (the Makefile sets these):
//   APP_BIN        app binary          (default: <target>/debug/disasternet-app)
//   CLI_BIN        `disasternet` CLI   (default: <target>/debug/disasternet)
//   TAURI_DRIVER   tauri-driver        (default: tauri-driver on PATH, then ~/.cargo/bin)
//   GUI_OUT_DIR    screenshots, logs   (default: <target>/test-output/gui)
//   KEEP_DATA_DIR  set to keep the temporary data directories
//
// Everything stays on 127.0.0.1 with mDNS off.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createWriteStream, existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before } from "node:test";
import { By, Key, until } from "selenium-webdriver";
import {
  APP_BIN,
  appPids,
  assertNoErrors,
  cli,
  CLI_BIN,
  elementWithText,
  eventually,
  freePort,
  GuiFixture,
  joinRoom,
  messageWithBody,
  OUT_DIR,
  screenshot,
  setName,
  sleep,
  TIMEOUT,
} from "./lib.mjs";

const ROOM = "medical";

const fx = new GuiFixture();
const tempDir = (prefix) => fx.tempDir(prefix);
const launchApp = (dataDir, args = []) => fx.launchApp(dataDir, { args });

// ------------------------------------------------------------------------------- helpers

/** Ends the app with SIGTERM (as a logout would) and waits until the process is gone. */
async function stopApp(driver, dataDir) {
  const pids = appPids(dataDir);
  assert.equal(pids.length, 1, `expected one app process, found [${pids}]`);
  process.kill(pids[0], "SIGTERM");
  await eventually("the app to exit after SIGTERM", () => appPids(dataDir).length === 0);
  try {
    await driver.quit();
  } catch {
    // the session ended with the app
  }
}

// ----------------------------------------------------------------------------- fixture

before(async () => {
  for (const [what, path] of [["app", APP_BIN], ["CLI", CLI_BIN]]) {
    assert.ok(existsSync(path), `${what} binary missing: ${path} (run cargo build --workspace --bins)`);
  }
  await fx.startDriver();
});

after(() => fx.close());

/** A test that saves `FAILED-<slug>.png` if it fails while the app is up. */
const guiTest = (title, slug, fn) => fx.test(title, slug, fn);

// ------------------------------------------------------------------------------- tests

guiTest("first start: set name, join #medical, send with Enter; the message is shown and stored", "first-start", async () => {
  const dataDir = tempDir("dn-gui-");
  const name = "Field Medic Amara";
  const body = `Insulin needed at the school shelter (smoke ${Date.now()})`;
  const driver = await launchApp(dataDir);

  // First start asks for a display name.
  await driver.wait(until.elementIsVisible(await driver.wait(until.elementLocated(By.css("#name-dialog")), TIMEOUT)), TIMEOUT);
  await screenshot(driver, "01-first-start");
  await setName(driver, name);

  // No peers: the status bar says so plainly.
  await driver.wait(until.elementTextContains(driver.findElement(By.css("#net-status")), "Offline"), TIMEOUT);

  // "Why can't I see anyone?" opens from the status bar with the engine's findings and advice
  // (which finding depends on this machine's network: only that there is one is checked).
  await driver.findElement(By.css("#net-health")).click();
  const panel = await driver.wait(until.elementLocated(By.css("#diagnosis-dialog")), TIMEOUT);
  await driver.wait(until.elementIsVisible(panel), TIMEOUT);
  const finding = await driver.wait(until.elementLocated(By.css("#diagnosis-findings > li[data-code]")), TIMEOUT);
  assert.notEqual((await finding.findElement(By.css(".finding-advice")).getText()).trim(), "");
  assert.match(await driver.findElement(By.css("#diagnosis-observed")).getText(), /Listening on /);
  await screenshot(driver, "01b-why-cant-i-see-anyone");
  await driver.findElement(By.css("#close-diagnosis")).click();
  await driver.wait(until.elementIsNotVisible(panel), TIMEOUT);

  // An engine error (invalid room name) shows in the banner until dismissed.
  const roomInput = await driver.findElement(By.css("#room-input"));
  await roomInput.sendKeys("no/slashes", Key.ENTER);
  const error = await driver.wait(until.elementLocated(By.css('#error-banner .error[data-code="invalid_input"]')), TIMEOUT);
  assert.match(await error.getText(), /invalid room name/);
  await screenshot(driver, "02-error-banner");
  await error.findElement(By.css(".error-dismiss")).click();
  await driver.wait(until.elementIsNotVisible(driver.findElement(By.css("#error-banner"))), TIMEOUT);
  await roomInput.clear();

  await joinRoom(driver, ROOM);

  // Type a message and press Enter.
  const composer = await driver.findElement(By.css("#composer"));
  await driver.wait(until.elementIsEnabled(composer), TIMEOUT);
  await composer.sendKeys(body);
  const bytes = await driver.findElement(By.css("#byte-count"));
  await driver.wait(until.elementTextContains(bytes, `${Buffer.byteLength(body)} / 8192`), TIMEOUT);
  await composer.sendKeys(Key.ENTER);

  // It appears in the message list, with author name and fingerprint.
  const message = await messageWithBody(driver, body);
  assert.equal(await message.findElement(By.css(".author")).getText(), name);
  assert.match(await message.findElement(By.css(".fingerprint")).getText(), /^[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}$/);
  assert.equal(await composer.getAttribute("value"), "", "composer is cleared after sending");
  assert.equal((await driver.findElements(By.css(".message"))).length, 1);
  // No peer: the delivery state says it is stored here only.
  assert.equal(await message.findElement(By.css('[data-testid="delivery"]')).getText(), "stored locally");
  await assertNoErrors(driver);
  // The engine's (debounced) status event updates the counters.
  await driver.wait(until.elementTextIs(driver.findElement(By.css("#message-count")), "1 message"), TIMEOUT);
  await screenshot(driver, "03-message-sent");

  // Shift+Enter makes a new line instead of sending. (Separate calls: a modifier stays
  // pressed until the end of one sendKeys.)
  await composer.sendKeys("line one");
  await composer.sendKeys(Key.SHIFT, Key.ENTER);
  await composer.sendKeys("line two");
  assert.equal(await composer.getAttribute("value"), "line one\nline two");
  assert.equal((await driver.findElements(By.css(".message"))).length, 1);

  // Over the 8192-byte limit: refused before sending.
  // (Set like a paste: typing 8193 keys one by one takes WebDriver ~20 s.)
  await composer.clear();
  await driver.executeScript(
    "const c = arguments[0]; c.value = 'x'.repeat(8193); c.dispatchEvent(new Event('input'));",
    composer,
  );
  await driver.wait(until.elementTextContains(bytes, "8193 / 8192"), TIMEOUT);
  assert.equal(await driver.findElement(By.css("#send-button")).isEnabled(), false);
  assert.match(await driver.findElement(By.css("#composer-hint")).getText(), /too long/);
  await composer.sendKeys(Key.ENTER);
  await sleep(300);
  assert.equal((await driver.findElements(By.css(".message"))).length, 1);
  await screenshot(driver, "04-over-limit");

  // The app exits cleanly; the message is in the store (ask the CLI).
  await stopApp(driver, dataDir);
  const stored = await cli(dataDir, "log", "--room", ROOM, "--json");
  assert.ok(Array.isArray(stored), `log --json is not an array: ${JSON.stringify(stored)}`);
  const mine = stored.filter((m) => m.body === body);
  assert.equal(mine.length, 1, `message not in the store: ${JSON.stringify(stored)}`);
  assert.equal(mine[0].room, ROOM);
  assert.equal(mine[0].author_name, name);
  assert.equal(mine[0].local, true);
  assert.equal(stored.length, 1, "the over-limit draft was not stored");

  // The app's log file: where a Windows release app (no console) can be read. Owner-only.
  const logFile = join(dataDir, "app.log");
  const log = readFileSync(logFile, "utf8");
  assert.match(log, /DisasterNet app starting/);
  assert.match(log, /SIGTERM: stopping/);
  assert.equal(statSync(logFile).mode & 0o777, 0o600);
});

guiTest("two nodes: a CLI peer shows online, its message appears, ours reaches it", "two-nodes", async () => {
  // A headless node "Ben" on loopback, already in #medical.
  const benDir = tempDir("dn-gui-ben-");
  const benPort = await freePort();
  await cli(benDir, "init", "--name", "Ben");
  await cli(benDir, "room", "join", ROOM);
  const benLog = createWriteStream(join(OUT_DIR, "peer-node.log"));
  const ben = spawn(CLI_BIN, ["--data-dir", benDir, "node", "--listen", `127.0.0.1:${benPort}`, "--no-mdns", "--no-beacon"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  ben.stdout.pipe(benLog);
  ben.stderr.pipe(benLog);
  fx.onClose(() => ben.kill("SIGTERM"));
  await eventually("the peer node to run", async () => (await cli(benDir, "status", "--json")).running);

  const appDir = tempDir("dn-gui-app-");
  const driver = await launchApp(appDir, ["--peer", `127.0.0.1:${benPort}`]);
  await setName(driver, "Amara");
  await joinRoom(driver, ROOM);

  // Ben is listed online; the status bar says online.
  await elementWithText(driver, '.peer[data-connected="true"]', "Ben");
  await driver.wait(until.elementTextIs(driver.findElement(By.css("#net-status")), "Online"), TIMEOUT);
  await driver.wait(until.elementTextIs(driver.findElement(By.css("#peer-count")), "1 peer connected"), TIMEOUT);

  // Ben writes; the app shows it live, with Ben's name and fingerprint.
  const fromBen = `Generator at the clinic runs until 22:00 (${Date.now()})`;
  await cli(benDir, "send", "--room", ROOM, fromBen);
  const received = await messageWithBody(driver, fromBen);
  assert.equal(await received.findElement(By.css(".author")).getText(), "Ben");
  const benId = (await cli(benDir, "status", "--json")).identity;
  assert.equal(await received.findElement(By.css(".fingerprint")).getText(), benId.fingerprint);

  // We answer; Ben's node stores it.
  const reply = `Thanks Ben, sending two volunteers (${Date.now()})`;
  const composer = await driver.findElement(By.css("#composer"));
  await composer.sendKeys(reply, Key.ENTER);
  await messageWithBody(driver, reply);
  await eventually("Ben's node to store our reply", async () =>
    (await cli(benDir, "log", "--room", ROOM, "--json")).some((m) => m.body === reply && m.author_name === "Amara"),
  );
  // Its delivery state follows: Ben holds it.
  const replyEl = await messageWithBody(driver, reply);
  await driver.wait(until.elementTextIs(replyEl.findElement(By.css('[data-testid="delivery"]')), "held by 1"), TIMEOUT);
  await assertNoErrors(driver);
  await driver.wait(until.elementTextIs(driver.findElement(By.css("#message-count")), "2 messages"), TIMEOUT);
  await screenshot(driver, "05-two-nodes");

  // Direct message: "Message" on Ben opens the conversation; what we send reaches Ben's node.
  const benPeer = await elementWithText(driver, '.peer[data-connected="true"]', "Ben");
  await benPeer.findElement(By.css(".message-peer")).click();
  await driver.wait(until.elementTextIs(driver.findElement(By.css("#dm-title")), "Ben"), TIMEOUT);
  await elementWithText(driver, "#dm-peer-list .room-name", "Ben");
  // (By fingerprint: the name we set after connecting may not have reached Ben's peer list.)
  const selfFingerprint = await driver.findElement(By.css("#self-fingerprint")).getAttribute("textContent");
  const appId = await eventually("Ben to know our id", async () =>
    (await cli(benDir, "peers", "--json")).find((p) => p.fingerprint === selfFingerprint)?.id,
  );
  const dmBody = `Ben, meet team 3 at the school gate (${Date.now()})`;
  const dmComposer = await driver.findElement(By.css("#composer"));
  await driver.wait(until.elementIsEnabled(dmComposer), TIMEOUT);
  await dmComposer.sendKeys(dmBody, Key.ENTER);
  await elementWithText(driver, '#dm-list [data-testid="dm"] .body', dmBody);
  await eventually("Ben's node to receive our direct message", async () =>
    (await cli(benDir, "dm", "log", "--with", appId, "--json")).some((d) => d.body === dmBody && !d.outgoing),
  );
  // Ben answers; the open conversation shows it live.
  const dmReply = `On my way (${Date.now()})`;
  await cli(benDir, "dm", "--to", appId, dmReply);
  await elementWithText(driver, '#dm-list [data-testid="dm"] .body', dmReply);
  await assertNoErrors(driver);
  await screenshot(driver, "08-direct-message");

  // The network map shows this node and Ben, one hop away.
  await driver.findElement(By.css("#network-button")).click();
  await elementWithText(driver, "#network-map .node .node-meta", "1 hop");
  // The link to Ben is measured (QUIC's stats over loopback: good) and the summary says so.
  await elementWithText(driver, "#network-health", "Network health: good");
  await driver.wait(until.elementLocated(By.css("#network-map line.measured.quality-good")), TIMEOUT);
  await elementWithText(driver, `.peer[data-connected="true"] .link-rtt[data-quality="good"]`, "ms");
  await screenshot(driver, "09-network");

  // Unread: messages in a room that is not open are counted in the sidebar; opening the room
  // clears the count and marks where the new messages start.
  const OTHER = "shelter";
  await cli(benDir, "room", "join", OTHER);
  await cli(benDir, "send", "--room", OTHER, "Shelter opened at the gym");
  await joinRoom(driver, OTHER);
  await messageWithBody(driver, "Shelter opened at the gym");
  await driver.findElement(By.css(`.room[data-room="${ROOM}"] .room-select`)).click();
  await driver.wait(until.elementTextIs(driver.findElement(By.css("#room-title")), `#${ROOM}`), TIMEOUT);
  for (const body of ["40 beds free", "Water delivery at 18:00"]) await cli(benDir, "send", "--room", OTHER, body);
  const badge = await elementWithText(driver, `.room[data-room="${OTHER}"] .badge.unread`, "2");
  assert.equal(await badge.getAttribute("textContent"), "2");
  await sleep(300); // let the frame settle before the screenshot
  await screenshot(driver, "10-unread");
  await driver.findElement(By.css(`.room[data-room="${OTHER}"] .room-select`)).click();
  await messageWithBody(driver, "Water delivery at 18:00");
  assert.equal((await driver.findElements(By.css(`.room[data-room="${OTHER}"] .badge`))).length, 0);
  const firstNew = await driver.findElement(By.xpath('//li[@id="new-marker"]/following-sibling::li[1]//div[@class="body"]'));
  assert.equal(await firstNew.getAttribute("textContent"), "40 beds free");
  await assertNoErrors(driver);
  await screenshot(driver, "11-new-marker");

  // Local moderation: block Ben from one of his messages (it asks first, in place); his
  // messages disappear here, what he writes next is not stored, and the Identity pane lists
  // him with Unblock. The engine keeps the block (disasternet blocked).
  const shelterMsg = await messageWithBody(driver, "Water delivery at 18:00");
  await driver.actions().move({ origin: shelterMsg }).perform();
  const blockButton = await shelterMsg.findElement(By.css(".block-author"));
  await driver.wait(until.elementIsVisible(blockButton), TIMEOUT);
  await blockButton.click();
  const confirm = await driver.wait(until.elementLocated(By.css(".block-confirm")), TIMEOUT);
  assert.match(await confirm.getText(), /Hide and stop relaying everything from Ben\?/);
  await screenshot(driver, "12-block-confirm");
  await confirm.findElement(By.css(".block-yes")).click();
  await eventually("Ben's messages to be hidden", async () =>
    (await driver.findElements(By.xpath('//div[@class="body" and text()="Water delivery at 18:00"]'))).length === 0,
  );
  assert.deepEqual(
    (await cli(appDir, "blocked", "--json")).map((b) => b.id),
    [benId.id],
  );
  await cli(benDir, "send", "--room", OTHER, "Sent after the block");
  await eventually("the blocked message to be counted, not stored", async () =>
    ((await cli(appDir, "status", "--json")).drops?.blocked ?? 0) >= 1,
  );
  assert.equal((await driver.findElements(By.xpath('//div[@class="body" and text()="Sent after the block"]'))).length, 0);
  await driver.findElement(By.css("#identity-button")).click();
  const blockedRow = await elementWithText(driver, "#blocked-list .author", "Ben");
  await driver.executeScript("arguments[0].scrollIntoView()", blockedRow);
  await screenshot(driver, "13-blocked-list");
  await assertNoErrors(driver);

  await stopApp(driver, appDir);
});

guiTest("a data dir already used by a running node: the app shows why instead of crashing", "busy", async () => {
  const dir = tempDir("dn-gui-busy-");
  await cli(dir, "init", "--name", "Headless");
  const node = spawn(CLI_BIN, ["--data-dir", dir, "node", "--listen", "127.0.0.1:0", "--no-mdns", "--no-beacon"], {
    stdio: "ignore",
  });
  fx.onClose(() => node.kill("SIGTERM"));
  await eventually("the node to run", async () => (await cli(dir, "status", "--json")).running);

  const driver = await launchApp(dir);
  const fatal = await driver.wait(until.elementLocated(By.css("#fatal")), TIMEOUT);
  await driver.wait(until.elementIsVisible(fatal), TIMEOUT);
  assert.equal(await driver.findElement(By.css("#fatal-code")).getText(), "busy");
  assert.match(await driver.findElement(By.css("#fatal-message")).getText(), /headless DisasterNet node .* is running/);
  await driver.wait(until.elementTextIs(driver.findElement(By.css("#net-status")), "Not running"), TIMEOUT);
  await screenshot(driver, "06-busy");
  await stopApp(driver, dir);
});

guiTest("single instance: starting the app again on its data dir shows the open window and exits", "single-instance", async () => {
  const dir = tempDir("dn-gui-single-");
  await cli(dir, "init", "--name", "Only Once");
  const driver = await launchApp(dir);
  await elementWithText(driver, "#self-identity", "Only Once");
  const [first] = appPids(dir);

  // A second double-click: same data dir, same options, no WebDriver in between.
  const second = spawn(APP_BIN, ["--data-dir", dir, "--no-mdns", "--no-beacon", "--listen", "127.0.0.1:0"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  second.stderr.on("data", (c) => (stderr += c.toString()));
  const code = await Promise.race([
    new Promise((ok) => second.once("exit", ok)),
    sleep(TIMEOUT).then(() => "still running"),
  ]);
  if (code === "still running") second.kill("SIGKILL");
  assert.equal(code, 0, `the second start should exit 0 at once (stderr: ${stderr})`);
  assert.match(stderr, /already running on .*; brought its window to the front/);
  // The first one is untouched and still works.
  assert.deepEqual(appPids(dir), [first]);
  await joinRoom(driver, ROOM);
  await assertNoErrors(driver);
  await stopApp(driver, dir);
});

guiTest("history: newest page first, older pages load on scroll-up", "history", async () => {
  const dir = tempDir("dn-gui-history-");
  await cli(dir, "init", "--name", "Archivist");
  await cli(dir, "room", "join", ROOM);
  const total = 75; // one page (50) + a partial one
  for (let i = 1; i <= total; i++) await cli(dir, "send", "--room", ROOM, `history message ${i}`);

  const driver = await launchApp(dir);
  await messageWithBody(driver, `history message ${total}`);
  const count = async () => (await driver.findElements(By.css(".message"))).length;
  assert.equal(await count(), 50, "first the newest page");
  const bodies = await driver.findElements(By.css(".message .body"));
  assert.equal(await bodies[0].getText(), `history message ${total - 49}`);
  // Newest at the bottom, scrolled into view.
  const scroller = await driver.findElement(By.css("#message-scroller"));
  const atBottom = await driver.executeScript(
    "const s = arguments[0]; return s.scrollHeight - s.scrollTop - s.clientHeight < 4;",
    scroller,
  );
  assert.ok(atBottom, "starts scrolled to the newest message");

  await driver.executeScript("arguments[0].scrollTop = 0;", scroller);
  await eventually("the older page", async () => (await count()) === total);
  await messageWithBody(driver, "history message 1");
  await driver.wait(until.elementTextIs(driver.findElement(By.css("#older-status")), "Beginning of the room"), TIMEOUT);
  // The message that was on top stays in view instead of jumping to the oldest.
  const keptInPlace = await driver.executeScript("return arguments[0].scrollTop > 0;", scroller);
  assert.ok(keptInPlace, "scroll position kept after prepending");
  await assertNoErrors(driver);
  await screenshot(driver, "07-history");
  await stopApp(driver, dir);
});
