//! Relay addresses this node keeps dialling (`disasternet relay add`, the app's "Relays"
//! section): kept in the store's settings (`relays`, a JSON list), handed to the network
//! driver at every start ([`NetCmd::DialHost`]), which looks each name up again before every
//! dial and redials with backoff for ever. The node that answers at one is shown as a relay
//! in the peer list: that is local knowledge, nothing on the wire says "relay"
//! (docs/protocol.md §5).

use serde::{Deserialize, Serialize};

use super::*;
use crate::api::RelayView;

/// Settings key of the relay list.
const RELAYS_KEY: &str = "relays";
/// Relay addresses kept, at most.
pub(super) const MAX_RELAYS: usize = 32;

/// One relay address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Relay {
    /// As added (trimmed).
    pub addr: String,
    /// The node that last answered there (64 hex).
    #[serde(default)]
    pub id: Option<String>,
    /// The node first met there (64 hex): trusted with a site's backlog (quota.rs). Another
    /// key answering later is used as an ordinary peer (trust on first use).
    #[serde(default)]
    pub trusted: Option<String>,
}

impl Relay {
    /// The node last met at this address, if any.
    pub(crate) fn node(&self) -> Option<NodeId> {
        self.id.as_deref().and_then(|h| NodeId::from_hex(h).ok())
    }

    /// The node first met at this address, trusted as the relay.
    pub(crate) fn trusted_node(&self) -> Option<NodeId> {
        self.trusted
            .as_deref()
            .and_then(|h| NodeId::from_hex(h).ok())
    }
}

/// The stored list (empty when none was ever added; an unreadable value is logged and
/// treated as empty rather than stopping the node).
pub(crate) fn load(store: &Store) -> Result<Vec<Relay>, ApiError> {
    let Some(text) = store.get_setting(RELAYS_KEY).map_err(store_err)? else {
        return Ok(vec![]);
    };
    match serde_json::from_str::<Vec<Relay>>(&text) {
        Ok(mut v) => {
            // Lists written before trust on first use: the node met there is the first one.
            for r in &mut v {
                if r.trusted.is_none() {
                    r.trusted.clone_from(&r.id);
                }
            }
            Ok(v)
        }
        Err(e) => {
            warn!("stored relay list unreadable ({e}); starting with none");
            Ok(vec![])
        }
    }
}

/// Checks the form of a relay address without looking anything up (the core thread never
/// waits for a resolver): `host:port`, an IP literal, IPv6 in brackets with a scope.
pub(crate) fn check(addr: &str) -> Result<String, ApiError> {
    let addr = addr.trim();
    let (host, _) = crate::addr::split_host_port(addr)?;
    if host.parse::<std::net::IpAddr>().is_ok() || host.contains('%') || host.contains(':') {
        crate::addr::parse_socket_addr(addr)?;
    }
    Ok(addr.to_string())
}

impl Core {
    fn save_relays(&self) -> Result<(), ApiError> {
        let text = serde_json::to_string(&self.relays)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        self.store.set_setting(RELAYS_KEY, &text).map_err(store_err)
    }

    /// The relay list with connection states.
    pub(super) fn relay_views(&self) -> Vec<RelayView> {
        // Names of the peers met, read once for the whole list (none when the read fails).
        let peers = if self.relays.iter().any(|r| r.id.is_some()) {
            self.store.peers().unwrap_or_default()
        } else {
            vec![]
        };
        self.relays
            .iter()
            .map(|r| {
                let id = r.node();
                let name =
                    id.and_then(|id| peers.iter().find(|p| p.id == id).map(|p| p.name.clone()));
                RelayView {
                    addr: r.addr.clone(),
                    id: r.id.clone(),
                    fingerprint: id.map(|id| id.fingerprint()),
                    name,
                    connected: id.is_some_and(|id| self.conns.contains_key(&id)),
                    key_changed: r.id.is_some() && r.id != r.trusted,
                }
            })
            .collect()
    }

    /// The relay address `peer` answered at, if it is one of ours.
    pub(super) fn relay_addr_of(&self, peer: &NodeId) -> Option<String> {
        let hex = peer.to_hex();
        self.relays
            .iter()
            .find(|r| r.id.as_deref() == Some(hex.as_str()))
            .map(|r| r.addr.clone())
    }

    pub(super) fn add_relay(&mut self, addr: &str) -> Result<Vec<RelayView>, ApiError> {
        let addr = check(addr)?;
        if !self.relays.iter().any(|r| r.addr == addr) {
            if self.relays.len() >= MAX_RELAYS {
                return Err(invalid(format!(
                    "at most {MAX_RELAYS} relay addresses; remove one first"
                )));
            }
            self.relays.push(Relay {
                addr: addr.clone(),
                id: None,
                trusted: None,
            });
            self.save_relays()?;
        }
        // With no node running it is dialled at the next start.
        self.net_cmd(NetCmd::DialHost { host: addr });
        self.status_dirty = true;
        Ok(self.relay_views())
    }

    pub(super) fn remove_relay(&mut self, addr: &str) -> Result<Vec<RelayView>, ApiError> {
        let addr = addr.trim();
        let before = self.relays.len();
        let gone: Vec<Relay> = self
            .relays
            .iter()
            .filter(|r| r.addr == addr)
            .cloned()
            .collect();
        self.relays.retain(|r| r.addr != addr);
        if self.relays.len() == before {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("{addr:?} is not a relay address of this node"),
            ));
        }
        self.save_relays()?;
        self.net_cmd(NetCmd::ForgetHost {
            host: addr.to_string(),
        });
        for r in gone {
            // Still trusted if it is the trusted node of another of our relay addresses.
            if let Some(id) = r.trusted_node() {
                if !self.relays.iter().any(|k| k.trusted_node() == Some(id)) {
                    self.proto.set_trusted_relay(id, false);
                }
            }
            if let Some(id) = r.node() {
                self.emit_peer(&id);
            }
        }
        Ok(self.relay_views())
    }

    /// A connection dialled at relay address `host` reached `peer`: remembered, so the peer
    /// list shows it as a relay from now on.
    pub(super) fn relay_connected(&mut self, peer: NodeId, host: &str) {
        let hex = peer.to_hex();
        let mut changed = false;
        let mut trusted = false;
        for r in self.relays.iter_mut().filter(|r| r.addr == host) {
            if r.id.as_deref() != Some(hex.as_str()) {
                r.id = Some(hex.clone());
                changed = true;
            }
            // Trust on first use: the first node met at an address is the relay.
            if r.trusted.is_none() {
                r.trusted = Some(hex.clone());
                changed = true;
            }
            trusted |= r.trusted.as_deref() == Some(hex.as_str());
        }
        if !changed && !trusted && !self.relays.iter().any(|r| r.addr == host) {
            return; // removed while the dial was in flight
        }
        if trusted {
            if !self.proto.set_trusted_relay(peer, true) {
                warn!(peer = %peer.fingerprint(), "too many trusted relays; this one keeps a peer's budget");
            }
        } else {
            warn!(
                %host, peer = %peer.fingerprint(),
                "a different node than the first one answered at this relay address; it is used \
                 as an ordinary peer until the address is removed and added again"
            );
        }
        if changed {
            if let Err(e) = self.save_relays() {
                warn!("recording the relay's id: {e}");
            }
            self.status_dirty = true;
        }
    }
}
