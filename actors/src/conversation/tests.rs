//! Table tests of `decide` and `apply`.

use crest_proto::commands::{BotReply, ConversationCommand, InboundMessage};
use crest_proto::events::{AgentAssigned, ConversationEvent, HandoffReason, Role};
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
        lead: None,
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
        lead: None,
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

/// The conversation in each life-cycle stage, by name: `new`, `bot`, `queued`, `assigned` (to ann),
/// `resolved`, `closed`.
fn in_stage(stage: &str) -> ConversationState {
    let mut state = ConversationState::default();
    if stage == "new" {
        return state;
    }
    run(&mut state, &inbound("m-1", "hello"));
    match stage {
        "bot" => {}
        "queued" => state = handed_off(),
        "assigned" => {
            state = handed_off();
            run(
                &mut state,
                &ConversationCommand::AssignAgent {
                    agent: agent("ann"),
                },
            );
        }
        "resolved" => {
            run(&mut state, &ConversationCommand::Resolve { by: None });
        }
        "closed" => {
            run(
                &mut state,
                &ConversationCommand::Close {
                    reason: "idle".to_owned(),
                },
            );
        }
        other => panic!("unknown stage {other}"),
    }
    assert_eq!(state.status.as_str(), stage, "set-up of {stage}");
    state
}

#[test]
fn notices_are_allowed_except_before_the_start_and_after_the_close() {
    // (stage, expected rejection)
    let cases = [
        ("new", Some(Rejection::NotStarted)),
        ("bot", None),
        ("queued", None),
        ("assigned", None),
        ("resolved", None),
        ("closed", Some(Rejection::Closed)),
    ];
    for (stage, rejection) in cases {
        let mut state = in_stage(stage);
        let status = state.status.clone();
        let message_id = MessageId::generate(&tenant());
        let command = ConversationCommand::Notify {
            message_id: message_id.clone(),
            text: "You are number 2 in the queue.".to_owned(),
        };
        if let Some(rejection) = rejection {
            assert_eq!(decide(&state, &command), Err(rejection), "{stage}");
            continue;
        }
        let events = run(&mut state, &command);
        let [ConversationEvent::SystemNotice(notice)] = events.as_slice() else {
            panic!("{stage}: one notice, got {events:?}");
        };
        assert_eq!(notice.message, message_id, "{stage}");
        assert_eq!(state.status, status, "{stage}: a notice changes no owner");
        let record = state.message(&message_id).expect("notice recorded");
        assert_eq!(record.role, Role::System, "{stage}");
        assert_eq!(record.text, "You are number 2 in the queue.", "{stage}");
        assert!(
            !needs_bot_answer(&state, &events),
            "{stage}: the bot does not answer notices"
        );
    }
}

#[test]
fn a_declined_handoff_gives_a_queued_conversation_back_to_the_bot() {
    let decline = || ConversationCommand::DeclineHandoff {
        reason: "queue_full".to_owned(),
        message_id: MessageId::generate(&tenant()),
        text: "Our queue is full; we opened a ticket.".to_owned(),
    };
    let mut state = in_stage("queued");
    let events = run(&mut state, &decline());
    assert_eq!(events.len(), 2, "{events:?}");
    let ConversationEvent::SystemNotice(notice) = &events[0] else {
        panic!("the customer is told first: {events:?}");
    };
    assert_eq!(notice.text, "Our queue is full; we opened a ticket.");
    let ConversationEvent::HandoffDeclined(declined) = &events[1] else {
        panic!("then the handoff is declined: {events:?}");
    };
    assert_eq!(declined.reason, "queue_full");
    assert_eq!(state.status, Status::Bot);
    // The bot answers the customer again, and a later handoff is possible again.
    let events = run(&mut state, &inbound("m-2", "ok, and my refund?"));
    assert!(needs_bot_answer(&state, &events));
    let events = run(
        &mut state,
        &ConversationCommand::RequestHandoff {
            reason: HandoffReason::CustomerRequest,
            group: None,
        },
    );
    assert!(matches!(
        events.as_slice(),
        [ConversationEvent::HandoffRequested(_)]
    ));

    // Anywhere but in the queue there is nothing to give back.
    for stage in ["new", "bot", "assigned", "resolved", "closed"] {
        assert_eq!(
            decide(&in_stage(stage), &decline()),
            Ok(Decision::Nothing),
            "{stage}"
        );
    }
}

