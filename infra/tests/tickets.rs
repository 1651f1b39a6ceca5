//! Tickets as their own entities: SLA deadlines fire within a second of their time whether the
//! ticket's actor is resident or passivated, and after a restart (the desk's durable deadline
//! index, not a timer per actor); the desk's decisions to open a ticket or check a deadline reach
//! the ticket exactly once across a crash between append and delivery; a ticket's own events.

mod support;

use std::time::{Duration, Instant};

use crest_actors::reactor::ReactorFaults;
use crest_infra::server::RunningServer;
use serde_json::{Value, json};
use support::{Client, ServeConfig, config, start};

const T: &str = "/v1/tenants/shop";

async fn until(what: &str, patience: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !done().await {
        assert!(Instant::now() < deadline, "not reached: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A node whose idle entities passivate within a fraction of a second.
fn passivating(dir: &std::path::Path) -> ServeConfig {
    let mut config = config(dir);
    config.node.entities.idle_timeout = Duration::from_millis(150);
    config.node.entities.idle_check_interval = Duration::from_millis(50);
    config
}

async fn open_ticket(client: &Client, first_response_s: u64, conversation: Option<&str>) -> String {
    let mut body = json!({"kind": "complaint", "subject": "parcel lost / 包裹丢失",
                          "sla": {"first_response_s": first_response_s, "resolution_s": 3600}});
    if let Some(conversation) = conversation {
        body["conversation"] = json!(conversation);
    }
    let answer = client.post(&format!("{T}/tickets"), &body).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "open");
    answer.body["id"].as_str().expect("id").to_owned()
}

/// The ticket's own events as `(type, data, at in ms)`.
async fn ticket_events(client: &Client, ticket: &str) -> Vec<(String, Value, u64)> {
    let answer = client.get(&format!("{T}/tickets/{ticket}/events")).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| {
            let at = humantime::parse_rfc3339(event["at"].as_str().expect("at")).expect("RFC 3339");
            let at = at
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970");
            (
                event["type"].as_str().expect("type").to_owned(),
                event["data"].clone(),
                u64::try_from(at.as_millis()).expect("fits"),
            )
        })
        .collect()
}

fn of_type<'a>(events: &'a [(String, Value, u64)], kind: &str) -> Vec<&'a (String, Value, u64)> {
    events
        .iter()
        .filter(|(event_type, _, _)| event_type == kind)
        .collect()
}

