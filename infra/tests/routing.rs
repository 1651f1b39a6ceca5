//! Agents, queues, offers, transfer, resolve, tickets and the agent WebSocket through the HTTP API
//! of a real node, and an offer timer that survives `kill -9`.

mod support;

use std::time::{Duration, Instant};

use crest_actors::desk::DeskSettings;
use futures::StreamExt;
use serde_json::{Value, json};
use support::{Client, config, free_port, serve_process, start};

const T: &str = "/v1/tenants/shop";

async fn put(client: &Client, path: &str, body: &Value) -> support::Answer {
    client.put(path, body).await
}

async fn agent_online(client: &Client, agent: &str, capacity: u16) {
    let answer = put(
        client,
        &format!("{T}/agents/{agent}"),
        &json!({"status": "online", "groups": ["after_sales"], "capacity": capacity, "languages": ["zh", "en"]}),
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}

/// Opens a conversation for `customer`, hands it off to after-sales and waits until routing has
/// decided on it (queued and dispatched, or refused): routing hears of handoffs through the
/// reactor, after the handoff is acknowledged.
async fn handoff(client: &Client, customer: &str, reason: &str) -> String {
    let id = request_handoff(client, customer, reason).await;
    until("routing decided on the handoff", async || {
        desk_events(client).await.iter().any(|event| {
            matches!(
                event["type"].as_str(),
                Some("desk.chat_queued" | "desk.chat_refused")
            ) && event["data"]["conversation"] == id.as_str()
        })
    })
    .await;
    id
}

/// Opens a conversation for `customer` and asks for a handoff to after-sales.
async fn request_handoff(client: &Client, customer: &str, reason: &str) -> String {
    let id = client
        .message("shop", customer, "m1", "我的快递三天没动了")
        .await
        .conversation_id();
    let answer = client
        .post(
            &format!("{T}/conversations/{id}/handoff"),
            &json!({"reason": reason, "group": "after_sales"}),
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    id
}

async fn agent(client: &Client, agent: &str) -> Value {
    let answer = client.get(&format!("{T}/agents/{agent}")).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body
}

fn ids(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|id| id.as_str().expect("id").to_owned())
        .collect()
}

async fn desk_events(client: &Client) -> Vec<Value> {
    let answer = client.get(&format!("{T}/routing/events")).await;
    assert_eq!(answer.status, 200);
    answer.body["events"].as_array().expect("events").clone()
}

fn events_of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|event| event["type"] == kind)
        .collect()
}

/// Capacity is never exceeded: checked after every step.
async fn assert_capacity(client: &Client, agents: &[&str]) {
    for name in agents {
        let view = agent(client, name).await;
        let load = ids(&view["chats"]).len() + ids(&view["offers"]).len();
        let capacity =
            usize::try_from(view["capacity"].as_u64().expect("capacity")).expect("small");
        assert!(load <= capacity, "{name} over capacity: {view}");
    }
}

