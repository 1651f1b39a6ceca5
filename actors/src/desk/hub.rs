//! The routing hub of a node: finds or starts the desk actor of each tenant, keeps the directory of
//! tenants with a desk (so every desk, with its timers, is recovered at start), and feeds desks
//! the conversation events routing reacts to (handoffs, resolutions, closes, the bot's after-sales
//! flows) as a local consumer of the outbox: at least once, before the published watermark moves.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use crest_proto::events::{ConversationEvent, HandoffReason, Role};
use crest_proto::routing::{DeskOpened, DirectoryEvent, HandoffSummary};
use crest_proto::{AgentId, ConversationId, Envelope, StreamId, TenantId};
use ractor::{Actor, ActorRef, ActorStatus};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, oneshot};

use super::actor::{DeskActor, DeskArgs, DeskCommandError, DeskMsg, run_effects, spawn_effects};
use super::decide::{DeskCommand, DeskRejection, DeskSettings, Effect, HandoffInfo};
use super::state::DeskState;
use crate::context::EntityContext;
use crate::conversation::{ConversationState, Status};
use crate::persistence::{Aggregate, Persistent};
use crate::ports::bus::EventConsumer;
use crate::ports::journal::JournalError;

/// Why a routing request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeskError {
    /// The desk refused it.
    #[error(transparent)]
    Rejected(#[from] DeskRejection),
    /// The journal failed; retrying is safe.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The desk is restarting or the node is stopping; retrying is safe.
    #[error("routing unavailable, retry")]
    Unavailable,
}

impl From<DeskCommandError> for DeskError {
    fn from(error: DeskCommandError) -> Self {
        match error {
            DeskCommandError::Rejected(rejection) => Self::Rejected(rejection),
            DeskCommandError::Journal(error) => Self::Journal(error),
        }
    }
}

/// Tenants that have a desk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryState {
    /// Last applied sequence number.
    pub seq: u64,
    /// The tenants.
    pub tenants: BTreeSet<TenantId>,
}

impl Aggregate for DirectoryState {
    type Event = DirectoryEvent;
    const STATE_SCHEMA_VERSION: u16 = 1;
    const KIND: &'static str = "directory";

    fn seq(&self) -> u64 {
        self.seq
    }

    fn apply_event(&mut self, event: &DirectoryEvent, seq: u64, _at_ms: u64) {
        self.seq = seq;
        match event {
            DirectoryEvent::DeskOpened(opened) => {
                self.tenants.insert(opened.tenant.clone());
            }
        }
    }
}

/// Finds desks and feeds them.
#[derive(Debug)]
pub struct RoutingHub {
    context: Arc<EntityContext>,
    settings: Arc<DeskSettings>,
    desks: Mutex<HashMap<TenantId, ActorRef<DeskMsg>>>,
    directory: Mutex<Persistent<DirectoryState>>,
    connections: std::sync::Mutex<HashMap<AgentId, usize>>,
}

impl RoutingHub {
    /// Recovers the directory and every desk in it (re-arming their timers).
    pub async fn start(
        context: Arc<EntityContext>,
        settings: DeskSettings,
    ) -> Result<Arc<Self>, JournalError> {
        let directory =
            Persistent::<DirectoryState>::recover(StreamId::desk_directory(), &context).await?;
        let tenants = directory.state.tenants.clone();
        let hub = Arc::new(Self {
            context,
            settings: Arc::new(settings),
            desks: Mutex::new(HashMap::new()),
            directory: Mutex::new(directory),
            connections: std::sync::Mutex::new(HashMap::new()),
        });
        for tenant in tenants {
            hub.desk(&tenant).await?;
        }
        Ok(hub)
    }

