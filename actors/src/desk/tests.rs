//! Table tests of the routing desk through [`execute`], with time driven explicitly (`now_ms` is a
//! parameter, so "waiting 30 seconds" is a bigger number, never a sleep), and a property test of
//! the desk's invariants over random command sequences.
//!
//! Every scenario keeps a journal of the events it saw (with the time they were decided) and ends
//! by replaying it into a fresh [`DeskState`]: the rebuilt state, and so every timer it arms
//! ([`next_deadline`]), must equal the live one.

use std::collections::BTreeMap;

use crest_proto::events::{Emotion, HandoffReason};
use crest_proto::routing::{
    ChatAssigned, ChatOffered, ChatQueued, DeskEvent, HandoffSummary, OfferWithdrawn, Presence,
    TicketStatus, Tier,
};
use crest_proto::{AgentId, ConversationId, CustomerId, TenantId, TicketId};
use proptest::prelude::*;

use super::decide::{
    DeskCommand, DeskRejection, DeskSettings, HandoffInfo, NewTicket, Outcome, TicketChange,
    execute, next_deadline, waiting_order,
};
use super::state::{ChatStage, DeskState, GroupConfig};
use crate::persistence::Aggregate;

/// 2023-11-14T22:13:20Z: the start of every scenario.
const T0: u64 = 1_700_000_000_000;

const SECOND: u64 = 1_000;

fn tenant() -> TenantId {
    TenantId::new("acme").expect("valid tenant")
}

fn agent(name: &str) -> AgentId {
    AgentId::new(&tenant(), name).expect("valid agent")
}

fn conv(n: u128) -> ConversationId {
    ConversationId::from_parts(tenant(), (u128::from(T0) << 80) | n)
}

fn customer(n: u128) -> CustomerId {
    CustomerId::new(&tenant(), format!("c-{n}")).expect("valid customer")
}

fn ticket_id(n: u128) -> TicketId {
    TicketId::from_parts(tenant(), (u128::from(T0) << 80) | (0xF000 + n))
}

fn summary() -> HandoffSummary {
    HandoffSummary {
        reason: "customer_request".to_owned(),
        intent: None,
        emotion: None,
        language: None,
        bot_intents: Vec::new(),
        orders: Vec::new(),
        last_customer_text: "I want a human".to_owned(),
    }
}

/// The handoff of conversation `n` (customer `n`, handoff event at seq 3) to `group`.
fn handoff(n: u128, group: &str) -> HandoffInfo {
    HandoffInfo {
        conversation: conv(n),
        customer: customer(n),
        reason: HandoffReason::CustomerRequest,
        group: Some(group.to_owned()),
        handoff_seq: 3,
        summary: summary(),
        take_over_by: None,
    }
}

fn set_agent(name: &str, status: Presence, groups: &[&str], capacity: u16) -> DeskCommand {
    DeskCommand::SetAgent {
        agent: agent(name),
        status: Some(status),
        groups: Some(groups.iter().map(|&g| g.to_owned()).collect()),
        capacity: Some(capacity),
        languages: None,
    }
}

fn set_capacity(name: &str, capacity: u16) -> DeskCommand {
    DeskCommand::SetAgent {
        agent: agent(name),
        status: None,
        groups: None,
        capacity: Some(capacity),
        languages: None,
    }
}

fn accept(name: &str, n: u128) -> DeskCommand {
    DeskCommand::Accept {
        agent: agent(name),
        conversation: conv(n),
    }
}

fn finished(n: u128) -> DeskCommand {
    DeskCommand::ChatFinished {
        conversation: conv(n),
        reason: "resolved".to_owned(),
    }
}

fn new_ticket(n: u128, first_response_s: Option<u64>, resolution_s: Option<u64>) -> NewTicket {
    NewTicket {
        ticket: ticket_id(n),
        kind: "return".to_owned(),
        subject: "Broken kettle".to_owned(),
        customer: Some(customer(1)),
        conversation: Some(conv(1)),
        assignee: None,
        created_by: "api".to_owned(),
        first_response_s,
        resolution_s,
    }
}

fn update(n: u128, change: TicketChange) -> DeskCommand {
    DeskCommand::UpdateTicket {
        ticket: ticket_id(n),
        change,
    }
}

fn status_to(status: TicketStatus) -> TicketChange {
    TicketChange {
        status: Some(status),
        ..TicketChange::default()
    }
}

fn comment(author: &str, public: bool) -> TicketChange {
    TicketChange {
        comment: Some((author.to_owned(), "text".to_owned(), public)),
        ..TicketChange::default()
    }
}

/// A desk with its journal: every event with the time it was decided.
#[derive(Debug)]
struct Desk {
    state: DeskState,
    settings: DeskSettings,
    journal: Vec<(DeskEvent, u64)>,
}

impl Desk {
    fn new() -> Self {
        Self {
            state: DeskState::default(),
            settings: DeskSettings::default(),
            journal: Vec::new(),
        }
    }

    /// Runs a command that must be accepted.
    fn run(&mut self, command: DeskCommand, now_ms: u64) -> Outcome {
        let description = format!("{command:?}");
        self.try_run(command, now_ms)
            .unwrap_or_else(|rejection| panic!("{description} rejected: {rejection}"))
    }

    /// Runs a command; a rejection must leave the state untouched.
    fn try_run(&mut self, command: DeskCommand, now_ms: u64) -> Result<Outcome, DeskRejection> {
        let before = self.state.clone();
        match execute(&mut self.state, &tenant(), &self.settings, command, now_ms) {
            Ok(outcome) => {
                assert_eq!(outcome.expected_seq, before.seq);
                assert_eq!(
                    self.state.seq,
                    before.seq + outcome.events.len() as u64,
                    "one sequence number per event"
                );
                self.journal
                    .extend(outcome.events.iter().map(|event| (event.clone(), now_ms)));
                Ok(outcome)
            }
            Err(rejection) => {
                assert_eq!(self.state, before, "a rejection changes nothing");
                Err(rejection)
            }
        }
    }

    fn tick(&mut self, now_ms: u64) -> Outcome {
        self.run(DeskCommand::Tick, now_ms)
    }

    /// The state rebuilt from the journal, as a restarted node does.
    fn replayed(&self) -> DeskState {
        replay(&self.journal)
    }

    fn assert_recovers(&self) {
        let replayed = self.replayed();
        assert_eq!(
            replayed, self.state,
            "replaying the journal rebuilds the state"
        );
        assert_eq!(
            next_deadline(&replayed),
            next_deadline(&self.state),
            "timers re-arm from the journal"
        );
        assert_eq!(
            super::state::Tickets::from((*self.state.tickets).clone()),
            self.state.tickets,
            "the ticket indexes kept in step equal indexes rebuilt from the tickets"
        );
    }

    fn stage(&self, n: u128) -> Option<ChatStage> {
        self.state
            .chats
            .get(&conv(n))
            .map(|chat| chat.stage.clone())
    }

    fn load(&self, name: &str) -> (usize, usize) {
        self.state
            .agents
            .get(&agent(name))
            .map_or((0, 0), |seat| (seat.chats.len(), seat.offers.len()))
    }

    fn ticket_of(&self, n: u128) -> &super::state::Ticket {
        self.state
            .tickets
            .get(&ticket_id(n))
            .expect("ticket exists")
    }
}

fn replay(journal: &[(DeskEvent, u64)]) -> DeskState {
    let mut state = DeskState::default();
    for (index, (event, at_ms)) in journal.iter().enumerate() {
        state.apply_event(event, index as u64 + 1, *at_ms);
    }
    state
}

fn offers(outcome: &Outcome) -> Vec<(ConversationId, AgentId)> {
    outcome
        .events
        .iter()
        .filter_map(|event| match event {
            DeskEvent::ChatOffered(offer) => {
                Some((offer.conversation.clone(), offer.agent.clone()))
            }
            _ => None,
        })
        .collect()
}

fn offer_events(outcome: &Outcome) -> Vec<&ChatOffered> {
    outcome
        .events
        .iter()
        .filter_map(|event| match event {
            DeskEvent::ChatOffered(offer) => Some(offer),
            _ => None,
        })
        .collect()
}

fn withdrawn(outcome: &Outcome) -> Vec<&OfferWithdrawn> {
    outcome
        .events
        .iter()
        .filter_map(|event| match event {
            DeskEvent::OfferWithdrawn(withdrawn) => Some(withdrawn),
            _ => None,
        })
        .collect()
}

fn assigned(outcome: &Outcome) -> Vec<&ChatAssigned> {
    outcome
        .events
        .iter()
        .filter_map(|event| match event {
            DeskEvent::ChatAssigned(assigned) => Some(assigned),
            _ => None,
        })
        .collect()
}

/// The customer notices an outcome journals: (conversation, text).
fn notices(outcome: &Outcome) -> Vec<(ConversationId, String)> {
    outcome
        .events
        .iter()
        .filter_map(|event| match event {
            DeskEvent::CustomerNotified(notice) => {
                Some((notice.conversation.clone(), notice.text.clone()))
            }
            _ => None,
        })
        .collect()
}

fn queued(outcome: &Outcome) -> Vec<&ChatQueued> {
    outcome
        .events
        .iter()
        .filter_map(|event| match event {
            DeskEvent::ChatQueued(queued) => Some(queued),
            _ => None,
        })
        .collect()
}

fn event_types(outcome: &Outcome) -> Vec<&'static str> {
    use crest_proto::events::DomainEvent;
    outcome.events.iter().map(DomainEvent::event_type).collect()
}

// ---------------------------------------------------------------------------------------------
// Priority and aging
// ---------------------------------------------------------------------------------------------

