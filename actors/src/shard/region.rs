//! The shard region: the handle through which everything reaches entity actors. It hashes a stream
//! to its shard (`fnv1a64(stream) % 1024` slices, four per shard) and sends the message there.

use std::sync::Arc;

use crest_proto::commands::{ConversationCommand, InboundMessage};
use crest_proto::envelope::EventMeta;
use crest_proto::slice::shard_of;
use crest_proto::{AgentId, ConversationId, CustomerId, StreamId, TicketId};
use ractor::ActorRef;
use tokio::sync::oneshot;

use super::recorder::{RecordError, RecordResult, RecorderMsg, Recording};
use super::supervisor::ShardMsg;
use crate::agent::actor::AgentRecording;
use crate::agent::{AgentCommand, AgentState};
use crate::command::{CommandAck, CommandError, ConversationGateway};
use crate::conversation::{ConversationMsg, ConversationState};
use crate::customer::CustomerMsg;
use crate::ticket::{TicketCommand, TicketRecording, TicketState};

/// Routes messages to the shards of this node.
#[derive(Debug, Clone)]
pub struct ShardRegion {
    shards: Arc<Vec<ActorRef<ShardMsg>>>,
}

impl ShardRegion {
    /// A region over `shards` (index = shard number).
    #[must_use]
    pub fn new(shards: Vec<ActorRef<ShardMsg>>) -> Self {
        debug_assert_eq!(shards.len(), usize::from(crest_proto::slice::SHARD_COUNT));
        Self {
            shards: Arc::new(shards),
        }
    }

    fn shard(&self, stream: &StreamId) -> &ActorRef<ShardMsg> {
        &self.shards[usize::from(shard_of(stream.as_str()))]
    }

    /// The shards.
    #[must_use]
    pub fn shards(&self) -> &[ActorRef<ShardMsg>] {
        &self.shards
    }

    /// Routes a customer message to the customer's open conversation (opening one if needed) and
    /// waits until it is journaled.
    pub async fn customer_message(
        &self,
        message: InboundMessage,
        meta: EventMeta,
    ) -> Result<CommandAck, CommandError> {
        let (reply, answer) = oneshot::channel();
        let customer = message.customer.clone();
        let stream = StreamId::customer(&customer);
        let envelope = ShardMsg::Customer(
            customer,
            CustomerMsg::Inbound {
                message: Box::new(message),
                meta,
                reply,
            },
        );
        self.shard(&stream)
            .cast(envelope)
            .map_err(|_| CommandError::Unavailable)?;
        answer.await.map_err(|_| CommandError::Unavailable)?
    }

    /// Sends a command to a conversation and waits for its answer.
    pub async fn conversation_command(
        &self,
        conversation: &ConversationId,
        command: ConversationCommand,
        meta: EventMeta,
    ) -> Result<CommandAck, CommandError> {
        let (reply, answer) = oneshot::channel();
        let message = ConversationMsg::Command {
            command: Box::new(command),
            meta,
            reply: Some(reply),
        };
        self.send_to_conversation(conversation, message)?;
        answer.await.map_err(|_| CommandError::Unavailable)?
    }

    /// Reads a conversation's state; `None` if it does not exist.
    pub async fn conversation_state(
        &self,
        conversation: &ConversationId,
    ) -> Result<Option<ConversationState>, CommandError> {
        let (reply, answer) = oneshot::channel();
        self.send_to_conversation(conversation, ConversationMsg::Read(reply))?;
        answer.await.map_err(|_| CommandError::Unavailable)
    }

    /// The customer's open conversation, if any.
    pub async fn open_conversation(
        &self,
        customer: &CustomerId,
    ) -> Result<Option<ConversationId>, CommandError> {
        let (reply, answer) = oneshot::channel();
        let stream = StreamId::customer(customer);
        self.shard(&stream)
            .cast(ShardMsg::Customer(
                customer.clone(),
                CustomerMsg::OpenConversation(reply),
            ))
            .map_err(|_| CommandError::Unavailable)?;
        answer.await.map_err(|_| CommandError::Unavailable)
    }