    /// The desk of `tenant`, started (and registered in the directory) if needed.
    async fn desk(&self, tenant: &TenantId) -> Result<ActorRef<DeskMsg>, JournalError> {
        let mut desks = self.desks.lock().await;
        if let Some(desk) = desks.get(tenant)
            && matches!(
                desk.get_status(),
                ActorStatus::Running | ActorStatus::Starting | ActorStatus::Upgrading
            )
        {
            return Ok(desk.clone());
        }
        {
            let mut directory = self.directory.lock().await;
            if !directory.state.tenants.contains(tenant) {
                let event = DirectoryEvent::DeskOpened(DeskOpened {
                    tenant: tenant.clone(),
                });
                directory
                    .persist(&self.context, &[event], &Default::default())
                    .await?;
            }
        }
        let args = DeskArgs {
            tenant: tenant.clone(),
            context: Arc::clone(&self.context),
            settings: Arc::clone(&self.settings),
        };
        let (desk, _) = Actor::spawn(None, DeskActor, args)
            .await
            .map_err(|error| JournalError::Storage(format!("desk did not start: {error}")))?;
        desks.insert(tenant.clone(), desk.clone());
        Ok(desk)
    }

    /// Runs a command on `tenant`'s desk and returns its effects (not yet carried out).
    pub async fn decide(
        &self,
        tenant: &TenantId,
        command: DeskCommand,
    ) -> Result<Vec<Effect>, DeskError> {
        let desk = self.desk(tenant).await?;
        let (reply, answer) = oneshot::channel();
        let mailbox = self
            .context
            .metrics
            .mailbox_depth
            .with_label_values(&["desk"]);
        mailbox.inc();
        if desk
            .cast(DeskMsg::Command(Box::new(command), Some(reply)))
            .is_err()
        {
            mailbox.dec();
            return Err(DeskError::Unavailable);
        }
        let (_, effects) = answer.await.map_err(|_| DeskError::Unavailable)??;
        Ok(effects)
    }

    /// Runs commands on `tenant`'s desk as one batch (one journal append; refused commands are
    /// skipped) and returns their effects.
    pub async fn decide_batch(
        &self,
        tenant: &TenantId,
        commands: Vec<DeskCommand>,
    ) -> Result<Vec<Effect>, DeskError> {
        let desk = self.desk(tenant).await?;
        let (reply, answer) = oneshot::channel();
        let mailbox = self
            .context
            .metrics
            .mailbox_depth
            .with_label_values(&["desk"]);
        mailbox.inc();
        if desk.cast(DeskMsg::Batch(commands, reply)).is_err() {
            mailbox.dec();
            return Err(DeskError::Unavailable);
        }
        let (_, effects) = answer.await.map_err(|_| DeskError::Unavailable)??;
        Ok(effects)
    }

    /// Runs a command and carries out its effects on conversations before returning.
    pub async fn command(&self, tenant: &TenantId, command: DeskCommand) -> Result<(), DeskError> {
        let effects = self.decide(tenant, command).await?;
        run_effects(self.context.region(), effects).await;
        Ok(())
    }