/// How a test chat looks to routing.
#[derive(Debug, Clone, Copy)]
struct Spec {
    vip: bool,
    emotion: Option<(&'static str, f32)>,
    intent: Option<&'static str>,
    anger_escalation: bool,
}

const NORMAL: Spec = Spec {
    vip: false,
    emotion: None,
    intent: None,
    anger_escalation: false,
};

/// (case, chats in arrival order as (conversation, spec, expected priority), expected order).
type PriorityCase = (&'static str, Vec<(u128, Spec, i32)>, Vec<u128>);

/// (case, agents as (name, capacity, online at seconds), expected agent).
type SeatCase = (&'static str, Vec<(&'static str, u16, u64)>, &'static str);

fn spec_handoff(n: u128, spec: Spec) -> HandoffInfo {
    let mut info = handoff(n, "general");
    info.summary.intent = spec.intent.map(str::to_owned);
    info.summary.emotion = spec.emotion.map(|(label, score)| Emotion {
        label: label.to_owned(),
        score,
    });
    if spec.anger_escalation {
        info.reason = HandoffReason::Escalation("anger".to_owned());
    }
    info
}

#[test]
fn waiting_chats_are_served_by_priority() {
    // (case, chats in arrival order as (conversation, spec, expected priority), expected order)
    let vip = Spec {
        vip: true,
        ..NORMAL
    };
    let angry = Spec {
        emotion: Some(("anger", 0.9)),
        ..NORMAL
    };
    let mildly_annoyed = Spec {
        emotion: Some(("anger", 0.3)),
        ..NORMAL
    };
    let anxious = Spec {
        emotion: Some(("anxiety", 0.5)),
        ..NORMAL
    };
    let escalated = Spec {
        anger_escalation: true,
        ..NORMAL
    };
    let urgent = Spec {
        intent: Some("payment_issue"),
        ..NORMAL
    };
    let angry_and_urgent = Spec {
        emotion: Some(("frustration", 0.8)),
        intent: Some("complaint"),
        ..NORMAL
    };
    let cases: Vec<PriorityCase> = vec![
        (
            "vip before normal",
            vec![(1, NORMAL, 0), (2, vip, 100)],
            vec![2, 1],
        ),
        (
            "anger bonus",
            vec![(1, NORMAL, 0), (2, angry, 40)],
            vec![2, 1],
        ),
        (
            "anxiety counts as upset",
            vec![(1, NORMAL, 0), (2, anxious, 40)],
            vec![2, 1],
        ),
        (
            "anger escalation without emotion",
            vec![(1, NORMAL, 0), (2, escalated, 40)],
            vec![2, 1],
        ),
        (
            "weak anger gets no bonus (tie: first come first served)",
            vec![(1, NORMAL, 0), (2, mildly_annoyed, 0)],
            vec![1, 2],
        ),
        (
            "urgent intent bonus",
            vec![(1, NORMAL, 0), (2, urgent, 30)],
            vec![2, 1],
        ),
        (
            "bonuses add up; vip still wins",
            vec![
                (1, NORMAL, 0),
                (2, angry_and_urgent, 70),
                (3, vip, 100),
                (4, urgent, 30),
            ],
            vec![3, 2, 4, 1],
        ),
    ];
    for (case, chats, expected) in cases {
        let mut desk = Desk::new();
        // Online (so no night mode) but without capacity: everything waits.
        desk.run(set_agent("ann", Presence::Online, &["general"], 0), T0);
        for (n, spec, priority) in &chats {
            if spec.vip {
                desk.run(
                    DeskCommand::SetTier {
                        customer: customer(*n),
                        tier: Tier::Vip,
                    },
                    T0,
                );
            }
            let outcome = desk.run(DeskCommand::Handoff(spec_handoff(*n, *spec)), T0);
            let queued = queued(&outcome);
            assert_eq!(queued.len(), 1, "{case}");
            assert_eq!(
                queued[0].priority, *priority,
                "{case}: {:?}",
                queued[0].reasons
            );
            assert!(offers(&outcome).is_empty(), "{case}: no capacity yet");
        }
        let order: Vec<ConversationId> = waiting_order(&desk.state, "general", T0, &desk.settings)
            .into_iter()
            .map(|(conversation, _)| conversation)
            .collect();
        let expected: Vec<ConversationId> = expected.iter().map(|&n| conv(n)).collect();
        assert_eq!(order, expected, "{case}: waiting order");
        // Capacity for everybody at once: the offers go out in priority order.
        let outcome = desk.run(set_capacity("ann", 10), T0 + 5 * SECOND);
        let offered: Vec<ConversationId> = offers(&outcome).into_iter().map(|(c, _)| c).collect();
        assert_eq!(offered, expected, "{case}: offer order");
        desk.assert_recovers();
    }
}

#[test]
fn priority_reasons_explain_the_bonuses() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 0), T0);
    desk.run(
        DeskCommand::SetTier {
            customer: customer(1),
            tier: Tier::Vip,
        },
        T0,
    );
    let spec = Spec {
        vip: true,
        emotion: Some(("anger", 0.9)),
        intent: Some("payment_issue"),
        anger_escalation: false,
    };
    let outcome = desk.run(DeskCommand::Handoff(spec_handoff(1, spec)), T0);
    let queued = queued(&outcome);
    assert_eq!(queued[0].priority, 170);
    assert_eq!(
        queued[0].reasons,
        [
            "vip +100",
            "anger +40",
            "payment_issue +30",
            "handoff: customer_request"
        ]
    );
    // A tier set back to normal is an event; setting the same tier again is not.
    let outcome = desk.run(
        DeskCommand::SetTier {
            customer: customer(1),
            tier: Tier::Vip,
        },
        T0,
    );
    assert!(outcome.events.is_empty());
    desk.assert_recovers();
}

#[test]
fn aging_lets_long_waiting_chats_overtake_vips() {
    // (case, seconds after the normal chat that the VIP arrives, who is offered first)
    let cases = [
        ("vip arrives 50 s later: within the 100-point bonus", 50, 2),
        ("vip arrives 99 s later: still within the bonus", 99, 2),
        (
            "vip arrives 101 s later: the normal chat waited longer",
            101,
            1,
        ),
        ("vip arrives 300 s later", 300, 1),
    ];
    for (case, vip_delay_s, first) in cases {
        let mut desk = Desk::new();
        desk.run(set_agent("ann", Presence::Online, &["general"], 0), T0);
        desk.run(
            DeskCommand::SetTier {
                customer: customer(2),
                tier: Tier::Vip,
            },
            T0,
        );
        // The default group "general" never overflows, so waiting long changes nothing else.
        desk.run(DeskCommand::Handoff(handoff(1, "general")), T0);
        let vip_at = T0 + vip_delay_s * SECOND;
        desk.run(DeskCommand::Handoff(handoff(2, "general")), vip_at);
        // The order holds whenever capacity frees: both age at the same rate.
        for later_s in [0, 7, 600] {
            let order = waiting_order(
                &desk.state,
                "general",
                vip_at + later_s * SECOND,
                &desk.settings,
            );
            assert_eq!(order[0].0, conv(first), "{case} (+{later_s} s)");
        }
        let outcome = desk.run(set_capacity("ann", 1), vip_at + 10 * SECOND);
        assert_eq!(offers(&outcome), [(conv(first), agent("ann"))], "{case}");
        desk.assert_recovers();
    }
}

// ---------------------------------------------------------------------------------------------
// Assignment
// ---------------------------------------------------------------------------------------------

#[test]
fn offers_go_to_the_most_free_capacity_then_the_longest_idle() {
    // (case, agents as (name, capacity, online at seconds), expected agent)
    let cases: Vec<SeatCase> = vec![
        (
            "most free capacity wins",
            vec![("ann", 2, 0), ("bob", 3, 10)],
            "bob",
        ),
        (
            "most free capacity wins (other order)",
            vec![("ann", 3, 10), ("bob", 2, 0)],
            "ann",
        ),
        (
            "equal capacity: longest idle",
            vec![("ann", 2, 10), ("bob", 2, 5)],
            "bob",
        ),
        (
            "equal capacity: longest idle (other order)",
            vec![("ann", 2, 5), ("bob", 2, 10)],
            "ann",
        ),
        (
            "a seat without capacity is no candidate",
            vec![("ann", 0, 0), ("bob", 1, 10)],
            "bob",
        ),
    ];
    for (case, agents, expected) in cases {
        let mut desk = Desk::new();
        for (name, capacity, online_s) in &agents {
            desk.run(
                set_agent(name, Presence::Online, &["general"], *capacity),
                T0 + online_s * SECOND,
            );
        }
        let outcome = desk.run(
            DeskCommand::Handoff(handoff(1, "general")),
            T0 + 60 * SECOND,
        );
        let offered = offer_events(&outcome);
        assert_eq!(offered.len(), 1, "{case}");
        assert_eq!(offered[0].agent, agent(expected), "{case}");
        assert_eq!(
            offered[0].candidates[0].agent,
            agent(expected),
            "{case}: best first"
        );
        assert_eq!(
            offered[0].expires_at_ms,
            T0 + 90 * SECOND,
            "{case}: default offer timeout of 30 s"
        );
        assert_eq!(
            desk.stage(1),
            Some(ChatStage::Offered {
                agent: agent(expected),
                expires_at_ms: T0 + 90 * SECOND
            })
        );
        assert_eq!(
            desk.load(expected),
            (0, 1),
            "{case}: the offer reserves capacity"
        );
        desk.assert_recovers();
    }
}

#[test]
fn idle_time_restarts_when_a_chat_ends() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 1), T0);
    desk.run(
        set_agent("bob", Presence::Online, &["general"], 1),
        T0 + SECOND,
    );
    desk.run(
        DeskCommand::Handoff(handoff(1, "general")),
        T0 + 10 * SECOND,
    );
    desk.run(accept("ann", 1), T0 + 11 * SECOND);
    desk.run(finished(1), T0 + 20 * SECOND);
    assert_eq!(
        desk.state.agents[&agent("ann")].idle_since_ms,
        T0 + 20 * SECOND
    );
    // Bob has now been idle longest.
    let outcome = desk.run(
        DeskCommand::Handoff(handoff(2, "general")),
        T0 + 30 * SECOND,
    );
    assert_eq!(offers(&outcome), [(conv(2), agent("bob"))]);
    desk.assert_recovers();
}

#[test]
fn capacity_is_never_exceeded_and_offers_count() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 2), T0);
    let mut offered = Vec::new();
    for n in 1..=3 {
        let outcome = desk.run(DeskCommand::Handoff(handoff(n, "general")), T0 + n as u64);
        offered.extend(offers(&outcome));
        let (chats, offers) = desk.load("ann");
        assert!(
            chats + offers <= 2,
            "after handoff {n}: {chats} chats + {offers} offers"
        );
    }
    assert_eq!(offered, [(conv(1), agent("ann")), (conv(2), agent("ann"))]);
    assert_eq!(desk.stage(3), Some(ChatStage::Waiting));
    // Accepting turns an offer into a chat: the load stays the same, chat 3 keeps waiting.
    let outcome = desk.run(accept("ann", 1), T0 + 10 * SECOND);
    assert_eq!(
        event_types(&outcome),
        ["desk.chat_assigned", "desk.customer_notified"]
    );
    assert_eq!(desk.load("ann"), (1, 1));
    assert_eq!(desk.stage(3), Some(ChatStage::Waiting));
    // Accepting twice is harmless; accepting somebody else's offer is not allowed.
    assert!(
        desk.run(accept("ann", 1), T0 + 11 * SECOND)
            .events
            .is_empty()
    );
    desk.run(
        set_agent("bob", Presence::Online, &["general"], 0),
        T0 + 12 * SECOND,
    );
    assert_eq!(
        desk.try_run(accept("bob", 2), T0 + 12 * SECOND),
        Err(DeskRejection::NoSuchOffer {
            agent: agent("bob").key().to_owned(),
            conversation: conv(2).key(),
        })
    );
    // Lowering capacity below the load takes nothing away and offers nothing more.
    let outcome = desk.run(set_capacity("ann", 1), T0 + 13 * SECOND);
    assert_eq!(event_types(&outcome), ["desk.agent_profile_set"]);
    assert_eq!(desk.load("ann"), (1, 1));
    desk.run(accept("ann", 2), T0 + 14 * SECOND);
    let outcome = desk.run(finished(1), T0 + 15 * SECOND);
    assert!(
        offers(&outcome).is_empty(),
        "still one chat for a capacity of one"
    );
    let outcome = desk.run(finished(2), T0 + 16 * SECOND);
    assert_eq!(offers(&outcome), [(conv(3), agent("ann"))]);
    desk.assert_recovers();
}

