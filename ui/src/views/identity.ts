// The "Identity & export" pane: back up the identity key, export messages (JSONL, CSV, HTML),
// write and import bundles for another camp.

import { visibleText } from "../lib/text";
import type { ExportFormat } from "../bindings/ExportFormat";
import { MAX_NAME_BYTES } from "../bindings/limits";
import { h, setChildren } from "../lib/dom";
import { roomSpoken } from "../lib/invite";
import { EXPORT_FORMATS, sinceMsOf, type AppState, type ExportProgress, type Store } from "../store";
import { mountLockPanel } from "./lock";

/** Shown above the backup button. */
export const BACKUP_WARNING =
  "The backup file IS your identity: anyone who holds it can sign messages as you. " +
  "Keep it offline (a USB stick in your pocket), never send it over a chat, and never run two " +
  "nodes with the same identity at once. Restore it below (or with " +
  "`disasternet identity restore FILE`).";

/** Shown above the restore controls. */
export const RESTORE_WARNING =
  "Restoring replaces this device's identity with the one in the backup file: messages you send " +
  "from now on are signed with that key, and peers see you as that node. Your current key is " +
  "kept in the data folder (identity.key.replaced-…), never deleted. Only restore a backup of " +
  "your own identity, and make sure no other device runs with it.";

/** "Exporting 1,200 of 100,000 messages…" */
export function progressText(done: number, total: number): string {
  const n = (x: number): string => x.toLocaleString("en-US");
  return total > 0 ? `Exporting ${n(done)} of ${n(total)} messages…` : "Exporting…";
}

/** The progress line of an export, or of a bundle being written or imported. */
export function transferProgressText(p: ExportProgress): string {
  const n = (x: number): string => x.toLocaleString("en-US");
  switch (p.kind) {
    case "bundle_export":
      return p.total > 0 ? `Writing the bundle: ${n(p.done)} of ${n(p.total)} messages…` : "Writing the bundle…";
    case "bundle_import": {
      const read = `${n(p.records ?? 0)} ${p.records === 1 ? "message" : "messages"} checked`;
      const pct = p.total > 0 ? ` (${Math.floor((100 * Math.min(p.done, p.total)) / p.total)}% of the file)` : "";
      return `Importing the bundle: ${read}${pct}…`;
    }
    default:
      return progressText(p.done, p.total);
  }
}

/** What the bundle panel says about bundles. */
export const BUNDLE_HELP =
  "No link to another camp? Carry a bundle on a USB stick. It holds every message as its " +
  "author signed it (direct messages and private rooms stay encrypted). On the other laptop, " +
  "every message is checked, duplicates are skipped, and the rest spreads to that camp's network.";

const ALL_ROOMS = "";

