// The "Identity & export" pane: identity backup and exports through the (mocked) native save
// dialog.

import { clearMocks } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ENGINE_EVENT, ENGINE_RESTARTED_EVENT, tauriBackend } from "../src/ipc";
import { BACKUP_FILE_NAME, bundleFileName, bundleImportSummary, exportFileName, sinceMsOf, Store } from "../src/store";
import { mountApp } from "../src/views/app";
import { BACKUP_WARNING, progressText, RESTORE_WARNING, transferProgressText } from "../src/views/identity";
import { FakeEngine, SELF_ID, settle } from "./fakeEngine";

let engine: FakeEngine;
let store: Store;

beforeEach(async () => {
  engine = new FakeEngine();
  engine.identity.name = "Amara";
  engine.joined.add("medical");
  engine.message("medical", "hello");
  engine.message("water", "pump 3 ok", "be".repeat(32), "Ben");
  engine.install();
  store = new Store(tauriBackend);
  await store.start();
});

afterEach(() => {
  store.stop();
  clearMocks();
});

const dialogCalls = (): Record<string, unknown>[] =>
  engine.calls.filter((c) => c.cmd === "plugin:dialog|save").map((c) => c.args);

/** Mounts the app on the identity pane. */
const mount = (): { q: <T extends Element>(sel: string) => T; done: () => void } => {
  const root = document.createElement("div");
  document.body.append(root);
  const unmount = mountApp(root, store);
  store.showIdentity();
  return {
    q: <T extends Element>(sel: string): T => {
      const el = root.querySelector<T>(sel);
      if (!el) throw new Error(`${sel} not found`);
      return el;
    },
    done: () => {
      unmount();
      root.remove();
    },
  };
};

describe("identity backup", () => {
  it("asks where to save, then writes the backup there", async () => {
    const path = await store.backupIdentity();
    expect(path).toBe("/home/ana/backup.key");
    expect(dialogCalls()).toEqual([
      {
        options: {
          defaultPath: BACKUP_FILE_NAME,
          filters: [{ name: "DisasterNet identity backup", extensions: ["key"] }],
        },
      },
    ]);
    expect(engine.calls.find((c) => c.cmd === "backup_identity")?.args).toEqual({
      path: "/home/ana/backup.key",
    });
    expect(store.state.transfer).toEqual({
      busy: false,
      done: "Identity backed up to /home/ana/backup.key. Keep this file safe: it IS your identity.",
      progress: null,
    });
    expect(store.state.errors).toEqual([]);
  });

  it("does nothing when the dialog is cancelled", async () => {
    engine.savePath = null;
    expect(await store.backupIdentity()).toBeNull();
    expect(engine.calls.some((c) => c.cmd === "backup_identity")).toBe(false);
    expect(store.state.transfer).toEqual({ busy: false, done: null, progress: null });
    expect(store.state.errors).toEqual([]);
  });

  it("reports an engine error and stays usable", async () => {
    engine.savePath = "/readonly/usb.key";
    expect(await store.backupIdentity()).toBeNull();
    expect(store.state.errors[0]?.code).toBe("io");
    expect(store.state.errors[0]?.message).toContain("read-only");
    expect(store.state.transfer.done).toBeNull();
    expect(store.state.transfer.busy).toBe(false);
  });
});

describe("export", () => {
  it("exports one room as CSV to the chosen path", async () => {
    engine.savePath = "/home/ana/medical.csv";
    expect(await store.exportMessages("medical", "csv")).toBe("/home/ana/medical.csv");
    expect(dialogCalls()[0]).toEqual({
      options: {
        defaultPath: "disasternet-medical.csv",
        filters: [{ name: "CSV spreadsheet", extensions: ["csv"] }],
      },
    });
    expect(engine.calls.find((c) => c.cmd === "export")?.args).toEqual({
      room: "medical",
      format: "csv",
      path: "/home/ana/medical.csv",
    });
    expect(store.state.transfer.done).toBe("Exported 1 message to /home/ana/medical.csv.");
  });

  it("exports all rooms as HTML and names the file after the format", async () => {
    engine.savePath = "/tmp/all.html";
    await store.exportMessages(null, "html");
    expect(exportFileName(null, "html")).toBe("disasternet-all-rooms.html");
    expect(exportFileName("water", "jsonl")).toBe("disasternet-water.jsonl");
    expect(engine.written.get("/tmp/all.html")).toBe("html");
    expect(store.state.transfer.done).toBe("Exported 2 messages to /tmp/all.html.");
  });

  it("a cancelled export keeps the previous result line", async () => {
    await store.exportMessages("medical", "jsonl");
    const before = store.state.transfer.done;
    engine.savePath = null;
    expect(await store.exportMessages("medical", "csv")).toBeNull();
    expect(store.state.transfer.done).toBe(before);
    expect(engine.calls.filter((c) => c.cmd === "export")).toHaveLength(1);
  });
});

