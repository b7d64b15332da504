//! Private rooms on the core: creating one, invites, joining by invite, sending and reading
//! (sealed and opened with the room's epoch keys), membership (who may remove whom) and key
//! grants (a new epoch key sent to each remaining member as an end-to-end encrypted direct
//! message). The cryptography and the membership rules are `dn_proto::private`; this file
//! keeps the keys (store tables `private_rooms`, `room_keys`) and applies the rules to the
//! messages stored.
//!
//! Carriers never come here: a private room's messages are stored and relayed like any other
//! room's (ciphertext under an opaque id), and only members hold a key.

use std::collections::{BTreeMap, HashMap};

use dn_proto::private::{self, Content, Event, Invite, Membership, Plain, RoomId};

use super::*;

/// A private room this node is a member of (loaded from the store).
#[derive(Clone)]
pub(super) struct PrivRoom {
    pub(super) id: RoomId,
    pub(super) title: String,
    pub(super) creator: NodeId,
    /// Every key epoch held.
    pub(super) keys: BTreeMap<u32, [u8; 32]>,
}

impl PrivRoom {
    /// The newest epoch and its key (a room always has at least the one from its invite).
    fn current(&self) -> Option<(u32, [u8; 32])> {
        self.keys.iter().next_back().map(|(e, k)| (*e, *k))
    }
}

/// A stored private-room message, opened or not.
enum Opened {
    Read(u32, Plain),
    /// No key for its epoch (yet).
    NoKey,
    /// It will never open here.
    Bad,
}

/// What the messages of one private room say about it, built from the messages held (one pass
/// over the room) and kept up to date as messages arrive.
pub(super) struct RoomState {
    /// Membership notices, plus the earliest text of each author (the only one that matters
    /// for membership: a text makes its author a member unless they were removed before it).
    events: Vec<Event>,
    earliest_text: HashMap<NodeId, (u64, MessageId)>,
    /// The last name each author wrote with (inside the ciphertext).
    names: HashMap<NodeId, (u64, String)>,
    /// The largest `(timestamp, id)` applied to `membership`.
    last: Option<(u64, MessageId)>,
    /// Messages this node cannot open yet: their epoch key has not arrived. (Ones that do not
    /// decrypt under a key held, written without the key, are not counted: they never will.)
    pub(super) waiting: u64,
    pub(super) membership: Membership,
}

impl RoomState {
    fn new(creator: NodeId) -> Self {
        RoomState {
            events: Vec::new(),
            earliest_text: HashMap::new(),
            names: HashMap::new(),
            last: None,
            waiting: 0,
            membership: Membership::new(creator),
        }
    }

    /// Takes one opened message into account and brings the membership up to date: at once
    /// for an event that sorts after every one applied (messages mostly arrive in order), by a
    /// full replay only when it sorts earlier; nothing when it changes nothing (a text by an
    /// author who wrote before). So a catch-up of N messages costs O(N), not O(N²).
    fn add(&mut self, sm: &StoredMessage, epoch: u32, plain: &Plain) {
        let m = &sm.message;
        let newer = self
            .names
            .get(&m.author)
            .is_none_or(|(ts, _)| *ts <= m.timestamp);
        if newer {
            self.names
                .insert(m.author, (m.timestamp, plain.author_name.clone()));
        }
        let key = (m.timestamp, sm.id);
        let mut event = Event {
            timestamp: m.timestamp,
            id: sm.id,
            author: m.author,
            epoch,
            content: plain.content.clone(),
        };
        let mut replaced = false;
        if matches!(plain.content, Content::Text(_)) {
            // Only the earliest text of each author matters for membership.
            if self.earliest_text.get(&m.author).is_some_and(|k| *k <= key) {
                return;
            }
            if let Some(old) = self.earliest_text.insert(m.author, key) {
                self.events
                    .retain(|e| !(e.author == m.author && (e.timestamp, e.id) == old));
                replaced = true;
            }
            event.content = Content::Text(String::new());
        }
        let in_order = !replaced && self.last.is_none_or(|last| key > last);
        if in_order {
            self.membership.apply(&event);
            self.last = Some(key);
            self.events.push(event);
        } else {
            self.events.push(event);
            self.replay();
        }
    }

