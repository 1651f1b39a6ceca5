//! Proactive service end to end: a local receiver (checking every request's signature) behind a
//! channel's `outbound_url`; a `shipment_delayed` event reaches the customer outside quiet hours
//! (computed from the current time in the tenant's zone) and not inside, the daily cap, no
//! message while a human chat is open, the rules' validation and tenant isolation.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{TimeZone, Timelike};
use serde_json::{Value, json};
use support::receiver::{SECRET, accepted_at_least, configure, signed_message, start_receiver};
use support::{Client, config, start};

/// `HH:MM` in Shanghai, `offset_minutes` from now.
fn shanghai_hh_mm(offset_minutes: i64) -> String {
    let now_ms = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after the epoch")
            .as_millis(),
    )
    .expect("fits");
    let at = chrono_tz::Asia::Shanghai
        .timestamp_millis_opt(now_ms + offset_minutes * 60_000)
        .single()
        .expect("a time");
    format!("{:02}:{:02}", at.hour(), at.minute())
}

/// Rules with quiet hours from `from` to `to` (Shanghai time), at most `cap` a day.
fn rules(from: &str, to: &str, cap: u32) -> Value {
    json!({
        "timezone": "Asia/Shanghai",
        "quiet_hours": {"from": from, "to": to},
        "max_per_customer_per_day": cap,
        "rules": [{
            "on": "shipment_delayed",
            "text_zh": "您的订单 {order} 物流延误了，我们正在跟进。",
            "text_en": "Your order {order} is delayed; we are on it."
        }]
    })
}

async fn commerce_event(
    client: &Client,
    tenant: &str,
    id: &str,
    kind: &str,
    customer: &str,
) -> support::Answer {
    client
        .post(
            &format!("/v1/tenants/{tenant}/commerce-events"),
            &json!({"id": id, "kind": kind, "customer": customer, "order": "SO-1"}),
        )
        .await
}

