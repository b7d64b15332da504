// GUI end-to-end tests of "Lock this laptop's DisasterNet" (docs/security.md "At rest"):
// 1. A data directory locked with the CLI, opened in the real app as a person would: the
//    unlock screen, a wrong passphrase (a clear error, nothing changed on disk), then the right
//    one (the room and its history). Meanwhile, no file under the data directory holds a
//    message body, the room name or the identity key in the clear, while the app runs or after
//    it exits.
// 2. The lock set, changed and removed in the "Identity & export" pane (quitting and starting
//    the app in between): two passphrases that differ and a wrong current one change nothing;
//    locking re-writes the store encrypted while the app runs; the next start asks for the
//    passphrase (the old one refused after a change); after removal the app opens without
//    asking and the store is plain again.
//
//   cd tests/gui && xvfb-run -a -s "-screen 0 1280x800x24" node --test unlock.test.mjs
//
// Environment: APP_BIN, CLI_BIN, TAURI_DRIVER, GUI_OUT_DIR, KEEP_DATA_DIR (see smoke.test.mjs).
// Screenshots: GUI_OUT_DIR/unlock-*.png. Everything stays on 127.0.0.1 with mDNS and the
// beacon off.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before } from "node:test";
import { By, Key, until } from "selenium-webdriver";
import {
  APP_BIN,
  appPids,
  assertNoErrors,
  CLI_BIN,
  elementWithText,
  eventually,
  execFileP,
  GuiFixture,
  messageWithBody,
  screenshot,
  sleep,
  TIMEOUT,
} from "./lib.mjs";

const PASSPHRASE = "correct horse battery staple";
const WRONG = "correct horse battery stable";
// Distinctive strings: any of them found in a file under the data dir is a leak.
const ROOM = "triage-ward-seven";
const NAME = "Amara Okafor";
const BODY = "Patient Josefina Ruiz, insulin-dependent, sheltered at 14 Calle Luna";
const TYPED = "Second patient moved to the school gym, room B (typed after unlock)";

// The lock panel's lines (ui/src/views/lock.ts, ui/src/store.ts): what a person reads.
const NEXT = "purple elephant under the bridge";
const LOCKED_STATUS =
  "This laptop's DisasterNet is locked: the identity key and the messages are encrypted, and the " +
  "passphrase is asked at every start.";
const UNLOCKED_STATUS = "Not locked: a passphrase is not set.";
const MISMATCH = "The two passphrases are not the same.";
const LOCKED_DONE =
  "Locked: DisasterNet now asks for this passphrase at every start. Without it nothing on this laptop can be read.";
const CHANGED_DONE = "Passphrase changed. Use the new one from the next start.";
const REMOVED_DONE = "Passphrase removed: the key and the messages on this laptop are no longer encrypted.";
const WRONG_CURRENT = "That is not the current passphrase. Nothing was changed.";
const WRONG_AT_START = "Wrong passphrase. Nothing was changed; try again.";

const fx = new GuiFixture();

/** The CLI on `dir` with extra environment (passphrases); stdout. */
async function cliEnv(dir, env, ...args) {
  const { stdout } = await execFileP(CLI_BIN, ["--data-dir", dir, ...args], {
    timeout: TIMEOUT,
    env: { ...process.env, ...env },
  });
  return args.includes("--json") ? JSON.parse(stdout) : stdout;
}

/** The CLI on `dir` that must fail; returns its exit code and what it printed. */
async function cliFails(dir, env, ...args) {
  try {
    await cliEnv(dir, env, ...args);
  } catch (e) {
    return { code: e.code, output: `${e.stdout}${e.stderr}` };
  }
  assert.fail(`disasternet ${args.join(" ")} succeeded with a wrong passphrase`);
}

/** Every regular file under `dir` (recursively): path → contents. */
function filesUnder(dir) {
  const out = new Map();
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    const st = lstatSync(path);
    if (st.isDirectory()) for (const [p, b] of filesUnder(path)) out.set(p, b);
    else if (st.isFile()) out.set(path, readFileSync(path));
  }
  return out;
}

