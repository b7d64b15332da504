// "Why can't I see anyone?": the engine's network diagnosis (what this laptop observed: its
// addresses, mDNS and beacons heard, dials and how they failed, its port) as findings with
// advice, refreshed every few seconds while the panel is open.

import type { DiagnosisView } from "../bindings/DiagnosisView";
import type { Finding } from "../bindings/Finding";
import { modal } from "../lib/dialog";
import { h, setChildren } from "../lib/dom";
import { formatTime } from "../lib/messages";
import type { Store } from "../store";

/** How often the open panel asks the engine again (ms). */
export const DIAGNOSIS_REFRESH_MS = 3000;

const SEVERITY_LABEL: Readonly<Record<Finding["severity"], string>> = {
  info: "OK",
  warning: "Warning",
  error: "Problem",
};

/** One line about what was observed (the findings say what it means). */
export function observedLine(v: DiagnosisView): string {
  const o = v.observations;
  if (!v.running || o === null) return "The network engine is not running, so nothing was observed.";
  const addrs = o.interfaces.filter((i) => !i.loopback).map((i) => `${i.name} ${i.addr}`);
  const heard = o.heard.length;
  return [
    `Listening on ${o.listen}`,
    addrs.length === 0 ? "no network address" : `addresses ${addrs.join(", ")}`,
    `heard ${heard} ${heard === 1 ? "peer" : "peers"} (${o.mdns_heard} mDNS, ${o.beacons_heard} beacon)`,
    `${o.dials.reduce((t, d) => t + d.tries, 0)} dials`,
    `${o.incoming} incoming`,
    `${o.connected.length} connected`,
  ].join(" · ");
}

export interface DiagnosisPanel {
  /** Opens the panel (loads at once, then every DIAGNOSIS_REFRESH_MS until closed). */
  open(): void;
  close(): void;
  stop(): void;
}

export function mountDiagnosis(root: HTMLElement, store: Store): DiagnosisPanel {
  const title = h("h1", { id: "diagnosis-title" }, "Why can't I see anyone?");
  const observed = h("p", { id: "diagnosis-observed", class: "muted" }, "Asking the engine…");
  const list = h("ul", { id: "diagnosis-findings", class: "findings", "aria-live": "polite" });
  const updated = h("p", { id: "diagnosis-updated", class: "muted" });
  const problem = h("p", { id: "diagnosis-error", class: "error-text", role: "alert", hidden: true });
  const closeButton = h("button", { id: "close-diagnosis", type: "button" }, "Close");
  const box = h(
    "div",
    { class: "dialog wide", id: "diagnosis-box", tabindex: -1 },
    title,
    observed,
    list,
    problem,
    updated,
    h("div", { class: "dialog-actions" }, closeButton),
  );
  let timer: ReturnType<typeof setInterval> | null = null;
  let asking = false;
  const dialog = modal(root, box, {
    id: "diagnosis-dialog",
    labelledBy: "diagnosis-title",
    describedBy: "diagnosis-observed",
    onDismiss: () => panel.close(),
  });

  const render = (v: DiagnosisView): void => {
    observed.textContent = observedLine(v);
    // Only when it changed: the list is a live region, refreshed every few seconds.
    const key = JSON.stringify([v.running, v.findings]);
    if (list.dataset.key !== key) {
      list.dataset.key = key;
      const item = (code: string, severity: Finding["severity"], summary: string, advice: string): HTMLElement =>
        h(
          "li",
          { class: `finding ${severity}`, "data-code": code },
          h("p", { class: "finding-summary" }, h("strong", { class: "finding-severity" }, SEVERITY_LABEL[severity]), " ", summary),
          h("p", { class: "finding-advice" }, advice),
        );
      setChildren(
        list,
        ...(v.running
          ? v.findings.map((f) => item(f.code, f.severity, f.summary, f.advice))
          : [item("not_running", "error", "The network engine is not running.", "Restart DisasterNet; if it keeps failing, read the error shown in the window.")]),
      );
    }
    updated.textContent = `Updated ${formatTime(Date.now())}`;
  };

  const refresh = async (): Promise<void> => {
    if (asking) return;
    asking = true;
    try {
      const v = await store.diagnose();
      if (!dialog.isOpen) return;
      problem.hidden = true;
      render(v);
    } catch (raw) {
      if (!dialog.isOpen) return;
      problem.hidden = false;
      problem.textContent = `Could not ask the engine: ${raw instanceof Error ? raw.message : String((raw as { message?: unknown })?.message ?? raw)}`;
    } finally {
      asking = false;
    }
  };

  const panel: DiagnosisPanel = {
    open() {
      dialog.open(closeButton);
      void refresh();
      if (timer === null) timer = setInterval(() => void refresh(), DIAGNOSIS_REFRESH_MS);
    },
    close() {
      if (timer !== null) clearInterval(timer);
      timer = null;
      dialog.close();
    },
    stop() {
      if (timer !== null) clearInterval(timer);
      timer = null;
      dialog.stop();
    },
  };
  closeButton.addEventListener("click", () => panel.close());
  return panel;
}