#[test]
fn routing_assigns_queued_or_assigned_conversations_and_a_late_assignment_is_moot() {
    let to_bob = ConversationCommand::TransferToAgent {
        agent: agent("bob"),
    };
    let assigned_bob = ConversationEvent::AgentAssigned(AgentAssigned {
        agent: agent("bob"),
    });
    // (stage, expected decision)
    let cases = [
        ("new", Err(Rejection::NotStarted)),
        ("queued", Ok(Decision::Emit(vec![assigned_bob.clone()]))),
        ("assigned", Ok(Decision::Emit(vec![assigned_bob]))),
        // Routing's assignment arrives after the conversation left routing: nothing happens (the
        // desk ends the chat when it hears of the resolution).
        ("bot", Ok(Decision::Nothing)),
        ("resolved", Ok(Decision::Nothing)),
        ("closed", Err(Rejection::Closed)),
    ];
    for (stage, expected) in cases {
        let mut state = in_stage(stage);
        let moved = matches!(&expected, Ok(Decision::Emit(_)));
        assert_eq!(decide(&state, &to_bob), expected, "{stage}");
        if moved {
            run(&mut state, &to_bob);
            assert_eq!(state.status, Status::Assigned(agent("bob")), "{stage}");
            assert_eq!(
                decide(&state, &to_bob),
                Ok(Decision::Nothing),
                "{stage}: bob owns it already"
            );
        }
    }
}

#[test]
fn a_take_over_asks_routing_and_keeps_an_owner_until_routing_moves_the_chat() {
    let by_sue = ConversationCommand::TakeOver {
        supervisor: agent("sue"),
    };
    // From the bot: the bot is silenced and the handoff names the supervisor.
    let mut state = in_stage("bot");
    let events = run(&mut state, &by_sue);
    let [ConversationEvent::HandoffRequested(handoff)] = events.as_slice() else {
        panic!("one handoff, got {events:?}");
    };
    assert_eq!(handoff.reason, HandoffReason::Supervisor);
    assert_eq!(handoff.take_over_by, Some(agent("sue")));
    assert_eq!(handoff.customer, Some(customer()));
    assert_eq!(state.status, Status::Queued);
    let events = run(&mut state, &inbound("m-2", "hello?"));
    assert!(!needs_bot_answer(&state, &events));
    // From another agent: ann keeps the chat until routing gives it to sue.
    let mut state = in_stage("assigned");
    run(&mut state, &by_sue);
    assert_eq!(state.status, Status::Assigned(agent("ann")));
    run(
        &mut state,
        &ConversationCommand::TransferToAgent {
            agent: agent("sue"),
        },
    );
    assert_eq!(state.status, Status::Assigned(agent("sue")));
    assert_eq!(decide(&state, &by_sue), Ok(Decision::Nothing));
    assert_eq!(
        decide(&in_stage("new"), &by_sue),
        Err(Rejection::NotStarted)
    );
    assert_eq!(decide(&in_stage("closed"), &by_sue), Err(Rejection::Closed));
}

#[test]
fn a_handoff_carries_the_customer_and_the_summary_routing_needs() {
    let mut state = in_stage("bot");
    run(
        &mut state,
        &inbound("m-2", "where is my order 2026111100001? I want a human"),
    );
    let facts = |text: &str| crate::ports::brain::TextFacts {
        language: Some(if text.is_ascii() { "en" } else { "zh" }.to_owned()),
        order_numbers: text
            .split(|c: char| !c.is_ascii_digit())
            .filter(|run| run.len() >= 10)
            .map(str::to_owned)
            .collect(),
    };
    let request = ConversationCommand::RequestHandoff {
        reason: HandoffReason::CustomerRequest,
        group: Some("after_sales".to_owned()),
    };
    let Ok(Decision::Emit(events)) = super::decide::decide_with(&state, &request, &facts) else {
        panic!("a handoff");
    };
    let [ConversationEvent::HandoffRequested(handoff)] = events.as_slice() else {
        panic!("one handoff, got {events:?}");
    };
    assert_eq!(handoff.customer, Some(customer()));
    assert_eq!(handoff.group.as_deref(), Some("after_sales"));
    assert_eq!(handoff.take_over_by, None);
    let summary = &handoff.summary;
    assert_eq!(summary.reason, "customer_request");
    assert_eq!(summary.language.as_deref(), Some("en"));
    assert_eq!(summary.orders, ["2026111100001"]);
    assert_eq!(
        summary.last_customer_text,
        "where is my order 2026111100001? I want a human"
    );
}

