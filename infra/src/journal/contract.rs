//! The journal contract: behaviour every [`EventJournal`] adapter must have. Each adapter's test
//! file calls these functions (see `infra/tests/journal_fjall.rs`); a ScyllaDB or JetStream adapter
//! runs the same suite. Functions panic with a message on the first violated expectation.
//!
//! Stream names carry a fresh tenant per call, so the suite can share one journal instance.

use std::sync::Arc;

use crest_actors::ports::journal::{
    Cursor, EventJournal, JournalError, Snapshot, StoredEvent, read_all,
};
use crest_proto::envelope::EventMeta;
use crest_proto::events::{ConversationEvent, CustomerMessageReceived};
use crest_proto::{ConversationId, Envelope, MessageId, StreamId, TenantId};

/// A fresh tenant for one contract run, so runs never see each other's streams.
#[must_use]
pub fn fresh_tenant() -> TenantId {
    let id = ulid::Ulid::new().to_string().to_lowercase();
    TenantId::new(format!("t{id}"))
        .unwrap_or_else(|error| unreachable!("generated tenant is valid: {error}"))
}

/// A fresh conversation stream.
#[must_use]
pub fn fresh_stream(tenant: &TenantId) -> StreamId {
    StreamId::conversation(&ConversationId::generate(tenant))
}

/// Real encoded events `first..first+count` of `stream`.
#[must_use]
pub fn events(stream: &StreamId, first: u64, count: u64) -> Vec<StoredEvent> {
    let tenant = TenantId::new(stream.tenant())
        .unwrap_or_else(|error| unreachable!("stream tenant is valid: {error}"));
    (first..first + count)
        .map(|seq| {
            let event = ConversationEvent::CustomerMessageReceived(CustomerMessageReceived {
                message: MessageId::generate(&tenant),
                channel: "web".to_owned(),
                channel_message_id: format!("m-{seq}"),
                text: format!("message {seq} 你好"),
            });
            let envelope = Envelope::wrap(
                &event,
                stream.clone(),
                seq,
                1_700_000_000_000 + seq,
                EventMeta::default(),
            )
            .unwrap_or_else(|error| unreachable!("sample event encodes: {error}"));
            StoredEvent::from_envelope(&envelope)
                .unwrap_or_else(|error| unreachable!("sample envelope encodes: {error}"))
        })
        .collect()
}

fn seqs(events: &[StoredEvent]) -> Vec<u64> {
    events.iter().map(|event| event.seq).collect()
}

/// Appends are readable in order, and `last_seq` follows them.
pub async fn append_then_read(journal: &dyn EventJournal) {
    let stream = fresh_stream(&fresh_tenant());
    assert_eq!(
        journal.last_seq(&stream).await.expect("last_seq"),
        0,
        "a new stream is empty"
    );
    let outcome = journal
        .append(&stream, 0, events(&stream, 1, 3))
        .await
        .expect("first append");
    assert_eq!(outcome.last_seq, 3);
    assert!(!outcome.already_stored);
    journal
        .append(&stream, 3, events(&stream, 4, 1))
        .await
        .expect("second append");
    let read = journal.read(&stream, 0, 100).await.expect("read");
    assert_eq!(seqs(&read), vec![1, 2, 3, 4]);
    for event in &read {
        let envelope = event.envelope().expect("stored bytes decode");
        assert_eq!(envelope.seq, event.seq);
        assert_eq!(envelope.stream, stream);
    }
    assert_eq!(journal.last_seq(&stream).await.expect("last_seq"), 4);
}

/// A scan pages through every event of every stream exactly once, each stream in order.
pub async fn scan_visits_every_event_once(journal: &dyn EventJournal) {
    let tenant = fresh_tenant();
    let streams: Vec<StreamId> = (0..5).map(|_| fresh_stream(&tenant)).collect();
    for (index, stream) in (1u64..).zip(&streams) {
        journal
            .append(stream, 0, events(stream, 1, index))
            .await
            .expect("append");
    }
    let mut seen: std::collections::HashMap<StreamId, Vec<u64>> = std::collections::HashMap::new();
    let mut after = None;
    loop {
        // A small page, so paging across stream boundaries is exercised.
        let page = journal.scan(after.clone(), 2).await.expect("scan");
        let Some(last) = page.last() else { break };
        let last = last.envelope().expect("decodes");
        after = Some((last.stream.clone(), last.seq));
        for event in page {
            let envelope = event.envelope().expect("decodes");
            assert_eq!(envelope.seq, event.seq);
            seen.entry(envelope.stream).or_default().push(event.seq);
        }
    }
    for (index, stream) in (1u64..).zip(&streams) {
        let expected: Vec<u64> = (1..=index).collect();
        assert_eq!(
            seen.get(stream),
            Some(&expected),
            "every event of {stream} once, in order"
        );
    }
}

