//! The brain's cost per customer message: `Engine::respond` with the default pack and model on
//! first turns and follow-ups like the load test's scripts (order status with an order number,
//! refunds, knowledge-base questions, small talk, an angry complaint), in Chinese and English.
//! One engine call is what the node's brain thread spends on each message.

use std::hint::black_box;

use crest_brain::engine::{Engine, PastTurn, Speaker, Turn};
use crest_brain::kb::Date;
use crest_proto::TenantId;
use criterion::{Criterion, Throughput};

/// `(earlier customer message, this message)`; an empty earlier message is a first turn.
const MESSAGES: [(&str, &str); 12] = [
    ("", "我的订单什么时候到？"),
    ("我的订单什么时候到？", "2026111100003"),
    ("", "Where is my order?"),
    ("Where is my order?", "2026111100005"),
    ("", "我要退款，衣服尺码不合适"),
    ("", "I want a refund, the shoes don't fit"),
    ("", "双十一预售定金可以退吗"),
    ("", "how long does a refund take"),
    ("", "do you offer free returns?"),
    ("", "发什么快递？几天能到"),
    ("", "你好，在吗"),
    (
        "",
        "This is a scam! I want to complain, get me a human agent now!",
    ),
];

fn main() {
    let model = match crest_brain::engine::train_default_intent_model() {
        Ok(model) => model,
        Err(error) => panic!("the default model trains: {error}"),
    };
    let engine = match Engine::new(model) {
        Ok(engine) => engine,
        Err(error) => panic!("the engine builds: {error}"),
    };
    let tenant = match TenantId::new("bench") {
        Ok(tenant) => tenant,
        Err(error) => panic!("tenant: {error}"),
    };
    let today = match Date::new(2026, 11, 11) {
        Ok(date) => date,
        Err(error) => panic!("date: {error}"),
    };
    let histories: Vec<Vec<PastTurn>> = MESSAGES
        .iter()
        .map(|(earlier, _)| {
            if earlier.is_empty() {
                return Vec::new();
            }
            let outcome = engine.respond(&Turn {
                tenant: &tenant,
                customer: "c-1001",
                text: earlier,
                history: &[],
                vip: false,
                today,
            });
            vec![
                PastTurn {
                    speaker: Speaker::Customer,
                    text: (*earlier).to_owned(),
                    intent: None,
                    confidence: None,
                },
                PastTurn {
                    speaker: Speaker::Bot,
                    text: outcome.text.unwrap_or_default(),
                    intent: Some(outcome.intent),
                    confidence: Some(outcome.confidence),
                },
            ]
        })
        .collect();
    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("brain");
    group.throughput(Throughput::Elements(MESSAGES.len() as u64));
    group.bench_function("respond_12_script_messages", |bench| {
        bench.iter(|| {
            for ((_, text), history) in MESSAGES.iter().zip(&histories) {
                black_box(engine.respond(&Turn {
                    tenant: &tenant,
                    customer: "c-1001",
                    text,
                    history,
                    vip: false,
                    today,
                }));
            }
        });
    });
    group.finish();
    criterion.final_summary();
}