async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done().await {
        assert!(Instant::now() < deadline, "not reached: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_capacity_transfer_resolve_and_tickets_over_the_api() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let agents = ["alice", "bob"];
    agent_online(&client, "alice", 1).await;
    agent_online(&client, "bob", 1).await;

    // An angry customer is offered at once (the handoff answer comes after the dispatch).
    let angry = handoff(&client, "angry", "anger").await;
    let offered_to: Vec<String> = [agent(&client, "alice").await, agent(&client, "bob").await]
        .iter()
        .filter(|view| ids(&view["offers"]).contains(&angry))
        .map(|view| view["agent"].as_str().expect("agent").to_owned())
        .collect();
    assert_eq!(
        offered_to,
        ["alice"],
        "offered to exactly one agent, the longest idle"
    );
    let offer = desk_events(&client).await;
    let offer = events_of(&offer, "desk.chat_offered");
    assert_eq!(offer.len(), 1);
    assert_eq!(
        offer[0]["data"]["candidates"]
            .as_array()
            .expect("candidates")
            .len(),
        2
    );
    assert!(
        offer[0]["data"]["reason"]
            .as_str()
            .expect("reason")
            .contains("anger")
    );
    let accepted = client
        .post(
            &format!("{T}/agents/alice/offers/{angry}/accept"),
            &json!({}),
        )
        .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.body);
    let conversation = client
        .conversation_until("shop", &angry, |c| c["status"] == "assigned")
        .await;
    assert_eq!(conversation["agent"], "alice");
    assert_capacity(&client, &agents).await;

    // Bob steps away; a normal customer waits, then a VIP arrives later and goes first.
    put(
        &client,
        &format!("{T}/agents/bob"),
        &json!({"status": "away"}),
    )
    .await;
    let normal = handoff(&client, "normal", "customer_request").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let tier = put(
        &client,
        &format!("{T}/customers/vip"),
        &json!({"tier": "vip"}),
    )
    .await;
    assert_eq!(tier.status, 200);
    let vip = handoff(&client, "vip", "customer_request").await;
    let queue = client.get(&format!("{T}/queues/after_sales")).await.body;
    let waiting: Vec<&str> = queue["waiting"]
        .as_array()
        .expect("waiting")
        .iter()
        .map(|chat| chat["conversation"].as_str().expect("id"))
        .collect();
    assert_eq!(waiting, [vip.as_str(), normal.as_str()], "{queue}");
    assert_eq!(queue["waiting"][0]["position"], 1);
    assert!(queue["waiting"][1]["waiting_s"].as_u64().is_some());
    // The supervisor's overview: every group in brief, and the team.
    let queues = client.get(&format!("{T}/queues")).await.body;
    let after_sales = queues["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|queue| queue["group"] == "after_sales")
        .expect("after_sales is listed");
    assert_eq!(after_sales["waiting"], 2, "{queues}");
    assert!(
        after_sales["longest_wait_s"].as_u64() >= Some(1),
        "{queues}"
    );
    let team = client.get(&format!("{T}/agents")).await.body;
    let statuses: Vec<(&str, &str)> = team["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .map(|seat| {
            (
                seat["agent"].as_str().expect("agent"),
                seat["status"].as_str().expect("status"),
            )
        })
        .collect();
    assert_eq!(statuses, [("alice", "online"), ("bob", "away")], "{team}");
    assert_eq!(team["agents"][0]["chats"].as_array().map(Vec::len), Some(1));
    // The waiting customers were told their position.
    let told = client
        .conversation_until("shop", &normal, |c| {
            c["messages"].as_array().is_some_and(|m| {
                m.iter().any(|m| {
                    m["role"] == "system"
                        && m["text"].as_str().is_some_and(|t| t.contains("排在第"))
                })
            })
        })
        .await;
    assert_eq!(told["status"], "queued");
    put(
        &client,
        &format!("{T}/agents/bob"),
        &json!({"status": "online"}),
    )
    .await;
    let bob = agent(&client, "bob").await;
    assert_eq!(
        ids(&bob["offers"]),
        std::slice::from_ref(&vip),
        "the VIP is offered first"
    );
    assert_capacity(&client, &agents).await;

    // An agent cannot write in a chat they do not own; declining moves the offer on.
    let not_owner = client
        .post(
            &format!("{T}/conversations/{vip}/agent-messages"),
            &json!({"agent": "bob", "id": "b1", "text": "hello"}),
        )
        .await;
    assert_eq!(not_owner.status, 409);
    let declined = client
        .post(&format!("{T}/agents/bob/offers/{vip}/decline"), &json!({}))
        .await;
    assert_eq!(declined.status, 200);
    let again = client
        .post(&format!("{T}/agents/bob/offers/{vip}/decline"), &json!({}))
        .await;
    assert_eq!(
        again.status, 409,
        "no offer to decline twice: {:?}",
        again.body
    );
    assert_capacity(&client, &agents).await;

    // Transfer alice's chat to bob: refused while bob is full, accepted once he has room.
    let bob_offers = ids(&agent(&client, "bob").await["offers"]);
    for conversation in &bob_offers {
        let accepted = client
            .post(
                &format!("{T}/agents/bob/offers/{conversation}/accept"),
                &json!({}),
            )
            .await;
        assert_eq!(accepted.status, 200);
    }
    let full = client
        .post(
            &format!("{T}/conversations/{angry}/transfer"),
            &json!({"agent": "bob"}),
        )
        .await;
    assert_eq!(full.status, 409, "{:?}", full.body);
    assert_eq!(full.body["error"], "agent_unavailable");
    put(&client, &format!("{T}/agents/bob"), &json!({"capacity": 3})).await;
    let moved = client
        .post(
            &format!("{T}/conversations/{angry}/transfer"),
            &json!({"agent": "bob"}),
        )
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    client
        .conversation_until("shop", &angry, |c| c["agent"] == "bob")
        .await;
    assert_capacity(&client, &agents).await;

    // An internal note is kept but never shown to the customer.
    let note = client
        .post(
            &format!("{T}/conversations/{angry}/agent-messages"),
            &json!({"agent": "alice", "id": "n1", "text": "VIP-adjacent, be kind", "internal": true}),
        )
        .await;
    assert_eq!(note.status, 200, "{:?}", note.body);
    let customer_view = client
        .get(&format!("{T}/customers/angry/conversation"))
        .await
        .body;
    assert!(!customer_view.to_string().contains("be kind"));

    // Resolve frees capacity.
    let resolved = client
        .post(
            &format!("{T}/conversations/{angry}/resolve"),
            &json!({"agent": "bob"}),
        )
        .await;
    assert_eq!(resolved.status, 200, "{:?}", resolved.body);
    until("routing frees bob's capacity", async || {
        !ids(&agent(&client, "bob").await["chats"]).contains(&angry)
    })
    .await;

    // A ticket whose first-response SLA passes gets a breach event.
    let ticket = client
        .post(
            &format!("{T}/tickets"),
            &json!({"kind": "refund", "subject": "refund for order 2026111100003", "conversation": angry,
                    "customer": "angry", "sla": {"first_response_s": 1, "resolution_s": 3600}}),
        )
        .await;
    assert_eq!(ticket.status, 201, "{:?}", ticket.body);
    let ticket_id = ticket.body["id"].as_str().expect("id").to_owned();
    until("first-response SLA breached", async || {
        let view = client.get(&format!("{T}/tickets/{ticket_id}")).await.body;
        view["breached"] == json!(["first_response"])
    })
    .await;
    let patched = client
        .patch(
            &format!("{T}/tickets/{ticket_id}"),
            &json!({"status": "solved", "assignee": "alice", "comment": {"author": "alice", "text": "refunded"}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["status"], "solved");
    let closed = client
        .patch(
            &format!("{T}/tickets/{ticket_id}"),
            &json!({"status": "closed"}),
        )
        .await;
    assert_eq!(closed.body["status"], "closed");
    let reopen = client
        .patch(
            &format!("{T}/tickets/{ticket_id}"),
            &json!({"status": "open"}),
        )
        .await;
    assert_eq!(reopen.status, 409, "closed is final");

    // The ticket is its own entity: its events tell its whole story, in order.
    let ticket_events = client.get(&format!("{T}/tickets/{ticket_id}/events")).await;
    assert_eq!(ticket_events.status, 200, "{:?}", ticket_events.body);
    let types: Vec<&str> = ticket_events.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|event| event["type"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "ticket.opened",
            "ticket.sla_breached",
            "ticket.assigned",
            "ticket.commented",
            "ticket.status_changed",
            "ticket.status_changed"
        ],
        "{:?}",
        ticket_events.body
    );
    assert_eq!(
        ticket_events.body["events"][1]["data"]["sla"],
        "first_response"
    );
    // Routing watched the open ticket's deadlines, and forgot it once solved.
    let events = desk_events(&client).await;
    for kind in [
        "desk.chat_assigned",
        "desk.offer_withdrawn",
        "desk.chat_ended",
        "desk.ticket_tracked",
        "desk.ticket_deadline_reached",
        "desk.ticket_untracked",
    ] {
        assert!(!events_of(&events, kind).is_empty(), "no {kind} event");
    }
    // Listings come from the ticket board and show the change at once.
    let listed = client
        .get(&format!("{T}/tickets?status=closed&conversation={angry}"))
        .await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let listed: Vec<&str> = listed.body["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .filter_map(|ticket| ticket["id"].as_str())
        .collect();
    assert_eq!(listed, [ticket_id.as_str()]);
    let transfer = events_of(&events, "desk.chat_assigned")
        .into_iter()
        .find(|event| event["data"]["reason"] == "transfer")
        .expect("a transfer event");
    assert_eq!(transfer["data"]["from"], "alice");

    // Bad input is refused with reasons.
    let bad = put(
        &client,
        &format!("{T}/agents/carol"),
        &json!({"status": "dancing"}),
    )
    .await;
    assert_eq!(bad.status, 422);
    let bad = put(
        &client,
        &format!("{T}/agents/carol"),
        &json!({"groups": ["After Sales"]}),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(client.get(&format!("{T}/agents/nobody")).await.status, 404);
    node.stop().await.expect("orderly stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_offer_moves_to_the_other_agent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let configured = put(
        &client,
        &format!("{T}/queues/after_sales"),
        &json!({"offer_timeout_s": 1}),
    )
    .await;
    assert_eq!(configured.status, 200, "{:?}", configured.body);
    agent_online(&client, "alice", 1).await;
    agent_online(&client, "bob", 1).await;
    let chat = handoff(&client, "c1", "customer_request").await;
    assert_eq!(
        ids(&agent(&client, "alice").await["offers"]),
        std::slice::from_ref(&chat)
    );
    until("offer moved to bob", async || {
        ids(&agent(&client, "bob").await["offers"]) == [chat.clone()]
    })
    .await;
    assert!(ids(&agent(&client, "alice").await["offers"]).is_empty());
    let events = desk_events(&client).await;
    let withdrawn = events_of(&events, "desk.offer_withdrawn");
    assert_eq!(withdrawn[0]["data"]["reason"], "expired");
    assert_eq!(withdrawn[0]["data"]["agent"], "alice");
    node.stop().await.expect("orderly stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_websocket_delivers_offers_and_messages_and_presence_follows_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut serve_config = config(dir.path());
    serve_config.node.routing = DeskSettings {
        presence_grace_ms: 300,
        ..DeskSettings::default()
    };
    let node = start(serve_config).await;
    let client = Client::new(node.addr);
    agent_online(&client, "alice", 2).await;
    let url = client.ws_url(&format!("{T}/agents/alice/stream")).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connects");
    let mut next = async || -> Value {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        serde_json::from_str(frame.to_text().expect("text")).expect("json")
    };
    let snapshot = next().await;
    assert_eq!(snapshot["kind"], "snapshot");
    assert_eq!(snapshot["agent"]["agent"], "alice");
    let chat = handoff(&client, "c1", "customer_request").await;
    let offer = loop {
        let frame = next().await;
        if frame["event"]["type"] == "desk.chat_offered" {
            break frame;
        }
    };
    assert_eq!(offer["event"]["data"]["conversation"], chat);
    assert_eq!(agent(&client, "alice").await["connected"], true);
    let accepted = client
        .post(
            &format!("{T}/agents/alice/offers/{chat}/accept"),
            &json!({}),
        )
        .await;
    assert_eq!(accepted.status, 200);
    client.message("shop", "c1", "m2", "还在吗？").await;
    loop {
        let frame = next().await;
        if frame["kind"] == "conversation"
            && frame["event"]["type"] == "conversation.customer_message_received"
        {
            assert_eq!(frame["conversation"], chat);
            assert_eq!(frame["event"]["data"]["text"], "还在吗？");
            break;
        }
    }
    let history = agent(&client, "alice").await["history"].clone();
    assert_eq!(history["chats_taken"], 1, "{history}");
    assert_eq!(
        history["connections"]
            .as_object()
            .map(|nodes| nodes.values().filter_map(Value::as_u64).sum::<u64>()),
        Some(1),
        "one live connection: {history}"
    );
    drop(socket);
    until("alice turns away after the grace period", async || {
        agent(&client, "alice").await["status"] == "away"
    })
    .await;
    // The agent's own record: connections, what routing set, the chat taken.
    let events = client.get(&format!("{T}/agents/alice/events")).await;
    assert_eq!(events.status, 200, "{:?}", events.body);
    let types: Vec<&str> = events.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["type"].as_str().expect("type"))
        .collect();
    for kind in [
        "agent.profile_recorded",
        "agent.status_recorded",
        "agent.connection_opened",
        "agent.chat_taken",
        "agent.connection_closed",
    ] {
        assert!(types.contains(&kind), "no {kind} in {types:?}");
    }
    assert_eq!(
        client
            .get(&format!("{T}/agents/nobody/events"))
            .await
            .status,
        404
    );
    node.stop().await.expect("orderly stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_timer_survives_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut process = serve_process(dir.path(), port);
    let client = Client::new(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    put(
        &client,
        &format!("{T}/queues/after_sales"),
        &json!({"offer_timeout_s": 2}),
    )
    .await;
    agent_online(&client, "alice", 1).await;
    agent_online(&client, "bob", 1).await;
    let chat = handoff(&client, "c1", "customer_request").await;
    assert_eq!(
        ids(&agent(&client, "alice").await["offers"]),
        std::slice::from_ref(&chat)
    );
    process.kill().expect("kill -9");
    process.wait().expect("reaped");

    let mut process = serve_process(dir.path(), port);
    // The offer is still alice's after the restart, and its timer fires: it moves to bob.
    let alice = agent(&client, "alice").await;
    let bob = agent(&client, "bob").await;
    assert!(
        ids(&alice["offers"]) == [chat.clone()] || ids(&bob["offers"]) == [chat.clone()],
        "the offer survived the crash: {alice} {bob}"
    );
    until(
        "the re-armed offer timer moves the chat to bob",
        async || ids(&agent(&client, "bob").await["offers"]) == [chat.clone()],
    )
    .await;
    let events = desk_events(&client).await;
    assert_eq!(
        events_of(&events, "desk.offer_withdrawn")[0]["data"]["reason"],
        "expired"
    );
    process.kill().expect("stopped");
    process.wait().expect("reaped");
}

/// Answers every message; hands off (reason `vip`) when the brain is told the customer is a VIP.
struct VipAwareBrain;

impl crest_actors::ports::brain::Brain for VipAwareBrain {
    fn respond(
        &self,
        input: &crest_actors::ports::brain::BrainInput,
    ) -> crest_actors::ports::brain::BrainAnswer {
        let handoff = input.vip.then(|| {
            (
                crest_proto::events::HandoffReason::Escalation("vip".to_owned()),
                None,
            )
        });
        crest_actors::ports::brain::BrainAnswer {
            reply: None,
            handoff,
        }
    }

    fn text_facts(&self, _text: &str) -> crest_actors::ports::brain::TextFacts {
        crest_actors::ports::brain::TextFacts::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_brain_is_told_which_customers_are_vips_also_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let brain = std::sync::Arc::new(VipAwareBrain);
    let node = crest_infra::server::start(config(dir.path()), brain.clone())
        .await
        .expect("node starts");
    let client = Client::new(node.addr);
    let tier = put(
        &client,
        &format!("{T}/customers/gold"),
        &json!({"tier": "vip"}),
    )
    .await;
    assert_eq!(tier.status, 200);
    let vip = client
        .message("shop", "gold", "m1", "hello")
        .await
        .conversation_id();
    client
        .conversation_until("shop", &vip, |c| c["status"] == "queued")
        .await;
    let normal = client
        .message("shop", "plain", "m1", "hello")
        .await
        .conversation_id();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let normal = client
        .get(&format!("{T}/conversations/{normal}"))
        .await
        .body;
    assert_eq!(
        normal["status"], "bot",
        "a normal customer is not escalated"
    );
    node.stop().await.expect("orderly stop");

    // After a restart the desks recover the tiers before conversations ask the brain.
    let node = crest_infra::server::start(config(dir.path()), brain)
        .await
        .expect("node restarts");
    let client = Client::new(node.addr);
    let answer = client
        .post(&format!("{T}/conversations/{vip}/resolve"), &json!({}))
        .await;
    assert_eq!(answer.status, 200);
    client.message("shop", "gold", "m2", "hello again").await;
    client
        .conversation_until("shop", &vip, |c| c["status"] == "queued")
        .await;
    node.stop().await.expect("orderly stop");
}