#[test]
fn an_expired_offer_goes_to_the_next_agent() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 1), T0);
    desk.run(
        set_agent("bob", Presence::Online, &["general"], 1),
        T0 + SECOND,
    );
    let outcome = desk.run(
        DeskCommand::Handoff(handoff(1, "general")),
        T0 + 10 * SECOND,
    );
    let expires = offer_events(&outcome)[0].expires_at_ms;
    assert_eq!(offers(&outcome), [(conv(1), agent("ann"))]);
    assert_eq!(next_deadline(&desk.state), Some(expires));

    assert!(desk.tick(expires - 1).events.is_empty(), "not yet");
    let outcome = desk.tick(expires);
    let withdrawals = withdrawn(&outcome);
    assert_eq!(withdrawals.len(), 1);
    assert_eq!(withdrawals[0].agent, agent("ann"));
    assert_eq!(withdrawals[0].reason, "expired");
    assert_eq!(offers(&outcome), [(conv(1), agent("bob"))]);
    assert_eq!(desk.state.chats[&conv(1)].passed, [agent("ann")]);
    assert_eq!(desk.load("ann"), (0, 0));
    assert_eq!(desk.load("bob"), (0, 1));
    desk.assert_recovers();
}

#[test]
fn a_declined_offer_goes_to_the_next_agent_and_never_back_to_who_declined() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 1), T0);
    desk.run(
        set_agent("bob", Presence::Online, &["general"], 1),
        T0 + SECOND,
    );
    desk.run(
        DeskCommand::Handoff(handoff(1, "general")),
        T0 + 10 * SECOND,
    );
    let outcome = desk.run(
        DeskCommand::Decline {
            agent: agent("ann"),
            conversation: conv(1),
        },
        T0 + 12 * SECOND,
    );
    assert_eq!(withdrawn(&outcome)[0].reason, "declined");
    assert_eq!(offers(&outcome), [(conv(1), agent("bob"))]);
    // Bob declines too: the chat waits for somebody who has not declined it (no offer loop).
    let outcome = desk.run(
        DeskCommand::Decline {
            agent: agent("bob"),
            conversation: conv(1),
        },
        T0 + 13 * SECOND,
    );
    assert_eq!(offers(&outcome), []);
    let outcome = desk.run(
        set_agent("cat", Presence::Online, &["general"], 1),
        T0 + 14 * SECOND,
    );
    assert_eq!(offers(&outcome), [(conv(1), agent("cat"))]);
    // Declining an offer one does not have is refused.
    assert!(matches!(
        desk.try_run(
            DeskCommand::Decline {
                agent: agent("bob"),
                conversation: conv(1),
            },
            T0 + 15 * SECOND,
        ),
        Err(DeskRejection::NoSuchOffer { .. })
    ));
    desk.assert_recovers();
}

#[test]
fn a_waiting_chat_is_offered_the_moment_capacity_frees() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 1), T0);
    desk.run(DeskCommand::Handoff(handoff(1, "general")), T0 + SECOND);
    desk.run(accept("ann", 1), T0 + 2 * SECOND);
    let outcome = desk.run(DeskCommand::Handoff(handoff(2, "general")), T0 + 3 * SECOND);
    assert!(offers(&outcome).is_empty());
    let outcome = desk.run(finished(1), T0 + 63 * SECOND);
    assert_eq!(
        event_types(&outcome),
        ["desk.chat_ended", "desk.chat_offered"]
    );
    assert_eq!(offers(&outcome), [(conv(2), agent("ann"))]);
    assert!(!desk.state.chats.contains_key(&conv(1)));
    // A finished chat routing does not know changes nothing.
    assert!(desk.run(finished(99), T0 + 64 * SECOND).events.is_empty());
    desk.assert_recovers();
}

// ---------------------------------------------------------------------------------------------
// Transfers and take-overs
// ---------------------------------------------------------------------------------------------

/// Ann owns chat 1 in `general`.
fn ann_owns_chat_1() -> Desk {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 2), T0);
    desk.run(DeskCommand::Handoff(handoff(1, "general")), T0 + SECOND);
    desk.run(accept("ann", 1), T0 + 2 * SECOND);
    desk
}

fn transfer(n: u128, to: &str) -> DeskCommand {
    DeskCommand::TransferToAgent {
        conversation: conv(n),
        agent: agent(to),
        take_over: false,
        handoff: None,
    }
}

#[test]
fn a_transfer_to_an_agent_moves_the_chat_and_respects_capacity() {
    let mut desk = ann_owns_chat_1();
    desk.run(
        set_agent("bob", Presence::Online, &["general"], 1),
        T0 + 3 * SECOND,
    );
    let outcome = desk.run(transfer(1, "bob"), T0 + 10 * SECOND);
    let moves = assigned(&outcome);
    assert_eq!(moves.len(), 1);
    assert_eq!(moves[0].agent, agent("bob"));
    assert_eq!(moves[0].reason, "transfer");
    assert_eq!(moves[0].from, Some(agent("ann")));
    assert!(
        notices(&outcome)
            .iter()
            .any(|(conversation, _)| conversation == &conv(1)),
        "the customer is told who joined"
    );
    assert_eq!(desk.load("ann"), (0, 0));
    assert_eq!(desk.load("bob"), (1, 0));
    assert!(
        matches!(desk.stage(1), Some(ChatStage::Assigned { agent: owner, .. }) if owner == agent("bob"))
    );
    // Transferring to the owner changes nothing.
    assert!(
        desk.run(transfer(1, "bob"), T0 + 11 * SECOND)
            .events
            .is_empty()
    );

    // Bob is full now: a second chat cannot be transferred to him.
    desk.run(
        DeskCommand::Handoff(handoff(2, "general")),
        T0 + 12 * SECOND,
    );
    desk.run(accept("ann", 2), T0 + 13 * SECOND);
    assert_eq!(
        desk.try_run(transfer(2, "bob"), T0 + 14 * SECOND),
        Err(DeskRejection::AgentUnavailable {
            agent: agent("bob").key().to_owned(),
            reason: "no free capacity".to_owned(),
        })
    );
    // Nor to an agent outside the group, away, unknown, or of a chat routing does not know.
    desk.run(
        set_agent("cid", Presence::Online, &["pre_sales"], 3),
        T0 + 15 * SECOND,
    );
    desk.run(
        set_agent("dan", Presence::Away, &["general"], 3),
        T0 + 15 * SECOND,
    );
    assert_eq!(
        desk.try_run(transfer(2, "cid"), T0 + 16 * SECOND),
        Err(DeskRejection::AgentUnavailable {
            agent: agent("cid").key().to_owned(),
            reason: "not in group general".to_owned(),
        })
    );
    assert_eq!(
        desk.try_run(transfer(2, "dan"), T0 + 16 * SECOND),
        Err(DeskRejection::AgentUnavailable {
            agent: agent("dan").key().to_owned(),
            reason: "away".to_owned(),
        })
    );
    assert_eq!(
        desk.try_run(transfer(2, "eve"), T0 + 16 * SECOND),
        Err(DeskRejection::UnknownAgent(agent("eve").key().to_owned()))
    );
    assert_eq!(
        desk.try_run(transfer(77, "cid"), T0 + 16 * SECOND),
        Err(DeskRejection::NotInRouting(conv(77).key()))
    );
    desk.assert_recovers();
}

#[test]
fn a_transfer_to_the_agent_a_chat_is_offered_to_needs_no_extra_capacity() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 1), T0);
    desk.run(DeskCommand::Handoff(handoff(1, "general")), T0 + SECOND);
    assert_eq!(desk.load("ann"), (0, 1));
    let outcome = desk.run(transfer(1, "ann"), T0 + 2 * SECOND);
    assert_eq!(assigned(&outcome)[0].from, None);
    assert_eq!(desk.load("ann"), (1, 0));
    desk.assert_recovers();
}

#[test]
fn a_transfer_to_a_group_frees_the_agent_and_queues_the_chat_there() {
    let mut desk = ann_owns_chat_1();
    desk.run(
        set_agent("bob", Presence::Online, &["after_sales"], 1),
        T0 + 3 * SECOND,
    );
    let mut info = handoff(1, "after_sales");
    info.reason = HandoffReason::Transferred(agent("ann").key().to_owned());
    info.handoff_seq = 9;
    let outcome = desk.run(DeskCommand::Handoff(info.clone()), T0 + 20 * SECOND);
    let queued = queued(&outcome);
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].group, "after_sales");
    assert_eq!(queued[0].handoff_seq, 9);
    assert!(
        queued[0]
            .reasons
            .contains(&"handoff: transferred: ann".to_owned())
    );
    assert_eq!(desk.load("ann"), (0, 0), "the old agent is freed");
    assert_eq!(offers(&outcome), [(conv(1), agent("bob"))]);
    assert_eq!(desk.state.chats[&conv(1)].group, "after_sales");
    // The same transfer delivered again is ignored.
    assert!(
        desk.run(DeskCommand::Handoff(info), T0 + 21 * SECOND)
            .events
            .is_empty()
    );
    desk.assert_recovers();
}

