// The one module that talks to the Rust side. Everything else uses the `Backend` interface, so
// the store and the views can be tested with a fake (or with `mockIPC`).

import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import { open, save } from "@tauri-apps/plugin-dialog";
import { ENGINE_COMMAND, engineApi } from "./bindings/api";
import type { ApiError } from "./bindings/ApiError";
import type { BackupSummary } from "./bindings/BackupSummary";
import type { BundleExportSummary } from "./bindings/BundleExportSummary";
import type { BundleImportReport } from "./bindings/BundleImportReport";
import type { BlockedView } from "./bindings/BlockedView";
import type { DiagnosisView } from "./bindings/DiagnosisView";
import type { DmView } from "./bindings/DmView";
import type { EngineEvent } from "./bindings/EngineEvent";
import type { ErrorCode } from "./bindings/ErrorCode";
import type { ExportFormat } from "./bindings/ExportFormat";
import type { ExportSummary } from "./bindings/ExportSummary";
import type { IdentityView } from "./bindings/IdentityView";
import type { InviteView } from "./bindings/InviteView";
import type { LockView } from "./bindings/LockView";
import type { MemberView } from "./bindings/MemberView";
import type { MessageView } from "./bindings/MessageView";
import type { NetworkView } from "./bindings/NetworkView";
import type { PeerView } from "./bindings/PeerView";
import type { RelayView } from "./bindings/RelayView";
import type { RestoreSummary } from "./bindings/RestoreSummary";
import type { RoomView } from "./bindings/RoomView";
import type { StatusView } from "./bindings/StatusView";

/** Tauri event carrying every engine event (see src-tauri/src/lib.rs). */
export const ENGINE_EVENT = "engine";
/** Tauri event sent when the UI missed engine events and must reload its state. */
export const ENGINE_LAGGED_EVENT = "engine-lagged";
/** Tauri event sent when the engine restarted with another identity (payload: its node id). */
export const ENGINE_RESTARTED_EVENT = "engine-restarted";

/** Where an error came from: an engine `ErrorCode`, or `ipc` when the call itself failed. */
export type AppErrorCode = ErrorCode | "ipc";

/** An error from the Rust side, turned back into a typed JS error. */
export class AppError extends Error {
  readonly code: AppErrorCode;

  constructor(code: AppErrorCode, message: string) {
    super(message);
    this.name = "AppError";
    this.code = code;
  }

  /** Wraps whatever `invoke` rejected with. */
  static from(raw: unknown): AppError {
    if (raw instanceof AppError) return raw;
    if (isApiError(raw)) return new AppError(raw.code, raw.message);
    if (raw instanceof Error) return new AppError("ipc", raw.message);
    return new AppError("ipc", typeof raw === "string" ? raw : JSON.stringify(raw));
  }
}

function isApiError(raw: unknown): raw is ApiError {
  return (
    typeof raw === "object" &&
    raw !== null &&
    typeof (raw as { code?: unknown }).code === "string" &&
    typeof (raw as { message?: unknown }).message === "string"
  );
}

/** Handlers for pushed engine events. */
export interface EventHandlers {
  event(event: EngineEvent): void;
  /** Some events were dropped: reload everything. */
  lagged(): void;
  /** The engine restarted (identity restored): reload everything, identity included. */
  restarted(): void;
}

/** File type offered by the save and open dialogs. */
export interface SaveFilter {
  name: string;
  extensions: string[];
}

/**
 * Everything the UI can ask of the engine and the app. The engine requests delegate to the
 * generated typed functions (bindings/api.ts); the rest are the app's own commands and dialogs.
 */
