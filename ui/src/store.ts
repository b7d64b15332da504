// The one store of app state. Actions call the backend; engine events update the state; views
// subscribe and render. State objects are replaced, never mutated, so views can compare slices
// by reference to decide what to redraw.

import type { EngineEvent } from "./bindings/EngineEvent";
import type { IdentityView } from "./bindings/IdentityView";
import type { MessageView } from "./bindings/MessageView";
import type { NetworkView } from "./bindings/NetworkView";
import type { PeerView } from "./bindings/PeerView";
import type { RoomView } from "./bindings/RoomView";
import type { StatusView } from "./bindings/StatusView";
import { AppError, type AppErrorCode, type Backend } from "./ipc";
import { checkBody, fallbackFingerprint, mergeMessages } from "./lib/messages";

/** Messages fetched per page. */
export const PAGE_SIZE = 50;
/** Errors kept on screen at most (oldest dropped first). */
const MAX_NOTICES = 5;

/** The loaded part of one room's history. */
export interface RoomMessages {
  /** Sorted in room order, oldest first. */
  items: MessageView[];
  /** Older messages may exist in the store. */
  hasMore: boolean;
  /** A page is being fetched. */
  loading: boolean;
}

/** An error shown in the banner until dismissed. */
export interface Notice {
  id: number;
  code: AppErrorCode;
  message: string;
}

export type Phase = "starting" | "ready" | "failed";

export interface AppState {
  /** `failed`: the engine could not start (see `fatal`). */
  phase: Phase;
  fatal: AppError | null;
  identity: IdentityView | null;
  status: StatusView | null;
  /** Joined rooms first, then rooms with stored messages (engine order, new joins appended). */
  rooms: RoomView[];
  peers: PeerView[];
  /** The mesh as this node sees it (from status and network events). */
  network: NetworkView | null;
  selectedRoom: string | null;
  messages: Readonly<Record<string, RoomMessages>>;
  /** Messages that arrived in rooms other than the selected one, since last viewed. */
  unread: Readonly<Record<string, number>>;
  errors: Notice[];
  /** A set-name / join / send call is in flight. */
  pending: { name: boolean; join: boolean; send: boolean };
}

export const initialState: AppState = {
  phase: "starting",
  fatal: null,
  identity: null,
  status: null,
  rooms: [],
  peers: [],
  network: null,
  selectedRoom: null,
  messages: {},
  unread: {},
  errors: [],
  pending: { name: false, join: false, send: false },
};

export type Listener = (state: AppState, previous: AppState) => void;

// ---------------------------------------------------------------- selectors (pure)

/** Online means at least one peer is connected right now. */
export function isOnline(state: AppState): boolean {
  return (state.status?.connected_peers ?? 0) > 0;
}

export function connectedPeers(state: AppState): number {
  return state.status?.connected_peers ?? state.peers.filter((p) => p.connected).length;
}

export function totalMessages(state: AppState): number {
  return state.status?.messages ?? state.rooms.reduce((n, r) => n + r.messages, 0);
}

export function selectedRoom(state: AppState): RoomView | null {
  return state.rooms.find((r) => r.name === state.selectedRoom) ?? null;
}

export function needsName(state: AppState): boolean {
  return state.phase === "ready" && state.identity !== null && state.identity.name === null;
}

/** Short fingerprint of an author: from the engine when we know the node, else derived. */
export function fingerprintOf(state: AppState, nodeId: string): string {
  if (state.identity?.id === nodeId) return state.identity.fingerprint;
  const peer = state.peers.find((p) => p.id === nodeId);
  return peer?.fingerprint ?? fallbackFingerprint(nodeId);
}

/** Peers to list: connected first, then by name. */
export function sortedPeers(state: AppState): PeerView[] {
  return [...state.peers].sort(
    (a, b) => Number(b.connected) - Number(a.connected) || a.name.localeCompare(b.name),
  );
}

// ---------------------------------------------------------------- the store

export class Store {
  private current: AppState = initialState;
  private readonly listeners = new Set<Listener>();
  private nextNoticeId = 1;
  private stopEvents: (() => void) | null = null;

  constructor(private readonly backend: Backend) {}

  get state(): AppState {
    return this.current;
  }

