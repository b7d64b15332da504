// Two (or more) real apps on "laptops" made of Linux network namespaces on one bridge (the `Lab`
// of tests/src/lib.rs, kept up by the `dn-lab` binary), driven by WebDriver: the harness of
// private-rooms.test.mjs. (two-apps.test.mjs has the same wiring inline; this is it as a module.)
//
// Wiring. WebKitWebDriver reaches the app over 127.0.0.1 of the app's network namespace, so
// tauri-driver, WebKitWebDriver and the app all run inside the lab host's namespace
// (`ip netns exec NS tauri-driver …`). The test, in its own namespace, talks to each tauri-driver
// through a filesystem Unix socket (unix-forward.mjs, inside the namespace, forwards it to the
// driver's TCP port). The apps use the test's X display through /tmp/.X11-unix. Every app, driver
// and forwarder lives in a lab namespace; all app traffic stays on the lab's bridge.
//
// Needs root and a display (Xvfb); ImageMagick's `import` for whole-screen captures when a step
// fails. Not root: the suite fails with a clear message, unless DN_SKIP_NETNS=1 skips it
// explicitly (as root it always runs).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { Agent, get as httpGet } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { Builder } from "selenium-webdriver";
import { APP_BIN, appPids, CLI_BIN, eventually, execFileP, findTauriDriver, here, OUT_DIR, screenshot, targetDir, TIMEOUT } from "./lib.mjs";

export const LAB_BIN = process.env.DN_LAB_BIN ?? join(targetDir, "debug", "dn-lab");
const FORWARDER = join(here, "unix-forward.mjs");
/** tauri-driver's ports inside each lab namespace (a fresh namespace: nothing else there). */
const DRIVER_PORT = 4444;
const NATIVE_PORT = 4445;

