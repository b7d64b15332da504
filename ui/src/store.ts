// The one store of app state. Actions call the backend; engine events update the state; views
// subscribe and render. State objects are replaced, never mutated, so views can compare slices
// by reference to decide what to redraw.

import type { BlockedView } from "./bindings/BlockedView";
import type { BundleImportReport } from "./bindings/BundleImportReport";
import type { DiagnosisView } from "./bindings/DiagnosisView";
import type { DmView } from "./bindings/DmView";
import type { EngineEvent } from "./bindings/EngineEvent";
import type { ExportFormat } from "./bindings/ExportFormat";
import type { IdentityView } from "./bindings/IdentityView";
import type { LinkHealth } from "./bindings/LinkHealth";
import type { NodeHealth } from "./bindings/NodeHealth";
import type { InviteView } from "./bindings/InviteView";
import type { MemberView } from "./bindings/MemberView";
import type { MessageView } from "./bindings/MessageView";
import type { NetworkView } from "./bindings/NetworkView";
import type { PeerView } from "./bindings/PeerView";
import type { RelayView } from "./bindings/RelayView";
import type { LockView } from "./bindings/LockView";
import { MIN_PASSPHRASE_CHARS } from "./bindings/limits";
import type { RoomView } from "./bindings/RoomView";
import type { StatusView } from "./bindings/StatusView";
import { AppError, type AppErrorCode, type Backend } from "./ipc";
import { INVITE_FILTER, inviteFileName, roomLabel } from "./lib/invite";
import {
  checkBody,
  fallbackFingerprint,
  MAX_BODY_BYTES,
  MAX_DM_BYTES,
  MAX_PRIVATE_BYTES,
  URGENT_MARKER_BYTES,
  mergeMessages,
  updateDelivery,
} from "./lib/messages";

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

/** What the main pane shows. */
export type PaneKind = "room" | "dm" | "network" | "identity";

/** Progress of an export or a bundle being written, or of a bundle being imported. */
export interface ExportProgress {
  /** The file being written (or read). */
  path: string;
  /** Export: messages written; bundle import: bytes read. */
  done: number;
  /** Export: messages to write; bundle import: size of the file, bytes. */
  total: number;
  /** A bundle (absent: a message export). */
  kind?: "bundle_export" | "bundle_import";
  /** Bundle: records written or read so far. */
  records?: number;
}

/** File type of bundles in the save and open dialogs. */
export const BUNDLE_FILTER = { name: "DisasterNet bundle", extensions: ["dnb"] };

/** Default file name of a bundle of one room (or all, `null`). */
export function bundleFileName(room: string | null): string {
  return `disasternet-${room ?? "all-rooms"}.dnb`;
}

/** A date input's value (`YYYY-MM-DD`) as ms since the epoch at midnight UTC; null if empty or invalid. */
export function sinceMsOf(date: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date.trim());
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const ms = Date.UTC(y, mo - 1, d);
  const back = new Date(ms);
  return back.getUTCFullYear() === y && back.getUTCMonth() === mo - 1 && back.getUTCDate() === d ? ms : null;
}

/** The result line of a bundle import, with what was not imported and why. */
export function bundleImportSummary(r: BundleImportReport): string {
  const n = (x: number, one: string, many: string): string =>
    `${x.toLocaleString("en-US")} ${x === 1 ? one : many}`;
  const parts = [`${n(r.duplicates, "was", "were")} already here`];
  if (r.refused > 0) parts.push(`${n(r.refused, "was", "were")} refused by this laptop's rules`);
  if (r.invalid > 0) parts.push(`${n(r.invalid, "was", "were")} not validly signed and skipped`);
  let line =
    `Imported ${n(r.imported, "new message", "new messages")} from ${r.path} ` +
    `(${n(r.total, "message", "messages")} in the bundle: ${parts.join(", ")}).`;
  if (r.truncated) {
    line += " The file is cut short: messages after the cut are missing.";
  } else if (!r.checksum_ok) {
    line += " The file was altered or damaged: every valid message in it was imported.";
  }
  if (r.imported > 0) line += " They go on to the peers of this camp like received messages.";
  return line;
}

/** Identity backup, restore and exports (shown in the "Identity & export" pane). */
export interface TransferState {
  /** A dialog or a backup / restore / export call is in progress. */
  busy: boolean;
  /** One line about the last completed backup, restore or export, or null. */
  done: string | null;
  /** The export being written (from the engine's progress events), or null. */
  progress: ExportProgress | null;
}

/** Export formats offered in the app, with the file type for the save dialog. */
export const EXPORT_FORMATS: Readonly<Record<ExportFormat, { label: string; extension: string }>> = {
  jsonl: { label: "Signed JSON Lines (verifiable)", extension: "jsonl" },
  csv: { label: "CSV spreadsheet", extension: "csv" },
  html: { label: "Printable HTML report", extension: "html" },
};

/** Default file name of an export. */
export function exportFileName(room: string | null, format: ExportFormat): string {
  return `disasternet-${room ?? "all-rooms"}.${EXPORT_FORMATS[format].extension}`;
}

/** Default file name of an identity backup. */
export const BACKUP_FILE_NAME = "disasternet-identity.key";

/** File type of identity backups in the save and open dialogs. */
export const BACKUP_FILTER = { name: "DisasterNet identity backup", extensions: ["key"] };

/** Direct messages with one peer, oldest first. */
export interface DmThread {
  items: DmView[];
  loading: boolean;
}

