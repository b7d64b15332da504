// An in-memory engine behind `mockIPC`: answers the Tauri commands (the `engine` command
// with a tagged request, and the app's own commands) like src-tauri would.

import { mockIPC } from "@tauri-apps/api/mocks";
import { ENGINE_COMMAND } from "../src/bindings/api";
import type { ApiError } from "../src/bindings/ApiError";
import type { BlockedView } from "../src/bindings/BlockedView";
import type { BundleImportReport } from "../src/bindings/BundleImportReport";
import type { DiagnosisView } from "../src/bindings/DiagnosisView";
import type { DmView } from "../src/bindings/DmView";
import type { NetworkView } from "../src/bindings/NetworkView";
import type { IdentityView } from "../src/bindings/IdentityView";
import type { InviteView } from "../src/bindings/InviteView";
import type { MemberView } from "../src/bindings/MemberView";
import type { MessageView } from "../src/bindings/MessageView";
import type { LinkHealth } from "../src/bindings/LinkHealth";
import type { NodeHealth } from "../src/bindings/NodeHealth";
import type { PeerView } from "../src/bindings/PeerView";
import type { RelayView } from "../src/bindings/RelayView";
import type { Request } from "../src/bindings/Request";
import type { RoomView } from "../src/bindings/RoomView";
import type { StatusView } from "../src/bindings/StatusView";

export const SELF_ID = "a1b2c3d4".repeat(8);

/** What the engine answers for a mistyped invite code (its message, shown as is). */
export const INVITE_TYPO =
  "the invite code has a typo: a character is wrong or missing (check it against the original)";

/** A private room as the fake keeps it. */
export interface FakePrivateRoom {
  title: string;
  epoch: number;
  /** This node may remove and promote. */
  admin: boolean;
  waiting: number;
  /** Members by id (this node included while it is one). */
  members: Map<string, Omit<MemberView, "id" | "me" | "fingerprint">>;
}

function fingerprintOf(id: string): string {
  return `${id.slice(0, 4)}-${id.slice(4, 8)}-${id.slice(8, 12)}-${id.slice(12, 16)}`;
}

export class FakeEngine {
  identity: IdentityView = { id: SELF_ID, fingerprint: "a1b2-c3d4", name: null };
  joined = new Set<string>();
  muted = new Set<string>();
  /** Blocked authors by id, as the engine keeps them. */
  blocked = new Map<string, BlockedView>();
  stored: MessageView[] = [];
  peers: PeerView[] = [];
  /** Relay addresses, as the engine keeps them. */
  relays: RelayView[] = [];
  dms: DmView[] = [];
  network: NetworkView = { nodes: [], links: [] };
  /** The node's health in the status. */
  health: NodeHealth = {
    summary: "isolated",
    links: 0,
    median_rtt_us: null,
    worst_rtt_us: null,
    worst_loss_permille: null,
    duplicates: 0,
    payloads_sent: 0,
    payloads_received: 0,
    grafts: 0,
    prunes: 0,
    catch_up_bytes_in: 0,
    catch_up_bytes_out: 0,
  };
  /** Every command received, in order, with its arguments. */
  calls: { cmd: string; args: Record<string, unknown> }[] = [];
  /** What the mocked native save dialog answers (null: the user cancelled). */
  savePath: string | null = "/home/ana/backup.key";
  /** What the mocked native open dialog answers (null: the user cancelled). */
  openPath: string | null = "/media/usb/disasternet-identity.key";
  /** Identity restore_identity switches to (any path under /bad/ is "not a backup"). */
  restoredIdentity: IdentityView = { id: "be".repeat(32), fingerprint: "bebe-bebe", name: "Amara" };
  /** When set, `peers` answers the list as it was when asked, once this resolves. */
  peersGate: Promise<void> | null = null;
  /** When set, export waits for this before answering (to observe progress). */
  exportGate: Promise<void> | null = null;
  /** What import_bundle answers (its path is the one asked for). */
  importReport: BundleImportReport = {
    path: "",
    total: 12,
    imported: 9,
    duplicates: 3,
    invalid: 0,
    refused: 0,
    truncated: false,
    checksum_ok: true,
    problem: null,
    creator: "c0".repeat(32),
  };
  /** Files "written" by backup_identity / export, by path. */
  written = new Map<string, string>();
  /** `last_sync_at` in the status (ms since the epoch). */
  lastSyncAt: number | null = null;
  drops: Record<string, number> = {};
  carryFull = false;
  carryEvicted = 0;
  /** Private rooms by id (`p.` + 32 hex). */
  privateRooms = new Map<string, FakePrivateRoom>();
  /** Valid invite codes: code → room id. */
  invites = new Map<string, string>();
  /** `next_retry_in_ms` in the status (null: nothing pending). */
  nextRetryInMs: number | null = null;
  /** The data directory's passphrase (null: not locked), as the engine keeps it. */
  passphrase: string | null = null;
  /** What `diagnose` answers (tests change it between refreshes). */
  diagnosis: DiagnosisView = { running: true, observations: null, findings: [] };
  /** When set, every command fails with it (e.g. engine could not start). */
  startError: ApiError | null = null;
  private clock = 1_700_000_000_000;