/// Reads start after the given sequence number and honour the limit.
pub async fn read_from_sequence(journal: &dyn EventJournal) {
    let stream = fresh_stream(&fresh_tenant());
    journal
        .append(&stream, 0, events(&stream, 1, 10))
        .await
        .expect("append");
    assert_eq!(
        seqs(&journal.read(&stream, 7, 100).await.expect("read")),
        vec![8, 9, 10]
    );
    assert_eq!(
        seqs(&journal.read(&stream, 2, 3).await.expect("read")),
        vec![3, 4, 5]
    );
    assert!(
        journal
            .read(&stream, 10, 100)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        journal
            .read(&stream, u64::MAX, 100)
            .await
            .expect("read")
            .is_empty()
    );
    let other = fresh_stream(&fresh_tenant());
    assert!(
        journal.read(&other, 0, 100).await.expect("read").is_empty(),
        "streams are separate"
    );
    assert_eq!(
        read_all(journal, &stream, 0).await.expect("read_all").len(),
        10
    );
}

/// A writer with a stale expected sequence number is refused and nothing is written.
pub async fn conflict_on_wrong_expected_seq(journal: &dyn EventJournal) {
    let stream = fresh_stream(&fresh_tenant());
    journal
        .append(&stream, 0, events(&stream, 1, 2))
        .await
        .expect("append");
    let stale = journal.append(&stream, 1, events(&stream, 2, 1)).await;
    assert!(
        matches!(
            stale,
            Err(JournalError::Conflict {
                expected: 1,
                actual: 2,
                ..
            })
        ),
        "stale writer: {stale:?}"
    );
    let ahead = journal.append(&stream, 5, events(&stream, 6, 1)).await;
    assert!(
        matches!(ahead, Err(JournalError::Conflict { actual: 2, .. })),
        "gap: {ahead:?}"
    );
    let misnumbered = journal.append(&stream, 2, events(&stream, 4, 1)).await;
    assert!(
        matches!(misnumbered, Err(JournalError::BadSequence { expected: 2 })),
        "{misnumbered:?}"
    );
    assert!(matches!(
        journal.append(&stream, 2, Vec::new()).await,
        Err(JournalError::BadSequence { .. })
    ));
    assert_eq!(
        journal.last_seq(&stream).await.expect("last_seq"),
        2,
        "nothing was written"
    );
}

/// Re-appending the identical events succeeds without writing; different events conflict.
pub async fn idempotent_reappend(journal: &dyn EventJournal) {
    let stream = fresh_stream(&fresh_tenant());
    let batch = events(&stream, 1, 2);
    journal
        .append(&stream, 0, batch.clone())
        .await
        .expect("append");
    let again = journal
        .append(&stream, 0, batch.clone())
        .await
        .expect("identical re-append");
    assert!(again.already_stored);
    assert_eq!(again.last_seq, 2);
    let different = journal.append(&stream, 0, events(&stream, 1, 2)).await;
    assert!(
        matches!(different, Err(JournalError::Conflict { .. })),
        "{different:?}"
    );
    let stored = journal.read(&stream, 0, 10).await.expect("read");
    assert_eq!(stored, batch, "the first write is what stays");
}

/// The latest snapshot is returned; snapshots of one stream are invisible to others.
pub async fn snapshots(journal: &dyn EventJournal) {
    let stream = fresh_stream(&fresh_tenant());
    assert_eq!(journal.load_snapshot(&stream).await.expect("load"), None);
    let first = Snapshot {
        seq: 5,
        schema_version: 1,
        state: b"five".to_vec(),
    };
    journal.save_snapshot(&stream, first).await.expect("save");
    let second = Snapshot {
        seq: 9,
        schema_version: 2,
        state: "九".as_bytes().to_vec(),
    };
    journal
        .save_snapshot(&stream, second.clone())
        .await
        .expect("save");
    assert_eq!(
        journal.load_snapshot(&stream).await.expect("load"),
        Some(second)
    );
    let other = fresh_stream(&fresh_tenant());
    assert_eq!(journal.load_snapshot(&other).await.expect("load"), None);
}