describe("identity & export pane", () => {
  it("shows the warning and drives backup and export from the controls", async () => {
    const root = document.createElement("div");
    document.body.append(root);
    const unmount = mountApp(root, store);
    try {
      const q = <T extends Element>(sel: string): T => {
        const el = root.querySelector<T>(sel);
        if (!el) throw new Error(`${sel} not found`);
        return el;
      };
      expect(q<HTMLElement>("#identity-view").hidden).toBe(true);
      q<HTMLButtonElement>("#identity-button").click();
      expect(store.state.pane).toBe("identity");
      expect(q<HTMLElement>("#identity-view").hidden).toBe(false);
      expect(q<HTMLElement>("#composer-form").hidden).toBe(true);
      expect(q("#backup-warning").textContent).toBe(BACKUP_WARNING);
      expect(BACKUP_WARNING).toContain("IS your identity");

      q<HTMLButtonElement>("#backup-identity").click();
      await settle();
      expect(engine.written.get("/home/ana/backup.key")).toBe("identity");
      expect(q("#transfer-result").textContent).toContain("IS your identity");

      const rooms = [...q<HTMLSelectElement>("#export-room").options].map((o) => o.value);
      expect(rooms).toEqual(["", "medical", "water"]);
      q<HTMLSelectElement>("#export-room").value = "water";
      q<HTMLSelectElement>("#export-format").value = "html";
      engine.savePath = "/tmp/water.html";
      q<HTMLButtonElement>("#export-messages").click();
      await settle();
      expect(engine.calls.find((c) => c.cmd === "export")?.args).toEqual({
        room: "water",
        format: "html",
        path: "/tmp/water.html",
      });
      expect(q("#transfer-result").textContent).toBe("Exported 1 message to /tmp/water.html.");
    } finally {
      unmount();
      root.remove();
    }
  });
});