/**
 * path → "sha256 size mtime" of every regular file under `dir`, but the app's log (`app.log`,
 * `app.log.1`): it records every attempt and is no data. (`assertNoPlaintext` still reads it.)
 */
function fingerprint(dir) {
  const out = {};
  for (const [path, bytes] of filesUnder(dir)) {
    if (/\/app\.log(\.1)?$/.test(path)) continue;
    const st = lstatSync(path);
    out[path] = `${createHash("sha256").update(bytes).digest("hex")} ${st.size} ${st.mtimeMs}`;
  }
  return out;
}

/**
 * Asserts that no file under `dir` contains any of `secrets` ({label: Buffer}); returns how
 * many files and bytes were searched (so a test cannot pass by searching nothing).
 */
function assertNoPlaintext(dir, secrets, when) {
  const files = filesUnder(dir);
  let bytes = 0;
  for (const [path, content] of files) {
    bytes += content.length;
    for (const [label, needle] of Object.entries(secrets)) {
      assert.equal(content.indexOf(needle), -1, `${when}: ${path} contains ${label} in the clear`);
    }
  }
  console.log(`${when}: searched ${files.size} files, ${bytes} bytes: no plaintext`);
  return { files: files.size, bytes };
}

/** Quits the app on `dir` as a person closing it would (SIGTERM: the WAL is checkpointed). */
async function quitApp(dir, driver) {
  const pids = await eventually("the app process", () => {
    const p = appPids(dir);
    return p.length === 1 ? p : null;
  });
  process.kill(pids[0], "SIGTERM");
  await eventually("the app to exit", () => appPids(dir).length === 0);
  await driver.quit().catch(() => {});
}

/** Waits for the unlock screen and returns its passphrase field, error line and button. */
async function unlockScreen(driver) {
  const dialog = await driver.wait(until.elementLocated(By.css("#unlock-dialog")), TIMEOUT);
  await driver.wait(until.elementIsVisible(dialog), TIMEOUT);
  return {
    input: await driver.findElement(By.css("#unlock-input")),
    problem: await driver.findElement(By.css("#unlock-error")),
    submit: await driver.findElement(By.css("#unlock-submit")),
  };
}

/** Types `passphrase` on the unlock screen and waits until the normal UI replaced it. */
async function unlockWith(driver, passphrase) {
  const { input, submit } = await unlockScreen(driver);
  await input.clear();
  await input.sendKeys(passphrase);
  await submit.click();
  await eventually("the unlock screen to go", async () => (await driver.findElements(By.css("#unlock-dialog"))).length === 0);
}

/** Opens "Identity & export" and waits for the lock panel to know whether it is locked. */
async function openLockPanel(driver, locked) {
  await driver.findElement(By.css("#identity-button")).click();
  const panel = await driver.wait(until.elementLocated(By.css("#lock-panel")), TIMEOUT);
  await driver.wait(until.elementIsVisible(panel), TIMEOUT);
  await driver.wait(
    until.elementTextIs(await driver.wait(until.elementLocated(By.css("#lock-status")), TIMEOUT), locked ? LOCKED_STATUS : UNLOCKED_STATUS),
    TIMEOUT,
  );
  await driver.executeScript("arguments[0].scrollIntoView({block: 'start'})", panel);
  return panel;
}

/** Sets an input's value by typing (cleared first). */
async function typeInto(driver, css, text) {
  const el = await driver.findElement(By.css(css));
  await el.clear();
  await el.sendKeys(text);
}

/** Waits until the panel finished its work (a long re-write of the store is "busy"). */
async function panelIdle(driver) {
  await eventually("the lock panel to finish", async () =>
    (await driver.findElement(By.css("#lock-panel")).getAttribute("aria-busy")) === "false",
  60_000);
}

/** Whether any file under `dir` contains `text`. */
function foundUnder(dir, text) {
  return [...filesUnder(dir).values()].some((b) => b.includes(Buffer.from(text)));
}

before(async () => {
  for (const [what, path] of [["app", APP_BIN], ["CLI", CLI_BIN]]) {
    assert.ok(existsSync(path), `${what} binary missing: ${path} (run cargo build --workspace --bins)`);
  }
  await fx.startDriver("unlock-tauri-driver");
});

