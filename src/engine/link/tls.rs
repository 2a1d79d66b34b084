//! The generator's TLS client: one rustls configuration per run (ring
//! provider, the plan's roots or the webpki roots, ALPN, session cache),
//! the handshake on a connected TCP stream, and failure reasons by cause.
//!
//! The configuration is shared by every worker: the session cache behind
//! `resume = true` is one `Mutex`-guarded map, touched once per handshake.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use wire::ws::Counted;

use crate::scenario::TlsPlan;

pub use crate::results::tls::reason;

/// The run's TLS client.
pub struct TlsClient {
    connector: TlsConnector,
    name: ServerName<'static>,
    pub insecure: bool,
}

impl TlsClient {
    /// `host`: the URL's host (SNI unless `server_name` overrides it);
    /// `extra_roots`: certificates trusted besides the plan's (the bundled
    /// server's self-signed one).
    pub fn new(
        plan: &TlsPlan,
        host: &str,
        extra_roots: &[CertificateDer<'static>],
    ) -> anyhow::Result<Self> {
        let provider = wire::ws::tls::provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let mut config = if plan.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            if plan.ca_certs.is_empty() && extra_roots.is_empty() {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            for c in plan.ca_certs.iter().chain(extra_roots) {
                roots.add(c.clone()).map_err(|e| {
                    anyhow::anyhow!("a certificate of [target.tls] ca_file is not a usable CA: {e}")
                })?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        config.alpn_protocols = plan.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        config.resumption = if plan.resume {
            Resumption::in_memory_sessions(256)
        } else {
            Resumption::disabled()
        };
        let name = plan.server_name.as_deref().unwrap_or(host);
        let name = ServerName::try_from(name.trim_start_matches('[').trim_end_matches(']'))
            .map_err(|_| anyhow::anyhow!("`{name}` is not a TLS server name"))?
            .to_owned();
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            name,
            insecure: plan.insecure,
        })
    }

    /// The config, for reqwest (Socket.IO polling over https).
    pub fn config(&self) -> Arc<ClientConfig> {
        self.connector.config().clone()
    }

    /// The handshake on a connected stream (the caller bounds it in time).
    /// Errors are failure reasons.
    pub async fn handshake(&self, tcp: Counted) -> Result<TlsStream<Counted>, &'static str> {
        self.connector
            .connect(self.name.clone(), tcp)
            .await
            .map_err(|e| failure(&e))
    }
}

/// Whether the session was resumed (no certificate exchange).
pub fn resumed(s: &TlsStream<Counted>) -> bool {
    s.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
}

/// The counted reason of a failed handshake.
pub fn failure(e: &std::io::Error) -> &'static str {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(err) => classify(err),
        None => reason::HANDSHAKE,
    }
}

/// The TLS reason somewhere in an error's chain (reqwest's errors wrap
/// rustls's, for Socket.IO polling over https), if it has one.
pub fn failure_in(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(classify(r));
        }
        cur = err.source();
    }
    None
}

fn classify(err: &rustls::Error) -> &'static str {
    match err {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => reason::UNKNOWN_CA,
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => reason::EXPIRED,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                reason::NAME_MISMATCH
            }
            // webpki's own reasons (e.g. `CaUsedAsEndEntity`: the CA:TRUE
            // certificate `openssl req -x509` makes, served as the leaf).
            _ => reason::BAD_CERTIFICATE,
        },
        // "HTTP/1.1 400 ..." read as a record: 'H' is no content type.
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            reason::PLAINTEXT_SERVER
        }
        _ => reason::HANDSHAKE,
    }
}

/// `insecure = true`: accepts any certificate, but still checks that the
/// handshake is signed by the key it presents.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