export function mountIdentity(root: HTMLElement, store: Store): () => void {
  const header = h(
    "header",
    { class: "room-header" },
    h("h1", { id: "identity-title" }, "Identity & export"),
    h("p", { id: "identity-subtitle", class: "muted" }),
  );
  const subtitle = header.querySelector("p") as HTMLParagraphElement;

  const nameInput = h("input", {
    id: "identity-name",
    type: "text",
    maxlength: String(MAX_NAME_BYTES),
    autocomplete: "off",
    "aria-label": "Display name",
  });
  const nameButton = h("button", { id: "save-name", type: "submit" }, "Save name");
  const nameForm = h(
    "form",
    { class: "panel", "aria-labelledby": "name-title" },
    h("h2", { id: "name-title" }, "Display name"),
    h("p", { class: "muted" }, "Shown to others beside your fingerprint. Your id never changes with it."),
    nameInput,
    " ",
    nameButton,
  );
  nameForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void store.setName(nameInput.value);
  });

  const backupButton = h("button", { id: "backup-identity", type: "button", class: "primary" }, "Back up identity…");
  backupButton.addEventListener("click", () => void store.backupIdentity());
  const backup = h(
    "section",
    { class: "panel", "aria-labelledby": "backup-title" },
    h("h2", { id: "backup-title" }, "Identity backup"),
    h("p", { id: "backup-warning", class: "warning", role: "note" }, BACKUP_WARNING),
    backupButton,
  );

  const restoreConfirm = h("input", { id: "restore-confirm", type: "checkbox" });
  const restoreButton = h("button", { id: "restore-identity", type: "button", class: "danger" }, "Restore from backup…");
  restoreConfirm.addEventListener("change", () => render(store.state));
  restoreButton.addEventListener("click", () => {
    if (!restoreConfirm.checked) return;
    restoreConfirm.checked = false;
    void store.restoreIdentity();
  });
  const restore = h(
    "section",
    { class: "panel", "aria-labelledby": "restore-title" },
    h("h2", { id: "restore-title" }, "Restore identity"),
    h("p", { id: "restore-warning", class: "warning", role: "note" }, RESTORE_WARNING),
    h("label", { class: "check" }, restoreConfirm, " I understand: replace this device's identity"),
    " ",
    restoreButton,
  );

  const roomSelect = h("select", { id: "export-room", "aria-label": "Room to export" });
  const formatSelect = h("select", { id: "export-format", "aria-label": "Export format" });
  for (const [value, { label }] of Object.entries(EXPORT_FORMATS)) {
    formatSelect.append(h("option", { value }, label));
  }
  const exportButton = h("button", { id: "export-messages", type: "button", class: "primary" }, "Export…");
  exportButton.addEventListener("click", () => {
    const room = roomSelect.value === ALL_ROOMS ? null : roomSelect.value;
    void store.exportMessages(room, formatSelect.value as ExportFormat);
  });
  const exporter = h(
    "section",
    { class: "panel", "aria-labelledby": "export-title" },
    h("h2", { id: "export-title" }, "Export messages"),
    h(
      "p",
      { class: "muted" },
      "JSON Lines keeps every signature: anyone can check it with `disasternet verify FILE`. " +
        "CSV opens in a spreadsheet; HTML is a report to print or read.",
    ),
    h("label", {}, "Room ", roomSelect),
    " ",
    h("label", {}, "Format ", formatSelect),
    " ",
    exportButton,
  );
  const progressBar = h("progress", { id: "export-progress", max: "1", "aria-label": "Export progress" });
  const progressLabel = h("span", { id: "export-progress-text" });
  const progress = h("p", { class: "export-progress", role: "status" }, progressBar, " ", progressLabel);
  exporter.append(progress);
  const bundleRoom = h("select", { id: "bundle-room", "aria-label": "Room to put in the bundle" });
  const bundleExport = h("button", { id: "export-bundle", type: "button", class: "primary" }, "Export bundle…");
  const bundleSince = h("input", { id: "bundle-since", type: "date", "aria-label": "Only messages since (UTC date)" });
  bundleExport.addEventListener("click", () => {
    void store.exportBundle(bundleRoom.value === ALL_ROOMS ? null : bundleRoom.value, sinceMsOf(bundleSince.value));
  });
  const bundleImport = h("button", { id: "import-bundle", type: "button" }, "Import bundle…");
  bundleImport.addEventListener("click", () => void store.importBundle());
  const bundles = h(
    "section",
    { class: "panel", "aria-labelledby": "bundle-title" },
    h("h2", { id: "bundle-title" }, "Carry messages to another camp"),
    h("p", { class: "muted" }, BUNDLE_HELP),
    h("label", {}, "Room ", bundleRoom),
    " ",
    h("label", {}, "Since (optional) ", bundleSince),
    " ",
    bundleExport,
    " ",
    bundleImport,
  );
  const result = h("p", { id: "transfer-result", role: "status" });
  // Exports come first (the common task; its progress stays in view), the key's care after.
  const blockedList = h("ul", { id: "blocked-list", class: "blocked-list" });
  const blocked = h(
    "section",
    { class: "panel", "aria-labelledby": "blocked-title" },
    h("h2", { id: "blocked-title" }, "Blocked authors"),
    h(
      "p",
      { class: "muted" },
      "Their messages are hidden on this laptop and it stops passing them on. Others still see them.",
    ),
    blockedList,
  );
  blockedList.addEventListener("click", (e) => {
    const button = e.target instanceof HTMLElement ? e.target.closest<HTMLButtonElement>("button.unblock") : null;
    if (button?.dataset.author) void store.setBlocked(button.dataset.author, false);
  });

  const lock = mountLockPanel(store);
  root.append(
    header,
    h("div", { class: "identity-pane" }, result, nameForm, exporter, bundles, lock.panel, backup, restore, blocked),
  );

  let shownName: string | null | undefined;

  const render = (state: AppState): void => {
    lock.render(state);
    const id = state.identity;
    subtitle.textContent = id ? `${id.name ?? "(no name)"} · ${id.fingerprint} · ${id.id}` : "";
    const chosen = roomSelect.value;
    setChildren(
      roomSelect,
      h("option", { value: ALL_ROOMS }, "All rooms"),
      ...state.rooms.map((r) => h("option", { value: r.name }, roomSpoken(r))),
    );
    roomSelect.value = [...roomSelect.options].some((o) => o.value === chosen) ? chosen : ALL_ROOMS;
    const chosenBundle = bundleRoom.value;
    setChildren(
      bundleRoom,
      h("option", { value: ALL_ROOMS }, "All rooms"),
      ...state.rooms.map((r) => h("option", { value: r.name }, roomSpoken(r))),
    );
    bundleRoom.value = [...bundleRoom.options].some((o) => o.value === chosenBundle) ? chosenBundle : ALL_ROOMS;
    // Keep what the user is typing; follow changes made elsewhere.
    const name = id?.name ?? "";
    if (shownName !== name) {
      nameInput.value = name;
      shownName = name;
    }
    nameButton.disabled = state.pending.name;
    const busy = state.transfer.busy;
    backupButton.disabled = busy;
    exportButton.disabled = busy;
    bundleExport.disabled = busy;
    bundleImport.disabled = busy;
    restoreConfirm.disabled = busy;
    restoreButton.disabled = busy || !restoreConfirm.checked;
    const p = state.transfer.progress;
    progress.hidden = p === null;
    // The bar shows in the panel whose action runs.
    const holder = p?.kind === undefined ? exporter : bundles;
    if (progress.parentElement !== holder) holder.append(progress);
    if (p) {
      progressBar.max = Math.max(p.total, 1);
      progressBar.value = Math.min(p.done, progressBar.max);
      progressLabel.textContent = transferProgressText(p);
    }
    result.textContent = state.transfer.done ?? "";
    setChildren(
      blockedList,
      ...(state.blocked.length === 0
        ? [h("li", { class: "muted" }, "Nobody is blocked.")]
        : state.blocked.map((b) =>
            h(
              "li",
              { class: "blocked", "data-author": b.id },
              h("span", { class: "author" }, visibleText(b.name ?? "") || "(unknown)"),
              " ",
              h("code", { class: "fingerprint", title: b.id }, b.fingerprint),
              " ",
              h("button", { type: "button", class: "unblock", "data-author": b.id }, "Unblock"),
            ),
          )),
    );
  };

  render(store.state);
  return store.subscribe((state, previous) => {
    if (
      state.identity !== previous.identity ||
      state.rooms !== previous.rooms ||
      state.transfer !== previous.transfer ||
      state.pending !== previous.pending ||
      state.blocked !== previous.blocked ||
      state.lock !== previous.lock
    ) {
      render(state);
    }
  });
}