/** Direct messages fetched when a conversation opens. */
export const DM_PAGE_SIZE = 200;

/** The members of a private room, as this node knows them. */
export interface MemberList {
  /** Admins first (engine order). */
  items: MemberView[];
  loading: boolean;
}

/** The invite dialog of a private room (open while this is not null). */
export interface InviteState {
  /** The room (its id). */
  room: string;
  /** The invite, once the engine answered. */
  invite: InviteView | null;
  loading: boolean;
  /** An invite file is being chosen or written. */
  saving: boolean;
  /** The invite file written last (from this dialog), or null. */
  savedTo: string | null;
  /** Why the invite could not be made or saved (shown in the dialog), or null. */
  error: string | null;
}

export interface AppState {
  /** `failed`: the engine could not start (see `fatal`). */
  phase: Phase;
  fatal: AppError | null;
  identity: IdentityView | null;
  status: StatusView | null;
  /** Joined rooms first, then rooms with stored messages (engine order, new joins appended). */
  rooms: RoomView[];
  peers: PeerView[];
  /** Relay addresses this node keeps dialling (Peers → Relays). */
  relays: RelayView[];
  /** A relay add / remove is in flight; why the last one was refused (shown by the form). */
  relayForm: { busy: boolean; problem: string | null };
  /** The mesh as this node sees it (from status and network events). */
  network: NetworkView | null;
  /** This node's link health and gossip counters (from status and health events). */
  health: NodeHealth | null;
  /** Health of each connected peer's link, by peer id (from health events). */
  links: Readonly<Record<string, LinkHealth>>;
  selectedRoom: string | null;
  messages: Readonly<Record<string, RoomMessages>>;
  /** Messages that arrived in rooms other than the selected one, since last viewed. */
  unread: Readonly<Record<string, number>>;
  /** Per room: id of the first message that arrived unread (start of the "new" marker). */
  firstUnread: Readonly<Record<string, string>>;
  /** Per room: where the "new messages" marker is shown while the room is open. */
  newMarker: Readonly<Record<string, string>>;
  /** Main pane: the selected room, a direct conversation, or the network map. */
  pane: PaneKind;
  /** Peer (node id) of the open direct conversation. */
  selectedDm: string | null;
  /** Direct conversations loaded or seen this session, by peer id. */
  dms: Readonly<Record<string, DmThread>>;
  /** Peers with direct messages (or an opened conversation) this session, most recent first. */
  dmPeers: string[];
  /** Direct messages received in conversations not open, by peer id. */
  dmUnread: Readonly<Record<string, number>>;
  errors: Notice[];
  /** Identity backup / export in the "Identity & export" pane. */
  transfer: TransferState;
  /** A set-name / join / send call is in flight. */
  pending: { name: boolean; join: boolean; send: boolean; privateRoom: boolean; joinInvite: boolean };
  /** Authors blocked on this data directory (their messages are hidden and not relayed). */
  blocked: BlockedView[];
  /** Members of private rooms whose member list was opened, by room. */
  members: Readonly<Record<string, MemberList>>;
  /** The open invite dialog, or null. */
  invite: InviteState | null;
  /** "Lock this laptop's DisasterNet" in the "Identity & export" pane. */
  lock: LockState;
  /** Urgent messages of joined rooms not acknowledged yet, newest first (engine: at most 100). */
  urgent: MessageView[];
}

/** The passphrase lock as the identity pane shows it. */
export interface LockState {
  /** Whether the data directory is locked (null until asked). */
  locked: boolean | null;
  /** A set / change / remove is running (setting or removing re-writes the store). */
  busy: boolean;
  /** What the last action did, for the status line. */
  done: string | null;
  /** Why the last action was refused (shown beside the form; nothing changed). */
  problem: string | null;
}

export const initialState: AppState = {
  phase: "starting",
  fatal: null,
  identity: null,
  status: null,
  rooms: [],
  peers: [],
  relays: [],
  relayForm: { busy: false, problem: null },
  network: null,
  health: null,
  links: {},
  selectedRoom: null,
  messages: {},
  unread: {},
  firstUnread: {},
  newMarker: {},
  pane: "room",
  selectedDm: null,
  dms: {},
  dmPeers: [],
  dmUnread: {},
  errors: [],
  transfer: { busy: false, done: null, progress: null },
  pending: { name: false, join: false, send: false, privateRoom: false, joinInvite: false },
  blocked: [],
  members: {},
  invite: null,
  lock: { locked: null, busy: false, done: null, problem: null },
  urgent: [],
};

/** Urgent messages pinned at the top of a room, at most (the newest ones). */
export const MAX_PINNED_URGENT = 20;

/** The urgent messages pinned in `room`: unacknowledged, newest first, at most 20. */
export function pinnedUrgent(state: AppState, room: string): MessageView[] {
  return state.urgent.filter((m) => m.room === room).slice(0, MAX_PINNED_URGENT);
}

/** Urgent messages not acknowledged, for the status bar ("2 urgent"). */
export function urgentCount(state: AppState): number {
  // The engine lists at most 100; past that its count (status) says how many.
  return state.urgent.length < 100 ? state.urgent.length : Math.max(100, state.status?.urgent_unacked ?? 0);
}

export type Listener = (state: AppState, previous: AppState) => void;

/** Status lines of the passphrase lock. */
export const LOCKED_DONE =
  "Locked: DisasterNet now asks for this passphrase at every start. Without it nothing on this laptop can be read.";
