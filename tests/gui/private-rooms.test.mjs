// GUI end-to-end test of a private room between two real apps in two network namespaces (the
// lab of netns-lab.mjs; the apps find each other by mDNS). A creates the private room
// "medical" and opens its invite dialog; the test reads the code from the field (and sees the
// QR image); B first types the code with one character changed (the typo error shows in B's
// dialog, which keeps the text), then joins with the right code; both chat; A opens the members
// panel and removes B; what A writes after that never shows at B, who got the removal notice
// (and whose app says it was removed and no longer offers to write there).
//
//   cd tests/gui && xvfb-run -a -s "-screen 0 1280x800x24" node --test private-rooms.test.mjs
//
// Needs root (network namespaces) and a display. Environment: APP_BIN, CLI_BIN, TAURI_DRIVER,
// GUI_OUT_DIR (see lib.mjs), DN_LAB_BIN (default <target>/debug/dn-lab), KEEP_DATA_DIR.
//
// Outputs in GUI_OUT_DIR: private-rooms-*.png (each step, each app), private-rooms-n1.log /
// -n2.log (tauri-driver, WebKitWebDriver and app logs), private-rooms-lab.log, and
// FAILED-private-rooms-*.png when a step fails.

import assert from "node:assert/strict";
import { By, Key, until } from "selenium-webdriver";
import { assertNoErrors, elementWithText, eventually, messageWithBody, setName, sleep, TIMEOUT } from "./lib.mjs";
import { NetnsSuite } from "./netns-lab.mjs";

const TITLE = "medical";
/** Gossip between two directly connected apps takes well under a second; allow for slow CI. */
const GOSSIP_TIMEOUT = 40_000;
/** After the removal: how long B is given to (not) show what A wrote. */
const AFTER_REMOVAL_WAIT = 8_000;

const suite = new NetnsSuite("private-rooms", [
  ["a", "Amara (medic)"],
  ["b", "Ben (logistics)"],
]);
const step = (title, slug, fn) => suite.step(title, slug, fn);

const stamp = Date.now();
const bodies = {
  fromA: `Patient in bed 4 needs insulin before 18:00 (${stamp})`,
  fromB: `Insulin on its way from the depot (${stamp})`,
  afterRemoval: `Written after Ben was removed: only remaining members read this (${stamp})`,
};
let code; // the invite code A's dialog shows
let roomId; // the private room's id (p. + 32 hex), the key of its sidebar row

/** Sends `body` from the open room of `app` and returns the message's element. */
async function send(app, body) {
  const composer = await app.driver.findElement(By.css("#composer"));
  await app.driver.wait(until.elementIsEnabled(composer), TIMEOUT);
  await composer.sendKeys(body, Key.ENTER);
  return messageWithBody(app.driver, body);
}

/** Waits until a dialog (by id) is shown or hidden. */
async function dialogShown(app, id, shown) {
  const el = await app.driver.findElement(By.css(`#${id}`));
  await app.driver.wait(shown ? until.elementIsVisible(el) : until.elementIsNotVisible(el), TIMEOUT, `${app.key}: #${id} ${shown ? "shown" : "hidden"}`);
  return el;
}

/** `text` with one character of its payload changed to another character the code uses. */
function mistype(text) {
  const chars = [...text];
  const alphabet = [...new Set(chars.slice(5).filter((c) => /[0-9A-Za-z]/.test(c)))];
  // A character in the middle of the payload (after the "DNI1-" prefix), not a separator.
  let i = Math.floor(chars.length / 2);
  while (!/[0-9A-Za-z]/.test(chars[i])) i += 1;
  const other = alphabet.find((c) => c !== chars[i]);
  assert.ok(other, `no other character to mistype ${JSON.stringify(text)} with`);
  chars[i] = other;
  return chars.join("");
}

step("first start in two namespaces: the apps find each other, names set", "start", async () => {
  const { a, b } = suite.apps;
  for (const app of [a, b]) {
    await app.driver.wait(until.elementIsVisible(await app.driver.wait(until.elementLocated(By.css("#name-dialog")), TIMEOUT)), TIMEOUT);
    const subtitle = await app.driver.findElement(By.css("#identity-subtitle")).getAttribute("textContent");
    app.id = subtitle.match(/\b[0-9a-f]{64}\b/)?.[0];
    assert.ok(app.id, `no node id in ${app.key}'s identity pane: ${JSON.stringify(subtitle)}`);
  }
  for (const app of [a, b]) await setName(app.driver, app.name);
  for (const app of [a, b]) {
    await app.driver.wait(until.elementTextIs(app.driver.findElement(By.css("#peer-count")), "1 peer connected"), GOSSIP_TIMEOUT);
  }
  await a.shot("01-start");
});

