//! Validation of `[target.tls]` and `[target.server] tls`: the CA file is
//! read and parsed here, so a missing or non-PEM file is a usage error
//! before any socket opens.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use super::*;

impl Validator<'_> {
    /// The TLS plan: `secure` says the target is `wss://` (its URL, or the
    /// bundled server with `tls = true`), `self_signed` that the bundled
    /// server makes its own certificate.
    pub(super) fn tls(
        &self,
        raw: Option<RawTls>,
        secure: bool,
        self_signed: bool,
    ) -> Result<Option<TlsPlan>> {
        let Some(raw) = raw else {
            return Ok(secure.then(|| TlsPlan {
                ca_file: None,
                ca_certs: Vec::new(),
                insecure: false,
                server_name: None,
                alpn: Vec::new(),
                resume: false,
                self_signed,
            }));
        };
        if !secure {
            return Err(self.at_key(
                "target.tls",
                "[target.tls] applies to a TLS target: use a wss:// url, or [target.server] tls = true for the bundled server",
            ));
        }
        let insecure = raw.insecure.unwrap_or(false);
        if insecure && raw.ca_file.is_some() {
            return Err(self.at_key(
                "target.tls.insecure",
                "`insecure = true` skips certificate verification, so `ca_file` would be ignored; keep one",
            ));
        }
        let (ca_file, ca_certs) = match &raw.ca_file {
            None => (None, Vec::new()),
            Some(f) => {
                let path = self.relative(f);
                let certs = read_certs(&path).map_err(|why| self.bad("target.tls.ca_file", why))?;
                (Some(path), certs)
            }
        };
        if let Some(name) = &raw.server_name {
            if ServerName::try_from(name.as_str()).is_err() {
                return Err(self.bad(
                    "target.tls.server_name",
                    format!("`{name}` is neither a DNS name nor an IP address"),
                ));
            }
        }
        let alpn = raw.alpn.unwrap_or_default();
        if let Some(i) = alpn.iter().position(|p| p.is_empty() || p.len() > 255) {
            return Err(self.bad(
                &format!("target.tls.alpn[{i}]"),
                "an ALPN protocol name is 1 to 255 bytes, e.g. \"http/1.1\"",
            ));
        }
        Ok(Some(TlsPlan {
            ca_file,
            ca_certs,
            insecure,
            server_name: raw.server_name,
            alpn,
            resume: raw.resume.unwrap_or(false),
            self_signed,
        }))
    }

    /// A path from the scenario file, relative to the file's directory.
    fn relative(&self, f: &str) -> PathBuf {
        let p = Path::new(f);
        match self.path.as_deref().and_then(Path::parent) {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p.to_path_buf(),
        }
    }
}

/// Every certificate in a PEM file; none, or a file that is not PEM, is an error.
pub fn read_certs(path: &Path) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&data)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}
