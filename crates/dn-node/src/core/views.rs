//! What the core shows: the views of identity, rooms, peers, messages, the network graph
//! and the status, built from the store and the protocol state.

use super::*;

/// Unacknowledged urgent messages of one room counted at most (a flood of marked messages
/// costs a view no more than this).
pub(super) const MAX_URGENT_COUNT: u32 = 999;
/// Most urgent messages one `Urgent` request lists.
pub(super) const MAX_URGENT_LIST: u32 = 100;

impl Core {
    pub(super) fn name(&self) -> Result<Option<String>, ApiError> {
        self.store.get_setting(NAME_KEY).map_err(store_err)
    }

    pub(super) fn identity(&self) -> Result<IdentityView, ApiError> {
        Ok(IdentityView {
            id: self.id.to_hex(),
            fingerprint: self.id.fingerprint(),
            name: self.name()?,
        })
    }

    pub(super) fn room_view(&self, name: &str) -> Result<RoomView, ApiError> {
        let rooms = self.store.rooms().map_err(store_err)?;
        let v = rooms
            .into_iter()
            .find(|r| r.name == name)
            .map(RoomView::from)
            .unwrap_or(RoomView {
                name: name.to_string(),
                title: name.to_string(),
                private: false,
                admin: false,
                waiting_for_key: 0,
                joined: false,
                muted: false,
                messages: 0,
                last_timestamp: None,
                urgent_unacked: 0,
            });
        Ok(self.dress_room(v))
    }

    pub(super) fn blocked(&self) -> Result<Vec<BlockedView>, ApiError> {
        let peers = self.store.peers().map_err(store_err)?;
        self.store
            .blocked()
            .map_err(store_err)?
            .into_iter()
            .map(|(id, since)| {
                let hello_name = peers
                    .iter()
                    .find(|p| p.id == id)
                    .map(|p| p.name.clone())
                    .filter(|n| !n.is_empty());
                let name = match hello_name {
                    Some(n) => Some(n),
                    None => self.store.author_name(&id).map_err(store_err)?,
                };
                Ok(BlockedView {
                    id: id.to_hex(),
                    fingerprint: id.fingerprint(),
                    name,
                    since,
                })
            })
            .collect()
    }

    pub(super) fn rooms(&self) -> Result<Vec<RoomView>, ApiError> {
        let mut v: Vec<RoomView> = self
            .store
            .rooms()
            .map_err(store_err)?
            .into_iter()
            .filter(|r| r.name != dm::DM_ROOM)
            // Private rooms only carried here are not the user's business (opaque ids).
            .filter(|r| {
                !dn_proto::private::is_private_room(&r.name) || self.private.contains_key(&r.name)
            })
            .map(|r| self.dress_room(RoomView::from(r)))
            .collect();
        v.sort_by(|a, b| {
            b.joined
                .cmp(&a.joined)
                .then(a.title.cmp(&b.title))
                .then(a.name.cmp(&b.name))
        });
        Ok(v)
    }

    /// What the network driver observed and what it means ([`crate::diagnose`]).
    pub(super) fn diagnosis(&self) -> crate::diagnose::DiagnosisView {
        let Some(net) = self.net.as_ref() else {
            return crate::diagnose::DiagnosisView {
                running: false,
                observations: None,
                findings: vec![],
            };
        };
        let mut connected: Vec<crate::diagnose::ConnectedObs> = self
            .conns
            .iter()
            .map(|(id, c)| crate::diagnose::ConnectedObs {
                fingerprint: id.fingerprint(),
                addr: c.addr.to_string(),
            })
            .collect();
        connected.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        let o = net
            .counters
            .observed
            .snapshot(crate::diagnose::interfaces(), connected);
        crate::diagnose::DiagnosisView {
            running: true,
            findings: crate::diagnose::diagnose(&o),
            observations: Some(o),
        }
    }

    pub(super) fn network_view(&self) -> NetworkView {
        let connected: Vec<NodeId> = self.conns.keys().copied().collect();
        network_view(
            self.proto.graph(),
            self.id,
            &self.display_name(),
            &connected,
        )
    }

