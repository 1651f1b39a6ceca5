//! Demo data for a fresh `crest serve`: two agents and a few conversations in the `demo` tenant,
//! posted through the same path as real traffic. Channel message ids are fixed, so seeding twice changes nothing.

use crest_actors::Node;
use crest_actors::conversation::CommandError;
use crest_actors::desk::{DeskCommand, DeskError};
use crest_proto::commands::InboundMessage;
use crest_proto::envelope::EventMeta;
use crest_proto::routing::Presence;
use crest_proto::{AgentId, CustomerId, IdError, MessageId, TenantId};

/// (customer, channel message id, text)
const DEMO_MESSAGES: &[(&str, &str, &str)] = &[
    ("alice", "demo-alice-1", "Hello, where is my order?"),
    ("alice", "demo-alice-2", "Thanks!"),
    ("wang-lei", "demo-wang-1", "你好，我的订单什么时候发货？"),
    ("wang-lei", "demo-wang-2", "我要转人工"),
    ("bob", "demo-bob-1", "I want a refund for my headphones"),
];

/// (agent, groups, capacity, languages): demo agent seats, online at the first start.
const DEMO_AGENTS: &[(&str, &[&str], u16, &[&str])] = &[
    ("mei", &["after_sales", "general"], 3, &["zh", "en"]),
    ("tom", &["pre_sales", "general"], 2, &["en"]),
];

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A demo id is invalid (a programming error).
    #[error(transparent)]
    Id(#[from] IdError),
    /// A demo message was not accepted.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// A demo agent was not set.
    #[error(transparent)]
    Routing(#[from] DeskError),
}

/// Seeds the `demo` tenant. Returns how many messages were new.
pub async fn seed(node: &Node) -> Result<usize, DemoError> {
    let tenant = TenantId::new("demo")?;
    seed_agents(node, &tenant).await?;
    let mut new_messages = 0;
    for (customer, id, text) in DEMO_MESSAGES {
        let message = InboundMessage {
            customer: CustomerId::new(&tenant, *customer)?,
            channel: "web".to_owned(),
            channel_message_id: (*id).to_owned(),
            text: (*text).to_owned(),
            message_id: MessageId::generate(&tenant),
        };
        let meta = EventMeta {
            idempotency_key: Some(message.idempotency_key()),
            ..EventMeta::default()
        };
        let ack = node.region().customer_message(message, meta).await?;
        if !ack.duplicate {
            new_messages += 1;
        }
    }
    Ok(new_messages)
}

/// Creates the demo agents (online) unless they exist: a later start keeps what users changed.
async fn seed_agents(node: &Node, tenant: &TenantId) -> Result<(), DemoError> {
    for (name, groups, capacity, languages) in DEMO_AGENTS {
        let agent = AgentId::new(tenant, *name)?;
        let exists = {
            let agent = agent.clone();
            node.routing()
                .query(tenant, move |desk, _| desk.agents.contains_key(&agent))
                .await?
        };
        if exists {
            continue;
        }
        let command = DeskCommand::SetAgent {
            agent,
            status: Some(Presence::Online),
            groups: Some(groups.iter().map(|group| (*group).to_owned()).collect()),
            capacity: Some(*capacity),
            languages: Some(
                languages
                    .iter()
                    .map(|language| (*language).to_owned())
                    .collect(),
            ),
        };
        node.routing().command(tenant, command).await?;
    }
    Ok(())
}