#[test]
fn a_supervisor_takes_over_a_chat_routing_did_not_know() {
    let mut desk = Desk::new();
    // The supervisor is in no group; take-overs need no group membership.
    desk.run(set_agent("sue", Presence::Online, &[], 1), T0);
    let take_over = |handoff: Option<HandoffInfo>| DeskCommand::TransferToAgent {
        conversation: conv(1),
        agent: agent("sue"),
        take_over: true,
        handoff,
    };
    assert_eq!(
        desk.try_run(take_over(None), T0 + SECOND),
        Err(DeskRejection::NotInRouting(conv(1).key()))
    );
    let mut info = handoff(1, "general");
    info.reason = HandoffReason::Supervisor;
    info.group = None;
    let outcome = desk.run(take_over(Some(info.clone())), T0 + 2 * SECOND);
    assert_eq!(
        event_types(&outcome),
        [
            "desk.chat_queued",
            "desk.chat_assigned",
            "desk.customer_notified"
        ]
    );
    let taken = assigned(&outcome);
    assert_eq!(taken[0].reason, "take_over");
    assert_eq!(taken[0].from, None);
    assert_eq!(taken[0].conversation, conv(1));
    assert_eq!(taken[0].agent, agent("sue"));
    assert_eq!(desk.load("sue"), (1, 0));
    // The conversation's own handoff event arrives afterwards: routing has the chat already.
    let mut late = info;
    late.handoff_seq = 4;
    assert!(
        desk.run(DeskCommand::Handoff(late), T0 + 3 * SECOND)
            .events
            .is_empty()
    );

    // A take-over from another agent names them.
    let mut desk = ann_owns_chat_1();
    desk.run(set_agent("sue", Presence::Online, &[], 1), T0 + 3 * SECOND);
    let outcome = desk.run(
        DeskCommand::TransferToAgent {
            conversation: conv(1),
            agent: agent("sue"),
            take_over: true,
            handoff: None,
        },
        T0 + 4 * SECOND,
    );
    assert_eq!(assigned(&outcome)[0].from, Some(agent("ann")));
    assert_eq!(desk.load("ann"), (0, 0));
    desk.assert_recovers();
}

#[test]
fn a_take_over_handoff_goes_to_the_supervisor_when_they_can_take_it() {
    let take_over = |n: u128, seq: u64| {
        let mut info = handoff(n, "general");
        info.reason = HandoffReason::Supervisor;
        info.group = None;
        info.handoff_seq = seq;
        info.take_over_by = Some(agent("sue"));
        DeskCommand::Handoff(info)
    };
    // From the bot, supervisor online: queued and assigned to them at once, outside the queue order.
    let mut desk = Desk::new();
    desk.run(set_agent("sue", Presence::Online, &[], 1), T0);
    let outcome = desk.run(take_over(1, 3), T0 + SECOND);
    assert_eq!(
        event_types(&outcome),
        [
            "desk.chat_queued",
            "desk.chat_assigned",
            "desk.customer_notified"
        ]
    );
    assert_eq!(assigned(&outcome)[0].reason, "take_over");
    // The supervisor is full: the next one waits in the queue like any chat.
    let outcome = desk.run(take_over(2, 3), T0 + 2 * SECOND);
    assert_eq!(event_types(&outcome), ["desk.chat_queued"]);
    assert_eq!(desk.stage(2), Some(ChatStage::Waiting));
    // From another agent: the owner keeps the chat unless the supervisor can take it.
    let mut desk = ann_owns_chat_1();
    desk.run(set_agent("sue", Presence::Away, &[], 1), T0 + 3 * SECOND);
    assert!(desk.run(take_over(1, 9), T0 + 4 * SECOND).events.is_empty());
    assert_eq!(desk.load("ann"), (1, 0));
    desk.run(set_agent("sue", Presence::Online, &[], 1), T0 + 5 * SECOND);
    let outcome = desk.run(take_over(1, 10), T0 + 6 * SECOND);
    assert_eq!(assigned(&outcome)[0].from, Some(agent("ann")));
    assert_eq!(desk.load("ann"), (0, 0));
    assert_eq!(desk.load("sue"), (1, 0));
    desk.assert_recovers();
}

#[test]
fn a_transfer_with_a_handoff_checks_the_group_the_chat_will_wait_in() {
    let mut desk = Desk::new();
    desk.run(set_agent("abe", Presence::Online, &["after_sales"], 1), T0);
    desk.run(set_agent("gil", Presence::Online, &["general"], 1), T0);
    // The handoff names its group; its intent (none) would route it to `general`.
    let to = |n: u128, name: &str| DeskCommand::TransferToAgent {
        conversation: conv(n),
        agent: agent(name),
        take_over: false,
        handoff: Some(handoff(n, "after_sales")),
    };
    let outcome = desk.run(to(1, "abe"), T0 + SECOND);
    assert_eq!(
        event_types(&outcome),
        [
            "desk.chat_queued",
            "desk.chat_assigned",
            "desk.customer_notified"
        ]
    );
    assert_eq!(assigned(&outcome)[0].reason, "transfer");
    assert_eq!(desk.state.chats[&conv(1)].group, "after_sales");
    assert_eq!(
        desk.try_run(to(2, "gil"), T0 + 2 * SECOND),
        Err(DeskRejection::AgentUnavailable {
            agent: agent("gil").key().to_owned(),
            reason: "not in group after_sales".to_owned(),
        })
    );
    desk.assert_recovers();
}

// ---------------------------------------------------------------------------------------------
// Overflow, night mode, full queues
// ---------------------------------------------------------------------------------------------

#[test]
fn a_chat_overflows_to_the_backup_group_after_overflow_after_s() {
    let mut desk = Desk::new();
    // Pre-sales has an agent online but without capacity; general has room.
    desk.run(set_agent("pat", Presence::Online, &["pre_sales"], 0), T0);
    desk.run(set_agent("gil", Presence::Online, &["general"], 1), T0);
    let mut info = handoff(1, "unused");
    info.group = None;
    info.summary.intent = Some("product_info".to_owned());
    let outcome = desk.run(DeskCommand::Handoff(info), T0 + SECOND);
    assert_eq!(queued(&outcome)[0].group, "pre_sales", "routed by intent");
    assert!(
        notices(&outcome).is_empty(),
        "somebody is online: no night mode"
    );
    let due = T0 + SECOND + 180 * SECOND;
    assert_eq!(next_deadline(&desk.state), Some(due));
    assert!(desk.tick(due - 1).events.is_empty());
    let outcome = desk.tick(due);
    assert_eq!(
        event_types(&outcome),
        ["desk.chat_overflowed", "desk.chat_offered"]
    );
    assert_eq!(offers(&outcome), [(conv(1), agent("gil"))]);
    let chat = &desk.state.chats[&conv(1)];
    assert_eq!(chat.group, "general");
    assert_eq!(
        chat.waiting_since_ms,
        T0 + SECOND,
        "the wait is kept across overflow"
    );
    desk.assert_recovers();
}

#[test]
fn a_configured_overflow_uses_its_own_delay_and_backup() {
    let mut desk = Desk::new();
    desk.run(
        DeskCommand::ConfigureGroup {
            group: "vip_desk".to_owned(),
            config: GroupConfig {
                overflow_to: Some("after_sales".to_owned()),
                overflow_after_s: 20,
                max_waiting: 10,
                offer_timeout_s: 15,
            },
        },
        T0,
    );
    desk.run(set_agent("vic", Presence::Online, &["vip_desk"], 0), T0);
    desk.run(set_agent("abe", Presence::Online, &["after_sales"], 1), T0);
    desk.run(DeskCommand::Handoff(handoff(1, "vip_desk")), T0);
    assert!(desk.tick(T0 + 19 * SECOND).events.is_empty());
    let outcome = desk.tick(T0 + 20 * SECOND);
    assert_eq!(offers(&outcome), [(conv(1), agent("abe"))]);
    // The offer timeout is the group's where the chat now waits (after_sales: the default 30 s).
    assert_eq!(offer_events(&outcome)[0].expires_at_ms, T0 + 50 * SECOND);
    desk.assert_recovers();
}

#[test]
fn night_mode_keeps_the_chat_queued_with_a_callback_ticket_and_tells_the_customer() {
    // (case, language, a phrase of the notice)
    let cases = [
        ("chinese", None, "当前暂无"),
        ("english", Some("en"), "No customer service agent is online"),
    ];
    for (case, language, phrase) in cases {
        let mut desk = Desk::new();
        let mut info = handoff(1, "general");
        info.summary.language = language.map(str::to_owned);
        let outcome = desk.run(DeskCommand::Handoff(info.clone()), T0);
        assert_eq!(
            event_types(&outcome),
            [
                "desk.chat_queued",
                "desk.ticket_created",
                "desk.customer_notified"
            ],
            "{case}"
        );
        let DeskEvent::TicketCreated(ticket) = &outcome.events[1] else {
            panic!("{case}: a ticket");
        };
        assert_eq!(ticket.kind, "callback", "{case}");
        assert_eq!(ticket.created_by, "routing", "{case}");
        assert_eq!(ticket.conversation, Some(conv(1)), "{case}");
        assert_eq!(ticket.customer, Some(customer(1)), "{case}");
        let notices = notices(&outcome);
        let [(conversation, text)] = notices.as_slice() else {
            panic!("{case}: one notice, got {notices:?}");
        };
        assert_eq!(conversation, &conv(1));
        assert!(text.contains(phrase), "{case}: {text}");
        assert!(
            text.contains(&ticket.ticket.key()),
            "{case}: the notice names the ticket"
        );
        assert_eq!(
            desk.stage(1),
            Some(ChatStage::Waiting),
            "{case}: still queued"
        );
        // An agent signs in: the chat is offered at once.
        let outcome = desk.run(
            set_agent("ann", Presence::Online, &["general"], 1),
            T0 + 60 * SECOND,
        );
        assert_eq!(offers(&outcome), [(conv(1), agent("ann"))], "{case}");
        desk.assert_recovers();
    }
}

#[test]
fn an_agent_online_in_the_backup_group_is_no_night_mode() {
    let mut desk = Desk::new();
    desk.run(set_agent("gil", Presence::Online, &["general"], 0), T0);
    let outcome = desk.run(DeskCommand::Handoff(handoff(1, "pre_sales")), T0);
    assert_eq!(event_types(&outcome), ["desk.chat_queued"]);
    assert!(notices(&outcome).is_empty());
    // An away agent does not count.
    let mut desk = Desk::new();
    desk.run(set_agent("gil", Presence::Away, &["general"], 3), T0);
    let outcome = desk.run(DeskCommand::Handoff(handoff(1, "general")), T0);
    assert_eq!(
        event_types(&outcome),
        [
            "desk.chat_queued",
            "desk.ticket_created",
            "desk.customer_notified"
        ]
    );
    desk.assert_recovers();
}

