//! `decide`: the pure function from (state, command) to events or a rejection.

use crest_proto::MessageId;
use crest_proto::commands::ConversationCommand;
use crest_proto::events::{
    AgentAssigned, AgentReplied, BotReplied, Closed, ConversationEvent, CsatRated,
    CustomerMessageReceived, HandoffDeclined, HandoffReason, HandoffRequested, Resolved, Started,
    SystemNotice,
};

use super::state::{ConversationState, Status};

/// What a command leads to when it is not rejected.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Append these events.
    Emit(Vec<ConversationEvent>),
    /// The command was already applied: answer as the first time, append nothing.
    Duplicate {
        /// The message id given the first time.
        message_id: MessageId,
        /// The sequence number of its event.
        seq: u64,
    },
    /// Nothing to do (the command is moot, e.g. a bot reply after a handoff).
    Nothing,
}

/// Why a command was refused. The caller's input was wrong for the conversation's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The conversation has no events yet and the command needs a started conversation.
    #[error("conversation not started")]
    NotStarted,
    /// The conversation is closed.
    #[error("conversation is closed")]
    Closed,
    /// The command belongs to another conversation or customer.
    #[error("command addressed to another conversation")]
    WrongConversation,
    /// Only the owning agent may do this.
    #[error("agent does not own the conversation")]
    NotOwner,
    /// Another agent already owns the conversation.
    #[error("conversation already assigned to another agent")]
    AlreadyAssigned,
    /// The conversation is not waiting for an agent.
    #[error("conversation is not queued for an agent")]
    NotQueued,
    /// A CSAT score outside 1..=5.
    #[error("csat score must be between 1 and 5")]
    InvalidScore,
}

