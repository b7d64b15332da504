// Write a message: Enter sends, Shift+Enter adds a line; shows the size against the limit.
// "Urgent" (a toggle, aria-pressed) marks the next message urgent, then turns itself off.

import { h } from "../lib/dom";
import { checkBody, MAX_BODY_BYTES, URGENT_MARKER_BYTES } from "../lib/messages";
import { composeTarget, type AppState, type Store } from "../store";

export function mountComposer(root: HTMLElement, store: Store): () => void {
  const input = h("textarea", {
    id: "composer",
    rows: 2,
    "aria-label": "Message",
    "aria-describedby": "composer-hint byte-count",
    placeholder: "Write a message…",
  });
  const send = h("button", { id: "send-button", type: "submit", class: "primary" }, "Send");
  const urgentToggle = h(
    "button",
    {
      id: "urgent-toggle",
      type: "button",
      class: "urgent-toggle",
      "aria-pressed": "false",
      title: "Mark the next message urgent: it goes first; in a room it stays pinned for everyone until they acknowledge it",
    },
    "Urgent",
  );
  const bytes = h("span", { id: "byte-count", class: "byte-count" });
  const hint = h("span", { id: "composer-hint", class: "composer-hint muted" });
  const form = h(
    "form",
    { id: "composer-form", class: "composer" },
    input,
    urgentToggle,
    send,
    h("div", { class: "composer-footer" }, hint, bytes),
  );
  root.appendChild(form);

  let canWrite = false;
  let limit = MAX_BODY_BYTES;
  let urgent = false;
  let roomPane = true;
  // Rooms and direct conversations can both take an urgent message.
  let urgentPane = true;

  const setUrgent = (on: boolean): void => {
    urgent = on && urgentPane;
    urgentToggle.setAttribute("aria-pressed", String(urgent));
    form.classList.toggle("urgent", urgent);
    refresh();
  };
  urgentToggle.addEventListener("click", () => {
    setUrgent(!urgent);
    input.focus();
  });
  /** The limit of what is typed: in a room the urgent marker is part of the body (a direct
   *  message's marker goes outside its envelope, so its text limit stays). */
  const textLimit = (): number => limit - (urgent && roomPane ? URGENT_MARKER_BYTES : 0);

  /** Grows the text area with its content (CSS caps it with max-height). */
  const autosize = (): void => {
    input.style.height = "auto";
    input.style.height = `${input.scrollHeight + 2}px`;
  };

  const refresh = (): void => {
    autosize();
    const check = checkBody(input.value, textLimit());
    bytes.textContent = `${check.bytes} / ${textLimit()} bytes`;
    bytes.classList.toggle("over", check.tooLong);
    form.classList.toggle("too-long", check.tooLong);
    send.disabled = !canWrite || check.empty || check.tooLong || store.state.pending.send;
    if (check.tooLong) {
      hint.textContent = check.problem ?? "";
      hint.classList.add("error-text");
    } else {
      hint.classList.remove("error-text");
      hint.textContent = !canWrite
        ? ""
        : urgent
          ? "URGENT: pinned for everyone until acknowledged · Enter to send"
          : "Enter to send · Shift+Enter for a new line";
    }
  };

  // Enter while the previous message is still being stored: send this one right after it
  // (fast typists, and keyboard-driven tests, would otherwise lose that Enter).
  let sendAgain = false;
  const submit = async (): Promise<void> => {
    if (!canWrite) return;
    if (store.state.pending.send) {
      sendAgain = true;
      return;
    }
    const body = input.value;
    const check = checkBody(body, textLimit());
    if (check.empty) return;
    if (check.tooLong) {
      refresh();
      return;
    }
    const sent = await store.sendCurrent(body, urgent);
    if (sent) {
      setUrgent(false);
      // Keep anything typed while sending; drop exactly what was sent.
      input.value = input.value.startsWith(body) ? input.value.slice(body.length) : input.value;
      refresh();
    }
    input.focus();
    const again = sendAgain && sent;
    sendAgain = false;
    if (again) await submit();
  };

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void submit();
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void submit();
    }
  });
  input.addEventListener("input", refresh);

  const render = (state: AppState): void => {
    const target = composeTarget(state);
    canWrite = target.canWrite;
    limit = target.limit;
    input.disabled = !canWrite;
    roomPane = state.pane === "room";
    urgentPane = roomPane || state.pane === "dm";
    urgentToggle.hidden = !urgentPane;
    urgentToggle.disabled = !canWrite;
    if (!urgentPane && urgent) setUrgent(false);
    input.placeholder = target.placeholder;
    form.hidden = state.pane === "network" || state.pane === "identity";
    refresh();
  };

  render(store.state);
  return store.subscribe((state, previous) => {
    if (
      state.selectedRoom !== previous.selectedRoom ||
      state.pane !== previous.pane ||
      state.selectedDm !== previous.selectedDm ||
      state.peers !== previous.peers ||
      state.rooms !== previous.rooms ||
      state.messages !== previous.messages || // a removal notice closes a private room
      state.pending !== previous.pending ||
      state.phase !== previous.phase
    ) {
      const wasDisabled = input.disabled;
      render(state);
      if (wasDisabled && !input.disabled) input.focus();
    }
  });
}
