//! Append and read throughput of the JetStream journal against real nats-servers (file storage,
//! loopback): one writer on one stream (each append waits for its ack) against many writers on
//! distinct streams (appends pipelined on one connection), single events and 3-event atomic
//! batches, then reads.
//!
//! Run: `cargo run --release -p crest-infra --example jetstream_journal [-- r1|r3 [STREAMS]]`: `r1`
//! (the default) starts one nats-server, `r3` a 3-server cluster with R3 streams (`STREAMS`: only
//! the cases with that many streams), all on free loopback
//! ports with temporary stores (`$NATS_SERVER`, `.tools/venv/bin/nats-server`, or PATH).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crest_actors::ports::journal::{EventJournal, read_all};
use crest_infra::journal::{JetStreamJournal, JetStreamJournalConfig, contract};
use crest_proto::StreamId;

/// How long each throughput case runs.
const CASE: Duration = Duration::from_secs(4);

/// The nats-server processes, killed on drop.
struct Servers {
    children: Vec<Child>,
    _stores: Vec<tempfile::TempDir>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|error| panic!("free port: {error}"))
}

/// Starts `size` servers (a cluster when more than one); their client URLs, comma-separated.
fn start_servers(size: usize) -> (Servers, String) {
    let binary = std::env::var_os("NATS_SERVER").map_or_else(
        || {
            let installed =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/nats-server");
            if installed.exists() {
                installed
            } else {
                PathBuf::from("nats-server")
            }
        },
        PathBuf::from,
    );
    let routes: Vec<u16> = (0..size).map(|_| free_port()).collect();
    let route_urls = routes
        .iter()
        .map(|port| format!("nats://127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut servers = Servers {
        children: Vec::new(),
        _stores: Vec::new(),
    };
    let mut urls = Vec::new();
    for (index, route) in routes.iter().enumerate() {
        let store = tempfile::tempdir().unwrap_or_else(|error| panic!("temp dir: {error}"));
        let port = free_port();
        let mut command = Command::new(&binary);
        command
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store.path())
            .args(["-n", &format!("bench-{index}")]);
        if size > 1 {
            command.args([
                "--cluster_name",
                "bench",
                "--cluster",
                &format!("nats://127.0.0.1:{route}"),
                "--routes",
                &route_urls,
            ]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        servers.children.push(child);
        servers._stores.push(store);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        urls.push(format!("nats://127.0.0.1:{port}"));
    }
    (servers, urls.join(","))
}

/// Opens the journal `name` (its own JetStream stream and buckets, so every case starts from an
/// empty stream), retrying while a new cluster elects its leaders; its metrics go to `registry`.
async fn open(
    url: &str,
    replicas: usize,
    name: &str,
    registry: &prometheus::Registry,
) -> JetStreamJournal {
    let config = JetStreamJournalConfig {
        stream_name: format!("BENCH_{name}"),
        subject_prefix: format!("bench.{name}"),
        kv_prefix: format!("bench_{name}"),
        replicas,
        ..JetStreamJournalConfig::default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match JetStreamJournal::connect(url, config.clone(), registry).await {
            Ok(journal) => return journal,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => panic!("journal opens: {error}"),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

#[allow(clippy::cast_precision_loss)]
fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// `writers` tasks, each appending `events_per_append` events at a time to its own stream for
/// [`CASE`]; returns (appends, events, elapsed, latencies).
async fn run_case(
    journal: &Arc<JetStreamJournal>,
    writers: usize,
    events_per_append: u64,
) -> (u64, u64, Duration, Vec<Duration>) {
    let tenant = contract::fresh_tenant();
    let started = Instant::now();
    let deadline = started + CASE;
    let mut tasks = Vec::with_capacity(writers);
    for _ in 0..writers {
        let journal = Arc::clone(journal);
        let stream = contract::fresh_stream(&tenant);
        tasks.push(tokio::spawn(async move {
            let mut head = 0;
            let mut appends = 0_u64;
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let events = contract::events(&stream, head + 1, events_per_append);
                let sent = Instant::now();
                match journal.append(&stream, head, events).await {
                    Ok(outcome) => {
                        latencies.push(sent.elapsed());
                        head = outcome.last_seq;
                        appends += 1;
                    }
                    Err(error) => panic!("append failed: {error}"),
                }
            }
            (appends, latencies)
        }));
    }
    let mut appends = 0;
    let mut latencies = Vec::new();
    for task in tasks {
        let (count, samples) = task.await.unwrap_or_else(|error| panic!("writer: {error}"));
        appends += count;
        latencies.extend(samples);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    (appends, appends * events_per_append, elapsed, latencies)
}

fn report(label: &str, (appends, events, elapsed, latencies): (u64, u64, Duration, Vec<Duration>)) {
    println!(
        "{label:<44} {:>9.0} appends/s {:>9.0} events/s   p50 {:>7.3} ms  p99 {:>7.3} ms",
        per_second(appends, elapsed),
        per_second(events, elapsed),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let replicas = match std::env::args().nth(1).as_deref() {
        None | Some("r1") => 1,
        Some("r3") => 3,
        Some(other) => panic!("unknown option {other}: use r1 or r3"),
    };
    let (_servers, url) = start_servers(replicas);
    println!(
        "JetStream journal, R{replicas}, one event ≈ 270 B, {CASE:?} per case, each on a new stream"
    );
    let cases: [(&str, usize, u64); 6] = [
        ("1 stream, 1 event per append", 1, 1),
        ("16 streams, 1 event per append", 16, 1),
        ("256 streams, 1 event per append", 256, 1),
        ("1024 streams, 1 event per append", 1024, 1),
        ("1 stream, 3-event atomic batch per append", 1, 3),
        ("256 streams, 3-event atomic batch per append", 256, 3),
    ];
    // An optional second argument runs only the cases with that many streams.
    let only: Option<usize> = std::env::args().nth(2).map(|streams| {
        streams
            .parse()
            .unwrap_or_else(|_| panic!("{streams:?}: give a number of streams, such as 1024"))
    });
    for (index, (label, writers, events)) in cases.into_iter().enumerate() {
        if only.is_some_and(|only| only != writers) {
            continue;
        }
        let registry = prometheus::Registry::new();
        let journal = Arc::new(open(&url, replicas, &format!("case{index}"), &registry).await);
        report(label, run_case(&journal, writers, events).await);
        let busy: f64 = registry
            .gather()
            .iter()
            .filter(|family| family.name() == "crest_journal_subject_busy_total")
            .flat_map(|family| family.get_metric())
            .map(|metric| metric.get_counter().get_value())
            .sum();
        if busy > 0.0 {
            println!(
                "{:<44} {busy} appends tried again: subject busy at the leader",
                ""
            );
        }
    }

    // Reads: a 10,000-event stream interleaved with another, read whole (pages of 1,000 events),
    // then one page from the middle by a journal that knows nothing about it (bisection).
    let registry = prometheus::Registry::new();
    let journal = Arc::new(open(&url, replicas, "reads", &registry).await);
    let tenant = contract::fresh_tenant();
    let long: StreamId = contract::fresh_stream(&tenant);
    let other: StreamId = contract::fresh_stream(&tenant);
    let mut head = 0;
    while head < 10_000 {
        for stream in [&long, &other] {
            journal
                .append(stream, head, contract::events(stream, head + 1, 100))
                .await
                .unwrap_or_else(|error| panic!("append: {error}"));
        }
        head += 100;
    }
    let cold = open(&url, replicas, "reads", &prometheus::Registry::new()).await;
    let started = Instant::now();
    let page = cold
        .read(&long, 7_777, 100)
        .await
        .unwrap_or_else(|error| panic!("read: {error}"));
    let cold_read = started.elapsed();
    assert_eq!(page.first().map(|event| event.seq), Some(7_778));
    let started = Instant::now();
    let all = read_all(journal.as_ref(), &long, 0)
        .await
        .unwrap_or_else(|error| panic!("read_all: {error}"));
    let elapsed = started.elapsed();
    assert_eq!(all.len(), 10_000);
    println!(
        "read_all of a 10,000-event stream: {:.1} ms ({:.0} events/s); cold read of 100 events at 7,778: {:.2} ms",
        elapsed.as_secs_f64() * 1e3,
        per_second(10_000, elapsed),
        cold_read.as_secs_f64() * 1e3,
    );
}
