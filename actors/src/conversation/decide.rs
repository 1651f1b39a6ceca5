//! `decide`: the pure function from (state, command) to events or a rejection.

use crest_proto::MessageId;
use crest_proto::commands::ConversationCommand;
use crest_proto::events::{
    AfterSalesRequested, AgentAssigned, AgentReplied, BotReplied, ClosedV2, ConversationEvent,
    CsatRated, CustomerMessageReceived, HandoffDeclined, HandoffReason, HandoffRequestedV2,
    ProactiveSent, Resolved, Started, SystemNotice,
};
use crest_proto::leads::{LeadCaptured, LeadProgressed, LeadUpdate};

use super::state::{ConversationState, Status};
use super::summary::summarize;
use crate::ports::brain::TextFacts;

/// Bot intents whose flow opens an after-sales ticket, and the ticket's kind.
const AFTER_SALES_INTENTS: [(&str, &str); 2] =
    [("refund_request", "refund"), ("return_request", "return")];

/// What a customer is told when routing refused a handoff without saying why in its own words
/// (refusals journaled before refusals carried their text).
pub const DEFAULT_DECLINE_TEXT: &str = "当前人工客服繁忙，我们已为您登记，客服会尽快联系您；在此期间智能助手可以继续为您服务。\
     All our agents are busy right now: we noted your request and will get back to you; meanwhile \
     the assistant can keep helping you here.";

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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
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
    /// A human chat is open (queued for or with an agent): no proactive message now.
    #[error("a human chat is open")]
    HumanChatOpen,
}

/// The event of a lead's progress: captured once both the name and the phone are known.
fn lead_event(
    state: &ConversationState,
    customer: &crest_proto::CustomerId,
    update: &LeadUpdate,
) -> ConversationEvent {
    match (&update.name, &update.phone) {
        (Some(name), Some(phone)) => ConversationEvent::LeadCaptured(LeadCaptured {
            customer: customer.clone(),
            intent: update.intent.clone(),
            name: name.clone(),
            phone: phone.clone(),
            channel: if state.last_channel.is_empty() {
                state.channel.clone()
            } else {
                state.last_channel.clone()
            },
        }),
        _ => ConversationEvent::LeadProgressed(LeadProgressed {
            intent: update.intent.clone(),
            name: update.name.clone(),
            phone: update.phone.clone(),
        }),
    }
}

/// Decides what `command` does to a conversation in `state`, without text facts for handoff
/// summaries (no language or order numbers): see [`decide_with`].
pub fn decide(
    state: &ConversationState,
    command: &ConversationCommand,
) -> Result<Decision, Rejection> {
    decide_with(state, command, &|_| TextFacts::default())
}

/// Decides what `command` does to a conversation in `state`. `facts` tells the language and order
/// numbers of a customer message, for the summary a handoff carries. Pure as long as `facts` is:
/// no I/O, no clock, no randomness.
#[allow(clippy::too_many_lines)]
pub fn decide_with(
    state: &ConversationState,
    command: &ConversationCommand,
    facts: &dyn Fn(&str) -> TextFacts,
) -> Result<Decision, Rejection> {
    let handoff =
        |state: &ConversationState, reason: &HandoffReason, group: Option<String>, take_over_by| {
            ConversationEvent::HandoffRequested(HandoffRequestedV2 {
                reason: reason.clone(),
                group,
                customer: state.customer.clone(),
                summary: summarize(state, reason, facts),
                take_over_by,
            })
        };
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
            handoff: requested,
            in_reply_to,
            lead,
        } => {
            let bot_owns = state.status == Status::Bot;
            if !bot_owns || !state.unanswered.contains(in_reply_to) {
                // The bot lost ownership meanwhile, or this message was answered already.
                return Ok(Decision::Nothing);
            }
            let mut events = Vec::with_capacity(3);
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
                let after_sales = AFTER_SALES_INTENTS
                    .iter()
                    .find(|(intent, _)| reply.intent.as_deref() == Some(*intent));
                if let (Some((_, kind)), Some(customer), Some(asked)) =
                    (after_sales, &state.customer, state.message(in_reply_to))
                {
                    events.push(ConversationEvent::AfterSalesRequested(
                        AfterSalesRequested {
                            customer: customer.clone(),
                            kind: (*kind).to_owned(),
                            text: asked.text.clone(),
                        },
                    ));
                }
                if let (Some(update), Some(customer)) = (lead, &state.customer)
                    && !state.lead.captured
                {
                    events.push(lead_event(state, customer, update));
                }
            }
            if let Some((reason, group)) = requested {
                // The summary includes the reply recorded with the handoff.
                let mut after = state.clone();
                for (offset, event) in (1..).zip(&events) {
                    super::apply::apply(&mut after, event, state.seq + offset, 0);
                }
                events.push(handoff(&after, reason, group.clone(), None));
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
            Status::Bot | Status::Resolved => Ok(Decision::Emit(vec![handoff(
                state,
                reason,
                group.clone(),
                None,
            )])),
        },
        ConversationCommand::TakeOver { supervisor } => match &state.status {
            Status::New => Err(Rejection::NotStarted),
            Status::Closed => Err(Rejection::Closed),
            Status::Assigned(owner) if owner == supervisor => Ok(Decision::Nothing),
            _ => Ok(Decision::Emit(vec![handoff(
                state,
                &HandoffReason::Supervisor,
                None,
                Some(supervisor.clone()),
            )])),
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
            _ => Ok(Decision::Emit(vec![ConversationEvent::Closed(ClosedV2 {
                reason: reason.clone(),
                customer: state.customer.clone(),
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
            Status::Queued if text.is_empty() => Ok(Decision::Emit(vec![
                notice(message_id, DEFAULT_DECLINE_TEXT),
                ConversationEvent::HandoffDeclined(HandoffDeclined {
                    reason: reason.clone(),
                }),
            ])),
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
                // Routing assigned it, but the conversation left routing meanwhile (resolved, or
                // given back to the bot): moot. Routing ends the chat when it hears of that.
                Status::Bot | Status::Resolved => Ok(Decision::Nothing),
            }
        }
        ConversationCommand::TransferToGroup { by, group } => match &state.status {
            Status::New => Err(Rejection::NotStarted),
            Status::Closed => Err(Rejection::Closed),
            Status::Assigned(owner) if by.as_ref().is_none_or(|by| by == owner) => {
                Ok(Decision::Emit(vec![handoff(
                    state,
                    &HandoffReason::Transferred(owner.key().to_owned()),
                    Some(group.clone()),
                    None,
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
        // The actor re-reads its stream; there is nothing to decide.
        ConversationCommand::Reload => Ok(Decision::Nothing),
        ConversationCommand::SendProactive {
            message_id,
            text,
            trigger,
            trigger_id,
        } => {
            if state.message(message_id).is_some() {
                return Ok(Decision::Nothing);
            }
            match &state.status {
                Status::New => Err(Rejection::NotStarted),
                Status::Closed => Err(Rejection::Closed),
                Status::Queued | Status::Assigned(_) => Err(Rejection::HumanChatOpen),
                Status::Bot | Status::Resolved => {
                    Ok(Decision::Emit(vec![ConversationEvent::ProactiveSent(
                        ProactiveSent {
                            message: message_id.clone(),
                            text: text.clone(),
                            trigger: trigger.clone(),
                            trigger_id: trigger_id.clone(),
                        },
                    )]))
                }
            }
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