    /// Replays every event from the start (`Membership::apply_all` sorts them).
    fn replay(&mut self) {
        let mut m = Membership::new(self.membership.creator());
        m.apply_all(&mut self.events);
        self.membership = m;
        self.last = self.events.last().map(|e| (e.timestamp, e.id));
    }

    /// Whether an admin's removal this node can read moved the room to `epoch`.
    fn announced_by_admin(&self, epoch: u32) -> bool {
        self.events.iter().any(|e| {
            matches!(e.content, Content::Remove { new_epoch, .. } if new_epoch == epoch)
                && (e.author == self.membership.creator() || self.membership.is_admin(&e.author))
        })
    }

    fn name(&self, id: &NodeId) -> Option<String> {
        self.names.get(id).map(|(_, n)| n.clone())
    }
}

/// The invite text a user pasted or an invite file holds: lines starting with `#` are
/// comments, the rest is the code (its own parser ignores spaces, line breaks and dashes).
pub(crate) fn invite_code_of(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("")
}

/// The invite file: a comment saying what it is, then the code.
pub(crate) fn invite_file_text(title: &str, code: &str) -> String {
    format!(
        "# DisasterNet invite to the private room \"{title}\".\n\
         # Anyone holding this code can read and write the room. Share it only with people who \
         should.\n\
         # Join: disasternet room join --invite THIS_FILE (or \"Join with invite\" in the app).\n\
         {code}\n"
    )
}

/// The readable sentence of a membership notice.
fn notice_text(
    content: &Content,
    author: &NodeId,
    creator: &NodeId,
    name: &dyn Fn(&NodeId) -> String,
) -> String {
    match content {
        Content::Text(t) => t.clone(),
        Content::Join if author == creator => "created the room".to_string(),
        Content::Join => "joined the room".to_string(),
        Content::Remove { member, .. } => format!("removed {}", name(member)),
        Content::Promote { member } => format!("made {} an admin", name(member)),
    }
}

fn kind_of(content: &Content) -> MessageKind {
    match content {
        Content::Text(_) => MessageKind::Text,
        Content::Join => MessageKind::Join,
        Content::Remove { .. } => MessageKind::Remove,
        Content::Promote { .. } => MessageKind::Promote,
    }
}

