//! Shards served by other nodes: the requests and replies that travel between nodes, which shards
//! this node serves, and the port ([`ShardLink`]) that carries a request to a shard's owner.
//!
//! Every call through the [`ShardRegion`](super::ShardRegion) is a [`ShardRequest`]. Alone, a node
//! serves every shard and runs each request on its own shard actors. In a cluster it runs those
//! of the shards it serves and sends the others over the link; while a shard has no owner (a
//! hand-over, a failover) the request is tried again, with growing pauses, until the command
//! timeout. Retrying is safe: commands carry idempotency keys (message ids, reaction sources).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;
use crest_proto::commands::{ConversationCommand, InboundMessage};
use crest_proto::envelope::EventMeta;
use crest_proto::slice::shard_of;
use crest_proto::{AgentId, ConversationId, CustomerId, StreamId, TenantId, TicketId};
use serde::{Deserialize, Serialize};

use super::recorder::{RecordError, RecordResult};
use crate::agent::actor::AgentRecording;
use crate::agent::{AgentCommand, AgentState};
use crate::command::{CommandAck, CommandError};
use crate::conversation::ConversationState;
use crate::desk::{DeskCommand, DeskError, DeskQuery, DeskView};
use crate::ticket::{TicketCommand, TicketRecording, TicketState};

/// A call to an entity of a shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ShardRequest {
    /// A customer's message (to the customer's open conversation).
    CustomerMessage {
        /// The message.
        message: Box<InboundMessage>,
        /// Causation.
        meta: EventMeta,
    },
    /// A command to a conversation.
    ConversationCommand {
        /// The conversation.
        conversation: ConversationId,
        /// The command.
        command: Box<ConversationCommand>,
        /// Causation.
        meta: EventMeta,
    },
    /// Read a conversation.
    ConversationState {
        /// The conversation.
        conversation: ConversationId,
    },
    /// The customer's open conversation.
    OpenConversation {
        /// The customer.
        customer: CustomerId,
    },
    /// A customer's conversation ended.
    EndCustomerConversation {
        /// The customer.
        customer: CustomerId,
        /// The conversation.
        conversation: ConversationId,
    },
    /// A customer's merges changed: it asks routing again where its messages go.
    CustomerMergesChanged {
        /// The customer.
        customer: CustomerId,
        /// The merge made or undone.
        merge: crest_proto::MergeId,
    },
    /// Record an identity of a customer (if given) and read them all.
    CustomerIdentities {
        /// The customer.
        customer: CustomerId,
        /// The identity and whether it is verified; `None` only reads.
        record: Option<(crest_proto::customers::Identity, bool)>,
    },
    /// A command to an agent's record.
    AgentCommand {
        /// The agent.
        agent: AgentId,
        /// The command.
        command: Box<AgentCommand>,
        /// Causation.
        meta: EventMeta,
    },
    /// Read an agent's record.
    AgentState {
        /// The agent.
        agent: AgentId,
    },
    /// A command to a ticket.
    TicketCommand {
        /// The ticket.
        ticket: TicketId,
        /// The command.
        command: Box<TicketCommand>,
        /// Causation.
        meta: EventMeta,
    },
    /// Read a ticket.
    TicketState {
        /// The ticket.
        ticket: TicketId,
    },
    /// A command to a tenant's routing desk (served by the owner of the desk stream's shard).
    DeskCommand {
        /// The tenant.
        tenant: TenantId,
        /// The command.
        command: Box<DeskCommand>,
    },
    /// Reactions (commands naming their source events) to a tenant's routing desk, as one batch.
    DeskReactions {
        /// The tenant.
        tenant: TenantId,
        /// The reactions.
        reactions: Vec<(DeskCommand, EventMeta)>,
    },
    /// A named read of a tenant's routing desk, answered where the desk runs.
    DeskView {
        /// The tenant.
        tenant: TenantId,
        /// The read.
        query: DeskQuery,
    },
    /// An operation on a channel's outbox, which runs on the owner of its stream's shard (one
    /// writer per outbox).
    Outbox {
        /// The tenant.
        tenant: TenantId,
        /// The channel's name.
        channel: String,
        /// What to do.
        op: crate::ports::outbound::OutboxOp,
    },
}

impl ShardRequest {
    /// The stream of the entity it goes to (which decides the shard).
    #[must_use]
    pub fn stream(&self) -> StreamId {
        match self {
            Self::CustomerMessage { message, .. } => StreamId::customer(&message.customer),
            Self::OpenConversation { customer }
            | Self::EndCustomerConversation { customer, .. }
            | Self::CustomerIdentities { customer, .. }
            | Self::CustomerMergesChanged { customer, .. } => StreamId::customer(customer),
            Self::ConversationCommand { conversation, .. }
            | Self::ConversationState { conversation } => StreamId::conversation(conversation),
            Self::AgentCommand { agent, .. } | Self::AgentState { agent } => StreamId::agent(agent),
            Self::TicketCommand { ticket, .. } | Self::TicketState { ticket } => {
                StreamId::ticket(ticket)
            }
            Self::DeskCommand { tenant, .. }
            | Self::DeskReactions { tenant, .. }
            | Self::DeskView { tenant, .. } => StreamId::desk(tenant),
            Self::Outbox {
                tenant, channel, ..
            } => StreamId::channel_outbox(tenant, channel),
        }
    }

