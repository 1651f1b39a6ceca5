//! The routing desk's state, rebuilt from its events: agent seats, chats waiting, offered or
//! assigned, group settings, the routing table, customer tiers and tickets.

use std::collections::{BTreeMap, BTreeSet};

use crest_proto::routing::{DeskEvent, HandoffSummary, Presence, TicketStatus, Tier};
use crest_proto::{AgentId, ConversationId, CustomerId, TicketId};
use serde::{Deserialize, Serialize};

use crate::persistence::Aggregate;
use crate::reactor::inbox::Inbox;

/// Version of the snapshot encoding of [`DeskState`].
pub const DESK_STATE_SCHEMA_VERSION: u16 = 2;

/// Groups every tenant starts with.
pub const DEFAULT_GROUPS: [&str; 3] = ["pre_sales", "after_sales", "general"];

/// The group of intents the routing table does not name.
pub const DEFAULT_GROUP: &str = "general";

/// The default routing table: after-sales takes returns, refunds, complaints, orders already placed
/// and logistics problems; pre-sales takes product, stock, promotion, delivery-option and
/// payment-method questions; everything else goes to `general`.
pub const DEFAULT_ROUTES: [(&str, &str); 15] = [
    ("cancel_order", "after_sales"),
    ("change_address", "after_sales"),
    ("change_order", "after_sales"),
    ("complaint", "after_sales"),
    ("coupon_promo", "pre_sales"),
    ("delivery_options", "pre_sales"),
    ("exchange", "after_sales"),
    ("logistics_tracking", "after_sales"),
    ("order_status", "after_sales"),
    ("payment_methods", "pre_sales"),
    ("product_info", "pre_sales"),
    ("refund_request", "after_sales"),
    ("refund_status", "after_sales"),
    ("return_request", "after_sales"),
    ("stock_availability", "pre_sales"),
];

/// Seconds before a chat overflows to the backup group, unless configured.
pub const DEFAULT_OVERFLOW_AFTER_S: u32 = 180;

/// A skill group's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupConfig {
    /// The backup group.
    pub overflow_to: Option<String>,
    /// Seconds in this group's queue before overflowing.
    pub overflow_after_s: u32,
    /// Longest queue.
    pub max_waiting: u32,
    /// Seconds to accept an offer.
    pub offer_timeout_s: u32,
}

impl GroupConfig {
    /// The settings of a group nobody configured: `pre_sales` and `after_sales` overflow to
    /// `general` after three minutes; `general` has no backup.
    #[must_use]
    pub fn default_for(group: &str) -> Self {
        let overflow_to = (group != DEFAULT_GROUP).then(|| DEFAULT_GROUP.to_owned());
        Self {
            overflow_to,
            overflow_after_s: DEFAULT_OVERFLOW_AFTER_S,
            max_waiting: 500,
            offer_timeout_s: 30,
        }
    }
}

/// One agent seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSeat {
    /// Presence.
    pub status: Presence,
    /// Skill groups.
    pub groups: Vec<String>,
    /// Maximum concurrent chats, offers included.
    pub capacity: u16,
    /// Languages served; empty means any.
    pub languages: Vec<String>,
    /// Chats the agent owns.
    pub chats: BTreeSet<ConversationId>,
    /// Chats offered to the agent, not yet accepted.
    pub offers: BTreeSet<ConversationId>,
    /// Since when the agent has been without a new chat (ms since the epoch).
    pub idle_since_ms: u64,
    /// Live connections open (WebSocket).
    pub connected: bool,
    /// When the agent turns away because the connection dropped.
    pub away_at_ms: Option<u64>,
    /// True if the agent is away because the connection dropped (a new connection brings the
    /// agent back online).
    pub auto_away: bool,
}

impl AgentSeat {
    /// Capacity not taken by chats or offers.
    #[must_use]
    pub fn free(&self) -> u16 {
        let used = self.chats.len() + self.offers.len();
        self.capacity
            .saturating_sub(u16::try_from(used).unwrap_or(u16::MAX))
    }

    /// True if the agent takes chats of `group` in `language`.
    #[must_use]
    pub fn serves(&self, group: &str, language: Option<&str>) -> bool {
        self.groups.iter().any(|candidate| candidate == group)
            && (self.languages.is_empty()
                || language.is_none_or(|language| {
                    self.languages.iter().any(|candidate| candidate == language)
                }))
    }
}