  /** Calls `listener` after every change; returns a function that unsubscribes. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private set(patch: Partial<AppState>): void {
    const previous = this.current;
    this.current = { ...previous, ...patch };
    for (const listener of this.listeners) listener(this.current, previous);
  }

  private setPending(key: keyof AppState["pending"], value: boolean): void {
    this.set({ pending: { ...this.current.pending, [key]: value } });
  }

  /** Shows an error in the banner. */
  report(raw: unknown): AppError {
    const error = AppError.from(raw);
    const notice: Notice = { id: this.nextNoticeId++, code: error.code, message: error.message };
    this.set({ errors: [...this.current.errors, notice].slice(-MAX_NOTICES) });
    return error;
  }

  dismissError(id: number): void {
    this.set({ errors: this.current.errors.filter((n) => n.id !== id) });
  }

  // ------------------------------------------------------------ lifecycle

  /** Subscribes to engine events, then loads everything. Never throws. */
  async start(): Promise<void> {
    try {
      this.stopEvents = await this.backend.subscribe({
        event: (event) => this.apply(event),
        lagged: () => void this.reload(),
      });
    } catch (raw) {
      this.report(raw);
    }
    try {
      const identity = await this.backend.identity();
      this.set({ identity, phase: "ready" });
    } catch (raw) {
      const fatal = this.report(raw);
      this.set({ phase: "failed", fatal });
      return;
    }
    await this.reload();
    const first = this.current.rooms.find((r) => r.joined);
    if (this.current.selectedRoom === null && first) await this.selectRoom(first.name);
  }

  stop(): void {
    this.stopEvents?.();
    this.stopEvents = null;
  }

  /** Refetches status, rooms, peers and the selected room's newest page. */
  async reload(): Promise<void> {
    await Promise.all([this.refreshStatus(), this.refreshRooms(), this.refreshPeers()]);
    const room = this.current.selectedRoom;
    if (room !== null) await this.loadLatest(room);
  }

  private async refreshStatus(): Promise<void> {
    try {
      const status = await this.backend.status();
      this.set({ status, identity: status.identity, network: status.network });
    } catch (raw) {
      this.report(raw);
    }
  }

  private async refreshRooms(): Promise<void> {
    try {
      this.set({ rooms: await this.backend.rooms() });
    } catch (raw) {
      this.report(raw);
    }
  }

  private async refreshPeers(): Promise<void> {
    try {
      this.set({ peers: await this.backend.peers() });
    } catch (raw) {
      this.report(raw);
    }
  }

  // ------------------------------------------------------------ actions

  /** Sets the display name. Returns true on success. */
  async setName(raw: string): Promise<boolean> {
    const name = raw.trim();
    if (name.length === 0) {
      this.report(new AppError("invalid_input", "Please enter a display name."));
      return false;
    }
    this.setPending("name", true);
    try {
      this.set({ identity: await this.backend.setName(name) });
      return true;
    } catch (raw) {
      this.report(raw);
      return false;
    } finally {
      this.setPending("name", false);
    }
  }

  /** Joins (or creates) a room and selects it. Returns true on success. */
  async joinRoom(raw: string): Promise<boolean> {
    const name = raw.trim();
    if (name.length === 0) {
      this.report(new AppError("invalid_input", "Please enter a room name."));
      return false;
    }
    this.setPending("join", true);
    try {
      const room = await this.backend.joinRoom(name);
      this.upsertRoom(room);
      await this.selectRoom(room.name);
      return true;
    } catch (raw) {
      this.report(raw);
      return false;
    } finally {
      this.setPending("join", false);
    }
  }

  async leaveRoom(name: string): Promise<void> {
    try {
      const room = await this.backend.leaveRoom(name);
      if (!room.joined && room.messages === 0) {
        this.set({ rooms: this.current.rooms.filter((r) => r.name !== room.name) });
        if (this.current.selectedRoom === room.name) this.set({ selectedRoom: null });
      } else {
        this.upsertRoom(room);
      }
    } catch (raw) {
      this.report(raw);
    }
  }

  /** Shows a room, fetching its newest page the first time. */
  async selectRoom(name: string): Promise<void> {
    const unread = { ...this.current.unread };
    delete unread[name];
    this.set({ selectedRoom: name, unread });
    if (!this.current.messages[name]) await this.loadLatest(name);
  }

  /** Fetches the newest page of a room and merges it with what is loaded. */
  async loadLatest(room: string): Promise<void> {
    const before = this.current.messages[room];
    this.setRoomMessages(room, {
      items: before?.items ?? [],
      hasMore: before?.hasMore ?? true,
      loading: true,
    });
    try {
      const page = await this.backend.messages(room, PAGE_SIZE, null);
      const loaded = this.current.messages[room];
      this.setRoomMessages(room, {
        items: mergeMessages(loaded?.items ?? [], page),
        // Only the first load decides; later refreshes keep what scrolling found out.
        hasMore: before ? (loaded?.hasMore ?? true) : page.length >= PAGE_SIZE,
        loading: false,
      });
    } catch (raw) {
      this.patchRoomMessages(room, { loading: false });
      this.report(raw);
    }
  }