#[test]
fn a_refund_answer_asks_routing_for_an_after_sales_ticket() {
    let mut state = in_stage("bot");
    let asked = state.messages[0].id.clone();
    let reply = |intent: &str| ConversationCommand::RecordBotReply {
        reply: Some(crest_proto::commands::BotReply {
            message_id: MessageId::generate(&tenant()),
            in_reply_to: asked.clone(),
            text: "ok".to_owned(),
            intent: Some(intent.to_owned()),
            confidence: 0.9,
            emotion: None,
            citations: Vec::new(),
        }),
        handoff: Some((HandoffReason::CustomerRequest, None)),
        in_reply_to: asked.clone(),
        lead: None,
    };
    let events = run(&mut state.clone(), &reply("order_status"));
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, ConversationEvent::AfterSalesRequested(_))),
        "{events:?}"
    );
    let events = run(&mut state, &reply("refund_request"));
    let [
        ConversationEvent::BotReplied(_),
        ConversationEvent::AfterSalesRequested(request),
        ConversationEvent::HandoffRequested(handoff),
    ] = events.as_slice()
    else {
        panic!("reply, ticket request, handoff: {events:?}");
    };
    assert_eq!(request.kind, "refund");
    assert_eq!(request.customer, customer());
    assert_eq!(request.text, "hello");
    assert_eq!(
        handoff.summary.bot_intents,
        ["refund_request"],
        "the summary includes the reply recorded with it"
    );
}

#[test]
fn only_the_owner_transfers_a_conversation_to_a_group() {
    let by = |name: &str| ConversationCommand::TransferToGroup {
        by: Some(agent(name)),
        group: "after_sales".to_owned(),
    };
    let mut state = in_stage("assigned");
    let events = run(&mut state, &by("ann"));
    let [ConversationEvent::HandoffRequested(handoff)] = events.as_slice() else {
        panic!("one handoff, got {events:?}");
    };
    assert_eq!(
        handoff.reason,
        HandoffReason::Transferred(agent("ann").key().to_owned())
    );
    assert_eq!(handoff.group.as_deref(), Some("after_sales"));
    // Without `by`, the owner gives it away.
    let owner_gives = ConversationCommand::TransferToGroup {
        by: None,
        group: "after_sales".to_owned(),
    };
    assert!(matches!(
        decide(&in_stage("assigned"), &owner_gives),
        Ok(Decision::Emit(_))
    ));
    assert_eq!(
        decide(&in_stage("bot"), &owner_gives),
        Err(Rejection::NotOwner)
    );
    assert_eq!(state.status, Status::Queued);
    // The old owner may not reply any more.
    let reply = ConversationCommand::AgentReply {
        agent: agent("ann"),
        agent_message_id: "a-9".to_owned(),
        message_id: MessageId::generate(&tenant()),
        text: "still here".to_owned(),
        internal: false,
    };
    assert_eq!(decide(&state, &reply), Err(Rejection::NotOwner));

    // (stage, who asks, expected rejection)
    let cases = [
        ("new", "ann", Rejection::NotStarted),
        ("bot", "ann", Rejection::NotOwner),
        ("queued", "ann", Rejection::NotOwner),
        ("assigned", "bob", Rejection::NotOwner),
        ("resolved", "ann", Rejection::NotOwner),
        ("closed", "ann", Rejection::Closed),
    ];
    for (stage, name, rejection) in cases {
        assert_eq!(
            decide(&in_stage(stage), &by(name)),
            Err(rejection),
            "{stage} by {name}"
        );
    }
}