/// Where a chat is in routing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChatStage {
    /// In its group's queue.
    Waiting,
    /// Offered to an agent until the deadline.
    Offered {
        /// The agent.
        agent: AgentId,
        /// The offer's deadline.
        expires_at_ms: u64,
    },
    /// Owned by an agent.
    Assigned {
        /// The agent.
        agent: AgentId,
        /// Since when.
        since_ms: u64,
    },
}

/// A chat known to routing (from its handoff until it ends).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chat {
    /// The customer.
    pub customer: CustomerId,
    /// The group it waits in (or was assigned from).
    pub group: String,
    /// Priority before aging.
    pub priority: i32,
    /// What the priority is made of.
    pub reasons: Vec<String>,
    /// The handoff summary.
    pub summary: HandoffSummary,
    /// When the chat started waiting (kept across overflow).
    pub waiting_since_ms: u64,
    /// When it entered its current group's queue.
    pub in_group_since_ms: u64,
    /// Where it is.
    pub stage: ChatStage,
    /// Agents whose offer for this chat expired (offered again only when nobody else can take it).
    pub passed: Vec<AgentId>,
    /// Agents who declined this chat (never offered it again while it waits in this group).
    pub declined: Vec<AgentId>,
    /// Sequence number of the conversation's handoff event.
    pub handoff_seq: u64,
}

/// An after-sales ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    /// `return`, `refund`, `complaint`, `callback`, …
    pub kind: String,
    /// One line.
    pub subject: String,
    /// The customer.
    pub customer: Option<CustomerId>,
    /// Linked conversations.
    pub conversations: Vec<ConversationId>,
    /// Assignee.
    pub assignee: Option<AgentId>,
    /// Lifecycle state.
    pub status: TicketStatus,
    /// Who opened it.
    pub created_by: String,
    /// When (ms since the epoch).
    pub created_at_ms: u64,
    /// First-response deadline.
    pub first_response_due_ms: u64,
    /// Resolution deadline.
    pub resolution_due_ms: u64,
    /// When the first public answer was given.
    pub first_response_at_ms: Option<u64>,
    /// When it was solved.
    pub solved_at_ms: Option<u64>,
    /// SLAs breached (`first_response`, `resolution`).
    pub breached: Vec<String>,
    /// Comments: `(author, text, public, at_ms)`.
    pub comments: Vec<(String, String, bool, u64)>,
}

impl Ticket {
    /// True until solved or closed.
    #[must_use]
    pub fn is_open(&self) -> bool {
        matches!(self.status, TicketStatus::Open | TicketStatus::Pending)
    }

    /// SLAs that are overdue at `now_ms` and not yet recorded as breached, with their deadlines.
    #[must_use]
    pub fn overdue(&self, now_ms: u64) -> Vec<(&'static str, u64)> {
        let mut overdue = Vec::new();
        let recorded = |sla: &str| self.breached.iter().any(|breached| breached == sla);
        if self.is_open()
            && self.first_response_at_ms.is_none()
            && now_ms >= self.first_response_due_ms
            && !recorded("first_response")
        {
            overdue.push(("first_response", self.first_response_due_ms));
        }
        if self.is_open() && now_ms >= self.resolution_due_ms && !recorded("resolution") {
            overdue.push(("resolution", self.resolution_due_ms));
        }
        overdue
    }

    /// The next SLA deadline still to watch, if any.
    #[must_use]
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.is_open() {
            return None;
        }
        let recorded = |sla: &str| self.breached.iter().any(|breached| breached == sla);
        let first = (self.first_response_at_ms.is_none() && !recorded("first_response"))
            .then_some(self.first_response_due_ms);
        let resolution = (!recorded("resolution")).then_some(self.resolution_due_ms);
        first.into_iter().chain(resolution).min()
    }
}

