//! Table tests of `decide` and `apply`.

use crest_proto::commands::{BotReply, ConversationCommand, InboundMessage};
use crest_proto::events::{ConversationEvent, HandoffReason};
use crest_proto::{AgentId, ConversationId, CustomerId, MessageId, TenantId};

use super::apply::apply;
use super::decide::{Decision, Rejection, decide, needs_bot_answer};
use super::state::{ConversationState, Status};

fn tenant() -> TenantId {
    TenantId::new("acme").expect("valid tenant")
}

fn conversation() -> ConversationId {
    ConversationId::from_parts(tenant(), 42)
}

fn customer() -> CustomerId {
    CustomerId::new(&tenant(), "c-1").expect("valid customer")
}

fn agent(name: &str) -> AgentId {
    AgentId::new(&tenant(), name).expect("valid agent")
}

fn inbound(id: &str, text: &str) -> ConversationCommand {
    ConversationCommand::ReceiveCustomerMessage {
        conversation: conversation(),
        message: InboundMessage {
            customer: customer(),
            channel: "web".to_owned(),
            channel_message_id: id.to_owned(),
            text: text.to_owned(),
            message_id: MessageId::generate(&tenant()),
        },
    }
}

/// Decides and applies; panics on rejection.
fn run(state: &mut ConversationState, command: &ConversationCommand) -> Vec<ConversationEvent> {
    match decide(state, command).expect("command accepted") {
        Decision::Emit(events) => {
            for event in &events {
                let seq = state.seq + 1;
                apply(state, event, seq, 1_000 * seq);
            }
            events
        }
        Decision::Duplicate { .. } | Decision::Nothing => Vec::new(),
    }
}

fn handed_off() -> ConversationState {
    let mut state = ConversationState::default();
    run(&mut state, &inbound("m-1", "hello"));
    run(
        &mut state,
        &ConversationCommand::RequestHandoff {
            reason: HandoffReason::CustomerRequest,
            group: None,
        },
    );
    state
}

#[test]
fn first_message_starts_the_conversation_in_bot_mode() {
    let mut state = ConversationState::default();
    let events = run(&mut state, &inbound("m-1", "hello"));
    assert!(matches!(events[0], ConversationEvent::Started(_)));
    assert!(matches!(
        events[1],
        ConversationEvent::CustomerMessageReceived(_)
    ));
    assert_eq!(state.status, Status::Bot);
    assert_eq!(state.seq, 2);
    assert_eq!(state.unanswered.len(), 1);
    assert!(needs_bot_answer(&state, &events));
    let events = run(&mut state, &inbound("m-2", "again"));
    assert_eq!(
        events.len(),
        1,
        "only the first message starts the conversation"
    );
}

#[test]
fn the_same_channel_message_id_is_a_duplicate_with_the_first_answer() {
    let mut state = ConversationState::default();
    run(&mut state, &inbound("m-1", "hello"));
    let first = state.messages[0].id.clone();
    let decision = decide(&state, &inbound("m-1", "hello (resent)")).expect("accepted");
    assert_eq!(
        decision,
        Decision::Duplicate {
            message_id: first,
            seq: 2
        }
    );
}

#[test]
fn bot_replies_only_while_the_bot_owns_the_conversation() {
    let mut state = ConversationState::default();
    run(&mut state, &inbound("m-1", "hello"));
    let question = state.messages[0].id.clone();
    let reply = ConversationCommand::RecordBotReply {
        reply: Some(BotReply {
            message_id: MessageId::generate(&tenant()),
            in_reply_to: question.clone(),
            text: "hi".to_owned(),
            intent: Some("greeting".to_owned()),
            confidence: 0.9,
            emotion: None,
            citations: Vec::new(),
        }),
        handoff: None,
        in_reply_to: question,
    };
    let events = run(&mut state, &reply);
    assert_eq!(events.len(), 1);
    assert!(state.unanswered.is_empty());
    assert_eq!(
        decide(&state, &reply),
        Ok(Decision::Nothing),
        "a message is answered once"
    );

    let mut queued = handed_off();
    let late = ConversationCommand::RecordBotReply {
        reply: None,
        handoff: None,
        in_reply_to: queued.messages[0].id.clone(),
    };
    assert_eq!(
        decide(&queued, &late),
        Ok(Decision::Nothing),
        "the bot is silent after a handoff"
    );
    let events = run(&mut queued, &inbound("m-2", "anyone?"));
    assert!(!needs_bot_answer(&queued, &events));
    assert!(queued.unanswered.is_empty());
}

