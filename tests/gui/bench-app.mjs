// App benchmark (run by `dn-bench`, section "app"): window to interactive and idle memory of
// the real desktop app on a prepared data directory. Not a test: prints one JSON object on
// stdout, progress on stderr.
//
// Run under a display, e.g. xvfb-run -a -s "-screen 0 1280x800x24" node bench-app.mjs
// Environment (dn-bench sets these):
//   APP_BIN        the app binary (release build)
//   DATA_DIR       a prepared data dir: name set, one joined room with the messages
//   EXPECT_LAST    the start of the newest message's body (what "rendered" waits for)
//   RUNS           timed runs (default 5); each starts the app anew
//   IDLE_S         idle seconds before memory is read (default 10)
//   MEM_RUNS       how many of the runs (the last ones) also measure idle memory (default RUNS)
//   DIRECT_RUN     1: one more start without WebDriver, memory only (default 1)
//   FLOOR_BIN      optional, with DIRECT_RUN: a bare Tauri window (crates/dn-floor) started the
//                  same way right after, with WEBKIT_DISABLE_COMPOSITING_MODE=1 as the app sets
//                  for itself, memory read after the same wait: the app's memory floor
//   TAURI_DRIVER   tauri-driver (default: PATH, then ~/.cargo/bin)
//   OUT_DIR        screenshot and logs (default: <target>/test-output/bench)
//   LOCKED_DATA_DIR  optional: the same data locked with a passphrase (`disasternet passphrase
//                  set`); each run on DATA_DIR is then followed by one on it (interleaved)
//   PASSPHRASE     the passphrase of LOCKED_DATA_DIR
//
// Per run:
// - t_spawn: the app process's start time (/proc/PID/stat starttime against /proc/uptime: 10 ms
//   ticks), so WebDriver's own start-up is not counted.
// - The UI's User Timing mark "dn:interactive" (ui/src/views/messages.ts): set one frame after
//   the selected room's newest page is in the DOM with the composer enabled. Its epoch time is
//   performance.timeOrigin + mark.startTime (same host clock as Date.now() here).
// - Independently, the DOM is polled over WebDriver every 20 ms: newest message present and in
//   view, composer enabled. Readiness cannot be seen before the WebDriver session exists, so this
//   is an upper bound on the DOM being ready (not on pixels being drawn).
// - After IDLE_S s: RSS, PSS, USS (Private_*) summed over the app and all its descendants from
//   /proc/PID/smaps_rollup, and the number of distinct physical pages they map (pagemap, root
//   only): shared pages counted once whoever else maps them, so it does not depend on other
//   WebKit processes on the host, which lower PSS.
//
// A locked run (LOCKED_DATA_DIR) starts the app the same way. The UI first shows its unlock
// screen (ui/src/views/unlock.ts; the engine has not started); the script polls for it, types
// the passphrase into it as soon as it is visible and clicks Unlock; then it waits for the same
// "dn:interactive" mark as above (the UI mounts the app, hence sets the mark, only after the
// unlock). Per locked run:
// - spawn → unlock screen: its first paint (the page's "first-contentful-paint": the unlock
//   screen is the page's first content, #app being empty until then) and when the polling saw
//   it (20 ms, an upper bound);
// - the typing: from the poll that saw the screen to just before the click (WebDriver sendKeys);
// - Unlock click → interactive (the mark), split by a MutationObserver set on the page before
//   typing: the `unlock` command (from the submit handler disabling Unlock to the screen's
//   removal when the command answered: IPC, Argon2id, the store opened with its integrity
//   check, the engine started) and the UI after it (mount, first page, one frame);
// - spawn → interactive minus the typing: (spawn → screen seen) + (click → mark), the figure
//   compared with the unlocked window to interactive.
// Locked runs measure no memory.
//
// Each run gets a fresh tauri-driver and fresh XDG config/data/cache dirs, so WebKit starts
// with no cache, no local storage and the default window size (the OS page cache stays warm).
// The app always gets --no-mdns --no-beacon --listen 127.0.0.1:0: nothing leaves loopback.

