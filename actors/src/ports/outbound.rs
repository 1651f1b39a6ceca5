//! The outbound port: where the messages the bot and agents write to customers leave Crest for
//! the channel the customer came through (a merchant's webhook, a messaging platform).
//!
//! The reactor hands the port the news of every conversation event that matters to a channel
//! ([`outbound_news`] picks them out, a pure function of the event), and records its progress
//! only after the port accepted them: an adapter that makes the news durable before answering
//! (a journaled outbox) loses nothing across a crash. News may come again after a restart (the
//! reactor delivers at least once); an adapter recognises a reply it already queued by its
//! message id.

use async_trait::async_trait;
use crest_proto::events::ConversationEvent;
use crest_proto::leads::LeadCaptured;
use crest_proto::{ConversationId, CustomerId, Envelope, MessageId, StreamId};

/// Who wrote a message that goes out to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboundRole {
    /// The bot.
    Bot,
    /// A human agent.
    Agent,
}

impl OutboundRole {
    /// `bot` or `agent`, as the outbound JSON names the role.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bot => "bot",
            Self::Agent => "agent",
        }
    }
}

/// A message written to the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundReply {
    /// The conversation.
    pub conversation: ConversationId,
    /// The message's id: stable, the receiver's de-duplication key.
    pub message: MessageId,
    /// Who wrote it.
    pub role: OutboundRole,
    /// The text.
    pub text: String,
    /// When it was written (ms since the epoch).
    pub at_ms: u64,
    /// The conversation event holding it.
    pub source_stream: StreamId,
    /// Its sequence number.
    pub source_seq: u64,
}

/// A lead the bot captured, for the tenant's CRM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundLead {
    /// The conversation.
    pub conversation: ConversationId,
    /// The lead.
    pub lead: LeadCaptured,
    /// When it was captured (ms since the epoch).
    pub at_ms: u64,
    /// The conversation event holding it.
    pub source_stream: StreamId,
    /// Its sequence number.
    pub source_seq: u64,
}

/// What a channel adapter needs to know of a conversation event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundNews {
    /// A conversation started: whose it is and the channel of its first message.
    Started {
        /// The conversation.
        conversation: ConversationId,
        /// Its customer.
        customer: CustomerId,
        /// The channel label of the first message.
        channel: String,
    },
    /// The customer wrote through `channel`: replies go back there from now on.
    CustomerWrote {
        /// The conversation.
        conversation: ConversationId,
        /// The channel label of the message.
        channel: String,
    },
    /// The bot or an agent wrote to the customer.
    Reply(OutboundReply),
    /// The bot captured a lead (for the tenant's CRM integration).
    Lead(OutboundLead),
}

impl OutboundNews {
    /// The conversation the news is about.
    #[must_use]
    pub fn conversation(&self) -> &ConversationId {
        match self {
            Self::Started { conversation, .. } | Self::CustomerWrote { conversation, .. } => {
                conversation
            }
            Self::Reply(reply) => &reply.conversation,
            Self::Lead(lead) => &lead.conversation,
        }
    }
}

/// What an outbox entry delivers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OutboxPayload {
    /// A message's text (a channel's outbox).
    Message(String),
    /// A captured lead (the CRM's outbox).
    Lead(crest_proto::leads::LeadCaptured),
}

/// An operation on a channel's outbox, sent to the node running it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OutboxOp {
    /// Queue entries, each with what it delivers.
    Queue(Vec<(crest_proto::channels::OutboxQueued, OutboxPayload)>),
    /// List at most this many dead letters, oldest first.
    DeadLetters(usize),
    /// Queue dead letter `id` again, on behalf of `by`.
    Requeue {
        /// The message's id.
        id: String,
        /// Who asked.
        by: String,
    },
}

/// A message in a channel's dead letters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetterRecord {
    /// The message as it was queued.
    pub entry: crest_proto::channels::OutboxQueued,
    /// Attempts made.
    pub attempts: u32,
    /// What the last attempt met.
    pub last_error: String,
}

/// What an outbox answers to an [`OutboxOp`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OutboxAnswer {
    /// The messages are durable.
    Queued,
    /// The dead letters.
    DeadLetters(Vec<DeadLetterRecord>),
    /// Whether the dead letter was there (and is queued again).
    Requeued(bool),
}

/// The adapter could not take the news now; the reactor retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outbound news not accepted: {0}")]
pub struct OutboundError(pub String);

/// Takes conversations' outbound news (see the module's documentation).
#[async_trait]
pub trait Outbound: Send + Sync + std::fmt::Debug + 'static {
    /// Accepts `news` (in stream order per conversation). Returns once what must not be lost is
    /// durable; an error makes the reactor offer the same news again later.
    async fn news(&self, news: Vec<OutboundNews>) -> Result<(), OutboundError>;

    /// Whether news of `tenant`'s conversations matters at all (cheap; asked for every event, so
    /// that tenants without channels cost the reactor nothing).
    fn follows(&self, tenant: &crest_proto::TenantId) -> bool {
        let _ = tenant;
        true
    }

    /// In a cluster: runs `op` on the outbox of `tenant`'s channel `channel`, which runs on this
    /// node (the owner of the outbox stream's shard). A queue answers once the entries are
    /// durable; an error (not served here, say) makes the sender try again, at the shard's owner.
    async fn outbox(
        &self,
        tenant: &crest_proto::TenantId,
        channel: &str,
        op: OutboxOp,
    ) -> Result<OutboxAnswer, OutboundError> {
        let _ = (tenant, channel, op);
        Err(OutboundError("no outboxes on this node".to_owned()))
    }

    /// In a cluster: this node serves `shard` from now on (its outboxes may start here).
    fn shard_served(&self, shard: u16) {
        let _ = shard;
    }

    /// In a cluster: this node stops serving `shard`; returns once its outboxes stopped here.
    async fn shard_released(&self, shard: u16) {
        let _ = shard;
    }
}