    /// Reads `tenant`'s desk: `read(state, now_ms)`.
    pub async fn query<T: Send + 'static>(
        &self,
        tenant: &TenantId,
        read: impl FnOnce(&DeskState, u64) -> T + Send + 'static,
    ) -> Result<T, DeskError> {
        let desk = self.desk(tenant).await?;
        let (reply, answer) = oneshot::channel();
        desk.cast(DeskMsg::Query(Box::new(move |state, now| {
            let _ = reply.send(read(state, now));
        })))
        .map_err(|_| DeskError::Unavailable)?;
        answer.await.map_err(|_| DeskError::Unavailable)
    }

    /// Counts a live connection of `agent` opening; true if it is the agent's first on this node.
    pub fn connection_opened(&self, agent: &AgentId) -> bool {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = connections.entry(agent.clone()).or_default();
        *count += 1;
        *count == 1
    }

    /// Counts a live connection of `agent` closing; true if it was the agent's last on this node.
    pub fn connection_closed(&self, agent: &AgentId) -> bool {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(count) = connections.get_mut(agent) else {
            return false;
        };
        *count = count.saturating_sub(1);
        if *count == 0 {
            connections.remove(agent);
            return true;
        }
        false
    }

    /// The routing settings.
    #[must_use]
    pub fn settings(&self) -> &DeskSettings {
        &self.settings
    }

    /// The handoff of `conversation` as routing sees it, read from the conversation (`None` if it
    /// does not exist).
    pub async fn handoff_info(
        &self,
        conversation: &ConversationId,
        reason: HandoffReason,
        group: Option<String>,
        handoff_seq: u64,
    ) -> Result<Option<HandoffInfo>, DeskError> {
        let state = self
            .context
            .region()
            .conversation_state(conversation)
            .await
            .map_err(|_| DeskError::Unavailable)?;
        Ok(state.and_then(|state| {
            let customer = state.customer.clone()?;
            Some(HandoffInfo {
                conversation: conversation.clone(),
                customer,
                summary: summarize(&state, &reason),
                reason,
                group,
                handoff_seq,
            })
        }))
    }

    /// Stops every desk (at shutdown).
    pub async fn stop(&self) {
        let desks: Vec<ActorRef<DeskMsg>> = self
            .desks
            .lock()
            .await
            .drain()
            .map(|(_, desk)| desk)
            .collect();
        for desk in desks {
            desk.stop_and_wait(Some("shutdown".to_owned()), None)
                .await
                .ok();
        }
    }

    /// The desk command a conversation event leads to, if any (reading the conversation when the
    /// command needs more than the event).
    async fn command_for(
        &self,
        envelope: &Envelope,
    ) -> Result<Option<(TenantId, DeskCommand)>, DeskError> {
        let Ok(event) = envelope.decode_event::<ConversationEvent>() else {
            return Ok(None);
        };
        let Some(conversation) = conversation_of(&envelope.stream) else {
            return Ok(None);
        };
        let tenant = conversation.tenant().clone();
        let command = match event {
            ConversationEvent::HandoffRequested(handoff) => {
                // Only a conversation still waiting for a human is queued: a handoff delivered
                // again after the chat ended (or was taken over) is moot.
                let state = self
                    .context
                    .region()
                    .conversation_state(&conversation)
                    .await
                    .map_err(|_| DeskError::Unavailable)?;
                let Some(state) = state.filter(|state| state.status == Status::Queued) else {
                    return Ok(None);
                };
                let Some(customer) = state.customer.clone() else {
                    return Ok(None);
                };
                DeskCommand::Handoff(HandoffInfo {
                    conversation,
                    customer,
                    summary: summarize(&state, &handoff.reason),
                    reason: handoff.reason,
                    group: handoff.group,
                    handoff_seq: envelope.seq,
                })
            }
            ConversationEvent::Resolved(_) => DeskCommand::ChatFinished {
                conversation,
                reason: "resolved".to_owned(),
            },
            ConversationEvent::Closed(_) => DeskCommand::ChatFinished {
                conversation,
                reason: "closed".to_owned(),
            },
            ConversationEvent::BotReplied(reply)
                if matches!(
                    reply.intent.as_deref(),
                    Some("refund_request" | "return_request")
                ) =>
            {
                let state = self
                    .context
                    .region()
                    .conversation_state(&conversation)
                    .await
                    .map_err(|_| DeskError::Unavailable)?;
                let Some(state) = state else { return Ok(None) };
                let (Some(customer), Some(asked)) =
                    (state.customer.clone(), state.message(&reply.in_reply_to))
                else {
                    return Ok(None);
                };
                DeskCommand::BotAfterSales {
                    conversation,
                    customer,
                    intent: reply.intent.unwrap_or_default(),
                    text: asked.text.clone(),
                }
            }
            _ => return Ok(None),
        };
        Ok(Some((tenant, command)))
    }

    /// Turns a batch of conversation events into desk commands (reading conversations
    /// concurrently) and gives each tenant's desk its commands as one batch: one journal append.
    async fn consume_stream(&self, stream_events: &[Arc<Envelope>]) -> Result<(), DeskError> {
        let interesting = stream_events.iter().filter(|envelope| {
            matches!(
                envelope.event_type.as_str(),
                "conversation.handoff_requested"
                    | "conversation.resolved"
                    | "conversation.closed"
                    | "conversation.bot_replied"
            )
        });
        let commands =
            futures::future::join_all(interesting.map(|envelope| self.command_for(envelope))).await;
        let mut per_tenant: std::collections::BTreeMap<TenantId, Vec<DeskCommand>> =
            std::collections::BTreeMap::new();
        for command in commands {
            if let Some((tenant, command)) = command? {
                per_tenant.entry(tenant).or_default().push(command);
            }
        }
        for (tenant, commands) in per_tenant {
            let effects = self.decide_batch(&tenant, commands).await?;
            spawn_effects(self.context.region().clone(), effects);
        }
        Ok(())
    }
}

