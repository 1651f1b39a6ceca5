//! `kill -9` under load: 20 customers post 50 messages each while the node is killed. After a
//! restart every acknowledged message is in its conversation exactly once and in order, and
//! re-posting it answers `"duplicate": true` with the same ids.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::{Client, free_port, serve_process};

const CUSTOMERS: usize = 20;
const MESSAGES: usize = 50;
/// The node is killed once this many messages were acknowledged.
const KILL_AFTER_ACKS: usize = 400;

/// What an acknowledgement said.
#[derive(Debug, Clone, PartialEq)]
struct Ack {
    conversation_id: String,
    message_id: String,
    seq: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_message_survives_kill_9_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut node = serve_process(dir.path(), port);
    let acked_total = Arc::new(AtomicUsize::new(0));

    let key = Client::new(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .issue_key("crash", "integration", None)
        .await;
    let mut customers = Vec::new();
    for customer in 0..CUSTOMERS {
        let acked_total = Arc::clone(&acked_total);
        let key = key.clone();
        customers.push(tokio::spawn(async move {
            let mut acks: Vec<(usize, Ack)> = Vec::new();
            let http = reqwest::Client::new();
            for index in 0..MESSAGES {
                let body = serde_json::json!({
                    "channel": "web", "customer": format!("c-{customer}"),
                    "id": format!("m-{customer}-{index}"), "text": format!("message {index} of {customer}"),
                });
                let sent = http
                    .post(format!("http://127.0.0.1:{port}/v1/tenants/crash/messages"))
                    .header("content-type", "application/json")
                    .bearer_auth(&key)
                    .body(body.to_string())
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                let Ok(response) = sent else { break };
                if response.status() != 200 {
                    break;
                }
                let Ok(text) = response.text().await else { break };
                let answer: serde_json::Value = serde_json::from_str(&text).expect("json answer");
                acks.push((
                    index,
                    Ack {
                        conversation_id: answer["conversation_id"].as_str().expect("id").to_owned(),
                        message_id: answer["message_id"].as_str().expect("id").to_owned(),
                        seq: answer["seq"].as_u64().expect("seq"),
                    },
                ));
                acked_total.fetch_add(1, Ordering::Relaxed);
            }
            acks
        }));
    }
    while acked_total.load(Ordering::Relaxed) < KILL_AFTER_ACKS {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    node.kill().expect("kill -9");
    node.wait().expect("reaped");
    let mut acked: HashMap<usize, Vec<(usize, Ack)>> = HashMap::new();
    for (customer, task) in customers.into_iter().enumerate() {
        acked.insert(customer, task.await.expect("poster"));
    }
    let total: usize = acked.values().map(Vec::len).sum();
    assert!(total >= KILL_AFTER_ACKS, "{total} acknowledged");
    assert!(
        total < CUSTOMERS * MESSAGES,
        "the kill happened while customers were still posting"
    );

    let mut restarted = serve_process(dir.path(), port);
    let client = Client::new(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    for (customer, acks) in &acked {
        let Some((_, first)) = acks.first() else {
            continue;
        };
        let conversation = client
            .get(&format!(
                "/v1/tenants/crash/conversations/{}",
                first.conversation_id
            ))
            .await;
        assert_eq!(conversation.status, 200, "{:?}", conversation.body);
        let messages = conversation.body["messages"].as_array().expect("messages");
        let customer_messages: Vec<&serde_json::Value> = messages
            .iter()
            .filter(|message| message["role"] == "customer")
            .collect();
        // Exactly once each, in posting order; unacknowledged ones may be there (at most once).
        let mut last_seq = 0;
        let mut last_index = None;
        for message in &customer_messages {
            let seq = message["seq"].as_u64().expect("seq");
            assert!(seq > last_seq, "customer {customer}: read back in order");
            last_seq = seq;
            let id = message["channel_message_id"].as_str().expect("channel id");
            let index: usize = id
                .rsplit('-')
                .next()
                .expect("index")
                .parse()
                .expect("number");
            assert!(
                last_index.is_none_or(|last| index > last),
                "customer {customer}: no duplicates, in order"
            );
            last_index = Some(index);
        }
        for (index, ack) in acks {
            let channel_id = format!("m-{customer}-{index}");
            let stored: Vec<_> = customer_messages
                .iter()
                .filter(|message| message["channel_message_id"] == channel_id.as_str())
                .collect();
            assert_eq!(stored.len(), 1, "{channel_id} is stored exactly once");
            assert_eq!(stored[0]["id"], ack.message_id.as_str());
            assert_eq!(stored[0]["seq"], ack.seq);
            assert_eq!(
                ack.conversation_id, first.conversation_id,
                "one open conversation"
            );
            let again = client
                .message(
                    "crash",
                    &format!("c-{customer}"),
                    &channel_id,
                    &format!("message {index} of {customer}"),
                )
                .await;
            assert_eq!(again.status, 200);
            assert_eq!(again.body["duplicate"], true, "{channel_id}");
            assert_eq!(again.body["message_id"], ack.message_id.as_str());
            assert_eq!(again.body["conversation_id"], ack.conversation_id.as_str());
            assert_eq!(again.body["seq"], ack.seq);
        }
    }
    let _ = restarted.kill();
    let _ = restarted.wait();
}
