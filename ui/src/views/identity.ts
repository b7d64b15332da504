// The "Identity & export" pane: back up the identity key, export messages (JSONL, CSV, HTML).

import type { ExportFormat } from "../bindings/ExportFormat";
import { h, setChildren } from "../lib/dom";
import { EXPORT_FORMATS, type AppState, type Store } from "../store";

/** Shown above the backup button. */
export const BACKUP_WARNING =
  "The backup file IS your identity: anyone who holds it can sign messages as you. " +
  "Keep it offline (a USB stick in your pocket), never send it over a chat, and never run two " +
  "nodes with the same identity at once. To restore it on a new device, stop the app and run " +
  "`disasternet identity restore FILE`.";

const ALL_ROOMS = "";

export function mountIdentity(root: HTMLElement, store: Store): () => void {
  const header = h(
    "header",
    { class: "room-header" },
    h("h1", { id: "identity-title" }, "Identity & export"),
    h("p", { id: "identity-subtitle", class: "muted" }),
  );
  const subtitle = header.querySelector("p") as HTMLParagraphElement;

  const backupButton = h("button", { id: "backup-identity", type: "button", class: "primary" }, "Back up identity…");
  backupButton.addEventListener("click", () => void store.backupIdentity());
  const backup = h(
    "section",
    { class: "panel", "aria-labelledby": "backup-title" },
    h("h2", { id: "backup-title" }, "Identity backup"),
    h("p", { id: "backup-warning", class: "warning", role: "note" }, BACKUP_WARNING),
    backupButton,
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
  const result = h("p", { id: "transfer-result", role: "status" });
  root.append(header, h("div", { class: "identity-pane" }, backup, exporter, result));

  const render = (state: AppState): void => {
    const id = state.identity;
    subtitle.textContent = id ? `${id.name ?? "(no name)"} · ${id.fingerprint} · ${id.id}` : "";
    const chosen = roomSelect.value;
    setChildren(
      roomSelect,
      h("option", { value: ALL_ROOMS }, "All rooms"),
      ...state.rooms.map((r) => h("option", { value: r.name }, `#${r.name}`)),
    );
    roomSelect.value = [...roomSelect.options].some((o) => o.value === chosen) ? chosen : ALL_ROOMS;
    backupButton.disabled = state.transfer.busy;
    exportButton.disabled = state.transfer.busy;
    result.textContent = state.transfer.done ?? "";
  };

  render(store.state);
  return store.subscribe((state, previous) => {
    if (state.identity !== previous.identity || state.rooms !== previous.rooms || state.transfer !== previous.transfer) {
      render(state);
    }
  });
}