/// The desk's tickets by id, with two indexes kept in step with them: the open tickets of each
/// conversation, and the next SLA deadline of each ticket still watched. Deciding whether a
/// conversation already has an open ticket and finding the SLAs due are then lookups instead of
/// scans of every ticket ever opened (which made each desk decision slower as tickets piled up).
///
/// Serialized as the map alone (the snapshot encoding is unchanged); the indexes are rebuilt on
/// load. Read through `Deref`; change only through [`Tickets::update`] and [`Tickets::insert`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tickets {
    by_id: BTreeMap<TicketId, Ticket>,
    open_by_conversation: BTreeMap<ConversationId, BTreeSet<TicketId>>,
    deadlines: BTreeSet<(u64, TicketId)>,
}

impl Tickets {
    /// Adds (or replaces) a ticket.
    pub fn insert(&mut self, id: TicketId, ticket: Ticket) {
        self.unindex(&id);
        self.by_id.insert(id.clone(), ticket);
        self.index(&id);
    }

    /// Changes a ticket, keeping the indexes in step. Does nothing for an unknown id.
    pub fn update(&mut self, id: &TicketId, change: impl FnOnce(&mut Ticket)) {
        if !self.by_id.contains_key(id) {
            return;
        }
        self.unindex(id);
        if let Some(ticket) = self.by_id.get_mut(id) {
            change(ticket);
        }
        self.index(id);
    }

    /// The open tickets linked to `conversation`, smallest id first.
    pub fn open_for<'a>(
        &'a self,
        conversation: &ConversationId,
    ) -> impl Iterator<Item = (&'a TicketId, &'a Ticket)> + 'a {
        self.open_by_conversation
            .get(conversation)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id).map(|ticket| (id, ticket)))
    }

    /// Tickets with an SLA deadline at or before `now_ms`, in id order.
    #[must_use]
    pub fn due(&self, now_ms: u64) -> Vec<&TicketId> {
        let mut due: Vec<&TicketId> = self
            .deadlines
            .iter()
            .take_while(|(deadline, _)| *deadline <= now_ms)
            .map(|(_, id)| id)
            .collect();
        due.sort();
        due
    }

    /// The earliest SLA deadline still watched.
    #[must_use]
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.first().map(|(deadline, _)| *deadline)
    }

    fn unindex(&mut self, id: &TicketId) {
        let Some(ticket) = self.by_id.get(id) else {
            return;
        };
        if let Some(deadline) = ticket.next_deadline() {
            self.deadlines.remove(&(deadline, id.clone()));
        }
        for conversation in &ticket.conversations {
            if let Some(open) = self.open_by_conversation.get_mut(conversation) {
                open.remove(id);
                if open.is_empty() {
                    self.open_by_conversation.remove(conversation);
                }
            }
        }
    }

    fn index(&mut self, id: &TicketId) {
        let Some(ticket) = self.by_id.get(id) else {
            return;
        };
        if let Some(deadline) = ticket.next_deadline() {
            self.deadlines.insert((deadline, id.clone()));
        }
        if ticket.is_open() {
            for conversation in &ticket.conversations {
                self.open_by_conversation
                    .entry(conversation.clone())
                    .or_default()
                    .insert(id.clone());
            }
        }
    }
}

impl std::ops::Deref for Tickets {
    type Target = BTreeMap<TicketId, Ticket>;

    fn deref(&self) -> &Self::Target {
        &self.by_id
    }
}

impl From<BTreeMap<TicketId, Ticket>> for Tickets {
    fn from(by_id: BTreeMap<TicketId, Ticket>) -> Self {
        let ids: Vec<TicketId> = by_id.keys().cloned().collect();
        let mut tickets = Self {
            by_id,
            ..Self::default()
        };
        for id in &ids {
            tickets.index(id);
        }
        tickets
    }
}

impl Serialize for Tickets {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.by_id.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Tickets {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<TicketId, Ticket>::deserialize(deserializer).map(Self::from)
    }
}