  /** Fetches the page before the oldest loaded message of the selected room. */
  async loadOlder(): Promise<void> {
    const room = this.current.selectedRoom;
    if (room === null) return;
    const loaded = this.current.messages[room];
    if (!loaded || loaded.loading || !loaded.hasMore) return;
    const oldest = loaded.items[0];
    if (!oldest) return;
    this.patchRoomMessages(room, { loading: true });
    try {
      const page = await this.backend.messages(room, PAGE_SIZE, oldest.id);
      const now = this.current.messages[room];
      this.setRoomMessages(room, {
        items: mergeMessages(now?.items ?? [], page),
        hasMore: page.length >= PAGE_SIZE,
        loading: false,
      });
    } catch (raw) {
      this.patchRoomMessages(room, { loading: false });
      this.report(raw);
    }
  }

  /**
   * Sends a message to the selected room. Refuses drafts the engine would reject (empty, over
   * 8192 bytes) without calling it. Returns true when the message was stored.
   */
  async send(body: string): Promise<boolean> {
    const room = selectedRoom(this.current);
    if (!room) {
      this.report(new AppError("invalid_input", "Select or join a room first."));
      return false;
    }
    if (!room.joined) {
      this.report(new AppError("invalid_input", `Join #${room.name} to send messages there.`));
      return false;
    }
    const check = checkBody(body);
    if (check.problem !== null) {
      this.report(new AppError("invalid_input", check.problem));
      return false;
    }
    this.setPending("send", true);
    try {
      const message = await this.backend.send(room.name, body);
      this.addMessage(message);
      return true;
    } catch (raw) {
      this.report(raw);
      return false;
    } finally {
      this.setPending("send", false);
    }
  }

  // ------------------------------------------------------------ engine events

  /** Applies one pushed engine event. */
  apply(event: EngineEvent): void {
    switch (event.type) {
      case "message":
        this.addMessage(event.message);
        if (!this.current.rooms.some((r) => r.name === event.message.room)) {
          void this.refreshRooms();
        }
        break;
      case "peer":
        this.upsertPeer(event.peer);
        break;
      case "status":
        this.applyStatus(event.status);
        break;
      case "network":
        this.set({ network: event.network });
        break;
      default:
        // A newer engine may send event types this UI does not know yet: ignore them.
        break;
    }
  }

  private applyStatus(status: StatusView): void {
    const joined = new Map(status.rooms.map((r) => [r.name, r]));
    const rooms = this.current.rooms.map((r) => joined.get(r.name) ?? { ...r, joined: false });
    for (const room of status.rooms) {
      if (!rooms.some((r) => r.name === room.name)) rooms.push(room);
    }
    this.set({ status, identity: status.identity, network: status.network, rooms });
  }

  // ------------------------------------------------------------ state helpers

  private addMessage(message: MessageView): void {
    const loaded = this.current.messages[message.room];
    if (loaded) {
      const items = mergeMessages(loaded.items, [message]);
      if (items === loaded.items) return; // already shown
      this.setRoomMessages(message.room, { ...loaded, items });
    }
    if (message.room !== this.current.selectedRoom && !message.local) {
      const unread = { ...this.current.unread };
      unread[message.room] = (unread[message.room] ?? 0) + 1;
      this.set({ unread });
    }
  }

  private upsertRoom(room: RoomView): void {
    const rooms = this.current.rooms.some((r) => r.name === room.name)
      ? this.current.rooms.map((r) => (r.name === room.name ? room : r))
      : [...this.current.rooms, room];
    this.set({ rooms });
  }

  private upsertPeer(peer: PeerView): void {
    const peers = this.current.peers.some((p) => p.id === peer.id)
      ? this.current.peers.map((p) => (p.id === peer.id ? peer : p))
      : [...this.current.peers, peer];
    this.set({ peers });
  }

  private setRoomMessages(room: string, value: RoomMessages): void {
    this.set({ messages: { ...this.current.messages, [room]: value } });
  }

  private patchRoomMessages(room: string, patch: Partial<RoomMessages>): void {
    const loaded = this.current.messages[room];
    if (loaded) this.setRoomMessages(room, { ...loaded, ...patch });
  }
}