fn subject_of(content: &Content) -> Option<String> {
    match content {
        Content::Remove { member, .. } | Content::Promote { member } => Some(member.to_hex()),
        _ => None,
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    b
}

/// Opens private-room messages for an export on its own thread, with a copy of the keys.
pub(super) struct ExportReader {
    rooms: HashMap<String, PrivRoom>,
}

impl ExportReader {
    /// The decrypted text of `m`, if it is a private-room message this node holds a key for.
    pub(super) fn read(&self, m: &Message) -> Option<PrivateText> {
        let r = self.rooms.get(&m.room)?;
        let env = private::from_body(&m.body).ok()?;
        let key = r.keys.get(&env.epoch)?;
        let plain = private::open(&r.id, key, &m.author, m.timestamp, &env).ok()?;
        let name = |n: &NodeId| n.fingerprint();
        Some(PrivateText {
            title: r.title.clone(),
            body: notice_text(&plain.content, &m.author, &r.creator, &name),
            author_name: plain.author_name,
        })
    }
}

impl Core {
    /// A copy of the private-room keys for an export thread.
    pub(super) fn export_reader(&self) -> ExportReader {
        ExportReader {
            rooms: self.private.clone(),
        }
    }

    /// Loads the private rooms (and keys) this node holds.
    pub(super) fn load_private(store: &Store) -> Result<HashMap<String, PrivRoom>, ApiError> {
        let mut rooms = HashMap::new();
        for row in store.private_rooms().map_err(store_err)? {
            let Some(id) = RoomId::parse(&row.room) else {
                warn!(room = %row.room, "ignoring a private room with a malformed id");
                continue;
            };
            let keys = store
                .room_keys(&row.room)
                .map_err(store_err)?
                .into_iter()
                .collect();
            rooms.insert(
                row.room,
                PrivRoom {
                    id,
                    title: row.title,
                    creator: row.creator,
                    keys,
                },
            );
        }
        Ok(rooms)
    }

    /// The room a user named: a private room's id as is; a private room's title if exactly one
    /// has it (an open room of the same name is then reached as `#name`); else the normalised
    /// open room name.
    pub(super) fn resolve_room(&self, input: &str) -> Result<String, ApiError> {
        let t = input.trim();
        if t.starts_with('#') {
            return dn_proto::message::normalize_room(t).map_err(invalid);
        }
        if private::is_private_room(t) {
            return Ok(t.to_string());
        }
        let wanted = dn_proto::message::normalize_room(t).map_err(invalid)?;
        let mut hits: Vec<&String> = self
            .private
            .iter()
            .filter(|(_, r)| r.title == wanted)
            .map(|(id, _)| id)
            .collect();
        hits.sort();
        match hits.as_slice() {
            [] => Ok(wanted),
            [one] => Ok((*one).clone()),
            many => Err(invalid(format!(
                "{} private rooms are called {wanted}: name one by its id ({})",
                many.len(),
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// The private room `room` (an id), or `not_found`.
    fn priv_room(&self, room: &str) -> Result<&PrivRoom, ApiError> {
        self.private.get(room).ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("{room} is not a private room this node is a member of"),
            )
        })
    }

    /// Opens a stored message of a private room this node holds a key for: its epoch and
    /// plaintext.
    pub(super) fn open_private(&self, sm: &StoredMessage) -> Option<(u32, Plain)> {
        match self.try_open_private(sm) {
            Opened::Read(epoch, plain) => Some((epoch, plain)),
            Opened::NoKey | Opened::Bad => None,
        }
    }

    /// [`Core::open_private`], telling a message whose key has not arrived (it may still open)
    /// from one that never will (not an envelope, or it does not decrypt under the key held
    /// for its epoch: written by someone without the key).
    fn try_open_private(&self, sm: &StoredMessage) -> Opened {
        let Some(r) = self.private.get(&sm.message.room) else {
            return Opened::NoKey;
        };
        let Ok(env) = private::from_body(&sm.message.body) else {
            return Opened::Bad;
        };
        let Some(key) = r.keys.get(&env.epoch) else {
            return Opened::NoKey;
        };
        let m = &sm.message;
        match private::open(&r.id, key, &m.author, m.timestamp, &env) {
            Ok(p) => Opened::Read(env.epoch, p),
            Err(_) => Opened::Bad,
        }
    }

    /// Runs `f` on the state of a private room (built on first use, then kept up to date as
    /// messages arrive); `None` for a room this node is not a member of.
    pub(super) fn with_room_state<R>(
        &self,
        room: &str,
        f: impl FnOnce(&RoomState) -> R,
    ) -> Option<R> {
        if let Some(s) = self.room_states.borrow().get(room) {
            return Some(f(s));
        }
        let r = self.private.get(room)?;
        let mut state = RoomState::new(r.creator);
        let res = self
            .store
            .for_each_message(Some(room), |sm| -> Result<(), ApiError> {
                match self.try_open_private(&sm) {
                    Opened::Read(epoch, plain) => state.add(&sm, epoch, &plain),
                    Opened::NoKey => state.waiting += 1,
                    Opened::Bad => {}
                }
                Ok(())
            });
        if let Err(e) = res {
            warn!(%room, "reading a private room: {e}");
            return None;
        }
        let out = f(&state);
        self.room_states
            .borrow_mut()
            .insert(room.to_string(), state);
        Some(out)
    }

    /// Forgets the state of `room` (rebuilt on next use): a key arrived.
    pub(super) fn forget_room_state(&self, room: &str) {
        self.room_states.borrow_mut().remove(room);
    }

    /// Takes a newly stored message of a private room into its state; the view to show, if
    /// this node can read it and the membership shows it.
    pub(super) fn private_arrived(&mut self, sm: &StoredMessage) -> Option<MessageView> {
        let room = sm.message.room.clone();
        self.private.get(&room)?;
        let opened = self.try_open_private(sm);
        if let Some(s) = self.room_states.borrow_mut().get_mut(&room) {
            match &opened {
                Opened::Read(epoch, plain) => s.add(sm, *epoch, plain),
                Opened::NoKey => s.waiting += 1,
                Opened::Bad => {}
            }
        }
        let Opened::Read(epoch, plain) = opened else {
            return None;
        };
        let membership_changed = !matches!(plain.content, Content::Text(_));
        if let Content::Promote { .. } = plain.content {
            // A grant from the new admin may have arrived before this notice (only a promote
            // by an admin counts: anyone else's cannot make us look again).
            let author = sm.message.author;
            if self
                .with_room_state(&room, |s| s.membership.is_admin(&author))
                .unwrap_or(false)
            {
                self.rescan_grants(Some(&room));
            }
        }
        let v = self.private_view(sm, epoch, &plain)?;
        if membership_changed {
            self.emit_room_changed(&room);
        }
        Some(v)
    }

    /// The view of an opened private message, or `None` if the membership hides it (written
    /// by a removed member, after the removal, with an old key).
    fn private_view(&self, sm: &StoredMessage, epoch: u32, plain: &Plain) -> Option<MessageView> {
        self.with_room_state(&sm.message.room, |state| {
            self.private_view_in(state, sm, epoch, plain)
        })
        .flatten()
    }

    fn private_view_in(
        &self,
        state: &RoomState,
        sm: &StoredMessage,
        epoch: u32,
        plain: &Plain,
    ) -> Option<MessageView> {
        let r = self.private.get(&sm.message.room)?;
        let m = &sm.message;
        if !state.membership.shows(&m.author, epoch, m.timestamp) {
            return None;
        }
        let name = |id: &NodeId| state.name(id).unwrap_or_else(|| id.fingerprint());
        let mut v = self.view(sm);
        v.author_name = plain.author_name.clone();
        v.body = notice_text(&plain.content, &m.author, &r.creator, &name);
        v.kind = kind_of(&plain.content);
        v.subject = subject_of(&plain.content);
        v.private = true;
        Some(v)
    }

    /// What to show for stored messages of one room: for a private room, the ones this node
    /// can read and the membership shows; none of a private room it only carries.
    pub(super) fn show_room(&self, room: &str, msgs: &[StoredMessage]) -> Vec<MessageView> {
        if !private::is_private_room(room) {
            return msgs.iter().map(|m| self.view(m)).collect();
        }
        self.with_room_state(room, |state| {
            msgs.iter()
                .filter_map(|sm| {
                    let (epoch, plain) = self.open_private(sm)?;
                    self.private_view_in(state, sm, epoch, &plain)
                })
                .collect()
        })
        .unwrap_or_default()
    }

    /// Fills in the private-room fields of a room view.
    pub(super) fn dress_room(&self, mut v: RoomView) -> RoomView {
        if let Some(r) = self.private.get(&v.name) {
            v.title = r.title.clone();
            v.private = true;
            if let Some((admin, waiting)) = self.with_room_state(&v.name, |s| {
                // A removed member waits for no key: none will come.
                let removed = s
                    .membership
                    .removed_at(&self.id)
                    .is_some_and(|(_, new_epoch)| !r.keys.contains_key(&new_epoch));
                (
                    s.membership.is_admin(&self.id),
                    if removed { 0 } else { s.waiting },
                )
            }) {
                v.admin = admin;
                v.waiting_for_key = waiting;
            }
        }
        // Only rooms the user reads are pinned; carried rooms are not counted at all.
        if v.joined {
            v.urgent_unacked = self.urgent_unacked_in(&v.name);
        }
        v
    }

    pub(super) fn emit_room_changed(&mut self, room: &str) {
        match self.room_view(room) {
            Ok(v) => self.emit(EngineEvent::RoomChanged { room: v }),
            Err(e) => warn!(%room, "room view: {e}"),
        }
        self.status_dirty = true;
    }

    /// Signs and stores a message of a private room (sealed under its newest key), then
    /// spreads it.
    /// `urgent` puts the urgent marker in front of the envelope (carriers see only that).
    pub(super) fn send_private(
        &mut self,
        room: &str,
        content: Content,
        urgent: bool,
    ) -> Result<MessageView, ApiError> {
        let name = self.require_name()?;
        let r = self.priv_room(room)?;
        let me = self.id;
        let held = r.current().map_or(0, |(e, _)| e);
        // Removed, and not invited back with the key of the removal's epoch (or later).
        if self
            .with_room_state(room, |s| {
                s.membership
                    .removed_at(&me)
                    .is_some_and(|(_, new_epoch)| held < new_epoch)
            })
            .unwrap_or(false)
        {
            return Err(invalid(format!(
                "you were removed from {}: you keep what you have, but can no longer write to \
                 it (ask an admin for a new invite)",
                r.title
            )));
        }
        let (epoch, key) = r
            .current()
            .ok_or_else(|| ApiError::new(ErrorCode::Internal, "private room without a key"))?;
        let plain = Plain {
            room_name: r.title.clone(),
            author_name: name,
            content,
        };
        let ts = now_ms();
        let body =
            private::seal(&r.id, epoch, &key, &self.id, ts, &plain, random()).map_err(invalid)?;
        let body = dn_proto::message::mark_urgent(&body, urgent);
        let msg = Message::create(&self.key, room, private::HIDDEN_AUTHOR_NAME, ts, &body)
            .map_err(invalid)?;
        let sm = self.store_local(&msg)?;
        let v = self.private_arrived(&sm).ok_or_else(|| {
            ApiError::new(ErrorCode::Internal, "cannot read back own private message")
        })?;
        self.publish_local(msg, &v);
        Ok(v)
    }

    /// Records a private room and a key, and (`join`) joins it. Returns whether it joined now.
    /// A key grant does not join: a room the user left stays left.
    fn take_key(&mut self, inv: &Invite, join: bool) -> Result<bool, ApiError> {
        let room = inv.room.room_name();
        let now = now_ms();
        self.store
            .add_private_room(&room, &inv.name, &inv.creator, now)
            .map_err(store_err)?;
        let new_key = self
            .store
            .add_room_key(&room, inv.epoch, &inv.key, now)
            .map_err(store_err)?;
        let entry = self
            .private
            .entry(room.clone())
            .or_insert_with(|| PrivRoom {
                id: inv.room,
                title: inv.name.clone(),
                creator: inv.creator,
                keys: BTreeMap::new(),
            });
        if new_key {
            entry.keys.insert(inv.epoch, inv.key);
            self.forget_room_state(&room);
        }
        if !join {
            return Ok(false);
        }
        let newly = self.store.join_room(&room, now).map_err(store_err)?;
        if newly {
            self.feed(Input::Joined(room.clone()));
        }
        Ok(newly)
    }

    /// `CreatePrivateRoom`.
    pub(super) fn create_private(&mut self, title: &str) -> Result<RoomView, ApiError> {
        let title = dn_proto::message::normalize_room(title).map_err(invalid)?;
        self.require_name()?;
        let key: [u8; 32] = random();
        let inv = Invite {
            room: RoomId::from_key(&key),
            epoch: 0,
            key,
            creator: self.id,
            name: title,
        };
        self.take_key(&inv, true)?;
        let room = inv.room.room_name();
        info!(%room, "created a private room");
        self.send_private(&room, Content::Join, false)?;
        self.room_view(&room)
    }

    /// `RoomInvite`.
    pub(super) fn invite(&self, room: &str, path: Option<String>) -> Result<InviteView, ApiError> {
        let room = self.resolve_room(room)?;
        let r = self.priv_room(&room)?;
        let (epoch, key) = r
            .current()
            .ok_or_else(|| ApiError::new(ErrorCode::Internal, "private room without a key"))?;
        let inv = Invite {
            room: r.id,
            epoch,
            key,
            creator: r.creator,
            name: r.title.clone(),
        };
        let code = inv.to_code();
        if let Some(p) = &path {
            let p = Path::new(p);
            if !p.is_absolute() {
                return Err(invalid(format!(
                    "{}: the invite file path must be absolute",
                    p.display()
                )));
            }
            self.refuse_own_files(p)?;
            crate::fsutil::write_private_atomic(p, invite_file_text(&r.title, &code).as_bytes())
                .map_err(|e| {
                    ApiError::new(ErrorCode::Io, format!("cannot write {}: {e}", p.display()))
                })?;
        }
        Ok(InviteView {
            room,
            title: r.title.clone(),
            qr_svg: crate::qr::svg(&code)?,
            code,
            epoch,
            path,
        })
    }

    /// `JoinInvite`.
    pub(super) fn join_invite(&mut self, text: &str) -> Result<RoomView, ApiError> {
        let inv = Invite::from_code(&invite_code_of(text)).map_err(invalid)?;
        self.require_name()?;
        if inv.epoch == 0 && RoomId::from_key(&inv.key) != inv.room {
            return Err(invalid(
                "this invite's key does not belong to its room: it was altered or forged",
            ));
        }
        let room = inv.room.room_name();
        if let Some(r) = self.private.get(&room) {
            // A room held already gets its new keys from its admins (grants). An invite may
            // bring a key only for an epoch an admin announced in a removal this node can read
            // (a removed member invited back): anyone who saw the room's id could otherwise
            // hand out a "newer key" of their own and read what this node writes next.
            if inv.creator != r.creator {
                return Err(invalid(
                    "this invite names another creator for a room you hold",
                ));
            }
            let announced = r.keys.contains_key(&inv.epoch)
                || self
                    .with_room_state(&room, |s| s.announced_by_admin(inv.epoch))
                    .unwrap_or(false);
            if !announced {
                return Err(invalid(format!(
                    "you already hold {}; its new keys come from its admins, not from an invite \
                     (this one names key epoch {}, which no admin announced)",
                    r.title, inv.epoch
                )));
            }
        }
        let newly = self.take_key(&inv, true)?;
        // Keys granted before we held this invite (we may have carried the room's grants).
        self.rescan_grants(Some(&room));
        let me = self.id;
        let back = self
            .with_room_state(&room, |s| s.membership.removed_at(&me).is_some())
            .unwrap_or(false);
        if newly || back {
            info!(%room, epoch = inv.epoch, "joined a private room by invite");
            self.send_private(&room, Content::Join, false)?;
        }
        self.status_dirty = true;
        self.room_view(&room)
    }

    /// `Members`.
    pub(super) fn members(&self, room: &str) -> Result<Vec<MemberView>, ApiError> {
        let room = self.resolve_room(room)?;
        let r = self.priv_room(&room)?;
        let my_name = self.name()?;
        let mut v: Vec<MemberView> = self
            .with_room_state(&room, |state| {
                state
                    .membership
                    .members()
                    .into_iter()
                    .map(|id| MemberView {
                        id: id.to_hex(),
                        fingerprint: id.fingerprint(),
                        name: if id == self.id {
                            my_name.clone()
                        } else {
                            state.name(&id)
                        },
                        admin: state.membership.is_admin(&id),
                        creator: id == r.creator,
                        me: id == self.id,
                    })
                    .collect()
            })
            .ok_or_else(|| ApiError::new(ErrorCode::Storage, "cannot read the room"))?;
        v.sort_by(|a, b| {
            b.admin
                .cmp(&a.admin)
                .then(b.creator.cmp(&a.creator))
                .then(a.name.cmp(&b.name))
                .then(a.id.cmp(&b.id))
        });
        Ok(v)
    }

    /// Checks that this node is an admin of `room` and `member` a member other than itself.
    fn admin_action(&self, room: &str, member: &str) -> Result<(String, NodeId), ApiError> {
        let room = self.resolve_room(room)?;
        let r = self.priv_room(&room)?;
        let member = NodeId::from_hex(member).map_err(|_| {
            invalid(format!(
                "{member:?} is not a node id: give the member's full id (64 hex characters)"
            ))
        })?;
        let (admin, is_member) = self
            .with_room_state(&room, |s| {
                (
                    s.membership.is_admin(&self.id),
                    s.membership.is_member(&member),
                )
            })
            .ok_or_else(|| ApiError::new(ErrorCode::Storage, "cannot read the room"))?;
        if !admin {
            return Err(invalid(format!(
                "only an admin of {} can do that (ask its creator to make you one)",
                r.title
            )));
        }
        if member == self.id {
            return Err(invalid("you cannot do that to yourself"));
        }
        if !is_member {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("{} is not a member of {}", member.fingerprint(), r.title),
            ));
        }
        Ok((room, member))
    }

    /// `RemoveMember`: the notice (under the current key, so every member, the removed one
    /// included, sees it), then a new epoch key for the remaining members.
    pub(super) fn remove_member(
        &mut self,
        room: &str,
        member: &str,
    ) -> Result<Vec<MemberView>, ApiError> {
        let (room, member) = self.admin_action(room, member)?;
        let r = self.priv_room(&room)?;
        if member == r.creator {
            return Err(invalid("the creator of a room cannot be removed"));
        }
        let (epoch, _) = r
            .current()
            .ok_or_else(|| ApiError::new(ErrorCode::Internal, "private room without a key"))?;
        let new_epoch = epoch
            .checked_add(1)
            .ok_or_else(|| invalid("this room has used up its key epochs"))?;
        self.send_private(&room, Content::Remove { member, new_epoch }, false)?;
        let r = self.priv_room(&room)?;
        let inv = Invite {
            room: r.id,
            epoch: new_epoch,
            key: random(),
            creator: r.creator,
            name: r.title.clone(),
        };
        self.take_key(&inv, false)?;
        let members = self
            .with_room_state(&room, |s| s.membership.members())
            .ok_or_else(|| ApiError::new(ErrorCode::Storage, "cannot read the room"))?;
        let grant = private::grant_text(&inv);
        let mut sent = 0;
        for m in members {
            if m == self.id || m == member {
                continue;
            }
            self.send_dm_quiet(&m, &grant, true, false)?;
            sent += 1;
        }
        info!(%room, removed = %member.fingerprint(), new_epoch, sent, "removed a member; new key sent");
        self.emit_room_changed(&room);
        self.members(&room)
    }

    /// `PromoteMember`.
    pub(super) fn promote_member(
        &mut self,
        room: &str,
        member: &str,
    ) -> Result<Vec<MemberView>, ApiError> {
        let (room, member) = self.admin_action(room, member)?;
        self.send_private(&room, Content::Promote { member }, false)?;
        self.members(&room)
    }

    /// A key grant arrived in a direct message from `from`: kept if it is for a private room
    /// this node is a member of and `from` is one of its admins; else ignored (counted).
    /// Returns whether a new key was taken.
    pub(super) fn take_grant(&mut self, from: &NodeId, inv: &Invite) -> bool {
        let room = inv.room.room_name();
        let Some(r) = self.private.get(&room) else {
            self.drops.grants_ignored += 1;
            return false;
        };
        if r.keys.contains_key(&inv.epoch) {
            return false;
        }
        let admin = self
            .with_room_state(&room, |s| s.membership.is_admin(from))
            .unwrap_or(false);
        if !admin || inv.creator != r.creator {
            self.drops.grants_ignored += 1;
            debug!(%room, from = %from.fingerprint(), "ignored a key grant from a non-admin");
            return false;
        }
        let inv = Invite {
            name: r.title.clone(),
            ..inv.clone()
        };
        match self.take_key(&inv, false) {
            Ok(_) => {
                info!(%room, epoch = inv.epoch, from = %from.fingerprint(), "received a new room key");
                self.emit_room_changed(&room);
                true
            }
            Err(e) => {
                warn!(%room, "storing a room key: {e}");
                false
            }
        }
    }

    /// Looks through the direct messages addressed to this node for key grants (of `room`, or
    /// of every private room) and takes the ones it can.
    pub(super) fn rescan_grants(&mut self, room: Option<&str>) {
        let mut grants = Vec::new();
        let res = self
            .store
            .for_each_message(Some(dm::DM_ROOM), |sm| -> Result<(), ApiError> {
                if sm.message.author == self.id {
                    return Ok(());
                }
                if let Some((from, Ok(inv))) = self.open_grant(&sm) {
                    if room.is_none_or(|r| inv.room.room_name() == r) {
                        grants.push((from, inv));
                    }
                }
                Ok(())
            });
        if let Err(e) = res {
            warn!("looking for room keys: {e}");
        }
        for (from, inv) in grants {
            self.take_grant(&from, &inv);
        }
    }
}
