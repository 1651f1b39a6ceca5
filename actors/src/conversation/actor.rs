//! The conversation actor: runs `decide`, journals, applies, replies; asks the brain for answers
//! outside its handler; passivates when idle.

use std::sync::Arc;
use std::time::Instant;

use crest_proto::commands::ConversationCommand;
use crest_proto::envelope::EventMeta;
use crest_proto::events::{ConversationEvent, Role};
use crest_proto::{ConversationId, MessageId, StreamId};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;

use super::decide::{Decision, decide_with, needs_bot_answer};
use super::state::ConversationState;
use crate::command::{CommandAck, CommandError, CommandReply};
use crate::context::EntityContext;
use crate::persistence::Persistent;
use crate::ports::brain::{BrainAnswer, BrainInput, HistoryTurn};
use crate::shard::passivation::Passivation;

/// Messages of the conversation actor.
#[derive(Debug)]
pub enum ConversationMsg {
    /// Run a command.
    Command {
        /// The command (boxed: commands are much larger than the other messages).
        command: Box<ConversationCommand>,
        /// Causation/correlation ids for the events.
        meta: EventMeta,
        /// Where the answer goes.
        reply: Option<CommandReply>,
    },
    /// The brain answered a customer message.
    BrainAnswered {
        /// The customer message.
        in_reply_to: MessageId,
        /// The answer.
        answer: BrainAnswer,
    },
    /// Read the state (`None` if the conversation does not exist).
    Read(oneshot::Sender<Option<ConversationState>>),
    /// Periodic idle check.
    IdleCheck,
    /// Stop now (sent by the shard after a passivation request).
    Stop,
}

/// Arguments to spawn a conversation actor.
#[derive(Debug)]
pub struct ConversationArgs {
    /// The conversation.
    pub id: ConversationId,
    /// Shared node context.
    pub context: Arc<EntityContext>,
    /// The owning shard's passivation line.
    pub shard: Passivation,
}

/// Live state of a conversation actor.
#[derive(Debug)]
pub struct Running {
    id: ConversationId,
    context: Arc<EntityContext>,
    shard: Passivation,
    persistent: Option<Persistent<ConversationState>>,
    last_activity: Instant,
    brain_in_flight: usize,
    passivation_requested: bool,
}

/// The conversation actor (behaviour only; state lives in [`Running`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct ConversationActor;

impl Actor for ConversationActor {
    type Msg = ConversationMsg;
    type State = Running;
    type Arguments = ConversationArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        args.context
            .metrics
            .actors_active
            .with_label_values(&["conversation"])
            .inc();
        Ok(Running {
            id: args.id,
            context: args.context,
            shard: args.shard,
            persistent: None,
            last_activity: Instant::now(),
            brain_in_flight: 0,
            passivation_requested: false,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        running: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Recovery runs here, not in pre_start, so the shard that spawned us is not held up.
        let stream = StreamId::conversation(&running.id);
        let persistent = Box::pin(Persistent::<ConversationState>::recover(
            stream,
            &running.context,
        ))
        .await?;
        // Customer messages journaled before a crash but never answered are answered now.
        let unanswered = persistent.state.unanswered.clone();
        running.persistent = Some(persistent);
        for message_id in unanswered {
            ask_brain(&myself, running, &message_id);
        }
        schedule_idle_check(&myself, running);
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
            .with_label_values(&["conversation"])
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
            ConversationMsg::Command {
                command,
                meta,
                reply,
            } => {
                running.last_activity = Instant::now();
                let result = Box::pin(run_command(&myself, running, &command, &meta)).await;
                let journal_failed = matches!(result, Err(CommandError::Journal(_)));
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
                if journal_failed {
                    // Our view of the stream may be stale: stop, the next command recovers.
                    myself.stop(Some("journal error".to_owned()));
                }
            }
            ConversationMsg::BrainAnswered {
                in_reply_to,
                answer,
            } => {
                running.brain_in_flight = running.brain_in_flight.saturating_sub(1);
                let mut reply = answer.reply;
                let lead = lead_turn(
                    running,
                    &in_reply_to,
                    reply.as_ref(),
                    answer.handoff.is_some(),
                )
                .map(|turn| {
                    if let Some(reply) = reply.as_mut() {
                        reply.text = turn.reply;
                    }
                    turn.update
                });
                let command = ConversationCommand::RecordBotReply {
                    reply: reply.map(|reply| {
                        reply.into_bot_reply(
                            MessageId::generate(running.id.tenant()),
                            in_reply_to.clone(),
                        )
                    }),
                    handoff: answer.handoff,
                    in_reply_to,
                    lead,
                };
                if let Err(error) = Box::pin(run_command(
                    &myself,
                    running,
                    &command,
                    &EventMeta::default(),
                ))
                .await
                {
                    tracing::warn!(conversation = %running.id, %error, "bot reply not recorded");
                    if matches!(error, CommandError::Journal(_)) {
                        myself.stop(Some("journal error".to_owned()));
                    }
                }
            }
            ConversationMsg::Read(reply) => {
                let state = running
                    .persistent
                    .as_ref()
                    .map(|persistent| &persistent.state)
                    .filter(|state| !state.is_new())
                    .cloned();
                let exists = state.is_some();
                let _ = reply.send(state);
                if !exists {
                    // Nobody should keep an actor alive by reading ids that do not exist.
                    request_passivation(&myself, running);
                }
            }
            ConversationMsg::IdleCheck => {
                let idle = running.last_activity.elapsed() >= running.context.settings.idle_timeout;
                let busy = running.brain_in_flight > 0
                    || running
                        .persistent
                        .as_ref()
                        .is_some_and(|persistent| !persistent.state.unanswered.is_empty());
                if idle && !busy {
                    request_passivation(&myself, running);
                } else {
                    schedule_idle_check(&myself, running);
                }
            }
            ConversationMsg::Stop => {
                running
                    .context
                    .metrics
                    .actor_passivations
                    .with_label_values(&["conversation"])
                    .inc();
                myself.stop(Some("passivated".to_owned()));
            }
        }
        Ok(())
    }
}