/// Decides what `command` does to a conversation in `state`. Pure: no I/O, no clock, no randomness.
pub fn decide(
    state: &ConversationState,
    command: &ConversationCommand,
) -> Result<Decision, Rejection> {
    match command {
        ConversationCommand::ReceiveCustomerMessage {
            conversation,
            message,
        } => {
            if let Some(remembered) = state.customer_keys.get(&message.idempotency_key()) {
                return Ok(Decision::Duplicate {
                    message_id: remembered.message_id.clone(),
                    seq: remembered.seq,
                });
            }
            if state.status == Status::Closed {
                return Err(Rejection::Closed);
            }
            let same_conversation = state.id.as_ref().is_none_or(|id| id == conversation);
            let same_customer = state
                .customer
                .as_ref()
                .is_none_or(|id| id == &message.customer);
            if !same_conversation || !same_customer {
                return Err(Rejection::WrongConversation);
            }
            let mut events = Vec::with_capacity(2);
            if state.is_new() {
                events.push(ConversationEvent::Started(Started {
                    conversation: conversation.clone(),
                    customer: message.customer.clone(),
                    channel: message.channel.clone(),
                }));
            }
            events.push(ConversationEvent::CustomerMessageReceived(
                CustomerMessageReceived {
                    message: message.message_id.clone(),
                    channel: message.channel.clone(),
                    channel_message_id: message.channel_message_id.clone(),
                    text: message.text.clone(),
                },
            ));
            Ok(Decision::Emit(events))
        }
        ConversationCommand::RecordBotReply {
            reply,
            handoff,
            in_reply_to,
        } => {
            let bot_owns = state.status == Status::Bot;
            if !bot_owns || !state.unanswered.contains(in_reply_to) {
                // The bot lost ownership meanwhile, or this message was answered already.
                return Ok(Decision::Nothing);
            }
            let mut events = Vec::with_capacity(2);
            if let Some(reply) = reply {
                events.push(ConversationEvent::BotReplied(BotReplied {
                    message: reply.message_id.clone(),
                    in_reply_to: reply.in_reply_to.clone(),
                    text: reply.text.clone(),
                    intent: reply.intent.clone(),
                    confidence: reply.confidence,
                    emotion: reply.emotion.clone(),
                    citations: reply.citations.clone(),
                }));
            }
            if let Some((reason, group)) = handoff {
                events.push(ConversationEvent::HandoffRequested(HandoffRequested {
                    reason: reason.clone(),
                    group: group.clone(),
                }));
            }
            if events.is_empty() {
                return Ok(Decision::Nothing);
            }
            Ok(Decision::Emit(events))
        }
        ConversationCommand::RequestHandoff { reason, group } => match &state.status {
            Status::New => Err(Rejection::NotStarted),
            Status::Closed => Err(Rejection::Closed),
            // Already with humans (or waiting for them): a second request changes nothing.
            Status::Queued | Status::Assigned(_) => Ok(Decision::Nothing),
            Status::Bot | Status::Resolved => {
                Ok(Decision::Emit(vec![ConversationEvent::HandoffRequested(
                    HandoffRequested {
                        reason: reason.clone(),
                        group: group.clone(),
                    },
                )]))
            }
        },
        ConversationCommand::AssignAgent { agent } => match &state.status {
            Status::New => Err(Rejection::NotStarted),
            Status::Closed => Err(Rejection::Closed),
            Status::Queued => Ok(Decision::Emit(vec![ConversationEvent::AgentAssigned(
                AgentAssigned {
                    agent: agent.clone(),
                },
            )])),
            Status::Assigned(owner) if owner == agent => Ok(Decision::Nothing),
            Status::Assigned(_) => Err(Rejection::AlreadyAssigned),
            Status::Bot | Status::Resolved => Err(Rejection::NotQueued),
        },
        ConversationCommand::AgentReply {
            agent,
            agent_message_id,
            message_id,
            text,
            internal,
        } => {
            let key = format!("{agent}:{agent_message_id}");
            if let Some(remembered) = state.agent_keys.get(&key) {
                return Ok(Decision::Duplicate {
                    message_id: remembered.message_id.clone(),
                    seq: remembered.seq,
                });
            }
            match &state.status {
                Status::New => Err(Rejection::NotStarted),
                Status::Closed => Err(Rejection::Closed),
                Status::Assigned(owner) if owner == agent || *internal => {
                    Ok(Decision::Emit(vec![ConversationEvent::AgentReplied(
                        AgentReplied {
                            message: message_id.clone(),
                            agent: agent.clone(),
                            agent_message_id: agent_message_id.clone(),
                            text: text.clone(),
                            internal: *internal,
                        },
                    )]))
                }
                _ => Err(Rejection::NotOwner),
            }
        }
        ConversationCommand::Resolve { by } => match &state.status {
            Status::New => Err(Rejection::NotStarted),
            Status::Closed => Err(Rejection::Closed),
            Status::Resolved => Ok(Decision::Nothing),
            Status::Assigned(owner) if by.as_ref().is_some_and(|agent| agent != owner) => {
                Err(Rejection::NotOwner)
            }
            Status::Bot | Status::Queued | Status::Assigned(_) => {
                Ok(Decision::Emit(vec![ConversationEvent::Resolved(
                    Resolved { by: by.clone() },
                )]))
            }
        },
        ConversationCommand::Close { reason } => match &state.status {
            Status::New => Err(Rejection::NotStarted),
            Status::Closed => Ok(Decision::Nothing),
            _ => Ok(Decision::Emit(vec![ConversationEvent::Closed(Closed {
                reason: reason.clone(),
            })])),
        },
        ConversationCommand::Notify { message_id, text } => match &state.status {
            Status::New => Err(Rejection::NotStarted),
            Status::Closed => Err(Rejection::Closed),
            _ => Ok(Decision::Emit(vec![notice(message_id, text)])),
        },
        ConversationCommand::DeclineHandoff {
            reason,
            message_id,
            text,
        } => match &state.status {
            Status::Queued => Ok(Decision::Emit(vec![
                notice(message_id, text),
                ConversationEvent::HandoffDeclined(HandoffDeclined {
                    reason: reason.clone(),
                }),
            ])),
            // Already with an agent, back with the bot, or closed: nothing to give back.
            _ => Ok(Decision::Nothing),
        },
        ConversationCommand::TransferToAgent { agent } => {
            let assigned = ConversationEvent::AgentAssigned(AgentAssigned {
                agent: agent.clone(),
            });
            match &state.status {
                Status::New => Err(Rejection::NotStarted),
                Status::Closed => Err(Rejection::Closed),
                Status::Assigned(owner) if owner == agent => Ok(Decision::Nothing),
                Status::Queued | Status::Assigned(_) => Ok(Decision::Emit(vec![assigned])),
                // A supervisor takes the conversation from the bot: the handoff is recorded first.
                Status::Bot | Status::Resolved => Ok(Decision::Emit(vec![
                    ConversationEvent::HandoffRequested(HandoffRequested {
                        reason: HandoffReason::Supervisor,
                        group: None,
                    }),
                    assigned,
                ])),
            }
        }
        ConversationCommand::TransferToGroup { by, group } => match &state.status {
            Status::New => Err(Rejection::NotStarted),
            Status::Closed => Err(Rejection::Closed),
            Status::Assigned(owner) if owner == by => {
                Ok(Decision::Emit(vec![ConversationEvent::HandoffRequested(
                    HandoffRequested {
                        reason: HandoffReason::Transferred(by.key().to_owned()),
                        group: Some(group.clone()),
                    },
                )]))
            }
            _ => Err(Rejection::NotOwner),
        },
        ConversationCommand::RateCsat { score, comment } => {
            if !(1..=5).contains(score) {
                return Err(Rejection::InvalidScore);
            }
            if state.is_new() {
                return Err(Rejection::NotStarted);
            }
            Ok(Decision::Emit(vec![ConversationEvent::CsatRated(
                CsatRated {
                    score: *score,
                    comment: comment.clone(),
                },
            )]))
        }
    }
}

fn notice(message_id: &MessageId, text: &str) -> ConversationEvent {
    ConversationEvent::SystemNotice(SystemNotice {
        message: message_id.clone(),
        text: text.to_owned(),
    })
}

/// True if the bot should answer after these events were applied: a customer message arrived while
/// the bot owns the conversation.
#[must_use]
pub fn needs_bot_answer(state: &ConversationState, events: &[ConversationEvent]) -> bool {
    state.status == Status::Bot
        && events
            .iter()
            .any(|event| matches!(event, ConversationEvent::CustomerMessageReceived(_)))
}

/// A reason to hand off used when the customer explicitly asks for a human.
#[must_use]
pub fn customer_request() -> HandoffReason {
    HandoffReason::CustomerRequest
}
