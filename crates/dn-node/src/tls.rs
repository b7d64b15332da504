//! TLS identity: the node's Ed25519 key doubles as its TLS key. Each node presents a
//! self-signed certificate (rcgen) for that key; both sides require the other's certificate
//! (mutual TLS 1.3) and accept it only if its key is an Ed25519 key — and, when the dialer
//! knows whom it is calling, exactly the expected node id. The handshake signature is checked
//! with ring through rustls; certificate chains and names are not used.

use std::sync::Arc;
use std::time::Duration;

use dn_proto::NodeId;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::SigningKey;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// ALPN of protocol version 1.
pub const ALPN: &[u8] = b"disasternet/1";
/// Server name used when dialing (ignored by the verifier).
pub const SERVER_NAME: &str = "disasternet";
const ED25519_OID: &str = "1.3.101.112";

/// Errors while building the TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Key encoding failed.
    #[error("key encoding: {0}")]
    Key(String),
    /// Certificate generation failed.
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// rustls rejected the configuration.
    #[error("tls config: {0}")]
    Rustls(#[from] rustls::Error),
    /// quinn rejected the configuration.
    #[error("quic config: {0}")]
    Quic(String),
}

/// Certificate and key derived from the node key.
pub struct TlsIdentity {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl TlsIdentity {
    /// Makes a self-signed certificate for the node key.
    pub fn new(sk: &SigningKey) -> Result<Self, TlsError> {
        let pkcs8 = sk
            .to_pkcs8_der()
            .map_err(|e| TlsError::Key(e.to_string()))?;
        let key = PrivatePkcs8KeyDer::from(pkcs8.as_bytes().to_vec());
        let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&key, &rcgen::PKCS_ED25519)?;
        let mut params = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()])?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            hex::encode(sk.verifying_key().to_bytes()),
        );
        let cert = params.self_signed(&kp)?;
        Ok(TlsIdentity {
            cert: cert.der().clone(),
            key,
            provider: Arc::new(ring::default_provider()),
        })
    }

    fn algs(&self) -> WebPkiSupportedAlgorithms {
        self.provider.signature_verification_algorithms
    }

    /// QUIC server configuration: client certificates mandatory, any Ed25519 identity.
    pub fn server_config(&self) -> Result<quinn::ServerConfig, TlsError> {
        let verifier = Arc::new(PeerVerifier {
            expected: None,
            algs: self.algs(),
        });
        let mut tls = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![self.cert.clone()],
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .map_err(|e| TlsError::Quic(e.to_string()))?;
        let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        cfg.transport_config(transport());
        // Connection attempts waiting for the driver to accept or refuse them (see net.rs for
        // the caps it applies); past this quinn refuses new ones itself.
        cfg.max_incoming(MAX_INCOMING);
        Ok(cfg)
    }

    /// QUIC client configuration that accepts only `expected` (or any Ed25519 identity when
    /// `None`, as for a `--peer HOST:PORT` whose id is learned from its certificate).
    pub fn client_config(&self, expected: Option<NodeId>) -> Result<quinn::ClientConfig, TlsError> {
        let verifier = Arc::new(PeerVerifier {
            expected,
            algs: self.algs(),
        });
        let mut tls = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(
                vec![self.cert.clone()],
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
            .map_err(|e| TlsError::Quic(e.to_string()))?;
        let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
        cfg.transport_config(transport());
        Ok(cfg)
    }
}

/// Connection attempts quinn holds before the driver has looked at them.
pub const MAX_INCOMING: usize = 64;

/// Streams a peer may open towards us: the protocol uses exactly one unidirectional stream per
/// direction and no bidirectional ones. quinn's defaults (100 of each, each with its own receive
/// window) let one connection pin hundreds of MiB in streams it never finishes.
pub const MAX_UNI_STREAMS: u32 = 1;
/// Bytes a peer may have in flight towards us on its stream before it must wait for us to read
/// (flow control). A frame is at most 64 KiB; 1 MiB keeps a LAN link full (1 MiB per 1 ms RTT)
/// and a 100 ms relay link at ~10 MB/s, while bounding what one peer can make us buffer.
pub const STREAM_RECEIVE_WINDOW: u32 = 1024 * 1024;
/// Bytes quinn buffers for sending on one connection before our writer waits (the peer's window
/// is the other limit). Our own per-connection queue in front of it has its own byte budget.
pub const SEND_WINDOW: u64 = 2 * 1024 * 1024;

