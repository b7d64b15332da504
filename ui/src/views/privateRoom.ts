// A private room's own controls in the room pane: "Invite…" and "Members" in its header, and
// the members panel (admins remove members, after confirming, and make others admins).

import type { MemberView } from "../bindings/MemberView";
import type { RoomView } from "../bindings/RoomView";
import { h } from "../lib/dom";
import { renderKeyed } from "../lib/keyboard";
import { visibleText } from "../lib/text";
import { removalOf, selectedRoom, type AppState, type Store } from "../store";

/** What the confirmation of a removal says. */
export function removeQuestion(name: string): string {
  return `Remove ${name}? They keep what they already have but will not read anything new.`;
}

/** A member as shown: their name, or their fingerprint before they wrote anything. */
function memberName(m: MemberView): string {
  return visibleText(m.name ?? "") || m.fingerprint;
}

export function mountPrivateRoom(root: HTMLElement, store: Store): () => void {
  const header = root.querySelector<HTMLElement>(".room-header") ?? root;
  const inviteButton = h(
    "button",
    { id: "invite-button", type: "button", title: "Show this room's invite code, QR image and invite file" },
    "Invite…",
  );
  const membersButton = h(
    "button",
    { id: "members-button", type: "button", "aria-expanded": "false", "aria-controls": "members-panel" },
    "Members",
  );
  const tools = h("div", { class: "room-tools", hidden: true }, inviteButton, membersButton);
  header.append(tools);

  const panelTitle = h("h2", { id: "members-title" }, "Members");
  const list = h("ul", { id: "member-list", class: "member-list", "aria-labelledby": "members-title" });
  const note = h("p", { id: "members-note", class: "muted" });
  const panel = h(
    "section",
    { id: "members-panel", class: "members-panel", "aria-labelledby": "members-title", hidden: true },
    panelTitle,
    note,
    list,
  );
  header.after(panel);

  /** Room whose panel is open (it closes when another room is shown). */
  let openFor: string | null = null;
  /** Member whose removal is being confirmed. */
  let confirming: string | null = null;

  inviteButton.addEventListener("click", () => {
    const room = store.state.selectedRoom;
    if (room === null) return;
    // The invite dialog gives the focus back to what had it: this button (a click does not
    // always focus it).
    inviteButton.focus();
    void store.openInvite(room);
  });
  membersButton.addEventListener("click", () => {
    const room = store.state.selectedRoom;
    if (room === null) return;
    openFor = openFor === room ? null : room;
    confirming = null;
    render(store.state);
    if (openFor !== null) void store.loadMembers(openFor);
  });

  const focusRow = (id: string, selector: string): void => {
    const row = [...list.querySelectorAll<HTMLElement>("[data-member]")].find((r) => r.dataset.member === id);
    row?.querySelector<HTMLElement>(selector)?.focus();
  };

  list.addEventListener("click", (e) => {
    const button = e.target instanceof Element ? e.target.closest<HTMLButtonElement>("button") : null;
    const id = button?.closest<HTMLElement>("[data-member]")?.dataset.member;
    const room = openFor;
    if (!button || !id || room === null) return;
    if (button.classList.contains("remove-member")) {
      confirming = id;
      render(store.state);
      focusRow(id, ".remove-no");
    } else if (button.classList.contains("remove-no")) {
      confirming = null;
      render(store.state);
      focusRow(id, ".remove-member");
    } else if (button.classList.contains("remove-yes")) {
      confirming = null;
      void store.removeMember(room, id).then(() => membersButton.focus());
    } else if (button.classList.contains("promote-member")) {
      void store.promoteMember(room, id);
    }
  });
  list.addEventListener("keydown", (e) => {
    if (e.key !== "Escape" || confirming === null) return;
    e.preventDefault();
    e.stopPropagation();
    const id = confirming;
    confirming = null;
    render(store.state);
    focusRow(id, ".remove-member");
  });

  const memberRow = (m: MemberView, room: RoomView): HTMLElement => {
    const name = memberName(m);
    const tags = [m.creator ? "creator" : null, m.admin ? "admin" : null, m.me ? "you" : null].filter(
      (t): t is string => t !== null,
    );
    const actions: HTMLElement[] = [];
    if (room.admin && !m.me && room.joined) {
      if (confirming === m.id) {
        actions.push(
          h(
            "span",
            { class: "remove-confirm", role: "group", "aria-label": `Remove ${name}?` },
            removeQuestion(name),
            " ",
            h("button", { type: "button", class: "remove-yes danger" }, "Remove"),
            " ",
            h("button", { type: "button", class: "remove-no" }, "Cancel"),
          ),
        );
      } else {
        if (!m.admin) {
          actions.push(h("button", { type: "button", class: "promote-member link", "aria-label": `Make ${name} an admin` }, "Make admin"));
        }
        actions.push(h("button", { type: "button", class: "remove-member link", "aria-label": `Remove ${name}…` }, "Remove…"));
      }
    }
    return h(
      "li",
      { class: "member", "data-member": m.id, "data-admin": String(m.admin), "data-me": String(m.me) },
      h("span", { class: "member-name" }, name),
      " ",
      h("code", { class: "fingerprint", title: m.id }, m.fingerprint),
      ...tags.map((t) => h("span", { class: `tag tag-${t}` }, t)),
      actions.length > 0 ? h("span", { class: "member-actions" }, ...actions) : null,
    );
  };

  const rows = new Map<string, { sig: string; el: HTMLElement }>();
  const render = (state: AppState): void => {
    const room = selectedRoom(state);
    const isPrivate = state.pane === "room" && room !== null && room.private;
    tools.hidden = !isPrivate;
    inviteButton.hidden = !room?.joined || removalOf(state, room.name) !== null;
    if (openFor !== null && openFor !== room?.name) {
      openFor = null;
      confirming = null;
    }
    const open = isPrivate && openFor !== null;
    panel.hidden = !open;
    membersButton.setAttribute("aria-expanded", String(open));
    membersButton.textContent = open ? "Hide members" : "Members";
    if (!open || room === null) return;
    const loaded = state.members[room.name];
    const items = loaded?.items ?? [];
    panelTitle.textContent = items.length > 0 ? `Members (${items.length})` : "Members";
    note.textContent = loaded?.loading && items.length === 0
      ? "Loading…"
      : room.admin
        ? "As this laptop knows them. A removed member keeps what they already have; the room moves to a new key they do not get."
        : "As this laptop knows them. Only admins can remove members.";
    renderKeyed(
      list,
      items.map((m) => ({
        key: m.id,
        sig: JSON.stringify([m.name, m.admin, m.creator, m.me, room.admin, room.joined, confirming === m.id]),
        build: () => memberRow(m, room),
      })),
      rows,
    );
  };

  render(store.state);
  return store.subscribe((state, previous) => {
    if (
      state.selectedRoom !== previous.selectedRoom ||
      state.pane !== previous.pane ||
      state.rooms !== previous.rooms ||
      state.members !== previous.members ||
      state.messages !== previous.messages
    ) {
      render(state);
    }
  });
}
