//! The desk's decisions: (state, command, now) → events (each applied as soon as it is decided,
//! so the next decision in the same command sees it; what they mean for conversations is delivered
//! by the reactor once they are journaled). Deterministic:
//! no I/O, no clock but `now`, no randomness (ticket ids the desk creates are derived from `now` and
//! the conversation).
//!
//! # Dispatch
//! After every command, for every group with an agent who has free capacity, waiting chats are
//! taken by effective priority (base priority + one point per second waited, so nobody starves; ties
//! go to the longest wait) and each is offered to the capable agent (online, in the group, speaking
//! the customer's language) with the most free capacity, then the longest idle. Offers reserve
//! capacity; an agent who declined a chat is not offered it again while it waits in that group, and
//! an agent whose offer expired is offered it again only when nobody else can take it.
//!
//! # Layout
//! This file holds the commands, rejections and settings, [`execute`] with its up-front validation,
//! and the `Desk` that decides one command (`emit`, `notify`, and `run`, which hands each command
//! to its concern). The concerns add their own `impl Desk` blocks:
//! - `presence`: agents' seats, presence, connections and the grace period after a drop;
//! - `handoff`: handoffs and queues, take-overs, transfers and their checks, the group a chat
//!   waits in, refusals of full queues, night mode, tiers, the routing table and group settings;
//! - `dispatch`: offers of waiting chats to free agents, answers to offers, assignments, and
//!   [`waiting_order`];
//! - `timers`: expiry of offers, presence grace, overflow and SLA deadlines, and [`next_deadline`];
//! - `tickets`: creating and changing tickets, the lifecycle ([`transition_allowed`]) and the ticket
//!   ids the desk derives.

mod dispatch;
mod handoff;
mod presence;
mod tickets;
mod timers;

use std::collections::BTreeMap;

use crest_proto::events::HandoffReason;
use crest_proto::routing::{CustomerNotified, DeskEvent, HandoffSummary, Presence, Tier};
use crest_proto::ticket::{Deadline, Sla};
use crest_proto::{AgentId, ConversationId, CustomerId, TenantId, TicketId};

pub use dispatch::waiting_order;
use handoff::check_transfer;
pub use handoff::group_display;
pub use timers::next_deadline;

use super::state::{ChatStage, DeskState, GroupConfig};
use crate::persistence::Aggregate;

/// Tunables of routing (per node; the same for every tenant).
#[derive(Debug, Clone, PartialEq)]
pub struct DeskSettings {
    /// How long an agent whose connection dropped stays online.
    pub presence_grace_ms: u64,
    /// Priority points of a VIP customer.
    pub vip_points: i32,
    /// Priority points of an angry or upset customer.
    pub emotion_points: i32,
    /// Priority points of an urgent intent.
    pub urgent_points: i32,
    /// Intents that are urgent.
    pub urgent_intents: Vec<String>,
    /// Priority points per second of waiting.
    pub aging_points_per_s: f64,
    /// Default first-response SLA of tickets, seconds.
    pub first_response_sla_s: u64,
    /// Default resolution SLA of tickets, seconds.
    pub resolution_sla_s: u64,
}

impl Default for DeskSettings {
    fn default() -> Self {
        Self {
            presence_grace_ms: 60_000,
            vip_points: 100,
            emotion_points: 40,
            urgent_points: 30,
            urgent_intents: vec!["payment_issue".to_owned(), "complaint".to_owned()],
            aging_points_per_s: 1.0,
            first_response_sla_s: 3_600,
            resolution_sla_s: 86_400,
        }
    }
}

/// A handoff as routing receives it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HandoffInfo {
    /// The conversation.
    pub conversation: ConversationId,
    /// Its customer.
    pub customer: CustomerId,
    /// Why.
    pub reason: HandoffReason,
    /// The group asked for, if any.
    pub group: Option<String>,
    /// Sequence number of the conversation's handoff event.
    pub handoff_seq: u64,
    /// What the agent is told.
    pub summary: HandoffSummary,
    /// A supervisor taking the chat over: assigned to them directly when they can take it.
    pub take_over_by: Option<AgentId>,
}