#[test]
fn a_full_queue_refuses_the_handoff_with_a_ticket_and_gives_the_chat_back() {
    let mut desk = Desk::new();
    desk.run(
        DeskCommand::ConfigureGroup {
            group: "general".to_owned(),
            config: GroupConfig {
                max_waiting: 1,
                ..GroupConfig::default_for("general")
            },
        },
        T0,
    );
    desk.run(set_agent("ann", Presence::Online, &["general"], 0), T0);
    let outcome = desk.run(DeskCommand::Handoff(handoff(1, "general")), T0 + SECOND);
    assert_eq!(event_types(&outcome), ["desk.chat_queued"]);
    let mut second = handoff(2, "general");
    second.summary.language = Some("en".to_owned());
    let outcome = desk.run(DeskCommand::Handoff(second.clone()), T0 + 2 * SECOND);
    assert_eq!(
        event_types(&outcome),
        ["desk.ticket_created", "desk.chat_refused"]
    );
    let DeskEvent::ChatRefused(refused) = &outcome.events[1] else {
        panic!("refused");
    };
    assert_eq!(refused.reason, "queue_full");
    assert_eq!(refused.handoff_seq, 3);
    assert_eq!(refused.group, "general");
    let DeskEvent::TicketCreated(ticket) = &outcome.events[0] else {
        panic!("ticket");
    };
    assert_eq!(ticket.kind, "callback");
    assert_eq!(refused.conversation, conv(2));
    assert_eq!(refused.reason, "queue_full");
    assert!(
        refused.text.contains("queue is full") && refused.text.contains(&ticket.ticket.key()),
        "the customer is told why, with the ticket: {}",
        refused.text
    );
    assert!(notices(&outcome).is_empty(), "the refusal carries its text");
    assert!(!desk.state.chats.contains_key(&conv(2)));
    assert_eq!(desk.state.handoffs_seen.get(&conv(2)), Some(&3));
    // The refused handoff delivered again is ignored, even once the queue has room.
    desk.run(set_capacity("ann", 1), T0 + 3 * SECOND);
    assert!(
        desk.run(DeskCommand::Handoff(second.clone()), T0 + 4 * SECOND)
            .events
            .is_empty()
    );
    desk.assert_recovers();
    // ...also after a restart.
    let mut restarted = Desk {
        state: desk.replayed(),
        settings: desk.settings.clone(),
        journal: desk.journal.clone(),
    };
    assert!(
        restarted
            .run(DeskCommand::Handoff(second), T0 + 5 * SECOND)
            .events
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// Presence
// ---------------------------------------------------------------------------------------------

#[test]
fn a_dropped_connection_turns_the_agent_away_after_the_grace_period() {
    let mut desk = Desk::new();
    // Offers last longer than the grace period, so that the grace period ends first.
    desk.run(
        DeskCommand::ConfigureGroup {
            group: "general".to_owned(),
            config: GroupConfig {
                offer_timeout_s: 120,
                ..GroupConfig::default_for("general")
            },
        },
        T0,
    );
    desk.run(set_agent("ann", Presence::Online, &["general"], 1), T0);
    desk.run(
        set_agent("bob", Presence::Online, &["general"], 1),
        T0 + SECOND,
    );
    desk.run(DeskCommand::AgentConnected(agent("ann")), T0 + SECOND);
    desk.run(DeskCommand::Handoff(handoff(1, "general")), T0 + 2 * SECOND);
    assert_eq!(desk.load("ann"), (0, 1));

    let dropped = T0 + 5 * SECOND;
    let outcome = desk.run(DeskCommand::AgentDisconnected(agent("ann")), dropped);
    let away_at = dropped + desk.settings.presence_grace_ms;
    let [DeskEvent::AgentConnectionChanged(change)] = outcome.events.as_slice() else {
        panic!("a connection change, got {:?}", outcome.events);
    };
    assert!(!change.connected);
    assert_eq!(change.away_at_ms, Some(away_at));
    assert_eq!(
        desk.state.agents[&agent("ann")].status,
        Presence::Online,
        "still online"
    );
    assert_eq!(next_deadline(&desk.state), Some(away_at));

    assert!(desk.tick(away_at - 1).events.is_empty());
    let outcome = desk.tick(away_at);
    assert_eq!(
        event_types(&outcome),
        [
            "desk.presence_changed",
            "desk.offer_withdrawn",
            "desk.chat_offered"
        ]
    );
    let DeskEvent::PresenceChanged(presence) = &outcome.events[0] else {
        panic!("presence");
    };
    assert_eq!(presence.status, Presence::Away);
    assert_eq!(presence.reason, "connection_lost");
    assert_eq!(withdrawn(&outcome)[0].reason, "agent_unavailable");
    assert_eq!(
        offers(&outcome),
        [(conv(1), agent("bob"))],
        "the chat moves on"
    );
    let seat = &desk.state.agents[&agent("ann")];
    assert_eq!(seat.status, Presence::Away);
    assert!(seat.auto_away);
    assert_eq!(seat.away_at_ms, None);
    assert_eq!(desk.load("ann"), (0, 0));
    assert!(
        desk.tick(away_at + 10 * SECOND)
            .events
            .iter()
            .all(|event| !matches!(event, DeskEvent::PresenceChanged(_))),
        "fires once"
    );
    // Away agents get no offers.
    desk.run(
        DeskCommand::Handoff(handoff(2, "general")),
        away_at + 20 * SECOND,
    );
    assert_eq!(desk.stage(2), Some(ChatStage::Waiting));

    // Connecting again brings her back online, and the waiting chat comes with it.
    let outcome = desk.run(
        DeskCommand::AgentConnected(agent("ann")),
        away_at + 30 * SECOND,
    );
    assert_eq!(
        event_types(&outcome),
        [
            "desk.agent_connection_changed",
            "desk.presence_changed",
            "desk.chat_offered"
        ]
    );
    let DeskEvent::PresenceChanged(presence) = &outcome.events[1] else {
        panic!("presence");
    };
    assert_eq!(
        (presence.status, presence.reason.as_str()),
        (Presence::Online, "connected")
    );
    assert!(!desk.state.agents[&agent("ann")].auto_away);
    assert_eq!(offers(&outcome), [(conv(2), agent("ann"))]);
    desk.assert_recovers();
}

#[test]
fn reconnecting_within_the_grace_period_keeps_the_agent_online() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 1), T0);
    desk.run(DeskCommand::AgentConnected(agent("ann")), T0);
    desk.run(DeskCommand::AgentDisconnected(agent("ann")), T0 + SECOND);
    let outcome = desk.run(DeskCommand::AgentConnected(agent("ann")), T0 + 30 * SECOND);
    let [DeskEvent::AgentConnectionChanged(change)] = outcome.events.as_slice() else {
        panic!("only a connection change, got {:?}", outcome.events);
    };
    assert!(change.connected);
    assert_eq!(change.away_at_ms, None);
    assert_eq!(
        next_deadline(&desk.state),
        None,
        "the grace timer is cancelled"
    );
    assert!(desk.tick(T0 + 3_600 * SECOND).events.is_empty());
    assert_eq!(desk.state.agents[&agent("ann")].status, Presence::Online);
    // A second connection while connected is no event.
    assert!(
        desk.run(
            DeskCommand::AgentConnected(agent("ann")),
            T0 + 3_601 * SECOND
        )
        .events
        .is_empty()
    );
    desk.assert_recovers();
}

#[test]
fn presence_set_by_hand_is_not_undone_by_connections() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 1), T0);
    desk.run(DeskCommand::AgentConnected(agent("ann")), T0);
    desk.run(DeskCommand::Handoff(handoff(1, "general")), T0 + SECOND);
    // Away by hand: offers are withdrawn at once.
    let outcome = desk.run(
        DeskCommand::SetAgent {
            agent: agent("ann"),
            status: Some(Presence::Away),
            groups: None,
            capacity: None,
            languages: None,
        },
        T0 + 2 * SECOND,
    );
    assert_eq!(
        event_types(&outcome),
        ["desk.presence_changed", "desk.offer_withdrawn"]
    );
    assert_eq!(withdrawn(&outcome)[0].reason, "agent_unavailable");
    // A disconnect of an away agent arms no timer; reconnecting does not make her online.
    let outcome = desk.run(
        DeskCommand::AgentDisconnected(agent("ann")),
        T0 + 3 * SECOND,
    );
    let [DeskEvent::AgentConnectionChanged(change)] = outcome.events.as_slice() else {
        panic!("a connection change");
    };
    assert_eq!(change.away_at_ms, None);
    let outcome = desk.run(DeskCommand::AgentConnected(agent("ann")), T0 + 4 * SECOND);
    assert_eq!(event_types(&outcome), ["desk.agent_connection_changed"]);
    assert_eq!(desk.state.agents[&agent("ann")].status, Presence::Away);
    // Unknown agents: a connection is refused, a disconnect ignored.
    assert_eq!(
        desk.try_run(DeskCommand::AgentConnected(agent("zed")), T0 + 5 * SECOND),
        Err(DeskRejection::UnknownAgent(agent("zed").key().to_owned()))
    );
    assert!(
        desk.run(
            DeskCommand::AgentDisconnected(agent("zed")),
            T0 + 5 * SECOND
        )
        .events
        .is_empty()
    );
    desk.assert_recovers();
}

// ---------------------------------------------------------------------------------------------
// Tickets
// ---------------------------------------------------------------------------------------------

#[test]
fn a_ticket_is_created_with_sla_deadlines() {
    let mut desk = Desk::new();
    let outcome = desk.run(
        DeskCommand::CreateTicket(new_ticket(1, None, Some(600))),
        T0,
    );
    let [DeskEvent::TicketCreated(created)] = outcome.events.as_slice() else {
        panic!("ticket created");
    };
    assert_eq!(
        created.first_response_due_ms,
        T0 + 3_600 * SECOND,
        "default SLA"
    );
    assert_eq!(created.resolution_due_ms, T0 + 600 * SECOND);
    let ticket = desk.ticket_of(1);
    assert_eq!(ticket.status, TicketStatus::Open);
    assert_eq!(ticket.conversations, [conv(1)]);
    assert_eq!(ticket.created_at_ms, T0);
    assert_eq!(next_deadline(&desk.state), Some(T0 + 600 * SECOND));
    // Ids are unique; kinds are required.
    assert!(matches!(
        desk.try_run(DeskCommand::CreateTicket(new_ticket(1, None, None)), T0),
        Err(DeskRejection::Invalid(_))
    ));
    let mut nameless = new_ticket(2, None, None);
    nameless.kind = " ".to_owned();
    assert!(matches!(
        desk.try_run(DeskCommand::CreateTicket(nameless), T0),
        Err(DeskRejection::Invalid(_))
    ));
    assert_eq!(
        desk.try_run(update(3, status_to(TicketStatus::Solved)), T0),
        Err(DeskRejection::UnknownTicket(ticket_id(3).key()))
    );
    desk.assert_recovers();
}

