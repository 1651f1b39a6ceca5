//! HttpCommerce against a real HTTP server on 127.0.0.1 (a std TcpListener thread): the contract
//! served from the demo shop, and every error mapping with canned answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crest_brain::commerce::{
    Commerce, CommerceErrorKind, DEMO_CUSTOMERS, DEMO_ORDER_IDS, DEMO_SKUS, DemoCommerce,
    HttpCommerce, HttpCommerceConfig, RefundRequest, RefundStatus,
};
use crest_proto::TenantId;

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct SeenRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl SeenRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// The server's answer.
struct Answer {
    status: u16,
    body: String,
    delay: Duration,
}

fn answer(status: u16, body: impl Into<String>) -> Answer {
    Answer {
        status,
        body: body.into(),
        delay: Duration::ZERO,
    }
}

type Handler = dyn Fn(&SeenRequest) -> Answer + Send + Sync;

/// A tiny HTTP/1.1 server: one connection at a time, `Connection: close`, stopped on drop.
struct TestServer {
    address: SocketAddr,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    fn start(handler: impl Fn(&SeenRequest) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let seen = Arc::clone(&seen);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    serve_one(stream, &*handler, &seen);
                }
            })
        };
        Self {
            address,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().expect("seen lock").clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _wake = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_one(stream: TcpStream, handler: &Handler, seen: &Mutex<Vec<SeenRequest>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request = SeenRequest {
        method,
        target,
        headers,
        body,
    };
    seen.lock().expect("seen lock").push(request.clone());
    let reply = handler(&request);
    std::thread::sleep(reply.delay);
    let mut stream = stream;
    let response = format!(
        "HTTP/1.1 {} Test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        reply.status,
        reply.body.len(),
        reply.body
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = (bytes[index] == b'%' && index + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[index + 1..index + 3]).ok())
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let Some(value) = hex {
            decoded.push(value);
            index += 3;
            continue;
        }
        decoded.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn json<T: serde::Serialize>(status: u16, value: &T) -> Answer {
    answer(status, serde_json::to_string(value).expect("json"))
}

fn optional<T: serde::Serialize>(value: Option<T>) -> Answer {
    match value {
        Some(value) => json(200, &value),
        None => answer(404, r#"{"error":"not_found"}"#),
    }
}

/// A merchant endpoint implementing the contract from a demo shop, with a bearer token.
fn demo_endpoint(token: &'static str) -> TestServer {
    let demo = DemoCommerce::new();
    TestServer::start(move |request| {
        if request.header("authorization") != Some(&format!("Bearer {token}")) {
            return answer(401, r#"{"error":"unauthorized"}"#);
        }
        let segments: Vec<String> = request
            .path()
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let ["tenants", tenant, rest @ ..] = segments.as_slice() else {
            return answer(404, "{}");
        };
        let Ok(tenant) = TenantId::new(*tenant) else {
            return answer(400, "{}");
        };
        let limit = request
            .target
            .split_once("?limit=")
            .and_then(|(_, limit)| limit.parse().ok())
            .unwrap_or(10);
        match (request.method.as_str(), rest) {
            ("GET", ["orders", id]) => optional(demo.order(&tenant, id).expect("demo")),
            ("GET", ["orders", id, "logistics"]) => {
                optional(demo.logistics(&tenant, id).expect("demo"))
            }
            ("GET", ["customers", customer, "orders"]) => json(
                200,
                &demo.recent_orders(&tenant, customer, limit).expect("demo"),
            ),
            ("GET", ["skus", sku, "stock"]) => optional(demo.stock(&tenant, sku).expect("demo")),
            ("POST", ["refunds"]) => {
                let Ok(refund) = serde_json::from_slice::<RefundRequest>(&request.body) else {
                    return answer(400, "{}");
                };
                match demo.create_refund(&tenant, &refund) {
                    Ok(created) => json(201, &created),
                    Err(error) if error.kind() == CommerceErrorKind::NotFound => answer(404, "{}"),
                    Err(error) => json(
                        409,
                        &serde_json::json!({"error": "rejected", "reason": error.message()}),
                    ),
                }
            }
            _ => answer(404, "{}"),
        }
    })
}

fn client(base_url: String, token: Option<&str>) -> HttpCommerce {
    HttpCommerce::new(HttpCommerceConfig {
        base_url,
        bearer_token: token.map(str::to_owned),
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        ..HttpCommerceConfig::default()
    })
    .expect("client")
}

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).expect("valid tenant")
}

#[test]
fn http_adapter_matches_the_demo_shop() {
    let server = demo_endpoint("s3cret");
    let http = client(server.base_url(), Some("s3cret"));
    let reference = DemoCommerce::new();
    let tenant = tenant("demo");
    for id in DEMO_ORDER_IDS {
        assert_eq!(
            http.order(&tenant, id).expect("order"),
            reference.order(&tenant, id).expect("reference")
        );
        assert_eq!(
            http.logistics(&tenant, id).expect("logistics"),
            reference.logistics(&tenant, id).expect("reference")
        );
    }
    for customer in DEMO_CUSTOMERS {
        assert_eq!(
            http.recent_orders(&tenant, customer, 2).expect("recent"),
            reference
                .recent_orders(&tenant, customer, 2)
                .expect("reference")
        );
    }
    for sku in DEMO_SKUS {
        assert_eq!(
            http.stock(&tenant, sku).expect("stock"),
            reference.stock(&tenant, sku).expect("reference")
        );
    }
    assert_eq!(http.order(&tenant, "nope").expect("ok"), None);
    assert_eq!(http.stock(&tenant, "SKU0000").expect("ok"), None);
    assert_eq!(http.logistics(&tenant, "2026111100003").expect("ok"), None);

    let request = RefundRequest {
        order_id: "2026111100001".to_owned(),
        customer: "web-visitor".to_owned(),
        amount_cents: Some(20_000),
        reason: "耳机有杂音 / crackling sound".to_owned(),
    };
    let refund = http.create_refund(&tenant, &request).expect("refund");
    assert_eq!(refund.status, RefundStatus::Requested);
    assert_eq!(refund.amount_cents, 20_000);
    let rejected = http
        .create_refund(
            &tenant,
            &RefundRequest {
                order_id: "2026111100004".to_owned(),
                customer: "c-1001".to_owned(),
                amount_cents: None,
                reason: "test".to_owned(),
            },
        )
        .expect_err("unpaid");
    assert_eq!(rejected.kind(), CommerceErrorKind::Rejected);
    assert!(rejected.message().contains("not paid"), "{rejected}");
    let missing = http
        .create_refund(
            &tenant,
            &RefundRequest {
                order_id: "404".to_owned(),
                ..request.clone()
            },
        )
        .expect_err("unknown order");
    assert_eq!(missing.kind(), CommerceErrorKind::NotFound);

    let seen = server.seen();
    let post = seen
        .iter()
        .find(|request| request.method == "POST")
        .expect("a post");
    assert_eq!(post.path(), "/tenants/demo/refunds");
    let sent: RefundRequest = serde_json::from_slice(&post.body).expect("refund json");
    assert_eq!(sent, request);
    assert!(
        seen.iter()
            .all(|request| request.header("accept") == Some("application/json"))
    );
    assert!(
        seen.iter()
            .any(|request| request.target == "/tenants/demo/customers/web-visitor/orders?limit=2")
    );
}

#[test]
fn missing_token_is_unavailable() {
    let server = demo_endpoint("s3cret");
    let http = client(server.base_url(), None);
    let error = http
        .order(&tenant("demo"), "2026111100001")
        .expect_err("unauthorized");
    assert_eq!(error.kind(), CommerceErrorKind::Unavailable);
    assert_eq!(server.seen()[0].header("authorization"), None);
}

#[test]
fn path_segments_are_encoded_under_a_base_path() {
    let server = TestServer::start(|_| answer(404, ""));
    let http = client(format!("{}/crest/v1/", server.base_url()), None);
    let tenant = tenant("demo");
    assert_eq!(http.order(&tenant, "a/b c?d").expect("ok"), None);
    assert_eq!(http.stock(&tenant, "SKU#1").expect("ok"), None);
    assert!(
        http.recent_orders(&tenant, "c@x.com", 500)
            .expect("ok")
            .is_empty()
    );
    let targets: Vec<String> = server
        .seen()
        .into_iter()
        .map(|request| request.target)
        .collect();
    assert_eq!(
        targets,
        [
            "/crest/v1/tenants/demo/orders/a%2Fb%20c%3Fd",
            "/crest/v1/tenants/demo/skus/SKU%231/stock",
            "/crest/v1/tenants/demo/customers/c@x.com/orders?limit=50",
        ]
    );
}

#[test]
fn error_statuses_and_bodies_map_to_kinds() {
    let order_json = serde_json::to_string(
        &DemoCommerce::new()
            .order(&tenant("demo"), "2026111100001")
            .expect("ok")
            .expect("known"),
    )
    .expect("json");
    let cases: Vec<(&str, u16, String, CommerceErrorKind)> = vec![
        (
            "server error",
            500,
            "{}".to_owned(),
            CommerceErrorKind::Unavailable,
        ),
        (
            "bad gateway",
            502,
            String::new(),
            CommerceErrorKind::Unavailable,
        ),
        (
            "rate limited",
            429,
            "{}".to_owned(),
            CommerceErrorKind::Unavailable,
        ),
        (
            "forbidden",
            403,
            "{}".to_owned(),
            CommerceErrorKind::Unavailable,
        ),
        (
            "teapot",
            418,
            "{}".to_owned(),
            CommerceErrorKind::BadResponse,
        ),
        (
            "redirect",
            302,
            String::new(),
            CommerceErrorKind::BadResponse,
        ),
        (
            "not json",
            200,
            "<html>".to_owned(),
            CommerceErrorKind::BadResponse,
        ),
        (
            "wrong shape",
            200,
            r#"{"id": 5}"#.to_owned(),
            CommerceErrorKind::BadResponse,
        ),
        (
            "unknown status value",
            200,
            order_json.replace("\"shipped\"", "\"teleported\""),
            CommerceErrorKind::BadResponse,
        ),
    ];
    for (name, status, body, kind) in cases {
        let server = TestServer::start(move |_| answer(status, body.clone()));
        let http = client(server.base_url(), None);
        let error = http
            .order(&tenant("demo"), "2026111100001")
            .expect_err(name);
        assert_eq!(error.kind(), kind, "{name}: {error}");
    }
    let extra_fields = order_json.replacen('{', r#"{"merchant_note":"vip","#, 1);
    let server = TestServer::start(move |_| answer(200, extra_fields.clone()));
    let http = client(server.base_url(), None);
    assert!(
        http.order(&tenant("demo"), "2026111100001")
            .expect("unknown fields are ignored")
            .is_some()
    );
}

#[test]
fn refund_refusals_carry_the_reason() {
    let cases: Vec<(u16, &str, CommerceErrorKind, &str)> = vec![
        (
            409,
            r#"{"error":"rejected","reason":"超过退款期限 / past the refund window"}"#,
            CommerceErrorKind::Rejected,
            "past the refund window",
        ),
        (
            422,
            r#"{"error":"amount_too_high"}"#,
            CommerceErrorKind::Rejected,
            "amount_too_high",
        ),
        (422, "", CommerceErrorKind::Rejected, "status 422"),
        (404, "", CommerceErrorKind::NotFound, "not found"),
        (503, "", CommerceErrorKind::Unavailable, "503"),
        (201, "[]", CommerceErrorKind::BadResponse, "json"),
    ];
    for (status, body, kind, message) in cases {
        let server = TestServer::start(move |_| answer(status, body));
        let http = client(server.base_url(), None);
        let error = http
            .create_refund(
                &tenant("demo"),
                &RefundRequest {
                    order_id: "2026111100001".to_owned(),
                    customer: "web-visitor".to_owned(),
                    amount_cents: None,
                    reason: "test".to_owned(),
                },
            )
            .expect_err("refused");
        assert_eq!(error.kind(), kind, "{status}: {error}");
        assert!(error.message().contains(message), "{status}: {error}");
    }
}

#[test]
fn oversized_bodies_are_bad_responses() {
    let big = format!(r#"{{"padding":"{}"}}"#, "x".repeat(10_000));
    let server = TestServer::start(move |_| answer(200, big.clone()));
    let http = HttpCommerce::new(HttpCommerceConfig {
        base_url: server.base_url(),
        max_body_bytes: 1_000,
        ..HttpCommerceConfig::default()
    })
    .expect("client");
    let error = http.stock(&tenant("demo"), "SKU1001").expect_err("too big");
    assert_eq!(error.kind(), CommerceErrorKind::BadResponse);
    assert!(error.message().contains("1000 bytes"), "{error}");
}

#[test]
fn slow_and_absent_endpoints_are_unavailable() {
    let server = TestServer::start(|_| Answer {
        status: 200,
        body: "{}".to_owned(),
        delay: Duration::from_millis(1_500),
    });
    let http = HttpCommerce::new(HttpCommerceConfig {
        base_url: server.base_url(),
        timeout: Duration::from_millis(200),
        ..HttpCommerceConfig::default()
    })
    .expect("client");
    let started = Instant::now();
    let error = http.stock(&tenant("demo"), "SKU1001").expect_err("timeout");
    assert_eq!(error.kind(), CommerceErrorKind::Unavailable);
    assert!(
        started.elapsed() < Duration::from_millis(1_200),
        "timed out early"
    );
    assert!(error.message().contains("timed out"), "{error}");

    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = closed.local_addr().expect("address");
    drop(closed);
    let http = client(format!("http://{address}"), None);
    let error = http
        .recent_orders(&tenant("demo"), "c-1001", 5)
        .expect_err("refused");
    assert_eq!(error.kind(), CommerceErrorKind::Unavailable);
}

#[test]
fn bad_base_urls_are_invalid_config() {
    for base_url in [
        "not a url",
        "https://shop.example",
        "mailto:shop@example.com",
        "ftp://x",
    ] {
        let error = HttpCommerce::new(HttpCommerceConfig {
            base_url: base_url.to_owned(),
            ..HttpCommerceConfig::default()
        })
        .expect_err(base_url);
        assert_eq!(error.kind(), CommerceErrorKind::InvalidConfig, "{base_url}");
    }
    let config = HttpCommerceConfig {
        bearer_token: Some("s3cret".to_owned()),
        ..HttpCommerceConfig::default()
    };
    assert!(!format!("{config:?}").contains("s3cret"));
    let http = HttpCommerce::new(config).expect("client");
    assert!(!format!("{http:?}").contains("s3cret"));
}
