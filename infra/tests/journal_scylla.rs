//! The journal contract suite against a real ScyllaDB (or Cassandra 4+), plus the behaviour only a
//! shared journal has (writer epochs, bucket boundaries).
//!
//! Runs only when `SCYLLA_URI` is set (`host:port`, several separated by commas): no CQL server
//! can be installed on the development machines, so without it every test prints
//! `skipped: SCYLLA_URI not set` and passes. Elsewhere:
//!
//! ```sh
//! docker run -d --name scylla -p 9042:9042 scylladb/scylla --smp 1 --developer-mode 1
//! SCYLLA_URI=127.0.0.1:9042 cargo nextest run -p crest-infra --test journal_scylla
//! ```
//!
//! Each test creates a fresh keyspace from `infra/deploy/scylla/schema.cql` (replication factor
//! `SCYLLA_REPLICATION_FACTOR`, 1 by default for a single node) and drops it when it passes.

use std::sync::Arc;

use crest_actors::ports::journal::{EventJournal, JournalError, StorageErrorKind, StoredEvent};
use crest_infra::journal::contract;
use crest_infra::journal::scylla::cql;
use crest_infra::journal::{ScyllaJournal, ScyllaJournalConfig};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

/// A keyspace made for one test.
struct TestKeyspace {
    config: ScyllaJournalConfig,
}