import { spawn } from "node:child_process";
import {
  closeSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Builder, By } from "selenium-webdriver";
import { appPids as appPidsOf, findTauriDriver, freePort, sleep, targetDir } from "./lib.mjs";

const APP_BIN = resolve(process.env.APP_BIN ?? join(targetDir, "release", "disasternet-app"));
const DATA_DIR = process.env.DATA_DIR;
const EXPECT_LAST = process.env.EXPECT_LAST ?? "";
const RUNS = Number(process.env.RUNS ?? 5);
const IDLE_S = Number(process.env.IDLE_S ?? 10);
const MEM_RUNS = Math.min(RUNS, Number(process.env.MEM_RUNS ?? RUNS));
const DIRECT_RUN = (process.env.DIRECT_RUN ?? "1") === "1";
const FLOOR_BIN = process.env.FLOOR_BIN ? resolve(process.env.FLOOR_BIN) : "";
const OUT_DIR = process.env.OUT_DIR ?? join(targetDir, "test-output", "bench");
const LOCKED_DATA_DIR = process.env.LOCKED_DATA_DIR ?? "";
const PASSPHRASE = process.env.PASSPHRASE ?? "";
const POLL_MS = 20;
const TIMEOUT_MS = 30_000;
const CLK_TCK = 100; // USER_HZ: `getconf CLK_TCK` is 100 on Linux (x86-64, arm64)
const appArgs = (dir) => ["--data-dir", dir, "--no-mdns", "--no-beacon", "--listen", "127.0.0.1:0"];
const APP_ARGS = appArgs(DATA_DIR);

const note = (msg) => process.stderr.write(`[bench-app] ${msg}\n`);

// --------------------------------------------------------------------------------- /proc

/** Pids of app processes on `dir` (DATA_DIR by default; matched by binary and that unique dir). */
const appPids = (dir = DATA_DIR) => appPidsOf(dir, APP_BIN);