export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, fail) => {
      timer = setTimeout(() => fail(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function waitExit(proc, ms) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((ok) => {
    const timer = setTimeout(() => ok(false), ms);
    proc.once("exit", () => {
      clearTimeout(timer);
      ok(true);
    });
  });
}

export function tail(file, lines = 30) {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch (e) {
    return `(cannot read ${file}: ${e.message})`;
  }
}

async function run(program, args, ms = TIMEOUT) {
  const { stdout } = await execFileP(program, args, { timeout: ms });
  return stdout.trim();
}

/** A capture of the whole X screen (native windows included, which WebDriver cannot see). */
export async function screenCapture(name) {
  const file = join(OUT_DIR, `${name}.png`);
  await run("import", ["-window", "root", file]);
  console.log(`screenshot: ${file}`);
  return file;
}

/** The network namespace of a process, as the inode number of its ns/net link. */
function netnsOf(pid) {
  return readlinkSync(`/proc/${pid}/ns/net`);
}

/** The same for a named namespace (`ip netns add` bind-mounts it under /run/netns). */
function netnsNamed(name) {
  return `net:[${statSync(`/run/netns/${name}`).ino}]`;
}

/** An HTTP agent whose every connection goes to a Unix-domain socket. */
function unixAgent(socketPath) {
  const agent = new Agent({ keepAlive: true });
  agent.createConnection = () => connect(socketPath);
  return agent;
}

function driverStatus(agent) {
  return new Promise((ok, fail) => {
    const req = httpGet({ host: "127.0.0.1", port: DRIVER_PORT, path: "/status", agent }, (res) => {
      res.resume();
      ok(res.statusCode === 200);
    });
    req.on("error", fail);
    req.setTimeout(5_000, () => req.destroy(new Error("no answer")));
  });
}

/**
 * One test file's lab: `name` prefixes its outputs in GUI_OUT_DIR (`<name>-*.png`, logs), and
 * `people` are the apps, one per lab host ([key, display name], …). Registers `before` (lab up,
 * apps started) and `after` (everything stopped and removed). Steps run in order; once one
 * fails the later ones are skipped.
 */
export class NetnsSuite {
  apps = {};
  lab = undefined;
  failedStep = null;
  #cleanups = [];

  constructor(name, people) {
    this.name = name;
    const isRoot = process.getuid?.() === 0;
    const skipRequested = process.env.DN_SKIP_NETNS === "1";
    this.skip = !isRoot && skipRequested ? "not root and DN_SKIP_NETNS=1: network-namespace tests need root" : false;
    if (this.skip) console.log(`NOTE: ${name}: skipped (${this.skip})`);
    if (isRoot && skipRequested) console.log(`NOTE: ${name}: DN_SKIP_NETNS=1 is ignored when running as root`);

    before(async () => {
      if (this.skip) return;
      if (!isRoot) {
        throw new Error(
          `${name}: this GUI test must run as root (it creates network namespaces, veths and a bridge). ` +
            "Run it as root, or set DN_SKIP_NETNS=1 to skip it explicitly.",
        );
      }
      for (const [what, path] of [
        ["app", APP_BIN],
        ["CLI", CLI_BIN],
        ["dn-lab", LAB_BIN],
      ]) {
        assert.ok(existsSync(path), `${what} binary missing: ${path} (run cargo build --workspace --bins)`);
      }
      assert.ok(existsSync(findTauriDriver()), `tauri-driver not found (${findTauriDriver()}): cargo install tauri-driver --locked`);
      assert.ok(process.env.DISPLAY, "DISPLAY is not set: run under xvfb-run");
      mkdirSync(OUT_DIR, { recursive: true });
      // This suite's outputs of earlier runs (so a stale FAILED-*.png cannot mislead).
      const stale = new RegExp(`^(FAILED-|TODO-)?${name}-`);
      for (const f of readdirSync(OUT_DIR)) if (stale.test(f)) rmSync(join(OUT_DIR, f), { force: true });
      this.#cleanups.push(() => this.#labDown()); // after the apps (each app's stop goes in front)
      try {
        await this.#labUp(people.length);
        const socketDir = this.tempDir(`dn-gui-${name}-sock-`);
        for (const [i, [key, person]] of people.entries()) {
          const app = new AppNode(this, key, this.lab.info.hosts[i], person);
          this.apps[key] = app;
          this.#cleanups.unshift(() => app.stop());
          await app.start(socketDir);
        }
      } catch (e) {
        this.failedStep = "setup";
        await screenCapture(`FAILED-${name}-setup-screen`).catch(() => {});
        for (const app of Object.values(this.apps)) console.error(`--- last lines of ${app.logFile}\n${tail(app.logFile)}`);
        if (this.lab) console.error(`--- ${this.lab.logFile}\n${tail(this.lab.logFile)}`);
        throw e;
      }
    });

    after(async () => {
      for (const cleanup of this.#cleanups) {
        try {
          await cleanup();
        } catch (e) {
          console.error(`cleanup: ${e.message}`);
        }
      }
    });
  }

  /** A fresh directory, removed at the end unless KEEP_DATA_DIR is set. */
  tempDir(prefix) {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.#cleanups.push(() => {
      if (!process.env.KEEP_DATA_DIR) rmSync(dir, { recursive: true, force: true });
    });
    return dir;
  }

  /**
   * A test step; skipped once an earlier step failed, with FAILED-*.png of every app (and the
   * screen) on failure. `todo`: a known bug, reported without failing the run.
   */
  step(title, slug, fn, { todo } = {}) {
    test(title, { skip: this.skip, todo }, async (t) => {
      if (this.failedStep) {
        t.skip(`an earlier step failed: ${this.failedStep}`);
        return;
      }
      const started = Date.now();
      try {
        await fn();
        console.log(`step ${slug}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
      } catch (e) {
        if (!todo) this.failedStep = title;
        const prefix = todo ? "TODO" : "FAILED";
        for (const app of Object.values(this.apps)) {
          if (app.driver) {
            await withTimeout(screenshot(app.driver, `${prefix}-${this.name}-${slug}-${app.key}`), 10_000, "a screenshot").catch(() => {});
          }
        }
        await screenCapture(`${prefix}-${this.name}-${slug}-screen`).catch(() => {});
        if (!todo) for (const app of Object.values(this.apps)) console.error(`--- last lines of ${app.logFile}\n${tail(app.logFile)}`);
        throw e;
      }
    });
  }

  /** Starts `dn-lab up n` and reads the lab's description (JSON line) from it. */
  async #labUp(n) {
    const logFile = join(OUT_DIR, `${this.name}-lab.log`);
    // Own process group: a Ctrl-C of the test does not kill it before it has cleaned up. It
    // removes the lab when its stdin closes, i.e. also when this process dies.
    const proc = spawn(LAB_BIN, ["up", String(n)], { stdio: ["pipe", "pipe", openSync(logFile, "w")], detached: true });
    proc.once("error", (e) => console.error(`dn-lab: ${e.message}`));
    const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
    const first = await withTimeout(lines.next(), 60_000, "dn-lab to create the lab");
    if (first.done) {
      await waitExit(proc, 5_000);
      throw new Error(`dn-lab exited (${proc.exitCode ?? proc.signalCode}) without a lab:\n${tail(logFile)}`);
    }
    const info = JSON.parse(first.value);
    if (info.skipped) throw new Error(`dn-lab skipped the lab: ${info.reason}`);
    this.lab = { proc, lines, info, logFile };
    console.log(`lab ${info.prefix}: ${info.hosts.map((h) => `${h.ns} ${h.ip}`).join(", ")}`);
  }

  /** Sends one command (`link-down 2`, …) to dn-lab and waits for its answer. */
  async labCommand(command) {
    this.lab.proc.stdin.write(`${command}\n`);
    const answer = await withTimeout(this.lab.lines.next(), 20_000, `dn-lab to answer ${command}`);
    if (answer.done) throw new Error(`dn-lab ended during ${command}:\n${tail(this.lab.logFile)}`);
    const reply = JSON.parse(answer.value);
    if (!reply.ok) throw new Error(`dn-lab ${command}: ${reply.error}`);
  }

  /** Ends dn-lab (it removes the namespaces and kills what still runs in them). */
  async #labDown() {
    if (!this.lab) return;
    const { proc, info } = this.lab;
    this.lab = undefined;
    proc.stdin.end();
    if (await waitExit(proc, 30_000)) {
      if (proc.exitCode !== 0) console.error(`dn-lab cleanup exited ${proc.exitCode ?? proc.signalCode}`);
    } else {
      console.error("dn-lab did not exit within 30 s: killing it and removing its namespaces here");
      proc.kill("SIGKILL");
    }
    const left = (await run("ip", ["netns", "list"]))
      .split("\n")
      .map((l) => l.split(" ")[0])
      .filter((ns) => ns.startsWith(`${info.prefix}-`));
    for (const ns of left) {
      console.error(`removing leftover namespace ${ns}`);
      for (const pid of (await run("ip", ["netns", "pids", ns]).catch(() => "")).split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // gone
        }
      }
      await run("ip", ["netns", "del", ns]).catch((e) => console.error(`ip netns del ${ns}: ${e.message}`));
    }
  }
}

/** One app on one lab host: its tauri-driver and socket forwarder in the host's namespace. */
export class AppNode {
  constructor(suite, key, host, name) {
    this.suite = suite;
    this.key = key;
    this.host = host; // from dn-lab: { index, ns, ip, port }
    this.name = name;
    this.logFile = join(OUT_DIR, `${suite.name}-n${host.index}.log`);
  }

  async start(socketDir) {
    const { ns, index } = this.host;
    const suite = this.suite;
    this.dataDir = suite.tempDir(`dn-gui-${suite.name}-n${index}-`);
    this.socket = join(socketDir, `wd-n${index}.sock`);
    const log = openSync(this.logFile, "w");
    // Own XDG dirs per app (the webview's storage and window state are keyed by the app id, not
    // by --data-dir); no dconf writes; no accessibility bus.
    const home = suite.tempDir(`dn-gui-${suite.name}-xdg-n${index}-`);
    const env = {
      ...process.env,
      XDG_DATA_HOME: join(home, "data"),
      XDG_CONFIG_HOME: join(home, "config"),
      XDG_CACHE_HOME: join(home, "cache"),
      GSETTINGS_BACKEND: "memory",
      NO_AT_BRIDGE: "1",
    };
    this.driverProc = spawn(
      "ip",
      ["netns", "exec", ns, findTauriDriver(), "--port", String(DRIVER_PORT), "--native-port", String(NATIVE_PORT)],
      { stdio: ["ignore", log, log], env },
    );
    this.driverProc.once("error", (e) => console.error(`tauri-driver in ${ns}: ${e.message}`));
    this.forwarder = spawn("ip", ["netns", "exec", ns, process.execPath, FORWARDER, this.socket, String(DRIVER_PORT)], {
      stdio: ["pipe", "pipe", log],
    });
    const ready = createInterface({ input: this.forwarder.stdout })[Symbol.asyncIterator]();
    const line = await withTimeout(ready.next(), TIMEOUT, `the socket forwarder in ${ns}`);
    assert.equal(line.value, "ready", `forwarder in ${ns} did not start:\n${tail(this.logFile)}`);
    this.agent = unixAgent(this.socket);
    await eventually(`tauri-driver in ${ns} to answer`, () => driverStatus(this.agent));
    this.driver = await new Builder()
      .usingServer(`http://127.0.0.1:${DRIVER_PORT}/`)
      .usingHttpAgent(this.agent)
      .withCapabilities({
        browserName: "wry",
        "tauri:options": {
          application: APP_BIN,
          // mDNS on (inside the lab namespace only), no beacon, no --peer, default listen.
          args: ["--data-dir", this.dataDir, "--no-beacon"],
        },
      })
      .build();
    this.pid = await eventually(`the app process of ${this.key}`, () => {
      const pids = appPids(this.dataDir);
      return pids.length === 1 ? pids[0] : null;
    });
    assert.equal(netnsOf(this.pid), netnsNamed(ns), `app ${this.key} is not in namespace ${ns}`);
    assert.notEqual(netnsOf(this.pid), netnsOf(process.pid), `app ${this.key} runs in the test's own namespace`);
    return this;
  }

  async shot(step) {
    return screenshot(this.driver, `${this.suite.name}-${step}-${this.key}`);
  }

  async stop() {
    if (this.driver) {
      try {
        await withTimeout(this.driver.quit(), 15_000, `the WebDriver session of ${this.key} to end`);
      } catch (e) {
        console.error(`quit ${this.key}: ${e.message}`);
      }
    }
    for (const pid of this.dataDir ? appPids(this.dataDir) : []) process.kill(pid, "SIGKILL");
    this.agent?.destroy();
    for (const proc of [this.driverProc, this.forwarder]) {
      if (!proc) continue;
      proc.stdin?.end();
      proc.kill("SIGTERM");
      if (!(await waitExit(proc, 5_000))) proc.kill("SIGKILL");
    }
  }
}
