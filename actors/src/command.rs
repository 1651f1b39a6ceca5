//! What entity commands answer, and the port through which one entity sends a command to a
//! conversation (the customer actor forwards each inbound message to the open conversation).

use async_trait::async_trait;
use crest_proto::commands::{ConversationCommand, InboundMessage};
use crest_proto::envelope::EventMeta;
use crest_proto::{ConversationId, CustomerId, MessageId};
use tokio::sync::oneshot;

use crate::conversation::decide::Rejection;
use crate::ports::journal::JournalError;

/// The answer to an accepted command.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommandAck {
    /// The conversation.
    pub conversation: ConversationId,
    /// The message the command created (or had created the first time).
    pub message_id: Option<MessageId>,
    /// Sequence number of the command's main event (or the stream's last one).
    pub seq: u64,
    /// True if the command had been applied before.
    pub duplicate: bool,
    /// The stream's last sequence number if the command appended events (`None`: it changed
    /// nothing), for waiting on the reactions to them.
    pub appended_to: Option<u64>,
}

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum CommandError {
    /// The conversation refused it.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The journal failed; nothing was applied. Retrying with the same idempotency key is safe.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The entity stopped before answering (shutdown or failure). Retrying is safe.
    #[error("entity unavailable, retry")]
    Unavailable,
}

/// Reply channel of a command.
pub type CommandReply = oneshot::Sender<Result<CommandAck, CommandError>>;

/// Delivers commands to conversations wherever they run (the shard region).
#[async_trait]
pub trait ConversationGateway: Send + Sync + 'static {
    /// Sends `command` to `conversation` and waits for its answer.
    async fn conversation_command(
        &self,
        conversation: &ConversationId,
        command: ConversationCommand,
        meta: EventMeta,
    ) -> Result<CommandAck, CommandError>;

    /// Sends a customer message to its customer's actor (which routes it to the open
    /// conversation) and waits until it is journaled.
    async fn customer_message(
        &self,
        message: InboundMessage,
        meta: EventMeta,
    ) -> Result<CommandAck, CommandError>;
}

/// Where merged customers' messages go: the tenant's merges of customers, kept by its routing
/// desk (see [`crate::customer::merges`]).
#[async_trait]
pub trait MergeDirectory: Send + Sync + 'static {
    /// The customer `customer` is merged into now, if any: its messages go there (and on, if
    /// that customer was merged too).
    async fn merged_into(&self, customer: &CustomerId) -> Result<Option<CustomerId>, CommandError>;
}

impl std::fmt::Debug for dyn MergeDirectory {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("MergeDirectory")
    }
}

impl std::fmt::Debug for dyn ConversationGateway {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ConversationGateway")
    }
}