#[test]
fn proactive_messages_never_talk_over_a_human_and_are_written_once() {
    // (stage, expected rejection)
    let cases = [
        ("new", Some(Rejection::NotStarted)),
        ("bot", None),
        ("queued", Some(Rejection::HumanChatOpen)),
        ("assigned", Some(Rejection::HumanChatOpen)),
        ("resolved", None),
        ("closed", Some(Rejection::Closed)),
    ];
    for (stage, rejection) in cases {
        let mut state = in_stage(stage);
        let status = state.status.clone();
        let message_id = MessageId::generate(&tenant());
        let command = ConversationCommand::SendProactive {
            message_id: message_id.clone(),
            text: "Your parcel is delayed.".to_owned(),
            trigger: "shipment_delayed".to_owned(),
            trigger_id: "e-1".to_owned(),
        };
        if let Some(rejection) = rejection {
            assert_eq!(decide(&state, &command), Err(rejection), "{stage}");
            continue;
        }
        let events = run(&mut state, &command);
        let [ConversationEvent::ProactiveSent(sent)] = events.as_slice() else {
            panic!("{stage}: one proactive message, got {events:?}");
        };
        assert_eq!(sent.message, message_id, "{stage}");
        assert_eq!(sent.trigger, "shipment_delayed", "{stage}");
        assert_eq!(state.status, status, "{stage}: it changes no owner");
        let record = state.message(&message_id).expect("recorded in the history");
        assert_eq!(record.role, Role::Bot, "{stage}");
        assert_eq!(record.text, "Your parcel is delayed.", "{stage}");
        assert!(!needs_bot_answer(&state, &events), "{stage}");
        assert_eq!(
            decide(&state, &command),
            Ok(Decision::Nothing),
            "{stage}: the same message id is written once"
        );
    }
}
/// The bot's reply to the latest customer message, carrying `lead`.
fn lead_reply(state: &ConversationState, lead: Option<(&str, &str)>) -> ConversationCommand {
    let asked = state
        .unanswered
        .last()
        .expect("a message to answer")
        .clone();
    ConversationCommand::RecordBotReply {
        reply: Some(BotReply {
            message_id: MessageId::generate(&tenant()),
            in_reply_to: asked.clone(),
            text: "ok".to_owned(),
            intent: Some("product_inquiry".to_owned()),
            confidence: 0.9,
            emotion: None,
            citations: Vec::new(),
        }),
        handoff: None,
        in_reply_to: asked,
        lead: Some(crest_proto::leads::LeadUpdate {
            intent: "product_inquiry".to_owned(),
            name: lead.map(|(name, _)| name.to_owned()),
            phone: lead
                .map(|(_, phone)| phone.to_owned())
                .filter(|phone| !phone.is_empty()),
        }),
    }
}

#[test]
fn a_lead_progresses_then_is_captured_once_on_the_latest_channel() {
    let mut state = ConversationState::default();
    let answer = |state: &mut ConversationState, text: &str, lead: Option<(&str, &str)>| {
        let id = format!("m-{}", state.seq);
        run(state, &inbound(&id, text));
        let reply = lead_reply(state, lead);
        run(state, &reply)
    };
    let events = answer(&mut state, "how much is it", None);
    assert!(matches!(events[1], ConversationEvent::LeadProgressed(_)));
    assert_eq!(state.lead.intent.as_deref(), Some("product_inquiry"));
    assert!(!state.lead.captured);
    let events = answer(&mut state, "Ann", Some(("Ann", "")));
    assert!(matches!(events[1], ConversationEvent::LeadProgressed(_)));
    assert_eq!(state.lead.name.as_deref(), Some("Ann"));
    let events = answer(&mut state, "13800138000", Some(("Ann", "13800138000")));
    let ConversationEvent::LeadCaptured(captured) = &events[1] else {
        panic!("captured: {events:?}");
    };
    assert_eq!(captured.customer, customer());
    assert_eq!(captured.channel, "web");
    assert_eq!(captured.phone, "13800138000");
    assert!(state.lead.captured);
    // A conversation gives one lead: a later update records the reply only.
    let events = answer(&mut state, "thanks", Some(("Ann", "13900001111")));
    assert_eq!(events.len(), 1, "{events:?}");
}
