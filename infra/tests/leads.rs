//! Leads end to end: a tenant's lead policy makes the bot collect a name and a phone in a
//! pre-sales conversation, and the captured lead reaches a local CRM receiver (which checks the
//! signature of every request) through retries and dead letters. The test nodes run the echo
//! brain, which labels every ordinary message `echo`: the policies below name it as their
//! pre-sales intent.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use ring::hmac;
use serde_json::{Value, json};
use support::{Client, config, samples, start};

const SECRET: &str = "the-crm-and-crest-share-this";

/// A CRM endpoint.
#[derive(Default)]
struct Receiver {
    /// Requests answered 503 before the next is accepted.
    fail_next: AtomicUsize,
    /// While set, every request is answered 503.
    down: AtomicBool,
    /// Requests whose signature did not verify.
    bad_signatures: AtomicUsize,
    /// Every request.
    requests: AtomicUsize,
    /// Accepted bodies in arrival order.
    accepted: Mutex<Vec<Value>>,
}

impl Receiver {
    fn accepted(&self) -> Vec<Value> {
        self.accepted.lock().expect("receiver lock").clone()
    }
}

/// Checks a Feishu custom bot's `timestamp` and `sign` in the body, as Feishu does.
fn feishu_sign_ok(body: &Value) -> bool {
    let (Some(timestamp), Some(sign)) = (body["timestamp"].as_str(), body["sign"].as_str()) else {
        return false;
    };
    let key = hmac::Key::new(
        hmac::HMAC_SHA256,
        format!("{timestamp}\n{SECRET}").as_bytes(),
    );
    sign == base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, b"").as_ref())
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    receiver.requests.fetch_add(1, Ordering::SeqCst);
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let feishu = parsed.get("msg_type").is_some();
    let signed = support::receiver::signature_ok_with(SECRET, &headers, &body)
        && (!feishu || feishu_sign_ok(&parsed));
    if !signed {
        receiver.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::UNAUTHORIZED, String::new());
    }
    let refused = receiver.down.load(Ordering::SeqCst)
        || receiver
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
    if refused && feishu {
        // Feishu refuses with a code in a 200.
        return (
            StatusCode::OK,
            json!({"code": 9499, "msg": "too many requests"}).to_string(),
        );
    }
    if refused {
        return (StatusCode::SERVICE_UNAVAILABLE, String::new());
    }
    receiver
        .accepted
        .lock()
        .expect("receiver lock")
        .push(parsed);
    (
        StatusCode::OK,
        json!({"code": 0, "msg": "success"}).to_string(),
    )
}