  install(): void {
    mockIPC((cmd, payload) => this.handle(cmd, (payload ?? {}) as Record<string, unknown>), {
      shouldMockEvents: true,
    });
  }

  room(name: string): RoomView {
    const msgs = this.stored.filter((m) => m.room === name);
    const last = msgs.at(-1);
    const p = this.privateRooms.get(name);
    return {
      name,
      title: p?.title ?? name,
      private: p !== undefined,
      admin: p?.admin ?? false,
      waiting_for_key: p?.waiting ?? 0,
      joined: this.joined.has(name),
      muted: this.muted.has(name),
      messages: msgs.length,
      last_timestamp: last ? last.timestamp : null,
      urgent_unacked: msgs.filter((m) => m.urgent && !m.acknowledged && !this.blocked.has(m.author))
        .length,
    };
  }

  status(): StatusView {
    return {
      identity: this.identity,
      running: true,
      listen: "0.0.0.0:7300",
      mdns: false,
      connected_peers: this.peers.filter((p) => p.connected).length,
      known_peers: this.peers.length,
      rooms: [...this.joined].map((r) => this.room(r)),
      messages: this.stored.length,
      received: 0,
      rejected: 0,
      last_received_at: null,
      last_sync_at: this.lastSyncAt,
      queued: this.stored.filter((m) => m.local && m.held_by === 0).length,
      data_dir: "/tmp/fake",
      network: { nodes: [], links: [] },
      carried_rooms: [],
      carry_quota_full: this.carryFull,
      carry_evicted: this.carryEvicted,
      next_retry_in_ms: this.nextRetryInMs,
      drops: this.drops,
      urgent_unacked: [...this.joined].reduce((n, r) => n + this.room(r).urgent_unacked, 0),
      health: this.health,
    };
  }

  /**
   * A private room this node is in (`admin`: may remove and promote), with `others` as further
   * members (id → name). Returns its id.
   */
  addPrivateRoom(title: string, others: Record<string, string> = {}, admin = true): string {
    const id = `p.${(this.privateRooms.size + 1).toString(16).padStart(32, "0")}`;
    const members: FakePrivateRoom["members"] = new Map();
    members.set(SELF_ID, { name: this.identity.name, admin, creator: admin });
    for (const [other, name] of Object.entries(others)) {
      members.set(other, { name, admin: !admin && members.size === 1, creator: !admin && members.size === 1 });
    }
    this.privateRooms.set(id, { title, epoch: 1, admin, waiting: 0, members });
    this.joined.add(id);
    this.invites.set(this.inviteCode(id), id);
    return id;
  }

  /** The invite code of a private room at its current epoch. */
  inviteCode(room: string): string {
    const epoch = this.privateRooms.get(room)?.epoch ?? 0;
    return `DNI1-${room.slice(2, 10).toUpperCase()}-${room.slice(-8).toUpperCase()}-E${epoch}`;
  }

  members(room: string): MemberView[] {
    const p = this.privateRooms.get(room);
    if (!p) return [];
    return [...p.members.entries()]
      .map(([id, m]) => ({ id, fingerprint: fingerprintOf(id), me: id === SELF_ID, ...m }))
      .sort((a, b) => Number(b.admin) - Number(a.admin));
  }