#[async_trait]
impl EventConsumer for RoutingHub {
    async fn consume(&self, events: &[Arc<Envelope>]) -> Result<(), String> {
        let conversation_events: Vec<Arc<Envelope>> = events
            .iter()
            .filter(|envelope| envelope.stream.kind() == crest_proto::ids::StreamKind::Conversation)
            .cloned()
            .collect();
        self.consume_stream(&conversation_events)
            .await
            .map_err(|error| error.to_string())
    }
}

fn conversation_of(stream: &StreamId) -> Option<ConversationId> {
    let key = stream.as_str().rsplit(':').next()?;
    let tenant = TenantId::new(stream.tenant()).ok()?;
    ConversationId::parse(&tenant, key).ok()
}

/// The handoff summary of a conversation: last intent and emotion, language, what the bot tried,
/// order numbers mentioned, the customer's last words.
#[must_use]
pub fn summarize(state: &ConversationState, reason: &HandoffReason) -> HandoffSummary {
    let intent = state
        .messages
        .iter()
        .rev()
        .find_map(|message| message.intent.as_ref().map(|(intent, _)| intent.clone()));
    let last_customer = state
        .messages
        .iter()
        .rev()
        .find(|message| message.role == Role::Customer);
    let emotion = state
        .messages
        .iter()
        .rev()
        .filter(|message| message.role == Role::Customer)
        .find_map(|message| message.emotion.clone());
    let mut bot_intents: Vec<String> = Vec::new();
    for message in &state.messages {
        if let (Role::Bot, Some((intent, _))) = (message.role, message.intent.as_ref())
            && bot_intents.last() != Some(intent)
        {
            bot_intents.push(intent.clone());
        }
    }
    let mut orders: Vec<String> = Vec::new();
    for message in state.messages.iter().filter(|m| m.role == Role::Customer) {
        for number in digit_runs(&message.text, 10, 20) {
            if !orders.contains(&number) {
                orders.push(number);
            }
        }
    }
    let last_customer_text = last_customer.map(|m| m.text.clone()).unwrap_or_default();
    HandoffSummary {
        reason: reason.describe(),
        intent,
        emotion,
        language: language_of(&last_customer_text),
        bot_intents,
        orders,
        last_customer_text,
    }
}

/// `zh` if the text has Han characters, `en` if it has Latin letters, else unknown.
fn language_of(text: &str) -> Option<String> {
    if text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)) {
        Some("zh".to_owned())
    } else if text.chars().any(|c| c.is_ascii_alphabetic()) {
        Some("en".to_owned())
    } else {
        None
    }
}

fn digit_runs(text: &str, min: usize, max: usize) -> Vec<String> {
    let mut runs = Vec::new();
    let mut current = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            current.push(c);
        } else {
            if (min..=max).contains(&current.len()) {
                runs.push(current.clone());
            }
            current.clear();
        }
    }
    runs
}