impl TestKeyspace {
    /// Creates the keyspace, or `None` (after saying so) when no server is configured.
    async fn create() -> Option<Self> {
        let uri = std::env::var("SCYLLA_URI").unwrap_or_default();
        if uri.trim().is_empty() {
            println!("skipped: SCYLLA_URI not set");
            return None;
        }
        let replication_factor = std::env::var("SCYLLA_REPLICATION_FACTOR")
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(1);
        let keyspace = format!(
            "crest_test_{}",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        let config = ScyllaJournalConfig {
            keyspace,
            ..ScyllaJournalConfig::with_uri(&uri)
        };
        ScyllaJournal::create_schema(&config, replication_factor)
            .await
            .expect("test keyspace created from schema.cql");
        Some(Self { config })
    }

    async fn open(&self) -> ScyllaJournal {
        self.open_as(0, &prometheus::Registry::new()).await
    }

    async fn open_as(&self, writer_epoch: u64, registry: &prometheus::Registry) -> ScyllaJournal {
        let config = ScyllaJournalConfig {
            writer_epoch,
            ..self.config.clone()
        };
        ScyllaJournal::connect(config, registry)
            .await
            .expect("journal connects")
    }

    /// A plain session on the keyspace, to write rows the journal never would (a raced writer).
    async fn session(&self) -> Session {
        SessionBuilder::new()
            .known_nodes(&self.config.known_nodes)
            .use_keyspace(&self.config.keyspace, false)
            .build()
            .await
            .expect("session")
    }

    async fn drop_keyspace(self) {
        let session = SessionBuilder::new()
            .known_nodes(&self.config.known_nodes)
            .build()
            .await
            .expect("session");
        let drop = format!("DROP KEYSPACE IF EXISTS {}", self.config.keyspace);
        if let Err(error) = session.query_unpaged(drop, ()).await {
            println!(
                "test keyspace {} left behind: {error}",
                self.config.keyspace
            );
        }
    }
}

fn counter(registry: &prometheus::Registry, name: &str) -> f64 {
    registry
        .gather()
        .iter()
        .find(|family| family.name() == name)
        .map_or(0.0, |family| {
            family.get_metric()[0].get_counter().get_value()
        })
}

#[tokio::test]
async fn append_then_read() {
    let Some(keyspace) = TestKeyspace::create().await else {
        return;
    };
    contract::append_then_read(&keyspace.open().await).await;
    keyspace.drop_keyspace().await;
}

#[tokio::test]
async fn read_from_sequence() {
    let Some(keyspace) = TestKeyspace::create().await else {
        return;
    };
    contract::read_from_sequence(&keyspace.open().await).await;
    keyspace.drop_keyspace().await;
}

#[tokio::test]
async fn conflict_on_wrong_expected_seq() {
    let Some(keyspace) = TestKeyspace::create().await else {
        return;
    };
    contract::conflict_on_wrong_expected_seq(&keyspace.open().await).await;
    keyspace.drop_keyspace().await;
}

#[tokio::test]
async fn idempotent_reappend() {
    let Some(keyspace) = TestKeyspace::create().await else {
        return;
    };
    contract::idempotent_reappend(&keyspace.open().await).await;
    keyspace.drop_keyspace().await;
}

#[tokio::test]
async fn snapshots() {
    let Some(keyspace) = TestKeyspace::create().await else {
        return;
    };
    contract::snapshots(&keyspace.open().await).await;
    keyspace.drop_keyspace().await;
}

#[tokio::test]
async fn scan_visits_every_event_once() {
    let Some(keyspace) = TestKeyspace::create().await else {
        return;
    };
    contract::scan_visits_every_event_once(&keyspace.open().await).await;
    keyspace.drop_keyspace().await;
}

#[tokio::test]
async fn cursor_progress() {
    let Some(keyspace) = TestKeyspace::create().await else {
        return;
    };
    contract::cursor_progress(&keyspace.open().await).await;
    keyspace.drop_keyspace().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_streams_concurrently() {
    let Some(keyspace) = TestKeyspace::create().await else {
        return;
    };
    contract::many_streams_concurrently(Arc::new(keyspace.open().await), 10_000, 3).await;
    keyspace.drop_keyspace().await;
}

#[tokio::test]
async fn survives_reopen() {
    let Some(keyspace) = TestKeyspace::create().await else {
        return;
    };
    contract::survives_reopen(
        || async { Arc::new(keyspace.open().await) as Arc<dyn EventJournal> },
        drop,
    )
    .await;
    keyspace.drop_keyspace().await;
}

#[tokio::test]
async fn closed_journal_refuses_calls() {
    let Some(keyspace) = TestKeyspace::create().await else {
        return;
    };
    let journal = keyspace.open().await;
    journal.close();
    let stream = contract::fresh_stream(&contract::fresh_tenant());
    let appended = journal
        .append(&stream, 0, contract::events(&stream, 1, 1))
        .await;
    assert_eq!(appended, Err(JournalError::Closed));
    assert_eq!(
        journal.read(&stream, 0, 10).await,
        Err(JournalError::Closed)
    );
    assert_eq!(journal.flush().await, Err(JournalError::Closed));
    keyspace.drop_keyspace().await;
}

#[tokio::test]
async fn oversized_appends_are_refused() {
    let Some(keyspace) = TestKeyspace::create().await else {
        return;
    };
    let journal = keyspace.open().await;
    let stream = contract::fresh_stream(&contract::fresh_tenant());
    let events = contract::events(&stream, 1, 101);
    match journal.append(&stream, 0, events).await {
        Err(JournalError::Storage(error)) => assert_eq!(error.kind(), StorageErrorKind::Write),
        other => panic!("an append of 101 events must be refused: {other:?}"),
    }
    assert_eq!(
        journal.last_seq(&stream).await,
        Ok(0),
        "nothing was written"
    );
    keyspace.drop_keyspace().await;
}

/// A replaced owner (older epoch) is refused once the new owner has written.
#[tokio::test]
async fn a_stale_owner_is_fenced() {
    let Some(keyspace) = TestKeyspace::create().await else {
        return;
    };
    let old_registry = prometheus::Registry::new();
    let old = keyspace.open_as(1, &old_registry).await;
    let new = keyspace.open_as(2, &prometheus::Registry::new()).await;
    let stream = contract::fresh_stream(&contract::fresh_tenant());
    old.append(&stream, 0, contract::events(&stream, 1, 2))
        .await
        .expect("old owner appends");
    new.append(&stream, 2, contract::events(&stream, 3, 1))
        .await
        .expect("the new owner takes over");
    // The old owner, still believing seq 2 is last, is refused; so it is after reloading, since
    // the stream's last event has a newer epoch than its own.
    let behind = old
        .append(&stream, 2, contract::events(&stream, 3, 1))
        .await;
    assert!(
        matches!(behind, Err(JournalError::Conflict { actual: 3, .. })),
        "{behind:?}"
    );
    let reloaded = old
        .append(&stream, 3, contract::events(&stream, 4, 1))
        .await;
    assert!(
        matches!(reloaded, Err(JournalError::Conflict { actual: 3, .. })),
        "{reloaded:?}"
    );
    assert_eq!(
        counter(&old_registry, "crest_journal_fenced_appends_total"),
        2.0
    );
    new.append(&stream, 3, contract::events(&stream, 4, 1))
        .await
        .expect("the new owner goes on");
    assert_eq!(new.last_seq(&stream).await, Ok(4));
    keyspace.drop_keyspace().await;
}

/// Rows a raced stale owner left behind: beside the new owner's row at the same seq (the highest
/// epoch wins, counted), and after the stream's end (ignored until the new owner writes there).
#[tokio::test]
async fn a_raced_stale_write_is_detected_and_outvoted() {
    let Some(keyspace) = TestKeyspace::create().await else {
        return;
    };
    let registry = prometheus::Registry::new();
    let journal = keyspace.open_as(2, &registry).await;
    let stream = contract::fresh_stream(&contract::fresh_tenant());
    let mine = contract::events(&stream, 1, 3);
    journal
        .append(&stream, 0, mine.clone())
        .await
        .expect("append");
    // The stale owner (epoch 1) raced at seq 3 and went on to seq 4.
    let session = keyspace.session().await;
    let insert = session.prepare(cql::INSERT_EVENT).await.expect("prepare");
    let stale = contract::events(&stream, 3, 2);
    for event in &stale {
        let row = cql::EventRow {
            stream: stream.as_str(),
            bucket: 0,
            seq: i64::try_from(event.seq).expect("small"),
            writer_epoch: 1,
            payload: &event.bytes,
        };
        session
            .execute_unpaged(&insert, &row)
            .await
            .expect("insert");
    }
    let read = journal.read(&stream, 0, 10).await.expect("read");
    assert_eq!(
        read, mine,
        "epoch 2 wins seq 3; the stale seq 4 is not history"
    );
    assert!(counter(&registry, "crest_journal_writer_conflicts_total") >= 1.0);
    assert!(counter(&registry, "crest_journal_stale_epoch_reads_total") >= 1.0);
    assert_eq!(journal.last_seq(&stream).await, Ok(3));
    let next = contract::events(&stream, 4, 1);
    journal
        .append(&stream, 3, next.clone())
        .await
        .expect("the owner writes over the stale tail");
    let read: Vec<StoredEvent> = journal.read(&stream, 2, 10).await.expect("read");
    assert_eq!(read, [mine[2].clone(), next[0].clone()]);
    keyspace.drop_keyspace().await;
}

/// An append that crosses a bucket boundary is stored whole in the next bucket and read back in
/// order from either side.
#[tokio::test]
async fn appends_across_a_bucket_boundary() {
    let Some(keyspace) = TestKeyspace::create().await else {
        return;
    };
    let journal = keyspace.open().await;
    let stream = contract::fresh_stream(&contract::fresh_tenant());
    let mut head = 0;
    while head < 9_997 {
        let count = (9_997 - head).min(100);
        journal
            .append(&stream, head, contract::events(&stream, head + 1, count))
            .await
            .expect("append");
        head += count;
    }
    let crossing = contract::events(&stream, 9_998, 5);
    journal
        .append(&stream, 9_997, crossing.clone())
        .await
        .expect("append across the boundary");
    assert_eq!(journal.last_seq(&stream).await, Ok(10_002));
    let read = journal.read(&stream, 9_996, 100).await.expect("read");
    let seqs: Vec<u64> = read.iter().map(|event| event.seq).collect();
    assert_eq!(seqs, (9_997..=10_002).collect::<Vec<_>>());
    assert_eq!(&read[1..], &crossing[..]);
    let again = journal
        .append(&stream, 9_997, crossing)
        .await
        .expect("retry");
    assert!(again.already_stored);
    let all = crest_actors::ports::journal::read_all(&journal, &stream, 0)
        .await
        .expect("read all");
    assert_eq!(all.len(), 10_002);
    assert!(all.iter().zip(1..).all(|(event, seq)| event.seq == seq));
    keyspace.drop_keyspace().await;
}

/// Runs without a server: a cluster that cannot be reached is a typed open error, not a panic or a
/// hang.
#[tokio::test]
async fn an_unreachable_cluster_is_an_open_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let config = ScyllaJournalConfig {
        connection_timeout: std::time::Duration::from_secs(2),
        ..ScyllaJournalConfig::with_uri(&address.to_string())
    };
    let started = std::time::Instant::now();
    match ScyllaJournal::connect(config.clone(), &prometheus::Registry::new()).await {
        Err(JournalError::Storage(error)) => assert_eq!(error.kind(), StorageErrorKind::Open),
        other => panic!("connecting to a closed port must fail to open: {other:?}"),
    }
    match ScyllaJournal::create_schema(&config, 1).await {
        Err(JournalError::Storage(error)) => assert_eq!(error.kind(), StorageErrorKind::Open),
        other => panic!("creating the schema without a server must fail: {other:?}"),
    }
    let bad_keyspace = ScyllaJournalConfig {
        keyspace: "Not-Valid".to_owned(),
        ..config
    };
    assert!(matches!(
        ScyllaJournal::connect(bad_keyspace, &prometheus::Registry::new()).await,
        Err(JournalError::Storage(_))
    ));
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}