async fn passivations(client: &Client) -> f64 {
    let (_, text) = client.get_text("/metrics").await;
    text.lines()
        .find(|line| line.starts_with("crest_actor_passivations_total{kind=\"ticket\"}"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

/// Waits for the ticket's first-response breach; returns how late it fired after its deadline.
async fn breach_lateness_ms(client: &Client, ticket: &str) -> u64 {
    let mut breach = None;
    until(
        "the first-response SLA breaches",
        Duration::from_secs(10),
        async || {
            let events = ticket_events(client, ticket).await;
            breach = of_type(&events, "ticket.sla_breached")
                .first()
                .map(|(_, data, at)| {
                    assert_eq!(data["sla"], "first_response", "{data}");
                    at - data["due_ms"].as_u64().expect("due_ms")
                });
            breach.is_some()
        },
    )
    .await;
    breach.expect("breached")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sla_deadline_fires_within_a_second_when_the_ticket_is_passivated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(passivating(dir.path())).await;
    let client = Client::new(node.addr);
    let ticket = open_ticket(&client, 2, None).await;
    until(
        "the idle ticket actor passivates",
        Duration::from_secs(5),
        async || passivations(&client).await >= 1.0,
    )
    .await;
    let late = breach_lateness_ms(&client, &ticket).await;
    assert!(late < 1_000, "fired {late} ms after its deadline");
    // Recorded once, and the ticket says so.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = ticket_events(&client, &ticket).await;
    assert_eq!(
        of_type(&events, "ticket.sla_breached").len(),
        1,
        "{events:?}"
    );
    let view = client.get(&format!("{T}/tickets/{ticket}")).await.body;
    assert_eq!(view["breached"], json!(["first_response"]), "{view}");
    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sla_deadline_survives_a_restart_and_a_met_one_never_fires() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(passivating(dir.path())).await;
    let client = Client::new(node.addr);
    let late_ticket = open_ticket(&client, 3, None).await;
    let answered = open_ticket(&client, 3, None).await;
    let reply = client
        .patch(
            &format!("{T}/tickets/{answered}"),
            &json!({"comment": {"author": "alice", "text": "we are on it / 正在处理"}}),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert!(
        reply.body["first_response_at"].is_string(),
        "{:?}",
        reply.body
    );
    node.stop().await.expect("clean stop");

    let node = start(passivating(dir.path())).await;
    let client = Client::new(node.addr);
    let late = breach_lateness_ms(&client, &late_ticket).await;
    assert!(
        late < 1_000,
        "fired {late} ms after its deadline, across a restart"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = ticket_events(&client, &answered).await;
    assert!(
        of_type(&events, "ticket.sla_breached").is_empty(),
        "a met first response is no breach: {events:?}"
    );
    // Routing watched both deadlines; the met one never reached the ticket as a check.
    let desk = client.get(&format!("{T}/routing/events")).await.body;
    let reached: Vec<&Value> = desk["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| event["type"] == "desk.ticket_deadline_reached")
        .collect();
    assert!(
        reached
            .iter()
            .all(|event| event["data"]["ticket"] != answered.as_str()),
        "{reached:?}"
    );
    assert!(
        reached
            .iter()
            .any(|event| event["data"]["ticket"] == late_ticket.as_str()),
        "{reached:?}"
    );
    node.stop().await.expect("clean stop");
}

/// Stops the reactor at the batch holding `halt_at` (before delivering it, or after but before
/// recording progress), restarts, and returns the restarted node's client.
async fn across_a_crash(
    dir: &std::path::Path,
    halt_at: &str,
    after_delivery: bool,
    scenario: impl AsyncFnOnce(&Client) -> String,
) -> (RunningServer, Client, String) {
    let mut faulty = config(dir);
    faulty.node.reactor_faults = ReactorFaults {
        halt_at: Some(halt_at.to_owned()),
        after_delivery,
    };
    let node = start(faulty).await;
    let client = Client::new(node.addr);
    let subject = scenario(&client).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    node.stop().await.expect("orderly stop");
    let node = start(config(dir)).await;
    let client = Client::new(node.addr);
    (node, client, subject)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_ticket_opens_exactly_once_across_a_crash() {
    for after_delivery in [false, true] {
        let dir = tempfile::tempdir().expect("temp dir");
        let (node, client, conversation) = across_a_crash(
            dir.path(),
            "desk.ticket_created",
            after_delivery,
            async |client| {
                let queue = client
                    .put(
                        &format!("{T}/queues/after_sales"),
                        &json!({"max_waiting": 0}),
                    )
                    .await;
                assert_eq!(queue.status, 200, "{:?}", queue.body);
                let conversation = client
                    .message("shop", "c1", "m1", "我要退货")
                    .await
                    .conversation_id();
                let handoff = client
                    .post(
                        &format!("{T}/conversations/{conversation}/handoff"),
                        &json!({"reason": "customer_request", "group": "after_sales"}),
                    )
                    .await;
                assert_eq!(handoff.status, 200, "{:?}", handoff.body);
                conversation
            },
        )
        .await;
        let case = format!("after delivery: {after_delivery}");
        let mut listed = Vec::new();
        until(
            &format!("{case}: the callback ticket is listed"),
            Duration::from_secs(10),
            async || {
                let answer = client
                    .get(&format!("{T}/tickets?conversation={conversation}"))
                    .await;
                listed = answer.body["tickets"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                !listed.is_empty()
            },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let answer = client
            .get(&format!("{T}/tickets?conversation={conversation}"))
            .await;
        let listed = answer.body["tickets"].as_array().expect("tickets");
        assert_eq!(listed.len(), 1, "{case}: {listed:?}");
        assert_eq!(listed[0]["kind"], "callback", "{case}");
        let ticket = listed[0]["id"].as_str().expect("id");
        let events = ticket_events(&client, ticket).await;
        assert_eq!(
            of_type(&events, "ticket.opened").len(),
            1,
            "{case}: {events:?}"
        );
        node.stop().await.expect("clean stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reached_deadline_breaches_exactly_once_across_a_crash() {
    for after_delivery in [false, true] {
        let dir = tempfile::tempdir().expect("temp dir");
        let (node, client, ticket) = across_a_crash(
            dir.path(),
            "desk.ticket_deadline_reached",
            after_delivery,
            async |client| {
                let ticket = open_ticket(client, 1, None).await;
                // The deadline passes and routing reaches it; the reactor halts there.
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                ticket
            },
        )
        .await;
        let case = format!("after delivery: {after_delivery}");
        until(
            &format!("{case}: breached"),
            Duration::from_secs(10),
            async || {
                !of_type(
                    &ticket_events(&client, &ticket).await,
                    "ticket.sla_breached",
                )
                .is_empty()
            },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let events = ticket_events(&client, &ticket).await;
        assert_eq!(
            of_type(&events, "ticket.sla_breached").len(),
            1,
            "{case}: {events:?}"
        );
        node.stop().await.expect("clean stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tickets_events_are_its_own_and_stay_in_its_tenant() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let agent = client
        .put(&format!("{T}/agents/alice"), &json!({"status": "online"}))
        .await;
    assert_eq!(agent.status, 200, "{:?}", agent.body);
    let ticket = open_ticket(&client, 600, None).await;
    let changed = client
        .patch(
            &format!("{T}/tickets/{ticket}"),
            &json!({"assignee": "alice", "status": "pending"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_eq!(changed.body["assignee"], "alice");
    let events = ticket_events(&client, &ticket).await;
    let types: Vec<&str> = events.iter().map(|(kind, _, _)| kind.as_str()).collect();
    assert_eq!(
        types,
        ["ticket.opened", "ticket.assigned", "ticket.status_changed"]
    );
    let page = client
        .get(&format!("{T}/tickets/{ticket}/events?after=1&limit=1"))
        .await;
    assert_eq!(page.body["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(page.body["events"][0]["type"], "ticket.assigned");
    // The assignee's own record hears of it.
    until(
        "alice's record holds the ticket",
        Duration::from_secs(5),
        async || {
            let answer = client.get(&format!("{T}/agents/alice/events")).await;
            answer.body["events"].as_array().is_some_and(|events| {
                events.iter().any(|event| {
                    event["type"] == "agent.ticket_assigned"
                        && event["data"]["ticket"] == ticket.as_str()
                })
            })
        },
    )
    .await;
    // Another tenant does not see it; an unknown ticket has no events.
    let other = client
        .get(&format!("/v1/tenants/other/tickets/{ticket}/events"))
        .await;
    assert_eq!(other.status, 404, "{:?}", other.body);
    let other = client
        .get(&format!("/v1/tenants/other/tickets/{ticket}"))
        .await;
    assert_eq!(other.status, 404, "{:?}", other.body);
    let listed = client.get("/v1/tenants/other/tickets").await;
    assert_eq!(listed.body["tickets"], json!([]));
    let unknown = client
        .get(&format!("{T}/tickets/01JAAAAAAAAAAAAAAAAAAAAAAA/events"))
        .await;
    assert_eq!(unknown.status, 404, "{:?}", unknown.body);
    let bad = client.get(&format!("{T}/tickets/not-a-ulid/events")).await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    node.stop().await.expect("clean stop");
}