describe("display name, restore and export progress", () => {
  it("edits the display name from the pane", async () => {
    const { q, done } = mount();
    try {
      const input = q<HTMLInputElement>("#identity-name");
      expect(input.value).toBe("Amara");
      input.value = "Amara (clinic 2)";
      q<HTMLFormElement>("#identity-name").form?.requestSubmit();
      await settle();
      expect(engine.calls.find((c) => c.cmd === "set_name")?.args).toEqual({ name: "Amara (clinic 2)" });
      expect(store.state.identity?.name).toBe("Amara (clinic 2)");
      expect(q("#identity-subtitle").textContent).toContain("Amara (clinic 2)");
    } finally {
      done();
    }
  });

  it("restores only after the user confirms, then shows the new identity", async () => {
    const { q, done } = mount();
    try {
      expect(q("#restore-warning").textContent).toBe(RESTORE_WARNING);
      const button = q<HTMLButtonElement>("#restore-identity");
      const confirm = q<HTMLInputElement>("#restore-confirm");
      expect(button.disabled).toBe(true);
      button.click();
      await settle();
      expect(engine.calls.some((c) => c.cmd === "plugin:dialog|open")).toBe(false);

      confirm.checked = true;
      confirm.dispatchEvent(new Event("change"));
      expect(button.disabled).toBe(false);
      button.click();
      await settle();
      const open = engine.calls.find((c) => c.cmd === "plugin:dialog|open")?.args as {
        options: { multiple: boolean; directory: boolean; filters: { name: string }[] };
      };
      expect(open.options.multiple).toBe(false);
      expect(open.options.filters[0]?.name).toBe("DisasterNet identity backup");
      expect(engine.calls.find((c) => c.cmd === "restore_identity")?.args).toEqual({
        path: "/media/usb/disasternet-identity.key",
      });
      expect(store.state.identity?.id).toBe("be".repeat(32));
      expect(q("#identity-subtitle").textContent).toContain("bebe-bebe");
      expect(q("#transfer-result").textContent).toBe(
        "Identity restored from /media/usb/disasternet-identity.key: this device is now bebe-bebe. " +
          "The previous key was kept as /tmp/fake/identity.key.replaced-1700000000000.",
      );
      // Confirmation is asked again for the next restore.
      expect(confirm.checked).toBe(false);
      expect(button.disabled).toBe(true);
      expect(store.state.errors).toEqual([]);
    } finally {
      done();
    }
  });

  it("a wrong file or a cancelled dialog changes nothing", async () => {
    engine.openPath = null;
    expect(await store.restoreIdentity()).toBeNull();
    expect(engine.calls.some((c) => c.cmd === "restore_identity")).toBe(false);
    engine.openPath = "/bad/holiday.jpg";
    expect(await store.restoreIdentity()).toBeNull();
    expect(store.state.identity?.id).toBe(SELF_ID);
    expect(store.state.errors[0]?.code).toBe("invalid_input");
    expect(store.state.errors[0]?.message).toContain("not a DisasterNet identity backup");
    expect(store.state.transfer).toEqual({ busy: false, done: null, progress: null });
  });

  it("reloads everything when the engine restarts with another identity", async () => {
    engine.identity = engine.restoredIdentity;
    await emit(ENGINE_RESTARTED_EVENT, engine.identity.id);
    await settle();
    expect(store.state.identity?.fingerprint).toBe("bebe-bebe");
  });

  it("shows the progress of a large export, ignoring other exports", async () => {
    const { q, done } = mount();
    try {
      let finish = (): void => {};
      engine.exportGate = new Promise((r) => (finish = r));
      engine.savePath = "/tmp/all.jsonl";
      const exporting = store.exportMessages(null, "jsonl");
      await settle();
      expect(store.state.transfer.progress).toEqual({ path: "/tmp/all.jsonl", done: 0, total: 0 });
      expect(q<HTMLElement>(".export-progress").hidden).toBe(false);
      expect(q("#export-progress-text").textContent).toBe("Exporting…");
      await emit(ENGINE_EVENT, { type: "export_progress", path: "/tmp/all.jsonl", done: 40000, total: 100000 });
      await emit(ENGINE_EVENT, { type: "export_progress", path: "/tmp/cli-export.jsonl", done: 5, total: 9 });
      await settle();
      expect(store.state.transfer.progress).toEqual({ path: "/tmp/all.jsonl", done: 40000, total: 100000 });
      expect(q("#export-progress-text").textContent).toBe("Exporting 40,000 of 100,000 messages…");
      expect(q<HTMLProgressElement>("#export-progress").value).toBe(40000);
      expect(q<HTMLButtonElement>("#export-messages").disabled).toBe(true);
      finish();
      expect(await exporting).toBe("/tmp/all.jsonl");
      await settle();
      expect(store.state.transfer.progress).toBeNull();
      expect(q<HTMLElement>(".export-progress").hidden).toBe(true);
      expect(q("#transfer-result").textContent).toBe("Exported 2 messages to /tmp/all.jsonl.");
      expect(progressText(3, 0)).toBe("Exporting…");
    } finally {
      done();
    }
  });
});

