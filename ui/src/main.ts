// Entry point: one store on the Tauri backend, one app view.

import "./styles.css";
import { tauriBackend } from "./ipc";
import { Store } from "./store";
import { mountApp } from "./views/app";

const root = document.getElementById("app");
if (!root) throw new Error("#app missing from index.html");

const store = new Store(tauriBackend);
mountApp(root, store);
void store.start();

window.addEventListener("unhandledrejection", (e) => {
  store.report(e.reason);
});
