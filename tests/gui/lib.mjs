// Helpers shared by the GUI end-to-end tests (and bench-app.mjs): paths from the environment,
// polling, the CLI, screenshots, the app's common UI steps, and `GuiFixture` (temporary dirs,
// one tauri-driver, app sessions, all removed after a test file).
//
// Environment (the Makefile sets these):
//   APP_BIN        app binary          (default: <target>/debug/disasternet-app)
//   CLI_BIN        `disasternet` CLI   (default: <target>/debug/disasternet)
//   TAURI_DRIVER   tauri-driver        (default: tauri-driver on PATH, then ~/.cargo/bin)
//   GUI_OUT_DIR    screenshots, logs   (default: <target>/test-output/gui)

import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Builder, By, Key, until } from "selenium-webdriver";

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
export function appPids(dataDir, bin = APP_BIN) {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const exe = readlinkSync(`/proc/${entry}/exe`);
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (exe === bin && argv.includes(dataDir)) pids.push(Number(entry));
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

/**
 * Saves the WebDriver screenshot of the app's window as `<OUT_DIR>/<name>.png`.
 *
 * WebKitGTK without accelerated compositing (the app's default, see src-tauri) answers a
 * screenshot after its next paint, so on a still page (no caret blinking, nothing changing) the
 * command can wait forever. While it is taken, one pixel in the page's top-left corner (outside
 * the app's tree) changes shade every frame, so a paint is always due; it is removed after.
 */
export async function screenshot(driver, name) {
  await driver.executeScript(`
    const el = document.getElementById("dn-test-paint") ?? document.body.appendChild(document.createElement("div"));
    el.id = "dn-test-paint";
    el.setAttribute("aria-hidden", "true");
    window.__dnPaint = true;
    let shade = 0;
    const tick = () => {
      if (!window.__dnPaint) return el.remove();
      shade ^= 1;
      el.style.cssText = "position:fixed;left:0;top:0;width:1px;height:1px;pointer-events:none;background:" + (shade ? "#1f2430" : "#1f2431");
      requestAnimationFrame(tick);
    };
    tick();`);
  try {
    const file = join(OUT_DIR, `${name}.png`);
    writeFileSync(file, await driver.takeScreenshot(), "base64");
    console.log(`screenshot: ${file}`);
    return file;
  } finally {
    await driver.executeScript("window.__dnPaint = false;").catch(() => {});
  }
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

/**
 * What one test file starts and must remove afterwards: temporary directories, one
 * tauri-driver, and app sessions (quit, then any app process left SIGKILLed). Call `close()` in
 * `after`. Apps run on 127.0.0.1 with mDNS and the beacon off: a test never announces or
 * broadcasts on the host's real network.
 */
export class GuiFixture {
  /** tauri-driver's URL once `startDriver` resolved. */
  server = null;
  /** The app session started last (for a screenshot when a test fails). */
  lastDriver = undefined;
  #cleanups = [];
  #driverProc = null;

  /** A fresh directory, removed by `close()` unless KEEP_DATA_DIR is set. */
  tempDir(prefix) {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.#cleanups.push(() => {
      if (!process.env.KEEP_DATA_DIR) rmSync(dir, { recursive: true, force: true });
    });
    return dir;
  }

  /** Starts tauri-driver on free ports (log: `<OUT_DIR>/<logName>.log`), with `env` for the apps. */
  async startDriver(logName = "tauri-driver", env = process.env) {
    mkdirSync(OUT_DIR, { recursive: true });
    const port = await freePort();
    const nativePort = await freePort();
    const log = createWriteStream(join(OUT_DIR, `${logName}.log`));
    const proc = spawn(findTauriDriver(), ["--port", String(port), "--native-port", String(nativePort)], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    proc.stdout.pipe(log);
    proc.stderr.pipe(log);
    proc.once("error", (e) => console.error(`tauri-driver: ${e.message}`));
    this.#driverProc = proc;
    this.server = `http://127.0.0.1:${port}/`;
    await eventually("tauri-driver to listen", async () => (await fetch(`${this.server}status`)).ok);
    return this.server;
  }

  /** Starts the app on `dataDir` in a WebDriver session (`--listen` defaults to a free port). */
  async launchApp(dataDir, { args = [], listen = "127.0.0.1:0" } = {}) {
    const driver = await new Builder()
      .usingServer(this.server)
      .withCapabilities({
        browserName: "wry",
        "tauri:options": {
          application: APP_BIN,
          args: ["--data-dir", dataDir, "--no-mdns", "--no-beacon", "--listen", listen, ...args],
        },
      })
      .build();
    this.lastDriver = driver;
    this.#cleanups.unshift(async () => {
      await driver.quit().catch(() => {}); // the session may be over already
      for (const pid of appPids(dataDir)) process.kill(pid, "SIGKILL");
    });
    return driver;
  }

  /** A test that saves `FAILED-<slug>.png` of the app started last if it fails. */
  test(title, slug, fn) {
    test(title, async () => {
      this.lastDriver = undefined;
      try {
        await fn();
      } catch (e) {
        if (this.lastDriver) await screenshot(this.lastDriver, `FAILED-${slug}`).catch(() => {});
        throw e;
      }
    });
  }

  /** Runs `fn` at `close()`, before the directories are removed. */
  onClose(fn) {
    this.#cleanups.unshift(fn);
  }

  /** Ends every session and process started here, then removes the directories. */
  async close() {
    for (const cleanup of this.#cleanups) await cleanup();
    this.#driverProc?.kill("SIGTERM");
  }
}
