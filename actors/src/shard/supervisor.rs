//! The shard actor: supervisor of the conversation, customer, agent and ticket actors of its slices.

use std::sync::Arc;

use crest_proto::ids::StreamKind;
use crest_proto::{AgentId, ConversationId, CustomerId, StreamId, TicketId};
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, Message, SupervisionEvent};
use tokio::sync::oneshot;

use super::entities::{Delivery, Entities};
use super::passivation::Passivation;
use crate::agent::{AgentActor, AgentMsg};
use crate::context::EntityContext;
use crate::conversation::ConversationMsg;
use crate::conversation::actor::{ConversationActor, ConversationArgs};
use crate::customer::CustomerMsg;
use crate::customer::actor::{CustomerActor, CustomerArgs};
use crate::shard::recorder::{Recorder, RecorderArgs, RecorderMsg, Recording};
use crate::ticket::{TicketActor, TicketMsg};

/// Messages of a shard.
#[derive(Debug)]
pub enum ShardMsg {
    /// Deliver to a conversation actor (spawning it if needed).
    Conversation(ConversationId, ConversationMsg),
    /// Deliver to a customer actor (spawning it if needed).
    Customer(CustomerId, CustomerMsg),
    /// Deliver to an agent actor (spawning it if needed).
    Agent(AgentId, AgentMsg),
    /// Deliver to a ticket actor (spawning it if needed).
    Ticket(TicketId, TicketMsg),
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
    agents: Entities<AgentMsg>,
    tickets: Entities<TicketMsg>,
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
            agents: Entities::default(),
            tickets: Entities::default(),
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
                deliver::<ConversationActor>(&myself, state, &id, vec![message]).await;
            }
            ShardMsg::Customer(id, message) => {
                deliver::<CustomerActor>(&myself, state, &id, vec![message]).await;
            }
            ShardMsg::Agent(id, message) => {
                deliver::<AgentActor>(&myself, state, &id, vec![message]).await;
            }
            ShardMsg::Ticket(id, message) => {
                deliver::<TicketActor>(&myself, state, &id, vec![message]).await;
            }
            ShardMsg::Passivate { stream, actor } => match stream.kind() {
                StreamKind::Conversation => {
                    if let Some(running) = state.conversations.begin_passivation(&stream, actor) {
                        let _ = running.cast(ConversationMsg::Stop);
                    }
                }
                StreamKind::Customer => {
                    if let Some(running) = state.customers.begin_passivation(&stream, actor) {
                        let _ = running.cast(CustomerMsg::Stop);
                    }
                }
                StreamKind::Agent => {
                    if let Some(running) = state.agents.begin_passivation(&stream, actor) {
                        let _ = running.cast(RecorderMsg::Stop);
                    }
                }
                StreamKind::Ticket => {
                    if let Some(running) = state.tickets.begin_passivation(&stream, actor) {
                        let _ = running.cast(RecorderMsg::Stop);
                    }
                }
                // Desks are hosted by the routing hub, not by shards.
                StreamKind::Desk
                | StreamKind::Directory
                | StreamKind::Access
                | StreamKind::Audit
                | StreamKind::Knowledge
                | StreamKind::Channel
                | StreamKind::Proactive => {}
            },
            ShardMsg::CountLive(reply) => {
                let _ = reply.send(
                    state.conversations.len()
                        + state.customers.len()
                        + state.agents.len()
                        + state.tickets.len(),
                );
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
            if let Some(id) = stream.conversation_id().filter(|_| !held.is_empty()) {
                deliver::<ConversationActor>(&myself, state, &id, held).await;
            }
        } else if let Some((stream, held)) = state.customers.terminated(actor) {
            if let Some(id) = stream.customer_id().filter(|_| !held.is_empty()) {
                deliver::<CustomerActor>(&myself, state, &id, held).await;
            }
        } else if let Some((stream, held)) = state.agents.terminated(actor) {
            if let Some(id) = stream.agent_id().filter(|_| !held.is_empty()) {
                deliver::<AgentActor>(&myself, state, &id, held).await;
            }
        } else if let Some((stream, held)) = state.tickets.terminated(actor)
            && let Some(id) = stream.ticket_id().filter(|_| !held.is_empty())
        {
            deliver::<TicketActor>(&myself, state, &id, held).await;
        }
        Ok(())
    }
}

