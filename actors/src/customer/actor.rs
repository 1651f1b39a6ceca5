//! The customer actor: opens a conversation when the customer has none and forwards each inbound
//! message to the open conversation, in order.

use std::sync::Arc;
use std::time::Instant;

use crest_proto::commands::{ConversationCommand, InboundMessage};
use crest_proto::customers::{Identity, IdentityRecorded};
use crest_proto::envelope::EventMeta;
use crest_proto::{ConversationId, CustomerId, StreamId};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;

use super::state::CustomerState;
use crate::command::{CommandAck, CommandError, CommandReply};
use crate::context::EntityContext;
use crate::conversation::decide::Rejection;
use crate::persistence::Persistent;
use crate::shard::passivation::Passivation;

/// Messages of the customer actor.
#[derive(Debug)]
pub enum CustomerMsg {
    /// A customer message to route into the open conversation.
    Inbound {
        /// The message (boxed: it is much larger than the other variants).
        message: Box<InboundMessage>,
        /// Correlation ids.
        meta: EventMeta,
        /// Where the acknowledgement goes.
        reply: CommandReply,
    },
    /// Which conversation is open.
    OpenConversation(oneshot::Sender<Option<ConversationId>>),
    /// Record an identity with its verification (if given), then answer every identity.
    Identities {
        /// The identity to record and whether it is verified; `None` only reads.
        record: Option<(Identity, bool)>,
        /// Where the identities go.
        reply: oneshot::Sender<Result<Vec<IdentityRecorded>, CommandError>>,
    },
    /// The customer's merges changed (a reaction to a merge or an undo): forget where messages
    /// went; answered once the customer's stream records that it took part in a merge.
    MergesChanged {
        /// The merge made or undone.
        merge: crest_proto::MergeId,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    /// A conversation of this customer was closed (a reaction to its `closed` event): answered
    /// once recorded.
    ConversationEnded(ConversationId, oneshot::Sender<Result<(), CommandError>>),
    /// Periodic idle check.
    IdleCheck,
    /// Stop now (sent by the shard after a passivation request).
    Stop,
}

/// Arguments to spawn a customer actor.
#[derive(Debug)]
pub struct CustomerArgs {
    /// The customer.
    pub id: CustomerId,
    /// Shared node context.
    pub context: Arc<EntityContext>,
    /// The owning shard's passivation line.
    pub shard: Passivation,
}

/// Live state of a customer actor.
#[derive(Debug)]
pub struct Running {
    id: CustomerId,
    context: Arc<EntityContext>,
    shard: Passivation,
    persistent: Option<Persistent<CustomerState>>,
    /// Where this customer's messages go, as routing last said. Routing's merges are the truth; a
    /// merge or an undo of this customer reaches the actor through the reactor
    /// ([`CustomerMsg::MergesChanged`]), which forgets it, and a new actor (after passivation, a
    /// restart or a shard's move) starts without it — and asks routing only if the customer's
    /// stream says it ever took part in a merge.
    route: MergeRoute,
    last_activity: Instant,
    passivation_requested: bool,
}

/// Where a customer's messages go, as the customer actor knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MergeRoute {
    /// Not known: ask routing.
    Unknown,
    /// To this customer's own open conversation.
    Own,
    /// To the customer it is merged into (who may pass them on again).
    MergedInto(CustomerId),
}

/// The customer actor.
#[derive(Debug, Clone, Copy, Default)]
pub struct CustomerActor;

impl Actor for CustomerActor {
    type Msg = CustomerMsg;
    type State = Running;
    type Arguments = CustomerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        args.context
            .metrics
            .actors_active
            .with_label_values(&["customer"])
            .inc();
        Ok(Running {
            id: args.id,
            context: args.context,
            shard: args.shard,
            persistent: None,
            route: MergeRoute::Unknown,
            last_activity: Instant::now(),
            passivation_requested: false,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        running: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let stream = StreamId::customer(&running.id);
        running.persistent = Some(Box::pin(Persistent::recover(stream, &running.context)).await?);
        myself.send_after(running.context.settings.idle_check_interval, || {
            CustomerMsg::IdleCheck
        });
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        running: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        running
            .context
            .metrics
            .actors_active
            .with_label_values(&["customer"])
            .dec();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        running: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            CustomerMsg::Inbound {
                message,
                meta,
                reply,
            } => {
                running.last_activity = Instant::now();
                let result = Box::pin(route_inbound(running, *message, &meta)).await;
                let journal_failed = matches!(result, Err(CommandError::Journal(_)));
                let _ = reply.send(result);
                if journal_failed {
                    myself.stop(Some("journal error".to_owned()));
                }
            }
            CustomerMsg::OpenConversation(reply) => {
                let open = running
                    .persistent
                    .as_ref()
                    .and_then(|persistent| persistent.state.open.clone());
                let _ = reply.send(open);
            }
            CustomerMsg::MergesChanged { merge, reply } => {
                running.route = MergeRoute::Unknown;
                let result = Box::pin(note_merge(running, merge)).await;
                let journal_failed = matches!(result, Err(CommandError::Journal(_)));
                let _ = reply.send(result);
                if journal_failed {
                    myself.stop(Some("journal error".to_owned()));
                }
            }
            CustomerMsg::Identities { record, reply } => {
                running.last_activity = Instant::now();
                let result = Box::pin(identities(running, record)).await;
                let journal_failed = matches!(result, Err(CommandError::Journal(_)));
                let _ = reply.send(result);
                if journal_failed {
                    myself.stop(Some("journal error".to_owned()));
                }
            }
            CustomerMsg::ConversationEnded(conversation, reply) => {
                let result = Box::pin(end_conversation(running, &conversation)).await;
                let journal_failed = matches!(result, Err(CommandError::Journal(_)));
                let _ = reply.send(result);
                if journal_failed {
                    myself.stop(Some("journal error".to_owned()));
                }
            }
            CustomerMsg::IdleCheck => {
                let settings = &running.context.settings;
                let idle = running.last_activity.elapsed() >= settings.idle_timeout;
                running.shard.check_idle(
                    &myself,
                    StreamId::customer(&running.id),
                    idle,
                    &mut running.passivation_requested,
                    settings.idle_check_interval,
                    || CustomerMsg::IdleCheck,
                );
            }
            CustomerMsg::Stop => {
                running
                    .context
                    .metrics
                    .actor_passivations
                    .with_label_values(&["customer"])
                    .inc();
                myself.stop(Some("passivated".to_owned()));
            }
        }
        Ok(())
    }
}

