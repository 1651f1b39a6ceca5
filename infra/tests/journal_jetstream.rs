//! The journal contract suite against the JetStream journal on a real nats-server 2.15.1 (one per
//! test, on a free port with its own store), plus what is specific to JetStream: stale writers,
//! atomic multi-event appends, outages, and a 3-server cluster losing a server.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crest_actors::ports::journal::{
    Cursor, EventJournal, JournalError, Snapshot, StorageErrorKind, StoredEvent,
};
use crest_infra::journal::contract;
use crest_infra::journal::{JetStreamJournal, JetStreamJournalConfig};
use crest_proto::{CustomerId, StreamId};
use support::NatsServer;
use support::cluster::NatsCluster;

fn config() -> JetStreamJournalConfig {
    JetStreamJournalConfig {
        request_timeout: Duration::from_secs(2),
        ..JetStreamJournalConfig::default()
    }
}

async fn open_with(url: &str, config: JetStreamJournalConfig) -> JetStreamJournal {
    JetStreamJournal::connect(url, config, &prometheus::Registry::new())
        .await
        .expect("journal opens")
}

async fn open(url: &str) -> JetStreamJournal {
    open_with(url, config()).await
}

async fn fresh() -> (NatsServer, JetStreamJournal) {
    let server = NatsServer::start();
    let journal = open(&server.url()).await;
    (server, journal)
}

fn seqs(events: &[StoredEvent]) -> Vec<u64> {
    events.iter().map(|event| event.seq).collect()
}

#[tokio::test]
async fn append_then_read() {
    let (_server, journal) = fresh().await;
    contract::append_then_read(&journal).await;
}

#[tokio::test]
async fn read_from_sequence() {
    let (_server, journal) = fresh().await;
    contract::read_from_sequence(&journal).await;
}

#[tokio::test]
async fn conflict_on_wrong_expected_seq() {
    let (_server, journal) = fresh().await;
    contract::conflict_on_wrong_expected_seq(&journal).await;
}

#[tokio::test]
async fn idempotent_reappend() {
    let (_server, journal) = fresh().await;
    contract::idempotent_reappend(&journal).await;
}

#[tokio::test]
async fn snapshots() {
    let (_server, journal) = fresh().await;
    contract::snapshots(&journal).await;
}

#[tokio::test]
async fn scan_visits_every_event_once() {
    let (_server, journal) = fresh().await;
    contract::scan_visits_every_event_once(&journal).await;
}