fn request_passivation(myself: &ActorRef<ConversationMsg>, running: &mut Running) {
    if running.passivation_requested {
        return;
    }
    running.passivation_requested = true;
    let stream = StreamId::conversation(&running.id);
    if !running.shard.request(stream, myself.get_id()) {
        myself.stop(Some("shard gone".to_owned()));
    }
}

fn schedule_idle_check(myself: &ActorRef<ConversationMsg>, running: &Running) {
    let interval = running.context.settings.idle_check_interval;
    myself.send_after(interval, || ConversationMsg::IdleCheck);
}

/// Runs one command: decides, journals, applies, and asks the brain when a customer message needs
/// an answer. Traced as one span per command (`debug`: this is the hot message path).
#[tracing::instrument(
    name = "conversation_command",
    level = "debug",
    skip_all,
    fields(
        tenant = %running.id.tenant(),
        stream = %StreamId::conversation(&running.id),
        command = command.name(),
    )
)]
async fn run_command(
    myself: &ActorRef<ConversationMsg>,
    running: &mut Running,
    command: &ConversationCommand,
    meta: &EventMeta,
) -> Result<CommandAck, CommandError> {
    if matches!(command, ConversationCommand::Reload) {
        let stream = StreamId::conversation(&running.id);
        let reloaded = Box::pin(Persistent::<ConversationState>::recover(
            stream,
            &running.context,
        ))
        .await?;
        let seq = reloaded.state.seq;
        running.persistent = Some(reloaded);
        return Ok(CommandAck {
            conversation: running.id.clone(),
            message_id: None,
            seq,
            duplicate: false,
            appended_to: None,
        });
    }
    let Some(persistent) = running.persistent.as_mut() else {
        return Err(CommandError::Unavailable);
    };
    if let Some((source, seq)) = meta.source()
        && persistent.state.inbox.applied(&source, seq)
    {
        // A reaction delivered again (the reactor resumed after a crash): applied once already.
        return Ok(CommandAck {
            conversation: running.id.clone(),
            message_id: None,
            seq: persistent.state.seq,
            duplicate: true,
            appended_to: None,
        });
    }
    let brain = &running.context.brain;
    let decision = decide_with(&persistent.state, command, &|text| brain.text_facts(text))?;
    let events = match decision {
        Decision::Duplicate { message_id, seq } => {
            if matches!(command, ConversationCommand::ReceiveCustomerMessage { .. }) {
                running.context.metrics.duplicate_messages.inc();
            }
            return Ok(CommandAck {
                conversation: running.id.clone(),
                message_id: Some(message_id),
                seq,
                duplicate: true,
                appended_to: None,
            });
        }
        Decision::Nothing => {
            return Ok(CommandAck {
                conversation: running.id.clone(),
                message_id: None,
                seq: persistent.state.seq,
                duplicate: false,
                appended_to: None,
            });
        }
        Decision::Emit(events) => events,
    };
    let envelopes = persistent.persist(&running.context, &events, meta).await?;
    let (message_id, seq) = main_message(&events, &envelopes);
    let appended_to = envelopes.last().map(|envelope| envelope.seq);
    if matches!(command, ConversationCommand::ReceiveCustomerMessage { .. }) {
        running.context.metrics.customer_messages.inc();
    }
    if let Some(message_id) = message_id
        .as_ref()
        .filter(|_| needs_bot_answer(&persistent.state, &events))
    {
        ask_brain(myself, running, message_id);
    }
    Ok(CommandAck {
        conversation: running.id.clone(),
        message_id,
        seq,
        duplicate: false,
        appended_to,
    })
}

