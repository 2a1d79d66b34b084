//! TLS on the one port (`--tls-cert`, `--tls-key`): the rustls server
//! configuration, and the step between `accept` and the HTTP handshake.
//!
//! Plaintext on a TLS port is answered in plaintext (400 with
//! [`TLS_ONLY_BODY`]) so a `ws://` client, or curl, learns what is wrong
//! instead of seeing a reset. The TLS handshake counts against the same
//! handshake slot and `--handshake-timeout` as the HTTP head; garbage,
//! alerts and stalls end as `bad_input_total{kind="tls_handshake"}`.
//! Resumption is stateless (ticketer), so a resumable session costs the
//! server no memory.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_rustls::TlsAcceptor;
use wire::ws::tls::{looks_like_tls, TLS_ONLY_BODY};
use wire::ws::Counted;

use crate::config::{ConfigError, TlsFiles};
use crate::metrics::{self, BadInput};
use crate::server::Shared;

/// The rustls server configuration from the PEM files; every problem is a
/// configuration error naming the file.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
    let name = |p: &std::path::Path| p.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| ConfigError(format!("--tls-cert {}: {e}", name(&files.cert))))?;
    if certs.is_empty() {
        return Err(ConfigError(format!(
            "--tls-cert {}: no PEM certificate in it",
            name(&files.cert)
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| ConfigError(format!("--tls-key {}: {e}", name(&files.key))))?;
    let mut config = rustls::ServerConfig::builder_with_provider(wire::ws::tls::provider())
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| {
            ConfigError(format!(
                "--tls-cert {} / --tls-key {}: {e}",
                name(&files.cert),
                name(&files.key)
            ))
        })?;
    config.ticketer = rustls::crypto::ring::Ticketer::new()
        .map_err(|e| ConfigError(format!("cannot set up TLS session tickets: {e}")))?;
    Ok(Arc::new(config))
}

/// One accepted TCP connection on a TLS port: the TLS handshake (or a
/// plaintext refusal), then the HTTP side as on a plaintext port.
pub async fn serve(
    stream: TcpStream,
    shared: Arc<Shared>,
    handshake: OwnedSemaphorePermit,
    acceptor: TlsAcceptor,
) {
    let limit = shared.config.handshake_timeout;
    let bad = &shared.metrics.bad_input;
    let mut first = [0u8; 1];
    match tokio::time::timeout(limit, stream.peek(&mut first)).await {
        Ok(Ok(1..)) => {}
        Ok(_) => return,
        Err(_) => {
            bad.record(BadInput::TlsHandshake, &"no TLS ClientHello in time");
            return;
        }
    }
    if !looks_like_tls(first[0]) {
        bad.record(BadInput::TlsPlaintext, &"plaintext on the TLS port");
        drop(handshake);
        let body = format!("{TLS_ONLY_BODY}\n");
        let mut stream = stream;
        let _ = tokio::time::timeout(
            limit,
            crate::http::respond(&mut stream, 400, "Bad Request", &body),
        )
        .await;
        return;
    }
    match tokio::time::timeout(limit, acceptor.accept(Counted(stream))).await {
        Ok(Ok(tls)) => {
            metrics::inc(&shared.metrics.tls_handshakes_total);
            if tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                metrics::inc(&shared.metrics.tls_resumed_total);
            }
            crate::http::serve_socket(tls, shared, handshake).await
        }
        Ok(Err(e)) => bad.record(BadInput::TlsHandshake, &e),
        Err(_) => bad.record(BadInput::TlsHandshake, &"TLS handshake not done in time"),
    }
}