/// Whether `envelope` may hold outbound news (by its type alone, without decoding it).
#[must_use]
pub fn may_be_news(envelope: &Envelope) -> bool {
    matches!(
        envelope.event_type.as_str(),
        "conversation.started"
            | "conversation.customer_message_received"
            | "conversation.bot_replied"
            | "conversation.agent_replied"
            | "conversation.proactive_sent"
            | "lead.captured"
    )
}

/// The outbound news in a journaled event, if any: a conversation's start, a customer message
/// (its channel), every bot reply and agent message that is not an internal note, and every
/// captured lead.
#[must_use]
pub fn outbound_news(envelope: &Envelope) -> Option<OutboundNews> {
    if !may_be_news(envelope) {
        return None;
    }
    let conversation = envelope.stream.conversation_id()?;
    let event = envelope.decode_event::<ConversationEvent>().ok()?;
    let reply = |message: MessageId, role: OutboundRole, text: String| {
        OutboundNews::Reply(OutboundReply {
            conversation: conversation.clone(),
            message,
            role,
            text,
            at_ms: envelope.timestamp_ms,
            source_stream: envelope.stream.clone(),
            source_seq: envelope.seq,
        })
    };
    match event {
        ConversationEvent::Started(started) => Some(OutboundNews::Started {
            conversation: conversation.clone(),
            customer: started.customer,
            channel: started.channel,
        }),
        ConversationEvent::CustomerMessageReceived(received) => Some(OutboundNews::CustomerWrote {
            conversation: conversation.clone(),
            channel: received.channel,
        }),
        ConversationEvent::BotReplied(replied) => {
            Some(reply(replied.message, OutboundRole::Bot, replied.text))
        }
        ConversationEvent::AgentReplied(replied) if !replied.internal => {
            Some(reply(replied.message, OutboundRole::Agent, replied.text))
        }
        // A proactive message goes out like the bot's replies (Crest wrote it, not a person).
        ConversationEvent::ProactiveSent(sent) => {
            Some(reply(sent.message, OutboundRole::Bot, sent.text))
        }
        ConversationEvent::LeadCaptured(lead) => Some(OutboundNews::Lead(OutboundLead {
            conversation,
            lead,
            at_ms: envelope.timestamp_ms,
            source_stream: envelope.stream.clone(),
            source_seq: envelope.seq,
        })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crest_proto::envelope::EventMeta;
    use crest_proto::events::{AgentReplied, BotReplied, CustomerMessageReceived, Started};
    use crest_proto::{AgentId, TenantId};

    use super::*;

    fn wrap(event: &ConversationEvent, stream: &StreamId, seq: u64) -> Envelope {
        Envelope::wrap(
            event,
            stream.clone(),
            seq,
            1_000 + seq,
            EventMeta::default(),
        )
        .expect("sample encodes")
    }

    #[test]
    fn only_what_a_channel_needs_is_news() {
        let tenant = TenantId::new("shop").expect("valid tenant");
        let conversation = ConversationId::generate(&tenant);
        let customer = CustomerId::new(&tenant, "c-1").expect("valid customer");
        let stream = StreamId::conversation(&conversation);
        let started = wrap(
            &ConversationEvent::Started(Started {
                conversation: conversation.clone(),
                customer: customer.clone(),
                channel: "wx".to_owned(),
            }),
            &stream,
            1,
        );
        assert_eq!(
            outbound_news(&started),
            Some(OutboundNews::Started {
                conversation: conversation.clone(),
                customer,
                channel: "wx".to_owned()
            })
        );
        let received = wrap(
            &ConversationEvent::CustomerMessageReceived(CustomerMessageReceived {
                message: MessageId::generate(&tenant),
                channel: "wx".to_owned(),
                channel_message_id: "m-1".to_owned(),
                text: "hello".to_owned(),
            }),
            &stream,
            2,
        );
        assert!(matches!(
            outbound_news(&received),
            Some(OutboundNews::CustomerWrote { .. })
        ));
        let reply_id = MessageId::generate(&tenant);
        let replied = wrap(
            &ConversationEvent::BotReplied(BotReplied {
                message: reply_id.clone(),
                in_reply_to: MessageId::generate(&tenant),
                text: "hi".to_owned(),
                intent: None,
                confidence: 0.0,
                emotion: None,
                citations: Vec::new(),
            }),
            &stream,
            3,
        );
        let Some(OutboundNews::Reply(reply)) = outbound_news(&replied) else {
            panic!("a bot reply is news");
        };
        assert_eq!(reply.message, reply_id);
        assert_eq!(reply.role, OutboundRole::Bot);
        assert_eq!((reply.source_seq, reply.at_ms), (3, 1_003));
        let agent = AgentId::new(&tenant, "alice").expect("valid agent");
        let note = |internal| {
            wrap(
                &ConversationEvent::AgentReplied(AgentReplied {
                    message: MessageId::generate(&tenant),
                    agent: agent.clone(),
                    agent_message_id: "a-1".to_owned(),
                    text: "on it".to_owned(),
                    internal,
                }),
                &stream,
                4,
            )
        };
        assert_eq!(
            outbound_news(&note(true)),
            None,
            "internal notes stay inside"
        );
        assert!(matches!(
            outbound_news(&note(false)),
            Some(OutboundNews::Reply(OutboundReply {
                role: OutboundRole::Agent,
                ..
            }))
        ));
    }
}