    pub(super) fn peers(&self) -> Result<Vec<PeerView>, ApiError> {
        let hops = self.proto.graph().hops_from(&self.id);
        let stored = self.store.peers().map_err(store_err)?;
        let listed: std::collections::HashSet<NodeId> = stored.iter().map(|p| p.id).collect();
        let mut v: Vec<PeerView> = stored
            .into_iter()
            .filter(|p| p.id != self.id)
            .map(|p| {
                let conn = self.conns.get(&p.id);
                let connected = conn.is_some();
                let relay_addr = self.relay_addr_of(&p.id);
                PeerView {
                    link: conn.and_then(|c| c.link.clone()),
                    relay: relay_addr.is_some(),
                    relay_addr,
                    id: p.id.to_hex(),
                    fingerprint: p.id.fingerprint(),
                    name: p.name,
                    addresses: p.addresses,
                    connected,
                    last_seen: if connected {
                        Some(now_ms())
                    } else {
                        p.last_seen
                    },
                    rooms: if connected {
                        self.shown_room_names(self.proto.peer_rooms(&p.id))
                    } else {
                        vec![]
                    },
                    hops: if connected {
                        Some(1)
                    } else {
                        hops.get(&p.id).copied()
                    },
                }
            })
            .collect();
        // With a bounded view most of a big network is never connected directly: the nodes
        // the signed neighbour lists reach are peers too, listed with their hops (name from
        // their own list; no address: this node never dialled them).
        let graph = self.proto.graph();
        for (id, h) in &hops {
            if *id == self.id || listed.contains(id) {
                continue;
            }
            v.push(PeerView {
                id: id.to_hex(),
                fingerprint: id.fingerprint(),
                name: graph.record(id).map(|r| r.name.clone()).unwrap_or_default(),
                addresses: vec![],
                connected: false,
                last_seen: None,
                rooms: vec![],
                hops: Some(*h),
                relay: false,
                relay_addr: None,
                link: None,
            });
        }
        v.sort_by(|a, b| {
            b.connected
                .cmp(&a.connected)
                .then(a.name.cmp(&b.name))
                .then(a.id.cmp(&b.id))
        });
        Ok(v)
    }

    /// Room names as the user knows them: a private room this node is a member of by its
    /// title, other private rooms (opaque ids, carried for others) left out.
    fn shown_room_names(&self, rooms: Vec<String>) -> Vec<String> {
        rooms
            .into_iter()
            .filter_map(|r| {
                if !dn_proto::private::is_private_room(&r) {
                    return Some(r);
                }
                self.private.get(&r).map(|p| p.title.clone())
            })
            .collect()
    }

    pub(super) fn status(&self) -> Result<StatusView, ApiError> {
        let Counters {
            received, rejected, ..
        } = self.proto.counters();
        let rooms: Vec<RoomView> = self.rooms()?.into_iter().filter(|r| r.joined).collect();
        let urgent_unacked = rooms.iter().map(|r| r.urgent_unacked).sum();
        Ok(StatusView {
            identity: self.identity()?,
            running: self.net.is_some(),
            listen: self.net.as_ref().map(|n| n.listen.to_string()),
            mdns: self.net.as_ref().is_some_and(|n| n.mdns),
            connected_peers: self.proto.connected().count() as u32,
            known_peers: self
                .store
                .peers()
                .map_err(store_err)?
                .iter()
                .filter(|p| p.id != self.id)
                .count() as u32,
            rooms,
            messages: self.store.message_count(None).map_err(store_err)?,
            received,
            rejected,
            last_received_at: self.last_received_at,
            last_sync_at: self.last_sync_at,
            queued: self.store.queued_count().map_err(store_err)?,
            next_retry_in_ms: self
                .proto
                .next_retry_at()
                .map(|at| at.saturating_sub(self.mono_ms())),
            data_dir: self.data_dir.display().to_string(),
            network: self.network_view(),
            carried_rooms: self
                .proto
                .carried()
                .filter(|r| *r != dm::DM_ROOM)
                .cloned()
                .collect(),
            carry_quota_full: self.proto.carry_full(),
            carry_evicted: self.proto.counters().evicted,
            drops: self.drops(),
            urgent_unacked,
            health: Box::new(self.node_health()),
        })
    }

    /// Everything dropped, refused or cut since start, by reason (the protocol's, the
    /// driver's and the core's own counters in one table).
    pub(super) fn drops(&self) -> std::collections::BTreeMap<String, u64> {
        drops_table(
            &self.proto,
            &self.drops,
            self.net.as_ref().map(|n| n.counters.as_ref()),
        )
    }

