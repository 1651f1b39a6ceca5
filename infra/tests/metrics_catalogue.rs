//! The metrics catalogue (`docs/METRICS.md`) against a real node: after a scripted scenario
//! (customers, bot answers, handoffs, an accepted offer, agent replies, a transfer, resolutions,
//! CSAT ratings, a ticket whose SLA is breached, a refused handoff, a SKU mention), every metric
//! `/metrics` shows is documented, every documented metric is shown, and the business figures agree
//! with their definitions recomputed from the journaled events.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Client, config, family_of, samples, start};

const CATALOGUE: &str = include_str!("../../docs/METRICS.md");
const T: &str = "/v1/tenants/shop";

/// Documented metrics that only appear once their event happened and that this scenario does not
/// provoke (an overloaded node, a failing bus, passivation, a lagging bus; the test brain detects
/// no emotions, no lead is captured: `infra/tests/leads.rs` checks that one).
const NOT_PROVOKED: [&str; 7] = [
    "crest_leads_captured_total",
    "crest_customer_emotions_total",
    "crest_admission_rejections_total",
    "crest_bus_publish_failures_total",
    "crest_actor_passivations_total",
    "crest_projection_duplicates_total",
    "crest_projection_gap_reads_total",
];

/// The catalogued names a node alone exposes: every section but Cluster (checked against cluster
/// nodes in `infra/tests/cluster.rs`).
fn documented() -> BTreeSet<String> {
    CATALOGUE
        .split("\n## ")
        .filter(|section| !section.starts_with("Cluster"))
        .flat_map(str::lines)
        .filter_map(|line| line.strip_prefix("| `crest_"))
        .filter_map(|rest| rest.split('`').next())
        .map(|name| format!("crest_{name}"))
        .collect()
}

/// Sum of the series of `name` whose labels contain every `key="value"` of `with`.
fn total(samples: &BTreeMap<String, f64>, name: &str, with: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| {
            series.split('{').next() == Some(name)
                && with.iter().all(|label| series.contains(label))
        })
        .map(|(_, value)| value)
        .sum()
}

async fn events(client: &Client, path: &str) -> Vec<Value> {
    let answer = client.get(path).await;
    assert_eq!(answer.status, 200, "{path}: {:?}", answer.body);
    answer.body["events"].as_array().expect("events").clone()
}

fn at_ms(event: &Value) -> f64 {
    let at = event["at"].as_str().expect("at");
    let time = humantime::parse_rfc3339(at).expect("rfc3339");
    time.duration_since(std::time::UNIX_EPOCH)
        .expect("after epoch")
        .as_secs_f64()
        * 1000.0
}

