// Wires the notification rules (lib/notify.ts) to the real world: the notification plugin and
// the window focus state. Tested with both mocked (ui/test/notify.test.ts).

import { getCurrentWindow } from "@tauri-apps/api/window";
import { isPermissionGranted, requestPermission, sendNotification } from "@tauri-apps/plugin-notification";
import type { EngineEvent } from "./bindings/EngineEvent";
import { type MutedRooms, Notifier } from "./lib/notify";

/**
 * Starts desktop notifications: tracks the window focus, asks for the permission, and returns
 * the notifier to feed engine events to. Failures only turn notifications off (logged).
 */
export async function startNotifications(
  selfId: () => string | null,
  muted: MutedRooms,
  roomName?: (room: string) => string | null,
): Promise<Notifier> {
  let permitted = false;
  const notifier = new Notifier({
    show: (spec) => {
      if (!permitted) return;
      try {
        sendNotification(spec);
      } catch (raw) {
        console.warn("notification failed", raw);
      }
    },
    selfId,
    muted,
    roomName,
  });
  try {
    const win = getCurrentWindow();
    await win.onFocusChanged(({ payload }) => notifier.setFocused(payload));
    notifier.setFocused(await win.isFocused());
  } catch (raw) {
    console.warn("window focus state unavailable: notifications off", raw);
    notifier.setFocused(true);
  }
  try {
    permitted = await isPermissionGranted();
    if (!permitted) permitted = (await requestPermission()) === "granted";
  } catch (raw) {
    console.warn("notifications unavailable", raw);
  }
  return notifier;
}

/** Feeds `event` to the notifier once it has started (events before that never notify). */
export function notifyLater(pending: Promise<Notifier>): (event: EngineEvent) => void {
  let notifier: Notifier | null = null;
  void pending.then((n) => {
    notifier = n;
  });
  return (event) => notifier?.onEvent(event);
}
