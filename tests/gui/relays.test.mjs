// GUI end-to-end: the Relays section. A headless relay (`disasternet node --relay`) runs on
// 127.0.0.1; the app adds its address, shows it connected, badges it in the peer list, and a
// message written in the app reaches the relay, which never joined the room. A malformed
// address is refused beside the form. Everything stays on 127.0.0.1 with mDNS off.

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
  eventually,
  freePort,
  GuiFixture,
  joinRoom,
  OUT_DIR,
  screenshot,
  setName,
  TIMEOUT,
} from "./lib.mjs";

const fx = new GuiFixture();

before(async () => {
  for (const [what, path] of [["app", APP_BIN], ["CLI", CLI_BIN]]) {
    assert.ok(existsSync(path), `${what} binary missing: ${path} (run cargo build --workspace --bins)`);
  }
  await fx.startDriver("tauri-driver-relays");
});

after(() => fx.close());

fx.test("relays: add by address, connected and badged, a message reaches the relay", "relays", async () => {
  const relayDir = fx.tempDir("dn-gui-relay-");
  const port = await freePort();
  const relayAddr = `127.0.0.1:${port}`;
  const log = createWriteStream(join(OUT_DIR, "relay-node.log"));
  const relay = spawn(CLI_BIN, ["--data-dir", relayDir, "node", "--relay", "--listen", relayAddr], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  relay.stdout.pipe(log);
  relay.stderr.pipe(log);
  fx.onClose(async () => {
    relay.kill("SIGTERM");
  });
  await eventually("the relay to run", async () => {
    try {
      return (await cli(relayDir, "status", "--json")).running === true;
    } catch {
      return false;
    }
  });
  const relayId = (await cli(relayDir, "id")).trim();

  const dataDir = fx.tempDir("dn-gui-");
  const driver = await fx.launchApp(dataDir);
  await setName(driver, "Amara");
  await joinRoom(driver, "medical");

  const input = await driver.findElement(By.css("#relay-input"));
  // A malformed address: the reason shows beside the form, the text stays.
  await input.sendKeys("relay without port", Key.ENTER);
  const problem = await driver.findElement(By.css("#relay-problem"));
  await driver.wait(until.elementIsVisible(problem), TIMEOUT);
  assert.match(await problem.getText(), /HOST:PORT/);
  assert.equal(await input.getAttribute("value"), "relay without port");
  await screenshot(driver, "relays-01-refused");

  await input.clear();
  await input.sendKeys(relayAddr, Key.ENTER);
  await driver.wait(until.elementLocated(By.css(`#relay-list .relay[data-relay-addr="${relayAddr}"][data-connected="true"]`)), TIMEOUT);
  await driver.wait(until.elementIsNotVisible(problem), TIMEOUT);
  const badge = await driver.wait(
    until.elementLocated(By.css(`.peer[data-peer-id="${relayId}"] .relay-badge`)),
    TIMEOUT,
  );
  assert.equal(await badge.getText(), "RELAY");
  // Remembered by the engine (the CLI reads the same list).
  const relays = await cli(dataDir, "relay", "list", "--json");
  assert.deepEqual(relays.map((r) => [r.addr, r.id, r.connected]), [[relayAddr, relayId, true]]);

  const composer = await driver.findElement(By.css("#composer"));
  await composer.sendKeys("through the relay", Key.ENTER);
  await eventually("the relay to carry the message", async () => {
    const log = await cli(relayDir, "log", "--room", "medical", "--json");
    return log.some((m) => m.body === "through the relay");
  });
  await assertNoErrors(driver);
  await screenshot(driver, "relays-02-connected");

  // Removed: gone from the list (the engine stops dialling it).
  await driver.findElement(By.css(`#relay-list .relay[data-relay-addr="${relayAddr}"] .relay-remove`)).click();
  await driver.wait(until.elementIsVisible(driver.findElement(By.css("#relays-empty"))), TIMEOUT);
  assert.deepEqual(await cli(dataDir, "relay", "list", "--json"), []);
});