    /// Unacknowledged urgent messages of `room`, up to [`MAX_URGENT_COUNT`] (0 on a store
    /// error, logged). Called for every room of a view, so it reads that room's rows only.
    pub(super) fn urgent_unacked_in(&self, room: &str) -> u32 {
        match self.store.urgent_unacked_in(room, MAX_URGENT_COUNT) {
            Ok(n) => n,
            Err(e) => {
                warn!("urgent counts: {e}");
                0
            }
        }
    }

    /// Unacknowledged urgent messages, newest first, at most [`MAX_URGENT_LIST`]: of `room`,
    /// or of every joined room.
    pub(super) fn urgent_list(&self, room: Option<&str>) -> Result<Vec<MessageView>, ApiError> {
        let room = room.map(|r| self.resolve_room(r)).transpose()?;
        let msgs = self
            .store
            .urgent_unacked(room.as_deref(), MAX_URGENT_LIST)
            .map_err(store_err)?;
        let mut out = Vec::new();
        for sm in &msgs {
            out.extend(self.show_room(&sm.message.room, std::slice::from_ref(sm)));
        }
        Ok(out)
    }

    pub(super) fn to_value<T: serde::Serialize>(v: T) -> Result<Value, ApiError> {
        serde_json::to_value(v).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
    }

    /// The user-facing view of a stored message, with its delivery state if written here.
    pub(super) fn view(&self, sm: &StoredMessage) -> MessageView {
        let mut v = view(sm);
        if v.urgent {
            v.acknowledged = match self.store.urgent_acknowledged(&sm.id) {
                Ok(a) => a.unwrap_or(sm.local),
                Err(e) => {
                    warn!("urgent state of {}: {e}", sm.id);
                    false
                }
            };
        }
        if sm.local {
            if let Ok((sent, held)) = self.store.delivery(&sm.id) {
                v.sent_to = sent;
                v.held_by = held;
            }
        }
        v
    }
}

/// The user-facing view of a stored message (`acknowledged` left false: the store knows it,
/// `Core::view` asks).
pub fn view(sm: &StoredMessage) -> MessageView {
    let m = &sm.message;
    MessageView {
        id: sm.id.to_hex(),
        room: m.room.clone(),
        author: m.author.to_hex(),
        author_name: m.author_name.clone(),
        timestamp: m.timestamp,
        body: dn_proto::message::strip_urgent(&m.body).to_string(),
        urgent: dn_proto::message::is_urgent(&m.body),
        acknowledged: false,
        signature: hex::encode(m.signature),
        signed: base64::engine::general_purpose::STANDARD.encode(m.signed_bytes()),
        received_at: sm.received_at,
        local: sm.local,
        sent_to: 0,
        held_by: 0,
        kind: MessageKind::Text,
        private: false,
        subject: None,
    }
}

