//! A merchant's side of a channel: a local receiver of Crest's signed outbound requests (it checks
//! the signature of every request, can fail the next ones or be down, and keeps what it accepted)
//! and a client of the signed inbound webhook.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use ring::hmac;
use serde_json::{Value, json};

use super::Client;

pub const SECRET: &str = "receiver-and-crest-share-this";

/// A receiver of outbound channel messages.
#[derive(Default)]
pub struct Receiver {
    /// Requests answered 503 before the next is accepted.
    pub fail_next: AtomicUsize,
    /// While set, every request is answered 503.
    pub down: AtomicBool,
    /// Every request whose signature did not verify.
    pub bad_signatures: AtomicUsize,
    /// Every request (accepted or not).
    pub requests: AtomicUsize,
    /// Accepted messages in arrival order.
    pub accepted: Mutex<Vec<Value>>,
}

impl Receiver {
    pub fn accepted(&self) -> Vec<Value> {
        self.accepted.lock().expect("receiver lock").clone()
    }
}

/// Checks `X-Crest-Signature` the way a merchant would: HMAC-SHA256 of `<timestamp>.<body>`
/// under [`SECRET`].
pub fn signature_ok(headers: &HeaderMap, body: &[u8]) -> bool {
    signature_ok_with(SECRET, headers, body)
}

/// [`signature_ok`] under `secret`, with the 300 s replay window.
pub fn signature_ok_with(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let (Some(timestamp), Some(signature)) =
        (header("x-crest-timestamp"), header("x-crest-signature"))
    else {
        return false;
    };
    let Ok(at) = timestamp.parse::<u64>() else {
        return false;
    };
    if now_s().abs_diff(at) > 300 {
        return false;
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let expected: String = hmac::sign(&key, &signed)
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    signature == format!("sha256={expected}")
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    receiver.requests.fetch_add(1, Ordering::SeqCst);
    if !signature_ok(&headers, &body) {
        receiver.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    if receiver.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if receiver
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok()
    {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let message: Value = serde_json::from_slice(&body).expect("the body is JSON");
    receiver
        .accepted
        .lock()
        .expect("receiver lock")
        .push(message);
    StatusCode::NO_CONTENT
}

/// Starts a receiver on a free port; returns it and its URL.
pub async fn start_receiver() -> (Arc<Receiver>, String) {
    let receiver = Arc::new(Receiver::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("receiver binds");
    let addr = listener.local_addr().expect("receiver address");
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(Arc::clone(&receiver));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (receiver, format!("http://{addr}/hook"))
}

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs()
}

pub fn sign(timestamp: u64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    let tag = hmac::sign(&key, format!("{timestamp}.{body}").as_bytes());
    let hex: String = tag
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Posts `body` to a channel's inbound webhook signed at `timestamp` (with `signature` if given).
pub async fn post_inbound(
    addr: SocketAddr,
    tenant: &str,
    channel: &str,
    body: &str,
    timestamp: u64,
    signature: Option<String>,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!(
            "http://{addr}/v1/channels/{tenant}/{channel}/inbound"
        ))
        .header("content-type", "application/json")
        .header("x-crest-timestamp", timestamp.to_string())
        .header(
            "x-crest-signature",
            signature.unwrap_or_else(|| sign(timestamp, body)),
        )
        .body(body.to_owned())
        .send()
        .await
        .expect("inbound request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("inbound answer");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub async fn signed_message(
    addr: SocketAddr,
    tenant: &str,
    channel: &str,
    id: &str,
    customer: &str,
    text: &str,
) -> Value {
    let body = json!({"id": id, "customer": customer, "text": text}).to_string();
    let (status, answer) = post_inbound(addr, tenant, channel, &body, now_s(), None).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// Waits (up to `patience`) until the receiver accepted `count` messages.
pub async fn accepted_at_least(
    receiver: &Receiver,
    count: usize,
    patience: Duration,
) -> Vec<Value> {
    let deadline = Instant::now() + patience;
    loop {
        let accepted = receiver.accepted();
        if accepted.len() >= count {
            return accepted;
        }
        assert!(
            Instant::now() < deadline,
            "the receiver accepted {} of {count} messages: {accepted:?}",
            accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn configure(client: &Client, tenant: &str, name: &str, body: &Value) -> super::Answer {
    client
        .put(&format!("/v1/tenants/{tenant}/channels/{name}"), body)
        .await
}
