//! `apply`: folds one journaled event into the state. Never fails: events are facts.

use crest_proto::events::{ConversationEvent, Role};

use super::state::{ConversationState, LeadState, MessageRecord, Remembered, Status};

/// Applies `event` (at `seq`, recorded at `at_ms`) to `state`.
pub fn apply(state: &mut ConversationState, event: &ConversationEvent, seq: u64, at_ms: u64) {
    debug_assert_eq!(
        seq,
        state.seq + 1,
        "events must be applied in order without gaps"
    );
    state.seq = seq;
    match event {
        ConversationEvent::Started(started) => {
            state.id = Some(started.conversation.clone());
            state.customer = Some(started.customer.clone());
            state.channel.clone_from(&started.channel);
            state.status = Status::Bot;
            state.started_at_ms = at_ms;
        }
        ConversationEvent::CustomerMessageReceived(received) => {
            state.last_channel.clone_from(&received.channel);
            state.customer_keys.insert(
                format!("{}:{}", received.channel, received.channel_message_id),
                Remembered {
                    message_id: received.message.clone(),
                    seq,
                },
            );
            if state.status == Status::Resolved {
                // The customer came back after a resolution: the bot takes the conversation again.
                state.status = Status::Bot;
            }
            if state.status == Status::Bot {
                state.unanswered.push(received.message.clone());
            }
            state.messages.push(MessageRecord {
                id: received.message.clone(),
                role: Role::Customer,
                text: received.text.clone(),
                at_ms,
                seq,
                channel_message_id: Some(received.channel_message_id.clone()),
                intent: None,
                agent: None,
                internal: false,
                emotion: None,
                citations: Vec::new(),
            });
        }
        ConversationEvent::BotReplied(reply) => {
            state.unanswered.retain(|id| id != &reply.in_reply_to);
            state.messages.push(MessageRecord {
                id: reply.message.clone(),
                role: Role::Bot,
                text: reply.text.clone(),
                at_ms,
                seq,
                channel_message_id: None,
                intent: reply
                    .intent
                    .clone()
                    .map(|intent| (intent, reply.confidence)),
                agent: None,
                internal: false,
                emotion: None,
                citations: reply.citations.clone(),
            });
            if let Some(customer_message) = state
                .messages
                .iter_mut()
                .rev()
                .find(|record| record.id == reply.in_reply_to)
            {
                customer_message.emotion.clone_from(&reply.emotion);
            }
        }
        ConversationEvent::HandoffRequested(handoff) => {
            state.unanswered.clear();
            // A take-over of a chat an agent owns keeps the owner until routing reassigns it (if
            // the supervisor cannot take it, nothing changes).
            let owned = matches!(state.status, Status::Assigned(_));
            if !(owned && handoff.take_over_by.is_some()) {
                state.status = Status::Queued;
            }
            state.handoff = Some(handoff.reason.clone());
        }
        ConversationEvent::AfterSalesRequested(_) => {}
        ConversationEvent::LeadProgressed(progressed) => {
            let same = state.lead.intent.is_some()
                && state.lead.name == progressed.name
                && state.lead.phone == progressed.phone;
            state.lead = LeadState {
                intent: Some(progressed.intent.clone()),
                name: progressed.name.clone(),
                phone: progressed.phone.clone(),
                captured: false,
                unanswered_asks: if same {
                    state.lead.unanswered_asks + 1
                } else {
                    0
                },
            };
        }
        ConversationEvent::LeadCaptured(captured) => {
            state.lead = LeadState {
                intent: Some(captured.intent.clone()),
                name: Some(captured.name.clone()),
                phone: Some(captured.phone.clone()),
                captured: true,
                unanswered_asks: 0,
            };
        }
        ConversationEvent::AgentAssigned(assigned) => {
            state.status = Status::Assigned(assigned.agent.clone());
        }
        ConversationEvent::AgentReplied(reply) => {
            state.agent_keys.insert(
                format!("{}:{}", reply.agent, reply.agent_message_id),
                Remembered {
                    message_id: reply.message.clone(),
                    seq,
                },
            );
            state.messages.push(MessageRecord {
                id: reply.message.clone(),
                role: Role::Agent,
                text: reply.text.clone(),
                at_ms,
                seq,
                channel_message_id: None,
                intent: None,
                agent: Some(reply.agent.clone()),
                internal: reply.internal,
                emotion: None,
                citations: Vec::new(),
            });
        }
        ConversationEvent::Resolved(_) => {
            state.unanswered.clear();
            state.status = Status::Resolved;
        }
        ConversationEvent::Closed(_) => {
            state.unanswered.clear();
            state.status = Status::Closed;
        }
        ConversationEvent::CsatRated(rating) => {
            state.csat = Some(rating.score);
        }
        ConversationEvent::HandoffDeclined(_) => {
            state.status = Status::Bot;
        }
        ConversationEvent::ProactiveSent(sent) => {
            state.messages.push(MessageRecord {
                id: sent.message.clone(),
                role: Role::Bot,
                text: sent.text.clone(),
                at_ms,
                seq,
                channel_message_id: None,
                intent: None,
                agent: None,
                internal: false,
                emotion: None,
                citations: Vec::new(),
            });
        }
        ConversationEvent::SystemNotice(notice) => {
            state.messages.push(MessageRecord {
                id: notice.message.clone(),
                role: Role::System,
                text: notice.text.clone(),
                at_ms,
                seq,
                channel_message_id: None,
                intent: None,
                agent: None,
                internal: false,
                emotion: None,
                citations: Vec::new(),
            });
        }
    }
}