/// The message a batch of events is about, and the sequence number of its event.
fn main_message(
    events: &[ConversationEvent],
    envelopes: &[Arc<crest_proto::Envelope>],
) -> (Option<MessageId>, u64) {
    let last_seq = envelopes.last().map_or(0, |envelope| envelope.seq);
    for (event, envelope) in events.iter().zip(envelopes) {
        let message = match event {
            ConversationEvent::CustomerMessageReceived(received) => &received.message,
            ConversationEvent::BotReplied(reply) => &reply.message,
            ConversationEvent::AgentReplied(reply) => &reply.message,
            ConversationEvent::SystemNotice(notice) => &notice.message,
            ConversationEvent::ProactiveSent(sent) => &sent.message,
            _ => continue,
        };
        return (Some(message.clone()), envelope.seq);
    }
    (None, last_seq)
}

/// The lead turn for the brain's answer to `in_reply_to`, when the tenant's lead policy asks (see
/// [`super::leads`]); never when the conversation goes to a human or the brain says nothing.
fn lead_turn(
    running: &Running,
    in_reply_to: &MessageId,
    reply: Option<&crate::ports::brain::BrainReply>,
    handing_off: bool,
) -> Option<super::leads::LeadTurn> {
    let reply = reply.filter(|_| !handing_off)?;
    let state = &running.persistent.as_ref()?.state;
    let policy = running.context.leads.get(running.id.tenant())?;
    let asked = state.message(in_reply_to)?;
    let earlier = state
        .messages
        .iter()
        .rev()
        .filter(|message| message.role == Role::Customer && message.id != asked.id)
        .find_map(|message| super::leads::Language::of(&message.text));
    super::leads::fill(
        &policy,
        &state.lead,
        &asked.text,
        reply.intent.as_deref(),
        Some(&reply.text),
        earlier,
    )
}

fn ask_brain(myself: &ActorRef<ConversationMsg>, running: &mut Running, message_id: &MessageId) {
    let Some(persistent) = running.persistent.as_ref() else {
        return;
    };
    let state = &persistent.state;
    let (Some(customer), Some(record)) = (state.customer.clone(), state.message(message_id)) else {
        return;
    };
    let history_len = running.context.settings.brain_history;
    let earlier: Vec<HistoryTurn> = state
        .messages
        .iter()
        .take_while(|candidate| &candidate.id != message_id)
        .filter(|candidate| !candidate.internal)
        .map(|candidate| HistoryTurn {
            role: candidate.role,
            text: candidate.text.clone(),
            intent: candidate.intent.as_ref().map(|(intent, _)| intent.clone()),
            confidence: candidate.intent.as_ref().map(|(_, confidence)| *confidence),
        })
        .collect();
    let history = earlier[earlier.len().saturating_sub(history_len)..].to_vec();
    let vip = running.context.vips.contains(&customer);
    let input = BrainInput {
        vip,
        conversation: running.id.clone(),
        customer,
        message_id: message_id.clone(),
        text: record.text.clone(),
        history,
    };
    running.brain_in_flight += 1;
    let reply_to = myself.clone();
    let in_reply_to = message_id.clone();
    running.context.brain.submit(input, move |answer| {
        // If the actor stopped meanwhile, the message stays unanswered and is answered on recovery.
        let _ = reply_to.cast(ConversationMsg::BrainAnswered {
            in_reply_to,
            answer,
        });
    });
}
