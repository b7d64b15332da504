// GUI end-to-end: urgent messages. A headless CLI node (Ben) on loopback sends an urgent
// message; the app highlights it, pins it above the room and shows "1 urgent" in the status
// bar until it is acknowledged. Then the app sends one with the composer's Urgent toggle and
// Ben's node stores it as urgent.
//
// Run as the other GUI tests (see smoke.test.mjs): under Xvfb, with APP_BIN / CLI_BIN /
// TAURI_DRIVER / GUI_OUT_DIR.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { join } from "node:path";
import { after, before } from "node:test";
import { By, Key, until } from "selenium-webdriver";
import {
  APP_BIN,
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
  TIMEOUT,
} from "./lib.mjs";

const ROOM = "medical";
const fx = new GuiFixture();

before(async () => {
  for (const [what, path] of [["app", APP_BIN], ["CLI", CLI_BIN]]) {
    assert.ok(existsSync(path), `${what} binary missing: ${path} (run cargo build --workspace --bins)`);
  }
  await fx.startDriver("tauri-driver-urgent");
});

after(() => fx.close());

fx.test("an urgent message is highlighted, pinned and counted until acknowledged; the composer sends one", "urgent", async () => {
  // Ben: a headless node on loopback, in #medical.
  const benDir = fx.tempDir("dn-gui-urgent-ben-");
  const benPort = await freePort();
  await cli(benDir, "init", "--name", "Ben");
  await cli(benDir, "room", "join", ROOM);
  const benLog = createWriteStream(join(OUT_DIR, "urgent-peer-node.log"));
  const ben = spawn(CLI_BIN, ["--data-dir", benDir, "node", "--listen", `127.0.0.1:${benPort}`, "--no-mdns", "--no-beacon"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  ben.stdout.pipe(benLog);
  ben.stderr.pipe(benLog);
  fx.onClose(() => ben.kill("SIGTERM"));
  await eventually("the peer node to run", async () => (await cli(benDir, "status", "--json")).running);

  const appDir = fx.tempDir("dn-gui-urgent-app-");
  const driver = await fx.launchApp(appDir, { args: ["--peer", `127.0.0.1:${benPort}`] });
  await setName(driver, "Amara");
  await joinRoom(driver, ROOM);
  await elementWithText(driver, '.peer[data-connected="true"]', "Ben");
  const count = await driver.findElement(By.css("#urgent-count"));
  assert.equal(await count.isDisplayed(), false, "nothing urgent yet");

  // Ben writes an ordinary message, then an urgent one.
  const plain = `Water truck at noon (${Date.now()})`;
  await cli(benDir, "send", "--room", ROOM, plain);
  const urgent = `Collapse at the market, need rescue (${Date.now()})`;
  await cli(benDir, "send", "--room", ROOM, "--urgent", urgent);

  // Shown without the marker, highlighted, and pinned above the list.
  const msg = await messageWithBody(driver, urgent);
  assert.match(await msg.getAttribute("class"), /\burgent\b.*\bunacknowledged\b/);
  assert.equal(await msg.findElement(By.css('[data-testid="urgent-badge"]')).getText(), "URGENT");
  assert.doesNotMatch(await (await messageWithBody(driver, plain)).getAttribute("class"), /urgent/);
  const strip = await driver.findElement(By.css("#urgent-strip"));
  await driver.wait(until.elementIsVisible(strip), TIMEOUT);
  const pin = await elementWithText(driver, '[data-testid="urgent-pin"]', urgent);
  assert.equal((await driver.findElements(By.css('[data-testid="urgent-pin"]'))).length, 1);
  await driver.wait(until.elementTextIs(count, "1 urgent"), TIMEOUT);
  await assertNoErrors(driver);
  await screenshot(driver, "urgent-01-pinned");

  // Acknowledge: the strip and the status-bar count go; the message stays marked urgent.
  await pin.findElement(By.css(".ack-urgent")).click();
  await driver.wait(until.elementIsNotVisible(strip), TIMEOUT);
  await driver.wait(until.elementIsNotVisible(count), TIMEOUT);
  const acked = await messageWithBody(driver, urgent);
  assert.match(await acked.getAttribute("class"), /\burgent\b/);
  assert.doesNotMatch(await acked.getAttribute("class"), /unacknowledged/);
  await screenshot(driver, "urgent-02-acknowledged");

  // The composer's Urgent toggle: pressed, sends one urgent message, then resets.
  const toggle = await driver.findElement(By.css("#urgent-toggle"));
  assert.equal(await toggle.getAttribute("aria-pressed"), "false");
  await toggle.click();
  assert.equal(await toggle.getAttribute("aria-pressed"), "true");
  const composer = await driver.findElement(By.css("#composer"));
  const reply = `Team of four on the way (${Date.now()})`;
  await composer.sendKeys(reply);
  await screenshot(driver, "urgent-03-toggle-on");
  await composer.sendKeys(Key.ENTER);
  const mine = await messageWithBody(driver, reply);
  assert.match(await mine.getAttribute("class"), /\burgent\b/);
  await driver.wait(async () => (await toggle.getAttribute("aria-pressed")) === "false", TIMEOUT);
  await eventually("Ben's node to store our urgent reply, still urgent", async () =>
    (await cli(benDir, "log", "--room", ROOM, "--json")).some((m) => m.body === reply && m.urgent),
  );
  // Ben has it pinned (unacknowledged) until Ben acknowledges it.
  const benUrgent = await cli(benDir, "urgent", "--json");
  assert.deepEqual(benUrgent.map((m) => m.body), [reply]);
  await cli(benDir, "ack", ROOM, "--all");
  assert.deepEqual(await cli(benDir, "urgent", "--json"), []);
  await assertNoErrors(driver);
  await screenshot(driver, "urgent-04-sent");
});