/** Fields of /proc/PID/stat after the command name (index 0 = state, 1 = ppid, 19 = starttime). */
function statFields(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** Wall-clock time (ms since the epoch) at which a process started, ±10 ms. */
function processStartEpochMs(pid) {
  const startTicks = Number(statFields(pid)[19]);
  const now = Date.now();
  const uptimeS = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
  return now - (uptimeS - startTicks / CLK_TCK) * 1000;
}

/** `pid` and all its descendants. */
function processTree(pid) {
  const children = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(statFields(entry)[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch {
      // gone
    }
  }
  const out = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop();
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

/**
 * Physical pages resident in `pid`'s mappings (from /proc/PID/pagemap; needs root to see page
 * frame numbers). Counts each mapping of a page in `frames` (frame number → mappings); returns
 * false when frame numbers are hidden.
 */
function addResidentFrames(pid, frames) {
  let fd;
  try {
    fd = openSync(`/proc/${pid}/pagemap`, "r");
  } catch {
    return false;
  }
  try {
    const ranges = [];
    let current = null;
    for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
      if (m) {
        current = { start: parseInt(m[1], 16), end: parseInt(m[2], 16), rss: 0 };
        ranges.push(current);
      } else if (current && line.startsWith("Rss:")) {
        current.rss = Number(line.split(/\s+/)[1]);
      }
    }
    const CHUNK = 65536; // pages per read
    const buf = Buffer.alloc(CHUNK * 8);
    let sawFrame = false;
    for (const r of ranges) {
      if (r.rss === 0) continue;
      const first = Math.floor(r.start / 4096);
      const pages = Math.floor((r.end - r.start) / 4096);
      for (let i = 0; i < pages; i += CHUNK) {
        const n = Math.min(CHUNK, pages - i);
        const got = readSync(fd, buf, 0, n * 8, (first + i) * 8);
        for (let o = 0; o + 8 <= got; o += 8) {
          const high = buf.readUInt32LE(o + 4);
          if ((high & 0x80000000) === 0) continue; // not present
          const frame = (high & 0x7fffff) * 2 ** 32 + buf.readUInt32LE(o);
          if (frame === 0) continue; // frame numbers hidden (not root)
          sawFrame = true;
          frames.set(frame, (frames.get(frame) ?? 0) + 1);
        }
      }
    }
    return sawFrame;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

/**
 * RSS, PSS and USS (private) of `pid` and its descendants, in kB, with one row per process, and
 * the tree's distinct resident pages (each shared page counted once, however many processes of
 * the tree or outside it map it).
 */
function treeMemory(pid) {
  const rows = [];
  for (const p of processTree(pid)) {
    try {
      const rollup = readFileSync(`/proc/${p}/smaps_rollup`, "utf8");
      const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(rollup)?.[1] ?? 0);
      rows.push({
        pid: p,
        name: readFileSync(`/proc/${p}/comm`, "utf8").trim(),
        rss_kb: field("Rss"),
        pss_kb: field("Pss"),
        uss_kb: field("Private_Clean") + field("Private_Dirty"),
        swap_kb: field("Swap"),
      });
    } catch {
      // exited meanwhile, or a kernel thread without smaps
    }
  }
  const sum = (k) => rows.reduce((n, r) => n + r[k], 0);
  // WebKit's rendering switches as the web process got them (it inherits the app's environment,
  // including variables the app set for itself before starting WebKit).
  const webkitEnv = {};
  for (const r of rows) {
    if (!r.name.startsWith("WebKitWebProces")) continue;
    try {
      for (const kv of readFileSync(`/proc/${r.pid}/environ`, "utf8").split("\0")) {
        if (/^(WEBKIT_|GDK_BACKEND=|LIBGL_|GALLIUM_DRIVER=)/.test(kv)) {
          const at = kv.indexOf("=");
          webkitEnv[kv.slice(0, at)] = kv.slice(at + 1);
        }
      }
    } catch {
      // gone
    }
  }
  const frames = new Map();
  let framesSeen = true;
  for (const r of rows) framesSeen = addResidentFrames(r.pid, frames) && framesSeen;
  // PSS as if the app were alone with its X server: each page split among the app's own
  // mappings and the X server's only (not other sessions' WebKit processes).
  const xFrames = new Map();
  const x = xServerPid();
  if (x !== null) addResidentFrames(x, xFrames);
  let alonePages = 0;
  for (const [frame, n] of frames) alonePages += n / (n + (xFrames.get(frame) ?? 0));
  return {
    rss_kb: sum("rss_kb"),
    pss_kb: sum("pss_kb"),
    uss_kb: sum("uss_kb"),
    swap_kb: sum("swap_kb"),
    unique_kb: framesSeen ? frames.size * 4 : null,
    pss_alone_kb: framesSeen ? Math.round(alonePages * 4) : null,
    x_server_pid: x,
    other_webkit_processes_on_host: foreignWebKitProcesses(rows.map((r) => r.pid)),
    loadavg: readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" "),
    web_process_env: webkitEnv,
    processes: rows,
  };
}

/** The Xvfb that xvfb-run started beside this script (same parent), or null. */
function xServerPid() {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (safeRead(`/proc/${entry}/comm`).trim() !== "Xvfb") continue;
      if (Number(statFields(entry)[1]) === process.ppid) return Number(entry);
    } catch {
      // gone
    }
  }
  return null;
}

/** WebKit processes on this host that are not the app's (they lower the app's PSS). */
function foreignWebKitProcesses(tree) {
  const ours = new Set(tree);
  let n = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || ours.has(Number(entry))) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").startsWith("WebKit")) n += 1;
    } catch {
      // gone
    }
  }
  return n;
}

function memLine(m) {
  const mib = (kb) => (kb === null ? "?" : (kb / 1024).toFixed(1));
  return (
    `PSS ${mib(m.pss_kb)} MiB (${m.other_webkit_processes_on_host} other WebKit processes on the host), ` +
    `PSS alone ${mib(m.pss_alone_kb)} MiB, RSS ${mib(m.rss_kb)} MiB, USS ${mib(m.uss_kb)} MiB, ` +
    `distinct pages ${mib(m.unique_kb)} MiB over ${m.processes.length} processes`
  );
}