after(() => fx.close());

fx.test("a locked data dir: unlock screen, a wrong passphrase changes nothing, the right one opens the room; no plaintext on disk", "unlock", async () => {
  // A data dir used without a passphrase, then locked with the CLI.
  const dir = fx.tempDir("dn-gui-unlock-");
  await cliEnv(dir, {}, "init", "--name", NAME);
  await cliEnv(dir, {}, "room", "join", ROOM);
  await cliEnv(dir, {}, "send", "--room", ROOM, BODY);
  const secretHex = readFileSync(join(dir, "identity.key"), "utf8").trim();
  assert.match(secretHex, /^[0-9a-f]{64}$/, "the unlocked key file holds the secret key in hex");
  // The search can find what it looks for: before the lock, the store holds the body.
  const before = [...filesUnder(dir).values()];
  assert.ok(before.some((b) => b.includes(Buffer.from(BODY))), "the plain store holds the body (sanity check)");

  await cliEnv(dir, { DISASTERNET_NEW_PASSPHRASE: PASSPHRASE }, "passphrase", "set");
  const secrets = {
    "the message body": Buffer.from(BODY),
    "the body typed in the app": Buffer.from(TYPED),
    "the room name": Buffer.from(ROOM),
    "the display name": Buffer.from(NAME),
    "the identity key (hex)": Buffer.from(secretHex),
    "the identity key (bytes)": Buffer.from(secretHex, "hex"),
    // Typed into the app: must not reach its log either.
    "the passphrase": Buffer.from(PASSPHRASE),
    "the wrong passphrase": Buffer.from(WRONG),
  };
  assert.match(readFileSync(join(dir, "identity.key"), "utf8"), /^DNLOCK1 argon2id /);
  assertNoPlaintext(dir, secrets, "locked, app not started");

  // The app shows the unlock screen (the engine has not started).
  const driver = await fx.launchApp(dir);
  const dialog = await driver.wait(until.elementLocated(By.css("#unlock-dialog")), TIMEOUT);
  await driver.wait(until.elementIsVisible(dialog), TIMEOUT);
  assert.equal(await driver.findElement(By.css("#unlock-title")).getText(), "DisasterNet is locked");
  const input = await driver.findElement(By.css("#unlock-input"));
  assert.equal(await input.getAttribute("type"), "password", "the passphrase is not shown");
  await eventually("the passphrase field to have the focus", async () =>
    (await driver.executeScript("return document.activeElement?.id")) === "unlock-input",
  );
  // Nothing of the room is shown or loaded behind it.
  assert.equal((await driver.findElements(By.css(`.room[data-room="${ROOM}"]`))).length, 0);
  assert.equal((await driver.findElements(By.css(".message"))).length, 0);
  await screenshot(driver, "unlock-01-locked");

  // The app waits for the passphrase: the data dir is as the CLI left it.
  const atRest = fingerprint(dir);
  await sleep(500);

  // Empty: asked for, nothing tried.
  await driver.findElement(By.css("#unlock-submit")).click();
  const problem = await driver.findElement(By.css("#unlock-error"));
  await driver.wait(until.elementTextIs(problem, "Please enter the passphrase."), TIMEOUT);

  // A wrong passphrase: a clear error, still on the unlock screen, the field ready for another
  // try, and not one byte changed under the data dir.
  await input.sendKeys(WRONG, Key.ENTER);
  await driver.wait(until.elementTextIs(problem, "Wrong passphrase. Nothing was changed; try again."), TIMEOUT);
  assert.ok(await problem.isDisplayed(), "the error is shown");
  assert.equal(await input.getAttribute("aria-invalid"), "true");
  assert.ok(await dialog.isDisplayed(), "still on the unlock screen");
  const submit = await driver.findElement(By.css("#unlock-submit"));
  assert.equal(await submit.isEnabled(), true, "Unlock can be pressed again");
  assert.equal(await submit.getText(), "Unlock");
  assert.equal(await driver.executeScript("return document.activeElement?.id"), "unlock-input");
  assert.equal((await driver.findElements(By.css(".message"))).length, 0);
  await screenshot(driver, "unlock-02-wrong-passphrase");
  assert.deepEqual(fingerprint(dir), atRest, "a wrong passphrase changed files under the data dir");
  assertNoPlaintext(dir, secrets, "after a wrong passphrase");

  // Typing again clears the error; the right passphrase (Unlock clicked) opens the normal UI
  // on the room, with the message written before the lock.
  await input.clear();
  await input.sendKeys(PASSPHRASE);
  await driver.wait(until.elementIsNotVisible(problem), TIMEOUT);
  await submit.click();
  await eventually("the unlock screen to go", async () => (await driver.findElements(By.css("#unlock-dialog"))).length === 0);
  await driver.wait(until.elementTextIs(await driver.wait(until.elementLocated(By.css("#room-title")), TIMEOUT), `#${ROOM}`), TIMEOUT);
  await elementWithText(driver, `.room[data-room="${ROOM}"]`, ROOM);
  const message = await messageWithBody(driver, BODY);
  assert.equal(await message.findElement(By.css(".author")).getText(), NAME);
  await elementWithText(driver, "#self-identity", NAME);

  // It works as usual: a message typed now is shown, and stored (asked through the running
  // app's control socket: no passphrase needed while it runs).
  const composer = await driver.findElement(By.css("#composer"));
  await driver.wait(until.elementIsEnabled(composer), TIMEOUT);
  await composer.sendKeys(TYPED, Key.ENTER);
  await messageWithBody(driver, TYPED);
  await eventually("the typed message in the store", async () =>
    (await cliEnv(dir, {}, "log", "--room", ROOM, "--json")).some((m) => m.body === TYPED),
  );
  await assertNoErrors(driver);
  await sleep(300); // let the frame settle
  await screenshot(driver, "unlock-03-unlocked");

  // While the app runs, with the store open and its WAL written: still no plaintext.
  const names = readdirSync(dir);
  assert.ok(names.includes("store.sqlite3-wal"), `the store's WAL is there while the app runs (${names})`);
  const searched = assertNoPlaintext(dir, secrets, "while the app runs");
  assert.ok(searched.bytes > 10_000, `searched only ${searched.bytes} bytes`);

  // The app exits (SIGTERM: the WAL is checkpointed into the store): still no plaintext, and
  // a restart with the passphrase has everything; a wrong one is refused and changes nothing.
  const [pid] = appPids(dir);
  process.kill(pid, "SIGTERM");
  await eventually("the app to exit", () => appPids(dir).length === 0);
  await driver.quit().catch(() => {});
  assertNoPlaintext(dir, secrets, "after the app exited");
  const stopped = fingerprint(dir);
  const refused = await cliFails(dir, { DISASTERNET_PASSPHRASE: WRONG }, "log", "--room", ROOM, "--json");
  assert.equal(refused.code, 9, `exit code 9 for a wrong passphrase (output: ${refused.output})`);
  // With --json the error is JSON on stdout.
  assert.match(refused.output, /"code":"wrong_passphrase","message":"wrong passphrase: nothing was changed/);
  assert.deepEqual(fingerprint(dir), stopped, "a wrong passphrase changed files under the data dir");
  const log = await cliEnv(dir, { DISASTERNET_PASSPHRASE: PASSPHRASE }, "log", "--room", ROOM, "--json");
  assert.deepEqual(
    log.map((m) => [m.body, m.author_name]).sort(),
    [[BODY, NAME], [TYPED, NAME]].sort(),
  );
});

fx.test("the app locks this laptop: set in the identity pane, the next start asks for it; change it; remove it", "lock-pane", async () => {
  // A data dir used without a passphrase (the CLI), with a known message.
  const dir = fx.tempDir("dn-gui-lock-pane-");
  await cliEnv(dir, {}, "init", "--name", NAME);
  await cliEnv(dir, {}, "room", "join", ROOM);
  await cliEnv(dir, {}, "send", "--room", ROOM, BODY);
  const secretHex = readFileSync(join(dir, "identity.key"), "utf8").trim();
  assert.match(secretHex, /^[0-9a-f]{64}$/);
  assert.ok(foundUnder(dir, BODY), "the plain store holds the body (sanity check)");
  const secrets = {
    "the message body": Buffer.from(BODY),
    "the room name": Buffer.from(ROOM),
    "the identity key (hex)": Buffer.from(secretHex),
  };

  // 1. The app on the unlocked dir: no unlock screen; lock it from "Identity & export".
  let driver = await fx.launchApp(dir);
  await messageWithBody(driver, BODY);
  assert.equal((await driver.findElements(By.css("#unlock-dialog"))).length, 0, "no unlock screen");
  await openLockPanel(driver, false);
  // The panel's lines, found again in each app session.
  let problem = await driver.findElement(By.css("#lock-problem"));
  let done = await driver.findElement(By.css("#lock-done"));
  const findLines = async () => {
    problem = await driver.findElement(By.css("#lock-problem"));
    done = await driver.findElement(By.css("#lock-done"));
  };
  for (const id of ["#lock-change-form", "#lock-remove-form"]) {
    assert.equal(await driver.findElement(By.css(id)).isDisplayed(), false, `${id} is hidden while not locked`);
  }
  await screenshot(driver, "unlock-lock-01-not-locked");

  // Two passphrases that differ: said so, and nothing on disk changed.
  await sleep(500); // the engine's start-up writes have settled
  let still = fingerprint(dir);
  await typeInto(driver, "#lock-new", PASSPHRASE);
  await typeInto(driver, "#lock-new-again", WRONG);
  await driver.findElement(By.css("#lock-set")).click();
  await driver.wait(until.elementTextIs(problem, MISMATCH), TIMEOUT);
  assert.ok(await problem.isDisplayed(), "the problem line is shown");
  await sleep(500);
  assert.deepEqual(fingerprint(dir), still, "two passphrases that differ changed files under the data dir");
  assert.ok(foundUnder(dir, BODY), "still not locked");
  await screenshot(driver, "unlock-lock-02-mismatch");

  // The same passphrase twice (submitted with Enter): done, locked.
  await typeInto(driver, "#lock-new-again", PASSPHRASE);
  await driver.findElement(By.css("#lock-new-again")).sendKeys(Key.ENTER);
  await driver.wait(until.elementTextIs(done, LOCKED_DONE), 60_000);
  await panelIdle(driver);
  await driver.wait(until.elementTextIs(await driver.wait(until.elementLocated(By.css("#lock-status")), TIMEOUT), LOCKED_STATUS), TIMEOUT);
  assert.equal(await problem.isDisplayed(), false, "no problem shown");
  assert.equal(await driver.findElement(By.css("#lock-set-form")).isDisplayed(), false);
  assert.equal(await driver.findElement(By.css("#lock-change-form")).isDisplayed(), true);
  assert.equal(await driver.findElement(By.css("#lock-new")).getAttribute("value"), "", "the field is emptied");
  await assertNoErrors(driver);
  await screenshot(driver, "unlock-lock-03-locked");
  assert.match(readFileSync(join(dir, "identity.key"), "utf8"), /^DNLOCK1 argon2id /);
  // While the app still runs: the store was re-written encrypted, no plain copy left.
  const searched = assertNoPlaintext(dir, secrets, "locked in the app, app running");
  assert.ok(searched.bytes > 10_000, `searched only ${searched.bytes} bytes`);
  // The running app still works: the room and its message.
  await driver.findElement(By.css(`.room[data-room="${ROOM}"] .room-select`)).click();
  await messageWithBody(driver, BODY);

  // 2. Quit, start again: the unlock screen; the new passphrase opens the room.
  await quitApp(dir, driver);
  assertNoPlaintext(dir, secrets, "locked in the app, app quit");
  driver = await fx.launchApp(dir);
  await unlockScreen(driver);
  assert.equal((await driver.findElements(By.css(".message"))).length, 0);
  await screenshot(driver, "unlock-lock-04-asks-at-start");
  await unlockWith(driver, PASSPHRASE);
  await driver.wait(until.elementTextIs(await driver.wait(until.elementLocated(By.css("#room-title")), TIMEOUT), `#${ROOM}`), TIMEOUT);
  await messageWithBody(driver, BODY);

  // 3. Change it: a wrong current passphrase is refused and changes nothing; the right one.
  await openLockPanel(driver, true);
  await findLines();
  assert.equal(await problem.isDisplayed(), false, "a new session starts without a problem line");
  await sleep(500);
  still = fingerprint(dir);
  await typeInto(driver, "#lock-current", WRONG);
  await typeInto(driver, "#lock-next", NEXT);
  await typeInto(driver, "#lock-next-again", NEXT);
  await driver.findElement(By.css("#lock-change")).click();
  await driver.wait(until.elementTextIs(problem, WRONG_CURRENT), 60_000);
  await panelIdle(driver);
  assert.ok(await problem.isDisplayed(), "the wrong-passphrase line is shown");
  await screenshot(driver, "unlock-lock-05-change-wrong-current");
  await sleep(500);
  assert.deepEqual(fingerprint(dir), still, "a wrong current passphrase changed files under the data dir");
  await typeInto(driver, "#lock-current", PASSPHRASE);
  await typeInto(driver, "#lock-next", NEXT);
  await typeInto(driver, "#lock-next-again", NEXT);
  await driver.findElement(By.css("#lock-change")).click();
  await driver.wait(until.elementTextIs(done, CHANGED_DONE), 60_000);
  await panelIdle(driver);
  assert.equal(await problem.isDisplayed(), false, "no problem shown");
  assert.equal(await driver.findElement(By.css("#lock-current")).getAttribute("value"), "");
  await assertNoErrors(driver);
  await screenshot(driver, "unlock-lock-06-changed");
  assertNoPlaintext(dir, secrets, "passphrase changed, app running");

  // Quit, restart: the old passphrase is refused, the new one opens.
  await quitApp(dir, driver);
  driver = await fx.launchApp(dir);
  const screen = await unlockScreen(driver);
  const waiting = fingerprint(dir);
  await screen.input.sendKeys(PASSPHRASE, Key.ENTER);
  await driver.wait(until.elementTextIs(screen.problem, WRONG_AT_START), TIMEOUT);
  assert.deepEqual(fingerprint(dir), waiting, "the old passphrase changed files under the data dir");
  await screenshot(driver, "unlock-lock-07-old-refused");
  await unlockWith(driver, NEXT);
  await messageWithBody(driver, BODY);

  // 4. Remove it: a restart opens without asking, and the store is plain again.
  await openLockPanel(driver, true);
  await findLines();
  await typeInto(driver, "#lock-remove-current", NEXT);
  await driver.findElement(By.css("#lock-remove")).click();
  await driver.wait(until.elementTextIs(done, REMOVED_DONE), 60_000);
  await panelIdle(driver);
  await driver.wait(until.elementTextIs(await driver.wait(until.elementLocated(By.css("#lock-status")), TIMEOUT), UNLOCKED_STATUS), TIMEOUT);
  assert.equal(await driver.findElement(By.css("#lock-set-form")).isDisplayed(), true, "it can be locked again");
  await assertNoErrors(driver);
  await screenshot(driver, "unlock-lock-08-removed");
  await quitApp(dir, driver);
  driver = await fx.launchApp(dir);
  // The window may still be loading: wait for the title to exist before reading it.
  const title = await driver.wait(until.elementLocated(By.css("#room-title")), TIMEOUT);
  await driver.wait(until.elementTextIs(title, `#${ROOM}`), TIMEOUT);
  await messageWithBody(driver, BODY);
  assert.equal((await driver.findElements(By.css("#unlock-dialog"))).length, 0, "no unlock screen");
  await screenshot(driver, "unlock-lock-09-open-without-passphrase");
  assert.ok(foundUnder(dir, BODY), "the store is plain again: the body is found in the files");
  assert.equal(readFileSync(join(dir, "identity.key"), "utf8").trim(), secretHex, "the key file is plain hex again");
  const log = await cliEnv(dir, {}, "log", "--room", ROOM, "--json");
  assert.deepEqual(log.map((m) => [m.body, m.author_name]), [[BODY, NAME]]);
});