export const CHANGED_DONE = "Passphrase changed. Use the new one from the next start.";
export const REMOVED_DONE = "Passphrase removed: the key and the messages on this laptop are no longer encrypted.";
export const WRONG_PASSPHRASE = "That is not the current passphrase. Nothing was changed.";

/** Why a new passphrase (typed twice) cannot be used, or null. */
export function newPassphraseProblem(passphrase: string, again: string): string | null {
  if ([...passphrase].length < MIN_PASSPHRASE_CHARS) {
    return `Use at least ${MIN_PASSPHRASE_CHARS} characters.`;
  }
  if (passphrase !== again) return "The two passphrases are not the same.";
  return null;
}

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

/** Display name of a node: peer name, our own name, a DM author name, or its fingerprint. */
export function nameOf(state: AppState, nodeId: string): string {
  if (state.identity?.id === nodeId && state.identity.name) return state.identity.name;
  const peer = state.peers.find((p) => p.id === nodeId);
  if (peer?.name) return peer.name;
  const dm = state.dms[nodeId]?.items.find((d) => !d.outgoing && d.author_name);
  if (dm) return dm.author_name;
  const node = state.network?.nodes.find((n) => n.id === nodeId);
  if (node?.name) return node.name;
  return fingerprintOf(state, nodeId);
}

/**
 * The notice that removed this node from a private room, from its loaded messages (the newest
 * removal of this node not followed by a join of its own), or null.
 */
export function removalOf(state: AppState, room: string): MessageView | null {
  const me = state.identity?.id;
  const items = state.messages[room]?.items;
  if (!me || !items) return null;
  for (let i = items.length - 1; i >= 0; i--) {
    const m = items[i];
    if (m?.kind === "join" && m.author === me) return null;
    if (m?.kind === "remove" && m.subject === me) return m;
  }
  return null;
}

/** What the composer writes to now, or null when it cannot write. */
export interface ComposeTarget {
  placeholder: string;
  canWrite: boolean;
  limit: number;
}

export function composeTarget(state: AppState): ComposeTarget {
  const ready = state.phase === "ready";
  if (state.pane === "network" || state.pane === "identity") {
    return { placeholder: "Open a room or a conversation to write", canWrite: false, limit: MAX_BODY_BYTES };
  }
  if (state.pane === "dm" && state.selectedDm !== null) {
    return {
      placeholder: `Direct message to ${nameOf(state, state.selectedDm)} (end-to-end encrypted)`,
      canWrite: ready,
      limit: MAX_DM_BYTES,
    };
  }
  const room = selectedRoom(state);
  if (room?.private && removalOf(state, room.name)) {
    // Nobody would read it: the room has moved to a key this node does not have.
    return { placeholder: `You were removed from ${roomLabel(room)}`, canWrite: false, limit: MAX_BODY_BYTES };
  }
  return {
    placeholder: !room
      ? "Join a room to write"
      : room.joined
        ? `Message ${roomLabel(room)}`
        : `Join ${roomLabel(room)} to write here`,
    canWrite: ready && room !== null && room.joined,
    limit: room?.private ? MAX_PRIVATE_BYTES : MAX_BODY_BYTES,
  };
}

/**
 * Whether relay `relay` is connected now: the peer that answered at its address (known from
 * the peer list, which peer events keep current) is connected.
 */
export function relayConnected(state: AppState, relay: RelayView): boolean {
  const peer = state.peers.find(
    (p) => (relay.id !== null && p.id === relay.id) || (p.relay && p.relay_addr === relay.addr),
  );
  return peer ? peer.connected : relay.connected;
}

