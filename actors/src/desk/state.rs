//! The routing desk's state, rebuilt from its events: agent seats, chats waiting, offered or
//! assigned, group settings, the routing table, customer tiers and the open tickets' SLA deadlines.

use std::collections::{BTreeMap, BTreeSet};

use crest_proto::routing::{DeskEvent, HandoffSummary, Presence, TicketStatus, Tier};
use crest_proto::ticket::{Deadline, Sla};
use crest_proto::{AgentId, ConversationId, CustomerId, TicketId};
use serde::{Deserialize, Serialize};

use crate::persistence::Aggregate;
use crate::reactor::inbox::Inbox;

/// Version of the snapshot encoding of [`DeskState`].
pub const DESK_STATE_SCHEMA_VERSION: u16 = 4;

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

/// What routing knows of an open ticket: enough to tell whether a conversation has one, and its
/// SLA deadlines still to watch. The ticket itself is its own entity (`ticket:<tenant>:<ulid>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedTicket {
    /// `return`, `refund`, `complaint`, `callback`, …
    pub kind: String,
    /// Linked conversations.
    pub conversations: Vec<ConversationId>,
    /// SLA deadlines still to be met.
    pub deadlines: Vec<Deadline>,
}

/// The open tickets routing watches, with two indexes kept in step with them: the open tickets of
/// each conversation, and every deadline in time order (the durable timer index of ticket SLAs:
/// it lives in the desk's state, so deadlines fire whether or not the tickets' actors are resident,
/// and after a restart). Solved and closed tickets are not here.
///
/// Serialized as the map alone; the indexes are rebuilt on load. Read through `Deref`; change only
/// through [`OpenTickets::track`], [`OpenTickets::untrack`] and [`OpenTickets::settle`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenTickets {
    by_id: BTreeMap<TicketId, TrackedTicket>,
    by_conversation: BTreeMap<ConversationId, BTreeSet<TicketId>>,
    deadlines: BTreeSet<(u64, TicketId, Sla)>,
}

impl OpenTickets {
    /// Watches (or replaces what is known of) an open ticket.
    pub fn track(&mut self, id: TicketId, ticket: TrackedTicket) {
        self.untrack(&id);
        for conversation in &ticket.conversations {
            self.by_conversation
                .entry(conversation.clone())
                .or_default()
                .insert(id.clone());
        }
        for deadline in &ticket.deadlines {
            self.deadlines
                .insert((deadline.due_ms, id.clone(), deadline.sla));
        }
        self.by_id.insert(id, ticket);
    }

    /// Stops watching a ticket (solved or closed).
    pub fn untrack(&mut self, id: &TicketId) {
        let Some(ticket) = self.by_id.remove(id) else {
            return;
        };
        for conversation in &ticket.conversations {
            if let Some(open) = self.by_conversation.get_mut(conversation) {
                open.remove(id);
                if open.is_empty() {
                    self.by_conversation.remove(conversation);
                }
            }
        }
        for deadline in &ticket.deadlines {
            self.deadlines
                .remove(&(deadline.due_ms, id.clone(), deadline.sla));
        }
    }

    /// Stops watching one SLA of a ticket (met, breached, or its deadline reached).
    pub fn settle(&mut self, id: &TicketId, sla: Sla) {
        let Some(ticket) = self.by_id.get(id) else {
            return;
        };
        if !ticket.deadlines.iter().any(|deadline| deadline.sla == sla) {
            return;
        }
        let mut ticket = ticket.clone();
        ticket.deadlines.retain(|deadline| deadline.sla != sla);
        self.track(id.clone(), ticket);
    }

    /// Links a conversation to a watched ticket.
    pub fn link(&mut self, id: &TicketId, conversation: &ConversationId) {
        let Some(ticket) = self.by_id.get(id) else {
            return;
        };
        if ticket.conversations.contains(conversation) {
            return;
        }
        let mut ticket = ticket.clone();
        ticket.conversations.push(conversation.clone());
        self.track(id.clone(), ticket);
    }

