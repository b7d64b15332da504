// The "Identity & export" pane end to end, with the real native dialogs: rename, back up the
// identity key through the GTK save dialog, restore another identity through the GTK open
// dialog (typed into with xdotool, as a person would), then check the result with the CLI.
//
//   cd tests/gui && xvfb-run -a -s "-screen 0 1280x800x24" node --test identity.test.mjs
//
// Needs xdotool and ImageMagick's `import` (make deps). Everything stays on 127.0.0.1 with
// mDNS and the beacon off.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { By, Key, until } from "selenium-webdriver";
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

/**
 * Waits for the app's native file dialog titled `title`, types `path` into it and confirms.
 * `openDialog`: a GTK open dialog has no name field; Ctrl+L opens its location entry.
 */
async function answerFileDialog(pid, title, path, shot, openDialog = false) {
  const find = async () =>
    (await xdotool("search", "--all", "--onlyvisible", "--pid", String(pid), "--name", `^${title}$`).catch(() => ""))
      .split("\n")
      .filter(Boolean)[0];
  const wid = await eventually(`the native "${title}" dialog`, find);
  // No window manager under Xvfb: give the dialog the keyboard focus ourselves.
  await xdotool("windowfocus", "--sync", wid);
  assert.equal(await xdotool("getwindowfocus"), wid, `the "${title}" dialog did not get the keyboard focus`);
  if (openDialog) {
    await xdotool("key", "--clearmodifiers", "ctrl+l");
    await sleep(400); // the location entry appears
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
  await fx.startDriver("identity-tauri-driver");
});

after(() => fx.close());

test("identity pane: rename, back up and restore through the native dialogs", async () => {
  const dir = fx.tempDir("dn-gui-identity-");
  const other = fx.tempDir("dn-gui-identity-other-");
  const files = fx.tempDir("dn-gui-identity-files-");
  await cli(dir, "init", "--name", "Amara");
  await cli(dir, "room", "join", "medical");
  await cli(dir, "send", "--room", "medical", "written before the restore");
  const original = (await cli(dir, "id")).trim();
  // The identity to restore: another device's backup.
  await cli(other, "init", "--name", "Field laptop 2");
  const otherBackup = join(files, "laptop-2.key");
  await cli(other, "identity", "backup", "--out", otherBackup);
  const otherId = (await cli(other, "id")).trim();

  const driver = await fx.launchApp(dir);
  try {
    const [pid] = await eventually("the app process", () => {
      const pids = appPids(dir);
      return pids.length === 1 ? pids : null;
    });
    await elementWithText(driver, "#self-identity", "Amara");
    await driver.findElement(By.css("#identity-button")).click();
    await driver.wait(until.elementIsVisible(driver.findElement(By.css("#identity-name"))), TIMEOUT);

    // Rename from the pane.
    const nameInput = await driver.findElement(By.css("#identity-name"));
    assert.equal(await nameInput.getAttribute("value"), "Amara");
    await nameInput.clear();
    await nameInput.sendKeys("Amara (clinic 2)", Key.ENTER);
    await elementWithText(driver, "#self-identity", "Amara (clinic 2)");
    assert.equal((await cli(dir, "status", "--json")).identity.name, "Amara (clinic 2)");

    // Back up through the native save dialog.
    const backup = join(files, "amara.key");
    await driver.findElement(By.css("#backup-identity")).click();
    await answerFileDialog(pid, "Save File", backup, "identity-01-save-dialog");
    await elementWithText(driver, "#transfer-result", `Identity backed up to ${backup}.`);
    assert.equal(statSync(backup).mode & 0o777, 0o600, "the backup is private to its owner");
    assert.match(readFileSync(backup, "utf8"), new RegExp(`^[0-9a-f]{64}$`, "m"));
    await screenshot(driver, "identity-02-backed-up");

    // Restore: nothing happens until the user confirms.
    const restore = await driver.findElement(By.css("#restore-identity"));
    assert.equal(await restore.isEnabled(), false, "restore needs the confirmation first");
    await driver.findElement(By.css("#restore-confirm")).click();
    await driver.wait(until.elementIsEnabled(restore), TIMEOUT);
    await screenshot(driver, "identity-03-restore-confirmed");
    await restore.click();
    await answerFileDialog(pid, "Open File", otherBackup, "identity-04-open-dialog", true);
    await elementWithText(driver, "#transfer-result", "Identity restored from");
    const fingerprint = `${otherId.slice(0, 4)}-${otherId.slice(4, 8)}-${otherId.slice(8, 12)}-${otherId.slice(12, 16)}`;
    await elementWithText(driver, "#self-identity", fingerprint);
    await elementWithText(driver, "#identity-subtitle", otherId);
    await assertNoErrors(driver);
    await screenshot(driver, "identity-05-restored");

    // The engine restarted in place: the same process, the new key, the old one kept, the
    // history intact, and sending works (signed with the restored key).
    assert.deepEqual(appPids(dir), [pid]);
    assert.equal((await cli(dir, "id")).trim(), otherId);
    const kept = readdirSync(dir).filter((f) => f.startsWith("identity.key.replaced-"));
    assert.equal(kept.length, 1, `the previous key is kept (${readdirSync(dir)})`);
    assert.match(readFileSync(join(dir, kept[0]), "utf8"), /^[0-9a-f]{64}$/m);
    await driver.findElement(By.css(`.room[data-room="medical"] .room-select`)).click();
    const composer = await driver.wait(until.elementLocated(By.css("#composer")), TIMEOUT);
    await composer.sendKeys("written after the restore", Key.ENTER);
    const log = await cli(dir, "log", "--room", "medical", "--json");
    const authors = Object.fromEntries(log.map((m) => [m.body, m.author]));
    assert.equal(authors["written before the restore"], original);
    await eventually("the new message in the log", async () => {
      const l = await cli(dir, "log", "--room", "medical", "--json");
      return l.find((m) => m.body === "written after the restore")?.author === otherId;
    });
  } catch (e) {
    await screenshot(driver, "FAILED-identity").catch(() => {});
    throw e;
  }
});
