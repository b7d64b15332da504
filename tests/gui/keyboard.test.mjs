// GUI end-to-end test: the whole app with the keyboard only (no clicks), at laptop sizes.
// Drives the real app binary through tauri-driver (WebKitWebDriver), like smoke.test.mjs.
//
// Run under a display, e.g.: xvfb-run -a -s "-screen 0 1366x768x24" node --test keyboard.test.mjs
// Environment: APP_BIN, TAURI_DRIVER, GUI_OUT_DIR, KEEP_DATA_DIR (see smoke.test.mjs).
// Screenshots: GUI_OUT_DIR/keyboard-*.png (1366×768, 1280×800 and 1024×700).
//
// Everything stays on 127.0.0.1 with mDNS and the beacon off.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before } from "node:test";
import { Key, By, until } from "selenium-webdriver";
import { APP_BIN, eventually, GuiFixture, screenshot as shot, sleep, TIMEOUT } from "./lib.mjs";

const fx = new GuiFixture();
const tempDir = (prefix) => fx.tempDir(prefix);
const launchApp = (dataDir) => fx.launchApp(dataDir);

// ------------------------------------------------------------------------------- helpers

async function screenshot(driver, name) {
  // Two frames first, so the focus ring just moved is painted.
  await driver
    .executeAsyncScript("const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done()));")
    .catch(() => {});
  return shot(driver, name);
}

// --------------------------------------------------------------------- keyboard helpers

/** Presses keys on whatever has focus (a chord when the first key is a modifier). */
async function press(driver, ...keys) {
  const modifiers = [Key.CONTROL, Key.ALT, Key.SHIFT, Key.META];
  let actions = driver.actions();
  const held = [];
  for (const k of keys) {
    if (modifiers.includes(k)) {
      actions = actions.keyDown(k);
      held.push(k);
    } else {
      actions = actions.sendKeys(k);
    }
  }
  for (const k of held.reverse()) actions = actions.keyUp(k);
  await actions.perform();
}

/** Types text into whatever has focus. */
async function typeText(driver, text) {
  await driver.actions().sendKeys(text).perform();
}

/** A short description of the focused element: `#id`, or `.class@row-key`, or the tag name. */
function focused(driver) {
  return driver.executeScript(`
    const el = document.activeElement;
    if (!el || el === document.body) return "BODY";
    if (el.id) return "#" + el.id;
    const row = el.closest("[data-room], [data-peer-id], [data-dm-peer], [data-notice-id]");
    const key = row ? "@" + (row.dataset.room ?? row.dataset.peerId ?? row.dataset.dmPeer ?? "error") : "";
    return "." + el.classList[0] + key;
  `);
}

/** Waits until the focused element is `expected` (see `focused`). */
async function focusIs(driver, expected, why = "") {
  let seen;
  await eventually(
    () => `focus on ${expected}${why ? ` (${why})` : ""}, it is on ${seen}`,
    async () => (seen = await focused(driver)) === expected,
  );
}

/** Tab (or Shift+Tab) through `stops`, checking each focused element in turn. */
async function tabThrough(driver, stops, backwards = false) {
  for (const stop of stops) {
    if (backwards) await press(driver, Key.SHIFT, Key.TAB);
    else await press(driver, Key.TAB);
    await focusIs(driver, stop, `${backwards ? "Shift+" : ""}Tab order`);
  }
}

/** The focus ring of the focused element: outline style and width (px). */
function focusRing(driver) {
  return driver.executeScript(`
    const s = getComputedStyle(document.activeElement);
    return { style: s.outlineStyle, width: parseFloat(s.outlineWidth), color: s.outlineColor };
  `);
}

async function assertFocusRing(driver, what) {
  const ring = await focusRing(driver);
  assert.notEqual(ring.style, "none", `${what}: no visible focus ring (${JSON.stringify(ring)})`);
  assert.ok(ring.width >= 2, `${what}: focus ring thinner than 2px (${JSON.stringify(ring)})`);
}

/** Resizes the window and waits for the page to see the new size. */
async function setSize(driver, width, height) {
  await driver.manage().window().setRect({ width, height, x: 0, y: 0 });
  await eventually(`a ${width}×${height} viewport`, async () => {
    const [w, h] = await driver.executeScript("return [innerWidth, innerHeight]");
    return Math.abs(w - width) <= 2 && Math.abs(h - height) <= 40;
  });
  await sleep(300); // one more frame for layout
}