/// What routing hears of a ticket (from the ticket's events, through the reactor).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TicketNews {
    /// The ticket opened.
    Opened {
        /// Its kind.
        kind: String,
        /// The conversation it came from.
        conversation: Option<ConversationId>,
        /// Its deadlines.
        deadlines: Vec<Deadline>,
    },
    /// Its status changed.
    StatusChanged {
        /// Open or pending (else solved or closed).
        open: bool,
        /// Its kind.
        kind: String,
        /// Its linked conversations.
        conversations: Vec<ConversationId>,
        /// Its deadlines still to be met.
        pending: Vec<Deadline>,
    },
    /// A conversation was linked to it.
    Linked(ConversationId),
    /// One of its SLAs was met or breached.
    Settled(Sla),
}

/// Commands the desk accepts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum DeskCommand {
    /// Set an agent's presence, groups, capacity or languages (fields left `None` stay).
    SetAgent {
        /// The agent.
        agent: AgentId,
        /// Presence.
        status: Option<Presence>,
        /// Skill groups.
        groups: Option<Vec<String>>,
        /// Maximum concurrent chats.
        capacity: Option<u16>,
        /// Languages.
        languages: Option<Vec<String>>,
    },
    /// The agent's first live connection opened.
    AgentConnected(AgentId),
    /// The agent's last live connection closed.
    AgentDisconnected(AgentId),
    /// The agent accepts an offer.
    Accept {
        /// The agent.
        agent: AgentId,
        /// The conversation.
        conversation: ConversationId,
    },
    /// The agent declines an offer.
    Decline {
        /// The agent.
        agent: AgentId,
        /// The conversation.
        conversation: ConversationId,
    },
    /// A conversation asked for a human (or was transferred to a group).
    Handoff(HandoffInfo),
    /// Give a chat to an agent directly (transfer or supervisor take-over), reserving capacity.
    TransferToAgent {
        /// The conversation.
        conversation: ConversationId,
        /// The new owner.
        agent: AgentId,
        /// A supervisor takes over: the agent need not be in the chat's group.
        take_over: bool,
        /// The chat as a handoff, used when routing does not know it yet (the bot owns it).
        handoff: Option<HandoffInfo>,
    },
    /// A conversation was resolved or closed.
    ChatFinished {
        /// The conversation.
        conversation: ConversationId,
        /// `resolved` or `closed`.
        reason: String,
    },
    /// Set a customer's tier.
    SetTier {
        /// The customer.
        customer: CustomerId,
        /// The tier.
        tier: Tier,
    },
    /// Replace the routing table.
    SetRoutes {
        /// Intent → group.
        routes: BTreeMap<String, String>,
        /// Group of other intents.
        default_group: String,
    },
    /// Configure a group.
    ConfigureGroup {
        /// The group.
        group: String,
        /// Its settings.
        config: GroupConfig,
    },
    /// Change some of a group's settings; the others keep their value.
    ChangeGroup {
        /// The group.
        group: String,
        /// The settings to change.
        change: GroupChange,
    },
    /// The bot's refund or return flow ran in a conversation: open a ticket unless one is open.
    BotAfterSales {
        /// The conversation.
        conversation: ConversationId,
        /// Its customer.
        customer: CustomerId,
        /// The ticket's kind: `refund` or `return`.
        kind: String,
        /// The customer's words.
        text: String,
    },
    /// News of a ticket: routing watches open tickets' conversations and SLA deadlines.
    Ticket {
        /// The ticket.
        ticket: TicketId,
        /// What happened.
        news: TicketNews,
    },
    /// Merge customer `from` into `into` (the evidence was checked against their identities).
    MergeCustomers(Box<crest_proto::customers::CustomersMerged>),
    /// Undo a merge.
    UndoMerge(crest_proto::customers::CustomerMergeUndone),
    /// Timers: offer timeouts, presence grace periods, overflow, SLA deadlines.
    Tick,
}

impl DeskCommand {
    /// A short, stable name of the command (snake case), for spans, logs and metric labels.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::SetAgent { .. } => "set_agent",
            Self::AgentConnected(_) => "agent_connected",
            Self::AgentDisconnected(_) => "agent_disconnected",
            Self::Accept { .. } => "accept",
            Self::Decline { .. } => "decline",
            Self::Handoff(_) => "handoff",
            Self::TransferToAgent { .. } => "transfer_to_agent",
            Self::ChatFinished { .. } => "chat_finished",
            Self::SetTier { .. } => "set_tier",
            Self::SetRoutes { .. } => "set_routes",
            Self::ConfigureGroup { .. } => "configure_group",
            Self::ChangeGroup { .. } => "change_group",
            Self::BotAfterSales { .. } => "bot_after_sales",
            Self::Ticket { .. } => "ticket",
            Self::MergeCustomers(_) => "merge_customers",
            Self::UndoMerge(_) => "undo_merge",
            Self::Tick => "tick",
        }
    }
}

