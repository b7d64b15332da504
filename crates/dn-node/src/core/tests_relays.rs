//! Relay addresses: trust on first use. The first node met at an address gets a relay's
//! budget; another key answering there later is an ordinary peer until the user removes and
//! adds the address again.

#![allow(clippy::unwrap_used)]

use super::tests_private::{node, typed};
use super::*;

const ADDR: &str = "relay.example.org:7300";

fn key(b: u8) -> NodeId {
    identity::node_id(&ed25519_dalek::SigningKey::from_bytes(&[b; 32]))
}

#[test]
fn the_first_node_met_at_a_relay_address_is_trusted_and_a_new_key_is_not() {
    let mut ana = node("Ana");
    typed(&mut ana, calls::AddRelay { addr: ADDR.into() }).unwrap();
    let (first, other) = (key(1), key(2));
    ana.core.relay_connected(first, ADDR);
    assert!(ana.core.proto.is_trusted_relay(&first));
    let v = typed(&mut ana, calls::ListRelays).unwrap();
    assert_eq!(v[0].id.as_deref(), Some(first.to_hex().as_str()));
    assert!(!v[0].key_changed);

    // Someone else answers at that address: shown, but not trusted.
    ana.core.relay_connected(other, ADDR);
    assert!(!ana.core.proto.is_trusted_relay(&other));
    let v = typed(&mut ana, calls::ListRelays).unwrap();
    assert_eq!(v[0].id.as_deref(), Some(other.to_hex().as_str()));
    assert!(v[0].key_changed);

    // The trust survives a restart of the core, and stays with the first key.
    let list = relays::load(&ana.core.store).unwrap();
    assert_eq!(list[0].trusted_node(), Some(first));

    // Removing the address ends the trust; adding it again trusts whoever answers first.
    typed(&mut ana, calls::RemoveRelay { addr: ADDR.into() }).unwrap();
    assert!(!ana.core.proto.is_trusted_relay(&first));
    typed(&mut ana, calls::AddRelay { addr: ADDR.into() }).unwrap();
    ana.core.relay_connected(other, ADDR);
    assert!(ana.core.proto.is_trusted_relay(&other));
    assert!(!typed(&mut ana, calls::ListRelays).unwrap()[0].key_changed);

    // A connection for an address no longer in the list changes nothing.
    ana.core.relay_connected(key(3), "gone.example.org:7300");
    assert!(!ana.core.proto.is_trusted_relay(&key(3)));
}

#[test]
fn relay_lists_written_before_trust_on_first_use_trust_the_node_they_met() {
    let ana = node("Ana");
    let first = key(1);
    let old = format!(r#"[{{"addr":"{ADDR}","id":"{}"}}]"#, first.to_hex());
    ana.core.store.set_setting("relays", &old).unwrap();
    let list = relays::load(&ana.core.store).unwrap();
    assert_eq!(list[0].trusted_node(), Some(first));
}