/**
 * Layout checks at the current size: no page scroll, sidebar / pane / status bar on screen and
 * side by side, text no smaller than 12px (body text 14px+), long names cut with an ellipsis.
 */
async function checkLayout(driver, label) {
  const r = await driver.executeScript(`
    const box = (sel) => { const e = document.querySelector(sel); if (!e) return null;
      const b = e.getBoundingClientRect(); return { left: b.left, top: b.top, right: b.right, bottom: b.bottom }; };
    const visible = (e) => { const b = e.getBoundingClientRect(); const s = getComputedStyle(e);
      return b.width > 0 && b.height > 0 && s.visibility !== "hidden"; };
    let smallest = { size: 99, text: "" };
    for (const e of document.querySelectorAll(".app-shell *")) {
      if (!visible(e)) continue;
      const own = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== "");
      if (!own) continue;
      const size = parseFloat(getComputedStyle(e).fontSize);
      if (size < smallest.size) smallest = { size, text: e.textContent.trim().slice(0, 40) };
    }
    const body = document.querySelector(".message .body, #composer");
    const scroller = document.querySelector("#room-view:not([hidden]) .message-scroller");
    return {
      inner: [innerWidth, innerHeight],
      page: [document.documentElement.scrollWidth, document.documentElement.scrollHeight],
      pageScroll: [scrollX, scrollY],
      sidebar: box(".sidebar"), pane: box(".room-pane"), status: box("#status-bar"),
      composer: box("#composer-form:not([hidden])"),
      smallest,
      bodySize: body ? parseFloat(getComputedStyle(body).fontSize) : null,
      scroller: scroller ? [scroller.scrollHeight, scroller.clientHeight] : null,
      selfStyle: getComputedStyle(document.querySelector("#self-identity .self-name")).textOverflow,
      selfFingerprint: box("#self-identity .fingerprint"),
      netState: box("#net-status .net-state"),
    };
  `);
  const [w, h] = r.inner;
  assert.ok(r.page[0] <= w && r.page[1] <= h, `${label}: the page scrolls (${r.page} in ${r.inner})`);
  assert.deepEqual(r.pageScroll, [0, 0], `${label}: the page is scrolled`);
  for (const part of ["sidebar", "pane", "status"]) {
    const b = r[part];
    assert.ok(b, `${label}: ${part} missing`);
    assert.ok(b.left >= 0 && b.top >= 0 && b.right <= w + 0.5 && b.bottom <= h + 0.5, `${label}: ${part} off screen ${JSON.stringify(b)}`);
  }
  assert.ok(r.sidebar.right <= r.pane.left + 0.5, `${label}: sidebar overlaps the pane`);
  assert.ok(r.pane.bottom <= r.status.top + 0.5 && r.sidebar.bottom <= r.status.top + 0.5, `${label}: status bar overlapped`);
  if (r.composer) assert.ok(r.composer.bottom <= r.status.top + 0.5, `${label}: composer under the status bar`);
  assert.ok(r.smallest.size >= 12, `${label}: text smaller than 12px: ${JSON.stringify(r.smallest)}`);
  if (r.bodySize !== null) assert.ok(r.bodySize >= 14, `${label}: body text ${r.bodySize}px`);
  assert.equal(r.selfStyle, "ellipsis", `${label}: own name not ellipsised`);
  // The own fingerprint and the online/offline badge are never cut.
  for (const part of ["selfFingerprint", "netState"]) {
    const b = r[part];
    assert.ok(b && b.right - b.left > 20 && b.right <= w + 0.5, `${label}: ${part} cut or missing ${JSON.stringify(b)}`);
  }
  return r;
}

// ----------------------------------------------------------------------------- fixture

before(async () => {
  assert.ok(existsSync(APP_BIN), `app binary missing: ${APP_BIN} (run cargo build -p disasternet-app)`);
  await fx.startDriver("tauri-driver-keyboard");
});

after(() => fx.close());

/** A test that saves `FAILED-<slug>.png` if it fails while the app is up. */
const guiTest = (title, slug, fn) => fx.test(title, slug, fn);

// ------------------------------------------------------------------------------- tests