  /** Stores a message as if it was sent (local) or received. */
  message(
    room: string,
    body: string,
    author = SELF_ID,
    authorName = "Me",
    fields: Partial<MessageView> = {},
  ): MessageView {
    const ts = (this.clock += 1000);
    const m: MessageView = {
      id: ts.toString(16).padStart(64, "0"),
      room,
      author,
      author_name: authorName,
      timestamp: ts,
      body,
      urgent: false,
      acknowledged: false,
      signature: "00",
      signed: "",
      received_at: ts,
      local: author === SELF_ID,
      sent_to: 0,
      held_by: 0,
      kind: "text",
      private: this.privateRooms.has(room),
      subject: null,
      ...fields,
    };
    this.stored.push(m);
    return m;
  }

  /** Stores a direct message with `peer` (outgoing when `outgoing`). */
  dm(peer: string, body: string, outgoing: boolean, authorName = "Ben", urgent = false): DmView {
    const ts = (this.clock += 1000);
    const d: DmView = {
      id: `d${ts.toString(16).padStart(63, "0")}`,
      peer,
      author: outgoing ? SELF_ID : peer,
      author_name: outgoing ? (this.identity.name ?? "") : authorName,
      timestamp: ts,
      body,
      outgoing,
      received_at: ts,
      urgent,
    };
    this.dms.push(d);
    return d;
  }