/** Peers to list: connected first, then by name. */
/** The health of the link to a connected peer: the latest health event's, else the peer list's. */
export function peerLink(state: AppState, peer: PeerView): LinkHealth | null {
  if (!peer.connected) return null;
  return state.links[peer.id] ?? peer.link ?? null;
}

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
  /** Peer events so far, and the latest one per peer (see `refreshPeers`). */
  private peerEventSeq = 0;
  private readonly peerEvents = new Map<string, { seq: number; peer: PeerView }>();

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

  /** Runs `action` with `pending[key]` set; errors are reported. Returns true on success. */
  private async whilePending(key: keyof AppState["pending"], action: () => Promise<void>): Promise<boolean> {
    this.setPending(key, true);
    try {
      await action();
      return true;
    } catch (raw) {
      this.report(raw);
      return false;
    } finally {
      this.setPending(key, false);
    }
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
        restarted: () => void this.restarted(),
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

  /** The engine restarted with another identity: everything is reloaded, identity first. */
  private async restarted(): Promise<void> {
    try {
      this.set({ identity: await this.backend.identity(), phase: "ready", fatal: null });
    } catch (raw) {
      this.report(raw);
    }
    await this.reload();
  }

  /** Refetches status, rooms, peers, the selected room's newest page and the open DM. */
  async reload(): Promise<void> {
    await Promise.all([
      this.refreshStatus(),
      this.refreshRooms(),
      this.refreshPeers(),
      this.refreshRelays(),
      this.refreshBlocked(),
      this.refreshLock(),
      this.refreshUrgent(),
    ]);
    const room = this.current.selectedRoom;
    if (room !== null) await this.loadLatest(room);
    const peer = this.current.selectedDm;
    if (this.current.pane === "dm" && peer !== null) await this.reloadDm(peer);
  }

  /** Merges the newest direct messages with `peer` into what is loaded. */
  private async reloadDm(peer: string): Promise<void> {
    try {
      const log = await this.backend.dmLog(peer, DM_PAGE_SIZE);
      const now = this.current.dms[peer];
      this.setDmThread(peer, { items: mergeDms(now?.items ?? [], log), loading: false });
    } catch (raw) {
      this.report(raw);
    }
  }

  private async refreshStatus(): Promise<void> {
    try {
      const status = await this.backend.status();
      this.set({ status, identity: status.identity, network: status.network, health: status.health });
    } catch (raw) {
      this.report(raw);
    }
  }

  private async refreshUrgent(): Promise<void> {
    try {
      this.set({ urgent: await this.backend.urgentMessages(null) });
    } catch (raw) {
      this.report(raw);
    }
  }

  /**
   * Acknowledges one urgent message of `room` (`id`), or all of them (`null`): it is no longer
   * pinned or counted (on this laptop only).
   */
  async ackUrgent(room: string, id: string | null): Promise<void> {
    try {
      this.upsertRoom(await this.backend.ackUrgent(room, id));
    } catch (raw) {
      this.report(raw);
      return;
    }
    const done = (m: MessageView): boolean => m.room === room && (id === null || m.id === id);
    this.set({ urgent: this.current.urgent.filter((m) => !done(m)) });
    const loaded = this.current.messages[room];
    if (loaded && loaded.items.some((m) => m.urgent && !m.acknowledged && done(m))) {
      const items = loaded.items.map((m) => (m.urgent && done(m) ? { ...m, acknowledged: true } : m));
      this.setRoomMessages(room, { ...loaded, items });
    }
  }

  /** Opens the room of the newest unacknowledged urgent message (status bar "1 urgent"). */
  async showUrgent(): Promise<void> {
    const newest = this.current.urgent[0];
    if (newest) await this.selectRoom(newest.room);
  }

  private async refreshRooms(): Promise<void> {
    try {
      this.set({ rooms: await this.backend.rooms() });
    } catch (raw) {
      this.report(raw);
    }
  }

  private async refreshBlocked(): Promise<void> {
    try {
      this.set({ blocked: await this.backend.blockedAuthors() });
    } catch (raw) {
      this.report(raw);
    }
  }

  /**
   * Blocks (or unblocks) an author. Blocking hides their loaded messages at once; unblocking
   * reloads the open room so their stored messages show again.
   */
  async setBlocked(author: string, blocked: boolean): Promise<void> {
    try {
      this.set({ blocked: await this.backend.blockAuthor(author, blocked) });
    } catch (raw) {
      this.report(raw);
      return;
    }
    void this.refreshUrgent();
    if (blocked) {
      for (const [room, list] of Object.entries(this.current.messages)) {
        const items = list.items.filter((m) => m.author !== author);
        if (items.length !== list.items.length) this.setRoomMessages(room, { ...list, items });
      }
    } else if (this.current.selectedRoom !== null) {
      await this.loadLatest(this.current.selectedRoom);
    }
  }

  private async refreshRelays(): Promise<void> {
    try {
      this.set({ relays: await this.backend.relays() });
    } catch (raw) {
      this.report(raw);
    }
  }

  /**
   * Adds a relay address. A refusal (a malformed address) is shown beside the form, not in
   * the banner, and the typed text stays. Returns true on success.
   */
  async addRelay(raw: string): Promise<boolean> {
    const addr = raw.trim();
    if (addr === "") {
      this.set({ relayForm: { busy: false, problem: "Type the relay's address, e.g. relay.example.org:7300." } });
      return false;
    }
    return this.relayAction(() => this.backend.addRelay(addr));
  }

  /** Forgets a relay address. Returns true on success. */
  async removeRelay(addr: string): Promise<boolean> {
    return this.relayAction(() => this.backend.removeRelay(addr));
  }

  private async relayAction(action: () => Promise<RelayView[]>): Promise<boolean> {
    this.set({ relayForm: { busy: true, problem: null } });
    try {
      const relays = await action();
      this.set({ relays, relayForm: { busy: false, problem: null } });
      return true;
    } catch (raw) {
      const error = AppError.from(raw);
      this.set({ relayForm: { busy: false, problem: error.message } });
      return false;
    }
  }

  private async refreshPeers(): Promise<void> {
    try {
      const since = this.peerEventSeq;
      const fetched = await this.backend.peers();
      // A peer event that arrived while the list was being fetched is newer than the list:
      // keep it (a connection made meanwhile must not vanish from the sidebar).
      const newer = [...this.peerEvents.values()].filter((e) => e.seq > since).map((e) => e.peer);
      const peers = fetched.map((p) => newer.find((n) => n.id === p.id) ?? p);
      for (const n of newer) if (!peers.some((p) => p.id === n.id)) peers.push(n);
      this.set({ peers });
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
    return this.whilePending("name", async () => {
      this.set({ identity: await this.backend.setName(name) });
    });
  }

  /** Joins (or creates) a room and selects it. Returns true on success. */
  async joinRoom(raw: string): Promise<boolean> {
    const name = raw.trim();
    if (name.length === 0) {
      this.report(new AppError("invalid_input", "Please enter a room name."));
      return false;
    }
    return this.whilePending("join", async () => {
      const room = await this.backend.joinRoom(name);
      this.upsertRoom(room);
      await this.selectRoom(room.name);
    });
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
      // Urgent messages are pinned and counted for joined rooms only (as the engine lists them).
      if (!room.joined) this.set({ urgent: this.current.urgent.filter((m) => m.room !== room.name) });
    } catch (raw) {
      this.report(raw);
    }
  }

  /** Mutes or unmutes a room's notifications (the engine keeps it, per data directory). */
  async setMuted(name: string, muted: boolean): Promise<void> {
    try {
      this.upsertRoom(await this.backend.setMuted(name, muted));
    } catch (raw) {
      this.report(raw);
    }
  }

  // ------------------------------------------------------------ private rooms

  /**
   * Runs `action` with `pending[key]` set. Returns null on success, else the error (not put in
   * the banner: the dialog that asked shows it, and keeps what the user typed).
   */
  private async attempt(key: keyof AppState["pending"], action: () => Promise<void>): Promise<AppError | null> {
    if (this.current.pending[key]) return new AppError("busy", "Still working on the previous request.");
    this.setPending(key, true);
    try {
      await action();
      return null;
    } catch (raw) {
      return AppError.from(raw);
    } finally {
      this.setPending(key, false);
    }
  }

  /**
   * Creates a private room named `raw`, selects it and opens its invite dialog. Returns null on
   * success, else why not (for the dialog that asked).
   */
  async createPrivateRoom(raw: string): Promise<AppError | null> {
    const title = raw.trim();
    if (title.length === 0) return new AppError("invalid_input", "Please enter a name for the private room.");
    let created: RoomView | null = null;
    const error = await this.attempt("privateRoom", async () => {
      created = await this.backend.createPrivateRoom(title);
    });
    if (error || created === null) return error;
    const room: RoomView = created;
    this.upsertRoom(room);
    await this.selectRoom(room.name);
    await this.openInvite(room.name);
    return null;
  }

  /**
   * Joins a private room with an invite code or an invite file's text, and selects it. Returns
   * null on success, else the engine's error (e.g. a typo in the code) for the dialog.
   */
  async joinInvite(raw: string): Promise<AppError | null> {
    const invite = raw.trim();
    if (invite.length === 0) return new AppError("invalid_input", "Paste the invite code you were given first.");
    let joined: RoomView | null = null;
    const error = await this.attempt("joinInvite", async () => {
      joined = await this.backend.joinInvite(invite);
    });
    if (error || joined === null) return error;
    const room: RoomView = joined;
    this.upsertRoom(room);
    await this.selectRoom(room.name);
    return null;
  }

  /** Opens the invite dialog of a private room and fetches its invite (at its current key). */
  async openInvite(room: string): Promise<void> {
    this.set({ invite: { room, invite: null, loading: true, saving: false, savedTo: null, error: null } });
    await this.refreshInvite(room);
  }

  /** Fetches the invite again if its dialog is open on `room` (its key may have changed). */
  private async refreshInvite(room: string): Promise<void> {
    if (this.current.invite?.room !== room) return;
    try {
      const invite = await this.backend.roomInvite(room, null);
      const now = this.current.invite;
      if (now?.room === room) this.set({ invite: { ...now, invite, loading: false, error: null } });
    } catch (raw) {
      const now = this.current.invite;
      if (now?.room === room) this.set({ invite: { ...now, loading: false, error: AppError.from(raw).message } });
    }
  }

  closeInvite(): void {
    if (this.current.invite !== null) this.set({ invite: null });
  }

  /**
   * Asks where to save, then writes the open invite to that file. Returns the path written, or
   * null when cancelled or failed (the dialog shows why).
   */
  async saveInviteFile(): Promise<string | null> {
    const start = this.current.invite;
    if (start === null || start.saving) return null;
    const room = start.room;
    const patch = (p: Partial<InviteState>): void => {
      const now = this.current.invite;
      if (now?.room === room) this.set({ invite: { ...now, ...p } });
    };
    patch({ saving: true, error: null });
    try {
      const title = start.invite?.title ?? this.current.rooms.find((r) => r.name === room)?.title ?? "room";
      const path = await this.backend.pickSavePath(inviteFileName(title), INVITE_FILTER);
      if (path === null) return null;
      const written = await this.backend.roomInvite(room, path);
      const savedTo = written.path ?? path;
      patch({ invite: written, savedTo });
      return savedTo;
    } catch (raw) {
      patch({ error: AppError.from(raw).message });
      return null;
    } finally {
      patch({ saving: false });
    }
  }

  /** Fetches the members of a private room. */
  async loadMembers(room: string): Promise<void> {
    const before = this.current.members[room];
    this.setMembers(room, { items: before?.items ?? [], loading: true });
    try {
      this.setMembers(room, { items: await this.backend.members(room), loading: false });
    } catch (raw) {
      this.setMembers(room, { items: this.current.members[room]?.items ?? [], loading: false });
      this.report(raw);
    }
  }

  /**
   * Removes a member from a private room (admins only; the view asks to confirm first): the
   * engine writes a signed notice and sends a new key to everyone else. True when removed.
   */
  async removeMember(room: string, member: string): Promise<boolean> {
    return this.changeMembers(room, () => this.backend.removeMember(room, member));
  }

  /** Makes a member of a private room an admin (admins only). True when done. */
  async promoteMember(room: string, member: string): Promise<boolean> {
    return this.changeMembers(room, () => this.backend.promoteMember(room, member));
  }

  private async changeMembers(room: string, change: () => Promise<MemberView[]>): Promise<boolean> {
    try {
      this.setMembers(room, { items: await change(), loading: false });
    } catch (raw) {
      this.report(raw);
      return false;
    }
    // The notice it wrote, and the room's new state (key epoch, counts).
    await Promise.all([this.current.messages[room] ? this.loadLatest(room) : null, this.refreshRooms()]);
    return true;
  }

  /** A private room changed (a key arrived, or its members): reload what is shown of it. */
  private async roomChanged(room: RoomView): Promise<void> {
    this.upsertRoom(room);
    await Promise.all([
      this.current.messages[room.name] ? this.loadLatest(room.name) : null,
      this.current.members[room.name] ? this.loadMembers(room.name) : null,
      this.refreshInvite(room.name),
    ]);
  }

  private setMembers(room: string, list: MemberList): void {
    this.set({ members: { ...this.current.members, [room]: list } });
  }

  /** Shows a room, fetching its newest page the first time. */
  async selectRoom(name: string): Promise<void> {
    const { unread, firstUnread, newMarker, selectedRoom: previous } = this.current;
    const nextUnread = { ...unread };
    delete nextUnread[name];
    const nextFirst = { ...firstUnread };
    delete nextFirst[name];
    const nextMarker = { ...newMarker };
    // The marker of a room stays while it is open; it goes when another room is opened.
    if (previous !== null && previous !== name) delete nextMarker[previous];
    const first = firstUnread[name];
    if (first !== undefined) nextMarker[name] = first;
    this.set({
      selectedRoom: name,
      pane: "room",
      unread: nextUnread,
      firstUnread: nextFirst,
      newMarker: nextMarker,
    });
    if (!this.current.messages[name]) await this.loadLatest(name);
  }

  /** Shows the network map, refreshing it. */
  /** Opens the "Identity & export" pane. */
  showIdentity(): void {
    this.set({ pane: "identity" });
  }

  /**
   * Asks where to save, then writes the identity backup there. Returns the path written, or
   * null when cancelled or failed (failures are reported).
   */
  async backupIdentity(): Promise<string | null> {
    return this.transferTo(
      () => this.backend.pickSavePath(BACKUP_FILE_NAME, BACKUP_FILTER),
      async (path) => {
        const s = await this.backend.backupIdentity(path);
        return [s.path, `Identity backed up to ${s.path}. Keep this file safe: it IS your identity.`];
      },
    );
  }

  /**
   * Asks where to save, then exports `room` (all rooms when null) in `format`. Returns the path
   * written, or null when cancelled or failed (failures are reported).
   */
  async exportMessages(room: string | null, format: ExportFormat): Promise<string | null> {
    const { label, extension } = EXPORT_FORMATS[format];
    return this.transferTo(
      () => this.backend.pickSavePath(exportFileName(room, format), { name: label, extensions: [extension] }),
      async (path) => {
        this.set({ transfer: { ...this.current.transfer, progress: { path, done: 0, total: 0 } } });
        const s = await this.backend.exportMessages(room, format, path);
        const n = `${s.messages} ${s.messages === 1 ? "message" : "messages"}`;
        return [s.path, `Exported ${n} to ${s.path}.`];
      },
    );
  }

  /**
   * Asks for a backup file, then replaces this node's identity with it (the engine restarts;
   * the previous key is kept). The pane asks the user to confirm before calling this. Returns
   * the new node id, or null when cancelled or failed (failures are reported).
   */
  async restoreIdentity(): Promise<string | null> {
    return this.transferTo(
      () => this.backend.pickOpenPath(BACKUP_FILTER),
      async (path) => {
        const r = await this.backend.restoreIdentity(path);
        await this.restarted();
        const fp = this.current.identity?.fingerprint ?? r.id.slice(0, 8);
        const kept = r.previous_key ? ` The previous key was kept as ${r.previous_key}.` : "";
        return [r.id, `Identity restored from ${path}: this device is now ${fp}.${kept}`];
      },
    );
  }

  private async refreshLock(): Promise<void> {
    try {
      const v = await this.backend.lockState();
      this.set({ lock: { ...this.current.lock, locked: v.locked } });
    } catch (raw) {
      this.report(raw);
    }
  }

  /**
   * Locks this laptop's DisasterNet with `passphrase` (typed twice). Returns true when done; a
   * refusal (too short, not the same twice, the engine's error) is shown beside the form.
   */
  async lockWithPassphrase(passphrase: string, again: string): Promise<boolean> {
    const problem = newPassphraseProblem(passphrase, again);
    return this.lockAction(problem, () => this.backend.setPassphrase(passphrase), LOCKED_DONE);
  }

  /** Changes the passphrase (`next` typed twice). */
  async changePassphrase(current: string, next: string, again: string): Promise<boolean> {
    const problem = current === "" ? "Type the current passphrase." : newPassphraseProblem(next, again);
    return this.lockAction(problem, () => this.backend.changePassphrase(current, next), CHANGED_DONE);
  }

  /** Removes the passphrase (the current one must be given). */
  async removePassphrase(current: string): Promise<boolean> {
    const problem = current === "" ? "Type the current passphrase." : null;
    return this.lockAction(problem, () => this.backend.removePassphrase(current), REMOVED_DONE);
  }

  private async lockAction(
    problem: string | null,
    action: () => Promise<LockView>,
    done: string,
  ): Promise<boolean> {
    if (this.current.lock.busy) return false;
    if (problem !== null) {
      this.set({ lock: { ...this.current.lock, problem, done: null } });
      return false;
    }
    this.set({ lock: { ...this.current.lock, busy: true, problem: null, done: null } });
    try {
      const v = await action();
      this.set({ lock: { locked: v.locked, busy: false, problem: null, done } });
      return true;
    } catch (raw) {
      const e = AppError.from(raw);
      const problem = e.code === "wrong_passphrase" ? WRONG_PASSPHRASE : e.message;
      this.set({ lock: { ...this.current.lock, busy: false, problem } });
      return false;
    }
  }

  /** Runs one dialog + backup / restore / export, one at a time, and records the outcome. */
  private async transferTo(
    pick: () => Promise<string | null>,
    write: (path: string) => Promise<[string, string]>,
  ): Promise<string | null> {
    if (this.current.transfer.busy) return null;
    this.set({ transfer: { ...this.current.transfer, busy: true } });
    let done = this.current.transfer.done;
    try {
      const path = await pick();
      if (path === null) return null;
      const [written, line] = await write(path);
      done = line;
      return written;
    } catch (raw) {
      this.report(raw);
      return null;
    } finally {
      this.set({ transfer: { busy: false, done, progress: null } });
    }
  }

  private applyExportProgress(path: string, done: number, total: number, records?: number): void {
    const t = this.current.transfer;
    if (!t.busy || t.progress?.path !== path) return; // not ours (e.g. a CLI export)
    const progress: ExportProgress = { ...t.progress, path, done, total };
    if (records !== undefined) progress.records = records;
    this.set({ transfer: { ...t, progress } });
  }

  /**
   * Asks where to save, then writes a bundle of one room (or all, `null`) there, only messages
   * dated `sinceMs` or later when given.
   */
  async exportBundle(room: string | null, sinceMs: number | null = null): Promise<string | null> {
    return this.transferTo(
      () => this.backend.pickSavePath(bundleFileName(room), BUNDLE_FILTER),
      async (path) => {
        const progress: ExportProgress = { path, done: 0, total: 0, kind: "bundle_export", records: 0 };
        this.set({ transfer: { ...this.current.transfer, progress } });
        const s = await this.backend.exportBundle(path, room === null ? null : [room], sinceMs);
        const n = `${s.messages.toLocaleString("en-US")} ${s.messages === 1 ? "message" : "messages"}`;
        return [s.path, `Wrote a bundle of ${n} to ${s.path}. Import it on a laptop of the other camp.`];
      },
    );
  }

  /** Asks for a bundle file, then imports it; the summary says what came in and what not. */
  async importBundle(): Promise<string | null> {
    return this.transferTo(
      () => this.backend.pickOpenPath(BUNDLE_FILTER),
      async (path) => {
        const progress: ExportProgress = { path, done: 0, total: 0, kind: "bundle_import", records: 0 };
        this.set({ transfer: { ...this.current.transfer, progress } });
        const r = await this.backend.importBundle(path);
        return [r.path, bundleImportSummary(r)];
      },
    );
  }

  /** The engine's network diagnosis (errors are the caller's: the panel shows them inline). */
  diagnose(): Promise<DiagnosisView> {
    return this.backend.diagnose();
  }

  async showNetwork(): Promise<void> {
    this.set({ pane: "network" });
    try {
      this.set({ network: await this.backend.network() });
    } catch (raw) {
      this.report(raw);
    }
  }

  /** Opens the direct conversation with `peer` (node id), loading its history. */
  async openDm(peer: string): Promise<void> {
    const dmUnread = { ...this.current.dmUnread };
    delete dmUnread[peer];
    const before = this.current.dms[peer];
    this.set({
      pane: "dm",
      selectedDm: peer,
      dmUnread,
      dmPeers: this.current.dmPeers.includes(peer) ? this.current.dmPeers : [peer, ...this.current.dmPeers],
      dms: { ...this.current.dms, [peer]: { items: before?.items ?? [], loading: true } },
    });
    try {
      const log = await this.backend.dmLog(peer, DM_PAGE_SIZE);
      const now = this.current.dms[peer];
      this.setDmThread(peer, { items: mergeDms(now?.items ?? [], log), loading: false });
    } catch (raw) {
      const now = this.current.dms[peer];
      this.setDmThread(peer, { items: now?.items ?? [], loading: false });
      this.report(raw);
    }
  }

  /** Sends a direct message in the open conversation. Returns true when it was stored. */
  async sendDm(body: string, urgent = false): Promise<boolean> {
    const peer = this.current.selectedDm;
    if (peer === null) {
      this.report(new AppError("invalid_input", "Open a conversation first."));
      return false;
    }
    const check = checkBody(body, MAX_DM_BYTES);
    if (check.problem !== null) {
      this.report(new AppError("invalid_input", check.problem));
      return false;
    }
    return this.whilePending("send", async () => {
      this.addDm(await this.backend.sendDm(peer, body, urgent));
    });
  }

  /** Sends to whatever the main pane shows (room or direct conversation). */
  async sendCurrent(body: string, urgent = false): Promise<boolean> {
    return this.current.pane === "dm" ? this.sendDm(body, urgent) : this.send(body, urgent);
  }

  /** Re-reads the delivery state of a room's newest page (after `delivery_changed`). */
  async refreshDelivery(room: string): Promise<void> {
    if (!this.current.messages[room]) return;
    try {
      const page = await this.backend.messages(room, PAGE_SIZE, null);
      const loaded = this.current.messages[room];
      if (!loaded) return;
      const items = updateDelivery(loaded.items, page);
      if (items !== loaded.items) this.setRoomMessages(room, { ...loaded, items });
    } catch (raw) {
      this.report(raw);
    }
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
   * 8192 bytes, the urgent marker included) without calling it. Returns true when the message
   * was stored. `urgent`: marked urgent (goes first, pinned for everyone until acknowledged).
   */
  async send(body: string, urgent = false): Promise<boolean> {
    const room = selectedRoom(this.current);
    if (!room) {
      this.report(new AppError("invalid_input", "Select or join a room first."));
      return false;
    }
    if (!room.joined) {
      this.report(new AppError("invalid_input", `Join ${roomLabel(room)} to send messages there.`));
      return false;
    }
    const limit = (room.private ? MAX_PRIVATE_BYTES : MAX_BODY_BYTES) - (urgent ? URGENT_MARKER_BYTES : 0);
    const check = checkBody(body, limit);
    if (check.problem !== null) {
      this.report(new AppError("invalid_input", check.problem));
      return false;
    }
    return this.whilePending("send", async () => {
      const message = await this.backend.send(room.name, body, urgent);
      this.addMessage(message);
    });
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
      case "health":
        this.set({ health: event.health, links: Object.fromEntries(event.links.map((l) => [l.id, l.link])) });
        break;
      case "delivery":
        this.applyDelivery(event.id, event.sent_to, event.held_by);
        break;
      case "delivery_changed":
        void this.refreshDelivery(event.room);
        break;
      case "room_changed":
        void this.roomChanged(event.room);
        break;
      case "dm":
        this.addDm(event.dm);
        break;
      case "export_progress":
        this.applyExportProgress(event.path, event.done, event.total);
        break;
      case "bundle_progress":
        this.applyExportProgress(event.path, event.done, event.total, event.records);
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
    this.set({ status, identity: status.identity, network: status.network, health: status.health, rooms });
  }

  // ------------------------------------------------------------ state helpers

  private applyDelivery(id: string, sentTo: number, heldBy: number): void {
    for (const [room, loaded] of Object.entries(this.current.messages)) {
      const items = updateDelivery(loaded.items, [
        { id, sent_to: sentTo, held_by: heldBy } as MessageView,
      ]);
      if (items !== loaded.items) {
        this.setRoomMessages(room, { ...loaded, items });
        return;
      }
    }
  }

  private addDm(dm: DmView): void {
    const thread = this.current.dms[dm.peer];
    const items = mergeDms(thread?.items ?? [], [dm]);
    if (thread && items === thread.items) return; // already shown
    this.setDmThread(dm.peer, { items, loading: thread?.loading ?? false });
    const open = this.current.pane === "dm" && this.current.selectedDm === dm.peer;
    this.touchDmPeer(dm.peer, !open && !dm.outgoing);
  }

  /** Lists `peer` first in the Direct section, counting one unread when asked. */
  private touchDmPeer(peer: string, unread: boolean): void {
    const dmPeers = [peer, ...this.current.dmPeers.filter((p) => p !== peer)];
    const patch: Partial<AppState> = { dmPeers };
    if (unread) {
      patch.dmUnread = { ...this.current.dmUnread, [peer]: (this.current.dmUnread[peer] ?? 0) + 1 };
    }
    this.set(patch);
  }

  private setDmThread(peer: string, thread: DmThread): void {
    this.set({ dms: { ...this.current.dms, [peer]: thread } });
  }

  private addMessage(message: MessageView): void {
    if (message.urgent && !message.acknowledged && !this.current.urgent.some((m) => m.id === message.id)) {
      const joined = this.current.rooms.some((r) => r.name === message.room && r.joined);
      if (joined) {
        const urgent = [message, ...this.current.urgent].sort(
          (a, b) => b.timestamp - a.timestamp || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0),
        );
        this.set({ urgent });
      }
    }
    const loaded = this.current.messages[message.room];
    if (loaded) {
      const items = mergeMessages(loaded.items, [message]);
      if (items === loaded.items) return; // already shown
      this.setRoomMessages(message.room, { ...loaded, items });
    }
    const viewing = this.current.pane === "room" && message.room === this.current.selectedRoom;
    if (!viewing && !message.local) {
      const unread = { ...this.current.unread };
      unread[message.room] = (unread[message.room] ?? 0) + 1;
      const patch: Partial<AppState> = { unread };
      if (this.current.firstUnread[message.room] === undefined) {
        patch.firstUnread = { ...this.current.firstUnread, [message.room]: message.id };
      }
      this.set(patch);
    }
  }

  private upsertRoom(room: RoomView): void {
    const rooms = this.current.rooms.some((r) => r.name === room.name)
      ? this.current.rooms.map((r) => (r.name === room.name ? room : r))
      : [...this.current.rooms, room];
    this.set({ rooms });
  }

  private upsertPeer(peer: PeerView): void {
    if (peer.relay && !this.current.relays.some((r) => r.id === peer.id)) void this.refreshRelays();
    this.peerEventSeq += 1;
    this.peerEvents.set(peer.id, { seq: this.peerEventSeq, peer });
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

/** Merges direct messages by id, ordered by timestamp then id. Same array when nothing new. */
export function mergeDms(list: DmView[], incoming: DmView[]): DmView[] {
  const seen = new Set(list.map((d) => d.id));
  const fresh = incoming.filter((d) => {
    if (seen.has(d.id)) return false;
    seen.add(d.id);
    return true;
  });
  if (fresh.length === 0) return list;
  return [...list, ...fresh].sort((a, b) => a.timestamp - b.timestamp || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