/// Waits until the channel's outbox has nothing pending, then a little more.
async fn settled(client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let channel = client.get("/v1/tenants/shop/channels/hooks").await;
        if channel.body["pending"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the outbox never drained: {:?}",
            channel.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipment_delayed_event_reaches_the_customer_outside_quiet_hours_and_not_inside() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let (receiver, url) = start_receiver().await;
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
    let conversation = first["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_owned();
    accepted_at_least(&receiver, 1, Duration::from_secs(10)).await;

    // Quiet from an hour ago to an hour from now, Shanghai time: held back, and recorded so.
    let quiet = client
        .put(
            "/v1/tenants/shop/proactive-rules",
            &rules(&shanghai_hh_mm(-60), &shanghai_hh_mm(60), 2),
        )
        .await;
    assert_eq!(quiet.status, 200, "{:?}", quiet.body);
    assert_eq!(quiet.body["defaults"], false);
    let held = commerce_event(&client, "shop", "e-1", "shipment_delayed", "c-1").await;
    assert_eq!(held.status, 202, "{:?}", held.body);
    assert_eq!(held.body["decision"], "suppressed");
    assert_eq!(held.body["reason"], "quiet_hours");
    assert_eq!(held.body["message_id"], Value::Null);
    settled(&client).await;
    assert_eq!(
        receiver.accepted().len(),
        1,
        "nothing is delivered in quiet hours"
    );

    // Quiet hours later today: the next event is sent, through the customer's channel, signed, in
    // the language they wrote in.
    let later = client
        .put(
            "/v1/tenants/shop/proactive-rules",
            &rules(&shanghai_hh_mm(60), &shanghai_hh_mm(120), 2),
        )
        .await;
    assert_eq!(later.status, 200, "{:?}", later.body);
    let sent = commerce_event(&client, "shop", "e-2", "shipment_delayed", "c-1").await;
    assert_eq!(sent.status, 202, "{:?}", sent.body);
    assert_eq!(sent.body["decision"], "sent", "{:?}", sent.body);
    assert_eq!(sent.body["reason"], "rule_matched");
    assert_eq!(sent.body["conversation"], conversation.as_str());
    let message_id = sent.body["message_id"]
        .as_str()
        .expect("message id")
        .to_owned();
    let delivered = accepted_at_least(&receiver, 2, Duration::from_secs(10)).await;
    let proactive = &delivered[1];
    assert_eq!(proactive["id"], message_id.as_str());
    assert_eq!(proactive["role"], "bot");
    assert_eq!(
        proactive["text"],
        "Your order SO-1 is delayed; we are on it."
    );
    assert_eq!(proactive["customer"], "c-1");
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);

    // The same event again: the recorded decision, nothing sent twice.
    let again = commerce_event(&client, "shop", "e-2", "shipment_delayed", "c-1").await;
    assert_eq!(again.status, 202, "{:?}", again.body);
    assert_eq!(again.body["duplicate"], true);
    assert_eq!(again.body["message_id"], message_id.as_str());

    // The cap is two a day: the third is held back.
    let second = commerce_event(&client, "shop", "e-3", "shipment_delayed", "c-1").await;
    assert_eq!(second.body["decision"], "sent", "{:?}", second.body);
    let capped = commerce_event(&client, "shop", "e-4", "shipment_delayed", "c-1").await;
    assert_eq!(capped.body["decision"], "suppressed", "{:?}", capped.body);
    assert_eq!(capped.body["reason"], "daily_limit");

    // No rule for the kind, and a customer Crest cannot reach: suppressed with the reason.
    let no_rule = commerce_event(&client, "shop", "e-5", "refund_completed", "c-1").await;
    assert_eq!(no_rule.body["reason"], "no_rule", "{:?}", no_rule.body);
    let stranger = commerce_event(&client, "shop", "e-6", "shipment_delayed", "c-unknown").await;
    assert_eq!(stranger.status, 202, "{:?}", stranger.body);
    assert_eq!(stranger.body["reason"], "no_channel");

    settled(&client).await;
    let delivered = receiver.accepted();
    assert_eq!(
        delivered.len(),
        3,
        "the bot's echo and two proactive messages: {delivered:?}"
    );
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    for message in &delivered {
        *by_id
            .entry(message["id"].as_str().expect("id").to_owned())
            .or_default() += 1;
    }
    assert!(by_id.values().all(|count| *count == 1), "{delivered:?}");

    // Every decision is on record, with its reason; agents see the messages in the history.
    let record = client.get("/v1/tenants/shop/customers/c-1/proactive").await;
    assert_eq!(record.status, 200, "{:?}", record.body);
    let reasons: Vec<(String, String)> = record.body["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|decision| {
            (
                decision["id"].as_str().expect("id").to_owned(),
                decision["reason"].as_str().expect("reason").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("e-1", "quiet_hours"),
        ("e-2", "rule_matched"),
        ("e-3", "rule_matched"),
        ("e-4", "daily_limit"),
        ("e-5", "no_rule"),
    ]
    .iter()
    .map(|(id, reason)| ((*id).to_owned(), (*reason).to_owned()))
    .collect();
    assert_eq!(reasons, expected);
    let history = client
        .get(&format!("/v1/tenants/shop/conversations/{conversation}"))
        .await;
    let texts: Vec<&str> = history.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|message| message["text"].as_str())
        .collect();
    assert_eq!(
        texts
            .iter()
            .filter(|text| text.contains("is delayed"))
            .count(),
        2,
        "{texts:?}"
    );
    let metrics = client.get_text("/metrics").await.1;
    assert!(
        metrics.contains(r#"crest_proactive_messages_total{decision="sent",reason="rule_matched",trigger="shipment_delayed"} 2"#),
        "{}",
        metrics.lines().filter(|line| line.contains("proactive")).collect::<Vec<_>>().join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_proactive_message_talks_over_a_human_and_rules_are_checked_and_kept_per_tenant() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let (receiver, url) = start_receiver().await;
    let created = configure(
        &client,
        "shop",
        "hooks",
        &json!({"kind": "webhook", "secret": SECRET, "outbound_url": url, "backoff_base_ms": 20}),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);

    // A tenant that never set rules has the defaults, in Chinese and English.
    let defaults = client.get("/v1/tenants/shop/proactive-rules").await;
    assert_eq!(defaults.status, 200, "{:?}", defaults.body);
    assert_eq!(defaults.body["defaults"], true);
    assert_eq!(defaults.body["timezone"], "Asia/Shanghai");
    assert_eq!(defaults.body["quiet_hours"]["from"], "22:00");
    let delayed = defaults.body["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|rule| rule["on"] == "shipment_delayed")
        .expect("a default rule for shipment_delayed");
    assert!(
        delayed["text_zh"]
            .as_str()
            .is_some_and(|text| text.contains("延误"))
    );
    assert!(
        delayed["text_en"]
            .as_str()
            .is_some_and(|text| text.contains("delayed"))
    );

    // Never quiet, so only the human chat can hold the message back.
    let always = json!({
        "timezone": "Europe/London",
        "quiet_hours": null,
        "max_per_customer_per_day": 5,
        "rules": [{"on": "shipment_delayed", "text_zh": "延误了 {order}", "text_en": "Delayed {order}"}]
    });
    let set = client
        .put("/v1/tenants/shop/proactive-rules", &always)
        .await;
    assert_eq!(set.status, 200, "{:?}", set.body);

    let first = signed_message(node.addr, "shop", "hooks", "p-1", "c-7", "我的包裹在哪里").await;
    let conversation = first["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_owned();
    accepted_at_least(&receiver, 1, Duration::from_secs(10)).await;
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
    let held = commerce_event(&client, "shop", "e-1", "shipment_delayed", "c-7").await;
    assert_eq!(held.status, 202, "{:?}", held.body);
    assert_eq!(held.body["decision"], "suppressed");
    assert_eq!(held.body["reason"], "human_chat_open");
    settled(&client).await;
    assert_eq!(receiver.accepted().len(), 1, "{:?}", receiver.accepted());

    // Resolved by alice: the human chat is over, so the next event is sent, in Chinese.
    let resolved = client
        .post(
            &format!("/v1/tenants/shop/conversations/{conversation}/resolve"),
            &json!({"agent": "alice"}),
        )
        .await;
    assert_eq!(resolved.status, 200, "{:?}", resolved.body);
    let sent = commerce_event(&client, "shop", "e-2", "shipment_delayed", "c-7").await;
    assert_eq!(sent.body["decision"], "sent", "{:?}", sent.body);
    let delivered = accepted_at_least(&receiver, 2, Duration::from_secs(10)).await;
    assert_eq!(delivered[1]["text"], "延误了 SO-1");

    // Invalid rules are refused with every reason; nothing changes.
    for (body, needle) in [
        (
            json!({"timezone": "Mars/Olympus", "max_per_customer_per_day": 3, "rules": []}),
            "timezone",
        ),
        (
            json!({"timezone": "UTC", "quiet_hours": {"from": "25:00", "to": "08:00"}, "max_per_customer_per_day": 3, "rules": []}),
            "quiet_hours.from",
        ),
        (
            json!({"timezone": "UTC", "max_per_customer_per_day": 0, "rules": []}),
            "max_per_customer_per_day",
        ),
        (
            json!({"timezone": "UTC", "max_per_customer_per_day": 3, "rules": [{"on": "birthday", "text_zh": "生日快乐", "text_en": "Happy birthday"}]}),
            "rules[0].on",
        ),
        (
            json!({"timezone": "UTC", "max_per_customer_per_day": 3, "rules": [{"on": "silent_after_open", "text_zh": "在吗", "text_en": "Still there?"}]}),
            "after_minutes",
        ),
    ] {
        let refused = client.put("/v1/tenants/shop/proactive-rules", &body).await;
        assert_eq!(refused.status, 400, "{body}: {:?}", refused.body);
        assert_eq!(refused.body["error"], "invalid_rules", "{:?}", refused.body);
        assert!(
            refused.body["reason"]
                .as_str()
                .is_some_and(|reason| reason.contains(needle)),
            "{needle}: {:?}",
            refused.body
        );
    }
    let kept = client.get("/v1/tenants/shop/proactive-rules").await;
    assert_eq!(kept.body["timezone"], "Europe/London");
    let bad_kind = commerce_event(&client, "shop", "e-9", "order_lost", "c-7").await;
    assert_eq!(bad_kind.status, 400, "{:?}", bad_kind.body);
    let bad_customer = commerce_event(&client, "shop", "e-9", "shipment_delayed", "c 7").await;
    assert_eq!(bad_customer.status, 400, "{:?}", bad_customer.body);

    // Another tenant has its own rules and records, and cannot read this one's.
    let other = client.get("/v1/tenants/other/proactive-rules").await;
    assert_eq!(other.body["defaults"], true, "{:?}", other.body);
    let other_record = client
        .get("/v1/tenants/other/customers/c-7/proactive")
        .await;
    assert_eq!(
        other_record.body["decisions"],
        json!([]),
        "{:?}",
        other_record.body
    );
    let other_admin = client.issue_key("other", "admin", None).await;
    let intruder = Client::with_token(node.addr, &other_admin);
    let refused = intruder.get("/v1/tenants/shop/proactive-rules").await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    let refused = intruder
        .get("/v1/tenants/shop/customers/c-7/proactive")
        .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_silent_after_opening_a_chat_hears_from_crest_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(crest_infra::server::ServeConfig {
        silence_tick: Duration::from_millis(200),
        ..config(dir.path())
    })
    .await;
    let client = Client::new(node.addr);
    let (receiver, url) = start_receiver().await;
    let created = configure(
        &client,
        "shop",
        "hooks",
        &json!({"kind": "webhook", "secret": SECRET, "outbound_url": url, "backoff_base_ms": 20}),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let set = client
        .put(
            "/v1/tenants/shop/proactive-rules",
            &json!({
                "timezone": "Asia/Shanghai",
                "quiet_hours": null,
                "max_per_customer_per_day": 3,
                "rules": [{
                    "on": "silent_after_open",
                    "after_minutes": 1,
                    "text_zh": "还在吗？有什么可以帮您？",
                    "text_en": "Still there? How can we help?"
                }]
            }),
        )
        .await;
    assert_eq!(set.status, 200, "{:?}", set.body);

    let opened = signed_message(node.addr, "shop", "hooks", "p-1", "c-1", "hello").await;
    let conversation = opened["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_owned();
    accepted_at_least(&receiver, 1, Duration::from_secs(10)).await;
    // A minute of silence (the shortest delay a rule can name), then the tenant's words.
    let delivered = accepted_at_least(&receiver, 2, Duration::from_secs(120)).await;
    assert_eq!(delivered[1]["role"], "bot");
    assert_eq!(delivered[1]["text"], "Still there? How can we help?");
    assert_eq!(delivered[1]["conversation"], conversation.as_str());

    let record = client.get("/v1/tenants/shop/customers/c-1/proactive").await;
    let decisions = record.body["decisions"].as_array().expect("decisions");
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["trigger"], "silent_after_open");
    assert_eq!(decisions[0]["reason"], "rule_matched");
    assert!(
        decisions[0]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("silence:")),
        "{decisions:?}"
    );
    // Once per silence: nothing more while the customer stays quiet.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.accepted().len(), 2, "{:?}", receiver.accepted());
}