guiTest("keyboard only at 1366×768: name, rooms, send, panes, errors, mute, leave; readable at 1280×800", "keyboard", async () => {
  const dataDir = tempDir("dn-gui-keys-");
  // Long on purpose (at the 64-byte limit): it must be cut with an ellipsis, not overflow.
  const name = "Amara Nwosu-Lindqvist, field clinic coordinator, north sector";
  const driver = await launchApp(dataDir);
  await setSize(driver, 1366, 768);

  // First start: the name dialog has focus in its field; Tab stays inside the dialog.
  const dialog = await driver.wait(until.elementLocated(By.css("#name-dialog")), TIMEOUT);
  await driver.wait(until.elementIsVisible(dialog), TIMEOUT);
  await focusIs(driver, "#name-input", "the dialog focuses its field");
  await tabThrough(driver, ["#name-submit", "#name-input"]);
  await tabThrough(driver, ["#name-submit", "#name-input"], true);
  // Escape clears the field (the dialog stays: a name is required).
  await typeText(driver, "typo");
  await press(driver, Key.ESCAPE);
  assert.equal(await driver.findElement(By.css("#name-input")).getAttribute("value"), "");
  assert.ok(await dialog.isDisplayed(), "Escape does not close the required name dialog");
  await assertFocusRing(driver, "name field");
  await screenshot(driver, "keyboard-01-name-1366x768");
  await typeText(driver, name);
  await press(driver, Key.ENTER);
  await driver.wait(until.elementIsNotVisible(dialog), TIMEOUT);
  // No room yet: focus goes on to "Join or create a room".
  await focusIs(driver, "#room-input", "after the name dialog");

  // Join #medical: Enter in the room field; focus moves to the composer.
  await typeText(driver, "medical");
  await press(driver, Key.ENTER);
  await driver.wait(until.elementTextIs(driver.findElement(By.css("#room-title")), "#medical"), TIMEOUT);
  await focusIs(driver, "#composer", "after joining");

  // Send: type, Enter. The composer keeps focus and is emptied.
  const first = `Keyboard only: two stretchers to the school gate (${Date.now()})`;
  await typeText(driver, first);
  await press(driver, Key.ENTER);
  await driver.wait(
    until.elementLocated(By.xpath(`//li[contains(@class,"message")]//div[@class="body" and text()=${JSON.stringify(first)}]`)),
    TIMEOUT,
  );
  await focusIs(driver, "#composer", "after sending");
  assert.equal(await driver.findElement(By.css("#composer")).getAttribute("value"), "");
  // More messages (one long) so the history has to scroll.
  for (let i = 1; i <= 14; i++) {
    await typeText(driver, i === 7 ? `Update ${i}: ${"water, blankets and insulin needed at the shelter; ".repeat(6)}` : `Update ${i}: all quiet at post ${i}`);
    await press(driver, Key.ENTER);
    await eventually(`message ${i + 1}`, async () => (await driver.findElements(By.css("#message-list .message"))).length === i + 1);
  }

  // A second room; Ctrl+K goes to the room field from anywhere.
  const longRoom = "shelter-and-evacuation-coordination-north-district";
  await press(driver, Key.CONTROL, "k");
  await focusIs(driver, "#room-input", "Ctrl+K");
  await typeText(driver, longRoom);
  await press(driver, Key.ENTER);
  await driver.wait(until.elementTextIs(driver.findElement(By.css("#room-title")), `#${longRoom}`), TIMEOUT);
  await focusIs(driver, "#composer", "after joining the second room");

  // Alt+Up / Alt+Down switch rooms; focus stays in the composer.
  await press(driver, Key.ALT, Key.ARROW_UP);
  await driver.wait(until.elementTextIs(driver.findElement(By.css("#room-title")), "#medical"), TIMEOUT);
  await focusIs(driver, "#composer", "Alt+Up");
  await press(driver, Key.ALT, Key.ARROW_DOWN);
  await driver.wait(until.elementTextIs(driver.findElement(By.css("#room-title")), `#${longRoom}`), TIMEOUT);
  await press(driver, Key.ALT, Key.ARROW_DOWN);
  await driver.wait(until.elementTextIs(driver.findElement(By.css("#room-title")), "#medical"), TIMEOUT);
  await focusIs(driver, "#composer", "Alt+Down");

  // The whole tab order, from the room field: the private-room buttons, one stop per list (the
  // open room, with its Mute and Leave), the views, the relay field, the history, the composer.
  await press(driver, Key.CONTROL, "k");
  await focusIs(driver, "#room-input");
  await tabThrough(driver, [
    "#join-button",
    "#new-private-room",
    "#join-invite-button",
    ".room-select@medical",
    ".mute-button@medical",
    ".leave-button@medical",
    "#network-button",
    "#identity-button",
    "#relay-input",
    "#relay-add",
    "#message-scroller",
    "#composer",
  ]);
  await tabThrough(
    driver,
    ["#message-scroller", "#relay-add", "#relay-input", "#identity-button", "#network-button", ".leave-button@medical"],
    true,
  );
  await press(driver, Key.SHIFT, Key.TAB);
  await press(driver, Key.SHIFT, Key.TAB);
  await focusIs(driver, ".room-select@medical");
  await assertFocusRing(driver, "room in the sidebar");

  // Arrow keys move between rooms; Enter opens one (and goes to the composer).
  await press(driver, Key.ARROW_DOWN);
  await focusIs(driver, `.room-select@${longRoom}`, "ArrowDown in the room list");
  await screenshot(driver, "keyboard-02-room-list-focus-1366x768");
  await press(driver, Key.ARROW_UP);
  await focusIs(driver, ".room-select@medical", "ArrowUp in the room list");
  await press(driver, Key.ENTER);
  await focusIs(driver, "#composer", "Enter on a room");

  // The history scrolls with the keyboard (the page does not).
  await press(driver, Key.SHIFT, Key.TAB);
  await focusIs(driver, "#message-scroller");
  await assertFocusRing(driver, "message history");
  const scroller = await driver.findElement(By.css("#message-scroller"));
  const bottom = await driver.executeScript("return arguments[0].scrollTop", scroller);
  await press(driver, Key.PAGE_UP);
  // (Keyboard scrolling is animated: wait for it to end before the next key.)
  let lastTop = bottom;
  await eventually("the history to scroll up with Page Up", async () => {
    const top = await driver.executeScript("return arguments[0].scrollTop", scroller);
    const settled = top < bottom && top === lastTop;
    lastTop = top;
    return settled;
  });
  await press(driver, Key.END);
  let seenScroll;
  await eventually(
    () => `End to scroll the history to the newest message (scrollTop, scrollHeight, clientHeight, focus: ${seenScroll})`,
    async () => {
      seenScroll = await driver.executeScript(
        "const s = arguments[0]; return [s.scrollTop, s.scrollHeight, s.clientHeight, document.activeElement.id];",
        scroller,
      );
      return seenScroll[1] - seenScroll[0] - seenScroll[2] < 4;
    },
  );
  await press(driver, Key.TAB);
  await focusIs(driver, "#composer");

  // Network view: Enter on the entry, focus on the pane heading; Escape comes back.
  await tabThrough(driver, ["#message-scroller", "#relay-add", "#relay-input", "#identity-button", "#network-button"], true);
  await press(driver, Key.ENTER);
  await driver.wait(until.elementIsVisible(driver.findElement(By.css("#network-view"))), TIMEOUT);
  await focusIs(driver, "#network-title", "Network opened");
  await screenshot(driver, "keyboard-03-network-1366x768");
  await press(driver, Key.ESCAPE);
  await driver.wait(until.elementIsVisible(driver.findElement(By.css("#room-view"))), TIMEOUT);
  await focusIs(driver, "#composer", "Escape from the network view");
  // Back in the room, the history is where it was (at the newest message), not at the top.
  assert.ok(
    await driver.executeScript("const s = arguments[0]; return s.scrollHeight - s.scrollTop - s.clientHeight < 4;", scroller),
    "the room history kept its scroll position",
  );

  // Identity & export: Space on the entry, heading focused, Tab goes on into the pane.
  await tabThrough(driver, ["#message-scroller", "#relay-add", "#relay-input", "#identity-button"], true);
  await press(driver, Key.SPACE);
  await driver.wait(until.elementIsVisible(driver.findElement(By.css("#identity-view"))), TIMEOUT);
  await focusIs(driver, "#identity-title", "Identity & export opened");
  await press(driver, Key.TAB);
  const inPane = await driver.executeScript("return document.querySelector('#identity-view').contains(document.activeElement)");
  assert.ok(inPane, `Tab from the identity heading leaves the pane (focus: ${await focused(driver)})`);
  await assertFocusRing(driver, "first control of the identity pane");
  await screenshot(driver, "keyboard-04-identity-1366x768");
  await press(driver, Key.ESCAPE);
  await driver.wait(until.elementIsVisible(driver.findElement(By.css("#room-view"))), TIMEOUT);
  await focusIs(driver, "#composer", "Escape from the identity pane");

  // An error: it shows in the banner, Shift+Tab from the room field reaches its dismiss button,
  // Enter dismisses it and focus goes back to the room field.
  await press(driver, Key.CONTROL, "k");
  await typeText(driver, "no/slashes");
  await press(driver, Key.ENTER);
  await driver.wait(until.elementLocated(By.css('#error-banner .error[data-code="invalid_input"]')), TIMEOUT);
  await focusIs(driver, "#room-input", "an error does not take focus");
  await press(driver, Key.SHIFT, Key.TAB);
  await focusIs(driver, ".error-dismiss@error", "Shift+Tab to the banner");
  await assertFocusRing(driver, "dismiss button");
  await screenshot(driver, "keyboard-05-error-focus-1366x768");
  await press(driver, Key.ENTER);
  await driver.wait(until.elementIsNotVisible(driver.findElement(By.css("#error-banner"))), TIMEOUT);
  await focusIs(driver, "#room-input", "after dismissing the last error");
  await press(driver, Key.ESCAPE); // clears the field
  assert.equal(await driver.findElement(By.css("#room-input")).getAttribute("value"), "");

  // Mute #medical and leave the second room, from the keyboard.
  await tabThrough(driver, ["#join-button", "#new-private-room", "#join-invite-button", ".room-select@medical", ".mute-button@medical"]);
  // (Muted rooms live in the web view's storage, shared by every data dir: toggle relative to
  // what a previous run may have left, and toggle back at the end.)
  const mutedNow = async () =>
    (await driver.findElement(By.css('.room[data-room="medical"]')).getAttribute("data-muted")) === "true";
  const wasMuted = await mutedNow();
  await press(driver, Key.ENTER);
  await eventually("Enter to toggle Mute", async () => (await mutedNow()) !== wasMuted);
  await focusIs(driver, ".mute-button@medical", "focus stays on the Mute button");
  assert.equal(
    await driver.findElement(By.css('.room[data-room="medical"] .mute-button')).getAttribute("aria-pressed"),
    String(!wasMuted),
  );
  await press(driver, Key.SPACE);
  await eventually("Space to toggle Mute back", async () => (await mutedNow()) === wasMuted);
  await focusIs(driver, ".mute-button@medical");
  await press(driver, Key.SHIFT, Key.TAB);
  await press(driver, Key.ARROW_DOWN);
  await focusIs(driver, `.room-select@${longRoom}`);
  await tabThrough(driver, [`.mute-button@${longRoom}`, `.leave-button@${longRoom}`]);
  await press(driver, Key.ENTER);
  await eventually("the empty room to leave the list", async () =>
    (await driver.findElements(By.css(`.room[data-room="${longRoom}"]`))).length === 0,
  );
  // Its row is gone: focus goes to the nearest room, never to its "Leave".
  await focusIs(driver, ".room-select@medical", "after leaving");
  await press(driver, Key.ENTER);
  await focusIs(driver, "#composer");

  // Readable and complete at the three sizes (room, network and identity views).
  for (const [w, h] of [[1366, 768], [1280, 800], [1024, 700]]) {
    await setSize(driver, w, h);
    // Focus on a sidebar entry so its ring shows in the screenshot (back past the relay form).
    for (let i = 0; i < 4; i++) await press(driver, Key.SHIFT, Key.TAB);
    await focusIs(driver, "#identity-button");
    const r = await checkLayout(driver, `room view ${w}×${h}`);
    assert.ok(r.scroller[0] > r.scroller[1], `${w}×${h}: the message list does not scroll`);
    // Resized while showing the newest message: it still shows it.
    await eventually(`${w}×${h}: the history to stay at the newest message`, () =>
      driver.executeScript("const s = arguments[0]; return s.scrollHeight - s.scrollTop - s.clientHeight < 4;", scroller),
    );
    await screenshot(driver, `keyboard-06-room-${w}x${h}`);
    await press(driver, Key.SHIFT, Key.TAB);
    await press(driver, Key.ENTER);
    await focusIs(driver, "#network-title");
    await checkLayout(driver, `network view ${w}×${h}`);
    await screenshot(driver, `keyboard-07-network-${w}x${h}`);
    await press(driver, Key.ESCAPE);
    await focusIs(driver, "#composer");
    await tabThrough(driver, ["#message-scroller", "#relay-add", "#relay-input", "#identity-button"], true);
    await press(driver, Key.ENTER);
    await focusIs(driver, "#identity-title");
    await checkLayout(driver, `identity view ${w}×${h}`);
    await screenshot(driver, `keyboard-08-identity-${w}x${h}`);
    await press(driver, Key.ESCAPE);
    await focusIs(driver, "#composer");
  }

  const errors = await driver.findElements(By.css("#error-banner .error"));
  assert.deepEqual(await Promise.all(errors.map((e) => e.getText())), [], "the error banner shows errors");
});