#[tokio::test]
async fn cursor_progress() {
    let (_server, journal) = fresh().await;
    contract::cursor_progress(&journal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_streams_concurrently() {
    let (_server, journal) = fresh().await;
    contract::many_streams_concurrently(Arc::new(journal), 10_000, 3).await;
}

#[tokio::test]
async fn survives_reopen() {
    let server = NatsServer::start();
    let url = server.url();
    contract::survives_reopen(
        || {
            let url = url.clone();
            async move { Arc::new(open(&url).await) as Arc<dyn EventJournal> }
        },
        drop,
    )
    .await;
}

#[tokio::test]
async fn survives_a_server_restart() {
    let mut server = NatsServer::start();
    let journal = open(&server.url()).await;
    let stream = contract::fresh_stream(&contract::fresh_tenant());
    let batch = contract::events(&stream, 1, 3);
    journal
        .append(&stream, 0, batch.clone())
        .await
        .expect("append");
    journal.flush().await.expect("flush");
    drop(journal);
    server.restart();
    let reopened = open(&server.url()).await;
    assert_eq!(reopened.read(&stream, 0, 10).await.expect("read"), batch);
    assert_eq!(reopened.last_seq(&stream).await.expect("last_seq"), 3);
}

#[tokio::test]
async fn closed_journal_refuses_appends() {
    let (_server, journal) = fresh().await;
    journal.close().await.expect("close");
    let stream = contract::fresh_stream(&contract::fresh_tenant());
    let result = journal
        .append(&stream, 0, contract::events(&stream, 1, 1))
        .await;
    assert_eq!(result, Err(JournalError::Closed));
}

/// Two journals (two nodes) on one stream: the one whose cached head is out of date is refused
/// with the actual last sequence, whatever epoch it writes with, and nothing of it is stored.
#[tokio::test]
async fn a_stale_writer_gets_a_conflict_never_a_silent_append() {
    let server = NatsServer::start();
    let old_owner = open(&server.url()).await;
    let new_owner = open(&server.url()).await;
    let stream = contract::fresh_stream(&contract::fresh_tenant());
    let first = contract::events(&stream, 1, 2);
    old_owner
        .append_with_epoch(&stream, 0, first.clone(), 1)
        .await
        .expect("first owner appends");
    // The shard moves: the new owner recovers the stream and appends under a newer lease.
    let recovered = new_owner.read(&stream, 0, 100).await.expect("recover");
    assert_eq!(recovered, first);
    let taken_over = contract::events(&stream, 3, 1);
    new_owner
        .append_with_epoch(&stream, 2, taken_over.clone(), 2)
        .await
        .expect("new owner appends");
    // The old owner still believes the stream ends at 2 (its cache says so) and appends.
    for epoch in [1, 7] {
        let stale = old_owner
            .append_with_epoch(&stream, 2, contract::events(&stream, 3, 2), epoch)
            .await;
        assert_eq!(
            stale,
            Err(JournalError::Conflict {
                stream: stream.to_string(),
                expected: 2,
                actual: 3,
            }),
            "epoch {epoch}"
        );
    }
    let stored = old_owner.read(&stream, 0, 100).await.expect("read");
    let mut expected = first.clone();
    expected.extend(taken_over.clone());
    assert_eq!(stored, expected, "only the owners' events are stored");
    assert_eq!(old_owner.last_seq(&stream).await.expect("last_seq"), 3);
    // Each event keeps the epoch of the writer that appended it.
    assert_eq!(old_owner.writer_epoch(&stream, 1).await, Ok(Some(1)));
    assert_eq!(old_owner.writer_epoch(&stream, 3).await, Ok(Some(2)));
    assert_eq!(old_owner.writer_epoch(&stream, 4).await, Ok(None));
    // The stale writer retrying what the new owner wrote is told it is stored, not written twice.
    let retried = old_owner
        .append(&stream, 2, taken_over)
        .await
        .expect("identical re-append");
    assert!(retried.already_stored);
    assert_eq!(new_owner.last_seq(&stream).await.expect("last_seq"), 3);
}

/// The default epoch comes from the configuration.
#[tokio::test]
async fn appends_record_the_configured_epoch() {
    let server = NatsServer::start();
    let journal = open_with(
        &server.url(),
        JetStreamJournalConfig {
            default_epoch: 42,
            ..config()
        },
    )
    .await;
    let stream = contract::fresh_stream(&contract::fresh_tenant());
    journal
        .append(&stream, 0, contract::events(&stream, 1, 2))
        .await
        .expect("append");
    assert_eq!(journal.writer_epoch(&stream, 2).await, Ok(Some(42)));
}

/// In a cluster a node writes through the fence: every event of a shard's stream carries the
/// revision of the lease that shard is served under, and a new lease's appends carry the new one.
#[tokio::test]
async fn appends_through_the_fence_carry_the_shards_lease_revision() {
    use crest_actors::shard::remote::{LinkError, Ownership, ShardLink, ShardReply, ShardRequest};

    #[derive(Debug)]
    struct NoLink;

    #[async_trait::async_trait]
    impl ShardLink for NoLink {
        async fn send(
            &self,
            _shard: u16,
            _request: &ShardRequest,
        ) -> Result<ShardReply, LinkError> {
            Err(LinkError::NoOwner)
        }
    }

    let (_server, journal) = fresh().await;
    let journal = Arc::new(journal);
    let ownership = Arc::new(Ownership::new(Arc::new(NoLink), Duration::from_secs(1)));
    let fenced = crest_infra::cluster::FencedJournal::new(
        Arc::clone(&journal) as Arc<dyn EventJournal>,
        Arc::clone(&ownership),
        prometheus::IntCounter::new("refused", "refused").expect("counter"),
    );
    let tenant = contract::fresh_tenant();
    let stream = StreamId::customer(&CustomerId::new(&tenant, "c-1").expect("customer"));
    let shard = crest_proto::slice::shard_of(stream.as_str());
    ownership.serve(shard, 17);
    fenced
        .append(&stream, 0, contract::events(&stream, 1, 2))
        .await
        .expect("served: written");
    // The shard moved away and came back under a newer lease.
    ownership.release(shard);
    ownership.serve(shard, 23);
    fenced
        .append(&stream, 2, contract::events(&stream, 3, 1))
        .await
        .expect("served again: written");
    assert_eq!(journal.writer_epoch(&stream, 1).await, Ok(Some(17)));
    assert_eq!(journal.writer_epoch(&stream, 2).await, Ok(Some(17)));
    assert_eq!(journal.writer_epoch(&stream, 3).await, Ok(Some(23)));
}

/// A multi-event append is one atomic batch: a conflicting one stores none of its events, and one
/// the server refuses part of (an event above the stream's message size limit) stores nothing.
#[tokio::test]
async fn a_multi_event_append_is_all_or_nothing() {
    let server = NatsServer::start();
    // The stream exists before the journal opens, with a message size limit the journal keeps.
    let client = async_nats::connect(server.url()).await.expect("connects");
    async_nats::jetstream::new(client)
        .create_stream(async_nats::jetstream::stream::Config {
            name: "CREST_JOURNAL".to_owned(),
            subjects: vec!["crest.journal.>".to_owned()],
            max_message_size: 4096,
            allow_atomic_publish: true,
            allow_direct: true,
            ..Default::default()
        })
        .await
        .expect("stream created");
    let writer = open(&server.url()).await;
    let rival = open(&server.url()).await;
    let stream = contract::fresh_stream(&contract::fresh_tenant());

    let batch = contract::events(&stream, 1, 5);
    let outcome = writer
        .append(&stream, 0, batch.clone())
        .await
        .expect("batch appends");
    assert_eq!(outcome.last_seq, 5);
    assert_eq!(writer.read(&stream, 0, 100).await.expect("read"), batch);

    // A rival appends event 6 first: the whole batch 6..8 is refused.
    let rival_event = contract::events(&stream, 6, 1);
    rival
        .append(&stream, 5, rival_event.clone())
        .await
        .expect("rival appends");
    let refused = writer
        .append(&stream, 5, contract::events(&stream, 6, 3))
        .await;
    assert!(
        matches!(refused, Err(JournalError::Conflict { actual: 6, .. })),
        "{refused:?}"
    );
    assert_eq!(
        writer.read(&stream, 5, 100).await.expect("read"),
        rival_event
    );

    // The second of three events is too large for the stream: none of the three is stored.
    let mut oversized = contract::events(&stream, 7, 3);
    oversized[1].bytes = vec![7; 8192];
    let failed = writer.append(&stream, 6, oversized).await;
    assert!(
        matches!(&failed, Err(JournalError::Storage(error)) if error.kind() == StorageErrorKind::Write),
        "{failed:?}"
    );
    assert_eq!(writer.last_seq(&stream).await.expect("last_seq"), 6);
    assert!(writer.read(&stream, 6, 100).await.expect("read").is_empty());
    // The writer goes on from where the stream really is.
    let next = contract::events(&stream, 7, 2);
    writer
        .append(&stream, 6, next.clone())
        .await
        .expect("append after the failed batch");
    assert_eq!(writer.read(&stream, 6, 100).await.expect("read"), next);
}

/// A journal that knows nothing about a long stream (another node wrote it, interleaved with other
/// streams) finds any position in it, and pages through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_reads_find_any_position_of_an_interleaved_stream() {
    let server = NatsServer::start();
    let writer = open(&server.url()).await;
    let tenant = contract::fresh_tenant();
    let long = contract::fresh_stream(&tenant);
    let others: Vec<StreamId> = (0..3).map(|_| contract::fresh_stream(&tenant)).collect();
    let mut written = Vec::new();
    for seq in 1..=300 {
        let event = contract::events(&long, seq, 1);
        written.extend(event.clone());
        writer.append(&long, seq - 1, event).await.expect("append");
        let other = &others[usize::try_from(seq).expect("small") % others.len()];
        let head = writer.last_seq(other).await.expect("last_seq");
        writer
            .append(other, head, contract::events(other, head + 1, 1))
            .await
            .expect("append");
    }
    for after in [0, 1, 137, 298, 299, 300, 1000] {
        let reader = open(&server.url()).await;
        let read = reader.read(&long, after, 10).await.expect("cold read");
        let expected: Vec<StoredEvent> = written
            .iter()
            .filter(|event| event.seq > after)
            .take(10)
            .cloned()
            .collect();
        assert_eq!(read, expected, "after {after}");
    }
    let reader = open(&server.url()).await;
    assert_eq!(
        crest_actors::ports::journal::read_all(&reader, &long, 0)
            .await
            .expect("read_all"),
        written
    );
    assert_eq!(
        seqs(&reader.read(&long, 250, 1000).await.expect("read")),
        (251..=300).collect::<Vec<_>>()
    );
}

/// Keys with dots, `@`, `+` and `:` become one subject token and one KV key, and come back.
#[tokio::test]
async fn stream_names_with_subject_characters_round_trip() {
    let (_server, journal) = fresh().await;
    let tenant = contract::fresh_tenant();
    let customer = CustomerId::new(&tenant, "ann.lee+vip:1@shop.example").expect("valid id");
    let stream = StreamId::customer(&customer);
    let subject = journal.subject_of(&stream);
    assert_eq!(subject.split('.').count(), 5, "{subject}");
    assert!(!subject.contains(['*', '>', ' ']), "{subject}");
    let events = contract::events(&stream, 1, 2);
    journal
        .append(&stream, 0, events.clone())
        .await
        .expect("append");
    assert_eq!(journal.read(&stream, 0, 10).await.expect("read"), events);
    let snapshot = Snapshot {
        seq: 2,
        schema_version: 1,
        state: b"state".to_vec(),
    };
    journal
        .save_snapshot(&stream, snapshot.clone())
        .await
        .expect("save");
    assert_eq!(journal.load_snapshot(&stream).await, Ok(Some(snapshot)));
    let lagging = journal.lagging(Cursor::Published).await.expect("lagging");
    assert!(
        lagging
            .iter()
            .any(|item| item.stream == stream && item.done_seq == 0),
        "{lagging:?}"
    );
    journal
        .mark_progress(Cursor::Published, &[(stream.clone(), 2)])
        .await
        .expect("mark");
    let lagging = journal.lagging(Cursor::Published).await.expect("lagging");
    assert!(
        !lagging.iter().any(|item| item.stream == stream),
        "{lagging:?}"
    );
    let scanned = journal.scan(None, 100).await.expect("scan");
    assert_eq!(scanned, events);
}

/// An outage is a storage error (never a panic or a hang); once the server is back, retrying the
/// same append succeeds and everything acknowledged before is there.
#[tokio::test]
async fn an_outage_is_a_storage_error_and_a_retry_succeeds() {
    let mut server = NatsServer::start();
    let journal = open(&server.url()).await;
    let stream = contract::fresh_stream(&contract::fresh_tenant());
    let before = contract::events(&stream, 1, 2);
    journal
        .append(&stream, 0, before.clone())
        .await
        .expect("append");
    server.kill();
    let batch = contract::events(&stream, 3, 1);
    let failed = journal.append(&stream, 2, batch.clone()).await;
    assert!(
        matches!(&failed, Err(JournalError::Storage(error)) if error.kind() == StorageErrorKind::Write),
        "{failed:?}"
    );
    let read = journal.read(&stream, 0, 10).await;
    assert!(
        matches!(&read, Err(JournalError::Storage(error)) if error.kind() == StorageErrorKind::Read),
        "{read:?}"
    );
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    let outcome = loop {
        match journal.append(&stream, 2, batch.clone()).await {
            Ok(outcome) => break outcome,
            Err(JournalError::Storage(error)) => {
                assert!(Instant::now() < deadline, "no recovery: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(outcome.last_seq, 3);
    let mut expected = before;
    expected.extend(batch);
    assert_eq!(journal.read(&stream, 0, 10).await.expect("read"), expected);
}

/// Appends of one stream, retried until the journal answers (a failover makes some fail with a
/// storage error; a retry of an append that did land is `already_stored`).
async fn append_until_done(journal: &JetStreamJournal, stream: &StreamId, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match journal
            .append(stream, seq - 1, contract::events(stream, seq, 1))
            .await
        {
            Ok(outcome) => {
                assert_eq!(outcome.last_seq, seq);
                return;
            }
            Err(JournalError::Storage(error)) => {
                assert!(Instant::now() < deadline, "appends never resumed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
}

/// A 3-server cluster with R3 streams: killing the stream's leader loses nothing acknowledged,
/// and appends go on once a new leader is elected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_server_cluster_survives_losing_the_leader() {
    let mut cluster = NatsCluster::start(3).await;
    let replicated = JetStreamJournalConfig {
        replicas: 3,
        ..config()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let journal = loop {
        // The meta leader may not know every peer yet: R3 placement fails until it does.
        match JetStreamJournal::connect(
            &cluster.urls(),
            replicated.clone(),
            &prometheus::Registry::new(),
        )
        .await
        {
            Ok(journal) => break journal,
            Err(error) => {
                assert!(Instant::now() < deadline, "journal never opened: {error}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    let tenant = contract::fresh_tenant();
    let streams: Vec<StreamId> = (0..5).map(|_| contract::fresh_stream(&tenant)).collect();
    for stream in &streams {
        journal
            .append(stream, 0, contract::events(stream, 1, 3))
            .await
            .expect("append before the failure");
    }
    journal
        .save_snapshot(
            &streams[0],
            Snapshot {
                seq: 3,
                schema_version: 1,
                state: vec![3],
            },
        )
        .await
        .expect("snapshot");

    let urls: Vec<String> = cluster
        .servers
        .iter()
        .map(support::cluster::ClusterServer::url)
        .collect();
    let client = async_nats::connect(urls.clone()).await.expect("connects");
    let info = async_nats::jetstream::new(client)
        .get_stream("CREST_JOURNAL")
        .await
        .expect("stream")
        .info()
        .await
        .expect("info")
        .clone();
    let cluster_info = info.cluster.expect("clustered stream");
    assert_eq!(
        cluster_info.replicas.len(),
        2,
        "R3: a leader and two replicas"
    );
    let leader = cluster_info.leader.expect("a leader");
    cluster.kill(&leader);

    for stream in &streams {
        append_until_done(&journal, stream, 4).await;
    }
    for stream in &streams {
        append_until_done(&journal, stream, 5).await;
        let events = journal.read(stream, 0, 100).await.expect("read");
        assert_eq!(seqs(&events), vec![1, 2, 3, 4, 5], "{stream}");
        assert_eq!(journal.last_seq(stream).await.expect("last_seq"), 5);
    }
    let new_leader =
        async_nats::jetstream::new(async_nats::connect(urls.clone()).await.expect("connects"))
            .get_stream("CREST_JOURNAL")
            .await
            .expect("stream")
            .info()
            .await
            .expect("info")
            .cluster
            .clone()
            .and_then(|cluster| cluster.leader);
    assert!(
        new_leader.is_some() && new_leader.as_ref() != Some(&leader),
        "a new leader took over from {leader}: {new_leader:?}"
    );
    // A journal opened after the failure sees the same, reading from the survivors.
    let survivors: Vec<String> = cluster
        .servers
        .iter()
        .filter(|server| server.running())
        .map(support::cluster::ClusterServer::url)
        .collect();
    let reopened = JetStreamJournal::connect(
        &survivors.join(","),
        replicated,
        &prometheus::Registry::new(),
    )
    .await
    .expect("reopens on the survivors");
    for stream in &streams {
        assert_eq!(
            seqs(&reopened.read(stream, 0, 100).await.expect("read")),
            vec![1, 2, 3, 4, 5]
        );
    }
    assert_eq!(
        reopened
            .load_snapshot(&streams[0])
            .await
            .expect("load")
            .map(|snapshot| snapshot.seq),
        Some(3)
    );
    let lagging = reopened.lagging(Cursor::Published).await.expect("lagging");
    for stream in &streams {
        assert!(
            lagging
                .iter()
                .any(|item| &item.stream == stream && item.done_seq == 0),
            "{stream} lags the outbox"
        );
    }
}

/// Appends are counted under the fjall journal's metric names; identical re-appends are not.
#[tokio::test]
async fn appends_are_measured_like_the_embedded_journal() {
    let server = NatsServer::start();
    let registry = prometheus::Registry::new();
    let journal = JetStreamJournal::connect(&server.url(), config(), &registry)
        .await
        .expect("journal opens");
    let stream = contract::fresh_stream(&contract::fresh_tenant());
    let batch = contract::events(&stream, 1, 3);
    journal
        .append(&stream, 0, batch.clone())
        .await
        .expect("append");
    journal
        .append(&stream, 3, contract::events(&stream, 4, 1))
        .await
        .expect("append");
    assert!(
        journal
            .append(&stream, 0, batch)
            .await
            .expect("re-append")
            .already_stored
    );
    let families = registry.gather();
    let family = |name: &str| {
        families
            .iter()
            .find(|family| family.name() == name)
            .unwrap_or_else(|| panic!("{name} registered"))
    };
    let appended = family("crest_journal_appended_events_total").get_metric()[0]
        .get_counter()
        .get_value();
    assert_eq!(appended, 4.0, "events written, the re-append not counted");
    let latency = family("crest_journal_append_seconds").get_metric()[0].get_histogram();
    assert_eq!(latency.get_sample_count(), 3, "every append timed");
}

/// An append longer than one atomic batch is refused before anything is written.
#[tokio::test]
async fn an_append_longer_than_a_batch_is_refused_whole() {
    let (_server, journal) = fresh().await;
    let stream = contract::fresh_stream(&contract::fresh_tenant());
    let too_many =
        u64::try_from(crest_infra::journal::jetstream::MAX_APPEND_EVENTS).expect("fits") + 1;
    let refused = journal
        .append(&stream, 0, contract::events(&stream, 1, too_many))
        .await;
    assert!(
        matches!(&refused, Err(JournalError::Storage(error)) if error.kind() == StorageErrorKind::Write),
        "{refused:?}"
    );
    assert_eq!(journal.last_seq(&stream).await.expect("last_seq"), 0);
    let most = too_many - 1;
    journal
        .append(&stream, 0, contract::events(&stream, 1, most))
        .await
        .expect("a full batch appends");
    assert_eq!(
        seqs(&journal.read(&stream, 0, 2000).await.expect("read")),
        (1..=most).collect::<Vec<_>>()
    );
}

/// Nodes starting together, and restarts, open the same stream and buckets without error; a stream
/// created earlier without the options the journal needs gets them.
#[tokio::test]
async fn opening_is_idempotent_and_completes_an_older_stream() {
    let server = NatsServer::start();
    let client = async_nats::connect(server.url()).await.expect("connects");
    let jetstream = async_nats::jetstream::new(client);
    jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: "CREST_JOURNAL".to_owned(),
            subjects: vec!["crest.journal.>".to_owned()],
            ..Default::default()
        })
        .await
        .expect("an older stream");
    let url = server.url();
    let (first, second) = tokio::join!(open(&url), open(&url));
    let config = jetstream
        .get_stream("CREST_JOURNAL")
        .await
        .expect("stream")
        .cached_info()
        .config
        .clone();
    assert!(config.allow_atomic_publish, "atomic batches switched on");
    assert!(config.allow_direct, "direct gets switched on");
    let stream = contract::fresh_stream(&contract::fresh_tenant());
    first
        .append(&stream, 0, contract::events(&stream, 1, 2))
        .await
        .expect("append");
    second
        .save_snapshot(
            &stream,
            Snapshot {
                seq: 2,
                schema_version: 1,
                state: vec![2],
            },
        )
        .await
        .expect("snapshot");
    let third = open(&server.url()).await;
    assert_eq!(third.last_seq(&stream).await, Ok(2));
    assert_eq!(
        third
            .load_snapshot(&stream)
            .await
            .expect("load")
            .map(|snapshot| snapshot.state),
        Some(vec![2])
    );
}

/// Sequence numbers at the end of the range are refused, not a panic.
#[tokio::test]
async fn sequence_numbers_that_would_overflow_are_refused() {
    let (_server, journal) = fresh().await;
    let stream = contract::fresh_stream(&contract::fresh_tenant());
    let event = StoredEvent {
        seq: u64::MAX,
        bytes: vec![1],
    };
    let result = journal.append(&stream, u64::MAX, vec![event]).await;
    assert_eq!(
        result,
        Err(JournalError::BadSequence { expected: u64::MAX })
    );
    assert_eq!(journal.read(&stream, u64::MAX, 10).await, Ok(Vec::new()));
    assert_eq!(journal.writer_epoch(&stream, u64::MAX).await, Ok(None));
}
