//! Direct messages on the core: sealing one for a recipient and opening the ones addressed
//! to (or sent by) this node. A direct message whose text is a private-room key grant
//! (`dn_proto::private::GRANT_DM_PREFIX`) is not shown as a conversation: `private.rs` takes
//! the key.

use dn_proto::private::{self, Invite, InviteError};

use super::*;

impl Core {
    /// Decrypts a stored message of the DM room if this node is its sender or recipient.
    fn open_dm_any(&self, sm: &StoredMessage) -> Option<DmView> {
        let env = dm::from_body(&sm.message.body).ok()?;
        let m = &sm.message;
        let outgoing = m.author == self.id;
        if !outgoing && env.recipient != self.id {
            return None; // carried for others
        }
        let body = dm::open(&self.key, &m.author, &env, m.timestamp).ok()?;
        let peer = if outgoing { env.recipient } else { m.author };
        Some(DmView {
            id: sm.id.to_hex(),
            peer: peer.to_hex(),
            author: m.author.to_hex(),
            author_name: m.author_name.clone(),
            timestamp: m.timestamp,
            body,
            outgoing,
            received_at: sm.received_at,
            urgent: dn_proto::message::is_urgent(&m.body),
        })
    }

    /// The conversation view of a stored DM to or from this node (key grants are not
    /// conversation).
    pub(super) fn open_dm(&self, sm: &StoredMessage) -> Option<DmView> {
        self.open_dm_any(sm)
            .filter(|d| private::grant_from_text(&d.body).is_none())
    }

    /// A key grant carried by a stored DM addressed to this node: its sender and the invite it
    /// holds (or why it does not parse).
    pub(super) fn open_grant(
        &self,
        sm: &StoredMessage,
    ) -> Option<(NodeId, Result<Invite, InviteError>)> {
        let d = self.open_dm_any(sm).filter(|d| !d.outgoing)?;
        private::grant_from_text(&d.body).map(|g| (sm.message.author, g))
    }

    /// Seals `body` for `to`, stores it durably and spreads it; no event. A key grant
    /// (`grant`) goes out under the hidden author name, so carriers do not even learn the
    /// sender's display name from it. An `urgent` one carries the marker before the envelope.
    pub(super) fn send_dm_quiet(
        &mut self,
        to: &NodeId,
        body: &str,
        grant: bool,
        urgent: bool,
    ) -> Result<StoredMessage, ApiError> {
        let name = if grant {
            private::HIDDEN_AUTHOR_NAME.to_string()
        } else {
            self.require_name()?
        };
        if body.len() > dm::MAX_DM_TEXT_BYTES {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!(
                    "direct message is {} bytes; the limit is {} bytes",
                    body.len(),
                    dm::MAX_DM_TEXT_BYTES
                ),
            ));
        }
        let ts = now_ms();
        let mut eph = [0u8; 32];
        let mut nonce = [0u8; 24];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut eph);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let env = dm::seal(&self.key, to, body, ts, eph, nonce).map_err(invalid)?;
        let outer = dn_proto::message::mark_urgent(&dm::to_body(&env), urgent);
        let msg = Message::create(&self.key, dm::DM_ROOM, &name, ts, &outer).map_err(invalid)?;
        let sm = self.store_local(&msg)?;
        self.feed(Input::Published(msg));
        self.status_dirty = true;
        Ok(sm)
    }

    pub(super) fn send_dm(
        &mut self,
        to: &str,
        body: &str,
        urgent: bool,
    ) -> Result<DmView, ApiError> {
        let to = NodeId::from_hex(to).map_err(invalid)?;
        if private::grant_from_text(body).is_some() {
            return Err(invalid(
                "that text is a private-room key; share a room with its invite instead",
            ));
        }
        let sm = self.send_dm_quiet(&to, body, false, urgent)?;
        let v = self.open_dm(&sm).ok_or_else(|| {
            ApiError::new(ErrorCode::Internal, "cannot read back own direct message")
        })?;
        let _ = self.events.send(EngineEvent::Dm { dm: v.clone() });
        Ok(v)
    }
}
