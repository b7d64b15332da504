//! Peer and relay addresses as people type them: `host:port` (a DNS name), `10.0.0.2:7300`,
//! `[2001:db8::1]:7300`, and IPv6 link-local addresses with their scope (the interface they
//! are reached on): `[fe80::1%eth0]:7300` or `[fe80::1%3]:7300`.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};

use crate::api::{ApiError, ErrorCode};

fn bad(s: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::InvalidInput, format!("bad address {s:?}: {why}"))
}

/// Splits `host:port` / `[v6]:port` into the host (brackets removed) and the port, checking
/// only the form: a port 1–65535, a non-empty host without spaces, IPv6 in brackets.
pub fn split_host_port(s: &str) -> Result<(String, u16), ApiError> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        rest.split_once("]:")
            .ok_or_else(|| bad(s, "expected [IPv6]:PORT"))?
    } else {
        let (h, p) = s
            .rsplit_once(':')
            .ok_or_else(|| bad(s, "expected HOST:PORT (for example relay.example.org:7300)"))?;
        if h.contains(':') {
            return Err(bad(
                s,
                "write an IPv6 address in brackets, e.g. [fe80::1%eth0]:7300",
            ));
        }
        (h, p)
    };
    let port: u16 = port
        .parse()
        .map_err(|_| bad(s, format!("{port:?} is not a port number")))?;
    if port == 0 {
        return Err(bad(s, "port 0 cannot be dialled"));
    }
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(s, "empty host or a host with spaces"));
    }
    Ok((host.to_string(), port))
}

/// An address literal (no DNS): IPv4, or IPv6 in brackets with an optional scope as a number
/// or an interface name of this host. A link-local IPv6 address without a scope is refused
/// (it cannot be dialled: the interface is ambiguous). `Err` for a host name too.
pub fn parse_socket_addr(s: &str) -> Result<SocketAddr, ApiError> {
    let (host, port) = split_host_port(s)?;
    let (ip, scope) = match host.split_once('%') {
        Some((ip, zone)) => (ip, Some(zone)),
        None => (host.as_str(), None),
    };
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| bad(s, format!("{ip:?} is not an IP address")))?;
    match ip {
        IpAddr::V4(v4) => {
            if scope.is_some() {
                return Err(bad(s, "only IPv6 addresses take a %scope"));
            }
            Ok(SocketAddr::new(IpAddr::V4(v4), port))
        }
        IpAddr::V6(v6) => {
            let scope_id = match scope {
                None => 0,
                Some(zone) => zone
                    .parse::<u32>()
                    .ok()
                    .or_else(|| interface_index(zone))
                    .ok_or_else(|| bad(s, format!("no network interface named {zone:?}")))?,
            };
            if v6.is_unicast_link_local() && scope_id == 0 {
                return Err(bad(
                    s,
                    "a link-local address needs its interface, e.g. [fe80::1%wlan0]:7300",
                ));
            }
            Ok(SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope_id)))
        }
    }
}

/// The index of this host's network interface `name`.
fn interface_index(name: &str) -> Option<u32> {
    if_addrs::get_if_addrs()
        .ok()?
        .into_iter()
        .find(|i| i.name == name)
        .and_then(|i| i.index)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn literals_of_both_families_parse() {
        assert_eq!(
            parse_socket_addr("10.0.0.2:7300").unwrap(),
            SocketAddr::from(([10, 0, 0, 2], 7300))
        );
        let a = parse_socket_addr("[fd00::1]:7300").unwrap();
        assert_eq!(a.to_string(), "[fd00::1]:7300");
        let a = parse_socket_addr(" [fe80::1%3]:7300 ").unwrap();
        let SocketAddr::V6(v6) = a else { panic!() };
        assert_eq!((v6.scope_id(), v6.port()), (3, 7300));
        // Display and std's parser agree on the scope: what is stored reads back.
        assert_eq!(a.to_string().parse::<SocketAddr>().unwrap(), a);
    }

    #[test]
    fn an_interface_name_is_a_scope() {
        let lo = if_addrs::get_if_addrs()
            .unwrap()
            .into_iter()
            .find(|i| i.is_loopback() && i.index.is_some())
            .unwrap();
        let a = parse_socket_addr(&format!("[fe80::1%{}]:7300", lo.name)).unwrap();
        let SocketAddr::V6(v6) = a else { panic!() };
        assert_eq!(Some(v6.scope_id()), lo.index);
        let e = parse_socket_addr("[fe80::1%no-such-if0]:7300").unwrap_err();
        assert!(e.message.contains("no network interface"), "{}", e.message);
    }

    #[test]
    fn bad_forms_get_a_clear_error() {
        for (s, why) in [
            ("[fe80::1]:7300", "link-local address needs its interface"),
            ("fe80::1:7300", "in brackets"),
            ("10.0.0.2", "HOST:PORT"),
            ("10.0.0.2:0", "port 0"),
            ("10.0.0.2:99999", "not a port"),
            ("10.0.0.2%eth0:7300", "take a %scope"),
            ("[fd00::1:7300", "[IPv6]:PORT"),
            (":7300", "empty host"),
            ("relay example:7300", "spaces"),
        ] {
            let e = parse_socket_addr(s).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidInput);
            assert!(e.message.contains(why), "{s}: {}", e.message);
        }
        // A host name has the right form but is not a literal.
        assert_eq!(
            split_host_port("relay.example.org:7300").unwrap(),
            ("relay.example.org".to_string(), 7300)
        );
        assert!(parse_socket_addr("relay.example.org:7300").is_err());
    }
}