    /// The reply when no owner answered in time.
    #[must_use]
    pub fn unavailable(&self) -> ShardReply {
        match self {
            Self::CustomerMessage { .. } | Self::ConversationCommand { .. } => {
                ShardReply::Ack(Err(CommandError::Unavailable))
            }
            Self::ConversationState { .. } => {
                ShardReply::Conversation(Err(CommandError::Unavailable))
            }
            Self::OpenConversation { .. } => {
                ShardReply::OpenConversation(Err(CommandError::Unavailable))
            }
            Self::EndCustomerConversation { .. } | Self::CustomerMergesChanged { .. } => {
                ShardReply::Ended(Err(CommandError::Unavailable))
            }
            Self::Outbox { .. } => ShardReply::Outbox(Err(CommandError::Unavailable)),
            Self::CustomerIdentities { .. } => {
                ShardReply::Identities(Err(CommandError::Unavailable))
            }
            Self::AgentCommand { .. } => ShardReply::Agent(Err(RecordError::Unavailable)),
            Self::AgentState { .. } => ShardReply::AgentState(Err(CommandError::Unavailable)),
            Self::TicketCommand { .. } => ShardReply::Ticket(Err(RecordError::Unavailable)),
            Self::TicketState { .. } => ShardReply::TicketState(Err(CommandError::Unavailable)),
            Self::DeskCommand { .. } | Self::DeskReactions { .. } => {
                ShardReply::Desk(Err(DeskError::Unavailable))
            }
            Self::DeskView { .. } => ShardReply::DeskView(Err(DeskError::Unavailable)),
        }
    }
}

/// The answer to a [`ShardRequest`] (the variant follows the request's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ShardReply {
    /// A customer message's or conversation command's acknowledgement.
    Ack(Result<CommandAck, CommandError>),
    /// A conversation (`None`: it does not exist).
    Conversation(Result<Option<Box<ConversationState>>, CommandError>),
    /// The customer's open conversation.
    OpenConversation(Result<Option<ConversationId>, CommandError>),
    /// The end of a customer's conversation is recorded (or its merges' change is noted).
    Ended(Result<(), CommandError>),
    /// A customer's identities.
    Identities(Result<Vec<crest_proto::customers::IdentityRecorded>, CommandError>),
    /// An agent command's answer.
    Agent(RecordResult<AgentRecording>),
    /// An agent's record.
    AgentState(Result<Option<Box<AgentState>>, CommandError>),
    /// A ticket command's answer.
    Ticket(RecordResult<TicketRecording>),
    /// A ticket.
    TicketState(Result<Option<Box<TicketState>>, CommandError>),
    /// A desk command's or reactions' answer: the desk's last sequence number if events were
    /// journaled.
    Desk(Result<Option<u64>, DeskError>),
    /// The answer to a named read of a desk.
    DeskView(Result<DeskView, DeskError>),
    /// The answer of a channel's outbox.
    Outbox(Result<crate::ports::outbound::OutboxAnswer, CommandError>),
}

impl ShardReply {
    /// True if the entity stopped before answering (trying again is safe).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Ack(answer) => matches!(answer, Err(CommandError::Unavailable)),
            Self::Conversation(answer) => matches!(answer, Err(CommandError::Unavailable)),
            Self::OpenConversation(answer) => matches!(answer, Err(CommandError::Unavailable)),
            Self::Ended(answer) => matches!(answer, Err(CommandError::Unavailable)),
            Self::Identities(answer) => matches!(answer, Err(CommandError::Unavailable)),
            Self::AgentState(answer) => matches!(answer, Err(CommandError::Unavailable)),
            Self::TicketState(answer) => matches!(answer, Err(CommandError::Unavailable)),
            Self::Agent(answer) => matches!(answer, Err(RecordError::Unavailable)),
            Self::Ticket(answer) => matches!(answer, Err(RecordError::Unavailable)),
            Self::Desk(answer) => matches!(answer, Err(DeskError::Unavailable)),
            Self::DeskView(answer) => matches!(answer, Err(DeskError::Unavailable)),
            Self::Outbox(answer) => matches!(answer, Err(CommandError::Unavailable)),
        }
    }
}

/// Why a request did not reach a shard's owner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Nobody serves the shard now (a hand-over or failover is under way).
    #[error("no owner for the shard")]
    NoOwner,
    /// The owner did not answer or the answer was unreadable.
    #[error("link failed: {0}")]
    Failed(String),
}

/// Carries requests to the node that serves a shard.
#[async_trait]
pub trait ShardLink: Send + Sync + 'static {
    /// Sends `request` to the owner of `shard` and waits for its reply.
    async fn send(&self, shard: u16, request: &ShardRequest) -> Result<ShardReply, LinkError>;
}