/// The network graph as the app and `status` show it: this node, its connections, then the
/// others by hops (ties by id), at most [`MAX_VIEW_NODES`]; links between shown nodes, the
/// nearest first, at most [`MAX_VIEW_LINKS`], plus live connections whose neighbour lists
/// have not arrived yet. A pure function of its inputs.
pub(super) fn network_view(
    graph: &dn_proto::topo::Graph,
    me: NodeId,
    my_name: &str,
    connected: &[NodeId],
) -> NetworkView {
    let hops = graph.hops_from(&me);
    let mut ids: std::collections::BTreeSet<NodeId> = hops.keys().copied().collect();
    for r in graph.records() {
        ids.insert(r.node);
    }
    ids.insert(me);
    ids.extend(connected.iter().copied());
    // The nearest ones only: made-up neighbour lists (within the topology caps) must not
    // turn every status answer into hundreds of KB. Chosen before anything is formatted.
    let mut ids: Vec<NodeId> = ids.into_iter().collect();
    ids.sort_by_cached_key(|id| {
        (
            *id != me,
            !connected.contains(id),
            hops.get(id).copied().unwrap_or(u32::MAX),
            *id,
        )
    });
    ids.truncate(MAX_VIEW_NODES);
    let shown: std::collections::HashSet<NodeId> = ids.iter().copied().collect();
    let nodes: Vec<NetworkNode> = ids
        .into_iter()
        .map(|id| NetworkNode {
            id: id.to_hex(),
            fingerprint: id.fingerprint(),
            name: if id == me {
                my_name.to_string()
            } else {
                graph
                    .record(&id)
                    .map(|r| r.name.clone())
                    .unwrap_or_default()
            },
            hops: hops.get(&id).copied(),
            connected: connected.contains(&id),
            me: id == me,
        })
        .collect();
    // Links between shown nodes, the nearest first, at most MAX_VIEW_LINKS: 256 sybils
    // listing each other would otherwise put 15 k links (300 KB) in every status.
    // Each link's key is computed once (a sort calling lookups per comparison took 0.2 s a
    // status in a debug build), and only the kept ones are sorted.
    let far = |id: &NodeId| hops.get(id).copied().unwrap_or(u32::MAX);
    let mut between: Vec<(u32, u32, NodeId, NodeId)> = graph
        .links()
        .into_iter()
        .filter(|(a, b)| shown.contains(a) && shown.contains(b))
        .map(|(a, b)| {
            let (fa, fb) = (far(&a), far(&b));
            (fa.max(fb), fa.min(fb), a, b)
        })
        .collect();
    if between.len() > MAX_VIEW_LINKS {
        between.select_nth_unstable(MAX_VIEW_LINKS);
        between.truncate(MAX_VIEW_LINKS);
    }
    between.sort_unstable();
    let mut links: Vec<NetworkLink> = between
        .into_iter()
        .map(|(_, _, a, b)| NetworkLink {
            a: a.to_hex(),
            b: b.to_hex(),
        })
        .collect();
    // Live connections whose records have not propagated yet are links too.
    for id in connected {
        let (a, b) = if me < *id { (me, *id) } else { (*id, me) };
        let l = NetworkLink {
            a: a.to_hex(),
            b: b.to_hex(),
        };
        if !links.contains(&l) {
            links.push(l);
        }
    }
    NetworkView { nodes, links }
}

/// Everything dropped, refused or cut since start, by reason: the protocol's, the core's and
/// the network driver's counters in one table (the status's `drops`). Reasons with nothing
/// are left out; a reason counted in two places (`not_reading`: queue over budget in the
/// core, stalled writer in the driver) is summed. A pure function of its inputs.
pub(super) fn drops_table(
    proto: &Protocol,
    core: &CoreDrops,
    net: Option<&crate::net::NetCounters>,
) -> std::collections::BTreeMap<String, u64> {
    let mut d = std::collections::BTreeMap::new();
    let mut put = |k: &str, v: u64| {
        if v > 0 {
            *d.entry(k.to_string()).or_insert(0) += v;
        }
    };
    let counters = proto.counters();
    put("invalid", counters.rejected);
    put("blocked", proto.blocked_drops());
    put("urgent_over_budget", counters.urgent_over_budget);
    put("tree_over_budget", counters.tree_over_budget);
    for (reason, n) in counters.drops.iter() {
        put(reason.key(), n);
    }
    let q = proto.quota_drops();
    put("quota_author", q.author);
    put("quota_peer", q.peer);
    put("invalid_dm", q.bad_dm);
    put("invalid_private", q.bad_private);
    let t = proto.topo_drops();
    put("topo_rate", t.too_soon + t.peer_rate);
    put("topo_cap", t.full);
    let cd = proto.carry_drops();
    put("carry_candidates", cd.per_peer + cd.table_full);
    put("not_reading", core.not_reading);
    put("failed_commits", core.failed_commits);
    put("undecodable", core.undecodable);
    put("net_commands_dropped", core.net_commands);
    put("grants_ignored", core.grants_ignored);
    if let Some(c) = net {
        let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        put("refused_full", get(&c.refused_full));
        put("refused_per_address", get(&c.refused_per_address));
        put("refused_handshakes", get(&c.refused_handshakes));
        put("oversized_frames", get(&c.oversized_frames));
        put("discovery_dropped", get(&c.discovery_dropped));
        put("targets_evicted", get(&c.targets_evicted));
        put("beacon_dropped", get(&c.beacon_dropped));
        put("not_reading", get(&c.stalled));
    }
    d
}
