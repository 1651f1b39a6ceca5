//! Table tests of the routing desk through [`execute`], with time driven explicitly (`now_ms` is a
//! parameter, so "waiting 30 seconds" is a bigger number, never a sleep), and a property test of
//! the desk's invariants over random command sequences.
//!
//! Every scenario keeps a journal of the events it saw (with the time they were decided) and ends
//! by replaying it into a fresh [`DeskState`]: the rebuilt state, and so every timer it arms
//! ([`next_deadline`]), must equal the live one.
//!
//! The scenarios are grouped by concern, one file each under `tests/`; this file holds what they
//! share: the ids and commands they build, [`Desk`] (a desk with its journal) and the helpers that
//! pick events out of an outcome. `live_timers` runs a desk actor on a node instead, on tokio's
//! paused time.

mod live_timers;
mod offers;
mod presence;
mod priority;
mod properties;
mod queues;
mod recovery;
mod tickets;
mod transfers;

use std::collections::BTreeMap;

use crest_proto::events::{Emotion, HandoffReason};
use crest_proto::routing::{
    ChatAssigned, ChatOffered, ChatQueued, DeskEvent, HandoffSummary, OfferWithdrawn, Presence,
    TicketStatus, Tier,
};
use crest_proto::ticket::{Deadline, Sla};
use crest_proto::{AgentId, ConversationId, CustomerId, TenantId, TicketId};

use super::decide::{
    DeskCommand, DeskRejection, DeskSettings, GroupChange, HandoffInfo, Outcome, TicketNews,
    execute, next_deadline, waiting_order,
};
use super::state::{ChatStage, DeskState, GroupConfig, TrackedTicket};
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

fn transfer(n: u128, to: &str) -> DeskCommand {
    DeskCommand::TransferToAgent {
        conversation: conv(n),
        agent: agent(to),
        take_over: false,
        handoff: None,
    }
}

/// An SLA deadline.
fn deadline(sla: Sla, due_ms: u64) -> Deadline {
    Deadline { sla, due_ms }
}

/// News of ticket `n` (as the reactor delivers it from the ticket's stream).
fn news(n: u128, news: TicketNews) -> DeskCommand {
    DeskCommand::Ticket {
        ticket: ticket_id(n),
        news,
    }
}

/// News that ticket `n` (a `complaint`, opened by an agent or the API) opened from conversation
/// `c`, with its two deadlines.
fn opened(n: u128, c: u128, first_response_due_ms: u64, resolution_due_ms: u64) -> DeskCommand {
    news(
        n,
        TicketNews::Opened {
            kind: "complaint".to_owned(),
            conversation: Some(conv(c)),
            deadlines: vec![
                deadline(Sla::FirstResponse, first_response_due_ms),
                deadline(Sla::Resolution, resolution_due_ms),
            ],
        },
    )
}

/// News that ticket `n` was solved or closed.
fn solved(n: u128) -> DeskCommand {
    news(
        n,
        TicketNews::StatusChanged {
            open: false,
            kind: "complaint".to_owned(),
            conversations: Vec::new(),
            pending: Vec::new(),
        },
    )
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
        let restored = snapshot_round_trip(&self.state);
        assert_eq!(
            restored, self.state,
            "a snapshot restores the state, its ticket indexes rebuilt"
        );
        assert_eq!(
            next_deadline(&restored),
            next_deadline(&self.state),
            "timers re-arm from a snapshot"
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

    /// What the desk tracks of ticket `n`.
    fn tracked(&self, n: u128) -> Option<&TrackedTicket> {
        self.state.tickets.get(&ticket_id(n))
    }

    /// The open tickets the desk knows for conversation `c`.
    fn open_for(&self, c: u128) -> Vec<TicketId> {
        self.state
            .tickets
            .open_for(&conv(c))
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// `state` through a snapshot: encoded with the journal's codec and decoded, as a restarting node
/// loads it.
fn snapshot_round_trip(state: &DeskState) -> DeskState {
    let bytes = crest_proto::codec::encode(state).expect("a desk state encodes");
    crest_proto::codec::decode(&bytes).expect("a desk snapshot decodes")
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