#[allow(clippy::too_many_lines)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_matches_metrics_and_business_figures_match_the_events() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    for agent in ["alice", "bob"] {
        let answer = client
            .put(
                &format!("{T}/agents/{agent}"),
                &json!({"status": "online", "groups": ["after_sales"], "capacity": 2}),
            )
            .await;
        assert_eq!(answer.status, 200);
    }
    client
        .put(&format!("{T}/queues/pre_sales"), &json!({"max_waiting": 0}))
        .await;
    let mut conversations = Vec::new();
    for (customer, text) in [
        ("c1", "hello there"),
        ("c2", "SKU1003 的耳机有货吗"),
        ("c3", "我要转人工"),
        ("c4", "is the promo still on?"),
    ] {
        let id = client
            .message("shop", customer, "m1", text)
            .await
            .conversation_id();
        client
            .conversation_until("shop", &id, |c| {
                c["messages"].as_array().is_some_and(|m| m.len() >= 2)
            })
            .await;
        conversations.push(id);
    }
    let (c1, c2, c4) = (&conversations[0], &conversations[1], &conversations[3]);
    // c2 goes to after-sales, is accepted, answered, transferred, answered, resolved, rated.
    let handoff = client
        .post(
            &format!("{T}/conversations/{c2}/handoff"),
            &json!({"reason": "anger", "group": "after_sales"}),
        )
        .await;
    assert_eq!(handoff.status, 200, "{:?}", handoff.body);
    // Routing hears of the handoff through the reactor and offers the chat at once.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let offered_to = loop {
        let queue = client.get(&format!("{T}/queues/after_sales")).await.body;
        let offer = queue["offered"].as_array().and_then(|offers| {
            offers
                .iter()
                .find(|offer| offer["conversation"] == c2.as_str())
                .and_then(|offer| offer["agent"].as_str().map(str::to_owned))
        });
        if let Some(agent) = offer {
            break agent;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never offered: {queue}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let other = if offered_to == "alice" {
        "bob"
    } else {
        "alice"
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let accepted = client
        .post(
            &format!("{T}/agents/{offered_to}/offers/{c2}/accept"),
            &json!({}),
        )
        .await;
    assert_eq!(accepted.status, 200);
    let reply = json!({"agent": offered_to, "id": "r1", "text": "您好，我来帮您查"});
    assert_eq!(
        client
            .post(&format!("{T}/conversations/{c2}/agent-messages"), &reply)
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let transfer = client
        .post(
            &format!("{T}/conversations/{c2}/transfer"),
            &json!({"agent": other}),
        )
        .await;
    assert_eq!(transfer.status, 200, "{:?}", transfer.body);
    let reply = json!({"agent": other, "id": "r2", "text": "已为您处理好"});
    assert_eq!(
        client
            .post(&format!("{T}/conversations/{c2}/agent-messages"), &reply)
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resolved = client
        .post(
            &format!("{T}/conversations/{c2}/resolve"),
            &json!({"agent": other}),
        )
        .await;
    assert_eq!(resolved.status, 200, "{:?}", resolved.body);
    assert_eq!(
        client
            .post(
                &format!("{T}/conversations/{c2}/csat"),
                &json!({"score": 5})
            )
            .await
            .status,
        200
    );
    // c1 is resolved by the bot and rated low (a quality rule fires).
    assert_eq!(
        client
            .post(&format!("{T}/conversations/{c1}/resolve"), &json!({}))
            .await
            .status,
        200
    );
    assert_eq!(
        client
            .post(
                &format!("{T}/conversations/{c1}/csat"),
                &json!({"score": 2})
            )
            .await
            .status,
        200
    );
    // c4's handoff to a group whose queue is full is refused.
    let refused = client
        .post(
            &format!("{T}/conversations/{c4}/handoff"),
            &json!({"reason": "customer_request", "group": "pre_sales"}),
        )
        .await;
    assert_eq!(refused.status, 200);
    // A ticket breaches its first-response SLA, then is solved.
    let ticket = client
        .post(
            &format!("{T}/tickets"),
            &json!({"kind": "refund", "subject": "refund", "sla": {"first_response_s": 1}}),
        )
        .await;
    assert_eq!(ticket.status, 201);
    let ticket = ticket.body["id"].as_str().expect("id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    while client.get(&format!("{T}/tickets/{ticket}")).await.body["breached"]
        != json!(["first_response"])
    {
        assert!(Instant::now() < deadline, "SLA breach");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let solved = client
        .patch(
            &format!("{T}/tickets/{ticket}"),
            &json!({"status": "solved"}),
        )
        .await;
    assert_eq!(solved.status, 200);

    // Wait for the projections to see the last events.
    let deadline = Instant::now() + Duration::from_secs(15);
    let metrics = loop {
        let (_, text) = client.get_text("/metrics").await;
        let parsed = samples(&text);
        if total(&parsed, "crest_tickets_solved_total", &[]) >= 1.0
            && total(&parsed, "crest_csat_ratings_total", &[]) >= 2.0
            && total(&parsed, "crest_quality_score_count", &[]) >= 2.0
        {
            break (text, parsed);
        }
        assert!(
            Instant::now() < deadline,
            "projections did not catch up:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (text, values) = metrics;

    // The catalogue and /metrics list the same crest_ metrics.
    let exposed: BTreeSet<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split(' ').next())
        .filter(|name| name.starts_with("crest_"))
        .map(str::to_owned)
        .collect();
    let documented = documented();
    let undocumented: Vec<&String> = exposed.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "exposed but not in docs/METRICS.md: {undocumented:?}"
    );
    let missing: Vec<&String> = documented
        .difference(&exposed)
        .filter(|name| !NOT_PROVOKED.contains(&name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "documented but not exposed after the scenario: {missing:?}"
    );
    assert!(values.keys().all(|series| !family_of(series).is_empty()));

    // Recompute the business figures from the journaled events.
    let mut started = 0.0;
    let mut handoffs: HashMap<String, f64> = HashMap::new();
    let mut bot_frt = Vec::new();
    let mut agent_frt = Vec::new();
    let mut csat: HashMap<u64, f64> = HashMap::new();
    let mut resolved_first_contact = 0.0;
    let mut resolved = 0.0;
    for id in &conversations {
        let events = events(&client, &format!("{T}/conversations/{id}/events")).await;
        let mut first_customer = None;
        let mut bot_answered = false;
        let mut handoff_at = None;
        let mut owner: Option<String> = None;
        let mut transferred = false;
        let mut resolutions = 0;
        for event in &events {
            let data = &event["data"];
            match event["type"].as_str().expect("type") {
                "conversation.started" => started += 1.0,
                "conversation.customer_message_received" => {
                    first_customer.get_or_insert(at_ms(event));
                }
                "conversation.bot_replied" if !bot_answered => {
                    bot_answered = true;
                    bot_frt.push(at_ms(event) - first_customer.expect("a customer message first"));
                }
                "conversation.handoff_requested" => {
                    let reason = data["reason"].as_str().map_or_else(
                        || {
                            data["reason"]
                                .as_object()
                                .expect("reason")
                                .keys()
                                .next()
                                .expect("variant")
                                .clone()
                        },
                        str::to_owned,
                    );
                    *handoffs.entry(reason).or_default() += 1.0;
                    handoff_at = Some(at_ms(event));
                }
                "conversation.agent_assigned" => {
                    let agent = data["agent"].as_str().expect("agent").to_owned();
                    if owner.as_ref().is_some_and(|owner| owner != &agent) {
                        transferred = true;
                    }
                    owner = Some(agent);
                }
                "conversation.agent_replied" if data["internal"] == false => {
                    if let Some(handoff) = handoff_at.take() {
                        agent_frt.push(at_ms(event) - handoff);
                    }
                }
                "conversation.resolved" => {
                    resolutions += 1;
                    resolved += 1.0;
                    if resolutions == 1 && !transferred {
                        resolved_first_contact += 1.0;
                    }
                }
                "conversation.csat_rated" => {
                    *csat
                        .entry(data["score"].as_u64().expect("score"))
                        .or_default() += 1.0;
                }
                _ => {}
            }
        }
    }
    assert_eq!(
        total(&values, "crest_conversations_started_total", &[]),
        started
    );
    for (reason, count) in &handoffs {
        let label = format!("reason=\"{reason}\"");
        assert_eq!(
            total(&values, "crest_handoffs_total", &[&label]),
            *count,
            "handoffs {reason}"
        );
    }
    assert_eq!(
        total(&values, "crest_conversations_resolved_total", &[]),
        resolved
    );
    assert_eq!(
        total(
            &values,
            "crest_conversations_resolved_total",
            &["first_contact=\"true\""]
        ),
        resolved_first_contact
    );
    assert!(
        resolved_first_contact < resolved,
        "the transferred resolution is not first contact"
    );
    for (score, count) in &csat {
        let label = format!("score=\"{score}\"");
        assert_eq!(
            total(&values, "crest_csat_ratings_total", &[&label]),
            *count
        );
    }
    let close = |metric: f64, recomputed_ms: f64| (metric - recomputed_ms / 1000.0).abs() < 1e-6;
    let bot = "responder=\"bot\"";
    assert_eq!(
        total(&values, "crest_first_response_seconds_count", &[bot]),
        bot_frt.len() as f64
    );
    assert!(close(
        total(&values, "crest_first_response_seconds_sum", &[bot]),
        bot_frt.iter().sum()
    ));
    let agent = "responder=\"agent\"";
    assert_eq!(
        total(&values, "crest_first_response_seconds_count", &[agent]),
        agent_frt.len() as f64
    );
    assert!(close(
        total(&values, "crest_first_response_seconds_sum", &[agent]),
        agent_frt.iter().sum()
    ));

    // AHT and the transfer rate from the desk's events.
    let desk = events(&client, &format!("{T}/routing/events")).await;
    let mut assigned_at: HashMap<String, f64> = HashMap::new();
    let mut handle = Vec::new();
    let mut accepted = 0.0;
    let mut transfers = 0.0;
    for event in &desk {
        let data = &event["data"];
        let conversation = data["conversation"].as_str().unwrap_or_default().to_owned();
        match event["type"].as_str().expect("type") {
            "desk.chat_assigned" => {
                if let Some(start) = assigned_at.insert(conversation, at_ms(event)) {
                    handle.push(at_ms(event) - start);
                }
                match data["reason"].as_str() {
                    Some("accepted") => accepted += 1.0,
                    Some("transfer") => transfers += 1.0,
                    _ => {}
                }
            }
            "desk.chat_ended" | "desk.chat_queued" => {
                if let Some(start) = assigned_at.remove(&conversation) {
                    handle.push(at_ms(event) - start);
                }
            }
            _ => {}
        }
    }
    assert_eq!(
        total(&values, "crest_handle_time_seconds_count", &[]),
        handle.len() as f64
    );
    assert!(close(
        total(&values, "crest_handle_time_seconds_sum", &[]),
        handle.iter().sum()
    ));
    assert_eq!(
        total(
            &values,
            "crest_chat_assignments_total",
            &["reason=\"accepted\""]
        ),
        accepted
    );
    assert_eq!(
        total(
            &values,
            "crest_chat_assignments_total",
            &["reason=\"transfer\""]
        ),
        transfers
    );
    assert!(transfers >= 1.0 && accepted >= 1.0);
    assert_eq!(
        total(
            &values,
            "crest_sla_breaches_total",
            &["sla=\"first_response\""]
        ),
        1.0
    );
    assert_eq!(
        total(
            &values,
            "crest_tickets_solved_total",
            &["within_sla=\"false\""]
        ),
        1.0
    );
    assert_eq!(
        total(
            &values,
            "crest_queue_refusals_total",
            &["group=\"pre_sales\""]
        ),
        1.0
    );
    assert!(
        total(
            &values,
            "crest_voc_sku_mentions_total",
            &["sku=\"SKU1003\""]
        ) >= 1.0
    );

    // The quality inspection is readable through the API, with the rules that fired.
    let inspection = client.get(&format!("{T}/quality/{c1}")).await;
    assert_eq!(inspection.status, 200, "{:?}", inspection.body);
    let fired: Vec<&str> = inspection.body["fired"]
        .as_array()
        .expect("fired")
        .iter()
        .filter_map(|rule| rule["rule"].as_str())
        .collect();
    assert!(fired.contains(&"low_csat"), "{fired:?}");
    assert!(inspection.body["score"].as_u64().expect("score") < 100);
    let voc = client.get(&format!("{T}/voc?hours=1")).await;
    assert_eq!(voc.body["top_skus"][0]["sku"], "SKU1003", "{:?}", voc.body);
    node.stop().await.expect("orderly stop");
}