/// Everything the desk knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeskState {
    /// Last applied sequence number.
    pub seq: u64,
    /// Agent seats.
    pub agents: BTreeMap<AgentId, AgentSeat>,
    /// Chats in routing.
    pub chats: BTreeMap<ConversationId, Chat>,
    /// Group settings that differ from [`GroupConfig::default_for`].
    pub groups: BTreeMap<String, GroupConfig>,
    /// Intent → group.
    pub routes: BTreeMap<String, String>,
    /// The group of intents not in `routes`.
    pub default_group: String,
    /// VIP customers (everybody else is normal).
    pub vips: BTreeSet<CustomerId>,
    /// Tickets, with indexes of the open ones.
    pub tickets: Tickets,
    /// Per conversation in routing (or refused), the sequence number of the last handoff handled
    /// (redelivered handoff events at or below it are ignored).
    pub handoffs_seen: BTreeMap<ConversationId, u64>,
    /// Exponentially weighted average handle time (seconds), for wait estimates.
    pub avg_handle_s: f64,
    /// Reactions applied (conversation events routing reacted to), so one delivered again is
    /// ignored; conversations are forgotten a day after their last one.
    pub inbox: Inbox,
}

impl Default for DeskState {
    fn default() -> Self {
        Self {
            seq: 0,
            agents: BTreeMap::new(),
            chats: BTreeMap::new(),
            groups: BTreeMap::new(),
            routes: DEFAULT_ROUTES
                .iter()
                .map(|(intent, group)| ((*intent).to_owned(), (*group).to_owned()))
                .collect(),
            default_group: DEFAULT_GROUP.to_owned(),
            vips: BTreeSet::new(),
            tickets: Tickets::default(),
            handoffs_seen: BTreeMap::new(),
            avg_handle_s: 180.0,
            inbox: Inbox::forgetting_after(crate::reactor::inbox::DEFAULT_RETENTION_MS),
        }
    }
}

impl DeskState {
    /// The settings of `group`.
    #[must_use]
    pub fn group_config(&self, group: &str) -> GroupConfig {
        self.groups
            .get(group)
            .cloned()
            .unwrap_or_else(|| GroupConfig::default_for(group))
    }

    /// When a chat waiting in `group` since `since_ms` overflows, and where to (without cloning
    /// the group's settings: this runs for every waiting chat).
    #[must_use]
    pub fn overflow_due(&self, group: &str, since_ms: u64) -> Option<(u64, &str)> {
        let (backup, after_s) = match self.groups.get(group) {
            Some(config) => (config.overflow_to.as_deref(), config.overflow_after_s),
            None => (
                (group != DEFAULT_GROUP).then_some(DEFAULT_GROUP),
                DEFAULT_OVERFLOW_AFTER_S,
            ),
        };
        let backup = backup.filter(|backup| *backup != group)?;
        Some((since_ms + u64::from(after_s) * 1000, backup))
    }

    /// Groups with an online agent who has free capacity: the only groups dispatch can serve.
    #[must_use]
    pub fn groups_with_free_agents(&self) -> BTreeSet<&str> {
        self.agents
            .values()
            .filter(|seat| seat.status == Presence::Online && seat.free() > 0)
            .flat_map(|seat| seat.groups.iter().map(String::as_str))
            .collect()
    }

    /// Every group known: the defaults, configured ones, and those agents or chats name.
    #[must_use]
    pub fn group_names(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = DEFAULT_GROUPS.iter().map(|&g| g.to_owned()).collect();
        names.extend(self.groups.keys().cloned());
        names.extend(self.routes.values().cloned());
        names.extend(self.agents.values().flat_map(|seat| seat.groups.clone()));
        names.extend(self.chats.values().map(|chat| chat.group.clone()));
        names
    }

    /// A customer's tier.
    #[must_use]
    pub fn tier(&self, customer: &CustomerId) -> Tier {
        if self.vips.contains(customer) {
            Tier::Vip
        } else {
            Tier::Normal
        }
    }

    /// The group an intent is routed to.
    #[must_use]
    pub fn group_for_intent(&self, intent: Option<&str>) -> String {
        intent
            .and_then(|intent| self.routes.get(intent))
            .cloned()
            .unwrap_or_else(|| self.default_group.clone())
    }

    fn seat(&mut self, agent: &AgentId) -> &mut AgentSeat {
        self.agents
            .entry(agent.clone())
            .or_insert_with(|| AgentSeat {
                status: Presence::Offline,
                groups: Vec::new(),
                capacity: 0,
                languages: Vec::new(),
                chats: BTreeSet::new(),
                offers: BTreeSet::new(),
                idle_since_ms: 0,
                connected: false,
                away_at_ms: None,
                auto_away: false,
            })
    }

