//! Events of a tenant's routing desk (stream `desk:<tenant>:routing`): agent seats, skill-group
//! queues, offers and assignments, customer tiers, the routing table and after-sales tickets.
//!
//! One stream per tenant keeps every decision that touches an agent and a queue atomic (an offer
//! reserves the agent's capacity and takes the chat off the queue in one append), so capacity can
//! never be exceeded and a chat can never be assigned twice, whatever arrives concurrently. Every
//! timer (offer timeouts, overflow, presence grace periods, ticket SLAs) is a deadline written into
//! an event, so a restarted node re-arms it from the journal.
//!
//! The same rules as [`crate::events`] hold: a persisted payload struct is never edited; enums used
//! inside payloads may only gain variants at the end (bincode encodes the variant index).

use serde::{Deserialize, Serialize};

pub use crate::events::HandoffSummary;
use crate::ids::{AgentId, ConversationId, CustomerId, TenantId, TicketId};
pub use crate::ticket::TicketStatus;
use crate::ticket::{Deadline, Sla};

/// An agent's presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Takes chats.
    Online,
    /// Keeps current chats, gets no new offers.
    Away,
    /// Signed out.
    Offline,
}

impl Presence {
    /// The lowercase name used in the API.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Away => "away",
            Self::Offline => "offline",
        }
    }
}

/// A customer's service tier.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Everybody.
    #[default]
    Normal,
    /// Served first.
    Vip,
}

/// An agent's skills and capacity were set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentProfileSet {
    /// The agent.
    pub agent: AgentId,
    /// Skill groups the agent takes chats from.
    pub groups: Vec<String>,
    /// Maximum concurrent chats (offers count against it).
    pub capacity: u16,
    /// Languages the agent serves (`zh`, `en`); empty means any.
    pub languages: Vec<String>,
}

/// An agent's presence changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceChanged {
    /// The agent.
    pub agent: AgentId,
    /// The new presence.
    pub status: Presence,
    /// `api`, `connection_lost` (grace period over) or `connected`.
    pub reason: String,
}

/// An agent's live connection (WebSocket) opened or dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentConnectionChanged {
    /// The agent.
    pub agent: AgentId,
    /// True when a connection opened.
    pub connected: bool,
    /// When it dropped: the agent turns away at this time unless a connection opens before.
    pub away_at_ms: Option<u64>,
}

/// A customer's tier was set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerTierSet {
    /// The customer.
    pub customer: CustomerId,
    /// The tier.
    pub tier: Tier,
}

/// The tenant's routing table (intent → skill group) was replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingTableSet {
    /// `(intent, group)` pairs, sorted by intent.
    pub routes: Vec<(String, String)>,
    /// The group of intents not in the table.
    pub default_group: String,
}

/// A skill group's settings were set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupConfigured {
    /// The group.
    pub group: String,
    /// Where chats go after waiting `overflow_after_s`.
    pub overflow_to: Option<String>,
    /// Seconds a chat waits before overflowing.
    pub overflow_after_s: u32,
    /// Longest queue; a handoff beyond it is refused with an honest message and a ticket.
    pub max_waiting: u32,
    /// Seconds an agent has to accept an offer.
    pub offer_timeout_s: u32,
}

/// A chat joined a group's queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatQueued {
    /// The conversation.
    pub conversation: ConversationId,
    /// Its customer.
    pub customer: CustomerId,
    /// The group.
    pub group: String,
    /// Priority before aging (higher first).
    pub priority: i32,
    /// What the priority is made of, e.g. `vip +100`, `anger +40`.
    pub reasons: Vec<String>,
    /// Sequence number of the conversation's handoff event (de-duplicates redelivery).
    pub handoff_seq: u64,
    /// The handoff summary.
    pub summary: HandoffSummary,
    /// When the chat started waiting (kept across overflow; a transfer back to a queue starts a new
    /// wait).
    pub waiting_since_ms: u64,
}

/// An agent considered for an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The agent.
    pub agent: AgentId,
    /// Free capacity at the time.
    pub free: u16,
    /// Idle since (ms since the Unix epoch): the end of their last chat or when they came online.
    pub idle_since_ms: u64,
}

/// A waiting chat was offered to an agent; the agent's capacity is reserved until it is accepted,
/// declined or expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatOffered {
    /// The conversation.
    pub conversation: ConversationId,
    /// The group it waited in.
    pub group: String,
    /// The agent.
    pub agent: AgentId,
    /// The offer goes to the next agent at this time.
    pub expires_at_ms: u64,
    /// Every capable agent with free capacity, best first.
    pub candidates: Vec<Candidate>,
    /// Why this chat and this agent.
    pub reason: String,
}

/// An offer ended without an assignment; the chat waits again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferWithdrawn {
    /// The conversation.
    pub conversation: ConversationId,
    /// The agent.
    pub agent: AgentId,
    /// `declined`, `expired`, `agent_unavailable`.
    pub reason: String,
}