    /// The open tickets linked to `conversation`, smallest id first.
    pub fn open_for<'a>(
        &'a self,
        conversation: &ConversationId,
    ) -> impl Iterator<Item = (&'a TicketId, &'a TrackedTicket)> + 'a {
        self.by_conversation
            .get(conversation)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id).map(|ticket| (id, ticket)))
    }

    /// The deadlines at or before `now_ms`, earliest first.
    #[must_use]
    pub fn due(&self, now_ms: u64) -> Vec<(TicketId, Deadline)> {
        self.deadlines
            .iter()
            .take_while(|(due_ms, _, _)| *due_ms <= now_ms)
            .map(|(due_ms, id, sla)| {
                (
                    id.clone(),
                    Deadline {
                        sla: *sla,
                        due_ms: *due_ms,
                    },
                )
            })
            .collect()
    }

    /// The earliest deadline watched.
    #[must_use]
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.first().map(|(due_ms, _, _)| *due_ms)
    }
}

impl std::ops::Deref for OpenTickets {
    type Target = BTreeMap<TicketId, TrackedTicket>;

    fn deref(&self) -> &Self::Target {
        &self.by_id
    }
}

impl Serialize for OpenTickets {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.by_id.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for OpenTickets {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let by_id = BTreeMap::<TicketId, TrackedTicket>::deserialize(deserializer)?;
        let mut tickets = Self::default();
        for (id, ticket) in by_id {
            tickets.track(id, ticket);
        }
        Ok(tickets)
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
    /// The open tickets routing watches (their conversations and SLA deadlines).
    pub tickets: OpenTickets,
    /// Per conversation in routing (or refused), the sequence number of the last handoff handled
    /// (redelivered handoff events at or below it are ignored).
    pub handoffs_seen: BTreeMap<ConversationId, u64>,
    /// Exponentially weighted average handle time (seconds), for wait estimates.
    pub avg_handle_s: f64,
    /// Reactions applied (conversation events routing reacted to), so one delivered again is
    /// ignored; conversations are forgotten a day after their last one.
    pub inbox: Inbox,
    /// The tenant's merges of customers: where a merged customer's messages go.
    pub merges: crate::customer::merges::MergeMap,
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
            tickets: OpenTickets::default(),
            handoffs_seen: BTreeMap::new(),
            avg_handle_s: 180.0,
            inbox: Inbox::forgetting_after(crate::reactor::inbox::DEFAULT_RETENTION_MS),
            merges: crate::customer::merges::MergeMap::default(),
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
                let deadlines = vec![
                    Deadline {
                        sla: Sla::FirstResponse,
                        due_ms: created.first_response_due_ms,
                    },
                    Deadline {
                        sla: Sla::Resolution,
                        due_ms: created.resolution_due_ms,
                    },
                ];
                self.tickets.track(
                    created.ticket.clone(),
                    TrackedTicket {
                        kind: created.kind.clone(),
                        conversations: created.conversation.iter().cloned().collect(),
                        deadlines,
                    },
                );
            }
            DeskEvent::TicketTracked(tracked) => self.tickets.track(
                tracked.ticket.clone(),
                TrackedTicket {
                    kind: tracked.kind.clone(),
                    conversations: tracked.conversations.clone(),
                    deadlines: tracked.deadlines.clone(),
                },
            ),
            DeskEvent::TicketUntracked(untracked) => self.tickets.untrack(&untracked.ticket),
            DeskEvent::TicketDeadlineReached(reached) => {
                self.tickets.settle(&reached.ticket, reached.sla);
            }
            DeskEvent::CustomersMerged(merged) => self.merges.apply_merged(merged, at_ms),
            DeskEvent::CustomerMergeUndone(undone) => self.merges.apply_undone(undone),
            // Journals from before tickets were their own entities: the desk kept them whole.
            DeskEvent::TicketStatusChanged(change) => {
                if matches!(change.status, TicketStatus::Solved | TicketStatus::Closed) {
                    self.tickets.untrack(&change.ticket);
                }
            }
            DeskEvent::TicketCommented(comment) => {
                if comment.public && comment.author != "customer" {
                    self.tickets.settle(&comment.ticket, Sla::FirstResponse);
                }
            }
            DeskEvent::TicketLinked(link) => self.tickets.link(&link.ticket, &link.conversation),
            DeskEvent::SlaBreached(breach) => {
                if let Some(sla) = Sla::parse(&breach.sla) {
                    self.tickets.settle(&breach.ticket, sla);
                }
            }
            DeskEvent::TicketAssigned(_) | DeskEvent::CustomerNotified(_) => {}
        }
    }
}