#[test]
fn ticket_lifecycle_transitions() {
    use TicketStatus::{Closed, Open, Pending, Solved};
    // (path of statuses to reach first, status asked, accepted)
    let cases: Vec<(Vec<TicketStatus>, TicketStatus, bool)> = vec![
        (vec![], Pending, true),
        (vec![], Solved, true),
        (vec![], Closed, true),
        (vec![Pending], Open, true),
        (vec![Pending], Solved, true),
        (vec![Pending], Closed, true),
        (vec![Solved], Open, true),
        (vec![Solved], Closed, true),
        (vec![Solved], Pending, false),
        (vec![Closed], Open, false),
        (vec![Closed], Pending, false),
        (vec![Closed], Solved, false),
        (vec![Solved, Closed], Open, false),
    ];
    for (path, to, allowed) in cases {
        let mut desk = Desk::new();
        desk.run(DeskCommand::CreateTicket(new_ticket(1, None, None)), T0);
        for (step, status) in path.iter().enumerate() {
            desk.run(
                update(1, status_to(*status)),
                T0 + step as u64 * SECOND + SECOND,
            );
        }
        let from = desk.ticket_of(1).status;
        let result = desk.try_run(update(1, status_to(to)), T0 + 10 * SECOND);
        if allowed {
            let outcome = result.unwrap_or_else(|error| panic!("{from:?} → {to:?}: {error}"));
            assert_eq!(event_types(&outcome), ["desk.ticket_status_changed"]);
            assert_eq!(desk.ticket_of(1).status, to);
        } else {
            assert_eq!(
                result,
                Err(DeskRejection::BadTransition {
                    from: from.as_str(),
                    to: to.as_str(),
                }),
                "{from:?} → {to:?}"
            );
        }
        desk.assert_recovers();
    }
}

#[test]
fn a_closed_ticket_is_final() {
    let mut desk = Desk::new();
    desk.run(DeskCommand::CreateTicket(new_ticket(1, None, None)), T0);
    desk.run(update(1, status_to(TicketStatus::Solved)), T0 + SECOND);
    assert_eq!(desk.ticket_of(1).solved_at_ms, Some(T0 + SECOND));
    desk.run(update(1, status_to(TicketStatus::Closed)), T0 + 2 * SECOND);
    assert_eq!(
        desk.ticket_of(1).solved_at_ms,
        Some(T0 + SECOND),
        "solved once"
    );
    for change in [
        comment("agent:ann", true),
        TicketChange {
            assignee: Some(Some(agent("ann"))),
            ..TicketChange::default()
        },
        TicketChange {
            link: Some(conv(2)),
            ..TicketChange::default()
        },
    ] {
        assert!(matches!(
            desk.try_run(update(1, change), T0 + 3 * SECOND),
            Err(DeskRejection::Invalid(_))
        ));
    }
    // Asking for the status it has is no change.
    assert!(
        desk.run(update(1, status_to(TicketStatus::Closed)), T0 + 4 * SECOND)
            .events
            .is_empty()
    );
    desk.assert_recovers();
}

#[test]
fn only_a_public_answer_from_the_merchant_is_the_first_response() {
    let mut desk = Desk::new();
    desk.run(
        DeskCommand::CreateTicket(new_ticket(1, Some(60), Some(600))),
        T0,
    );
    desk.run(update(1, comment("customer", true)), T0 + SECOND);
    desk.run(update(1, comment("agent:ann", false)), T0 + 2 * SECOND);
    assert_eq!(desk.ticket_of(1).first_response_at_ms, None);
    let outcome = desk.run(update(1, comment("agent:ann", true)), T0 + 3 * SECOND);
    assert_eq!(event_types(&outcome), ["desk.ticket_commented"]);
    assert_eq!(
        desk.ticket_of(1).first_response_at_ms,
        Some(T0 + 3 * SECOND)
    );
    desk.run(update(1, comment("agent:bob", true)), T0 + 4 * SECOND);
    assert_eq!(
        desk.ticket_of(1).first_response_at_ms,
        Some(T0 + 3 * SECOND)
    );
    assert_eq!(desk.ticket_of(1).comments.len(), 4);
    // Answered in time: only the resolution deadline is left.
    assert_eq!(next_deadline(&desk.state), Some(T0 + 600 * SECOND));
    assert!(desk.tick(T0 + 60 * SECOND).events.is_empty());
    // Assign and link in one update, in a fixed order.
    let outcome = desk.run(
        update(
            1,
            TicketChange {
                status: Some(TicketStatus::Pending),
                assignee: Some(Some(agent("ann"))),
                comment: Some((
                    "agent:ann".to_owned(),
                    "waiting for the courier".to_owned(),
                    false,
                )),
                link: Some(conv(2)),
            },
        ),
        T0 + 70 * SECOND,
    );
    assert_eq!(
        event_types(&outcome),
        [
            "desk.ticket_linked",
            "desk.ticket_assigned",
            "desk.ticket_commented",
            "desk.ticket_status_changed"
        ]
    );
    let ticket = desk.ticket_of(1);
    assert_eq!(ticket.assignee, Some(agent("ann")));
    assert_eq!(ticket.conversations, [conv(1), conv(2)]);
    desk.assert_recovers();
}

#[test]
fn sla_breaches_are_emitted_once_at_each_deadline() {
    let mut desk = Desk::new();
    desk.run(
        DeskCommand::CreateTicket(new_ticket(1, Some(60), Some(600))),
        T0,
    );
    let first_due = T0 + 60 * SECOND;
    let resolution_due = T0 + 600 * SECOND;
    assert_eq!(next_deadline(&desk.state), Some(first_due));
    assert!(desk.tick(first_due - 1).events.is_empty());
    let outcome = desk.tick(first_due);
    let [DeskEvent::SlaBreached(breach)] = outcome.events.as_slice() else {
        panic!("one breach, got {:?}", outcome.events);
    };
    assert_eq!(
        (breach.sla.as_str(), breach.due_ms),
        ("first_response", first_due)
    );
    assert!(desk.tick(first_due + 1).events.is_empty(), "once");
    assert_eq!(next_deadline(&desk.state), Some(resolution_due));
    // Pending still counts against the resolution SLA.
    desk.run(
        update(1, status_to(TicketStatus::Pending)),
        T0 + 100 * SECOND,
    );
    let outcome = desk.tick(resolution_due + 5 * SECOND);
    let [DeskEvent::SlaBreached(breach)] = outcome.events.as_slice() else {
        panic!("one breach, got {:?}", outcome.events);
    };
    assert_eq!(
        (breach.sla.as_str(), breach.due_ms),
        ("resolution", resolution_due)
    );
    assert!(desk.tick(resolution_due + 3_600 * SECOND).events.is_empty());
    assert_eq!(desk.ticket_of(1).breached, ["first_response", "resolution"]);
    assert_eq!(next_deadline(&desk.state), None);
    desk.assert_recovers();

    // Both deadlines long past at once: both in one tick; a solved ticket breaches nothing.
    let mut desk = Desk::new();
    desk.run(
        DeskCommand::CreateTicket(new_ticket(1, Some(60), Some(600))),
        T0,
    );
    desk.run(
        DeskCommand::CreateTicket(new_ticket(2, Some(60), Some(600))),
        T0,
    );
    desk.run(update(2, status_to(TicketStatus::Solved)), T0 + SECOND);
    let outcome = desk.tick(T0 + 86_400 * SECOND);
    let breaches: Vec<(TicketId, String)> = outcome
        .events
        .iter()
        .map(|event| match event {
            DeskEvent::SlaBreached(breach) => (breach.ticket.clone(), breach.sla.clone()),
            other => panic!("only breaches, got {other:?}"),
        })
        .collect();
    assert_eq!(
        breaches,
        [
            (ticket_id(1), "first_response".to_owned()),
            (ticket_id(1), "resolution".to_owned())
        ]
    );
    desk.assert_recovers();
}

#[test]
fn the_bot_opens_one_after_sales_ticket_per_conversation() {
    let after_sales = |n: u128, intent: &str| DeskCommand::BotAfterSales {
        conversation: conv(n),
        customer: customer(n),
        kind: if intent == "return_request" {
            "return"
        } else {
            "refund"
        }
        .to_owned(),
        text: "退款".repeat(100),
    };
    let mut desk = Desk::new();
    let outcome = desk.run(after_sales(1, "refund_request"), T0);
    let [DeskEvent::TicketCreated(refund)] = outcome.events.as_slice() else {
        panic!("a ticket");
    };
    assert_eq!(refund.kind, "refund");
    assert_eq!(refund.created_by, "bot");
    assert_eq!(
        refund.subject.chars().count(),
        121,
        "120 characters and an ellipsis"
    );
    let refund_id = refund.ticket.clone();
    // The customer insists, within the same conversation: no second ticket.
    assert!(
        desk.run(after_sales(1, "refund_request"), T0 + SECOND)
            .events
            .is_empty()
    );
    // A return is another kind; another conversation gets its own ticket.
    assert_eq!(
        event_types(&desk.run(after_sales(1, "return_request"), T0 + 2 * SECOND)),
        ["desk.ticket_created"]
    );
    assert_eq!(
        event_types(&desk.run(after_sales(2, "refund_request"), T0 + 2 * SECOND)),
        ["desk.ticket_created"]
    );
    assert_eq!(desk.state.tickets.len(), 3);
    // Once the refund ticket is solved, a new request opens a new ticket.
    desk.run(
        DeskCommand::UpdateTicket {
            ticket: refund_id.clone(),
            change: status_to(TicketStatus::Solved),
        },
        T0 + 3 * SECOND,
    );
    let outcome = desk.run(after_sales(1, "refund_request"), T0 + 4 * SECOND);
    let [DeskEvent::TicketCreated(again)] = outcome.events.as_slice() else {
        panic!("a new ticket");
    };
    assert_ne!(again.ticket, refund_id);
    desk.assert_recovers();
}

// ---------------------------------------------------------------------------------------------
// Redelivery and recovery
// ---------------------------------------------------------------------------------------------

