//! Idempotency and recovery of actors: after passivation, after a restart, from snapshots, and
//! unanswered messages answered after a stop.

mod support;

use std::sync::Arc;
use std::time::Duration;

use crest_actors::context::EntitySettings;
use crest_actors::ports::brain::{Brain, BrainAnswer, BrainInput};
use crest_actors::ports::journal::EventJournal;
use crest_actors::test_brain::EchoBrain;
use crest_infra::journal::{FjallJournal, FjallJournalConfig};
use crest_proto::{ConversationId, StreamId, TenantId};
use support::{Client, ServeConfig, config, roles, start};

fn quick_passivation(data_dir: &std::path::Path) -> ServeConfig {
    let mut config = config(data_dir);
    config.node.entities = EntitySettings {
        idle_timeout: Duration::from_millis(150),
        idle_check_interval: Duration::from_millis(50),
        ..EntitySettings::default()
    };
    config
}

async fn metric(client: &Client, line_prefix: &str) -> f64 {
    let (_, text) = client.get_text("/metrics").await;
    text.lines()
        .find_map(|line| {
            line.strip_prefix(line_prefix)
                .map(|value| value.trim().parse().expect("number"))
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_recognised_after_passivation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(quick_passivation(dir.path())).await;
    let client = Client::new(node.addr);
    let first = client.message("acme", "c-1", "m-1", "hello").await;
    let id = first.conversation_id();
    client
        .conversation_until("acme", &id, |body| roles(body).len() == 2)
        .await;

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while metric(&client, "crest_actors_active{kind=\"conversation\"}").await > 0.0
        || metric(&client, "crest_actors_active{kind=\"customer\"}").await > 0.0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "idle actors were not passivated"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        metric(
            &client,
            "crest_actor_passivations_total{kind=\"conversation\"}"
        )
        .await
            >= 1.0
    );

    let again = client.message("acme", "c-1", "m-1", "hello").await;
    assert_eq!(again.body["duplicate"], true);
    assert_eq!(again.body["message_id"], first.body["message_id"]);
    assert_eq!(again.body["conversation_id"], first.body["conversation_id"]);
    let next = client.message("acme", "c-1", "m-2", "still there?").await;
    assert_eq!(
        (next.body["duplicate"].as_bool(), next.body["seq"].as_u64()),
        (Some(false), Some(4))
    );
    assert_eq!(
        next.body["conversation_id"], first.body["conversation_id"],
        "the same open conversation"
    );
    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_recognised_after_a_restart_and_history_reads_back_from_snapshots() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut snapshotting = config(dir.path());
    snapshotting.node.entities.snapshot_every = 3;
    let node = start(snapshotting.clone()).await;
    let client = Client::new(node.addr);
    let mut acks = Vec::new();
    for index in 0..10 {
        let answer = client
            .message(
                "acme",
                "c-1",
                &format!("m-{index}"),
                &format!("message {index}"),
            )
            .await;
        assert_eq!(answer.status, 200);
        acks.push(answer.body);
    }
    let id = acks[0]["conversation_id"].as_str().expect("id").to_owned();
    client
        .conversation_until("acme", &id, |body| roles(body).len() == 20)
        .await;
    node.stop().await.expect("clean stop");

    {
        let journal = FjallJournal::open(
            &dir.path().join("journal"),
            FjallJournalConfig::default(),
            &prometheus::Registry::new(),
        )
        .expect("journal");
        let tenant = TenantId::new("acme").expect("valid");
        let stream = StreamId::conversation(&ConversationId::parse(&tenant, &id).expect("id"));
        let snapshot = journal
            .load_snapshot(&stream)
            .await
            .expect("load")
            .expect("a snapshot was taken");
        assert!(snapshot.seq >= 18, "snapshot at {}", snapshot.seq);
        journal.close().expect("close");
    }

    let node = start(snapshotting).await;
    let client = Client::new(node.addr);
    for (index, ack) in acks.iter().enumerate() {
        let again = client
            .message(
                "acme",
                "c-1",
                &format!("m-{index}"),
                &format!("message {index}"),
            )
            .await;
        assert_eq!(again.body["duplicate"], true, "m-{index}");
        assert_eq!(again.body["message_id"], ack["message_id"]);
        assert_eq!(again.body["seq"], ack["seq"]);
    }
    let conversation = client.conversation_until("acme", &id, |_| true).await;
    let customer_texts: Vec<&str> = conversation["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|message| message["role"] == "customer")
        .map(|message| message["text"].as_str().expect("text"))
        .collect();
    let expected: Vec<String> = (0..10).map(|index| format!("message {index}")).collect();
    assert_eq!(customer_texts, expected, "in order, each once");
    let seqs: Vec<u64> = conversation["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|message| message["seq"].as_u64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "{seqs:?}");
    node.stop().await.expect("clean stop");
}

/// A brain that never finishes in time: the node stops with the message unanswered.
struct StuckBrain;

impl Brain for StuckBrain {
    fn respond(&self, input: &BrainInput) -> BrainAnswer {
        std::thread::sleep(Duration::from_secs(2));
        EchoBrain.respond(input)
    }

    fn text_facts(&self, text: &str) -> crest_actors::ports::brain::TextFacts {
        EchoBrain.text_facts(text)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_left_unanswered_at_shutdown_is_answered_after_recovery() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stuck = crest_infra::server::start(config(dir.path()), Arc::new(StuckBrain))
        .await
        .expect("node starts");
    let client = Client::new(stuck.addr);
    let first = client.message("acme", "c-1", "m-1", "are you there").await;
    let id = first.conversation_id();
    stuck.stop().await.expect("clean stop");

    let node = start(config(dir.path())).await;
    let client = Client::new(node.addr);
    let conversation = client
        .conversation_until("acme", &id, |body| roles(body).len() == 2)
        .await;
    assert_eq!(conversation["messages"][1]["text"], "echo: are you there");
    node.stop().await.expect("clean stop");
}
