//! The core's answers to [`Request`]s: the one `match` over the request list, and the
//! writes it needs (publishing a message, setting the name).

use super::*;
use crate::atrest::Passphrase;

impl Core {
    /// Answers `req` on `reply`: at once, or (an export) from the thread writing the file.
    pub fn request(&mut self, req: Request, reply: Reply) {
        let mut slot = Some(reply);
        let r = self.answer(req, &mut slot);
        if let Some(reply) = slot {
            let _ = reply.send(r);
        }
    }

    /// The answer to one request. A request answered later (an export) takes `reply`.
    fn answer(&mut self, req: Request, reply: &mut Option<Reply>) -> Result<Value, ApiError> {
        match req {
            Request::Identity => Self::to_value(self.identity()?),
            Request::SetName { name } => {
                let name = normalize_name(&name).map_err(invalid)?;
                self.store.set_setting(NAME_KEY, &name).map_err(store_err)?;
                // Connected peers get a second Hello with the new name; the signed neighbour
                // list (which carries the name to the whole network) is re-signed.
                self.feed(Input::Renamed(name.clone()));
                if let Some(m) = self.net.as_ref().and_then(|n| n.announcer.as_ref()) {
                    m.rename(&name);
                }
                self.status_dirty = true;
                Self::to_value(self.identity()?)
            }
            Request::JoinRoom { room } => {
                self.refuse_on_relay()?;
                let room = self.resolve_room(&room)?;
                reserved(&room)?;
                if dn_proto::private::is_private_room(&room) && !self.private.contains_key(&room) {
                    return Err(invalid(
                        "that is a private room: join it with its invite (room join --invite CODE)",
                    ));
                }
                self.store.join_room(&room, now_ms()).map_err(store_err)?;
                self.feed(Input::Joined(room.clone()));
                self.status_dirty = true;
                Self::to_value(self.room_view(&room)?)
            }
            Request::SetMuted { room, muted } => {
                let room = self.resolve_room(&room)?;
                if room == dm::DM_ROOM {
                    return Err(invalid(format!("{room} is reserved for direct messages")));
                }
                self.store.set_room_muted(&room, muted).map_err(store_err)?;
                self.status_dirty = true;
                Self::to_value(self.room_view(&room)?)
            }
            Request::LeaveRoom { room } => {
                let room = self.resolve_room(&room)?;
                self.require_joined(&room, "")?;
                self.store.leave_room(&room).map_err(store_err)?;
                self.feed(Input::Left(room.clone()));
                self.status_dirty = true;
                Self::to_value(self.room_view(&room)?)
            }
            Request::Rooms => Self::to_value(self.rooms()?),
            Request::Send { room, body, urgent } => {
                Self::to_value(self.send(&room, &body, urgent)?)
            }
            Request::Urgent { room } => Self::to_value(self.urgent_list(room.as_deref())?),
            Request::AckUrgent { room, id } => {
                let room = self.resolve_room(&room)?;
                let id = match id {
                    Some(h) => Some(MessageId::from_hex(&h).map_err(invalid)?),
                    None => None,
                };
                let n = self
                    .store
                    .ack_urgent(&room, id.as_ref())
                    .map_err(store_err)?;
                if n == 0 && id.is_some() {
                    return Err(ApiError::new(
                        ErrorCode::NotFound,
                        format!("no unacknowledged urgent message with that id in {room}"),
                    ));
                }
                self.emit_room_changed(&room);
                Self::to_value(self.room_view(&room)?)
            }
            Request::Messages {
                room,
                limit,
                before,
            } => {
                let room = self.resolve_room(&room)?;
                let before = match before {
                    Some(b) => Some(MessageId::from_hex(&b).map_err(invalid)?),
                    None => None,
                };
                let limit = limit.clamp(1, MAX_PAGE);
                let msgs = self
                    .store
                    .messages(&room, limit, before.as_ref())
                    .map_err(store_err)?;
                Self::to_value(self.show_room(&room, &msgs))
            }
            Request::Peers => Self::to_value(self.peers()?),
            Request::Status => Self::to_value(self.status()?),
            Request::Diagnose => Self::to_value(self.diagnosis()),
            Request::Export { room, path, format } => {
                // Written on a thread of its own, which answers once the file is complete.
                if let Some(reply) = reply.take() {
                    self.start_export(room, path, format, reply);
                }
                Ok(Value::Null)
            }
            Request::ExportBundle {
                path,
                rooms,
                since_ms,
            } => {
                if let Some(reply) = reply.take() {
                    self.start_bundle_export(path, rooms, since_ms, reply);
                }
                Ok(Value::Null)
            }
            Request::BundleProgress { path } => Self::to_value(self.bundles.get(&path)),
            Request::ImportBundle { path } => {
                // Answered when the last chunk is imported (see `bundle.rs`).
                if let Some(reply) = reply.take() {
                    self.start_bundle_import(path, reply);
                }
                Ok(Value::Null)
            }
            Request::Activate => {
                let window = self.net.as_ref().is_some_and(|n| n.window);
                if window {
                    info!("asked to show the window (another start on this data dir)");
                    let _ = self.events.send(EngineEvent::Activate);
                }
                Self::to_value(ActivateView { window })
            }
            Request::BackupIdentity { path } => {
                if !Path::new(&path).is_absolute() {
                    return Err(invalid(format!("{path}: the backup path must be absolute")));
                }
                self.refuse_own_files(Path::new(&path))?;
                self.write_backup(Path::new(&path))?;
                Self::to_value(BackupSummary { path })
            }
            Request::Network => Self::to_value(self.network_view()),
            Request::Block { author, blocked } => {
                let id = NodeId::from_hex(author.trim()).map_err(|_| {
                    invalid(format!(
                        "{author:?} is not a node id: give the author's full id (64 hex characters)"
                    ))
                })?;
                if id == self.id {
                    return Err(invalid("you cannot block yourself"));
                }
                self.store
                    .set_blocked(&id, blocked, now_ms())
                    .map_err(store_err)?;
                self.proto.set_blocked(id, blocked);
                info!(author = %id.fingerprint(), blocked, "author block changed");
                Self::to_value(self.blocked()?)
            }
            Request::Blocked => Self::to_value(self.blocked()?),
            Request::SendDm { to, body, urgent } => {
                Self::to_value(self.send_dm(&to, &body, urgent)?)
            }
            Request::DmLog { with, limit } => {
                let with = NodeId::from_hex(&with).map_err(invalid)?;
                let mut v = Vec::new();
                self.store
                    .for_each_message(Some(dm::DM_ROOM), |sm| -> Result<(), ApiError> {
                        if let Some(d) = self.open_dm(&sm) {
                            if d.peer == with.to_hex() {
                                v.push(d);
                            }
                        }
                        Ok(())
                    })?;
                let skip = v.len().saturating_sub(limit.clamp(1, MAX_PAGE) as usize);
                Self::to_value(v.split_off(skip))
            }
            Request::AddPeer { addr } => {
                self.net.as_ref().ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidInput,
                        "no node is running on this data directory",
                    )
                })?;
                // Only address literals reach the core: `Engine::request` resolves host names.
                let a: SocketAddr = addr.parse().map_err(|e| {
                    ApiError::new(
                        ErrorCode::InvalidInput,
                        format!("bad peer address {addr:?}: {e}"),
                    )
                })?;
                if !self.net_cmd(NetCmd::Dial {
                    addr: a,
                    id: None,
                    persistent: true,
                }) {
                    return Err(ApiError::new(
                        ErrorCode::Busy,
                        "the network driver is busy; try again",
                    ));
                }
                Ok(Value::Null)
            }
            Request::AddRelay { addr } => Self::to_value(self.add_relay(&addr)?),
            Request::RemoveRelay { addr } => Self::to_value(self.remove_relay(&addr)?),
            Request::ListRelays => Self::to_value(self.relay_views()),
            Request::CreatePrivateRoom { title } => {
                self.refuse_on_relay()?;
                Self::to_value(self.create_private(&title)?)
            }
            Request::RoomInvite { room, path } => Self::to_value(self.invite(&room, path)?),
            Request::JoinInvite { invite } => {
                self.refuse_on_relay()?;
                Self::to_value(self.join_invite(&invite)?)
            }
            Request::Members { room } => Self::to_value(self.members(&room)?),
            Request::RemoveMember { room, member } => {
                Self::to_value(self.remove_member(&room, &member)?)
            }
            Request::PromoteMember { room, member } => {
                Self::to_value(self.promote_member(&room, &member)?)
            }
            Request::LockState => Self::to_value(self.lock_view()),
            Request::SetPassphrase { passphrase } => {
                Self::to_value(self.set_passphrase(&Passphrase::new(passphrase))?)
            }
            Request::ChangePassphrase { old, new } => Self::to_value(
                self.change_passphrase(&Passphrase::new(old), &Passphrase::new(new))?,
            ),
            Request::RemovePassphrase { passphrase } => {
                Self::to_value(self.remove_passphrase(&Passphrase::new(passphrase))?)
            }
        }
    }

    pub(super) fn require_name(&self) -> Result<String, ApiError> {
        self.name()?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::NoName,
                "set a display name first (disasternet init --name NAME)",
            )
        })
    }

    /// Stores a message written here, durably (synchronous=FULL, outside any burst batch),
    /// and reads it back.
    pub(super) fn store_local(&mut self, msg: &Message) -> Result<StoredMessage, ApiError> {
        self.store
            .insert_message(msg, now_ms(), true)
            .map_err(store_err)?;
        self.store
            .get_message(&msg.id())
            .map_err(store_err)?
            .ok_or_else(|| ApiError::new(ErrorCode::Storage, "message vanished after insert"))
    }

    /// `not_found` unless the user joined `room` (`hint` is added to the message).
    fn require_joined(&self, room: &str, hint: &str) -> Result<(), ApiError> {
        if self
            .store
            .joined_rooms()
            .map_err(store_err)?
            .iter()
            .any(|r| r == room)
        {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorCode::NotFound,
            format!("not a member of room {room}{hint}"),
        ))
    }

    /// Sends a text to a room; `urgent` marks it ([`dn_proto::message::URGENT_MARKER`] in
    /// front of the signed body; a text that starts with the marker is urgent anyway).
    pub(super) fn send(
        &mut self,
        room: &str,
        body: &str,
        urgent: bool,
    ) -> Result<MessageView, ApiError> {
        let room = self.resolve_room(room)?;
        reserved(&room)?;
        let name = self.require_name()?;
        self.require_joined(&room, &format!("; join it first (room join {room})"))?;
        if dn_proto::private::is_private_room(&room) {
            let urgent = urgent || dn_proto::message::is_urgent(body);
            let text = dn_proto::message::strip_urgent(body).to_string();
            return self.send_private(&room, dn_proto::private::Content::Text(text), urgent);
        }
        if urgent && dn_proto::message::strip_urgent(body).trim().is_empty() {
            return Err(invalid("an urgent message needs a text"));
        }
        let body = dn_proto::message::mark_urgent(body, urgent);
        let msg = Message::create(&self.key, &room, &name, now_ms(), &body).map_err(invalid)?;
        // Durable (synchronous=FULL) before anyone is told it was sent.
        let sm = self.store_local(&msg)?;
        let v = self.view(&sm);
        self.publish_local(msg, &v);
        Ok(v)
    }

    /// After a message written here is stored: shows it, then hands it to the protocol to
    /// spread.
    pub(super) fn publish_local(&mut self, msg: Message, shown: &MessageView) {
        let _ = self.events.send(EngineEvent::Message {
            message: shown.clone(),
        });
        self.feed(Input::Published(msg));
        self.status_dirty = true;
    }
}

/// Refuses the room reserved for direct messages in room commands.
fn reserved(room: &str) -> Result<(), ApiError> {
    if room == dm::DM_ROOM {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "the room name \"dm\" is reserved for direct messages; use dm --to ID",
        ));
    }
    Ok(())
}