#[test]
fn a_redelivered_handoff_is_ignored() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 1), T0);
    let first = desk.run(DeskCommand::Handoff(handoff(1, "general")), T0);
    assert_eq!(
        event_types(&first),
        ["desk.chat_queued", "desk.chat_offered"]
    );
    // (case, handoff seq, reason)
    let cases = [
        ("the same event again", 3, HandoffReason::CustomerRequest),
        ("an older event", 2, HandoffReason::Supervisor),
        (
            "a newer request while routing has the chat",
            5,
            HandoffReason::Supervisor,
        ),
        (
            "an older transfer",
            3,
            HandoffReason::Transferred("bob".to_owned()),
        ),
    ];
    for (case, seq, reason) in cases {
        let mut info = handoff(1, "general");
        info.handoff_seq = seq;
        info.reason = reason;
        let outcome = desk.run(DeskCommand::Handoff(info), T0 + SECOND);
        assert!(outcome.events.is_empty(), "{case}: {:?}", outcome.events);
    }
    assert_eq!(desk.load("ann"), (0, 1));
    desk.assert_recovers();
}

#[test]
fn replaying_the_journal_rebuilds_the_live_state_and_its_timers() {
    let mut desk = Desk::new();
    let mut at = T0;
    let mut step = |desk: &mut Desk, command: DeskCommand| {
        at += 7 * SECOND;
        let _ = desk.try_run(command, at);
        assert_eq!(
            desk.replayed(),
            desk.state,
            "after {:?}",
            desk.journal.last()
        );
        assert_eq!(next_deadline(&desk.replayed()), next_deadline(&desk.state));
    };
    step(
        &mut desk,
        set_agent("ann", Presence::Online, &["general", "after_sales"], 2),
    );
    step(
        &mut desk,
        set_agent("bob", Presence::Online, &["pre_sales"], 1),
    );
    step(&mut desk, DeskCommand::AgentConnected(agent("ann")));
    step(&mut desk, DeskCommand::AgentConnected(agent("bob")));
    step(
        &mut desk,
        DeskCommand::SetTier {
            customer: customer(3),
            tier: Tier::Vip,
        },
    );
    let mut routes = BTreeMap::new();
    routes.insert("refund_request".to_owned(), "after_sales".to_owned());
    step(
        &mut desk,
        DeskCommand::SetRoutes {
            routes,
            default_group: "general".to_owned(),
        },
    );
    for n in 1..=5 {
        let group = ["general", "pre_sales", "after_sales"][n as usize % 3];
        step(&mut desk, DeskCommand::Handoff(handoff(n, group)));
    }
    step(&mut desk, accept("ann", 2));
    step(&mut desk, DeskCommand::AgentDisconnected(agent("bob")));
    step(
        &mut desk,
        DeskCommand::CreateTicket(new_ticket(1, Some(30), Some(90))),
    );
    step(&mut desk, transfer(2, "ann"));
    step(&mut desk, finished(2));
    for _ in 0..40 {
        step(&mut desk, DeskCommand::Tick);
    }
    step(&mut desk, DeskCommand::AgentConnected(agent("bob")));
    step(
        &mut desk,
        set_agent("bob", Presence::Online, &["pre_sales", "general"], 3),
    );
    step(
        &mut desk,
        DeskCommand::BotAfterSales {
            conversation: conv(4),
            customer: customer(4),
            kind: "refund".to_owned(),
            text: "refund please".to_owned(),
        },
    );
    for _ in 0..40 {
        step(&mut desk, DeskCommand::Tick);
    }
    assert!(desk.journal.len() > 30, "the scenario did something");
    let types: std::collections::BTreeSet<&str> = desk
        .journal
        .iter()
        .map(|(event, _)| crest_proto::events::DomainEvent::event_type(event))
        .collect();
    for expected in [
        "desk.chat_offered",
        "desk.offer_withdrawn",
        "desk.chat_overflowed",
        "desk.presence_changed",
        "desk.sla_breached",
        "desk.chat_ended",
    ] {
        assert!(types.contains(expected), "{expected} in {types:?}");
    }
    desk.assert_recovers();
}

// ---------------------------------------------------------------------------------------------
// Property: invariants over random command sequences
// ---------------------------------------------------------------------------------------------

const AGENTS: [&str; 3] = ["ann", "bob", "cid"];
const GROUPS: [&str; 2] = ["g1", "g2"];
const CONVERSATIONS: u128 = 6;