/// An agent owns the chat now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatAssigned {
    /// The conversation.
    pub conversation: ConversationId,
    /// The agent.
    pub agent: AgentId,
    /// `accepted`, `transfer` or `take_over`.
    pub reason: String,
    /// The previous owner on a transfer or take-over.
    pub from: Option<AgentId>,
}

/// A chat moved to its group's backup group after waiting too long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatOverflowed {
    /// The conversation.
    pub conversation: ConversationId,
    /// The group it waited in.
    pub from: String,
    /// The backup group.
    pub to: String,
}

/// A handoff was not queued (the group's queue is full). Version 1: superseded by
/// [`ChatRefusedV2`], still decoded (upcast).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRefused {
    /// The conversation.
    pub conversation: ConversationId,
    /// The group.
    pub group: String,
    /// `queue_full`.
    pub reason: String,
    /// Sequence number of the conversation's handoff event (a redelivered one stays refused).
    pub handoff_seq: u64,
}

/// A handoff was not queued (the group's queue is full): the conversation goes back to the bot and
/// the customer is told `text`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRefusedV2 {
    /// The conversation.
    pub conversation: ConversationId,
    /// The group.
    pub group: String,
    /// `queue_full`.
    pub reason: String,
    /// Sequence number of the conversation's handoff event (a redelivered one stays refused).
    pub handoff_seq: u64,
    /// What the customer is told (empty in events upcast from version 1: a default is used).
    pub text: String,
}

impl From<ChatRefused> for ChatRefusedV2 {
    fn from(old: ChatRefused) -> Self {
        Self {
            conversation: old.conversation,
            group: old.group,
            reason: old.reason,
            handoff_seq: old.handoff_seq,
            text: String::new(),
        }
    }
}

/// The desk tells a customer something (queue position, an agent joined, night mode): delivered
/// to the conversation as a system notice by the reactor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerNotified {
    /// The conversation.
    pub conversation: ConversationId,
    /// The text.
    pub text: String,
}

/// A chat left routing: resolved, closed, or transferred back to a queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatEnded {
    /// The conversation.
    pub conversation: ConversationId,
    /// The agent who had it, if any.
    pub agent: Option<AgentId>,
    /// `resolved`, `closed`, `transferred`.
    pub reason: String,
}

/// A ticket was opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketCreated {
    /// The ticket.
    pub ticket: TicketId,
    /// `return`, `refund`, `complaint`, `callback`, …
    pub kind: String,
    /// One line.
    pub subject: String,
    /// The customer, if known.
    pub customer: Option<CustomerId>,
    /// The conversation it came from, if any.
    pub conversation: Option<ConversationId>,
    /// The assignee.
    pub assignee: Option<AgentId>,
    /// `agent:<id>`, `bot`, `api` or `routing`.
    pub created_by: String,
    /// First-response SLA deadline.
    pub first_response_due_ms: u64,
    /// Resolution SLA deadline.
    pub resolution_due_ms: u64,
}

/// A ticket's status changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketStatusChanged {
    /// The ticket.
    pub ticket: TicketId,
    /// The new status.
    pub status: TicketStatus,
}

/// A ticket's assignee changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketAssigned {
    /// The ticket.
    pub ticket: TicketId,
    /// The new assignee (`None`: unassigned).
    pub assignee: Option<AgentId>,
}

/// Somebody wrote on a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketCommented {
    /// The ticket.
    pub ticket: TicketId,
    /// `agent:<id>` or `customer`.
    pub author: String,
    /// The text.
    pub text: String,
    /// Shown to the customer (counts as the first response).
    pub public: bool,
}

/// A conversation was linked to a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketLinked {
    /// The ticket.
    pub ticket: TicketId,
    /// The conversation.
    pub conversation: ConversationId,
}

/// A ticket missed an SLA deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaBreached {
    /// The ticket.
    pub ticket: TicketId,
    /// `first_response` or `resolution`.
    pub sla: String,
    /// The deadline that passed.
    pub due_ms: u64,
}

/// The desk watches an open ticket: routing needs to know which conversations have an open ticket
/// (a callback or an after-sales request does not open a second one) and when its SLA deadlines
/// fall. Replaces what the desk knew of the ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketTracked {
    /// The ticket.
    pub ticket: TicketId,
    /// Its kind.
    pub kind: String,
    /// Its linked conversations.
    pub conversations: Vec<ConversationId>,
    /// Its SLA deadlines still to be met.
    pub deadlines: Vec<Deadline>,
}

/// The desk no longer watches a ticket (solved or closed): it costs routing nothing any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketUntracked {
    /// The ticket.
    pub ticket: TicketId,
}

/// An open ticket's SLA deadline came; the reactor asks the ticket whether it was met.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketDeadlineReached {
    /// The ticket.
    pub ticket: TicketId,
    /// Which SLA.
    pub sla: Sla,
    /// The deadline.
    pub due_ms: u64,
}

