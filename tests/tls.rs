//! Servers reached over `https://`. OpenCode serves plain HTTP; a remote box puts a TLS proxy
//! (caddy, nginx) in front of it. Here a real TLS server with a freshly made private CA stands
//! in for that proxy and answers the health check as `opencode serve` does: a certificate the
//! system does not trust is a clear error with a hint, and `ca_cert` in the agent's config makes
//! it trusted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ocio::config::{self, AgentConfig};
use ocio::opencode::client::{ClientError, ClientOptions};
use ocio::opencode::endpoint::{Endpoint, EndpointError};
use rcgen::{CertificateParams, CertifiedIssuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const HEALTH: &str = r#"{"healthy":true,"version":"1.18.33"}"#;

/// A private CA (its PEM) and a TLS server on 127.0.0.1 with a certificate from it for
/// `localhost`, answering every request with the health reply. Returns the CA's PEM and port.
async fn tls_server() -> (String, u16) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust the certificate ends the handshake here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{HEALTH}",
                    HEALTH.len()
                );
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (ca.pem(), port)
}

/// The one agent of a config file at `dir/config.toml` holding `agent`.
fn agent(dir: &Path, agent: &str) -> AgentConfig {
    let path = dir.join("config.toml");
    let text = format!("[[agents]]\n{agent}");
    std::fs::write(&path, &text).unwrap();
    config::parse(&text, &path).unwrap().agents.remove(0)
}

fn options() -> ClientOptions {
    ClientOptions {
        retries: 0,
        ..ClientOptions::default()
    }
}

#[tokio::test]
async fn an_https_server_is_reached_with_its_ca_and_refused_clearly_without() {
    let (ca_pem, port) = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("https://localhost:{port}");

    // Not trusted by the system: a TLS error that says how to trust it, not a generic one.
    let untrusted = agent(dir.path(), &format!("name = \"far\"\nurl = \"{url}\"\n"));
    let endpoint = Endpoint::connect(&untrusted, options(), Duration::from_secs(5), &[], None)
        .await
        .unwrap();
    let error = endpoint.client.health().await.unwrap_err();
    assert!(matches!(error, ClientError::Tls { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(&url) && text.contains("ca_cert"), "{text}");
    assert!(!error.is_transient(), "trying again does not help");

    // With the CA named (relative to the config file), it works.
    std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
    let trusted = agent(
        dir.path(),
        &format!("name = \"far\"\nurl = \"{url}\"\nca_cert = \"ca.pem\"\n"),
    );
    assert_eq!(
        trusted.ca_cert.as_deref(),
        Some(dir.path().join("ca.pem").as_path())
    );
    let endpoint = Endpoint::connect(&trusted, options(), Duration::from_secs(5), &[], None)
        .await
        .unwrap();
    let health = endpoint.client.health().await.unwrap();
    assert!(health.healthy);
    assert_eq!(health.version, "1.18.33");
}

#[tokio::test]
async fn a_ca_cert_that_is_not_a_certificate_is_named_at_connect() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), "not a certificate\n").unwrap();
    let broken = agent(
        dir.path(),
        "name = \"far\"\nurl = \"https://localhost:1\"\nca_cert = \"ca.pem\"\n",
    );
    let error = Endpoint::connect(&broken, options(), Duration::from_secs(5), &[], None)
        .await
        .unwrap_err();
    assert!(matches!(error, EndpointError::CaCert { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("ca.pem") && text.contains("PEM"), "{text}");

    let missing = agent(
        dir.path(),
        "name = \"far\"\nurl = \"https://localhost:1\"\nca_cert = \"nowhere.pem\"\n",
    );
    let error = Endpoint::connect(&missing, options(), Duration::from_secs(5), &[], None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("nowhere.pem"), "{error}");

    // Config rules: only for https servers.
    let path = dir.path().join("config.toml");
    let error = config::parse(
        "[[agents]]\nname = \"near\"\nurl = \"http://h:1\"\nca_cert = \"ca.pem\"\n",
        &path,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("line 4") && error.contains("https://"),
        "{error}"
    );
}

/// A machine without a system certificate store (a slim container): plain `http://` servers
/// are reached as ever, and an `https://` one with its `ca_cert` too. Run as `ocio check` in a
/// child process, whose environment points the system store at nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_system_certificate_store_http_and_ca_cert_servers_still_work() {
    let (ca_pem, port) = tls_server().await;
    let home = support::home::Home::new();
    let config = home.write_config(&format!(
        "[[agents]]\nname = \"near\"\nurl = \"http://127.0.0.1:1\"\n\n[[agents]]\nname = \"far\"\nurl = \"https://localhost:{port}\"\nca_cert = \"ca.pem\"\n"
    ));
    std::fs::write(config.parent().unwrap().join("ca.pem"), &ca_pem).unwrap();
    let empty = home.path("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let output = tokio::task::spawn_blocking(move || {
        home.command(&["check", "--json"])
            .env("SSL_CERT_FILE", &empty)
            .env("SSL_CERT_DIR", empty.with_extension("d"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = support::home::stdout(&output);
    let reports: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {text}\n{}", support::home::stderr(&output)));
    let report = |name: &str| {
        reports
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    let near = report("near");
    let error = near["error"].as_str().unwrap();
    assert!(error.contains("cannot reach"), "not a setup error: {error}");
    // The stand-in proxy answers the health check (so TLS worked) but not the agent list.
    let far = report("far");
    assert_eq!(far["version"], "1.18.33", "{far}");
}
