//! Hello and room lists: what this node says about itself, which rooms it serves, and
//! what it learns from a peer's list.

use super::*;

impl Protocol {
    pub(super) fn member(&self, room: &str) -> bool {
        self.rooms.contains(room)
            || (self.carried.contains(room) && (!self.carry_full || room == crate::dm::DM_ROOM))
    }

    /// Joined and carried rooms: what this node announces, accepts and relays.
    pub(super) fn served(&self) -> BTreeSet<String> {
        let mut s = self.rooms.clone();
        s.extend(self.carried.iter().filter(|r| self.member(r)).cloned());
        s
    }

    pub(super) fn hello(&self) -> Frame {
        Frame::Hello {
            version: PROTOCOL_VERSION,
            node: self.me,
            name: self.name.clone(),
            rooms: self.served().into_iter().collect(),
            listen_port: self.listen_port,
        }
    }

    /// Tells every connected peer our rooms. Also peers whose hello has not arrived yet: our
    /// own hello went out on connect and may list stale rooms.
    pub(super) fn announce_rooms(&self, out: &mut Vec<Output>) {
        let rooms: Vec<String> = self.served().into_iter().collect();
        for peer in self.peers.keys() {
            out.push(Output::Send {
                peer: *peer,
                frame: Frame::Rooms {
                    rooms: rooms.clone(),
                },
            });
        }
    }

    /// Normalises a peer's room list, dropping invalid names.
    pub(super) fn clean_rooms(rooms: Vec<String>) -> BTreeSet<String> {
        rooms
            .into_iter()
            .filter_map(|r| normalize_room(&r).ok().filter(|n| *n == r))
            .collect()
    }

    /// The rooms `peer` serves now (a `Rooms` frame or a repeated `Hello`): carry what it
    /// carries, offer the rooms newly shared.
    pub(super) fn on_rooms(
        &mut self,
        store: &mut dyn Storage,
        peer: NodeId,
        rooms: Vec<String>,
        out: &mut Vec<Output>,
    ) {
        let rooms = Self::clean_rooms(rooms);
        let Some(old) = self.peers.get(&peer).map(|p| p.rooms.clone()) else {
            return;
        };
        self.carry(&rooms, Some(peer), store, out);
        let newly: Vec<String> = rooms
            .iter()
            .filter(|r| !old.contains(*r) && self.member(r))
            .cloned()
            .collect();
        if let Some(p) = self.peers.get_mut(&peer) {
            p.lazy.retain(|r| rooms.contains(r));
            p.rooms = rooms;
        }
        for room in newly {
            self.offer(store, peer, &room, out);
        }
    }
}