/// Transport settings for LANs: short keep-alive and idle timeout so a vanished peer is noticed
/// within seconds, a LAN-sized initial RTT guess, and deliberate stream and window limits (see
/// the constants above): what a peer can make us buffer is bounded per connection.
fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(Duration::from_secs(2)));
    if let Ok(idle) = quinn::IdleTimeout::try_from(Duration::from_secs(8)) {
        t.max_idle_timeout(Some(idle));
    }
    t.initial_rtt(Duration::from_millis(50));
    t.max_concurrent_uni_streams(quinn::VarInt::from_u32(MAX_UNI_STREAMS));
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(0));
    t.stream_receive_window(quinn::VarInt::from_u32(STREAM_RECEIVE_WINDOW));
    t.receive_window(quinn::VarInt::from_u32(STREAM_RECEIVE_WINDOW));
    t.send_window(SEND_WINDOW);
    t.datagram_receive_buffer_size(None);
    Arc::new(t)
}

/// Extracts the node id from a peer certificate: its key must be Ed25519.
pub fn cert_node_id(cert: &CertificateDer<'_>) -> Result<NodeId, rustls::Error> {
    let (_, x) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| rustls::Error::General("unparsable peer certificate".into()))?;
    let spki = x.public_key();
    if spki.algorithm.algorithm.to_id_string() != ED25519_OID {
        return Err(rustls::Error::General(
            "peer certificate key is not Ed25519".into(),
        ));
    }
    let raw: [u8; 32] = spki
        .subject_public_key
        .data
        .as_ref()
        .try_into()
        .map_err(|_| rustls::Error::General("peer Ed25519 key has wrong length".into()))?;
    // A small-order key (the all-zero one among them) proves nothing: signatures under it can
    // be forged. It is also the id that stands for a bundle file in the protocol
    // (`BUNDLE_PEER`), which no connection may claim.
    let weak = ed25519_dalek::VerifyingKey::from_bytes(&raw).map_or(true, |k| k.is_weak());
    if weak {
        return Err(rustls::Error::General(
            "peer Ed25519 key is not a valid key (small order)".into(),
        ));
    }
    Ok(NodeId(raw))
}

/// The node id a QUIC connection's peer proved with its certificate.
pub fn connection_peer_id(conn: &quinn::Connection) -> Option<NodeId> {
    let any = conn.peer_identity()?;
    let certs = any.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    cert_node_id(certs.first()?).ok()
}

#[derive(Debug)]
struct PeerVerifier {
    expected: Option<NodeId>,
    algs: WebPkiSupportedAlgorithms,
}

impl PeerVerifier {
    fn check(&self, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let id = cert_node_id(cert)?;
        match self.expected {
            Some(e) if e != id => Err(rustls::Error::General(format!(
                "peer identity mismatch: expected {}, certificate is {}",
                e.fingerprint(),
                id.fingerprint()
            ))),
            _ => Ok(()),
        }
    }
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _m: &[u8],
        _c: &CertificateDer<'_>,
        _d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ClientCertVerifier for PeerVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _m: &[u8],
        _c: &CertificateDer<'_>,
        _d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_carries_the_node_key() {
        let sk = SigningKey::from_bytes(&[9u8; 32]);
        let id = TlsIdentity::new(&sk).unwrap();
        assert_eq!(
            cert_node_id(&id.cert).unwrap().0,
            sk.verifying_key().to_bytes()
        );
        id.server_config().unwrap();
        id.client_config(None).unwrap();
    }

    #[test]
    fn a_small_order_key_is_refused() {
        // A valid certificate with its key bytes replaced: the zero key (`BUNDLE_PEER` in the
        // protocol) and another small-order point; cert_node_id reads the key, so that is
        // what it must refuse.
        let sk = SigningKey::from_bytes(&[9u8; 32]);
        let der = TlsIdentity::new(&sk).unwrap().cert.as_ref().to_vec();
        let key = sk.verifying_key().to_bytes();
        let at = der.windows(32).position(|w| w == key).unwrap();
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        for weak in [[0u8; 32], identity_point] {
            let mut bad = der.clone();
            bad[at..at + 32].copy_from_slice(&weak);
            let err = cert_node_id(&CertificateDer::from(bad)).unwrap_err();
            assert!(err.to_string().contains("small order"), "{err}");
        }
    }
}
