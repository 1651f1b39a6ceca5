//! The journal contract suite against the embedded fjall journal.

use std::sync::Arc;

use crest_actors::ports::journal::EventJournal;
use crest_infra::journal::contract;
use crest_infra::journal::{FjallJournal, FjallJournalConfig};

fn open(dir: &std::path::Path, config: FjallJournalConfig) -> FjallJournal {
    FjallJournal::open(dir, config, &prometheus::Registry::new()).expect("journal opens")
}

fn fresh() -> (tempfile::TempDir, FjallJournal) {
    let dir = tempfile::tempdir().expect("temp dir");
    let journal = open(dir.path(), FjallJournalConfig::default());
    (dir, journal)
}

#[tokio::test]
async fn append_then_read() {
    let (_dir, journal) = fresh();
    contract::append_then_read(&journal).await;
}

#[tokio::test]
async fn read_from_sequence() {
    let (_dir, journal) = fresh();
    contract::read_from_sequence(&journal).await;
}

#[tokio::test]
async fn conflict_on_wrong_expected_seq() {
    let (_dir, journal) = fresh();
    contract::conflict_on_wrong_expected_seq(&journal).await;
}

#[tokio::test]
async fn idempotent_reappend() {
    let (_dir, journal) = fresh();
    contract::idempotent_reappend(&journal).await;
}

#[tokio::test]
async fn snapshots() {
    let (_dir, journal) = fresh();
    contract::snapshots(&journal).await;
}

#[tokio::test]
async fn scan_visits_every_event_once() {
    let (_dir, journal) = fresh();
    contract::scan_visits_every_event_once(&journal).await;
}

#[tokio::test]
async fn cursor_progress() {
    let (_dir, journal) = fresh();
    contract::cursor_progress(&journal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_streams_concurrently() {
    let (_dir, journal) = fresh();
    contract::many_streams_concurrently(Arc::new(journal), 10_000, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_streams_concurrently_without_group_commit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = FjallJournalConfig {
        group_commit: false,
        ..FjallJournalConfig::default()
    };
    contract::many_streams_concurrently(Arc::new(open(dir.path(), config)), 10_000, 1).await;
}

#[tokio::test]
async fn survives_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_owned();
    contract::survives_reopen(
        || {
            let path = path.clone();
            async move { Arc::new(open(&path, FjallJournalConfig::default())) as Arc<dyn EventJournal> }
        },
        drop,
    )
    .await;
}

#[tokio::test]
async fn closed_journal_refuses_appends() {
    let (_dir, journal) = fresh();
    journal.close().expect("close");
    let stream = contract::fresh_stream(&contract::fresh_tenant());
    let result = journal
        .append(&stream, 0, contract::events(&stream, 1, 1))
        .await;
    assert_eq!(result, Err(crest_actors::ports::JournalError::Closed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_shares_syncs_between_appends() {
    let dir = tempfile::tempdir().expect("temp dir");
    let registry = prometheus::Registry::new();
    let journal = Arc::new(
        FjallJournal::open(dir.path(), FjallJournalConfig::default(), &registry).expect("opens"),
    );
    contract::many_streams_concurrently(journal, 2_000, 1).await;
    let families = registry.gather();
    let batch = families
        .iter()
        .find(|family| family.name() == "crest_journal_batch_appends")
        .expect("batch metric registered");
    let histogram = batch.get_metric()[0].get_histogram();
    let commits = histogram.get_sample_count();
    let appends = histogram.get_sample_sum();
    assert_eq!(appends as u64, 2_000, "every append was counted once");
    assert!(
        commits < 2_000,
        "2000 concurrent appends must share commits, got {commits} commits"
    );
}