step("A creates the private room \"medical\": the sidebar marks it, its invite dialog shows the code and the QR image", "create", async () => {
  const { a } = suite.apps;
  const d = a.driver;
  await d.findElement(By.css("#new-private-room")).click();
  await dialogShown(a, "new-private-dialog", true);
  await d.findElement(By.css("#private-room-name")).sendKeys(TITLE);
  await a.shot("02-new-private-room");
  await d.findElement(By.css("#create-private-room")).click();

  await dialogShown(a, "invite-dialog", true);
  const field = await d.findElement(By.css("#invite-code"));
  code = await eventually("the invite code in A's dialog", async () => {
    const v = await field.getAttribute("value");
    return /^DNI1-/.test(v) ? v : null;
  });
  console.log(`invite code: ${code}`);
  assert.equal(await field.getAttribute("readonly"), "true", "the code field is read-only");
  const qr = await d.findElement(By.css("#invite-qr svg"));
  assert.ok(await qr.isDisplayed(), "the QR image is not shown");
  assert.ok((await qr.findElements(By.css("path, rect"))).length > 0, "the QR image draws nothing");
  assert.match(await d.findElement(By.css("#invite-warning")).getText(), /^Anyone with this code can read and write this room\./);
  // Copy: to the clipboard, or (no clipboard in this webview) selected for Ctrl+C.
  await d.findElement(By.css("#copy-invite")).click();
  const status = await d.findElement(By.css("#invite-copy-status"));
  console.log(`copy: ${await eventually("the Copy button to say what it did", () => status.getAttribute("textContent"))}`);
  await sleep(300);
  await a.shot("03-invite-dialog");

  await d.findElement(By.css("#close-invite")).click();
  await dialogShown(a, "invite-dialog", false);
  const row = await d.findElement(By.css('.room.selected[data-private="true"]'));
  roomId = await row.getAttribute("data-room");
  assert.match(roomId, /^p\.[0-9a-f]{32}$/);
  assert.equal(await row.findElement(By.css(".room-name")).getAttribute("textContent"), TITLE);
  assert.ok(await row.findElement(By.css(".room-lock svg")).isDisplayed(), "no lock mark on the private room");
  assert.match(await d.findElement(By.css("#room-subtitle")).getText(), /^Private room · end-to-end encrypted, members only/);
  await assertNoErrors(d);
  await a.shot("04-private-room");
});

step("B types the code with one character wrong: the typo error shows in the dialog, which keeps the text", "typo", async () => {
  const { b } = suite.apps;
  const d = b.driver;
  const typo = mistype(code);
  assert.notEqual(typo, code);
  await d.findElement(By.css("#join-invite-button")).click();
  await dialogShown(b, "join-invite-dialog", true);
  const input = await d.findElement(By.css("#invite-input"));
  await input.sendKeys(typo);
  await d.findElement(By.css("#join-invite")).click();
  const error = await d.wait(until.elementLocated(By.css("#invite-error")), TIMEOUT);
  await d.wait(until.elementIsVisible(error), TIMEOUT, "B's dialog to show the error");
  assert.match(await error.getText(), /typo/, "the error does not say it is a typo");
  assert.equal(await input.getAttribute("value"), typo, "the dialog lost the mistyped text");
  assert.equal(await input.getAttribute("aria-invalid"), "true");
  await dialogShown(b, "join-invite-dialog", true);
  assert.equal((await d.findElements(By.css('.room[data-private="true"]'))).length, 0, "B joined with a wrong code");
  await sleep(300);
  await b.shot("05-typo");
});

step("B corrects it and joins through the dialog: the room shows as private \"medical\"", "join", async () => {
  const { b } = suite.apps;
  const d = b.driver;
  const input = await d.findElement(By.css("#invite-input"));
  await input.clear();
  await input.sendKeys(code);
  await d.findElement(By.css("#join-invite")).click();
  await dialogShown(b, "join-invite-dialog", false);
  const row = await d.wait(until.elementLocated(By.css(`.room[data-room="${roomId}"]`)), TIMEOUT);
  assert.equal(await row.getAttribute("data-private"), "true");
  assert.equal(await row.findElement(By.css(".room-name")).getAttribute("textContent"), TITLE);
  await d.wait(until.elementTextContains(d.findElement(By.css("#room-title")), TITLE), TIMEOUT);
  await assertNoErrors(d);
  await b.shot("06-joined");
});