    fn release(&mut self, conversation: &ConversationId, at_ms: u64) {
        let Some(chat) = self.chats.get(conversation) else {
            return;
        };
        match chat.stage.clone() {
            ChatStage::Waiting => {}
            ChatStage::Offered { agent, .. } => {
                self.seat(&agent).offers.remove(conversation);
            }
            ChatStage::Assigned { agent, since_ms } => {
                let seat = self.seat(&agent);
                seat.chats.remove(conversation);
                seat.idle_since_ms = at_ms;
                #[allow(clippy::cast_precision_loss)]
                let handled_s = at_ms.saturating_sub(since_ms) as f64 / 1000.0;
                self.avg_handle_s = 0.9f64.mul_add(self.avg_handle_s, 0.1 * handled_s);
            }
        }
    }
}

impl Aggregate for DeskState {
    type Event = DeskEvent;
    const STATE_SCHEMA_VERSION: u16 = DESK_STATE_SCHEMA_VERSION;
    const KIND: &'static str = "desk";

    fn seq(&self) -> u64 {
        self.seq
    }

    fn inbox_mut(&mut self) -> Option<&mut Inbox> {
        Some(&mut self.inbox)
    }

    /// A desk snapshot holds every agent, chat and ticket: take one after as many events as there
    /// are entries (at least the configured count), so snapshot bytes stay proportional to events.
    fn snapshot_every(&self, configured: u64) -> u64 {
        let entries = self.agents.len() + self.chats.len() + self.tickets.len();
        configured.max(u64::try_from(entries).unwrap_or(u64::MAX))
    }

