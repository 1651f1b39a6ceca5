//! The reactor carries every routing decision to its conversation exactly once, whatever stops
//! the node: fault injection between a desk decision's append and its delivery (and between
//! delivery and the reactor's recorded progress) for each kind of effect, and a storm of handoffs,
//! accepts, declines and resolutions cut by `kill -9`, after which conversations, queues, offers
//! and agents agree.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use crest_actors::reactor::ReactorFaults;
use serde_json::{Value, json};
use support::{Client, KillOnDrop, config, free_port, serve_process, start};

const T: &str = "/v1/tenants/shop";

async fn until(what: &str, patience: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !done().await {
        assert!(Instant::now() < deadline, "not reached: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ok(client: &Client, method: &str, path: &str, body: &Value) -> Value {
    let answer = match method {
        "PUT" => client.put(path, body).await,
        _ => client.post(path, body).await,
    };
    assert!(
        (200..300).contains(&answer.status),
        "{method} {path}: {} {:?}",
        answer.status,
        answer.body
    );
    answer.body
}

/// The types of a conversation's events, in order.
async fn conversation_event_types(client: &Client, conversation: &str) -> Vec<(String, Value)> {
    let answer = client
        .get(&format!("{T}/conversations/{conversation}/events"))
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| {
            (
                event["type"].as_str().expect("type").to_owned(),
                event["data"].clone(),
            )
        })
        .collect()
}

fn count(events: &[(String, Value)], event_type: &str) -> usize {
    events.iter().filter(|(kind, _)| kind == event_type).count()
}

/// A desk decision of each kind, cut off by a reactor that stops (as if the process died) before
/// delivering it, or after delivering it but before recording its progress: after a restart the
/// effect reaches the conversation, exactly once.
async fn effect_lands_exactly_once(halt_at: &str, after_delivery: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut faulty = config(dir.path());
    faulty.node.reactor_faults = ReactorFaults {
        halt_at: Some(halt_at.to_owned()),
        after_delivery,
    };
    let node = start(faulty).await;
    let client = Client::new(node.addr);
    let conversation = client
        .message("shop", "c1", "m1", "我的快递三天没动了")
        .await
        .conversation_id();
    client
        .conversation_until("shop", &conversation, |c| c["status"] == "bot")
        .await;
    let case = format!("{halt_at} (after delivery: {after_delivery})");
    // What each kind of effect needs, and how it shows in the conversation.
    let (shows, expected): (&str, usize) = match halt_at {
        "desk.chat_assigned" => {
            ok(
                &client,
                "PUT",
                &format!("{T}/agents/alice"),
                &json!({"status": "online", "groups": ["after_sales"], "capacity": 1}),
            )
            .await;
            let handoff = ok(
                &client,
                "POST",
                &format!("{T}/conversations/{conversation}/handoff"),
                &json!({"reason": "customer_request", "group": "after_sales"}),
            )
            .await;
            assert_eq!(
                handoff["routed"], true,
                "{case}: the handoff reached routing"
            );
            ok(
                &client,
                "POST",
                &format!("{T}/agents/alice/offers/{conversation}/accept"),
                &json!({}),
            )
            .await;
            ("conversation.agent_assigned", 1)
        }
        "desk.customer_notified" => {
            // Nobody online: the chat waits and the customer is told (night mode, position).
            ok(
                &client,
                "POST",
                &format!("{T}/conversations/{conversation}/handoff"),
                &json!({"reason": "customer_request", "group": "after_sales"}),
            )
            .await;
            ("conversation.system_notice", 2)
        }
        "desk.chat_refused" => {
            ok(
                &client,
                "PUT",
                &format!("{T}/queues/after_sales"),
                &json!({"max_waiting": 0}),
            )
            .await;
            ok(
                &client,
                "POST",
                &format!("{T}/conversations/{conversation}/handoff"),
                &json!({"reason": "customer_request", "group": "after_sales"}),
            )
            .await;
            ("conversation.handoff_declined", 1)
        }
        other => panic!("no scenario for {other}"),
    };
    if after_delivery {
        // The reactor delivers, then halts before recording its progress.
        until(
            &format!("{case}: delivered before the halt"),
            Duration::from_secs(10),
            async || {
                count(
                    &conversation_event_types(&client, &conversation).await,
                    shows,
                ) >= expected
            },
        )
        .await;
    } else {
        // Nothing can be delivered: the reactor halted when the decision reached it.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let before = conversation_event_types(&client, &conversation).await;
    if after_delivery {
        assert_eq!(
            count(&before, shows),
            expected,
            "{case}: delivered before the halt: {before:?}"
        );
    } else {
        assert_eq!(
            count(&before, shows),
            0,
            "{case}: nothing delivered before the halt: {before:?}"
        );
    }
    node.stop().await.expect("orderly stop");

    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    until(&case, Duration::from_secs(10), async || {
        count(
            &conversation_event_types(&client, &conversation).await,
            shows,
        ) >= expected
    })
    .await;
    // Give a duplicate the time to show up, then count.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = conversation_event_types(&client, &conversation).await;
    assert_eq!(
        count(&after, shows),
        expected,
        "{case}: exactly once: {after:?}"
    );
    let view = client
        .get(&format!("{T}/conversations/{conversation}"))
        .await
        .body;
    let status = match halt_at {
        "desk.chat_assigned" => "assigned",
        "desk.customer_notified" => "queued",
        _ => "bot",
    };
    assert_eq!(view["status"], status, "{case}: {view}");
    node.stop().await.expect("orderly stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_reaches_its_conversation_exactly_once_across_a_crash() {
    effect_lands_exactly_once("desk.chat_assigned", false).await;
    effect_lands_exactly_once("desk.chat_assigned", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_reaches_its_conversation_exactly_once_across_a_crash() {
    effect_lands_exactly_once("desk.customer_notified", false).await;
    effect_lands_exactly_once("desk.customer_notified", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_reaches_its_conversation_exactly_once_across_a_crash() {
    effect_lands_exactly_once("desk.chat_refused", false).await;
    effect_lands_exactly_once("desk.chat_refused", true).await;
}

/// A handoff cut off before routing heard of it (the reactor stops before delivering the
/// conversation's event to the desk) is routed after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_reaches_routing_exactly_once_across_a_crash() {
    for after_delivery in [false, true] {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut faulty = config(dir.path());
        faulty.node.reactor_faults = ReactorFaults {
            halt_at: Some("conversation.handoff_requested".to_owned()),
            after_delivery,
        };
        let node = start(faulty).await;
        let client = Client::new(node.addr);
        let conversation = client
            .message("shop", "c1", "m1", "人工")
            .await
            .conversation_id();
        client
            .conversation_until("shop", &conversation, |c| c["status"] == "queued")
            .await;
        node.stop().await.expect("orderly stop");
        let node = start(config(dir.path())).await;
        let client = Client::new(node.addr);
        let queued = async || {
            let events = client.get(&format!("{T}/routing/events")).await.body;
            events["events"]
                .as_array()
                .expect("events")
                .iter()
                .filter(|event| {
                    event["type"] == "desk.chat_queued"
                        && event["data"]["conversation"] == conversation.as_str()
                })
                .count()
        };
        until(
            "the handoff is routed",
            Duration::from_secs(10),
            async || queued().await >= 1,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(queued().await, 1, "after delivery: {after_delivery}");
        node.stop().await.expect("orderly stop");
    }
}

/// Random numbers for the storm (different each run; the failure message names what happened).
fn random(salt: u64) -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(salt)
}

const AGENTS: [&str; 3] = ["ann", "bob", "cat"];
const CAPACITY: usize = 2;

/// The check: 60 handoffs into a group with `max_waiting: 4`, three agents of capacity 2
/// accepting, declining and resolving at random, `kill -9` at a random moment, restart; then every
/// conversation, queue, offer and agent agree, and nobody holds more than their capacity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_storm_and_kill_9_conversations_queues_offers_and_agents_agree() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut process = serve_process(dir.path(), port);
    let client = Client::new(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    ok(
        &client,
        "PUT",
        &format!("{T}/queues/after_sales"),
        &json!({"max_waiting": 4, "offer_timeout_s": 30}),
    )
    .await;
    for agent in AGENTS {
        ok(
            &client,
            "PUT",
            &format!("{T}/agents/{agent}"),
            &json!({"status": "online", "groups": ["after_sales"], "capacity": CAPACITY}),
        )
        .await;
    }
    let kill_after = 40 + random(1) % 120;
    let mut conversations: Vec<String> = Vec::new();
    let mut step = 0_u64;
    let storm = async {
        for n in 0..60 {
            let customer = format!("storm-{n}");
            let id = client
                .message("shop", &customer, "m1", "我的快递三天没动了")
                .await
                .conversation_id();
            conversations.push(id.clone());
            // Fire and go on: the storm does not wait for routing.
            let _ = client
                .post(
                    &format!("{T}/conversations/{id}/handoff"),
                    &json!({"reason": "customer_request", "group": "after_sales"}),
                )
                .await;
            step += 1;
            if step >= kill_after {
                return;
            }
            // Agents act on what they see.
            for agent in AGENTS {
                let view = client.get(&format!("{T}/agents/{agent}")).await.body;
                for offer in view["offers"].as_array().into_iter().flatten() {
                    let offer = offer.as_str().expect("id");
                    let verb = if random(step * 7).is_multiple_of(4) {
                        "decline"
                    } else {
                        "accept"
                    };
                    let _ = client
                        .post(
                            &format!("{T}/agents/{agent}/offers/{offer}/{verb}"),
                            &json!({}),
                        )
                        .await;
                    step += 1;
                }
                for chat in view["chats"].as_array().into_iter().flatten() {
                    if random(step * 13).is_multiple_of(3) {
                        let chat = chat.as_str().expect("id");
                        let _ = client
                            .post(
                                &format!("{T}/conversations/{chat}/resolve"),
                                &json!({"agent": agent}),
                            )
                            .await;
                        step += 1;
                    }
                }
                if step >= kill_after {
                    return;
                }
            }
        }
    };
    storm.await;
    process.kill().expect("kill -9");
    process.wait().expect("reaped");

    let _process = KillOnDrop(serve_process(dir.path(), port));
    let context = format!(
        "killed after step {step} of the storm ({} conversations)",
        conversations.len()
    );
    let mut last_problems = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let problems = disagreements(&client, &conversations).await;
        if problems.is_empty() {
            break;
        }
        last_problems = problems;
        assert!(
            Instant::now() < deadline,
            "{context}: still disagreeing after 20 s:\n{}",
            last_problems.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(last_problems);
    // Every agent's own record holds `agent.*` events: the profile routing set, the chats taken.
    let mut taken = 0;
    for agent in AGENTS {
        let answer = client.get(&format!("{T}/agents/{agent}/events")).await;
        assert_eq!(answer.status, 200, "{context}: {:?}", answer.body);
        let events = answer.body["events"].as_array().expect("events");
        let types: Vec<&str> = events
            .iter()
            .map(|event| event["type"].as_str().expect("type"))
            .collect();
        assert!(
            types.iter().all(|kind| kind.starts_with("agent.")),
            "{types:?}"
        );
        assert!(
            types.contains(&"agent.profile_recorded"),
            "{agent}: {types:?}"
        );
        taken += types
            .iter()
            .filter(|kind| **kind == "agent.chat_taken")
            .count();
    }
    assert!(taken > 0, "{context}: no agent took a chat");
    // Every callback ticket is its own entity whose events (`ticket.*`) start with its opening.
    // (How many were refused depends on where the storm was cut; each refusal has its own ticket.)
    let mut refused = 0;
    for id in &conversations {
        let view = client.get(&format!("{T}/conversations/{id}")).await.body;
        refused += usize::from(view["status"] == "bot");
    }
    let tickets = client.get(&format!("{T}/tickets")).await.body;
    let tickets = tickets["tickets"].as_array().expect("tickets");
    assert!(
        tickets.len() >= refused,
        "{context}: {refused} refusals but {} tickets",
        tickets.len()
    );
    for ticket in tickets {
        let id = ticket["id"].as_str().expect("id");
        let answer = client.get(&format!("{T}/tickets/{id}/events")).await;
        assert_eq!(answer.status, 200, "{context}: {:?}", answer.body);
        let types: Vec<&str> = answer.body["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|event| event["type"].as_str().expect("type"))
            .collect();
        assert_eq!(
            types.first(),
            Some(&"ticket.opened"),
            "{context}: {types:?}"
        );
        assert!(
            types.iter().all(|kind| kind.starts_with("ticket.")),
            "{types:?}"
        );
        assert_eq!(
            types
                .iter()
                .filter(|kind| **kind == "ticket.opened")
                .count(),
            1,
            "{context}: opened exactly once: {types:?}"
        );
    }
    eprintln!("{context}: all agree");
}

/// Everything on which conversations, queues, offers and agents disagree (empty: they agree).
async fn disagreements(client: &Client, conversations: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut holders: BTreeMap<String, String> = BTreeMap::new();
    let mut offered: BTreeSet<String> = BTreeSet::new();
    for agent in AGENTS {
        let view = client.get(&format!("{T}/agents/{agent}")).await.body;
        let ids = |field: &str| -> Vec<String> {
            view[field]
                .as_array()
                .into_iter()
                .flatten()
                .map(|id| id.as_str().expect("id").to_owned())
                .collect()
        };
        let (chats, offers) = (ids("chats"), ids("offers"));
        if chats.len() + offers.len() > CAPACITY {
            problems.push(format!("{agent} over capacity: {view}"));
        }
        for chat in chats {
            if let Some(other) = holders.insert(chat.clone(), agent.to_owned()) {
                problems.push(format!("{chat} held by {other} and {agent}"));
            }
        }
        offered.extend(offers);
    }
    let queue = client.get(&format!("{T}/queues/after_sales")).await.body;
    let waiting: BTreeSet<String> = queue["waiting"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|chat| chat["conversation"].as_str().expect("id").to_owned())
        .collect();
    if waiting.len() > 4 {
        problems.push(format!("{} waiting with max_waiting 4", waiting.len()));
    }
    for id in conversations {
        let view = client.get(&format!("{T}/conversations/{id}")).await.body;
        let status = view["status"].as_str().unwrap_or("unknown");
        let holder = holders.get(id);
        let in_queue = waiting.contains(id) || offered.contains(id);
        let agrees = match status {
            "assigned" => holder.is_some_and(|agent| view["agent"] == agent.as_str()) && !in_queue,
            "queued" => holder.is_none() && in_queue,
            "bot" => {
                // Refused (queue full): back with the bot, with a callback ticket.
                let tickets = client
                    .get(&format!("{T}/tickets?conversation={id}"))
                    .await
                    .body;
                let callback = tickets["tickets"].as_array().is_some_and(|tickets| {
                    tickets.iter().any(|ticket| ticket["kind"] == "callback")
                });
                holder.is_none() && !in_queue && callback
            }
            "resolved" => holder.is_none() && !in_queue,
            _ => false,
        };
        if !agrees {
            problems.push(format!(
                "{id}: conversation {status} (agent {}), held by {holder:?}, queued or offered: {in_queue}",
                view["agent"]
            ));
        }
    }
    problems
}