/** Waits until none of `pids` is alive (up to `ms`), then SIGKILLs what is left of them. */
async function waitPidsGone(pids, ms) {
  const alive = () => pids.filter((p) => existsSync(`/proc/${p}`) && !/^\S+ \(.*\) Z/.test(safeRead(`/proc/${p}/stat`)));
  const deadline = Date.now() + ms;
  while (alive().length > 0 && Date.now() < deadline) await sleep(50);
  for (const p of alive()) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // gone
    }
  }
}

function safeRead(path) {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** Removes a temporary dir; WebKit helpers exiting a moment later may still write there. */
function removeDir(dir) {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  } catch (e) {
    note(`could not remove ${dir}: ${e.message}`);
  }
}

async function waitGone(ms, dir = DATA_DIR) {
  const deadline = Date.now() + ms;
  while (appPids(dir).length > 0) {
    if (Date.now() > deadline) {
      for (const pid of appPids(dir)) process.kill(pid, "SIGKILL");
      await sleep(200);
      return false;
    }
    await sleep(50);
  }
  return true;
}

// ------------------------------------------------------------------------------- the page

/** Runs in the app's page: is the UI usable, and the page's own timings. */
const PROBE = `
  const expect = arguments[0];
  const composer = document.getElementById("composer");
  const bodies = document.querySelectorAll("#message-list .message .body");
  const last = bodies[bodies.length - 1];
  const scroller = document.getElementById("message-scroller");
  let inView = false;
  if (last && scroller) {
    const r = last.getBoundingClientRect();
    const s = scroller.getBoundingClientRect();
    inView = r.height > 0 && r.bottom <= s.bottom + 2 && r.bottom > s.top;
  }
  const nav = performance.getEntriesByType("navigation")[0];
  const mark = performance.getEntriesByName("dn:interactive")[0];
  return {
    ready: Boolean(composer && !composer.disabled && last && last.textContent.startsWith(expect) && inView),
    now: Date.now(),
    messages: bodies.length,
    nodes: document.getElementsByTagName("*").length,
    origin: performance.timeOrigin,
    dcl: nav ? nav.domContentLoadedEventEnd : null,
    load: nav ? nav.loadEventEnd : null,
    mark: mark ? mark.startTime : null,
  };
`;

/** Runs in the page of a locked data dir: is the unlock screen up, and its first paint. */
const PROBE_LOCK = `
  const input = document.getElementById("unlock-input");
  const r = input ? input.getBoundingClientRect() : null;
  const fcp = performance.getEntriesByName("first-contentful-paint")[0];
  return {
    visible: Boolean(r && r.width > 0 && r.height > 0),
    now: Date.now(),
    origin: performance.timeOrigin,
    fcp: fcp ? fcp.startTime : null,
    mounted: document.getElementById("composer") !== null,
  };
`;

/**
 * Watches the unlock screen (epoch ms in window.__dnUnlock): `start` when its submit handler
 * disabled Unlock (and invoked the shell's `unlock` command), `end` when the command answered
 * and the screen was removed. The page's Tauri `invoke` cannot be wrapped (non-writable).
 */
const WATCH_UNLOCK = `
  const mark = window.__dnUnlock = {};
  const submit = document.getElementById("unlock-submit");
  if (!submit) return false;
  const seen = () => {
    if (!mark.start && submit.disabled) mark.start = Date.now();
    if (!mark.end && !document.getElementById("unlock-dialog")) mark.end = Date.now();
    return Boolean(mark.end);
  };
  const observer = new MutationObserver(() => {
    if (seen()) observer.disconnect();
  });
  observer.observe(document.body, { subtree: true, childList: true, attributes: true });
  return true;
`;

// --------------------------------------------------------------------------------- a run

