//! The shard region: the handle through which everything reaches entity actors. It hashes a stream
//! to its shard (`fnv1a64(stream) % 1024` slices, four per shard) and sends the request there: to
//! this node's shard actor, or to the node that serves the shard.

use std::sync::Arc;

use crest_proto::commands::{ConversationCommand, InboundMessage};
use crest_proto::envelope::EventMeta;
use crest_proto::slice::shard_of;
use crest_proto::{AgentId, ConversationId, CustomerId, StreamId, TicketId};
use ractor::ActorRef;
use tokio::sync::oneshot;

use super::recorder::{RecordError, RecordResult, RecorderMsg, Recording};
use super::remote::{Ownership, ShardReply, ShardRequest};
use super::supervisor::ShardMsg;
use crate::agent::actor::AgentRecording;
use crate::agent::{AgentCommand, AgentState};
use crate::command::{CommandAck, CommandError, ConversationGateway};
use crate::conversation::{ConversationMsg, ConversationState};
use crate::customer::CustomerMsg;
use crate::ticket::{TicketCommand, TicketRecording, TicketState};

/// Routes messages to the shards: to this node's shard actors for the shards it serves, over the
/// cluster's link for the others (see [`super::remote`]).
#[derive(Debug, Clone)]
pub struct ShardRegion {
    shards: Arc<Vec<ActorRef<ShardMsg>>>,
    /// `None`: a node alone, serving every shard.
    cluster: Option<Arc<Ownership>>,
}

impl ShardRegion {
    /// A region over `shards` (index = shard number) of a node alone.
    #[must_use]
    pub fn new(shards: Vec<ActorRef<ShardMsg>>) -> Self {
        debug_assert_eq!(shards.len(), usize::from(crest_proto::slice::SHARD_COUNT));
        Self {
            shards: Arc::new(shards),
            cluster: None,
        }
    }

    /// A region of a node in a cluster: it serves the shards `ownership` says.
    #[must_use]
    pub fn clustered(shards: Vec<ActorRef<ShardMsg>>, ownership: Arc<Ownership>) -> Self {
        Self {
            cluster: Some(ownership),
            ..Self::new(shards)
        }
    }

    /// Which shards this node serves (`None`: every shard, alone).
    #[must_use]
    pub fn ownership(&self) -> Option<&Arc<Ownership>> {
        self.cluster.as_ref()
    }

    fn shard(&self, stream: &StreamId) -> &ActorRef<ShardMsg> {
        &self.shards[usize::from(shard_of(stream.as_str()))]
    }

    /// The shards.
    #[must_use]
    pub fn shards(&self) -> &[ActorRef<ShardMsg>] {
        &self.shards
    }

    /// Runs `request` where its shard is served: here, or on its owner (waiting, while it has none,
    /// up to the cluster's patience).
    pub async fn dispatch(&self, request: ShardRequest) -> ShardReply {
        match &self.cluster {
            None => self.serve_here(request).await,
            Some(cluster) => {
                cluster
                    .route(request, |request| self.serve_here(request))
                    .await
            }
        }
    }

