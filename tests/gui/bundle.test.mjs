// Bundles between camps in the app, end to end with the real native dialogs: a bundle written
// with the CLI on "camp 1" is imported through "Import bundle…" (GTK open dialog, typed into
// with xdotool); the summary shows what came in and the messages are in the app's store. Then
// "Export bundle…" (GTK save dialog) writes a bundle that a third data directory imports with
// the CLI.
//
//   cd tests/gui && xvfb-run -a -s "-screen 0 1280x800x24" node --test bundle.test.mjs
//
// Needs xdotool and ImageMagick's `import` (make deps). Everything stays on 127.0.0.1 with
// mDNS and the beacon off.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { By, until } from "selenium-webdriver";
import {
  GuiFixture,
  OUT_DIR,
  TIMEOUT,
  appPids,
  assertNoErrors,
  cli,
  elementWithText,
  eventually,
  screenshot,
  sleep,
} from "./lib.mjs";

const run = promisify(execFile);
const fx = new GuiFixture();

const xdotool = async (...args) => (await run("xdotool", args)).stdout.trim();

/** Answers the app's native file dialog `title` with `path` (as identity.test.mjs does). */
async function answerFileDialog(pid, title, path, shot, openDialog = false) {
  const find = async () =>
    (await xdotool("search", "--all", "--onlyvisible", "--pid", String(pid), "--name", `^${title}$`).catch(() => ""))
      .split("\n")
      .filter(Boolean)[0];
  const wid = await eventually(`the native "${title}" dialog`, find);
  await xdotool("windowfocus", "--sync", wid);
  assert.equal(await xdotool("getwindowfocus"), wid, `the "${title}" dialog did not get the keyboard focus`);
  if (openDialog) {
    await xdotool("key", "--clearmodifiers", "ctrl+l");
    await sleep(400);
  }
  await xdotool("key", "--clearmodifiers", "ctrl+a");
  await xdotool("type", "--delay", "15", path);
  await sleep(400);
  await run("import", ["-window", "root", join(OUT_DIR, `${shot}.png`)]);
  await xdotool("key", "Return");
  await eventually(`the "${title}" dialog to close`, async () => (await find()) === undefined);
}

before(async () => {
  assert.ok(process.env.DISPLAY, "DISPLAY is not set: run under xvfb-run");
  await fx.startDriver("bundle-tauri-driver");
});

after(() => fx.close());

test("bundles: import and export through the native dialogs", async () => {
  const camp1 = fx.tempDir("dn-gui-bundle-camp1-");
  const camp2 = fx.tempDir("dn-gui-bundle-camp2-");
  const camp3 = fx.tempDir("dn-gui-bundle-camp3-");
  const files = fx.tempDir("dn-gui-bundle-files-");
  await cli(camp1, "init", "--name", "Camp one");
  await cli(camp1, "room", "join", "ops");
  for (const body of ["convoy left at 06:00", "bridge on route 4 is out", "water at the school"]) {
    await cli(camp1, "send", "--room", "ops", body);
  }
  const fromCamp1 = join(files, "camp1.dnb");
  await cli(camp1, "bundle", "export", fromCamp1);
  await cli(camp2, "init", "--name", "Camp two");
  await cli(camp2, "room", "join", "ops");

  const driver = await fx.launchApp(camp2);
  try {
    const [pid] = await eventually("the app process", () => {
      const pids = appPids(camp2);
      return pids.length === 1 ? pids : null;
    });
    await elementWithText(driver, "#self-identity", "Camp two");
    await driver.findElement(By.css("#identity-button")).click();
    await driver.wait(until.elementIsVisible(driver.findElement(By.css("#import-bundle"))), TIMEOUT);
    await screenshot(driver, "bundle-01-pane");

    // Import through the native open dialog.
    await driver.findElement(By.css("#import-bundle")).click();
    await answerFileDialog(pid, "Open File", fromCamp1, "bundle-02-open-dialog", true);
    await elementWithText(
      driver,
      "#transfer-result",
      `Imported 3 new messages from ${fromCamp1} (3 messages in the bundle: 0 were already here).`,
    );
    await assertNoErrors(driver);
    await screenshot(driver, "bundle-03-imported");
    const log = await cli(camp2, "log", "--room", "ops", "--json");
    assert.deepEqual(
      log.map((m) => m.body),
      ["convoy left at 06:00", "bridge on route 4 is out", "water at the school"],
    );
    // Again: nothing new.
    await driver.findElement(By.css("#import-bundle")).click();
    await answerFileDialog(pid, "Open File", fromCamp1, "bundle-04-open-again", true);
    await elementWithText(driver, "#transfer-result", "Imported 0 new messages");
    await elementWithText(driver, "#transfer-result", "3 were already here");

    // Export through the native save dialog; a third camp imports it with the CLI.
    const fromCamp2 = join(files, "camp2.dnb");
    await driver.findElement(By.css("#export-bundle")).click();
    await answerFileDialog(pid, "Save File", fromCamp2, "bundle-05-save-dialog");
    await elementWithText(driver, "#transfer-result", `to ${fromCamp2}.`);
    assert.equal(statSync(fromCamp2).mode & 0o777, 0o600, "the bundle is private to its owner");
    await screenshot(driver, "bundle-06-exported");
    const report = await cli(camp3, "bundle", "import", fromCamp2, "--json");
    assert.equal(report.invalid, 0);
    assert.equal(report.checksum_ok, true);
    assert.ok(report.imported >= 3, `camp 3 imported ${report.imported}`);
    const bodies = (await cli(camp3, "log", "--room", "ops", "--json")).map((m) => m.body);
    assert.ok(bodies.includes("water at the school"), bodies.join(" | "));
  } catch (e) {
    await screenshot(driver, "FAILED-bundle").catch(() => {});
    throw e;
  }
});