/// Sends the message to the open conversation (opening one if needed). If the conversation turns
/// out to be closed, records its end and opens a new one. A customer merged into another passes
/// the message on to the customer it was merged into (as that customer's message, so it lands in
/// their one open conversation). Traced as one span per message (`debug`: this is the hot message
/// path).
#[tracing::instrument(
    name = "customer_inbound",
    level = "debug",
    skip_all,
    fields(
        tenant = %running.id.tenant(),
        stream = %StreamId::customer(&running.id),
        command = "receive_customer_message",
    )
)]
async fn route_inbound(
    running: &mut Running,
    message: InboundMessage,
    meta: &EventMeta,
) -> Result<CommandAck, CommandError> {
    let involved = running
        .persistent
        .as_ref()
        .is_some_and(|persistent| persistent.state.merge_involved);
    if running.route == MergeRoute::Unknown && !involved {
        // Never part of a merge (its stream would say so): no need to ask routing.
        running.route = MergeRoute::Own;
    }
    if running.route == MergeRoute::Unknown {
        let Some(merges) = running.context.merges() else {
            return Err(CommandError::Unavailable);
        };
        running.route = match merges.merged_into(&running.id).await? {
            Some(into) => MergeRoute::MergedInto(into),
            None => MergeRoute::Own,
        };
    }
    if let MergeRoute::MergedInto(into) = &running.route {
        tracing::debug!(into = %into.key(), "message of a merged customer passed on");
        let passed_on = InboundMessage {
            customer: into.clone(),
            ..message
        };
        return running
            .context
            .conversations()
            .customer_message(passed_on, meta.clone())
            .await;
    }
    let mut attempts = 0;
    loop {
        attempts += 1;
        let conversation = ensure_open(running, meta).await?;
        let command = ConversationCommand::ReceiveCustomerMessage {
            conversation: conversation.clone(),
            message: message.clone(),
        };
        let result = running
            .context
            .conversations()
            .conversation_command(&conversation, command, meta.clone())
            .await;
        match result {
            Err(CommandError::Rejected(Rejection::Closed)) if attempts < 3 => {
                end_conversation(running, &conversation).await?;
            }
            other => return other,
        }
    }
}

async fn ensure_open(
    running: &mut Running,
    meta: &EventMeta,
) -> Result<ConversationId, CommandError> {
    let Some(persistent) = running.persistent.as_mut() else {
        return Err(CommandError::Unavailable);
    };
    if let Some(open) = &persistent.state.open {
        return Ok(open.clone());
    }
    let conversation = ConversationId::generate(running.id.tenant());
    let events = persistent.state.open_conversation(conversation.clone());
    persistent.persist(&running.context, &events, meta).await?;
    Ok(conversation)
}

async fn identities(
    running: &mut Running,
    record: Option<(Identity, bool)>,
) -> Result<Vec<IdentityRecorded>, CommandError> {
    let Some(persistent) = running.persistent.as_mut() else {
        return Err(CommandError::Unavailable);
    };
    if let Some((identity, verified)) = record {
        let events = persistent.state.record_identity(identity, verified);
        if !events.is_empty() {
            persistent
                .persist(&running.context, &events, &EventMeta::default())
                .await?;
        }
    }
    Ok(persistent.state.identities.clone())
}

/// Records that the customer took part in a merge (once: later merges change nothing here).
async fn note_merge(
    running: &mut Running,
    merge: crest_proto::MergeId,
) -> Result<(), CommandError> {
    let Some(persistent) = running.persistent.as_mut() else {
        return Err(CommandError::Unavailable);
    };
    let events = persistent.state.note_merge(merge);
    if !events.is_empty() {
        persistent
            .persist(&running.context, &events, &EventMeta::default())
            .await?;
    }
    Ok(())
}

async fn end_conversation(
    running: &mut Running,
    conversation: &ConversationId,
) -> Result<(), CommandError> {
    let Some(persistent) = running.persistent.as_mut() else {
        return Err(CommandError::Unavailable);
    };
    let events = persistent.state.end_conversation(conversation);
    if events.is_empty() {
        return Ok(());
    }
    persistent
        .persist(&running.context, &events, &EventMeta::default())
        .await?;
    Ok(())
}