    /// Runs `request` on this node's shard actors (whether or not it serves the shard: the caller
    /// decided).
    pub async fn serve_here(&self, request: ShardRequest) -> ShardReply {
        let stream = request.stream();
        let shard = self.shard(&stream);
        match request {
            // Desks are served by the node's routing hub ([`crate::Node::serve_request`]).
            ShardRequest::DeskCommand { .. }
            | ShardRequest::DeskReactions { .. }
            | ShardRequest::DeskView { .. } => request.unavailable(),
            // Outboxes are served by the node's outbound port ([`crate::Node::serve_request`]).
            ShardRequest::Outbox { .. } => request.unavailable(),
            ShardRequest::CustomerMessage { message, meta } => {
                let (reply, answer) = oneshot::channel();
                let customer = message.customer.clone();
                let sent = shard.cast(ShardMsg::Customer(
                    customer,
                    CustomerMsg::Inbound {
                        message,
                        meta,
                        reply,
                    },
                ));
                ShardReply::Ack(Self::answer(sent, answer).await.and_then(|ack| ack))
            }
            ShardRequest::ConversationCommand {
                conversation,
                command,
                meta,
            } => {
                let (reply, answer) = oneshot::channel();
                let message = ConversationMsg::Command {
                    command,
                    meta,
                    reply: Some(reply),
                };
                let sent = shard.cast(ShardMsg::Conversation(conversation, message));
                ShardReply::Ack(Self::answer(sent, answer).await.and_then(|ack| ack))
            }
            ShardRequest::ConversationState { conversation } => {
                let (reply, answer) = oneshot::channel();
                let sent = shard.cast(ShardMsg::Conversation(
                    conversation,
                    ConversationMsg::Read(reply),
                ));
                ShardReply::Conversation(
                    Self::answer(sent, answer)
                        .await
                        .map(|state| state.map(Box::new)),
                )
            }
            ShardRequest::OpenConversation { customer } => {
                let (reply, answer) = oneshot::channel();
                let sent = shard.cast(ShardMsg::Customer(
                    customer,
                    CustomerMsg::OpenConversation(reply),
                ));
                ShardReply::OpenConversation(Self::answer(sent, answer).await)
            }
            ShardRequest::EndCustomerConversation {
                customer,
                conversation,
            } => {
                let (reply, answer) = oneshot::channel();
                let sent = shard.cast(ShardMsg::Customer(
                    customer,
                    CustomerMsg::ConversationEnded(conversation, reply),
                ));
                ShardReply::Ended(Self::answer(sent, answer).await.and_then(|ended| ended))
            }
            ShardRequest::CustomerMergesChanged { customer, merge } => {
                let (reply, answer) = oneshot::channel();
                let sent = shard.cast(ShardMsg::Customer(
                    customer,
                    CustomerMsg::MergesChanged { merge, reply },
                ));
                ShardReply::Ended(Self::answer(sent, answer).await.and_then(|ended| ended))
            }
            ShardRequest::CustomerIdentities { customer, record } => {
                let (reply, answer) = oneshot::channel();
                let sent = shard.cast(ShardMsg::Customer(
                    customer,
                    CustomerMsg::Identities { record, reply },
                ));
                ShardReply::Identities(Self::answer(sent, answer).await.and_then(|found| found))
            }
            ShardRequest::AgentCommand {
                agent,
                command,
                meta,
            } => ShardReply::Agent(
                Self::record::<AgentRecording>(shard, agent, command, meta, ShardMsg::Agent).await,
            ),
            ShardRequest::AgentState { agent } => ShardReply::AgentState(
                Self::read::<AgentRecording>(shard, agent, ShardMsg::Agent)
                    .await
                    .map(|state| state.map(Box::new)),
            ),
            ShardRequest::TicketCommand {
                ticket,
                command,
                meta,
            } => ShardReply::Ticket(
                Self::record::<TicketRecording>(shard, ticket, command, meta, ShardMsg::Ticket)
                    .await,
            ),
            ShardRequest::TicketState { ticket } => ShardReply::TicketState(
                Self::read::<TicketRecording>(shard, ticket, ShardMsg::Ticket)
                    .await
                    .map(|state| state.map(Box::new)),
            ),
        }
    }

    async fn answer<T, E>(
        sent: Result<(), ractor::MessagingErr<E>>,
        answer: oneshot::Receiver<T>,
    ) -> Result<T, CommandError> {
        sent.map_err(|_| CommandError::Unavailable)?;
        answer.await.map_err(|_| CommandError::Unavailable)
    }

    /// Routes a customer message to the customer's open conversation (opening one if needed) and
    /// waits until it is journaled.
    pub async fn customer_message(
        &self,
        message: InboundMessage,
        meta: EventMeta,
    ) -> Result<CommandAck, CommandError> {
        let request = ShardRequest::CustomerMessage {
            message: Box::new(message),
            meta,
        };
        match self.dispatch(request).await {
            ShardReply::Ack(answer) => answer,
            _ => Err(CommandError::Unavailable),
        }
    }

    /// Sends a command to a conversation and waits for its answer.
    pub async fn conversation_command(
        &self,
        conversation: &ConversationId,
        command: ConversationCommand,
        meta: EventMeta,
    ) -> Result<CommandAck, CommandError> {
        let request = ShardRequest::ConversationCommand {
            conversation: conversation.clone(),
            command: Box::new(command),
            meta,
        };
        match self.dispatch(request).await {
            ShardReply::Ack(answer) => answer,
            _ => Err(CommandError::Unavailable),
        }
    }

    /// Reads a conversation's state; `None` if it does not exist.
    pub async fn conversation_state(
        &self,
        conversation: &ConversationId,
    ) -> Result<Option<ConversationState>, CommandError> {
        let request = ShardRequest::ConversationState {
            conversation: conversation.clone(),
        };
        match self.dispatch(request).await {
            ShardReply::Conversation(answer) => answer.map(|state| state.map(|state| *state)),
            _ => Err(CommandError::Unavailable),
        }
    }

    /// The customer's open conversation, if any.
    pub async fn open_conversation(
        &self,
        customer: &CustomerId,
    ) -> Result<Option<ConversationId>, CommandError> {
        let request = ShardRequest::OpenConversation {
            customer: customer.clone(),
        };
        match self.dispatch(request).await {
            ShardReply::OpenConversation(answer) => answer,
            _ => Err(CommandError::Unavailable),
        }
    }