/// Cursor progress (the outbox's and the reactor's): a stream lags a cursor until its last event
/// is marked, each cursor on its own, and a new append makes it lag again.
pub async fn cursor_progress(journal: &dyn EventJournal) {
    let tenant = fresh_tenant();
    let stream = fresh_stream(&tenant);
    let other = fresh_stream(&tenant);
    let mine = async |cursor: Cursor| {
        let mut list: Vec<(StreamId, u64)> = journal
            .lagging(cursor)
            .await
            .expect("lagging")
            .into_iter()
            .filter(|item| item.stream.tenant() == tenant.as_str())
            .map(|item| (item.stream, item.done_seq))
            .collect();
        list.sort();
        list
    };
    journal
        .append(&stream, 0, events(&stream, 1, 3))
        .await
        .expect("append");
    journal
        .append(&other, 0, events(&other, 1, 1))
        .await
        .expect("append");
    let both = |first: u64, second: u64| {
        let mut list = vec![(stream.clone(), first), (other.clone(), second)];
        list.sort();
        list
    };
    for cursor in Cursor::ALL {
        assert_eq!(mine(cursor).await, both(0, 0), "{cursor:?}");
    }
    journal
        .mark_progress(
            Cursor::Published,
            &[(stream.clone(), 2), (other.clone(), 1)],
        )
        .await
        .expect("mark");
    assert_eq!(mine(Cursor::Published).await, vec![(stream.clone(), 2)]);
    assert_eq!(
        mine(Cursor::Reacted).await,
        both(0, 0),
        "cursors are independent"
    );
    journal
        .mark_progress(Cursor::Published, &[(stream.clone(), 3)])
        .await
        .expect("mark");
    assert!(mine(Cursor::Published).await.is_empty());
    journal
        .mark_progress(Cursor::Reacted, &[(stream.clone(), 3), (other.clone(), 1)])
        .await
        .expect("mark");
    assert!(mine(Cursor::Reacted).await.is_empty());
    journal
        .append(&stream, 3, events(&stream, 4, 1))
        .await
        .expect("append");
    for cursor in Cursor::ALL {
        assert_eq!(mine(cursor).await, vec![(stream.clone(), 3)], "{cursor:?}");
    }
    // A stream a cursor does not follow never lags it (the reactor and customer streams).
    let customer = StreamId::customer(
        &crest_proto::CustomerId::new(&tenant, "c-1").expect("valid customer id"),
    );
    journal
        .append(&customer, 0, events(&customer, 1, 1))
        .await
        .expect("append");
    assert!(!Cursor::Reacted.follows(customer.kind()));
    assert!(
        !mine(Cursor::Reacted)
            .await
            .iter()
            .any(|(lagging, _)| lagging == &customer)
    );
    assert!(
        mine(Cursor::Published)
            .await
            .iter()
            .any(|(lagging, _)| lagging == &customer)
    );
}

/// Many writers on many streams at once: every append lands, in order, in its own stream.
pub async fn many_streams_concurrently(
    journal: Arc<dyn EventJournal>,
    streams: usize,
    appends_per_stream: u64,
) {
    let tenant = fresh_tenant();
    let mut tasks = Vec::with_capacity(streams);
    for _ in 0..streams {
        let journal = Arc::clone(&journal);
        let stream = fresh_stream(&tenant);
        tasks.push(tokio::spawn(async move {
            for seq in 1..=appends_per_stream {
                journal
                    .append(&stream, seq - 1, events(&stream, seq, 1))
                    .await
                    .expect("concurrent append");
            }
            stream
        }));
    }
    for task in tasks {
        let stream = task.await.expect("writer task");
        let stored = journal.read(&stream, 0, 1000).await.expect("read");
        assert_eq!(
            seqs(&stored),
            (1..=appends_per_stream).collect::<Vec<_>>(),
            "{stream}"
        );
        for event in stored {
            assert_eq!(
                event.envelope().expect("decodes").stream,
                stream,
                "no cross-stream writes"
            );
        }
    }
}

/// After the journal is closed and opened again, everything acknowledged is there.
pub async fn survives_reopen<F, Fut>(open: F, close: impl Fn(Arc<dyn EventJournal>))
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn EventJournal>>,
{
    let stream = fresh_stream(&fresh_tenant());
    let journal = open().await;
    journal
        .append(&stream, 0, events(&stream, 1, 5))
        .await
        .expect("append");
    journal
        .save_snapshot(
            &stream,
            Snapshot {
                seq: 5,
                schema_version: 1,
                state: vec![1, 2, 3],
            },
        )
        .await
        .expect("snapshot");
    journal.flush().await.expect("flush");
    close(journal);
    let reopened = open().await;
    assert_eq!(
        seqs(&reopened.read(&stream, 0, 100).await.expect("read")),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(reopened.last_seq(&stream).await.expect("last_seq"), 5);
    assert!(
        reopened
            .load_snapshot(&stream)
            .await
            .expect("load")
            .is_some()
    );
    reopened
        .append(&stream, 5, events(&stream, 6, 1))
        .await
        .expect("append after reopen");
    let stale = reopened.append(&stream, 0, events(&stream, 1, 1)).await;
    assert!(
        matches!(stale, Err(JournalError::Conflict { .. })),
        "heads survive reopen: {stale:?}"
    );
    close(reopened);
}