/// One random step: a command shape and how much time passes before it.
#[derive(Debug, Clone)]
enum Op {
    SetAgent {
        agent: usize,
        status: Option<usize>,
        groups: Option<usize>,
        capacity: Option<u16>,
    },
    Connect(usize),
    Disconnect(usize),
    Handoff {
        conversation: u128,
        group: usize,
        angry: bool,
        transfer: bool,
        redeliver: bool,
    },
    /// Accept the `n`-th open offer (modulo their number); a wrong agent if `wrong`.
    Accept {
        n: usize,
        wrong: bool,
    },
    /// Decline the `n`-th open offer.
    Decline {
        n: usize,
    },
    Transfer {
        conversation: u128,
        agent: usize,
        group: usize,
        take_over: bool,
        with_handoff: bool,
    },
    Finish(u128),
    Tick,
    /// The bot's refund (or return) flow on a conversation.
    AfterSales {
        conversation: u128,
        refund: bool,
    },
    /// An agent opens a ticket with short SLAs, linked to a conversation.
    NewTicket {
        conversation: u128,
    },
    /// Changes the `n`-th ticket: a status, a link, a public answer.
    TicketUpdate {
        n: usize,
        status: Option<usize>,
        link: Option<u128>,
        answer: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let agent = 0..AGENTS.len();
    let conversation = 0..CONVERSATIONS;
    prop_oneof![
        3 => (
            agent.clone(),
            proptest::option::of(0..3usize),
            proptest::option::of(0..3usize),
            proptest::option::of(0..=3u16),
        )
            .prop_map(|(agent, status, groups, capacity)| Op::SetAgent {
                agent,
                status,
                groups,
                capacity,
            }),
        1 => agent.clone().prop_map(Op::Connect),
        1 => agent.clone().prop_map(Op::Disconnect),
        4 => (conversation.clone(), 0..GROUPS.len(), any::<bool>(), prop::bool::weighted(0.2), prop::bool::weighted(0.1))
            .prop_map(|(conversation, group, angry, transfer, redeliver)| Op::Handoff {
                conversation,
                group,
                angry,
                transfer,
                redeliver,
            }),
        4 => (any::<usize>(), prop::bool::weighted(0.1)).prop_map(|(n, wrong)| Op::Accept { n, wrong }),
        2 => any::<usize>().prop_map(|n| Op::Decline { n }),
        2 => (conversation.clone(), agent, 0..GROUPS.len(), any::<bool>(), any::<bool>()).prop_map(
            |(conversation, agent, group, take_over, with_handoff)| Op::Transfer {
                conversation,
                agent,
                group,
                take_over,
                with_handoff,
            }
        ),
        2 => conversation.clone().prop_map(Op::Finish),
        3 => Just(Op::Tick),
        2 => (conversation.clone(), any::<bool>())
            .prop_map(|(conversation, refund)| Op::AfterSales { conversation, refund }),
        1 => conversation.clone().prop_map(|conversation| Op::NewTicket { conversation }),
        3 => (
            any::<usize>(),
            proptest::option::of(0..4usize),
            proptest::option::of(conversation),
            any::<bool>(),
        )
            .prop_map(|(n, status, link, answer)| Op::TicketUpdate { n, status, link, answer }),
    ]
}

fn step() -> impl Strategy<Value = (Op, u64)> {
    (op(), prop_oneof![Just(0u64), 1..5_000u64, 5_000..70_000u64])
}

/// Turns a random step into a command, using the live state to pick existing offers.
fn command_of(op: &Op, state: &DeskState, handoff_seqs: &mut BTreeMap<u128, u64>) -> DeskCommand {
    let open_offers: Vec<(ConversationId, AgentId)> = state
        .chats
        .iter()
        .filter_map(|(conversation, chat)| match &chat.stage {
            ChatStage::Offered { agent, .. } => Some((conversation.clone(), agent.clone())),
            _ => None,
        })
        .collect();
    match op {
        Op::SetAgent {
            agent: index,
            status,
            groups,
            capacity,
        } => DeskCommand::SetAgent {
            agent: agent(AGENTS[*index]),
            status: status.map(|s| [Presence::Online, Presence::Away, Presence::Offline][s]),
            groups: groups.map(|g| match g {
                0 => vec!["g1".to_owned()],
                1 => vec!["g2".to_owned()],
                _ => vec!["g1".to_owned(), "g2".to_owned()],
            }),
            capacity: *capacity,
            languages: None,
        },
        Op::Connect(index) => DeskCommand::AgentConnected(agent(AGENTS[*index])),
        Op::Disconnect(index) => DeskCommand::AgentDisconnected(agent(AGENTS[*index])),
        Op::Handoff {
            conversation,
            group,
            angry,
            transfer,
            redeliver,
        } => {
            let seq = handoff_seqs.entry(*conversation).or_insert(0);
            if !*redeliver || *seq == 0 {
                *seq += 1;
            }
            let mut info = handoff(*conversation, GROUPS[*group]);
            info.handoff_seq = *seq;
            if *angry {
                info.summary.emotion = Some(Emotion {
                    label: "anger".to_owned(),
                    score: 0.9,
                });
            }
            if *transfer {
                info.reason = HandoffReason::Transferred("someone".to_owned());
            }
            DeskCommand::Handoff(info)
        }
        Op::Accept { n, wrong } => match open_offers.get(n % open_offers.len().max(1)) {
            Some((conversation, offered)) => {
                let agent = if *wrong {
                    AGENTS
                        .iter()
                        .map(|name| agent(name))
                        .find(|candidate| candidate != offered)
                        .expect("three agents")
                } else {
                    offered.clone()
                };
                DeskCommand::Accept {
                    agent,
                    conversation: conversation.clone(),
                }
            }
            None => accept(AGENTS[n % AGENTS.len()], (*n as u128) % CONVERSATIONS),
        },
        Op::Decline { n } => match open_offers.get(n % open_offers.len().max(1)) {
            Some((conversation, offered)) => DeskCommand::Decline {
                agent: offered.clone(),
                conversation: conversation.clone(),
            },
            None => DeskCommand::Tick,
        },
        Op::Transfer {
            conversation,
            agent: index,
            group,
            take_over,
            with_handoff,
        } => {
            let handoff = with_handoff.then(|| {
                let seq = handoff_seqs.entry(*conversation).or_insert(0);
                *seq += 1;
                let mut info = handoff(*conversation, GROUPS[*group]);
                info.reason = HandoffReason::Supervisor;
                info.handoff_seq = *seq;
                info
            });
            DeskCommand::TransferToAgent {
                conversation: conv(*conversation),
                agent: agent(AGENTS[*index]),
                take_over: *take_over,
                handoff,
            }
        }
        Op::Finish(conversation) => finished(*conversation),
        Op::Tick => DeskCommand::Tick,
        Op::AfterSales {
            conversation,
            refund,
        } => DeskCommand::BotAfterSales {
            conversation: conv(*conversation),
            customer: customer(*conversation),
            kind: if *refund { "refund" } else { "return" }.to_owned(),
            text: "refund please".to_owned(),
        },
        Op::NewTicket { conversation } => DeskCommand::CreateTicket(NewTicket {
            ticket: ticket_id(1_000 + state.tickets.len() as u128),
            kind: "complaint".to_owned(),
            subject: "late parcel".to_owned(),
            customer: Some(customer(*conversation)),
            conversation: Some(conv(*conversation)),
            assignee: None,
            created_by: "agent".to_owned(),
            first_response_s: Some(30),
            resolution_s: Some(90),
        }),
        Op::TicketUpdate {
            n,
            status,
            link,
            answer,
        } => match state.tickets.keys().nth(n % state.tickets.len().max(1)) {
            Some(ticket) => DeskCommand::UpdateTicket {
                ticket: ticket.clone(),
                change: TicketChange {
                    status: status.map(|index| {
                        [
                            TicketStatus::Open,
                            TicketStatus::Pending,
                            TicketStatus::Solved,
                            TicketStatus::Closed,
                        ][index]
                    }),
                    assignee: None,
                    comment: answer.then(|| ("ann".to_owned(), "on its way".to_owned(), true)),
                    link: link.map(conv),
                },
            },
            None => DeskCommand::Tick,
        },
    }
}

/// Checks the desk's invariants on `state`.
fn check_state(state: &DeskState) -> Result<(), TestCaseError> {
    let mut holders: BTreeMap<&ConversationId, Vec<(&AgentId, &str)>> = BTreeMap::new();
    for (name, seat) in &state.agents {
        for conversation in &seat.chats {
            holders
                .entry(conversation)
                .or_default()
                .push((name, "chat"));
        }
        for conversation in &seat.offers {
            holders
                .entry(conversation)
                .or_default()
                .push((name, "offer"));
        }
    }
    for (conversation, held) in &holders {
        prop_assert!(
            held.len() == 1,
            "{conversation} is held by several agents: {held:?}"
        );
        let (holder, how) = held[0];
        let chat = state.chats.get(*conversation);
        prop_assert!(
            chat.is_some(),
            "{conversation} held by {holder} but not in routing"
        );
        let stage = chat.map(|chat| &chat.stage);
        let agrees = match (how, stage) {
            ("offer", Some(ChatStage::Offered { agent, .. })) => agent == holder,
            ("chat", Some(ChatStage::Assigned { agent, .. })) => agent == holder,
            _ => false,
        };
        prop_assert!(
            agrees,
            "{conversation}: {how} of {holder} but stage {stage:?}"
        );
    }
    for (conversation, chat) in &state.chats {
        let expected = match &chat.stage {
            ChatStage::Waiting => None,
            ChatStage::Offered { agent, .. } => Some((agent, "offer")),
            ChatStage::Assigned { agent, .. } => Some((agent, "chat")),
        };
        let actual = holders.get(conversation).map(|held| held[0]);
        prop_assert_eq!(
            actual,
            expected,
            "stage of {} disagrees with the seats",
            conversation
        );
    }
    Ok(())
}

fn load(state: &DeskState, agent: &AgentId) -> usize {
    state
        .agents
        .get(agent)
        .map_or(0, |seat| seat.chats.len() + seat.offers.len())
}

/// Walks the events of one step on a copy of the state before it, checking each decision.
fn check_step(
    before: &DeskState,
    events: &[DeskEvent],
    now_ms: u64,
    explicit_transfer: bool,
) -> Result<(), TestCaseError> {
    let mut state = before.clone();
    for event in events {
        let old_stage = match event {
            DeskEvent::ChatAssigned(ChatAssigned { conversation, .. })
            | DeskEvent::ChatOffered(ChatOffered { conversation, .. }) => {
                state.chats.get(conversation).map(|chat| chat.stage.clone())
            }
            _ => None,
        };
        let seq = state.seq + 1;
        state.apply_event(event, seq, now_ms);
        match event {
            DeskEvent::ChatOffered(offer) => {
                prop_assert_eq!(
                    old_stage,
                    Some(ChatStage::Waiting),
                    "only waiting chats are offered"
                );
                let seat = &state.agents[&offer.agent];
                prop_assert_eq!(
                    seat.status,
                    Presence::Online,
                    "offer to an agent not online"
                );
                prop_assert!(
                    seat.groups.contains(&offer.group),
                    "offer outside the agent's groups"
                );
                prop_assert!(
                    load(&state, &offer.agent) <= usize::from(seat.capacity),
                    "offer beyond capacity: {:?}",
                    offer
                );
            }
            DeskEvent::ChatAssigned(assigned) => {
                let seat = &state.agents[&assigned.agent];
                match old_stage {
                    Some(ChatStage::Assigned { agent: owner, .. }) => {
                        prop_assert!(
                            explicit_transfer
                                && matches!(assigned.reason.as_str(), "transfer" | "take_over")
                                && assigned.from.as_ref() == Some(&owner),
                            "reassigned from {} without a transfer: {:?}",
                            owner,
                            assigned
                        );
                        prop_assert!(load(&state, &assigned.agent) <= usize::from(seat.capacity));
                    }
                    Some(ChatStage::Offered { agent: offered, .. })
                        if offered == assigned.agent =>
                    {
                        // An offer turned into a chat: no new load.
                        prop_assert!(assigned.reason == "accepted" || explicit_transfer);
                    }
                    other => {
                        prop_assert!(
                            explicit_transfer,
                            "assigned from {:?} without a transfer: {:?}",
                            other,
                            assigned
                        );
                        prop_assert!(
                            load(&state, &assigned.agent) <= usize::from(seat.capacity),
                            "transfer beyond capacity: {:?}",
                            assigned
                        );
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn routing_invariants_hold_for_any_command_sequence(
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let mut desk = Desk::new();
        desk.run(
            DeskCommand::ConfigureGroup {
                group: "g1".to_owned(),
                config: GroupConfig {
                    overflow_to: Some("g2".to_owned()),
                    overflow_after_s: 60,
                    max_waiting: 10,
                    offer_timeout_s: 20,
                },
            },
            T0,
        );
        desk.run(
            DeskCommand::ConfigureGroup {
                group: "g2".to_owned(),
                config: GroupConfig {
                    overflow_to: None,
                    overflow_after_s: 60,
                    max_waiting: 2,
                    offer_timeout_s: 30,
                },
            },
            T0,
        );
        let mut now = T0;
        let mut handoff_seqs = BTreeMap::new();
        for (op, advance) in steps {
            now += advance;
            let command = command_of(&op, &desk.state, &mut handoff_seqs);
            let explicit_transfer = matches!(command, DeskCommand::TransferToAgent { .. });
            let before = desk.state.clone();
            // `try_run` checks that a rejection changes nothing.
            let accepted = desk.try_run(command.clone(), now);
            if let Ok(outcome) = &accepted {
                check_step(&before, &outcome.events, now, explicit_transfer)?;
                // The last assignment of a chat in a decision is where the chat is (what the
                // reactor delivers to the conversation, in order).
                let mut last_assigned = BTreeMap::new();
                for event in &outcome.events {
                    match event {
                        DeskEvent::ChatAssigned(assigned) => {
                            last_assigned.insert(assigned.conversation.clone(), Some(assigned.agent.clone()));
                        }
                        DeskEvent::ChatEnded(ended) => {
                            last_assigned.insert(ended.conversation.clone(), None);
                        }
                        _ => {}
                    }
                }
                for (conversation, agent) in last_assigned {
                    let Some(agent) = agent else { continue };
                    let owner = desk.state.chats.get(&conversation).map(|chat| chat.stage.clone());
                    prop_assert!(
                        matches!(&owner, Some(ChatStage::Assigned { agent: owner, .. }) if owner == &agent),
                        "assigned {} to {} but stage {:?}",
                        conversation,
                        agent,
                        owner
                    );
                }
            }
            check_state(&desk.state)?;
            let replayed = desk.replayed();
            prop_assert_eq!(&replayed, &desk.state, "replay differs after {:?}", command);
            prop_assert_eq!(next_deadline(&replayed), next_deadline(&desk.state));
            prop_assert_eq!(
                &super::state::Tickets::from((*desk.state.tickets).clone()),
                &desk.state.tickets
            );
            // Every accepted command runs the timers due: none is left overdue. (A rejected
            // command changes nothing, timers included; the actor's own tick fires them.)
            if let (Ok(_), Some(deadline)) = (&accepted, next_deadline(&desk.state)) {
                prop_assert!(deadline > now, "a timer at {} is overdue at {}", deadline, now);
            }
        }
    }
}

#[test]
fn an_answer_after_the_deadline_is_recorded_as_a_breach_first() {
    let mut desk = Desk::new();
    desk.run(
        DeskCommand::CreateTicket(new_ticket(1, Some(60), Some(600))),
        T0,
    );
    // No tick ran between the deadline and the late answer.
    let outcome = desk.run(update(1, comment("agent:ann", true)), T0 + 90 * SECOND);
    assert_eq!(
        event_types(&outcome),
        ["desk.sla_breached", "desk.ticket_commented"]
    );
    assert_eq!(desk.ticket_of(1).breached, ["first_response"]);
    assert_eq!(
        desk.ticket_of(1).first_response_at_ms,
        Some(T0 + 90 * SECOND)
    );
    desk.assert_recovers();
}

#[test]
fn a_request_for_a_human_goes_to_the_group_of_the_latest_routed_intent() {
    let mut desk = Desk::new();
    let mut info = handoff(1, "ignored");
    info.group = None;
    info.summary.intent = Some("human_agent".to_owned());
    info.summary.bot_intents = vec!["refund_request".to_owned(), "human_agent".to_owned()];
    desk.run(DeskCommand::Handoff(info), T0);
    assert_eq!(desk.state.chats[&conv(1)].group, "after_sales");
    let mut info = handoff(2, "ignored");
    info.group = None;
    info.summary.intent = Some("human_agent".to_owned());
    info.summary.bot_intents = vec!["human_agent".to_owned()];
    desk.run(DeskCommand::Handoff(info), T0);
    assert_eq!(desk.state.chats[&conv(2)].group, "general");
    desk.assert_recovers();
}
