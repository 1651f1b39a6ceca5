//! Channel connections end to end: a local receiver (which checks the signature of every request
//! it gets) behind a channel's `outbound_url`, signed inbound messages, retries, dead letters and
//! a `kill -9` between a message's receipt and its delivery.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use support::receiver::{
    SECRET, accepted_at_least, configure, now_s, post_inbound, sign, signature_ok, signed_message,
    start_receiver,
};
use support::{Client, KillOnDrop, config, free_port, serve_process, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_message_gets_its_replies_delivered_once_each_signed_through_failures() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let (receiver, url) = start_receiver().await;
    receiver.fail_next.store(2, Ordering::SeqCst);
    let created = configure(
        &client,
        "shop",
        "hooks",
        &json!({"kind": "webhook", "secret": SECRET, "outbound_url": url, "backoff_base_ms": 20}),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);

    let first = signed_message(
        node.addr,
        "shop",
        "hooks",
        "p-1",
        "c-1",
        "where is my parcel",
    )
    .await;
    assert_eq!(first["duplicate"], false);
    let conversation = first["conversation_id"]
        .as_str()
        .expect("conversation id")
        .to_owned();
    // The platform pushes the same message again: acknowledged, not stored twice.
    let again = signed_message(
        node.addr,
        "shop",
        "hooks",
        "p-1",
        "c-1",
        "where is my parcel",
    )
    .await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["conversation_id"], first["conversation_id"]);

    let delivered = accepted_at_least(&receiver, 1, Duration::from_secs(10)).await;
    let reply = &delivered[0];
    assert_eq!(reply["role"], "bot");
    assert_eq!(reply["text"], "echo: where is my parcel");
    assert_eq!(reply["conversation"], conversation.as_str());
    assert_eq!(reply["customer"], "c-1");
    assert!(
        reply["id"].as_str().is_some_and(|id| id.len() == 26),
        "{reply}"
    );
    assert!(
        reply["at"].as_str().is_some_and(|at| at.ends_with('Z')),
        "{reply}"
    );
    assert_eq!(
        receiver.requests.load(Ordering::SeqCst),
        3,
        "two refused deliveries, then the accepted one"
    );

    // An agent takes the chat over and answers: the customer gets that too, through the channel.
    let seat = client
        .put(
            "/v1/tenants/shop/agents/alice",
            &json!({"status": "online", "groups": ["general"], "capacity": 3}),
        )
        .await;
    assert_eq!(seat.status, 200, "{:?}", seat.body);
    let taken = client
        .post(
            &format!("/v1/tenants/shop/conversations/{conversation}/take-over"),
            &json!({"supervisor": "alice"}),
        )
        .await;
    assert_eq!(taken.status, 200, "{:?}", taken.body);
    client
        .conversation_until("shop", &conversation, |body| body["agent"] == "alice")
        .await;
    let written = client
        .post(
            &format!("/v1/tenants/shop/conversations/{conversation}/agent-messages"),
            &json!({"agent": "alice", "id": "a-1", "text": "It leaves today."}),
        )
        .await;
    assert_eq!(written.status, 200, "{:?}", written.body);
    let note = client
        .post(
            &format!("/v1/tenants/shop/conversations/{conversation}/agent-messages"),
            &json!({"agent": "alice", "id": "a-2", "text": "customer is VIP", "internal": true}),
        )
        .await;
    assert_eq!(note.status, 200, "{:?}", note.body);
    let delivered = accepted_at_least(&receiver, 2, Duration::from_secs(10)).await;
    let agent_reply = delivered
        .iter()
        .find(|message| message["role"] == "agent")
        .expect("the agent's reply is delivered");
    assert_eq!(agent_reply["text"], "It leaves today.");

    // Nothing arrives twice and internal notes never leave.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered = receiver.accepted();
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    for message in &delivered {
        *by_id
            .entry(message["id"].as_str().expect("id").to_owned())
            .or_default() += 1;
        assert_ne!(message["text"], "customer is VIP");
    }
    assert!(by_id.values().all(|count| *count == 1), "{delivered:?}");
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);
    let channel = client.get("/v1/tenants/shop/channels/hooks").await;
    assert_eq!(channel.body["pending"], 0, "{:?}", channel.body);

    // A message through another channel label (the web widget) is not delivered to the hook.
    let web = client
        .message("shop", "c-2", "w-1", "hello from the web")
        .await;
    assert_eq!(web.status, 200, "{:?}", web.body);
    let web_conversation = web.conversation_id();
    client
        .conversation_until("shop", &web_conversation, |body| {
            support::roles(body).contains(&"bot".to_owned())
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        receiver
            .accepted()
            .iter()
            .all(|message| message["conversation"] != web_conversation.as_str())
    );
    node.stop().await.expect("node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversations_messages_arrive_in_order_while_the_first_is_retried() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let (receiver, url) = start_receiver().await;
    receiver.fail_next.store(3, Ordering::SeqCst);
    let created = configure(
        &client,
        "shop",
        "hooks",
        &json!({"kind": "webhook", "secret": SECRET, "outbound_url": url, "backoff_base_ms": 30}),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let words = ["one", "two", "three", "four"];
    for (index, word) in words.iter().enumerate() {
        signed_message(
            node.addr,
            "shop",
            "hooks",
            &format!("p-{index}"),
            "c-1",
            word,
        )
        .await;
    }
    let delivered = accepted_at_least(&receiver, words.len(), Duration::from_secs(10)).await;
    let texts: Vec<&str> = delivered
        .iter()
        .filter_map(|message| message["text"].as_str())
        .collect();
    let expected: Vec<String> = words.iter().map(|word| format!("echo: {word}")).collect();
    assert_eq!(texts, expected, "in the order they were written");
    assert_eq!(receiver.requests.load(Ordering::SeqCst), words.len() + 3);
    node.stop().await.expect("node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_stale_and_malformed_inbound_requests_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let created = configure(
        &client,
        "shop",
        "hooks",
        &json!({"kind": "webhook", "secret": SECRET}),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let body = json!({"id": "p-1", "customer": "c-1", "text": "hi"}).to_string();
    let now = now_s();

    let forged = sign(now, &body).replace('a', "b");
    let (status, answer) = post_inbound(node.addr, "shop", "hooks", &body, now, Some(forged)).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("bad_signature"))
    );
    let (status, answer) =
        post_inbound(node.addr, "shop", "hooks", &body, now, Some(String::new())).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("bad_signature"))
    );
    let other_body = sign(now, "{}");
    let (status, _) = post_inbound(node.addr, "shop", "hooks", &body, now, Some(other_body)).await;
    assert_eq!(status, 401, "a signature of another body");

    let stale = now - 301;
    let (status, answer) = post_inbound(node.addr, "shop", "hooks", &body, stale, None).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("stale_timestamp")),
        "{answer}"
    );
    let (status, answer) = post_inbound(node.addr, "shop", "hooks", &body, now + 400, None).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("stale_timestamp")),
        "{answer}"
    );

    let (status, answer) = post_inbound(node.addr, "shop", "nope", &body, now, None).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("unknown_channel"))
    );
    let (status, answer) = post_inbound(node.addr, "other", "hooks", &body, now, None).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("unknown_channel")),
        "channels are per tenant"
    );

    for bad in [
        "not json",
        r#"{"id":"p-2","customer":"c-1"}"#,
        r#"{"id":"p 2","customer":"c-1","text":"hi"}"#,
        r#"{"id":"p-2","customer":"c-1","text":"  "}"#,
    ] {
        let (status, answer) = post_inbound(node.addr, "shop", "hooks", bad, now, None).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("invalid_body")),
            "{bad}: {answer}"
        );
    }
    // Nothing refused reached a conversation.
    let conversation = client
        .get("/v1/tenants/shop/customers/c-1/conversation")
        .await;
    assert_eq!(conversation.status, 404, "{:?}", conversation.body);
    let (status, _) = post_inbound(node.addr, "shop", "hooks", &body, now, None).await;
    assert_eq!(status, 200);

    let (_, metrics) = client.get_text("/metrics").await;
    let samples = support::samples(&metrics);
    let inbound = |outcome: &str| {
        samples
            .get(&format!(
                "crest_channel_inbound_total{{kind=\"webhook\",outcome=\"{outcome}\"}}"
            ))
            .copied()
            .unwrap_or_default()
    };
    assert_eq!(inbound("bad_signature"), 3.0);
    assert_eq!(inbound("stale_timestamp"), 2.0);
    assert_eq!(inbound("invalid_body"), 4.0);
    assert_eq!(inbound("accepted"), 1.0);
    node.stop().await.expect("node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_are_configured_validated_guarded_and_audited() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let admin = Client::new(node.addr);
    let path = "/v1/tenants/shop/channels/wx-main";
    let body = json!({
        "kind": "wechat_oa",
        "secret": SECRET,
        "outbound_url": "https://hooks.shop.example/crest",
        "profile": "wechat_oa",
    });
    let created = admin.put(path, &body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["max_attempts"], 10);
    assert_eq!(created.body["backoff_base_ms"], 500);
    assert_eq!(created.body["kind"], "wechat_oa");
    assert!(
        !created.body.to_string().contains(SECRET),
        "the secret is never echoed"
    );
    let replaced = admin
        .put(path, &json!({"kind": "webhook", "secret": SECRET, "max_attempts": 3, "backoff_base_ms": 100}))
        .await;
    assert_eq!(replaced.status, 200, "{:?}", replaced.body);
    assert_eq!(replaced.body["outbound_url"], Value::Null);
    let read = admin.get(path).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["max_attempts"], 3);
    assert_eq!(read.body["secret_set"], true);
    assert!(!read.body.to_string().contains(SECRET));
    let listed = admin.get("/v1/tenants/shop/channels").await;
    assert_eq!(listed.body["channels"].as_array().map(Vec::len), Some(1));

    for (name, bad) in [
        ("wx-main", json!({"kind": "webhook", "secret": "short"})),
        ("wx-main", json!({"kind": "fax", "secret": SECRET})),
        (
            "wx-main",
            json!({"kind": "webhook", "secret": SECRET, "outbound_url": "ftp://x.example"}),
        ),
        (
            "wx-main",
            json!({"kind": "webhook", "secret": SECRET, "max_attempts": 0}),
        ),
        (
            "wx-main",
            json!({"kind": "webhook", "secret": SECRET, "backoff_base_ms": 1}),
        ),
        ("WX", json!({"kind": "webhook", "secret": SECRET})),
    ] {
        let answer = admin
            .put(&format!("/v1/tenants/shop/channels/{name}"), &bad)
            .await;
        assert_eq!(answer.status, 400, "{bad}: {:?}", answer.body);
        assert_eq!(answer.body["error"], "invalid_channel");
        assert!(
            answer.body["reason"]
                .as_str()
                .is_some_and(|reason| !reason.is_empty())
        );
    }
    let unknown_field = admin
        .put(
            path,
            &json!({"kind": "webhook", "secret": SECRET, "colour": "red"}),
        )
        .await;
    assert_eq!(unknown_field.status, 422, "{:?}", unknown_field.body);

    let agent_key = admin.issue_key("shop", "agent", Some("alice")).await;
    let agent = Client::with_token(node.addr, &agent_key);
    assert_eq!(agent.get(path).await.status, 403);
    assert_eq!(agent.put(path, &body).await.status, 403);
    let supervisor_key = admin.issue_key("shop", "supervisor", None).await;
    let supervisor = Client::with_token(node.addr, &supervisor_key);
    assert_eq!(supervisor.get(path).await.status, 200);
    assert_eq!(supervisor.put(path, &body).await.status, 403);
    assert_eq!(supervisor.delete(path).await.status, 403);
    let other_tenant = admin.issue_key("other", "admin", None).await;
    assert_eq!(
        Client::with_token(node.addr, &other_tenant)
            .get(path)
            .await
            .status,
        403
    );
    assert_eq!(Client::anonymous(node.addr).get(path).await.status, 401);

    let audit = admin.get("/v1/tenants/shop/audit").await;
    let actions: Vec<&str> = audit.body["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|record| record["action"].as_str())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|action| **action == "channel.configured")
            .count(),
        2,
        "{actions:?}"
    );
    assert!(!audit.body.to_string().contains(SECRET));

    assert_eq!(admin.delete(path).await.status, 204);
    assert_eq!(admin.get(path).await.status, 404);
    assert_eq!(admin.delete(path).await.status, 404);
    let body = json!({"id": "p-1", "customer": "c-1", "text": "hi"}).to_string();
    let (status, _) = post_inbound(node.addr, "shop", "wx-main", &body, now_s(), None).await;
    assert_eq!(status, 404, "a removed channel takes nothing in");
    let audit = admin.get("/v1/tenants/shop/audit").await;
    assert!(audit.body.to_string().contains("channel.removed"));

    // The configuration survives a restart; the secret is stored sealed.
    let created = admin
        .put(path, &json!({"kind": "webhook", "secret": SECRET}))
        .await;
    assert_eq!(created.status, 201);
    node.stop().await.expect("node stops");
    let node = start(config(dir.path())).await;
    let admin = Client::new(node.addr);
    assert_eq!(admin.get(path).await.body["secret_set"], true);
    let (status, answer) = post_inbound(node.addr, "shop", "wx-main", &body, now_s(), None).await;
    assert_eq!(status, 200, "{answer}");
    node.stop().await.expect("node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_receiver_down_messages_are_dead_lettered_and_a_retry_delivers_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let (receiver, url) = start_receiver().await;
    receiver.down.store(true, Ordering::SeqCst);
    let created = configure(
        &client,
        "shop",
        "hooks",
        &json!({"kind": "webhook", "secret": SECRET, "outbound_url": url, "max_attempts": 3, "backoff_base_ms": 10}),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    for (index, customer) in ["c-1", "c-2"].iter().enumerate() {
        signed_message(
            node.addr,
            "shop",
            "hooks",
            &format!("p-{index}"),
            customer,
            "hello",
        )
        .await;
    }
    let letters_path = "/v1/tenants/shop/channels/hooks/dead-letters";
    let deadline = Instant::now() + Duration::from_secs(10);
    let letters = loop {
        let answer = client.get(letters_path).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        let letters = answer.body["dead_letters"]
            .as_array()
            .expect("list")
            .clone();
        if letters.len() == 2 {
            break letters;
        }
        assert!(Instant::now() < deadline, "not dead-lettered: {letters:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for letter in &letters {
        assert_eq!(letter["attempts"], 3);
        assert_eq!(letter["last_error"], "status 503");
        assert_eq!(letter["role"], "bot");
    }
    assert_eq!(receiver.requests.load(Ordering::SeqCst), 6);
    assert!(receiver.accepted().is_empty());
    let channel = client.get("/v1/tenants/shop/channels/hooks").await;
    assert_eq!(
        (
            channel.body["pending"].as_u64(),
            channel.body["dead_letters"].as_u64()
        ),
        (Some(0), Some(2))
    );

    receiver.down.store(false, Ordering::SeqCst);
    let id = letters[0]["id"].as_str().expect("id");
    let retried = client
        .post(&format!("{letters_path}/{id}/retry"), &json!({}))
        .await;
    assert_eq!(retried.status, 202, "{:?}", retried.body);
    let delivered = accepted_at_least(&receiver, 1, Duration::from_secs(10)).await;
    assert_eq!(delivered[0]["id"], id);
    let again = client
        .post(&format!("{letters_path}/{id}/retry"), &json!({}))
        .await;
    assert_eq!(again.status, 404, "no longer a dead letter");
    let left = client.get(letters_path).await;
    assert_eq!(left.body["dead_letters"].as_array().map(Vec::len), Some(1));

    // The dead letter left survives a restart, and can still be retried.
    node.stop().await.expect("node stops");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let left = client.get(letters_path).await;
    let letters = left.body["dead_letters"].as_array().expect("list").clone();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let id = letters[0]["id"].as_str().expect("id");
    let retried = client
        .post(&format!("{letters_path}/{id}/retry"), &json!({}))
        .await;
    assert_eq!(retried.status, 202, "{:?}", retried.body);
    let delivered = accepted_at_least(&receiver, 2, Duration::from_secs(10)).await;
    assert_eq!(delivered[1]["id"], id);
    node.stop().await.expect("node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_queued_before_a_kill_9_is_delivered_after_the_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (receiver, url) = start_receiver().await;
    receiver.down.store(true, Ordering::SeqCst);
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut crest = KillOnDrop(serve_process(dir.path(), port));
    let client = Client::new(addr);
    let created = configure(
        &client,
        "shop",
        "hooks",
        &json!({"kind": "webhook", "secret": SECRET, "outbound_url": url, "max_attempts": 100, "backoff_base_ms": 50}),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    signed_message(addr, "shop", "hooks", "p-1", "c-1", "hello").await;
    // The reply is queued and its delivery keeps failing.
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.requests.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "no delivery attempt");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    crest.0.kill().expect("kill -9");
    let _ = crest.0.wait();

    receiver.down.store(false, Ordering::SeqCst);
    let _crest = KillOnDrop(serve_process(dir.path(), port));
    let delivered = accepted_at_least(&receiver, 1, Duration::from_secs(20)).await;
    assert_eq!(delivered[0]["role"], "bot");
    assert_eq!(delivered[0]["customer"], "c-1");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.accepted().len(), 1, "delivered once");
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);
}

/// A receiver that answers 503 to every `fail_every`-th request (0: never) and records when each
/// accepted message arrived.
#[derive(Default)]
struct TimedReceiver {
    fail_every: usize,
    requests: AtomicUsize,
    bad_signatures: AtomicUsize,
    arrivals: Mutex<Vec<(String, String, SystemTime)>>,
}

async fn receive_timed(
    State(receiver): State<Arc<TimedReceiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let count = receiver.requests.fetch_add(1, Ordering::SeqCst);
    if !signature_ok(&headers, &body) {
        receiver.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    if receiver.fail_every > 0 && count % receiver.fail_every == 0 {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let message: Value = serde_json::from_slice(&body).expect("the body is JSON");
    receiver.arrivals.lock().expect("receiver lock").push((
        message["conversation"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        message["at"].as_str().unwrap_or_default().to_owned(),
        SystemTime::now(),
    ));
    StatusCode::NO_CONTENT
}

fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 - 1.0) * quantile).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Measures outbound delivery latency at a steady inbound rate (`CREST_CHANNEL_RATE` messages per
/// second, default 1000, for `CREST_CHANNEL_SECONDS`, default 10), with a receiver that accepts
/// everything and with one that refuses every second request. Run by hand:
/// `cargo nextest run -p crest-infra --test channels --run-ignored only --no-capture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check; run by hand"]
async fn measure_delivery_latency() {
    let rate: u64 = std::env::var("CREST_CHANNEL_RATE")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1000);
    let seconds: u64 = std::env::var("CREST_CHANNEL_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10);
    for fail_every in [0, 2] {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = start(config(dir.path())).await;
        let client = Client::new(node.addr);
        let receiver = Arc::new(TimedReceiver {
            fail_every,
            ..TimedReceiver::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("receiver binds");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive_timed))
            .with_state(Arc::clone(&receiver));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let created = configure(
            &client,
            "load",
            "hooks",
            &json!({"kind": "webhook", "secret": SECRET, "outbound_url": url}),
        )
        .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let http = reqwest::Client::new();
        let total = rate * seconds;
        let sent: Arc<Mutex<HashMapOf>> = Arc::default();
        let started = tokio::time::Instant::now();
        let mut posts = tokio::task::JoinSet::new();
        for index in 0..total {
            tokio::time::sleep_until(started + Duration::from_micros(index * 1_000_000 / rate))
                .await;
            let http = http.clone();
            let sent = Arc::clone(&sent);
            let addr = node.addr;
            posts.spawn(async move {
                let body = json!({"id": format!("m-{index}"), "customer": format!("c-{index}"), "text": "where is my parcel"}).to_string();
                let timestamp = now_s();
                let posted = SystemTime::now();
                let response = http
                    .post(format!("http://{addr}/v1/channels/load/hooks/inbound"))
                    .header("content-type", "application/json")
                    .header("x-crest-timestamp", timestamp.to_string())
                    .header("x-crest-signature", sign(timestamp, &body))
                    .body(body)
                    .send()
                    .await;
                if let Ok(response) = response
                    && response.status().is_success()
                    && let Ok(answer) = response.json::<Value>().await
                    && let Some(conversation) = answer["conversation_id"].as_str()
                {
                    sent.lock().expect("sent").insert(conversation.to_owned(), posted);
                }
            });
        }
        while posts.join_next().await.is_some() {}
        let accepted = sent.lock().expect("sent").len();
        let deadline = Instant::now() + Duration::from_secs(120);
        while receiver.arrivals.lock().expect("arrivals").len() < accepted
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let elapsed = started.elapsed();
        let arrivals = receiver.arrivals.lock().expect("arrivals").clone();
        let sent = sent.lock().expect("sent").clone();
        let mut end_to_end: Vec<f64> = Vec::new();
        let mut from_reply: Vec<f64> = Vec::new();
        for (conversation, at, arrived) in &arrivals {
            if let Some(posted) = sent.get(conversation) {
                end_to_end.push(
                    arrived
                        .duration_since(*posted)
                        .unwrap_or_default()
                        .as_secs_f64()
                        * 1000.0,
                );
            }
            if let Ok(written) = humantime::parse_rfc3339(at) {
                from_reply.push(
                    arrived
                        .duration_since(written)
                        .unwrap_or_default()
                        .as_secs_f64()
                        * 1000.0,
                );
            }
        }
        end_to_end.sort_by(f64::total_cmp);
        from_reply.sort_by(f64::total_cmp);
        #[allow(clippy::cast_precision_loss)]
        let throughput = arrivals.len() as f64 / elapsed.as_secs_f64();
        println!(
            "receiver failing every {fail_every}th request (0: none): {total} posted at {rate}/s, {accepted} accepted, {} delivered, {} requests, {} bad signatures, {throughput:.0} deliveries/s over {:.1} s",
            arrivals.len(),
            receiver.requests.load(Ordering::SeqCst),
            receiver.bad_signatures.load(Ordering::SeqCst),
            elapsed.as_secs_f64(),
        );
        println!(
            "  inbound post → delivered: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(&end_to_end, 0.5),
            percentile(&end_to_end, 0.99),
            end_to_end.last().copied().unwrap_or(f64::NAN)
        );
        println!(
            "  reply written → delivered: p50 {:.1} ms, p99 {:.1} ms",
            percentile(&from_reply, 0.5),
            percentile(&from_reply, 0.99)
        );
        node.stop().await.expect("node stops");
    }
}

type HashMapOf = std::collections::HashMap<String, SystemTime>;

/// The node whose outbox of `shop/hooks` holds messages (the one running it), by `GET` on each.
async fn outbox_node(clients: &[&Client]) -> Option<usize> {
    for (index, client) in clients.iter().enumerate() {
        let channel = client.get("/v1/tenants/shop/channels/hooks").await.body;
        if channel["pending"].as_u64().unwrap_or(0) > 0 {
            return Some(index);
        }
    }
    None
}

/// In a cluster every node takes signed messages, and the one node serving the channel's outbox
/// delivers every reply once — also after that node is killed while messages wait for the
/// receiver, when the next owner of its shard carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_every_reply_is_delivered_by_the_outboxs_node_also_after_it_dies() {
    let nats = support::NatsServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let names = ["one", "two", "three"];
    let ports: Vec<u16> = names.iter().map(|_| free_port()).collect();
    let mut nodes: Vec<Option<KillOnDrop>> = names
        .iter()
        .zip(&ports)
        .map(|(name, port)| {
            Some(support::cluster_node(
                &nats.url(),
                name,
                *port,
                &dir.path().join(name),
            ))
        })
        .collect();
    let addrs: Vec<SocketAddr> = ports
        .iter()
        .map(|port| SocketAddr::from(([127, 0, 0, 1], *port)))
        .collect();
    for addr in &addrs {
        support::wait_for_port(*addr);
    }
    let clients: Vec<Client> = addrs.iter().map(|addr| Client::new(*addr)).collect();
    let all: Vec<&Client> = clients.iter().collect();
    support::wait_for_cluster(&all, 3).await;
    let (receiver, url) = start_receiver().await;
    receiver.fail_next.store(2, Ordering::SeqCst);
    let created = configure(
        &clients[0],
        "shop",
        "hooks",
        &json!({"kind": "webhook", "secret": SECRET, "outbound_url": url, "backoff_base_ms": 20}),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    // Customers write through every node; their conversations live on all three.
    const CUSTOMERS: usize = 9;
    for customer in 0..CUSTOMERS {
        let addr = addrs[customer % addrs.len()];
        let id = format!("c{customer}-m1");
        signed_message(
            addr,
            "shop",
            "hooks",
            &id,
            &format!("c-{customer}"),
            "hello",
        )
        .await;
    }
    let first = accepted_at_least(&receiver, CUSTOMERS, Duration::from_secs(60)).await;
    let customers: std::collections::BTreeSet<&str> = first
        .iter()
        .filter_map(|message| message["customer"].as_str())
        .collect();
    assert_eq!(
        customers.len(),
        CUSTOMERS,
        "a reply to every customer: {first:?}"
    );
    // The receiver goes down: the outbox's node holds the next replies; kill -9 it.
    receiver.down.store(true, Ordering::SeqCst);
    for customer in 0..CUSTOMERS {
        let addr = addrs[customer % addrs.len()];
        let id = format!("c{customer}-m2");
        signed_message(
            addr,
            "shop",
            "hooks",
            &id,
            &format!("c-{customer}"),
            "still there?",
        )
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let owner = loop {
        if let Some(owner) = outbox_node(&all).await {
            break owner;
        }
        assert!(Instant::now() < deadline, "no node holds the replies");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut killed = nodes[owner].take().expect("running");
    killed.0.kill().expect("kill -9");
    let _ = killed.0.wait();
    receiver.down.store(false, Ordering::SeqCst);
    // Every reply is delivered (the next owner reads the outbox's stream), each id once or, for
    // a delivery in flight at the kill, again with the same id.
    let everything = accepted_at_least(&receiver, 2 * CUSTOMERS, Duration::from_secs(90)).await;
    let ids: std::collections::BTreeSet<&str> = everything
        .iter()
        .filter_map(|message| message["id"].as_str())
        .collect();
    assert!(ids.len() >= 2 * CUSTOMERS, "{everything:?}");
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);
    // One node delivers: the others hold nothing.
    let survivors: Vec<&Client> = clients
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != owner)
        .map(|(_, client)| client)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while outbox_node(&survivors).await.is_some() {
        assert!(Instant::now() < deadline, "replies still pending");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Dead letters are listed and retried through any node, whichever runs the outbox.
    receiver.down.store(true, Ordering::SeqCst);
    let replaced = configure(
        survivors[0],
        "shop",
        "hooks",
        &json!({"kind": "webhook", "secret": SECRET, "outbound_url": url,
                "backoff_base_ms": 20, "max_attempts": 2}),
    )
    .await;
    assert_eq!(replaced.status, 200, "{:?}", replaced.body);
    // (Configurations reach the other nodes within the follow interval.)
    tokio::time::sleep(Duration::from_secs(3)).await;
    let addr = addrs[(owner + 1) % addrs.len()];
    signed_message(addr, "shop", "hooks", "c0-m3", "c-0", "one more").await;
    let path = "/v1/tenants/shop/channels/hooks/dead-letters";
    let deadline = Instant::now() + Duration::from_secs(60);
    let dead = loop {
        let listed: Vec<Value> = survivors[0].get(path).await.body["dead_letters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !listed.is_empty() {
            break listed;
        }
        assert!(Instant::now() < deadline, "nothing dead-lettered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dead.len(), 1, "{dead:?}");
    let from_other = survivors[1].get(path).await.body;
    assert_eq!(
        from_other["dead_letters"],
        json!(dead),
        "the same list from every node"
    );
    receiver.down.store(false, Ordering::SeqCst);
    let id = dead[0]["id"].as_str().expect("id");
    let retried = survivors[1]
        .post(&format!("{path}/{id}/retry"), &json!({}))
        .await;
    assert_eq!(retried.status, 202, "{:?}", retried.body);
    let delivered =
        accepted_at_least(&receiver, everything.len() + 1, Duration::from_secs(30)).await;
    assert!(
        delivered.iter().any(|message| message["id"] == id),
        "{delivered:?}"
    );
}
