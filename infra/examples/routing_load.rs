//! Routing under load: one group with 500 online agents (capacity 1, all busy) and 2,000 waiting
//! chats, on a real node (fjall journal with group commit, desk actor, outbox).
//!
//! Measures, through the routing hub (every decision journaled before it answers):
//! * handoff → decision latency while 2,000+ chats wait (each handoff is queued and dispatch runs);
//! * capacity freed → offer latency (a chat ends; the best waiting chat is offered to the agent);
//! * assignments per second over a sustained cycle of end → offer → accept.
//!
//! Run: `cargo run --release -p crest-infra --example routing_load [-- AGENTS WAITING CYCLES]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use crest_actors::desk::{ChatStage, DeskCommand, HandoffInfo};
use crest_actors::test_brain::EchoBrain;
use crest_infra::server::{self, ServeConfig};
use crest_proto::events::HandoffReason;
use crest_proto::routing::{HandoffSummary, Presence};
use crest_proto::{AgentId, ConversationId, CustomerId, TenantId};

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

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: n={} p50={:.3} ms p99={:.3} ms max={:.3} ms",
        samples.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn handoff(tenant: &TenantId, n: u128, vip_like: bool) -> HandoffInfo {
    let conversation = ConversationId::from_parts(tenant.clone(), (1 << 100) + n);
    HandoffInfo {
        conversation,
        customer: CustomerId::new(tenant, format!("c{n}")).expect("valid"),
        reason: HandoffReason::CustomerRequest,
        group: Some("after_sales".to_owned()),
        handoff_seq: 1,
        take_over_by: None,
        summary: HandoffSummary {
            reason: if vip_like {
                "escalation: anger".to_owned()
            } else {
                "customer_request".to_owned()
            },
            intent: Some("refund_request".to_owned()),
            emotion: None,
            language: Some("zh".to_owned()),
            bot_intents: vec!["refund_request".to_owned()],
            orders: vec!["2026111100001".to_owned()],
            last_customer_text: "我要退款".to_owned(),
        },
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a number"));
    let agents = args.next().unwrap_or(500);
    let waiting = args.next().unwrap_or(2_000);
    let cycles = args.next().unwrap_or(5_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = ServeConfig {
        data_dir: dir.path().to_owned(),
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        ..ServeConfig::default()
    };
    let running = server::start(config, Arc::new(EchoBrain))
        .await
        .expect("node starts");
    let hub = Arc::clone(running.node.routing());
    let tenant = TenantId::new("bench").expect("valid");
    hub.command(
        &tenant,
        DeskCommand::ConfigureGroup {
            group: "after_sales".to_owned(),
            config: crest_actors::desk::GroupConfig {
                overflow_to: None,
                overflow_after_s: 3_600,
                max_waiting: 1_000_000,
                offer_timeout_s: 600,
            },
        },
    )
    .await
    .expect("configured");
    for index in 0..agents {
        hub.command(
            &tenant,
            DeskCommand::SetAgent {
                agent: AgentId::new(&tenant, format!("a{index}")).expect("valid"),
                status: Some(Presence::Online),
                groups: Some(vec!["after_sales".to_owned()]),
                capacity: Some(1),
                languages: Some(vec!["zh".to_owned()]),
            },
        )
        .await
        .expect("agent set");
    }
    // Fill every agent: one offered chat each, accepted.
    let mut next = 0u128;
    for _ in 0..agents {
        hub.command(&tenant, DeskCommand::Handoff(handoff(&tenant, next, false)))
            .await
            .expect("handoff");
        next += 1;
    }
    let offers = hub
        .query(&tenant, |desk, _| {
            desk.chats
                .iter()
                .filter_map(|(conversation, chat)| match &chat.stage {
                    ChatStage::Offered { agent, .. } => Some((agent.clone(), conversation.clone())),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .await
        .expect("query");
    for (agent, conversation) in offers {
        hub.command(
            &tenant,
            DeskCommand::Accept {
                agent,
                conversation,
            },
        )
        .await
        .expect("accept");
    }
    // 2,000 waiting chats.
    for _ in 0..waiting {
        hub.command(
            &tenant,
            DeskCommand::Handoff(handoff(&tenant, next, next.is_multiple_of(7))),
        )
        .await
        .expect("handoff");
        next += 1;
    }
    // Handoff → decision with `waiting` chats queued and nobody free.
    let mut handoffs = Vec::new();
    for _ in 0..500 {
        let started = Instant::now();
        hub.command(&tenant, DeskCommand::Handoff(handoff(&tenant, next, false)))
            .await
            .expect("handoff");
        handoffs.push(started.elapsed());
        next += 1;
    }
    // Sustained cycle: a chat ends → the best waiting chat is offered to the freed agent → accept.
    let mut freed_to_offer = Vec::new();
    let cycle_started = Instant::now();
    for _ in 0..cycles {
        // Keep the queue at its size.
        hub.command(&tenant, DeskCommand::Handoff(handoff(&tenant, next, false)))
            .await
            .expect("handoff");
        next += 1;
        let assigned = hub
            .query(&tenant, |desk, _| {
                desk.chats
                    .iter()
                    .find_map(|(conversation, chat)| match &chat.stage {
                        ChatStage::Assigned { .. } => Some(conversation.clone()),
                        _ => None,
                    })
            })
            .await
            .expect("query")
            .expect("an assigned chat");
        let started = Instant::now();
        hub.command(
            &tenant,
            DeskCommand::ChatFinished {
                conversation: assigned,
                reason: "resolved".to_owned(),
            },
        )
        .await
        .expect("finished");
        freed_to_offer.push(started.elapsed());
        let offer = hub
            .query(&tenant, |desk, _| {
                desk.chats
                    .iter()
                    .find_map(|(conversation, chat)| match &chat.stage {
                        ChatStage::Offered { agent, .. } => {
                            Some((agent.clone(), conversation.clone()))
                        }
                        _ => None,
                    })
            })
            .await
            .expect("query")
            .expect("an offer after capacity freed");
        hub.command(
            &tenant,
            DeskCommand::Accept {
                agent: offer.0,
                conversation: offer.1,
            },
        )
        .await
        .expect("accept");
    }
    let elapsed = cycle_started.elapsed();
    let (queued, online) = hub
        .query(&tenant, |desk, _| {
            (
                desk.chats
                    .values()
                    .filter(|chat| chat.stage == ChatStage::Waiting)
                    .count(),
                desk.agents.len(),
            )
        })
        .await
        .expect("query");
    println!("agents online: {online}, chats waiting at the end: {queued}");
    report("handoff → decision (queue full of waiting chats)", handoffs);
    report("capacity freed → offer", freed_to_offer);
    #[allow(clippy::cast_precision_loss)]
    let rate = cycles as f64 / elapsed.as_secs_f64();
    println!(
        "sustained: {cycles} assignments in {:.2} s = {rate:.0} assignments/s (each cycle: handoff + end + offer + accept, 3 journaled decisions and 2 queries)",
        elapsed.as_secs_f64()
    );
    running.stop().await.expect("stop");
}
