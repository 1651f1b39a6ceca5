//! `crest serve --tls-cert FILE --tls-key FILE` serves HTTPS and WSS: a client that trusts the
//! certificate gets answers with the security headers (HSTS among them) and a live WebSocket; a
//! plain-HTTP request on the same port gets no answer; unusable files stop the start with a
//! message naming the file.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use serde_json::json;
use support::{KillOnDrop, OPERATOR_TOKEN, free_port, serve_command, wait_for_port};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

fn connector(certificate: &CertificateDer<'static>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(certificate.clone()).expect("root added");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// One HTTP/1.1 request over TLS; the whole answer as text.
async fn https(
    connector: &TlsConnector,
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> String {
    let tcp = TcpStream::connect(addr).await.expect("connects");
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await.expect("handshake");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await.expect("sent");
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.expect("answer");
    answer
}

fn json_body(answer: &str) -> serde_json::Value {
    let (_, body) = answer.split_once("\r\n\r\n").expect("head and body");
    serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON body in {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_flags_serve_https_and_wss_with_security_headers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, generated.cert.pem()).expect("cert written");
    std::fs::write(&key_path, generated.signing_key.serialize_pem()).expect("key written");
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let _node = KillOnDrop(
        serve_command(&dir.path().join("data"), port)
            .arg("--tls-cert")
            .arg(&cert_path)
            .arg("--tls-key")
            .arg(&key_path)
            .spawn()
            .expect("starts"),
    );
    wait_for_port(addr);
    let connector = connector(generated.cert.der());

    let page = https(&connector, addr, "GET", "/", "", "").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let head = page
        .split_once("\r\n\r\n")
        .expect("head")
        .0
        .to_ascii_lowercase();
    for expected in [
        "strict-transport-security: max-age=31536000",
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
        "content-security-policy: default-src 'none'; script-src 'self' 'sha256-",
        "referrer-policy: no-referrer",
    ] {
        assert!(head.contains(expected), "{expected} missing in {head}");
    }

    let created = https(
        &connector,
        addr,
        "POST",
        "/v1/tenants/alpha/api-keys",
        OPERATOR_TOKEN,
        &json!({"role": "admin"}).to_string(),
    )
    .await;
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let key = json_body(&created)["key"].as_str().expect("key").to_owned();
    let message = json!({"customer": "c-1", "id": "m-1", "channel": "web", "text": "hello"});
    let posted = https(
        &connector,
        addr,
        "POST",
        "/v1/tenants/alpha/messages",
        &key,
        &message.to_string(),
    )
    .await;
    assert!(posted.starts_with("HTTP/1.1 200"), "{posted}");
    let conversation = json_body(&posted)["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_owned();

    // WSS: the conversation's events over a TLS WebSocket.
    let tcp = TcpStream::connect(addr).await.expect("connects");
    let tls = connector
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake");
    let url = format!(
        "wss://localhost:{port}/v1/tenants/alpha/conversations/{conversation}/stream?after=0&access_token={key}"
    );
    let (mut socket, _) = tokio_tungstenite::client_async(url, tls)
        .await
        .expect("WebSocket over TLS");
    let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("a frame in time")
        .expect("a frame")
        .expect("readable");
    let event: serde_json::Value =
        serde_json::from_str(frame.to_text().expect("text")).expect("JSON");
    assert_eq!(event["seq"], 1, "{event}");

    // Plain HTTP on the TLS port: no HTTP answer.
    let mut plain = TcpStream::connect(addr).await.expect("connects");
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .expect("sent");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"),
        "plain HTTP answered on the TLS port"
    );
}

#[test]
fn unusable_tls_files_stop_the_start_with_the_file_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "not a certificate").expect("written");
    let output = serve_command(&dir.path().join("data"), free_port())
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(dir.path().join("missing.pem"))
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot use the TLS certificate") && stderr.contains("cert.pem"),
        "{stderr}"
    );
    let alone = serve_command(&dir.path().join("data"), free_port())
        .arg("--tls-cert")
        .arg(&cert)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("runs");
    assert!(!alone.status.success());
    assert!(
        String::from_utf8_lossy(&alone.stderr).contains("--tls-key"),
        "clap names the missing flag"
    );
}
