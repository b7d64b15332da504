// Helpers shared by the GUI end-to-end tests (smoke.test.mjs, two-apps.test.mjs): paths from
// the environment, polling, the CLI, screenshots and the app's common UI steps.
//
// Environment (the Makefile sets these):
//   APP_BIN        app binary          (default: <target>/debug/disasternet-app)
//   CLI_BIN        `disasternet` CLI   (default: <target>/debug/disasternet)
//   TAURI_DRIVER   tauri-driver        (default: tauri-driver on PATH, then ~/.cargo/bin)
//   GUI_OUT_DIR    screenshots, logs   (default: <target>/test-output/gui)

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { By, Key, until } from "selenium-webdriver";

export const execFileP = promisify(execFile);
export const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, "../..");
export const targetDir = resolve(repo, process.env.CARGO_TARGET_DIR ?? "target");
export const APP_BIN = resolve(process.env.APP_BIN ?? join(targetDir, "debug", "disasternet-app"));
export const CLI_BIN = resolve(process.env.CLI_BIN ?? join(targetDir, "debug", "disasternet"));
export const OUT_DIR = process.env.GUI_OUT_DIR ?? join(targetDir, "test-output", "gui");
export const TIMEOUT = 20_000;

export function findTauriDriver() {
  if (process.env.TAURI_DRIVER) return process.env.TAURI_DRIVER;
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir && existsSync(join(dir, "tauri-driver"))) return join(dir, "tauri-driver");
  }
  return join(process.env.CARGO_HOME ?? join(homedir(), ".cargo"), "bin", "tauri-driver");
}

export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` (async, returns truthy when done) until it succeeds or `ms` pass. */
export async function eventually(what, check, ms = TIMEOUT) {
  const describe = typeof what === "function" ? what : () => what;
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${describe()}${last ? `: ${last.message}` : ""}`);
    }
    await sleep(200);
  }
}

/** Pids of app processes started for a data dir (matched by binary and that unique dir). */
export function appPids(dataDir) {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const exe = readlinkSync(`/proc/${entry}/exe`);
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (exe === APP_BIN && argv.includes(dataDir)) pids.push(Number(entry));
    } catch {
      // gone, or not ours
    }
  }
  return pids;
}

/** `disasternet --data-dir DIR ...args`, parsed as JSON when `--json` is among the args. */
export async function cli(dataDir, ...args) {
  const { stdout } = await execFileP(CLI_BIN, ["--data-dir", dataDir, ...args], { timeout: TIMEOUT });
  return args.includes("--json") ? JSON.parse(stdout) : stdout;
}

/** Saves the WebDriver screenshot of the app's window as `<OUT_DIR>/<name>.png`. */
export async function screenshot(driver, name) {
  const file = join(OUT_DIR, `${name}.png`);
  writeFileSync(file, await driver.takeScreenshot(), "base64");
  console.log(`screenshot: ${file}`);
  return file;
}

/** Answers the first-start name dialog and waits until the status bar shows the name. */
export async function setName(driver, name) {
  const input = await driver.wait(until.elementLocated(By.css("#name-input")), TIMEOUT);
  await driver.wait(until.elementIsVisible(input), TIMEOUT);
  await input.sendKeys(name, Key.ENTER);
  await driver.wait(until.elementIsNotVisible(driver.findElement(By.css("#name-dialog"))), TIMEOUT);
  await driver.wait(until.elementTextContains(driver.findElement(By.css("#self-identity")), name), TIMEOUT);
}

export async function joinRoom(driver, room) {
  await driver.findElement(By.css("#room-input")).sendKeys(room);
  await driver.findElement(By.css("#join-button")).click();
  await driver.wait(until.elementTextIs(driver.findElement(By.css("#room-title")), `#${room}`), TIMEOUT);
  await driver.wait(until.elementLocated(By.css(`.room[data-room="${room}"]`)), TIMEOUT);
}

/** Waits for an element matching `css` whose text contains `text` (re-located on each try). */
export function elementWithText(driver, css, text, ms = TIMEOUT) {
  let seen = [];
  return eventually(
    () => `${css} containing ${JSON.stringify(text)} (last seen: ${JSON.stringify(seen)})`,
    async () => {
      seen = [];
      for (const el of await driver.findElements(By.css(css))) {
        // textContent, not getText(): WebDriver's visibility heuristics skip text in
        // overflow-clipped flex children (ellipsised names), which is still on screen.
        const t = await el.getAttribute("textContent");
        seen.push(t);
        if (t.includes(text)) return el;
      }
      return null;
    },
    ms,
  );
}

/** Waits for a message with exactly this body in the list and returns its element. */
export function messageWithBody(driver, body, ms = TIMEOUT) {
  const xpath = `//li[contains(@class,"message")][.//div[@class="body" and text()=${JSON.stringify(body)}]]`;
  return driver.wait(until.elementLocated(By.xpath(xpath)), ms);
}

export async function assertNoErrors(driver) {
  const errors = await driver.findElements(By.css("#error-banner .error"));
  const texts = await Promise.all(errors.map((e) => e.getText()));
  assert.deepEqual(texts, [], "the error banner shows errors");
}
