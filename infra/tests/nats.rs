//! The NATS JetStream bus against a real nats-server 2.15.1.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use async_nats::jetstream;
use crest_actors::ports::bus::EventBus;
use crest_actors::ports::journal::EventJournal;
use crest_infra::bus::NatsBus;
use crest_infra::journal::{FjallJournal, FjallJournalConfig, contract};
use crest_proto::subjects::{EVENTS_STREAM, event_subject};
use crest_proto::{Envelope, StreamId};
use support::{Client, NatsServer, config, roles, start};

/// Every message in the events stream: (subject, Nats-Msg-Id, envelope).
async fn stream_contents(url: &str) -> Vec<(String, String, Envelope)> {
    let client = async_nats::connect(url).await.expect("nats connects");
    let context = jetstream::new(client);
    let mut stream = context
        .get_stream(EVENTS_STREAM)
        .await
        .expect("events stream exists");
    let info = stream.info().await.expect("stream info");
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    let mut contents = Vec::new();
    for sequence in first..=last {
        let message = stream.get_raw_message(sequence).await.expect("message");
        let id = message
            .headers
            .get("Nats-Msg-Id")
            .expect("Nats-Msg-Id header")
            .as_str()
            .to_owned();
        let envelope = Envelope::from_bytes(&message.payload).expect("payload is an envelope");
        contents.push((message.subject.to_string(), id, envelope));
    }
    contents
}

fn assert_well_formed(contents: &[(String, String, Envelope)]) {
    for (subject, id, envelope) in contents {
        assert_eq!(subject, &event_subject(&envelope.stream));
        assert_eq!(
            subject,
            &format!(
                "crest.evt.{}.{}.{}",
                envelope.stream.tenant(),
                envelope.stream.slice(),
                envelope.stream
            )
        );
        assert_eq!(id, &format!("{}:{}", envelope.stream, envelope.seq));
    }
    let unique: BTreeSet<&String> = contents.iter().map(|(_, id, _)| id).collect();
    assert_eq!(
        unique.len(),
        contents.len(),
        "each event is in the stream once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_journaled_event_is_published_once_with_its_subject_and_msg_id() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(crest_infra::server::ServeConfig {
        nats: Some(nats.url()),
        ..config(dir.path())
    })
    .await;
    let client = Client::new(node.addr);
    let first = client.message("acme", "c-1", "m-1", "hello").await;
    client.message("acme", "c-1", "m-2", "again").await;
    let id = first.conversation_id();
    client
        .conversation_until("acme", &id, |body| roles(body).len() == 4)
        .await;
    node.stop().await.expect("clean stop flushes the outbox");

    let contents = stream_contents(&nats.url()).await;
    assert_well_formed(&contents);
    let published: BTreeSet<(String, u64)> = contents
        .iter()
        .map(|(_, _, envelope)| (envelope.stream.to_string(), envelope.seq))
        .collect();
    let conversation = format!("conv:acme:{id}");
    let mut expected: BTreeSet<(String, u64)> =
        (1..=5).map(|seq| (conversation.clone(), seq)).collect();
    expected.insert(("cust:acme:c-1".to_owned(), 1));
    assert_eq!(published, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_journaled_but_not_published_are_republished_at_start() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let stream: StreamId;
    {
        // A previous run journaled these and stopped before publishing them.
        let journal = FjallJournal::open(
            &dir.path().join("journal"),
            FjallJournalConfig::default(),
            &prometheus::Registry::new(),
        )
        .expect("journal");
        stream = contract::fresh_stream(&contract::fresh_tenant());
        journal
            .append(&stream, 0, contract::events(&stream, 1, 3))
            .await
            .expect("append");
        journal.close().expect("close");
    }
    let nats_config = crest_infra::server::ServeConfig {
        nats: Some(nats.url()),
        ..config(dir.path())
    };
    let node = start(nats_config.clone()).await;
    node.stop().await.expect("clean stop");
    let contents = stream_contents(&nats.url()).await;
    assert_well_formed(&contents);
    let seqs: Vec<u64> = contents
        .iter()
        .filter(|(_, _, envelope)| envelope.stream == stream)
        .map(|(_, _, envelope)| envelope.seq)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);

    // Published now: the next start has nothing to republish.
    let node = start(nats_config).await;
    node.stop().await.expect("clean stop");
    assert_eq!(stream_contents(&nats.url()).await.len(), contents.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republishing_the_same_event_is_deduplicated_by_msg_id() {
    let nats = NatsServer::start();
    let bus = NatsBus::connect(&nats.url()).await.expect("bus connects");
    let stream = contract::fresh_stream(&contract::fresh_tenant());
    let envelopes: Vec<Arc<Envelope>> = contract::events(&stream, 1, 2)
        .iter()
        .map(|event| Arc::new(event.envelope().expect("decodes")))
        .collect();
    bus.publish(&envelopes).await.expect("publish");
    bus.publish(&envelopes).await.expect("publish again");
    bus.publish(&envelopes[1..])
        .await
        .expect("publish the second again");
    let contents = stream_contents(&nats.url()).await;
    assert_eq!(contents.len(), 2, "JetStream dropped the duplicates");
    assert_well_formed(&contents);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_nats_is_a_clear_start_error() {
    let port = support::free_port();
    let error = NatsBus::connect(&format!("nats://127.0.0.1:{port}"))
        .await
        .expect_err("nothing listens");
    assert!(
        error.to_string().contains("cannot connect to nats"),
        "{error}"
    );
}