/// A change to some of a group's settings (`None`: keep).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct GroupChange {
    /// The backup group (`Some(None)`: none).
    pub overflow_to: Option<Option<String>>,
    /// Seconds in the queue before overflowing.
    pub overflow_after_s: Option<u32>,
    /// Longest queue.
    pub max_waiting: Option<u32>,
    /// Seconds to accept an offer.
    pub offer_timeout_s: Option<u32>,
}

impl GroupChange {
    /// `current` with this change applied.
    #[must_use]
    pub fn applied_to(&self, current: GroupConfig) -> GroupConfig {
        GroupConfig {
            overflow_to: self.overflow_to.clone().unwrap_or(current.overflow_to),
            overflow_after_s: self.overflow_after_s.unwrap_or(current.overflow_after_s),
            max_waiting: self.max_waiting.unwrap_or(current.max_waiting),
            offer_timeout_s: self.offer_timeout_s.unwrap_or(current.offer_timeout_s),
        }
    }
}

/// Why the desk refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum DeskRejection {
    /// The agent has no seat.
    #[error("unknown agent {0}")]
    UnknownAgent(String),
    /// No such offer for this agent.
    #[error("no open offer of conversation {conversation} for agent {agent}")]
    NoSuchOffer {
        /// The agent.
        agent: String,
        /// The conversation.
        conversation: String,
    },
    /// The agent cannot take the chat (not online, no free capacity, not in the group).
    #[error("agent {agent} cannot take the chat: {reason}")]
    AgentUnavailable {
        /// The agent.
        agent: String,
        /// Why.
        reason: String,
    },
    /// Routing does not know the conversation.
    #[error("conversation {0} is not with routing (not handed off)")]
    NotInRouting(String),
    /// Input that makes no sense (explained).
    #[error("{0}")]
    Invalid(String),
    /// A merge or undo of customers that the tenant's merges forbid (explained).
    #[error(transparent)]
    Merge(#[from] crate::customer::merges::MergeRefusal),
}

/// What a command produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// The sequence number before the command.
    pub expected_seq: u64,
    /// Events, already applied to the state. What they mean for conversations (assignments,
    /// notices, refusals) the reactor delivers once they are journaled.
    pub events: Vec<DeskEvent>,
}

/// Runs `command` against `state` at `now_ms`, applying each event as it is decided. On a
/// rejection the state is unchanged.
pub fn execute(
    state: &mut DeskState,
    tenant: &TenantId,
    settings: &DeskSettings,
    command: DeskCommand,
    now_ms: u64,
) -> Result<Outcome, DeskRejection> {
    validate(state, &command)?;
    let mut desk = Desk {
        tenant,
        settings,
        now_ms,
        outcome: Outcome {
            expected_seq: state.seq,
            ..Outcome::default()
        },
        state,
    };
    desk.run(command)?;
    desk.expire_timers();
    desk.dispatch();
    Ok(desk.outcome)
}

