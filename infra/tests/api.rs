//! The HTTP API of a real node (embedded journal, in-process bus, echo brain).

mod support;

use std::time::Duration;

use futures::StreamExt;
use support::{Client, config, roles, start};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_acknowledged_answered_and_read_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);

    let first = client.message("acme", "c-123", "m-1", "hello there").await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body["duplicate"], false);
    assert_eq!(first.body["seq"], 2, "Started is seq 1, the message seq 2");
    let conversation_id = first.conversation_id();
    let message_id = first.body["message_id"].as_str().expect("id").to_owned();
    assert_eq!(conversation_id.len(), 26);

    let again = client.message("acme", "c-123", "m-1", "hello there").await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["duplicate"], true);
    assert_eq!(again.body["conversation_id"], conversation_id.as_str());
    assert_eq!(again.body["message_id"], message_id.as_str());
    assert_eq!(again.body["seq"], 2);

    let conversation = client
        .conversation_until("acme", &conversation_id, |body| roles(body).len() == 2)
        .await;
    assert_eq!(roles(&conversation), vec!["customer", "bot"]);
    assert_eq!(conversation["status"], "bot");
    assert_eq!(conversation["customer"], "c-123");
    assert_eq!(conversation["messages"][0]["id"], message_id.as_str());
    assert_eq!(conversation["messages"][0]["text"], "hello there");
    assert_eq!(conversation["messages"][1]["text"], "echo: hello there");
    assert_eq!(conversation["messages"][1]["intent"], "echo");
    assert!(
        conversation["messages"][0]["at"]
            .as_str()
            .expect("at")
            .ends_with('Z')
    );

    let by_customer = client
        .get("/v1/tenants/acme/customers/c-123/conversation")
        .await;
    assert_eq!(by_customer.status, 200);
    assert_eq!(by_customer.body["id"], conversation_id.as_str());

    let events = client
        .get(&format!(
            "/v1/tenants/acme/conversations/{conversation_id}/events?after=0"
        ))
        .await;
    assert_eq!(events.status, 200);
    let types: Vec<&str> = events.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        [
            "conversation.started",
            "conversation.customer_message_received",
            "conversation.bot_replied"
        ]
    );
    assert_eq!(events.body["events"][1]["data"]["text"], "hello there");
    assert_eq!(events.body["events"][1]["idempotency_key"], "web:m-1");
    let tail = client
        .get(&format!(
            "/v1/tenants/acme/conversations/{conversation_id}/events?after=2"
        ))
        .await;
    assert_eq!(tail.body["events"].as_array().expect("events").len(), 1);
    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_open_conversation_per_customer_whatever_the_channel() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let web = client.message("acme", "c-9", "w-1", "from the web").await;
    let app = client
        .post(
            "/v1/tenants/acme/messages",
            &serde_json::json!({"channel": "app", "customer": "c-9", "id": "w-1", "text": "from the app"}),
        )
        .await;
    assert_eq!(app.status, 200);
    assert_eq!(web.body["conversation_id"], app.body["conversation_id"]);
    assert_eq!(app.body["duplicate"], false, "ids are per channel");
    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_never_see_each_other() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let in_a = client.message("shop-a", "c-1", "m-1", "hi from a").await;
    let in_b = client.message("shop-b", "c-1", "m-1", "hi from b").await;
    assert_eq!(
        in_b.body["duplicate"], false,
        "the same ids in another tenant are new"
    );
    assert_ne!(in_a.body["conversation_id"], in_b.body["conversation_id"]);
    let id_a = in_a.body["conversation_id"].as_str().expect("id");
    let cross = client
        .get(&format!("/v1/tenants/shop-b/conversations/{id_a}"))
        .await;
    assert_eq!(
        cross.status, 404,
        "a conversation of shop-a is not visible under shop-b"
    );
    let cross_events = client
        .get(&format!("/v1/tenants/shop-b/conversations/{id_a}/events"))
        .await;
    assert_eq!(cross_events.status, 404);
    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_a_human_hands_off_and_silences_the_bot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let first = client.message("acme", "c-5", "m-1", "我要转人工").await;
    let id = first.conversation_id();
    client
        .conversation_until("acme", &id, |body| body["status"] == "queued")
        .await;
    client.message("acme", "c-5", "m-2", "hello? anyone?").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let conversation = client.conversation_until("acme", &id, |_| true).await;
    let without_notices: Vec<String> = roles(&conversation)
        .into_iter()
        .filter(|role| role != "system")
        .collect();
    assert_eq!(
        without_notices,
        vec!["customer", "bot", "customer"],
        "no bot reply after the handoff (only Crest's queue notices)"
    );
    // Nobody is online: the customer is told honestly, with a ticket for a callback.
    let notices: Vec<&str> = conversation["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|message| message["role"] == "system")
        .filter_map(|message| message["text"].as_str())
        .collect();
    assert!(
        notices
            .iter()
            .any(|text| text.contains("暂无") && text.contains("工单")),
        "night-mode notice: {notices:?}"
    );
    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_4xx_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let path = "/v1/tenants/acme/messages";
    let cases: Vec<(String, u16, &str)> = vec![
        ("{not json".to_owned(), 400, "invalid_json"),
        (r#"{"channel":"web","customer":"c-1","id":"m-1"}"#.to_owned(), 422, "invalid_fields"),
        (r#"{"channel":"web","customer":"c-1","id":"m-1","text":42}"#.to_owned(), 422, "invalid_fields"),
        (r#"{"channel":"web","customer":"c-1","id":"m-1","text":"hi","x":1}"#.to_owned(), 422, "invalid_fields"),
        (r#"{"channel":"web","customer":"c-1","id":"m-1","text":"   "}"#.to_owned(), 400, "empty_text"),
        (
            serde_json::json!({"channel":"web","customer":"c-1","id":"m-1","text":"好".repeat(1366)}).to_string(),
            400,
            "text_too_long",
        ),
        (r#"{"channel":"web","customer":"c 1","id":"m-1","text":"hi"}"#.to_owned(), 400, "invalid_id"),
        (r#"{"channel":"web","customer":"c-1","id":"m/1","text":"hi"}"#.to_owned(), 400, "invalid_id"),
        (r#"{"channel":"Web!","customer":"c-1","id":"m-1","text":"hi"}"#.to_owned(), 400, "invalid_id"),
        (r#"{"channel":"web","customer":"c-1","id":"m-1","text":"a\u0000b"}"#.to_owned(), 400, "invalid_text"),
        (
            serde_json::json!({"channel":"web","customer":"c-1","id":"m-1","text":"x".repeat(20_000)}).to_string(),
            413,
            "body_too_large",
        ),
    ];
    for (body, status, error) in cases {
        let answer = client.post_raw(path, &body).await;
        assert_eq!(answer.status, status, "{body:.80}: {:?}", answer.body);
        assert_eq!(answer.body["error"], error, "{body:.80}");
        assert!(!answer.body["reason"].as_str().expect("reason").is_empty());
    }
    let bad_tenant = client.message("ACME", "c-1", "m-1", "hi").await;
    assert_eq!(
        (bad_tenant.status, bad_tenant.body["error"].as_str()),
        (400, Some("invalid_id"))
    );
    let nothing = client
        .get("/v1/tenants/acme/customers/c-1/conversation")
        .await;
    assert_eq!(nothing.status, 404, "rejected input left no conversation");

    let unknown = client
        .get("/v1/tenants/acme/conversations/01J00000000000000000000000")
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["error"], "not_found");
    let malformed = client.get("/v1/tenants/acme/conversations/not-an-id").await;
    assert_eq!(
        (malformed.status, malformed.body["error"].as_str()),
        (400, Some("invalid_id"))
    );
    let bad_after = client
        .get("/v1/tenants/acme/conversations/01J00000000000000000000000/events?after=x")
        .await;
    assert_eq!(
        (bad_after.status, bad_after.body["error"].as_str()),
        (400, Some("invalid_query"))
    );
    let nowhere = client.get("/v2/elsewhere").await;
    assert_eq!(
        (nowhere.status, nowhere.body["error"].as_str()),
        (404, Some("not_found"))
    );
    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_control_answers_503_with_retry_after_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(support::ServeConfig {
        max_in_flight: 0,
        ..config(dir.path())
    })
    .await;
    let client = Client::new(node.addr);
    let answer = client.message("acme", "c-1", "m-1", "hi").await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.body["error"], "overloaded");
    assert_eq!(answer.retry_after.as_deref(), Some("1"));
    let nothing = client
        .get("/v1/tenants/acme/customers/c-1/conversation")
        .await;
    assert_eq!(nothing.status, 404);
    let metrics = client.get_text("/metrics").await.1;
    assert!(
        metrics.contains("crest_admission_rejections_total{reason=\"overloaded\"} 1"),
        "{metrics}"
    );
    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_sends_history_then_live_events() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let first = client.message("acme", "c-7", "m-1", "first").await;
    let id = first.conversation_id();
    client
        .conversation_until("acme", &id, |body| roles(body).len() == 2)
        .await;

    let url = client
        .ws_url(&format!(
            "/v1/tenants/acme/conversations/{id}/stream?after=1"
        ))
        .await;
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects");
    let mut next = async || -> serde_json::Value {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an event in time")
            .expect("open")
            .expect("frame");
        let Message::Text(text) = frame else {
            panic!("text frame expected: {frame:?}")
        };
        serde_json::from_str(&text).expect("json event")
    };
    assert_eq!(next().await["seq"], 2, "history starts after ?after=1");
    assert_eq!(next().await["type"], "conversation.bot_replied");
    client.message("acme", "c-7", "m-2", "second").await;
    let live = next().await;
    assert_eq!(
        (live["seq"].as_u64(), live["data"]["text"].as_str()),
        (Some(4), Some("second"))
    );
    assert_eq!(next().await["data"]["text"], "echo: second");
    socket.close(None).await.expect("close");
    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    assert_eq!(client.get_text("/healthz").await, (200, "ok".to_owned()));
    assert_eq!(client.get_text("/readyz").await, (200, "ready".to_owned()));
    client.message("acme", "c-1", "m-1", "hi").await;
    let (status, metrics) = client.get_text("/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "crest_http_requests_total{method=\"POST\",route=\"/v1/tenants/{tenant}/messages\",status=\"200\"} 1",
        "crest_http_request_seconds_bucket",
        "crest_journal_append_seconds_bucket",
        "crest_journal_batch_appends_bucket",
        "crest_journal_commit_seconds_count",
        "crest_actors_active{kind=\"conversation\"} 1",
        "crest_actors_active{kind=\"customer\"} 1",
        "crest_actors_active{kind=\"shard\"} 256",
        "crest_customer_messages_total 1",
        "crest_build_info",
    ] {
        assert!(metrics.contains(name), "missing {name} in\n{metrics}");
    }
    let (status, page) = client.get_text("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("<title>Crest</title>"));
    node.stop().await.expect("clean stop");
}

/// The edges of the contract a schema-driven fuzzer found: an undeclared method on a known route
/// is 405 with `Allow` (not 403), HEAD goes where GET goes, a JSON array is not a body (at the top
/// or in a nested object), a closed ticket refuses changes with 409, and a queue cannot overflow
/// to itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_methods_array_bodies_and_state_conflicts_get_their_own_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let base = format!("http://{}", node.addr);
    let http = reqwest::Client::new();

    for path in ["/healthz", "/v1/tenants/acme/sessions"] {
        let answer = http
            .request(reqwest::Method::TRACE, format!("{base}{path}"))
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 405, "TRACE {path}");
        let allow = answer
            .headers()
            .get("allow")
            .expect("Allow")
            .to_str()
            .expect("ASCII")
            .to_owned();
        let body: serde_json::Value = answer.json().await.expect("JSON");
        assert_eq!(body["error"], "method_not_allowed", "{path}");
        let expected = if path == "/healthz" {
            "GET, HEAD"
        } else {
            "POST"
        };
        assert_eq!(allow, expected, "{path}");
    }
    let head = http
        .head(format!("{base}/healthz"))
        .send()
        .await
        .expect("answer");
    assert_eq!(head.status(), 200);

    let array = client
        .put(
            "/v1/tenants/acme/queues/general",
            &serde_json::json!([null, null]),
        )
        .await;
    assert_eq!(array.status, 422, "{:?}", array.body);
    assert_eq!(array.body["error"], "invalid_fields");
    assert!(
        array.body["reason"]
            .as_str()
            .expect("a string")
            .contains("a JSON object"),
        "{:?}",
        array.body
    );
    let nested = client
        .post(
            "/v1/tenants/acme/tickets",
            &serde_json::json!({"kind": "other", "sla": [60, 60]}),
        )
        .await;
    assert_eq!(nested.status, 422, "{:?}", nested.body);

    let itself = client
        .put(
            "/v1/tenants/acme/queues/general",
            &serde_json::json!({"overflow_to": "general"}),
        )
        .await;
    assert_eq!(itself.status, 400, "{:?}", itself.body);
    assert_eq!(itself.body["error"], "invalid_overflow");

    let ticket = client
        .post(
            "/v1/tenants/acme/tickets",
            &serde_json::json!({"kind": "other"}),
        )
        .await;
    assert_eq!(ticket.status, 201, "{:?}", ticket.body);
    let path = format!(
        "/v1/tenants/acme/tickets/{}",
        ticket.body["id"].as_str().expect("a string")
    );
    for status in ["solved", "closed"] {
        let changed = client
            .patch(&path, &serde_json::json!({"status": status}))
            .await;
        assert_eq!(changed.status, 200, "{status}: {:?}", changed.body);
    }
    let late = client
        .patch(
            &path,
            &serde_json::json!({"comment": {"author": "customer", "text": "one more thing"}}),
        )
        .await;
    assert_eq!(late.status, 409, "{:?}", late.body);
    assert_eq!(late.body["error"], "ticket_closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_orders_come_with_their_parcels_from_the_commerce_port() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    // The embedded demo shop: c-1001 has orders, one of them shipped.
    let answer = client
        .get("/v1/tenants/shop/customers/c-1001/orders?limit=50")
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["customer"], "c-1001");
    let orders = answer.body["orders"].as_array().expect("orders");
    assert!(!orders.is_empty(), "{:?}", answer.body);
    assert!(
        orders
            .iter()
            .all(|order| order["customer"] == "c-1001" && order["id"].is_string()),
        "{:?}",
        answer.body
    );
    let shipped = orders
        .iter()
        .find(|order| order["shipment"].is_object())
        .expect("a shipped order");
    assert_eq!(shipped["shipment"]["order_id"], shipped["id"]);
    let one = client
        .get("/v1/tenants/shop/customers/c-1001/orders?limit=1")
        .await;
    assert_eq!(one.body["orders"].as_array().map(Vec::len), Some(1));
    let nobody = client.get("/v1/tenants/shop/customers/c-none/orders").await;
    assert_eq!(nobody.body["orders"], serde_json::json!([]));
    let bad = client
        .get("/v1/tenants/shop/customers/c-1001/orders?limit=many")
        .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    node.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_get_knowledge_suggestions_their_tenants_own_documents_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let upload = client
        .post(
            "/v1/tenants/shop/kb/documents",
            &serde_json::json!({
                "title": "Deposit rules",
                "format": "markdown",
                "body": "# Deposit rules\n\nPre-sale deposits for the Double-11 presale are refundable within 3 days at the Crest test shop.",
            }),
        )
        .await;
    assert_eq!(upload.status, 201, "{:?}", upload.body);
    let found = client
        .get("/v1/tenants/shop/kb/search?q=presale%20deposit%20refundable&limit=3")
        .await;
    assert_eq!(found.status, 200, "{:?}", found.body);
    let suggestions = found.body["suggestions"].as_array().expect("suggestions");
    assert!(
        !suggestions.is_empty() && suggestions.len() <= 3,
        "{:?}",
        found.body
    );
    assert_eq!(suggestions[0]["source"], "tenant", "{:?}", found.body);
    assert_eq!(suggestions[0]["document_id"], upload.body["id"]);
    assert!(
        suggestions[0]["passage"]
            .as_str()
            .is_some_and(|passage| passage.contains("refundable")),
        "{:?}",
        found.body
    );
    // Another tenant never gets this tenant's documents.
    let other = client
        .get("/v1/tenants/other/kb/search?q=presale%20deposit%20refundable")
        .await;
    assert!(
        other.body["suggestions"]
            .as_array()
            .expect("suggestions")
            .iter()
            .all(|suggestion| suggestion["source"] == "pack"),
        "{:?}",
        other.body
    );
    for bad in ["q=%20%20", "limit=3", "q=x&limit=lots"] {
        let answer = client
            .get(&format!("/v1/tenants/shop/kb/search?{bad}"))
            .await;
        assert_eq!(answer.status, 400, "{bad}: {:?}", answer.body);
    }
    node.stop().await.expect("stops");
}
