//! The shard actor: supervisor of the conversation and customer actors of its slices.

use std::sync::Arc;

use crest_proto::{ConversationId, CustomerId, StreamId};
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::oneshot;

use super::entities::{Delivery, Entities};
use crate::context::EntityContext;
use crate::conversation::ConversationMsg;
use crate::conversation::actor::{ConversationActor, ConversationArgs};
use crate::customer::CustomerMsg;
use crate::customer::actor::{CustomerActor, CustomerArgs};

/// Messages of a shard.
#[derive(Debug)]
pub enum ShardMsg {
    /// Deliver to a conversation actor (spawning it if needed).
    Conversation(ConversationId, ConversationMsg),
    /// Deliver to a customer actor (spawning it if needed).
    Customer(CustomerId, CustomerMsg),
    /// An idle actor asks to be passivated.
    Passivate {
        /// Its stream.
        stream: StreamId,
        /// Its id (to ignore requests of actors already replaced).
        actor: ActorId,
    },
    /// Number of live entity actors.
    CountLive(oneshot::Sender<usize>),
}

/// State of a shard.
#[derive(Debug)]
pub struct ShardState {
    index: u16,
    context: Arc<EntityContext>,
    conversations: Entities<ConversationMsg>,
    customers: Entities<CustomerMsg>,
}

/// The shard actor.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShardActor;

impl Actor for ShardActor {
    type Msg = ShardMsg;
    type State = ShardState;
    type Arguments = (u16, Arc<EntityContext>);

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        (index, context): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        context
            .metrics
            .actors_active
            .with_label_values(&["shard"])
            .inc();
        Ok(ShardState {
            index,
            context,
            conversations: Entities::default(),
            customers: Entities::default(),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state
            .context
            .metrics
            .actors_active
            .with_label_values(&["shard"])
            .dec();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ShardMsg::Conversation(id, message) => {
                deliver_conversation(&myself, state, &id, vec![message]).await;
            }
            ShardMsg::Customer(id, message) => {
                deliver_customer(&myself, state, &id, vec![message]).await;
            }
            ShardMsg::Passivate { stream, actor } => match stream.kind() {
                crest_proto::ids::StreamKind::Conversation => {
                    if let Some(running) = state.conversations.begin_passivation(&stream, actor) {
                        let _ = running.cast(ConversationMsg::Stop);
                    }
                }
                crest_proto::ids::StreamKind::Customer => {
                    if let Some(running) = state.customers.begin_passivation(&stream, actor) {
                        let _ = running.cast(CustomerMsg::Stop);
                    }
                }
                // Desks are hosted by the routing hub, not by shards.
                crest_proto::ids::StreamKind::Agent
                | crest_proto::ids::StreamKind::Desk
                | crest_proto::ids::StreamKind::Directory => {}
            },
            ShardMsg::CountLive(reply) => {
                let _ = reply.send(state.conversations.len() + state.customers.len());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failure) = match event {
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell, None),
            SupervisionEvent::ActorFailed(cell, error) => (cell, Some(error)),
            _ => return Ok(()),
        };
        let actor = cell.get_id();
        if let Some(error) = failure {
            tracing::warn!(shard = state.index, %actor, %error, "entity actor failed");
        }
        if let Some((stream, held)) = state.conversations.terminated(actor) {
            if let Some(id) = conversation_id_of(&stream).filter(|_| !held.is_empty()) {
                deliver_conversation(&myself, state, &id, held).await;
            }
        } else if let Some((stream, held)) = state.customers.terminated(actor)
            && let Some(id) = customer_id_of(&stream).filter(|_| !held.is_empty())
        {
            deliver_customer(&myself, state, &id, held).await;
        }
        Ok(())
    }
}

fn conversation_id_of(stream: &StreamId) -> Option<ConversationId> {
    let tenant = crest_proto::TenantId::new(stream.tenant()).ok()?;
    let key = stream.as_str().rsplit(':').next()?;
    ConversationId::parse(&tenant, key).ok()
}

fn customer_id_of(stream: &StreamId) -> Option<CustomerId> {
    let tenant = crest_proto::TenantId::new(stream.tenant()).ok()?;
    let key = stream.as_str().splitn(3, ':').nth(2)?;
    CustomerId::new(&tenant, key).ok()
}

async fn deliver_conversation(
    myself: &ActorRef<ShardMsg>,
    state: &mut ShardState,
    id: &ConversationId,
    messages: Vec<ConversationMsg>,
) {
    let stream = StreamId::conversation(id);
    for message in messages {
        let Delivery::Spawn(message) = state.conversations.deliver(&stream, message) else {
            continue;
        };
        let args = ConversationArgs {
            id: id.clone(),
            context: Arc::clone(&state.context),
            shard: myself.clone(),
        };
        match Actor::spawn_linked(None, ConversationActor, args, myself.get_cell()).await {
            Ok((actor, _)) => {
                state.conversations.insert(stream.clone(), actor.clone());
                let _ = actor.cast(message);
            }
            Err(error) => {
                // The message's reply channel drops: the caller gets "unavailable" and may retry.
                tracing::error!(%stream, %error, "conversation actor failed to spawn");
            }
        }
    }
}

async fn deliver_customer(
    myself: &ActorRef<ShardMsg>,
    state: &mut ShardState,
    id: &CustomerId,
    messages: Vec<CustomerMsg>,
) {
    let stream = StreamId::customer(id);
    for message in messages {
        let Delivery::Spawn(message) = state.customers.deliver(&stream, message) else {
            continue;
        };
        let args = CustomerArgs {
            id: id.clone(),
            context: Arc::clone(&state.context),
            shard: myself.clone(),
        };
        match Actor::spawn_linked(None, CustomerActor, args, myself.get_cell()).await {
            Ok((actor, _)) => {
                state.customers.insert(stream.clone(), actor.clone());
                let _ = actor.cast(message);
            }
            Err(error) => tracing::error!(%stream, %error, "customer actor failed to spawn"),
        }
    }
}