    #[allow(clippy::too_many_lines)]
    fn apply_event(&mut self, event: &DeskEvent, seq: u64, at_ms: u64) {
        self.seq = seq;
        match event {
            DeskEvent::AgentProfileSet(profile) => {
                let seat = self.seat(&profile.agent);
                seat.groups.clone_from(&profile.groups);
                seat.capacity = profile.capacity;
                seat.languages.clone_from(&profile.languages);
            }
            DeskEvent::PresenceChanged(change) => {
                let seat = self.seat(&change.agent);
                if change.status == Presence::Online && seat.status != Presence::Online {
                    seat.idle_since_ms = at_ms;
                }
                seat.status = change.status;
                seat.away_at_ms = None;
                seat.auto_away = change.reason == "connection_lost";
            }
            DeskEvent::AgentConnectionChanged(change) => {
                let seat = self.seat(&change.agent);
                seat.connected = change.connected;
                seat.away_at_ms = change.away_at_ms;
            }
            DeskEvent::CustomerTierSet(set) => match set.tier {
                Tier::Vip => {
                    self.vips.insert(set.customer.clone());
                }
                Tier::Normal => {
                    self.vips.remove(&set.customer);
                }
            },
            DeskEvent::RoutingTableSet(table) => {
                self.routes = table.routes.iter().cloned().collect();
                self.default_group.clone_from(&table.default_group);
            }
            DeskEvent::GroupConfigured(config) => {
                self.groups.insert(
                    config.group.clone(),
                    GroupConfig {
                        overflow_to: config.overflow_to.clone(),
                        overflow_after_s: config.overflow_after_s,
                        max_waiting: config.max_waiting,
                        offer_timeout_s: config.offer_timeout_s,
                    },
                );
            }
            DeskEvent::ChatQueued(queued) => {
                self.release(&queued.conversation, at_ms);
                self.handoffs_seen
                    .insert(queued.conversation.clone(), queued.handoff_seq);
                self.chats.insert(
                    queued.conversation.clone(),
                    Chat {
                        customer: queued.customer.clone(),
                        group: queued.group.clone(),
                        priority: queued.priority,
                        reasons: queued.reasons.clone(),
                        summary: queued.summary.clone(),
                        waiting_since_ms: queued.waiting_since_ms,
                        in_group_since_ms: at_ms,
                        stage: ChatStage::Waiting,
                        passed: Vec::new(),
                        declined: Vec::new(),
                        handoff_seq: queued.handoff_seq,
                    },
                );
            }
            DeskEvent::ChatOffered(offer) => {
                self.seat(&offer.agent)
                    .offers
                    .insert(offer.conversation.clone());
                if let Some(chat) = self.chats.get_mut(&offer.conversation) {
                    chat.stage = ChatStage::Offered {
                        agent: offer.agent.clone(),
                        expires_at_ms: offer.expires_at_ms,
                    };
                }
            }
            DeskEvent::OfferWithdrawn(withdrawn) => {
                self.seat(&withdrawn.agent)
                    .offers
                    .remove(&withdrawn.conversation);
                if let Some(chat) = self.chats.get_mut(&withdrawn.conversation) {
                    chat.stage = ChatStage::Waiting;
                    if withdrawn.reason == "declined" {
                        chat.declined.push(withdrawn.agent.clone());
                    } else {
                        chat.passed.push(withdrawn.agent.clone());
                    }
                }
            }
            DeskEvent::ChatAssigned(assigned) => {
                self.release(&assigned.conversation, at_ms);
                let seat = self.seat(&assigned.agent);
                seat.chats.insert(assigned.conversation.clone());
                if let Some(chat) = self.chats.get_mut(&assigned.conversation) {
                    chat.stage = ChatStage::Assigned {
                        agent: assigned.agent.clone(),
                        since_ms: at_ms,
                    };
                }
            }
            DeskEvent::ChatOverflowed(overflow) => {
                if let Some(chat) = self.chats.get_mut(&overflow.conversation) {
                    chat.group.clone_from(&overflow.to);
                    chat.in_group_since_ms = at_ms;
                    chat.passed.clear();
                    chat.declined.clear();
                }
            }
            DeskEvent::ChatRefused(refused) => {
                self.release(&refused.conversation, at_ms);
                self.chats.remove(&refused.conversation);
                self.handoffs_seen
                    .insert(refused.conversation.clone(), refused.handoff_seq);
            }
            DeskEvent::ChatEnded(ended) => {
                self.release(&ended.conversation, at_ms);
                self.chats.remove(&ended.conversation);
                // Bounded memory: a handoff of an ended chat delivered again is recognised by the
                // hub (the conversation is no longer queued).
                self.handoffs_seen.remove(&ended.conversation);
            }
            DeskEvent::TicketCreated(created) => {
                self.tickets.insert(
                    created.ticket.clone(),
                    Ticket {
                        kind: created.kind.clone(),
                        subject: created.subject.clone(),
                        customer: created.customer.clone(),
                        conversations: created.conversation.iter().cloned().collect(),
                        assignee: created.assignee.clone(),
                        status: TicketStatus::Open,
                        created_by: created.created_by.clone(),
                        created_at_ms: at_ms,
                        first_response_due_ms: created.first_response_due_ms,
                        resolution_due_ms: created.resolution_due_ms,
                        first_response_at_ms: None,
                        solved_at_ms: None,
                        breached: Vec::new(),
                        comments: Vec::new(),
                    },
                );
            }
            DeskEvent::TicketStatusChanged(change) => {
                self.tickets.update(&change.ticket, |ticket| {
                    ticket.status = change.status;
                    if matches!(change.status, TicketStatus::Solved | TicketStatus::Closed) {
                        ticket.solved_at_ms.get_or_insert(at_ms);
                    } else {
                        ticket.solved_at_ms = None;
                    }
                });
            }
            DeskEvent::TicketAssigned(assigned) => {
                self.tickets.update(&assigned.ticket, |ticket| {
                    ticket.assignee.clone_from(&assigned.assignee);
                });
            }
            DeskEvent::TicketCommented(comment) => {
                self.tickets.update(&comment.ticket, |ticket| {
                    if comment.public && comment.author != "customer" {
                        ticket.first_response_at_ms.get_or_insert(at_ms);
                    }
                    ticket.comments.push((
                        comment.author.clone(),
                        comment.text.clone(),
                        comment.public,
                        at_ms,
                    ));
                });
            }
            DeskEvent::TicketLinked(link) => {
                self.tickets.update(&link.ticket, |ticket| {
                    if !ticket.conversations.contains(&link.conversation) {
                        ticket.conversations.push(link.conversation.clone());
                    }
                });
            }
            DeskEvent::CustomerNotified(_) => {}
            DeskEvent::SlaBreached(breach) => {
                self.tickets.update(&breach.ticket, |ticket| {
                    ticket.breached.push(breach.sla.clone());
                });
            }
        }
    }
}
