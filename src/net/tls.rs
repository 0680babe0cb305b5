//! TLS client connections (rustls): the server certificate is verified against the
//! bundled web PKI roots or a configured CA file, and failures name the host.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, pki_types::ServerName};

/// Makes verified TLS connections for SIP.
pub struct TlsClient {
    connector: TlsConnector,
    /// The name the certificate must carry (the SIP domain), not the IP we dial.
    server_name: String,
}

impl TlsClient {
    /// Build with the web PKI roots, plus `ca_file` if given (PEM).
    pub fn new(server_name: &str, ca_file: Option<&Path>) -> Result<Self, String> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|e| format!("CA file {}: {e}", path.display()))?;
            let mut reader = std::io::BufReader::new(pem.as_slice());
            let mut added = 0;
            for cert in rustls_pemfile::certs(&mut reader) {
                let cert = cert.map_err(|e| format!("CA file {}: {e}", path.display()))?;
                roots.add(cert).map_err(|e| format!("CA file {}: {e}", path.display()))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!("CA file {} holds no certificate", path.display()));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { connector: TlsConnector::from(Arc::new(config)), server_name: server_name.to_string() })
    }

    /// Handshake over a connected TCP stream.
    pub async fn connect(&self, tcp: TcpStream, addr: SocketAddr) -> Result<TlsStream<TcpStream>, String> {
        let host = self.server_name.split(':').next().unwrap_or(&self.server_name).to_string();
        let name = ServerName::try_from(host.clone()).map_err(|e| format!("TLS: bad server name {host}: {e}"))?;
        self.connector.connect(name, tcp).await.map_err(|e| format!("TLS handshake with {host} ({addr}) failed: {e}"))
    }
}
