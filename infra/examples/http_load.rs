//! A small closed-loop HTTP load client (until crest-loadtest lands): `C` virtual customers each post
//! messages one after another for `D` seconds and the acknowledgement latency is recorded.
//!
//! ```text
//! cargo run --release -p crest-infra --example http_load -- http://127.0.0.1:8080 200 20
//! ```
//! Arguments: target URL, concurrent customers (default 200), seconds (default 20), messages per
//! conversation (default 10: each virtual customer then continues as a new customer). The
//! environment variable `CREST_API_KEY` holds a key of the `load` tenant (integration or admin).
//! Prints one summary line and a JSON object.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let target = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let customers: usize = args
        .next()
        .and_then(|value| value.parse().ok())
        .unwrap_or(200);
    let seconds: u64 = args
        .next()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20);
    let per_conversation: u64 = args
        .next()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10)
        .max(1);
    let key = std::env::var("CREST_API_KEY").unwrap_or_default();
    let run = format!("{:x}", std::process::id());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(customers)
        .build()
        .unwrap_or_else(|error| panic!("http client: {error}"));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(customers);
    for customer in 0..customers {
        let http = http.clone();
        let url = format!("{target}/v1/tenants/load/messages");
        let run = run.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                .unwrap_or_else(|error| panic!("histogram: {error}"));
            let (mut ok, mut failed) = (0_u64, 0_u64);
            let mut index = 0_u64;
            while Instant::now() < deadline {
                index += 1;
                let body = format!(
                    r#"{{"channel":"web","customer":"{run}-c{customer}-{}","id":"{run}-{customer}-{index}","text":"where is my order {index}? 我的订单到哪了"}}"#,
                    index / per_conversation
                );
                let sent = Instant::now();
                let response = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .bearer_auth(&key)
                    .body(body)
                    .send()
                    .await;
                match response {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                        let _ = latencies.record(micros.max(1));
                        ok += 1;
                    }
                    Ok(response) => {
                        failed += 1;
                        if failed <= 3 {
                            let status = response.status();
                            let text = response.text().await.unwrap_or_default();
                            eprintln!("failed: {status} {text}");
                        }
                    }
                    Err(error) => {
                        failed += 1;
                        if failed <= 3 {
                            eprintln!("failed: {error}");
                        }
                    }
                }
            }
            (latencies, ok, failed)
        }));
    }
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .unwrap_or_else(|error| panic!("histogram: {error}"));
    let (mut ok, mut failed) = (0_u64, 0_u64);
    for task in tasks {
        let Ok((histogram, task_ok, task_failed)) = task.await else {
            continue;
        };
        let _ = latencies.add(&histogram);
        ok += task_ok;
        failed += task_failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ms = |quantile: f64| latencies.value_at_quantile(quantile) as f64 / 1000.0;
    println!(
        "{ok} acknowledged, {failed} failed in {elapsed:.1} s: {:.0} msg/s; ack p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        ok as f64 / elapsed,
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        latencies.max() as f64 / 1000.0
    );
    println!(
        "{{\"customers\":{customers},\"seconds\":{elapsed:.1},\"acked\":{ok},\"failed\":{failed},\"msgs_per_s\":{:.0},\"ack_p50_ms\":{:.3},\"ack_p90_ms\":{:.3},\"ack_p99_ms\":{:.3},\"ack_p999_ms\":{:.3}}}",
        ok as f64 / elapsed,
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999)
    );
}