/// Checks what can be checked before any event is applied (so a rejection changes nothing).
fn validate(state: &DeskState, command: &DeskCommand) -> Result<(), DeskRejection> {
    match command {
        DeskCommand::SetAgent {
            capacity, groups, ..
        } => {
            if capacity.is_some_and(|capacity| capacity > 100) {
                return Err(DeskRejection::Invalid(
                    "capacity must be between 0 and 100".to_owned(),
                ));
            }
            if groups.as_ref().is_some_and(|groups| groups.len() > 32) {
                return Err(DeskRejection::Invalid(
                    "an agent can be in at most 32 groups".to_owned(),
                ));
            }
        }
        DeskCommand::Accept {
            agent,
            conversation,
        } => {
            let offered = state.chats.get(conversation).is_some_and(|chat| {
                matches!(&chat.stage, ChatStage::Offered { agent: offered, .. } if offered == agent)
                    || matches!(&chat.stage, ChatStage::Assigned { agent: owner, .. } if owner == agent)
            });
            if !offered {
                return Err(no_offer(agent, conversation));
            }
        }
        DeskCommand::Decline {
            agent,
            conversation,
        } => {
            let offered = state.chats.get(conversation).is_some_and(|chat| {
                matches!(&chat.stage, ChatStage::Offered { agent: offered, .. } if offered == agent)
            });
            if !offered {
                return Err(no_offer(agent, conversation));
            }
        }
        DeskCommand::TransferToAgent {
            conversation,
            agent,
            take_over,
            handoff,
        } => check_transfer(state, conversation, agent, *take_over, handoff.as_ref())?,
        DeskCommand::MergeCustomers(merged) => {
            state
                .merges
                .check_merge(&merged.merge, &merged.from, &merged.into)?;
        }
        DeskCommand::UndoMerge(undone) => {
            state.merges.check_undo(&undone.merge)?;
        }
        DeskCommand::ChangeGroup { group, change }
            if change
                .overflow_to
                .as_ref()
                .is_some_and(|backup| backup.as_deref() == Some(group.as_str())) =>
        {
            return Err(DeskRejection::Invalid(
                "a group cannot overflow to itself".to_owned(),
            ));
        }
        _ => {}
    }
    Ok(())
}

fn no_offer(agent: &AgentId, conversation: &ConversationId) -> DeskRejection {
    DeskRejection::NoSuchOffer {
        agent: agent.key().to_owned(),
        conversation: conversation.key(),
    }
}

struct Desk<'a> {
    state: &'a mut DeskState,
    tenant: &'a TenantId,
    settings: &'a DeskSettings,
    now_ms: u64,
    outcome: Outcome,
}

impl Desk<'_> {
    fn emit(&mut self, event: DeskEvent) {
        let seq = self.state.seq + 1;
        self.state.apply_event(&event, seq, self.now_ms);
        self.outcome.events.push(event);
    }

    fn notify(&mut self, conversation: &ConversationId, text: String) {
        self.emit(DeskEvent::CustomerNotified(CustomerNotified {
            conversation: conversation.clone(),
            text,
        }));
    }

    fn run(&mut self, command: DeskCommand) -> Result<(), DeskRejection> {
        match command {
            DeskCommand::SetAgent {
                agent,
                status,
                groups,
                capacity,
                languages,
            } => self.set_agent(&agent, status, groups, capacity, languages),
            DeskCommand::AgentConnected(agent) => self.agent_connected(agent)?,
            DeskCommand::AgentDisconnected(agent) => self.agent_disconnected(agent),
            DeskCommand::Accept {
                agent,
                conversation,
            } => self.accept(agent, conversation),
            DeskCommand::Decline {
                agent,
                conversation,
            } => self.decline(agent, conversation),
            DeskCommand::Handoff(handoff) => self.handoff(handoff),
            DeskCommand::TransferToAgent {
                conversation,
                agent,
                take_over,
                handoff,
            } => self.transfer_to_agent(conversation, agent, take_over, handoff),
            DeskCommand::ChatFinished {
                conversation,
                reason,
            } => self.chat_finished(conversation, reason),
            DeskCommand::SetTier { customer, tier } => self.set_tier(customer, tier),
            DeskCommand::SetRoutes {
                routes,
                default_group,
            } => self.set_routes(routes, default_group),
            DeskCommand::ConfigureGroup { group, config } => self.configure_group(group, config),
            DeskCommand::ChangeGroup { group, change } => {
                let config = change.applied_to(self.state.group_config(&group));
                self.configure_group(group, config);
            }
            DeskCommand::BotAfterSales {
                conversation,
                customer,
                kind,
                text,
            } => self.bot_after_sales(conversation, customer, kind, text),
            DeskCommand::Ticket { ticket, news } => self.ticket_news(ticket, news),
            DeskCommand::MergeCustomers(merged) => {
                self.emit(DeskEvent::CustomersMerged(*merged));
            }
            DeskCommand::UndoMerge(undone) => self.emit(DeskEvent::CustomerMergeUndone(undone)),
            DeskCommand::Tick => {}
        }
        Ok(())
    }
}