/// Everything that can happen on a tenant's routing desk.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DeskEvent {
    /// See [`AgentProfileSet`].
    AgentProfileSet(AgentProfileSet),
    /// See [`PresenceChanged`].
    PresenceChanged(PresenceChanged),
    /// See [`AgentConnectionChanged`].
    AgentConnectionChanged(AgentConnectionChanged),
    /// See [`CustomerTierSet`].
    CustomerTierSet(CustomerTierSet),
    /// See [`RoutingTableSet`].
    RoutingTableSet(RoutingTableSet),
    /// See [`GroupConfigured`].
    GroupConfigured(GroupConfigured),
    /// See [`ChatQueued`].
    ChatQueued(ChatQueued),
    /// See [`ChatOffered`].
    ChatOffered(ChatOffered),
    /// See [`OfferWithdrawn`].
    OfferWithdrawn(OfferWithdrawn),
    /// See [`ChatAssigned`].
    ChatAssigned(ChatAssigned),
    /// See [`ChatOverflowed`].
    ChatOverflowed(ChatOverflowed),
    /// See [`ChatRefusedV2`].
    ChatRefused(ChatRefusedV2),
    /// See [`ChatEnded`].
    ChatEnded(ChatEnded),
    /// See [`TicketCreated`].
    TicketCreated(TicketCreated),
    /// See [`TicketStatusChanged`].
    TicketStatusChanged(TicketStatusChanged),
    /// See [`TicketAssigned`].
    TicketAssigned(TicketAssigned),
    /// See [`TicketCommented`].
    TicketCommented(TicketCommented),
    /// See [`TicketLinked`].
    TicketLinked(TicketLinked),
    /// See [`SlaBreached`].
    SlaBreached(SlaBreached),
    /// See [`CustomerNotified`].
    CustomerNotified(CustomerNotified),
    /// See [`TicketTracked`].
    TicketTracked(TicketTracked),
    /// See [`TicketUntracked`].
    TicketUntracked(TicketUntracked),
    /// See [`TicketDeadlineReached`].
    TicketDeadlineReached(TicketDeadlineReached),
    /// See [`crate::customers::CustomersMerged`].
    CustomersMerged(crate::customers::CustomersMerged),
    /// See [`crate::customers::CustomerMergeUndone`].
    CustomerMergeUndone(crate::customers::CustomerMergeUndone),
}

/// A tenant's routing desk came into existence (directory stream `dir:system:desks`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeskOpened {
    /// The tenant.
    pub tenant: TenantId,
}

/// Events of the node-wide desk directory.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DirectoryEvent {
    /// See [`DeskOpened`].
    DeskOpened(DeskOpened),
    /// See [`KbOpened`].
    KbOpened(KbOpened),
    /// See [`ChannelsOpened`].
    ChannelsOpened(ChannelsOpened),
}

/// A tenant published its first knowledge-base document (directory stream `dir:system:kb`): a
/// node reads the knowledge bases of the tenants listed there when it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KbOpened {
    /// The tenant.
    pub tenant: TenantId,
}

/// A tenant configured its first channel connection (directory stream `dir:system:channels`): a
/// node loads the channels and outboxes of the tenants listed there when it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelsOpened {
    /// The tenant.
    pub tenant: TenantId,
}

crate::events::domain_event!(DeskEvent {
    AgentProfileSet => "desk.agent_profile_set" @ 1,
    PresenceChanged => "desk.presence_changed" @ 1,
    AgentConnectionChanged => "desk.agent_connection_changed" @ 1,
    CustomerTierSet => "desk.customer_tier_set" @ 1,
    RoutingTableSet => "desk.routing_table_set" @ 1,
    GroupConfigured => "desk.group_configured" @ 1,
    ChatQueued => "desk.chat_queued" @ 1,
    ChatOffered => "desk.chat_offered" @ 1,
    OfferWithdrawn => "desk.offer_withdrawn" @ 1,
    ChatAssigned => "desk.chat_assigned" @ 1,
    ChatOverflowed => "desk.chat_overflowed" @ 1,
    ChatRefused => "desk.chat_refused" @ 2,
    ChatEnded => "desk.chat_ended" @ 1,
    TicketCreated => "desk.ticket_created" @ 1,
    TicketStatusChanged => "desk.ticket_status_changed" @ 1,
    TicketAssigned => "desk.ticket_assigned" @ 1,
    TicketCommented => "desk.ticket_commented" @ 1,
    TicketLinked => "desk.ticket_linked" @ 1,
    SlaBreached => "desk.sla_breached" @ 1,
    CustomerNotified => "desk.customer_notified" @ 1,
    TicketTracked => "desk.ticket_tracked" @ 1,
    TicketUntracked => "desk.ticket_untracked" @ 1,
    TicketDeadlineReached => "desk.ticket_deadline_reached" @ 1,
    CustomersMerged => "desk.customers_merged" @ 1,
    CustomerMergeUndone => "desk.customer_merge_undone" @ 1,
} legacy {
    ChatRefused => "desk.chat_refused" @ 1 as ChatRefused,
});

crate::events::domain_event!(DirectoryEvent {
    DeskOpened => "directory.desk_opened" @ 1,
    KbOpened => "directory.kb_opened" @ 1,
    ChannelsOpened => "directory.channels_opened" @ 1,
});