step("both chat in the private room: messages arrive both ways", "chat", async () => {
  const { a, b } = suite.apps;
  await send(a, bodies.fromA);
  const atB = await messageWithBody(b.driver, bodies.fromA, GOSSIP_TIMEOUT);
  assert.equal(await atB.findElement(By.css(".author")).getText(), a.name);
  await send(b, bodies.fromB);
  const atA = await messageWithBody(a.driver, bodies.fromB, GOSSIP_TIMEOUT);
  assert.equal(await atA.findElement(By.css(".author")).getText(), b.name);
  for (const app of [a, b]) await assertNoErrors(app.driver);
  await sleep(300);
  await a.shot("07-chat");
  await b.shot("07-chat");
});

step("A opens the members panel and removes B (after confirming)", "remove", async () => {
  const { a, b } = suite.apps;
  const d = a.driver;
  await d.findElement(By.css("#members-button")).click();
  const panel = await dialogShown(a, "members-panel", true);
  // (A row is drawn again when what it shows changes: located afresh for each action.)
  const rowCss = `#member-list [data-member="${b.id}"]`;
  await d.wait(until.elementLocated(By.css(rowCss)), GOSSIP_TIMEOUT, "B in A's member list");
  const me = await panel.findElement(By.css(`[data-member="${a.id}"]`));
  assert.match(await me.getText(), /admin/);
  await a.shot("08-members");
  await d.findElement(By.css(`${rowCss} .remove-member`)).click();
  const confirm = await d.findElement(By.css(`${rowCss} .remove-confirm`));
  assert.match(await confirm.getText(), /^Remove Ben \(logistics\)\? They keep what they already have but will not read anything new\./);
  await a.shot("09-confirm-removal");
  await d.findElement(By.css(`${rowCss} .remove-yes`)).click();
  await eventually("B to leave A's member list", async () =>
    (await d.findElements(By.css(`#member-list [data-member="${b.id}"]`))).length === 0,
  );
  await elementWithText(d, '[data-testid="notice"][data-kind="remove"]', "removed");
  await assertNoErrors(d);
  await a.shot("10-removed");
});

step("A writes after the removal: B gets the removal notice but never shows the new message", "after-removal", async () => {
  const { a, b } = suite.apps;
  const notice = await elementWithText(b.driver, '[data-testid="notice"][data-kind="remove"]', "removed", GOSSIP_TIMEOUT);
  console.log(`B's removal notice: ${await notice.getAttribute("textContent")}`);
  // B's app says it and no longer offers to write there (nobody would read it).
  const removed = await b.driver.findElement(By.css("#room-removed"));
  await b.driver.wait(until.elementIsVisible(removed), TIMEOUT, "B's header to say it was removed");
  assert.match(await removed.getText(), /removed you from this room/);
  assert.equal(await b.driver.findElement(By.css("#composer")).isEnabled(), false, "B can still write in the room");
  const sent = await send(a, bodies.afterRemoval);
  // B may still carry it (it cannot read it): wait until B holds it, or some seconds.
  const held = await eventually(
    "B to hold A's message",
    async () => (await sent.findElement(By.css('[data-testid="delivery"]')).getText()) === "held by 1",
    AFTER_REMOVAL_WAIT,
  ).catch(() => false);
  console.log(held ? "B holds the message written after the removal" : `B did not confirm holding it within ${AFTER_REMOVAL_WAIT} ms`);
  await sleep(AFTER_REMOVAL_WAIT / 2);
  const xpath = `//li[contains(@class,"message")][.//div[@class="body" and text()=${JSON.stringify(bodies.afterRemoval)}]]`;
  assert.equal((await b.driver.findElements(By.xpath(xpath))).length, 0, "the removed member shows a message written after the removal");
  const html = await b.driver.executeScript("return document.body.innerText");
  assert.ok(!html.includes(bodies.afterRemoval), "the removed member's window contains the text written after the removal");
  // What both wrote before is still there for B.
  await messageWithBody(b.driver, bodies.fromA);
  for (const app of [a, b]) await assertNoErrors(app.driver);
  await sleep(300);
  await a.shot("11-after-removal");
  await b.shot("11-after-removal");
});