async fn start_receiver() -> (Arc<Receiver>, String) {
    let receiver = Arc::new(Receiver::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("receiver binds");
    let addr = listener.local_addr().expect("receiver address");
    let app = axum::Router::new()
        .route("/leads", axum::routing::post(receive))
        .with_state(Arc::clone(&receiver));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (receiver, format!("http://{addr}/leads"))
}

async fn accepted_at_least(receiver: &Receiver, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let accepted = receiver.accepted();
        if accepted.len() >= count {
            return accepted;
        }
        assert!(
            Instant::now() < deadline,
            "the CRM accepted {} of {count} leads: {accepted:?}",
            accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends a customer message and waits for the bot's answer to it; returns the answer's text.
async fn say(client: &Client, tenant: &str, customer: &str, id: &str, text: &str) -> String {
    let sent = client.message(tenant, customer, id, text).await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    let conversation = sent.conversation_id();
    let customer_messages = |body: &Value| {
        body["messages"].as_array().map_or(0, |messages| {
            messages
                .iter()
                .filter(|message| message["role"] == "customer")
                .count()
        })
    };
    let body = client
        .conversation_until(tenant, &conversation, |body| {
            let messages = body["messages"].as_array().cloned().unwrap_or_default();
            messages.last().is_some_and(|last| last["role"] == "bot")
                && messages.iter().filter(|m| m["role"] == "bot").count() == customer_messages(body)
        })
        .await;
    body["messages"]
        .as_array()
        .and_then(|messages| messages.last())
        .and_then(|last| last["text"].as_str())
        .expect("bot text")
        .to_owned()
}

async fn set_policy(client: &Client, tenant: &str) {
    let set = client
        .put(
            &format!("/v1/tenants/{tenant}/lead-policy"),
            &json!({"intents": ["echo"], "thanks_en": "Thanks, we will call you."}),
        )
        .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    assert_eq!(set.body["intents"], json!(["echo"]));
    assert_eq!(set.body["thanks_en"], "Thanks, we will call you.");
    assert!(
        set.body["ask_name_zh"]
            .as_str()
            .is_some_and(|text| text.contains("称呼")),
        "unset texts take the defaults: {:?}",
        set.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_sales_conversation_delivers_its_lead_once_signed_through_failures() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let (receiver, url) = start_receiver().await;
    receiver.fail_next.store(2, Ordering::SeqCst);
    let created = client
        .put(
            "/v1/tenants/shop/integrations/crm",
            &json!({"url": url, "secret": SECRET, "format": "generic", "backoff_base_ms": 20}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["format"], "generic");
    assert_eq!(created.body["secret_set"], true);
    assert!(
        !created.body.to_string().contains(SECRET),
        "the secret is never echoed"
    );
    set_policy(&client, "shop").await;

    let asked = say(
        &client,
        "shop",
        "c-1",
        "m-1",
        "how much is the X200 purifier?",
    )
    .await;
    assert!(asked.contains("May I have your name?"), "{asked}");
    let asked = say(&client, "shop", "c-1", "m-2", "my name is Alice Chen").await;
    assert_eq!(asked, "Which phone number can we reach you on?");
    let asked = say(&client, "shop", "c-1", "m-3", "12345").await;
    assert!(asked.contains("does not look right"), "{asked}");
    let thanks = say(&client, "shop", "c-1", "m-4", "+44 20 7946 0958").await;
    assert_eq!(thanks, "Thanks, we will call you.");
    // Captured once: the bot no longer asks.
    let echoed = say(&client, "shop", "c-1", "m-5", "and the price of filters?").await;
    assert_eq!(echoed, "echo: and the price of filters?");

    let leads = accepted_at_least(&receiver, 1).await;
    let conversation = client
        .message("shop", "c-1", "m-5", "x")
        .await
        .conversation_id();
    let lead = &leads[0];
    assert_eq!(lead["id"], format!("lead-{conversation}"));
    assert_eq!(lead["type"], "lead.captured");
    assert_eq!(lead["tenant"], "shop");
    assert_eq!(lead["customer"], "c-1");
    assert_eq!(lead["conversation"], conversation);
    assert_eq!(lead["name"], "Alice Chen");
    assert_eq!(lead["phone"], "+442079460958");
    assert_eq!(lead["intent"], "echo");
    assert_eq!(lead["channel"], "web");
    assert!(lead["at"].as_str().is_some_and(|at| at.ends_with('Z')));
    // Nothing more comes: exactly one delivery of the lead, after two refusals.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.accepted().len(), 1);
    assert_eq!(receiver.requests.load(Ordering::SeqCst), 3);
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);

    let (status, text) = client.get_text("/metrics").await;
    assert_eq!(status, 200);
    let metrics = samples(&text);
    let value = |series: &str| metrics.get(series).copied().unwrap_or(-1.0);
    assert_eq!(
        value(r#"crest_crm_deliveries_total{format="generic",outcome="delivered"}"#),
        1.0
    );
    assert_eq!(
        value(r#"crest_crm_deliveries_total{format="generic",outcome="failed"}"#),
        2.0
    );
    assert_eq!(
        value(r#"crest_crm_deliveries_total{format="wecom",outcome="delivered"}"#),
        0.0,
        "every format's series exists from the start"
    );
    let captured = metrics
        .iter()
        .find(|(series, _)| series.starts_with("crest_leads_captured_total"))
        .map(|(_, value)| *value);
    assert_eq!(captured, Some(1.0), "{text}");
    node.stop().await.expect("node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chinese_lead_given_at_once_reaches_a_feishu_bot_that_refuses_with_a_code_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let (receiver, url) = start_receiver().await;
    receiver.fail_next.store(1, Ordering::SeqCst);
    let created = client
        .put(
            "/v1/tenants/shop/integrations/crm",
            &json!({"url": url, "secret": SECRET, "format": "feishu", "backoff_base_ms": 20}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    set_policy(&client, "shop").await;
    let asked = say(&client, "shop", "c-9", "m-1", "这款净化器多少钱？").await;
    assert!(asked.contains("请问怎么称呼您"), "{asked}");
    let thanks = say(
        &client,
        "shop",
        "c-9",
        "m-2",
        "我叫王小明，手机 138 0013 8000",
    )
    .await;
    assert!(thanks.contains("谢谢"), "{thanks}");
    let leads = accepted_at_least(&receiver, 1).await;
    let text = leads[0]["content"]["text"]
        .as_str()
        .expect("a text message");
    assert!(
        text.contains("王小明") && text.contains("13800138000"),
        "{text}"
    );
    assert_eq!(leads[0]["msg_type"], "text");
    assert_eq!(
        receiver.requests.load(Ordering::SeqCst),
        2,
        "the code 9499 was retried"
    );
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);
    node.stop().await.expect("node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_crm_down_leads_are_dead_lettered_and_a_retry_delivers_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let (receiver, url) = start_receiver().await;
    receiver.down.store(true, Ordering::SeqCst);
    let created = client
        .put(
            "/v1/tenants/shop/integrations/crm",
            &json!({"url": url, "secret": SECRET, "format": "generic", "max_attempts": 2, "backoff_base_ms": 10}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    set_policy(&client, "shop").await;
    say(&client, "shop", "c-1", "m-1", "price please").await;
    say(&client, "shop", "c-1", "m-2", "I'm Bob, 13900001111").await;

    let letters_path = "/v1/tenants/shop/integrations/crm/dead-letters";
    let deadline = Instant::now() + Duration::from_secs(10);
    let letters = loop {
        let answer = client.get(letters_path).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        let letters = answer.body["dead_letters"]
            .as_array()
            .expect("list")
            .clone();
        if !letters.is_empty() {
            break letters;
        }
        assert!(Instant::now() < deadline, "not dead-lettered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["role"], "lead");
    assert_eq!(letters[0]["attempts"], 2);
    assert_eq!(letters[0]["last_error"], "status 503");
    let crm = client.get("/v1/tenants/shop/integrations/crm").await;
    assert_eq!(crm.body["dead_letters"], 1);

    // The dead letter survives a restart; retried then, the lead is read back from its
    // conversation (where the name and phone are sealed) and goes out in clear.
    node.stop().await.expect("node stops");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let listed = client.get(letters_path).await;
    assert_eq!(
        listed.body["dead_letters"],
        json!(letters),
        "{:?}",
        listed.body
    );
    receiver.down.store(false, Ordering::SeqCst);
    let id = letters[0]["id"].as_str().expect("id");
    let retried = client
        .post(&format!("{letters_path}/{id}/retry"), &json!({}))
        .await;
    assert_eq!(retried.status, 202, "{:?}", retried.body);
    let delivered = accepted_at_least(&receiver, 1).await;
    assert_eq!(delivered[0]["id"], id);
    assert_eq!(delivered[0]["phone"], "13900001111");
    assert_eq!(delivered[0]["name"], "Bob");
    let again = client
        .post(&format!("{letters_path}/{id}/retry"), &json!({}))
        .await;
    assert_eq!(again.status, 404, "no longer a dead letter");
    node.stop().await.expect("node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrations_and_policies_are_validated_private_and_per_tenant() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let (receiver, url) = start_receiver().await;
    let crm = "/v1/tenants/shop/integrations/crm";
    assert_eq!(client.get(crm).await.status, 404);
    let policy = client.get("/v1/tenants/shop/lead-policy").await;
    assert_eq!(policy.status, 200);
    assert_eq!(
        policy.body["intents"],
        json!([]),
        "no lead capture until asked"
    );
    assert_eq!(policy.body["set_by"], "default");

    for bad in [
        json!({"url": url, "secret": SECRET, "format": "slack"}),
        json!({"url": "ftp://crm.example/leads", "secret": SECRET, "format": "generic"}),
        json!({"url": url, "secret": "short", "format": "generic"}),
        json!({"url": url, "secret": SECRET, "format": "generic", "max_attempts": 0}),
        json!({"url": url, "secret": SECRET, "format": "generic", "extra": 1}),
        json!({"url": url, "format": "generic"}),
    ] {
        let answer = client.put(crm, &bad).await;
        // 400 for what only reading can judge, 422 for a body of the wrong shape; a reason each.
        assert!(
            matches!(answer.status, 400 | 422) && answer.body["reason"].is_string(),
            "{bad} → {} {:?}",
            answer.status,
            answer.body
        );
    }
    for bad in [
        json!({"intents": ["Pre Sales"]}),
        json!({"intents": ["echo"], "thanks_zh": "   "}),
        json!({"intents": "echo"}),
    ] {
        let answer = client.put("/v1/tenants/shop/lead-policy", &bad).await;
        assert!(
            matches!(answer.status, 400 | 422) && answer.body["reason"].is_string(),
            "{bad} → {} {:?}",
            answer.status,
            answer.body
        );
    }

    let created = client
        .put(
            crm,
            &json!({"url": url, "secret": SECRET, "format": "dingtalk"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let replaced = client
        .put(
            crm,
            &json!({"url": url, "secret": SECRET, "format": "generic"}),
        )
        .await;
    assert_eq!(replaced.status, 200, "{:?}", replaced.body);
    let shown = client.get(crm).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["format"], "generic");
    assert!(shown.body.get("secret").is_none());
    assert!(
        !shown.body.to_string().contains(SECRET),
        "the secret is never echoed"
    );

    // The integration is no channel: the channels API neither lists nor reaches it.
    let channels = client.get("/v1/tenants/shop/channels").await;
    assert_eq!(channels.body["channels"], json!([]));
    assert_eq!(
        client.get("/v1/tenants/shop/channels/_crm").await.status,
        400
    );
    assert_eq!(
        client.delete("/v1/tenants/shop/channels/_crm").await.status,
        400
    );

    // Another tenant sees nothing of it, and its leads never reach it.
    assert_eq!(
        client
            .get("/v1/tenants/other/integrations/crm")
            .await
            .status,
        404
    );
    assert_eq!(
        client
            .get("/v1/tenants/other/integrations/crm/dead-letters")
            .await
            .status,
        404
    );
    set_policy(&client, "other").await;
    let asked = say(&client, "other", "c-1", "m-1", "how much is it").await;
    assert!(asked.contains("May I have your name?"), "{asked}");
    say(&client, "other", "c-1", "m-2", "I'm Eve, 13800138000").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.requests.load(Ordering::SeqCst), 0);

    let removed = client.delete(crm).await;
    assert_eq!(removed.status, 204);
    assert_eq!(client.get(crm).await.status, 404);
    assert_eq!(client.delete(crm).await.status, 404);
    node.stop().await.expect("node stops");
}
