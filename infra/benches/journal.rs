//! Journal append throughput and latency on the embedded fjall journal, with and without group
//! commit: one appender at a time (latency of a durable append) and 256 concurrent appenders on
//! distinct streams (what a busy node does).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crest_actors::ports::journal::EventJournal;
use crest_infra::journal::{FjallJournal, FjallJournalConfig, contract};
use criterion::{BenchmarkId, Criterion, Throughput};

fn open(dir: &std::path::Path, group_commit: bool) -> Arc<FjallJournal> {
    let config = FjallJournalConfig {
        group_commit,
        ..FjallJournalConfig::default()
    };
    match FjallJournal::open(dir, config, &prometheus::Registry::new()) {
        Ok(journal) => Arc::new(journal),
        Err(error) => panic!("journal opens: {error}"),
    }
}

/// Appends one event to each of `streams` streams concurrently, `rounds` times.
async fn concurrent_appends(
    journal: &Arc<FjallJournal>,
    streams: &[crest_proto::StreamId],
    heads: &mut [u64],
) {
    let mut tasks = Vec::with_capacity(streams.len());
    for (stream, head) in streams.iter().zip(heads.iter()) {
        let journal = Arc::clone(journal);
        let stream = stream.clone();
        let head = *head;
        tasks.push(tokio::spawn(async move {
            let events = contract::events(&stream, head + 1, 1);
            journal.append(&stream, head, events).await.is_ok()
        }));
    }
    for (task, head) in tasks.into_iter().zip(heads.iter_mut()) {
        if matches!(task.await, Ok(true)) {
            *head += 1;
        }
    }
}

fn bench(criterion: &mut Criterion) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => panic!("runtime: {error}"),
    };
    let mut group = criterion.benchmark_group("journal_append");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));

    for group_commit in [true, false] {
        let label = if group_commit {
            "group_commit"
        } else {
            "sync_each"
        };
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("temp dir: {error}"));
        let journal = open(dir.path(), group_commit);

        // One appender: the latency of one durable append.
        let stream = contract::fresh_stream(&contract::fresh_tenant());
        let mut head = 0_u64;
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("sequential", label), |bencher| {
            bencher.iter_custom(|iterations| {
                runtime.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iterations {
                        let events = contract::events(&stream, head + 1, 1);
                        if journal.append(&stream, head, events).await.is_ok() {
                            head += 1;
                        }
                    }
                    started.elapsed()
                })
            });
        });

        // 256 appenders on distinct streams, each appending once per round.
        let tenant = contract::fresh_tenant();
        let streams: Vec<_> = (0..256).map(|_| contract::fresh_stream(&tenant)).collect();
        let mut heads = vec![0_u64; streams.len()];
        group.throughput(Throughput::Elements(streams.len() as u64));
        group.bench_function(BenchmarkId::new("concurrent_256", label), |bencher| {
            bencher.iter_custom(|iterations| {
                runtime.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iterations {
                        concurrent_appends(&journal, &streams, &mut heads).await;
                    }
                    started.elapsed()
                })
            });
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