async function startDriver(xdg, log) {
  const port = await freePort();
  const nativePort = await freePort();
  const proc = spawn(findTauriDriver(), ["--port", String(port), "--native-port", String(nativePort)], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...xdg },
  });
  proc.stdout.pipe(log, { end: false });
  proc.stderr.pipe(log, { end: false });
  const url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    try {
      if ((await fetch(`${url}status`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("tauri-driver did not listen within 30 s");
    await sleep(50);
  }
  return { proc, url };
}

function freshXdg(base) {
  const xdg = {
    XDG_CONFIG_HOME: join(base, "config"),
    XDG_DATA_HOME: join(base, "data"),
    XDG_CACHE_HOME: join(base, "cache"),
  };
  for (const d of Object.values(xdg)) mkdirSync(d, { recursive: true });
  return xdg;
}

/**
 * Waits for the unlock screen, types `passphrase` and clicks Unlock. Returns what was seen and
 * when (epoch ms, host clock).
 */
async function unlockScreen(driver, passphrase, t0) {
  let lock;
  let firstLock = null;
  for (;;) {
    lock = await driver.executeScript(PROBE_LOCK);
    firstLock ??= lock;
    if (lock.visible) break;
    if (lock.mounted) throw new Error("the app opened without its unlock screen: is the data dir locked?");
    if (Date.now() - t0 > TIMEOUT_MS) throw new Error(`no unlock screen within ${TIMEOUT_MS} ms`);
    await sleep(POLL_MS);
  }
  const watched = await driver.executeScript(WATCH_UNLOCK);
  const input = await driver.findElement(By.css("#unlock-input"));
  await input.sendKeys(passphrase);
  const clickAt = Date.now();
  await driver.findElement(By.css("#unlock-submit")).click();
  return { seen: lock, visibleAtFirstPoll: firstLock.visible, watched, clickAt };
}

async function timedRun(i, measureMemory, log, dataDir = DATA_DIR, passphrase = "") {
  const base = mkdtempSync(join(tmpdir(), "dn-bench-app-xdg-"));
  const { proc, url } = await startDriver(freshXdg(base), log);
  const appPids = () => appPidsOf(dataDir, APP_BIN);
  let driver;
  try {
    const t0 = Date.now();
    driver = await new Builder()
      .usingServer(url)
      .withCapabilities({ browserName: "wry", "tauri:options": { application: APP_BIN, args: appArgs(dataDir) } })
      .build();
    const tSession = Date.now();
    const pids = appPids();
    if (pids.length !== 1) throw new Error(`expected one app process, found [${pids}]`);
    const pid = pids[0];
    const spawnAt = processStartEpochMs(pid);
    const unlock = passphrase ? await unlockScreen(driver, passphrase, t0) : null;
    let first = null;
    let probe;
    let seenReady = null; // the first probe that saw the UI ready
    let polls = 0;
    for (;;) {
      probe = await driver.executeScript(PROBE, EXPECT_LAST);
      polls += 1;
      first ??= probe;
      if (probe.ready) seenReady ??= probe;
      // The UI's mark comes one frame after the DOM is ready: wait for it (briefly, since an
      // older UI may not set it).
      if (seenReady && (probe.mark !== null || probe.now - seenReady.now > 2000)) break;
      if (Date.now() - t0 > TIMEOUT_MS) {
        throw new Error(`not interactive within ${TIMEOUT_MS} ms (last probe: ${JSON.stringify(probe)})`);
      }
      await sleep(POLL_MS);
    }
    // Before the first poll, readiness cannot be seen: then the polled figure is only an
    // upper bound set by WebDriver session start.
    const readyAtFirstPoll = first.ready;
    const ready = seenReady ?? probe;
    const run = {
      run: i + 1,
      spawn_to_ready_polled_ms: Math.round(ready.now - spawnAt),
      spawn_to_mark_ms: probe.mark === null ? null : Math.round(probe.origin + probe.mark - spawnAt),
      spawn_to_page_origin_ms: Math.round(probe.origin - spawnAt),
      spawn_to_dom_content_loaded_ms: probe.dcl === null ? null : Math.round(probe.origin + probe.dcl - spawnAt),
      webdriver_to_ready_ms: ready.now - t0,
      webdriver_session_ms: tSession - t0,
      webdriver_to_spawn_ms: Math.round(spawnAt - t0),
      first_poll_after_spawn_ms: Math.round(first.now - spawnAt),
      ready_at_first_poll: readyAtFirstPoll,
      polls,
      messages_in_dom: probe.messages,
      dom_elements: probe.nodes,
      mark_after_dom_ready_ms: probe.mark === null ? null : Math.round(probe.origin + probe.mark - ready.now),
    };
    if (unlock) {
      const markAt = probe.mark === null ? null : probe.origin + probe.mark;
      // The unlock screen's first paint: read now (the entry may come after the poll saw it).
      const { times, fcp } = await driver.executeScript(`
        const fcp = performance.getEntriesByName("first-contentful-paint")[0];
        return { times: window.__dnUnlock ?? {}, fcp: fcp ? fcp.startTime : null };`);
      const { seen } = unlock;
      const typing = unlock.clickAt - seen.now;
      Object.assign(run, {
        locked: true,
        spawn_to_unlock_screen_painted_ms: fcp === null ? null : Math.round(seen.origin + fcp - spawnAt),
        unlock_screen_painted_when_seen: seen.fcp !== null,
        spawn_to_unlock_screen_polled_ms: Math.round(seen.now - spawnAt),
        unlock_screen_at_first_poll: unlock.visibleAtFirstPoll,
        typing_ms: typing,
        click_to_mark_ms: markAt === null ? null : Math.round(markAt - unlock.clickAt),
        unlock_command_ms: times.end && times.start ? times.end - times.start : null,
        click_to_unlock_command_ms: times.start ? times.start - unlock.clickAt : null,
        unlock_command_to_mark_ms: markAt !== null && times.end ? Math.round(markAt - times.end) : null,
        spawn_to_mark_minus_typing_ms: markAt === null ? null : Math.round(markAt - spawnAt - typing),
        click_to_ready_polled_ms: ready.now - unlock.clickAt,
      });
      note(
        `locked run ${i + 1}: spawn→unlock screen ${run.spawn_to_unlock_screen_painted_ms ?? "?"} ms (painted), ` +
          `${run.spawn_to_unlock_screen_polled_ms} ms (seen); typing ${typing} ms; click→interactive ` +
          `${run.click_to_mark_ms ?? "?"} ms (unlock command ${run.unlock_command_ms ?? "?"} ms); ` +
          `spawn→interactive minus typing ${run.spawn_to_mark_minus_typing_ms ?? "?"} ms`,
      );
      if (i === RUNS - 1) {
        mkdirSync(OUT_DIR, { recursive: true });
        const shot = join(OUT_DIR, "app-unlocked.png");
        writeFileSync(shot, await driver.takeScreenshot(), "base64");
        run.screenshot = shot;
      }
      return run;
    }
    note(
      `run ${i + 1}: spawn→interactive ${run.spawn_to_mark_ms ?? "?"} ms (mark), ${run.spawn_to_ready_polled_ms} ms ` +
        `(polled), WebDriver→interactive ${run.webdriver_to_ready_ms} ms; ${probe.messages} messages in the DOM`,
    );
    if (measureMemory) {
      await sleep(IDLE_S * 1000);
      const after = await driver.executeScript(PROBE, EXPECT_LAST);
      run.memory = treeMemory(pid);
      run.messages_in_dom_after_idle = after.messages;
      run.still_ready_after_idle = after.ready;
      note(`run ${i + 1}: after ${IDLE_S} s idle: ${memLine(run.memory)}`);
      if (i === RUNS - 1) {
        mkdirSync(OUT_DIR, { recursive: true });
        const shot = join(OUT_DIR, "app-interactive.png");
        writeFileSync(shot, await driver.takeScreenshot(), "base64");
        run.screenshot = shot;
      }
    }
    return run;
  } finally {
    const tree = appPids().flatMap((p) => processTree(p));
    try {
      await driver?.quit();
    } catch {
      // the session ended with the app
    }
    await waitGone(5000, dataDir);
    await waitPidsGone(tree, 3000);
    proc.kill("SIGTERM");
    removeDir(base);
  }
}

/**
 * The app started directly (no WebDriver, no automation mode): idle memory only. With `bin`
 * and `env`, another program started the same way (the bare window of FLOOR_BIN).
 */
async function directRun(waitMs, log, bin = APP_BIN, args = APP_ARGS, env = {}) {
  const base = mkdtempSync(join(tmpdir(), "dn-bench-app-xdg-"));
  const app = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...freshXdg(base), ...env } });
  app.stdout.pipe(log, { end: false });
  app.stderr.pipe(log, { end: false });
  const exited = new Promise((done) => app.once("exit", done));
  let tree = [];
  try {
    await sleep(waitMs);
    if (app.exitCode !== null) throw new Error(`${bin} exited early (${app.exitCode})`);
    tree = processTree(app.pid);
    const memory = treeMemory(app.pid);
    note(`direct start of ${bin}: ${memLine(memory)}`);
    const t = Date.now();
    app.kill("SIGTERM");
    const clean =
      bin === APP_BIN
        ? await waitGone(10_000)
        : await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
    return { bin, wait_ms: waitMs, memory, sigterm_exit_ms: Date.now() - t, clean_exit: clean };
  } finally {
    if (app.exitCode === null) app.kill("SIGKILL");
    await waitPidsGone(tree, 3000);
    removeDir(base);
  }
}

