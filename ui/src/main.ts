// Entry point: one store on the Tauri backend, one app view, desktop notifications.

import "./styles.css";
import { tauriBackend, type Backend } from "./ipc";
import { roomSpoken } from "./lib/invite";
import type { MutedRooms } from "./lib/notify";
import { notifyLater, startNotifications } from "./notifications";
import { Store } from "./store";
import { mountApp } from "./views/app";
import { tauriUnlock, unlockFirst } from "./views/unlock";

const root = document.getElementById("app");
if (!root) throw new Error("#app missing from index.html");

let store: Store | null = null;
// Mutes live in the engine (per data directory), in the rooms of the store's state.
const muted: MutedRooms = {
  has: (room) => store?.state.rooms.some((r) => r.name === room && r.muted) ?? false,
};
// Private rooms are named by their title ("private room medical"), never by their opaque id.
const roomName = (room: string): string | null => {
  const r = store?.state.rooms.find((x) => x.name === room);
  return r ? roomSpoken(r) : null;
};
const notify = notifyLater(startNotifications(() => store?.state.identity?.id ?? null, muted, roomName));

// Every engine event goes to the store and, beside it, to the notifier.
const backend: Backend = {
  ...tauriBackend,
  subscribe: (handlers) =>
    tauriBackend.subscribe({
      event: (event) => {
        handlers.event(event);
        notify(event);
      },
      lagged: () => handlers.lagged(),
      restarted: () => handlers.restarted(),
    }),
};

// A locked data directory: the unlock screen first (the engine starts with the passphrase).
// If the shell cannot say (an IPC failure), the app starts and shows the engine's own error.
void unlockFirst(root, tauriUnlock)
  .catch(() => undefined)
  .then(() => {
    store = new Store(backend);
    mountApp(root, store);
    void store.start();
  });

window.addEventListener("unhandledrejection", (e) => {
  store?.report(e.reason);
});