export interface Backend {
  identity(): Promise<IdentityView>;
  setName(name: string): Promise<IdentityView>;
  joinRoom(room: string): Promise<RoomView>;
  leaveRoom(room: string): Promise<RoomView>;
  /** Mutes or unmutes the room's notifications (kept by the engine). */
  setMuted(room: string, muted: boolean): Promise<RoomView>;
  /** Blocks or unblocks an author (local moderation); the blocked list after the change. */
  blockAuthor(author: string, blocked: boolean): Promise<BlockedView[]>;
  blockedAuthors(): Promise<BlockedView[]>;
  rooms(): Promise<RoomView[]>;
  /** Sends a text; `urgent` marks it (pinned until acknowledged, goes first). */
  send(room: string, body: string, urgent?: boolean): Promise<MessageView>;
  /** Unacknowledged urgent messages, newest first (one room, or every joined room). */
  urgentMessages(room: string | null): Promise<MessageView[]>;
  /** Acknowledges one urgent message (`id`) or all of a room (`null`). */
  ackUrgent(room: string, id: string | null): Promise<RoomView>;
  /** The newest `limit` messages (strictly before message id `before`), oldest first. */
  messages(room: string, limit: number, before: string | null): Promise<MessageView[]>;
  peers(): Promise<PeerView[]>;
  /** Relay addresses this node keeps dialling, with their connection state. */
  relays(): Promise<RelayView[]>;
  /** Remembers a relay address (`host:port`, `[v6]:port`) and dials it; the list after. */
  addRelay(addr: string): Promise<RelayView[]>;
  /** Forgets a relay address; the list after. */
  removeRelay(addr: string): Promise<RelayView[]>;
  status(): Promise<StatusView>;
  /** Exports one room (or all, `null`) in `format` to `path`. */
  exportMessages(room: string | null, format: ExportFormat, path: string): Promise<ExportSummary>;
  /**
   * Writes a bundle of all rooms (`rooms` null) or of `rooms`, messages dated `sinceMs` or
   * later (null: all), to `path`: signed messages for another camp to import.
   */
  exportBundle(path: string, rooms: string[] | null, sinceMs: number | null): Promise<BundleExportSummary>;
  /** Imports the bundle at `path`: verified, duplicates skipped, then spread to the peers. */
  importBundle(path: string): Promise<BundleImportReport>;
  /** Writes a backup of the identity key to `path` (the file IS the identity). */
  backupIdentity(path: string): Promise<BackupSummary>;
  /**
   * Replaces this node's identity with the key in the backup file at `path`; the engine
   * restarts (the previous key is kept next to the new one).
   */
  restoreIdentity(path: string): Promise<RestoreSummary>;
  /** The native save dialog; resolves to the chosen path, or null when cancelled. */
  pickSavePath(defaultName: string, filter: SaveFilter): Promise<string | null>;
  /** The native open dialog for one file; resolves to its path, or null when cancelled. */
  pickOpenPath(filter: SaveFilter): Promise<string | null>;
  /** Sends an end-to-end encrypted direct message to node `to` (64 hex). */
  sendDm(to: string, body: string, urgent: boolean): Promise<DmView>;
  /** The newest `limit` direct messages exchanged with node `peer`, oldest first. */
  dmLog(peer: string, limit: number): Promise<DmView[]>;
  network(): Promise<NetworkView>;
  /** "Why can't I see anyone?": what the node observed of its network, and its findings. */
  diagnose(): Promise<DiagnosisView>;
  /** Creates a private room (this node its creator and admin) and joins it. */
  createPrivateRoom(title: string): Promise<RoomView>;
  /** The invite of a private room; also written to the file at `path` when given. */
  roomInvite(room: string, path: string | null): Promise<InviteView>;
  /** Joins a private room with an invite code (or the text of an invite file). */
  joinInvite(invite: string): Promise<RoomView>;
  /** Members of a private room, admins first. */
  members(room: string): Promise<MemberView[]>;
  /** Removes a member of a private room (admins only); the members after. */
  removeMember(room: string, member: string): Promise<MemberView[]>;
  /** Makes a member of a private room an admin (admins only); the members after. */
  promoteMember(room: string, member: string): Promise<MemberView[]>;
  /** Whether this data directory is locked with a passphrase. */
  lockState(): Promise<LockView>;
  /** Locks this laptop's DisasterNet with `passphrase` (the store is re-written encrypted). */
  setPassphrase(passphrase: string): Promise<LockView>;
  /** Changes the passphrase (`old` must be the current one). */
  changePassphrase(old: string, next: string): Promise<LockView>;
  /** Removes the passphrase (the store is re-written unencrypted). */
  removePassphrase(passphrase: string): Promise<LockView>;
  /** Starts delivering engine events; resolves to a function that stops it. */
  subscribe(handlers: EventHandlers): Promise<() => void>;
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (raw) {
    throw AppError.from(raw);
  }
}