    /// Tells a customer's identity stream that one of its conversations closed; answers once it
    /// is recorded (or was already).
    pub async fn end_customer_conversation(
        &self,
        customer: &CustomerId,
        conversation: &ConversationId,
    ) -> Result<(), CommandError> {
        let (reply, answer) = oneshot::channel();
        let stream = StreamId::customer(customer);
        let message = ShardMsg::Customer(
            customer.clone(),
            CustomerMsg::ConversationEnded(conversation.clone(), reply),
        );
        self.shard(&stream)
            .cast(message)
            .map_err(|_| CommandError::Unavailable)?;
        answer.await.map_err(|_| CommandError::Unavailable)?
    }

    fn send_to_conversation(
        &self,
        conversation: &ConversationId,
        message: ConversationMsg,
    ) -> Result<(), CommandError> {
        let stream = StreamId::conversation(conversation);
        self.shard(&stream)
            .cast(ShardMsg::Conversation(conversation.clone(), message))
            .map_err(|_| CommandError::Unavailable)
    }

    /// Sends a command to an agent's record and waits for its answer.
    pub async fn agent_command(
        &self,
        agent: &AgentId,
        command: AgentCommand,
        meta: EventMeta,
    ) -> RecordResult<AgentRecording> {
        self.record::<AgentRecording>(agent, command, meta, ShardMsg::Agent)
            .await
    }

    /// Reads an agent's record; `None` if it has no events.
    pub async fn agent_state(&self, agent: &AgentId) -> Result<Option<AgentState>, CommandError> {
        self.read::<AgentRecording>(agent, ShardMsg::Agent).await
    }

    /// Sends a command to a ticket and waits for its answer (the ticket after it).
    pub async fn ticket_command(
        &self,
        ticket: &TicketId,
        command: TicketCommand,
        meta: EventMeta,
    ) -> RecordResult<TicketRecording> {
        self.record::<TicketRecording>(ticket, command, meta, ShardMsg::Ticket)
            .await
    }

    /// Reads a ticket; `None` if it was never opened.
    pub async fn ticket_state(
        &self,
        ticket: &TicketId,
    ) -> Result<Option<TicketState>, CommandError> {
        self.read::<TicketRecording>(ticket, ShardMsg::Ticket).await
    }

    async fn record<R: Recording>(
        &self,
        id: &R::Id,
        command: R::Command,
        meta: EventMeta,
        message: fn(R::Id, RecorderMsg<R>) -> ShardMsg,
    ) -> RecordResult<R> {
        let (reply, answer) = oneshot::channel();
        let command = RecorderMsg::Command {
            command: Box::new(command),
            meta,
            reply,
        };
        self.shard(&R::stream(id))
            .cast(message(id.clone(), command))
            .map_err(|_| RecordError::Unavailable)?;
        answer.await.map_err(|_| RecordError::Unavailable)?
    }

    async fn read<R: Recording>(
        &self,
        id: &R::Id,
        message: fn(R::Id, RecorderMsg<R>) -> ShardMsg,
    ) -> Result<Option<R::State>, CommandError> {
        let (reply, answer) = oneshot::channel();
        self.shard(&R::stream(id))
            .cast(message(id.clone(), RecorderMsg::Read(reply)))
            .map_err(|_| CommandError::Unavailable)?;
        answer.await.map_err(|_| CommandError::Unavailable)
    }

    /// Number of live entity actors across all shards.
    pub async fn live_entities(&self) -> usize {
        let mut total = 0;
        for shard in self.shards.iter() {
            let (reply, answer) = oneshot::channel();
            if shard.cast(ShardMsg::CountLive(reply)).is_ok() {
                total += answer.await.unwrap_or(0);
            }
        }
        total
    }
}

#[async_trait::async_trait]
impl ConversationGateway for ShardRegion {
    async fn conversation_command(
        &self,
        conversation: &ConversationId,
        command: ConversationCommand,
        meta: EventMeta,
    ) -> Result<CommandAck, CommandError> {
        Self::conversation_command(self, conversation, command, meta).await
    }
}
