//! Demo data for a fresh `crest serve`: a few conversations in the `demo` tenant, posted through the
//! same path as real traffic. Channel message ids are fixed, so seeding twice changes nothing.

use crest_actors::Node;
use crest_actors::conversation::CommandError;
use crest_proto::commands::InboundMessage;
use crest_proto::envelope::EventMeta;
use crest_proto::{CustomerId, IdError, MessageId, TenantId};

/// (customer, channel message id, text)
const DEMO_MESSAGES: &[(&str, &str, &str)] = &[
    ("alice", "demo-alice-1", "Hello, where is my order?"),
    ("alice", "demo-alice-2", "Thanks!"),
    ("wang-lei", "demo-wang-1", "你好，我的订单什么时候发货？"),
    ("wang-lei", "demo-wang-2", "我要转人工"),
    ("bob", "demo-bob-1", "I want a refund for my headphones"),
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
}

/// Seeds the `demo` tenant. Returns how many messages were new.
pub async fn seed(node: &Node) -> Result<usize, DemoError> {
    let tenant = TenantId::new("demo")?;
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