/// Pauses between attempts to reach a shard that has no owner: from 20 ms, doubling, at most
/// 500 ms.
const FIRST_PAUSE: Duration = Duration::from_millis(20);
const LONGEST_PAUSE: Duration = Duration::from_millis(500);

/// Which shards this node serves (with the writer epoch of each), and how to reach the others.
pub struct Ownership {
    /// Per shard: the writer epoch while served here, 0 otherwise.
    epochs: Vec<AtomicU64>,
    /// Per shard: being handed over: no new requests here, but the entities still at work may
    /// still write (the lease is still held).
    draining: Vec<std::sync::atomic::AtomicBool>,
    link: Arc<dyn ShardLink>,
    patience: Duration,
}

impl std::fmt::Debug for Ownership {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Ownership")
            .field("served", &self.served().len())
            .field("patience", &self.patience)
            .finish_non_exhaustive()
    }
}

impl Ownership {
    /// A node in a cluster: it serves no shard until told to; requests to other shards go over
    /// `link`, tried again for at most `patience` (the command timeout).
    #[must_use]
    pub fn new(link: Arc<dyn ShardLink>, patience: Duration) -> Self {
        Self {
            epochs: (0..crest_proto::slice::SHARD_COUNT)
                .map(|_| AtomicU64::new(0))
                .collect(),
            draining: (0..crest_proto::slice::SHARD_COUNT)
                .map(|_| std::sync::atomic::AtomicBool::new(false))
                .collect(),
            link,
            patience,
        }
    }

    /// Starts serving `shard`, writing with `epoch` (positive).
    pub fn serve(&self, shard: u16, epoch: u64) {
        if let Some(slot) = self.epochs.get(usize::from(shard)) {
            slot.store(epoch.max(1), Ordering::Release);
        }
        if let Some(draining) = self.draining.get(usize::from(shard)) {
            draining.store(false, Ordering::Release);
        }
    }

    /// Starts handing `shard` over: its new requests go elsewhere (they wait for the next
    /// owner), while the entities still at work here may finish and write.
    pub fn drain(&self, shard: u16) {
        if let Some(draining) = self.draining.get(usize::from(shard)) {
            draining.store(true, Ordering::Release);
        }
    }

    /// Stops serving `shard`: its requests go to whoever serves it next, and nothing here may
    /// write to its streams any more.
    pub fn release(&self, shard: u16) {
        if let Some(slot) = self.epochs.get(usize::from(shard)) {
            slot.store(0, Ordering::Release);
        }
        if let Some(draining) = self.draining.get(usize::from(shard)) {
            draining.store(false, Ordering::Release);
        }
    }

    /// The writer epoch of `shard` if this node serves it (takes its requests).
    #[must_use]
    pub fn epoch(&self, shard: u16) -> Option<u64> {
        let draining = self
            .draining
            .get(usize::from(shard))
            .is_some_and(|draining| draining.load(Ordering::Acquire));
        self.writer_epoch(shard).filter(|_| !draining)
    }

    /// The writer epoch of `shard` while this node may write to its streams: it serves the shard,
    /// or is handing it over and still holds its lease.
    #[must_use]
    pub fn writer_epoch(&self, shard: u16) -> Option<u64> {
        self.epochs
            .get(usize::from(shard))
            .map(|slot| slot.load(Ordering::Acquire))
            .filter(|epoch| *epoch > 0)
    }

    /// The shards served here.
    #[must_use]
    pub fn served(&self) -> Vec<u16> {
        (0..crest_proto::slice::SHARD_COUNT)
            .filter(|shard| self.epoch(*shard).is_some())
            .collect()
    }

    /// The link to other nodes.
    #[must_use]
    pub fn link(&self) -> &Arc<dyn ShardLink> {
        &self.link
    }

    /// How long a request waits for a shard's owner.
    #[must_use]
    pub fn patience(&self) -> Duration {
        self.patience
    }

    /// Runs `request` with `serve_here` while this node serves its shard, else sends it to the
    /// shard's owner; tries again, with growing pauses, while the shard has no owner or its entity
    /// is stopping (a hand-over, a failover), for at most the patience.
    pub async fn route<F, Fut>(&self, request: ShardRequest, serve_here: F) -> ShardReply
    where
        F: Fn(ShardRequest) -> Fut,
        Fut: Future<Output = ShardReply>,
    {
        let shard = shard_of(request.stream().as_str());
        let deadline = Instant::now() + self.patience;
        let mut pause = FIRST_PAUSE;
        loop {
            let reply = if self.epoch(shard).is_some() {
                Ok(serve_here(request.clone()).await)
            } else {
                self.link.send(shard, &request).await
            };
            let failure = match reply {
                Ok(reply) if !reply.is_unavailable() => return reply,
                Ok(reply) => (reply, "entity unavailable".to_owned()),
                Err(error) => (request.unavailable(), error.to_string()),
            };
            if Instant::now() + pause >= deadline {
                tracing::warn!(shard, error = %failure.1, "no owner answered in time");
                return failure.0;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
    }
}