    /// Tells a customer's identity stream that one of its conversations closed; answers once it
    /// is recorded (or was already).
    pub async fn end_customer_conversation(
        &self,
        customer: &CustomerId,
        conversation: &ConversationId,
    ) -> Result<(), CommandError> {
        let request = ShardRequest::EndCustomerConversation {
            customer: customer.clone(),
            conversation: conversation.clone(),
        };
        match self.dispatch(request).await {
            ShardReply::Ended(answer) => answer,
            _ => Err(CommandError::Unavailable),
        }
    }

    /// Tells a customer's actor that its merges changed (a reaction to a merge or an undo): its
    /// next message asks routing again where it goes.
    pub async fn customer_merges_changed(
        &self,
        customer: &CustomerId,
        merge: &crest_proto::MergeId,
    ) -> Result<(), CommandError> {
        let request = ShardRequest::CustomerMergesChanged {
            customer: customer.clone(),
            merge: merge.clone(),
        };
        match self.dispatch(request).await {
            ShardReply::Ended(answer) => answer,
            _ => Err(CommandError::Unavailable),
        }
    }

    /// Records an identity of a customer (with whether it is verified), if given, and answers
    /// every identity of the customer, each as last recorded.
    pub async fn customer_identities(
        &self,
        customer: &CustomerId,
        record: Option<(crest_proto::customers::Identity, bool)>,
    ) -> Result<Vec<crest_proto::customers::IdentityRecorded>, CommandError> {
        let request = ShardRequest::CustomerIdentities {
            customer: customer.clone(),
            record,
        };
        match self.dispatch(request).await {
            ShardReply::Identities(answer) => answer,
            _ => Err(CommandError::Unavailable),
        }
    }

    /// Sends a command to an agent's record and waits for its answer.
    pub async fn agent_command(
        &self,
        agent: &AgentId,
        command: AgentCommand,
        meta: EventMeta,
    ) -> RecordResult<AgentRecording> {
        let request = ShardRequest::AgentCommand {
            agent: agent.clone(),
            command: Box::new(command),
            meta,
        };
        match self.dispatch(request).await {
            ShardReply::Agent(answer) => answer,
            _ => Err(RecordError::Unavailable),
        }
    }

    /// Reads an agent's record; `None` if it has no events.
    pub async fn agent_state(&self, agent: &AgentId) -> Result<Option<AgentState>, CommandError> {
        let request = ShardRequest::AgentState {
            agent: agent.clone(),
        };
        match self.dispatch(request).await {
            ShardReply::AgentState(answer) => answer.map(|state| state.map(|state| *state)),
            _ => Err(CommandError::Unavailable),
        }
    }

    /// Sends a command to a ticket and waits for its answer (the ticket after it).
    pub async fn ticket_command(
        &self,
        ticket: &TicketId,
        command: TicketCommand,
        meta: EventMeta,
    ) -> RecordResult<TicketRecording> {
        let request = ShardRequest::TicketCommand {
            ticket: ticket.clone(),
            command: Box::new(command),
            meta,
        };
        match self.dispatch(request).await {
            ShardReply::Ticket(answer) => answer,
            _ => Err(RecordError::Unavailable),
        }
    }

    /// Reads a ticket; `None` if it was never opened.
    pub async fn ticket_state(
        &self,
        ticket: &TicketId,
    ) -> Result<Option<TicketState>, CommandError> {
        let request = ShardRequest::TicketState {
            ticket: ticket.clone(),
        };
        match self.dispatch(request).await {
            ShardReply::TicketState(answer) => answer.map(|state| state.map(|state| *state)),
            _ => Err(CommandError::Unavailable),
        }
    }

    async fn record<R: Recording>(
        shard: &ActorRef<ShardMsg>,
        id: R::Id,
        command: Box<R::Command>,
        meta: EventMeta,
        message: fn(R::Id, RecorderMsg<R>) -> ShardMsg,
    ) -> RecordResult<R> {
        let (reply, answer) = oneshot::channel();
        let command = RecorderMsg::Command {
            command,
            meta,
            reply,
        };
        shard
            .cast(message(id, command))
            .map_err(|_| RecordError::Unavailable)?;
        answer.await.map_err(|_| RecordError::Unavailable)?
    }

    async fn read<R: Recording>(
        shard: &ActorRef<ShardMsg>,
        id: R::Id,
        message: fn(R::Id, RecorderMsg<R>) -> ShardMsg,
    ) -> Result<Option<R::State>, CommandError> {
        let (reply, answer) = oneshot::channel();
        shard
            .cast(message(id, RecorderMsg::Read(reply)))
            .map_err(|_| CommandError::Unavailable)?;
        answer.await.map_err(|_| CommandError::Unavailable)
    }

    /// Number of live entity actors across this node's shards.
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

    async fn customer_message(
        &self,
        message: InboundMessage,
        meta: EventMeta,
    ) -> Result<CommandAck, CommandError> {
        Self::customer_message(self, message, meta).await
    }
}