/// An entity actor a shard hosts: how to name its stream, spawn it and find its table.
trait Hosted: Actor<Msg: Message> + Default {
    /// The entity's id.
    type Id: Clone + Send;
    /// The entity's stream.
    fn stream(id: &Self::Id) -> StreamId;
    /// Spawn arguments.
    fn args(id: Self::Id, context: Arc<EntityContext>, shard: Passivation) -> Self::Arguments;
    /// The shard's table of these actors.
    fn table(state: &mut ShardState) -> &mut Entities<Self::Msg>;
}

impl Hosted for ConversationActor {
    type Id = ConversationId;
    fn stream(id: &ConversationId) -> StreamId {
        StreamId::conversation(id)
    }
    fn args(
        id: ConversationId,
        context: Arc<EntityContext>,
        shard: Passivation,
    ) -> ConversationArgs {
        ConversationArgs { id, context, shard }
    }
    fn table(state: &mut ShardState) -> &mut Entities<ConversationMsg> {
        &mut state.conversations
    }
}

impl Hosted for CustomerActor {
    type Id = CustomerId;
    fn stream(id: &CustomerId) -> StreamId {
        StreamId::customer(id)
    }
    fn args(id: CustomerId, context: Arc<EntityContext>, shard: Passivation) -> CustomerArgs {
        CustomerArgs { id, context, shard }
    }
    fn table(state: &mut ShardState) -> &mut Entities<CustomerMsg> {
        &mut state.customers
    }
}

/// Where a shard keeps the actors of a kind of recording entity.
trait RecorderTable: Recording + Sized {
    fn table(state: &mut ShardState) -> &mut Entities<RecorderMsg<Self>>;
}

impl RecorderTable for crate::agent::actor::AgentRecording {
    fn table(state: &mut ShardState) -> &mut Entities<AgentMsg> {
        &mut state.agents
    }
}

impl RecorderTable for crate::ticket::TicketRecording {
    fn table(state: &mut ShardState) -> &mut Entities<TicketMsg> {
        &mut state.tickets
    }
}

impl<R: RecorderTable> Hosted for Recorder<R> {
    type Id = R::Id;
    fn stream(id: &R::Id) -> StreamId {
        R::stream(id)
    }
    fn args(id: R::Id, context: Arc<EntityContext>, shard: Passivation) -> RecorderArgs<R> {
        RecorderArgs { id, context, shard }
    }
    fn table(state: &mut ShardState) -> &mut Entities<RecorderMsg<R>> {
        R::table(state)
    }
}

/// Delivers messages to the actor of `id`, spawning it (supervised by this shard) if needed.
async fn deliver<H: Hosted>(
    myself: &ActorRef<ShardMsg>,
    state: &mut ShardState,
    id: &H::Id,
    messages: Vec<H::Msg>,
) {
    let stream = H::stream(id);
    for message in messages {
        let Delivery::Spawn(message) = H::table(state).deliver(&stream, message) else {
            continue;
        };
        let shard = myself.clone();
        let passivation = Passivation::new(move |stream, actor| {
            shard.cast(ShardMsg::Passivate { stream, actor }).is_ok()
        });
        let args = H::args(id.clone(), Arc::clone(&state.context), passivation);
        match Actor::spawn_linked(None, H::default(), args, myself.get_cell()).await {
            Ok((actor, _)) => {
                H::table(state).insert(stream.clone(), actor.clone());
                let _ = actor.cast(message);
            }
            Err(error) => {
                // The message's reply channel drops: the caller gets "unavailable" and may retry.
                tracing::error!(%stream, %error, "entity actor failed to spawn");
            }
        }
    }
}