  private handle(command: string, payload: Record<string, unknown>): unknown {
    // Engine requests arrive through the one `engine` command as a tagged `Request`; they are
    // recorded and answered by their `op`, with their fields as arguments.
    let cmd = command;
    let args = payload;
    if (command === ENGINE_COMMAND) {
      const { op, ...fields } = payload.request as Request;
      cmd = op;
      args = fields;
    }
    this.calls.push({ cmd, args });
    if (this.startError) throw this.startError;
    const fail = (code: ApiError["code"], message: string): never => {
      throw { code, message } satisfies ApiError;
    };
    switch (cmd) {
      case "identity":
        return this.identity;
      case "set_name":
        this.identity = { ...this.identity, name: String(args.name) };
        return this.identity;
      case "join_room": {
        const name = String(args.room).trim().toLowerCase();
        this.joined.add(name);
        return this.room(name);
      }
      case "set_muted": {
        const name = String(args.room);
        if (args.muted === true) this.muted.add(name);
        else this.muted.delete(name);
        return this.room(name);
      }
      case "block": {
        const author = String(args.author);
        if (!/^[0-9a-f]{64}$/.test(author)) fail("invalid_input", "not a node id");
        if (args.blocked === true) {
          const name = this.stored.find((m) => m.author === author)?.author_name ?? null;
          const fingerprint = `${author.slice(0, 4)}-${author.slice(4, 8)}-${author.slice(8, 12)}-${author.slice(12, 16)}`;
          if (!this.blocked.has(author)) this.blocked.set(author, { id: author, fingerprint, name, since: this.clock });
        } else {
          this.blocked.delete(author);
        }
        return [...this.blocked.values()];
      }
      case "blocked":
        return [...this.blocked.values()];
      case "leave_room": {
        const name = String(args.room);
        this.joined.delete(name);
        return this.room(name);
      }
      case "rooms":
        return [...new Set([...this.joined, ...this.stored.map((m) => m.room)])].map((r) =>
          this.room(r),
        );
      case "send": {
        if (this.identity.name === null) return fail("no_name", "set a display name first");
        const room = String(args.room);
        if (!this.joined.has(room)) return fail("not_found", `not a member of ${room}`);
        const urgent = args.urgent === true;
        return this.message(room, String(args.body), SELF_ID, this.identity.name, {
          urgent,
          acknowledged: urgent,
        });
      }
      case "urgent": {
        const room = typeof args.room === "string" ? args.room : null;
        return this.stored
          .filter((m) => m.urgent && !m.acknowledged && !this.blocked.has(m.author))
          .filter((m) => (room === null ? this.joined.has(m.room) : m.room === room))
          .reverse()
          .slice(0, 100);
      }
      case "ack_urgent": {
        const room = String(args.room);
        const id = typeof args.id === "string" ? args.id : null;
        const hit = this.stored.filter(
          (m) => m.room === room && m.urgent && !m.acknowledged && (id === null || m.id === id),
        );
        if (id !== null && hit.length === 0) fail("not_found", "no such urgent message");
        // New objects: the mock IPC hands out references, the real one copies.
        this.stored = this.stored.map((m) => (hit.includes(m) ? { ...m, acknowledged: true } : m));
        return this.room(room);
      }
      case "messages": {
        const room = String(args.room);
        const limit = Number(args.limit);
        let msgs = this.stored.filter((m) => m.room === room && !this.blocked.has(m.author));
        if (typeof args.before === "string") {
          const idx = msgs.findIndex((m) => m.id === args.before);
          msgs = idx < 0 ? [] : msgs.slice(0, idx);
        }
        return msgs.slice(-limit);
      }
      case "peers": {
        const snapshot = [...this.peers];
        return this.peersGate ? this.peersGate.then(() => snapshot) : snapshot;
      }
      case "list_relays":
        return [...this.relays];
      case "add_relay": {
        const addr = String(args.addr).trim();
        if (!/^(\[[0-9a-fA-F:.%\w]+\]|[\w.-]+):\d{1,5}$/.test(addr)) {
          return fail("invalid_input", `bad address "${addr}": expected HOST:PORT`);
        }
        if (!this.relays.some((r) => r.addr === addr)) {
          this.relays.push({ addr, id: null, fingerprint: null, name: null, connected: false, key_changed: false });
        }
        return [...this.relays];
      }
      case "remove_relay": {
        const addr = String(args.addr);
        if (!this.relays.some((r) => r.addr === addr)) {
          return fail("not_found", `"${addr}" is not a relay address of this node`);
        }
        this.relays = this.relays.filter((r) => r.addr !== addr);
        return [...this.relays];
      }
      case "send_dm": {
        if (this.identity.name === null) return fail("no_name", "set a display name first");
        return this.dm(String(args.to), String(args.body), true, undefined, args.urgent === true);
      }
      case "dm_log":
        return this.dms.filter((d) => d.peer === args.with).slice(-Number(args.limit));
      case "network":
        return this.network;
      case "diagnose":
        return this.diagnosis;
      case "create_private_room": {
        const title = String(args.title).trim();
        if (title === "") return fail("invalid_input", "a room name cannot be empty");
        const id = this.addPrivateRoom(title);
        this.message(id, "created the room", SELF_ID, this.identity.name ?? "", { kind: "join" });
        return this.room(id);
      }
      case "room_invite": {
        const room = String(args.room);
        const p = this.privateRooms.get(room);
        if (!p) return fail("invalid_input", `#${room} is an open room: anyone can join it by its name`);
        const code = this.inviteCode(room);
        const path = typeof args.path === "string" ? args.path : null;
        if (path?.startsWith("/readonly/")) return fail("io", `${path}: read-only file system`);
        if (path !== null) this.written.set(path, `# DisasterNet invite to the private room "${p.title}".\n${code}\n`);
        return {
          room,
          title: p.title,
          code,
          qr_svg: `<?xml version="1.0" standalone="yes"?><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 21 21"><rect width="21" height="21" fill="#fff"/><path d="M1 1h7v7H1z" fill="#000"/></svg>`,
          epoch: p.epoch,
          path,
        } satisfies InviteView;
      }
      case "join_invite": {
        const text = String(args.invite);
        const code = text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#")).join("");
        if (!code.startsWith("DNI1-")) return fail("invalid_input", "not an invite: expected a code starting with DNI1-");
        const room = this.invites.get(code);
        if (room === undefined) return fail("invalid_input", INVITE_TYPO);
        this.joined.add(room);
        this.privateRooms.get(room)?.members.set(SELF_ID, { name: this.identity.name, admin: false, creator: false });
        return this.room(room);
      }
      case "members": {
        const room = String(args.room);
        if (!this.privateRooms.has(room)) return fail("invalid_input", `#${room} is an open room: it has no member list`);
        return this.members(room);
      }
      case "remove_member":
      case "promote_member": {
        const room = String(args.room);
        const member = String(args.member);
        const p = this.privateRooms.get(room);
        if (!p) return fail("not_found", `no private room ${room}`);
        if (!p.admin) return fail("invalid_input", "only an admin of the room can change its members");
        const m = p.members.get(member);
        if (!m) return fail("not_found", "not a member of this room");
        if (member === SELF_ID) return fail("invalid_input", "leave the room instead of removing yourself");
        const name = m.name ?? fingerprintOf(member);
        if (cmd === "remove_member") {
          p.members.delete(member);
          p.epoch += 1;
          this.invites.set(this.inviteCode(room), room);
          this.message(room, `removed ${name}`, SELF_ID, this.identity.name ?? "", { kind: "remove", subject: member });
        } else {
          p.members.set(member, { ...m, admin: true });
          this.message(room, `made ${name} an admin`, SELF_ID, this.identity.name ?? "", { kind: "promote", subject: member });
        }
        return this.members(room);
      }
      case "lock_state":
        return { locked: this.passphrase !== null };
      case "set_passphrase":
        if (this.passphrase !== null) fail("invalid_input", "this data directory is already locked");
        if ([...String(args.passphrase)].length < 8) fail("invalid_input", "the passphrase is too short");
        this.passphrase = String(args.passphrase);
        return { locked: true };
      case "change_passphrase":
        if (args.old !== this.passphrase) fail("wrong_passphrase", "wrong passphrase");
        this.passphrase = String(args.new);
        return { locked: true };
      case "remove_passphrase":
        if (args.passphrase !== this.passphrase) fail("wrong_passphrase", "wrong passphrase");
        this.passphrase = null;
        return { locked: false };
      case "status":
        return this.status();
      case "plugin:dialog|save":
        return this.savePath;
      case "plugin:dialog|open":
        return this.openPath;
      case "restore_identity": {
        const path = String(args.path);
        if (path.startsWith("/bad/")) {
          return fail("invalid_input", `${path} is not a DisasterNet identity backup: expected exactly one line of 64 hex characters`);
        }
        this.identity = this.restoredIdentity;
        return { id: this.identity.id, previous_key: "/tmp/fake/identity.key.replaced-1700000000000" };
      }
      case "backup_identity":
        if (String(args.path).startsWith("/readonly/")) {
          return fail("io", `${String(args.path)}: read-only file system`);
        }
        this.written.set(String(args.path), "identity");
        return { path: String(args.path) };
      case "export": {
        const room = typeof args.room === "string" ? args.room : null;
        if (!["jsonl", "csv", "html"].includes(String(args.format))) {
          return fail("invalid_input", `bad format ${String(args.format)}`);
        }
        const messages = this.stored.filter((m) => room === null || m.room === room).length;
        const answer = (): unknown => {
          this.written.set(String(args.path), String(args.format));
          return { path: String(args.path), messages };
        };
        return this.exportGate ? this.exportGate.then(answer) : answer();
      }
      case "export_bundle": {
        const rooms = Array.isArray(args.rooms) ? (args.rooms as string[]) : null;
        const messages = this.stored.filter((m) => rooms === null || rooms.includes(m.room)).length;
        const answer = (): unknown => {
          this.written.set(String(args.path), "bundle");
          return { path: String(args.path), messages, bytes: 100 + 200 * messages };
        };
        return this.exportGate ? this.exportGate.then(answer) : answer();
      }
      case "import_bundle": {
        const path = String(args.path);
        if (path.startsWith("/bad/")) return fail("invalid_input", `${path}: not a DisasterNet bundle`);
        const answer = (): unknown => ({ ...this.importReport, path });
        return this.exportGate ? this.exportGate.then(answer) : answer();
      }
      default:
        return fail("internal", `unknown command ${cmd}`);
    }
  }
}

/** A peer with defaults for everything not given. */
export function peerView(fields: Partial<PeerView> & Pick<PeerView, "id" | "name">): PeerView {
  return {
    fingerprint: `${fields.id.slice(0, 4)}-${fields.id.slice(4, 8)}-${fields.id.slice(8, 12)}-${fields.id.slice(12, 16)}`,
    addresses: [],
    connected: false,
    last_seen: null,
    rooms: [],
    hops: null,
    relay: false,
    relay_addr: null,
    link: null,
    ...fields,
  };
}

/** A measured link with defaults for everything not given. */
export function linkHealth(fields: Partial<LinkHealth> = {}): LinkHealth {
  return {
    rtt_us: 1_200,
    loss_permille: 0,
    bytes_in: 4096,
    bytes_out: 2048,
    sent_packets: 40,
    lost_packets: 0,
    age_s: 30,
    quality: "good",
    ...fields,
  };
}

/** Lets pending promises and microtasks run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 0));
}