/**
 * The engine requests, typed: generated from the Rust definition (crates/dn-node/src/api.rs)
 * into bindings/api.ts, sent through the one Tauri command `engine`.
 */
const engine = engineApi((request) => call(ENGINE_COMMAND, { request }));

/** The real backend: the engine's requests, the app's own commands, dialogs and events. */
export const tauriBackend: Backend = {
  identity: () => engine.identity(),
  setName: (name) => engine.setName(name),
  joinRoom: (room) => engine.joinRoom(room),
  leaveRoom: (room) => engine.leaveRoom(room),
  setMuted: (room, muted) => engine.setMuted(room, muted),
  blockAuthor: (author, blocked) => engine.block(author, blocked),
  blockedAuthors: () => engine.blocked(),
  rooms: () => engine.rooms(),
  send: (room, body, urgent) => engine.send(room, body, urgent ?? false),
  urgentMessages: (room) => engine.urgent(room),
  ackUrgent: (room, id) => engine.ackUrgent(room, id),
  messages: (room, limit, before) => engine.messages(room, limit, before),
  peers: () => engine.peers(),
  relays: () => engine.listRelays(),
  addRelay: (addr) => engine.addRelay(addr),
  removeRelay: (addr) => engine.removeRelay(addr),
  status: () => engine.status(),
  exportMessages: (room, format, path) => engine.export(room, path, format),
  exportBundle: (path, rooms, sinceMs) => engine.exportBundle(path, rooms, sinceMs),
  importBundle: (path) => engine.importBundle(path),
  backupIdentity: (path) => engine.backupIdentity(path),
  // Not an engine request: the app stops the engine, swaps the key and starts it again.
  restoreIdentity: (path) => call("restore_identity", { path }),
  async pickSavePath(defaultName, filter) {
    try {
      return await save({ defaultPath: defaultName, filters: [filter] });
    } catch (raw) {
      throw AppError.from(raw);
    }
  },
  async pickOpenPath(filter) {
    try {
      // Backups are often named freely: offer "all files" after the expected type.
      const path = await open({
        multiple: false,
        directory: false,
        filters: [filter, { name: "All files", extensions: ["*"] }],
      });
      return typeof path === "string" ? path : null;
    } catch (raw) {
      throw AppError.from(raw);
    }
  },
  sendDm: (to, body, urgent) => engine.sendDm(to, body, urgent),
  dmLog: (peer, limit) => engine.dmLog(peer, limit),
  network: () => engine.network(),
  diagnose: () => engine.diagnose(),
  createPrivateRoom: (title) => engine.createPrivateRoom(title),
  roomInvite: (room, path) => engine.roomInvite(room, path),
  joinInvite: (invite) => engine.joinInvite(invite),
  members: (room) => engine.members(room),
  removeMember: (room, member) => engine.removeMember(room, member),
  promoteMember: (room, member) => engine.promoteMember(room, member),
  lockState: () => engine.lockState(),
  setPassphrase: (passphrase) => engine.setPassphrase(passphrase),
  changePassphrase: (old, next) => engine.changePassphrase(old, next),
  removePassphrase: (passphrase) => engine.removePassphrase(passphrase),
  async subscribe(handlers) {
    const stops: UnlistenFn[] = [];
    try {
      stops.push(await listen<EngineEvent>(ENGINE_EVENT, (e) => handlers.event(e.payload)));
      stops.push(await listen<number>(ENGINE_LAGGED_EVENT, () => handlers.lagged()));
      stops.push(await listen<string>(ENGINE_RESTARTED_EVENT, () => handlers.restarted()));
    } catch (raw) {
      stops.forEach((stop) => stop());
      throw AppError.from(raw);
    }
    return () => stops.forEach((stop) => stop());
  },
};