async function main() {
  if (!DATA_DIR || !existsSync(DATA_DIR)) throw new Error("DATA_DIR must name a prepared data directory");
  if (!existsSync(APP_BIN)) throw new Error(`app binary missing: ${APP_BIN}`);
  if (!process.env.DISPLAY) throw new Error("no DISPLAY: run under xvfb-run");
  if (appPids().length > 0) throw new Error(`an app is already running on ${DATA_DIR}`);
  if (LOCKED_DATA_DIR) {
    if (!existsSync(LOCKED_DATA_DIR)) throw new Error(`LOCKED_DATA_DIR ${LOCKED_DATA_DIR} does not exist`);
    if (!PASSPHRASE) throw new Error("LOCKED_DATA_DIR needs PASSPHRASE");
    if (appPids(LOCKED_DATA_DIR).length > 0) throw new Error(`an app is already running on ${LOCKED_DATA_DIR}`);
  }
  mkdirSync(OUT_DIR, { recursive: true });
  const log = createWriteStream(join(OUT_DIR, "bench-app.log"));
  const runs = [];
  const lockedRuns = [];
  for (let i = 0; i < RUNS; i++) {
    runs.push(await timedRun(i, i >= RUNS - MEM_RUNS, log));
    if (LOCKED_DATA_DIR) lockedRuns.push(await timedRun(i, false, log, LOCKED_DATA_DIR, PASSPHRASE));
  }
  let direct = null;
  let floor = null;
  if (DIRECT_RUN) {
    const slowest = Math.max(...runs.map((r) => r.spawn_to_ready_polled_ms));
    direct = await directRun(slowest + IDLE_S * 1000, log);
    if (FLOOR_BIN) {
      if (!existsSync(FLOOR_BIN)) throw new Error(`FLOOR_BIN missing: ${FLOOR_BIN}`);
      floor = await directRun(slowest + IDLE_S * 1000, log, FLOOR_BIN, [], { WEBKIT_DISABLE_COMPOSITING_MODE: "1" });
    }
  }
  log.end();
  process.stdout.write(`${JSON.stringify({ app: APP_BIN, idle_s: IDLE_S, poll_ms: POLL_MS, runs, direct, floor, locked_runs: lockedRuns })}\n`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench-app: ${e.stack ?? e}\n`);
    for (const dir of [DATA_DIR, LOCKED_DATA_DIR].filter(Boolean)) {
      for (const pid of appPids(dir)) process.kill(pid, "SIGKILL");
    }
    process.exit(1);
  },
);
