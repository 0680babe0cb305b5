//! TLS: the phone registers over TLS with the server's certificate verified against a
//! configured CA, and refuses a server it cannot verify with an error naming the host.
//! The server is a minimal TLS registrar in this test (rustls + our own SIP parser).

mod common;
use common::*;
use orbitphone::sip::message::{self, MessageExt, SipMessage};
use orbitphone::sip::transport::{Frame, StreamFramer};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

struct Pki {
    ca_pem: String,
    server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Orbit test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        server_chain: vec![cert.der().clone()],
        server_key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    }
}

/// A one-connection-at-a-time TLS registrar answering every REGISTER with 200.
fn tls_registrar(pki: &Pki) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
        .unwrap();
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut tcp) = stream else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                let mut tls = rustls::StreamOwned::new(conn, &mut tcp);
                let mut framer = StreamFramer::default();
                let mut buf = [0u8; 8192];
                loop {
                    let n = match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    framer.push(&buf[..n]);
                    while let Some(frame) = framer.next_frame() {
                        let Frame::Message(data) = frame else { continue };
                        let Ok(SipMessage::Request(req)) = message::parse(&data) else { continue };
                        let mut resp = message::response_to(&req, 200, Some("reg"));
                        if let Some(c) = req.header("Contact") {
                            resp.add_header("Contact", format!("{c};expires=300"));
                        }
                        if tls.write_all(&message::response_bytes(&resp)).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

#[test]
fn registers_over_tls_with_a_configured_ca_and_refuses_an_unknown_one() {
    let pki = pki();
    let port = tls_registrar(&pki);
    let dir = TempDir::new("tls");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let proxy = format!("sip:127.0.0.1:{port}");
    let ca_arg = ca.to_string_lossy().to_string();
    let mut ok = Orbit::start(
        &[
            "--account",
            "sip:alice@127.0.0.1",
            "--transport",
            "tls",
            "--proxy",
            &proxy,
            "--ca",
            &ca_arg,
            "--keepalive",
            "0",
        ],
        Some("pw"),
    );
    let reg = ok.wait_event("registered", T);
    assert_eq!(reg["expires"], 300);
    ok.send("quit");
    ok.wait_event("stopped", T);

    let bad = Orbit::start(&["--account", "sip:alice@127.0.0.1", "--transport", "tls", "--proxy", &proxy], Some("pw"));
    let failed = bad.wait_event("registration_failed", T);
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.contains("TLS handshake with 127.0.0.1"), "{reason}");
    assert!(reason.to_lowercase().contains("certificate"), "{reason}");
}