describe("bundles", () => {
  const openCalls = (): Record<string, unknown>[] =>
    engine.calls.filter((c) => c.cmd === "plugin:dialog|open").map((c) => c.args);

  it("exports all rooms or one room to the chosen file", async () => {
    engine.savePath = "/media/usb/camp1.dnb";
    expect(await store.exportBundle(null)).toBe("/media/usb/camp1.dnb");
    expect(dialogCalls()[0]).toEqual({
      options: {
        defaultPath: "disasternet-all-rooms.dnb",
        filters: [{ name: "DisasterNet bundle", extensions: ["dnb"] }],
      },
    });
    expect(engine.calls.find((c) => c.cmd === "export_bundle")?.args).toEqual({
      path: "/media/usb/camp1.dnb",
      rooms: null,
      since_ms: null,
    });
    expect(store.state.transfer.done).toBe(
      "Wrote a bundle of 2 messages to /media/usb/camp1.dnb. Import it on a laptop of the other camp.",
    );
    await store.exportBundle("medical");
    expect(bundleFileName("medical")).toBe("disasternet-medical.dnb");
    expect(engine.calls.filter((c) => c.cmd === "export_bundle")[1]?.args.rooms).toEqual(["medical"]);
    expect(store.state.transfer.done).toContain("1 message to");
  });

  it("the pane's controls export one room since a date", async () => {
    const { q, done } = mount();
    try {
      engine.savePath = "/media/usb/medical.dnb";
      q<HTMLSelectElement>("#bundle-room").value = "medical";
      q<HTMLInputElement>("#bundle-since").value = "2026-11-28";
      q<HTMLButtonElement>("#export-bundle").click();
      await settle();
      expect(engine.calls.find((c) => c.cmd === "export_bundle")?.args).toEqual({
        path: "/media/usb/medical.dnb",
        rooms: ["medical"],
        since_ms: Date.UTC(2026, 10, 28),
      });
      expect(sinceMsOf("2026-11-28")).toBe(1_795_824_000_000);
      expect(sinceMsOf("")).toBeNull();
      expect(sinceMsOf("2026-02-30")).toBeNull();
    } finally {
      done();
    }
  });

  it("imports the chosen bundle and shows what came in", async () => {
    engine.openPath = "/media/usb/camp1.dnb";
    expect(await store.importBundle()).toBe("/media/usb/camp1.dnb");
    expect(openCalls()[0]?.options).toMatchObject({
      filters: [{ name: "DisasterNet bundle", extensions: ["dnb"] }, { name: "All files", extensions: ["*"] }],
    });
    expect(engine.calls.find((c) => c.cmd === "import_bundle")?.args).toEqual({ path: "/media/usb/camp1.dnb" });
    expect(store.state.transfer.done).toBe(
      "Imported 9 new messages from /media/usb/camp1.dnb (12 messages in the bundle: 3 were already here). " +
        "They go on to the peers of this camp like received messages.",
    );
    expect(store.state.transfer.busy).toBe(false);
  });

  it("a file that is not a bundle is an error; a cancelled dialog does nothing", async () => {
    engine.openPath = null;
    expect(await store.importBundle()).toBeNull();
    expect(engine.calls.some((c) => c.cmd === "import_bundle")).toBe(false);
    engine.openPath = "/bad/notes.txt";
    expect(await store.importBundle()).toBeNull();
    expect(store.state.errors[0]?.code).toBe("invalid_input");
    expect(store.state.errors[0]?.message).toContain("not a DisasterNet bundle");
  });

  it("the summary says what was refused, skipped and whether the file was cut or altered", () => {
    const base = { ...engine.importReport, path: "/u/b.dnb" };
    expect(bundleImportSummary({ ...base, total: 10, imported: 0, duplicates: 10 })).toBe(
      "Imported 0 new messages from /u/b.dnb (10 messages in the bundle: 10 were already here).",
    );
    const cut = bundleImportSummary({ ...base, total: 5, imported: 1, duplicates: 1, refused: 2, invalid: 1, truncated: true, checksum_ok: false });
    expect(cut).toBe(
      "Imported 1 new message from /u/b.dnb (5 messages in the bundle: 1 was already here, " +
        "2 were refused by this laptop's rules, 1 was not validly signed and skipped). " +
        "The file is cut short: messages after the cut are missing. They go on to the peers of this camp like received messages.",
    );
    const altered = bundleImportSummary({ ...base, checksum_ok: false });
    expect(altered).toContain("The file was altered or damaged: every valid message in it was imported.");
    expect(altered).not.toContain("cut short");
  });

  it("shows the import's progress in the bundle panel, ignoring other files", async () => {
    const { q, done } = mount();
    try {
      let finish = (): void => {};
      engine.exportGate = new Promise((r) => (finish = r));
      engine.openPath = "/media/usb/big.dnb";
      const importing = store.importBundle();
      await settle();
      expect(q<HTMLButtonElement>("#import-bundle").disabled).toBe(true);
      expect(q<HTMLButtonElement>("#export-bundle").disabled).toBe(true);
      expect(q(".export-progress").closest("section")?.getAttribute("aria-labelledby")).toBe("bundle-title");
      expect(q("#export-progress-text").textContent).toBe("Importing the bundle: 0 messages checked…");
      const ev = { type: "bundle_progress", import: true, records: 1000, done: 250000, total: 1000000 };
      await emit(ENGINE_EVENT, { ...ev, path: "/media/usb/big.dnb" });
      await emit(ENGINE_EVENT, { ...ev, path: "/tmp/cli.dnb", records: 7 });
      await settle();
      expect(q("#export-progress-text").textContent).toBe(
        "Importing the bundle: 1,000 messages checked (25% of the file)…",
      );
      expect(q<HTMLProgressElement>("#export-progress").value).toBe(250000);
      finish();
      expect(await importing).toBe("/media/usb/big.dnb");
      await settle();
      expect(q<HTMLElement>(".export-progress").hidden).toBe(true);
      expect(q("#transfer-result").textContent).toContain("Imported 9 new messages");
      expect(transferProgressText({ path: "x", done: 3, total: 9, kind: "bundle_export" })).toBe(
        "Writing the bundle: 3 of 9 messages…",
      );
      expect(transferProgressText({ path: "x", done: 3, total: 9 })).toBe("Exporting 3 of 9 messages…");
    } finally {
      done();
    }
  });
});