#[test]
fn handoff_happens_once_and_exactly_one_agent_owns_the_conversation() {
    let mut state = handed_off();
    assert_eq!(state.status, Status::Queued);
    let again = ConversationCommand::RequestHandoff {
        reason: HandoffReason::Supervisor,
        group: None,
    };
    assert_eq!(
        decide(&state, &again),
        Ok(Decision::Nothing),
        "no handoff loops"
    );
    run(
        &mut state,
        &ConversationCommand::AssignAgent {
            agent: agent("ann"),
        },
    );
    assert_eq!(state.status, Status::Assigned(agent("ann")));
    assert_eq!(
        decide(
            &state,
            &ConversationCommand::AssignAgent {
                agent: agent("bob")
            }
        ),
        Err(Rejection::AlreadyAssigned)
    );
    let by_bob = ConversationCommand::AgentReply {
        agent: agent("bob"),
        agent_message_id: "a-1".to_owned(),
        message_id: MessageId::generate(&tenant()),
        text: "hi".to_owned(),
        internal: false,
    };
    assert_eq!(decide(&state, &by_bob), Err(Rejection::NotOwner));
}

#[test]
fn agent_replies_are_idempotent() {
    let mut state = handed_off();
    run(
        &mut state,
        &ConversationCommand::AssignAgent {
            agent: agent("ann"),
        },
    );
    let reply = ConversationCommand::AgentReply {
        agent: agent("ann"),
        agent_message_id: "a-1".to_owned(),
        message_id: MessageId::generate(&tenant()),
        text: "how can I help?".to_owned(),
        internal: false,
    };
    run(&mut state, &reply);
    assert!(matches!(
        decide(&state, &reply),
        Ok(Decision::Duplicate { .. })
    ));
}

#[test]
fn closed_conversations_refuse_new_messages_but_remember_old_ones() {
    let mut state = ConversationState::default();
    run(&mut state, &inbound("m-1", "hello"));
    run(&mut state, &ConversationCommand::Resolve { by: None });
    assert_eq!(state.status, Status::Resolved);
    run(
        &mut state,
        &ConversationCommand::Close {
            reason: "resolved".to_owned(),
        },
    );
    assert_eq!(
        decide(&state, &inbound("m-2", "hello?")),
        Err(Rejection::Closed)
    );
    assert!(matches!(
        decide(&state, &inbound("m-1", "hello")),
        Ok(Decision::Duplicate { .. })
    ));
}

#[test]
fn a_customer_message_after_resolution_gives_the_conversation_back_to_the_bot() {
    let mut state = ConversationState::default();
    run(&mut state, &inbound("m-1", "hello"));
    run(&mut state, &ConversationCommand::Resolve { by: None });
    let events = run(&mut state, &inbound("m-2", "one more thing"));
    assert_eq!(state.status, Status::Bot);
    assert!(needs_bot_answer(&state, &events));
}

#[test]
fn commands_on_a_new_conversation_are_rejected() {
    let state = ConversationState::default();
    let commands = [
        ConversationCommand::RequestHandoff {
            reason: HandoffReason::Supervisor,
            group: None,
        },
        ConversationCommand::AssignAgent {
            agent: agent("ann"),
        },
        ConversationCommand::Resolve { by: None },
        ConversationCommand::Close {
            reason: "x".to_owned(),
        },
        ConversationCommand::RateCsat {
            score: 5,
            comment: None,
        },
    ];
    for command in &commands {
        assert_eq!(
            decide(&state, command),
            Err(Rejection::NotStarted),
            "{command:?}"
        );
    }
}

#[test]
fn csat_scores_are_bounded() {
    let mut state = ConversationState::default();
    run(&mut state, &inbound("m-1", "hello"));
    for score in [0, 6] {
        let command = ConversationCommand::RateCsat {
            score,
            comment: None,
        };
        assert_eq!(decide(&state, &command), Err(Rejection::InvalidScore));
    }
    run(
        &mut state,
        &ConversationCommand::RateCsat {
            score: 4,
            comment: None,
        },
    );
    assert_eq!(state.csat, Some(4));
}

#[test]
fn messages_of_another_customer_are_refused() {
    let mut state = ConversationState::default();
    run(&mut state, &inbound("m-1", "hello"));
    let intruder = ConversationCommand::ReceiveCustomerMessage {
        conversation: conversation(),
        message: InboundMessage {
            customer: CustomerId::new(&tenant(), "c-2").expect("valid"),
            channel: "web".to_owned(),
            channel_message_id: "x-1".to_owned(),
            text: "hi".to_owned(),
            message_id: MessageId::generate(&tenant()),
        },
    };
    assert_eq!(decide(&state, &intruder), Err(Rejection::WrongConversation));
}
