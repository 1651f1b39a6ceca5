//! The business metrics of `docs/METRICS.md`, folded from conversation and desk events. Every
//! figure depends on one stream's events only (their journal timestamps), so the order in which
//! streams are replayed does not matter.

use std::collections::HashMap;

use crest_proto::events::ConversationEvent;
use crest_proto::routing::{DeskEvent, Presence, TicketStatus};
use crest_proto::ticket::TicketEvent;
use crest_proto::{AgentId, ConversationId, Envelope, TicketId};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use super::{Decoded, Projection, TenantLabel};

/// Buckets of durations people wait for, in seconds.
const WAIT_BUCKETS: [f64; 13] = [
    0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// What the projection remembers of a conversation.
#[derive(Debug, Default)]
struct ConversationFacts {
    first_customer_ms: Option<u64>,
    bot_answered: bool,
    handoff_at_ms: Option<u64>,
    owner: Option<AgentId>,
    transferred: bool,
    resolutions: u32,
}

/// What the projection remembers of a chat on a desk.
#[derive(Debug)]
struct ChatFacts {
    group: String,
    waiting_since_ms: u64,
    queued: bool,
    assigned_at_ms: Option<u64>,
}

/// What the projection remembers of a ticket.
#[derive(Debug, Default)]
struct TicketFacts {
    breached: bool,
    solved: bool,
}

/// Business metrics.
#[derive(Debug)]
pub struct BusinessMetrics {
    tenant_label: TenantLabel,
    started: IntCounterVec,
    messages: IntCounterVec,
    bot_replies: IntCounterVec,
    bot_confidence: HistogramVec,
    emotions: IntCounterVec,
    handoffs: IntCounterVec,
    first_response: HistogramVec,
    queue_wait: HistogramVec,
    handle_time: HistogramVec,
    resolved: IntCounterVec,
    csat: IntCounterVec,
    assignments: IntCounterVec,
    offers: IntCounterVec,
    refusals: IntCounterVec,
    queue_depth: IntGaugeVec,
    agents: IntGaugeVec,
    tickets_created: IntCounterVec,
    leads_captured: IntCounterVec,
    tickets_solved: IntCounterVec,
    sla_breaches: IntCounterVec,
    conversations: HashMap<ConversationId, ConversationFacts>,
    chats: HashMap<ConversationId, ChatFacts>,
    presence: HashMap<AgentId, Presence>,
    tickets: HashMap<TicketId, TicketFacts>,
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> Result<HistogramVec, prometheus::Error> {
    let metric = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn gauge(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntGaugeVec, prometheus::Error> {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

#[allow(clippy::cast_precision_loss)]
fn seconds_between(from_ms: u64, to_ms: u64) -> f64 {
    to_ms.saturating_sub(from_ms) as f64 / 1000.0
}

impl BusinessMetrics {
    /// Registers the metrics in `registry`.
    #[allow(clippy::too_many_lines)]
    pub fn new(registry: &Registry, tenant_label: TenantLabel) -> Result<Self, prometheus::Error> {
        let wait = || WAIT_BUCKETS.to_vec();
        Ok(Self {
            tenant_label,
            started: counter(
                registry,
                "crest_conversations_started_total",
                "Conversations started.",
                &["tenant"],
            )?,
            messages: counter(
                registry,
                "crest_conversation_messages_total",
                "Messages recorded in conversations, by role (internal notes excluded).",
                &["tenant", "role"],
            )?,
            bot_replies: counter(
                registry,
                "crest_bot_replies_total",
                "Bot replies by intent; outcome fallback when the intent is out_of_scope or absent.",
                &["tenant", "intent", "outcome"],
            )?,
            bot_confidence: histogram(
                registry,
                "crest_bot_confidence",
                "Intent confidence of bot replies.",
                &["tenant"],
                vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
            )?,
            emotions: counter(
                registry,
                "crest_customer_emotions_total",
                "Emotions the bot detected in customer messages.",
                &["tenant", "emotion"],
            )?,
            handoffs: counter(
                registry,
                "crest_handoffs_total",
                "Handoffs to humans by reason.",
                &["tenant", "reason"],
            )?,
            first_response: histogram(
                registry,
                "crest_first_response_seconds",
                "First response time: bot from the first customer message, agent from each handoff.",
                &["tenant", "responder"],
                wait(),
            )?,
            queue_wait: histogram(
                registry,
                "crest_queue_wait_seconds",
                "From starting to wait in a queue to an accepted offer.",
                &["tenant", "group"],
                wait(),
            )?,
            handle_time: histogram(
                registry,
                "crest_handle_time_seconds",
                "From assignment to the chat's end or its transfer to another agent (AHT = sum / count).",
                &["tenant", "group"],
                wait(),
            )?,
            resolved: counter(
                registry,
                "crest_conversations_resolved_total",
                "Resolutions; first_contact when it is the first resolution and no transfer happened.",
                &["tenant", "by", "first_contact"],
            )?,
            csat: counter(
                registry,
                "crest_csat_ratings_total",
                "CSAT ratings by score.",
                &["tenant", "score"],
            )?,
            assignments: counter(
                registry,
                "crest_chat_assignments_total",
                "Chats assigned to agents, by reason (accepted, transfer, take_over).",
                &["tenant", "group", "reason"],
            )?,
            offers: counter(
                registry,
                "crest_offers_total",
                "Offers made and how offers ended without an assignment.",
                &["tenant", "group", "outcome"],
            )?,
            refusals: counter(
                registry,
                "crest_queue_refusals_total",
                "Handoffs refused by a full queue.",
                &["tenant", "group"],
            )?,
            queue_depth: gauge(
                registry,
                "crest_queue_depth",
                "Chats queued and not yet assigned (waiting or offered).",
                &["tenant", "group"],
            )?,
            agents: gauge(
                registry,
                "crest_agents",
                "Agent seats by presence.",
                &["tenant", "status"],
            )?,
            tickets_created: counter(
                registry,
                "crest_tickets_created_total",
                "Tickets opened, by kind.",
                &["tenant", "kind"],
            )?,
            leads_captured: counter(
                registry,
                "crest_leads_captured_total",
                "Leads the bot captured (a name and a valid phone from a pre-sales conversation).",
                &["tenant"],
            )?,
            tickets_solved: counter(
                registry,
                "crest_tickets_solved_total",
                "Tickets solved the first time, within their SLAs or not.",
                &["tenant", "within_sla"],
            )?,
            sla_breaches: counter(
                registry,
                "crest_sla_breaches_total",
                "Ticket SLA breaches.",
                &["tenant", "sla"],
            )?,
            conversations: HashMap::new(),
            chats: HashMap::new(),
            presence: HashMap::new(),
            tickets: HashMap::new(),
        })
    }

    #[allow(clippy::too_many_lines)]
    fn conversation(&mut self, tenant: &str, envelope: &Envelope, event: &ConversationEvent) {
        let Some(id) = envelope.stream.conversation_id() else {
            return;
        };
        let at = envelope.timestamp_ms;
        let facts = self.conversations.entry(id.clone()).or_default();
        match event {
            ConversationEvent::Started(_) => self.started.with_label_values(&[tenant]).inc(),
            ConversationEvent::CustomerMessageReceived(_) => {
                facts.first_customer_ms.get_or_insert(at);
                self.messages.with_label_values(&[tenant, "customer"]).inc();
            }
            ConversationEvent::BotReplied(reply) => {
                self.messages.with_label_values(&[tenant, "bot"]).inc();
                let intent = reply.intent.as_deref().unwrap_or("none");
                let outcome = if matches!(intent, "none" | "out_of_scope") {
                    "fallback"
                } else {
                    "answered"
                };
                self.bot_replies
                    .with_label_values(&[tenant, intent, outcome])
                    .inc();
                self.bot_confidence
                    .with_label_values(&[tenant])
                    .observe(f64::from(reply.confidence));
                if let Some(emotion) = &reply.emotion {
                    self.emotions
                        .with_label_values(&[tenant, emotion.label.as_str()])
                        .inc();
                }
                if !facts.bot_answered {
                    facts.bot_answered = true;
                    if let Some(first) = facts.first_customer_ms {
                        self.first_response
                            .with_label_values(&[tenant, "bot"])
                            .observe(seconds_between(first, at));
                    }
                }
            }
            ConversationEvent::HandoffRequested(handoff) => {
                if matches!(
                    handoff.reason,
                    crest_proto::events::HandoffReason::Transferred(_)
                ) {
                    facts.transferred = true;
                }
                facts.handoff_at_ms = Some(at);
                self.handoffs
                    .with_label_values(&[tenant, handoff.reason.label()])
                    .inc();
            }
            ConversationEvent::AgentAssigned(assigned) => {
                if facts
                    .owner
                    .as_ref()
                    .is_some_and(|owner| owner != &assigned.agent)
                {
                    facts.transferred = true;
                }
                facts.owner = Some(assigned.agent.clone());
            }
            ConversationEvent::AgentReplied(reply) => {
                if reply.internal {
                    return;
                }
                self.messages.with_label_values(&[tenant, "agent"]).inc();
                if let Some(handoff) = facts.handoff_at_ms.take() {
                    self.first_response
                        .with_label_values(&[tenant, "agent"])
                        .observe(seconds_between(handoff, at));
                }
            }
            ConversationEvent::Resolved(resolved) => {
                facts.resolutions += 1;
                let by = if resolved.by.is_some() {
                    "agent"
                } else {
                    "bot"
                };
                let first_contact = facts.resolutions == 1 && !facts.transferred;
                self.resolved
                    .with_label_values(&[tenant, by, if first_contact { "true" } else { "false" }])
                    .inc();
            }
            ConversationEvent::Closed(_) => {
                self.conversations.remove(&id);
            }
            ConversationEvent::CsatRated(rating) => {
                self.csat
                    .with_label_values(&[tenant, &rating.score.to_string()])
                    .inc();
            }
            ConversationEvent::SystemNotice(_) => {
                self.messages.with_label_values(&[tenant, "system"]).inc();
            }
            // Crest wrote it, like the bot; it answers nobody, so no response time moves.
            ConversationEvent::ProactiveSent(_) => {
                self.messages.with_label_values(&[tenant, "bot"]).inc();
            }
            ConversationEvent::HandoffDeclined(_) => {
                facts.handoff_at_ms = None;
            }
            // The ticket it leads to is counted from the desk's `ticket_created`.
            ConversationEvent::AfterSalesRequested(_) | ConversationEvent::LeadProgressed(_) => {}
            ConversationEvent::LeadCaptured(_) => {
                self.leads_captured.with_label_values(&[tenant]).inc();
            }
        }
    }

    fn set_queued(&mut self, tenant: &str, conversation: &ConversationId, queued: bool) {
        let Some(chat) = self.chats.get_mut(conversation) else {
            return;
        };
        if chat.queued == queued {
            return;
        }
        chat.queued = queued;
        let gauge = self
            .queue_depth
            .with_label_values(&[tenant, chat.group.as_str()]);
        if queued { gauge.inc() } else { gauge.dec() }
    }

    fn end_assignment(&mut self, tenant: &str, conversation: &ConversationId, at: u64) {
        if let Some(chat) = self.chats.get_mut(conversation)
            && let Some(assigned_at) = chat.assigned_at_ms.take()
        {
            self.handle_time
                .with_label_values(&[tenant, chat.group.as_str()])
                .observe(seconds_between(assigned_at, at));
        }
    }

    #[allow(clippy::too_many_lines)]
    fn desk(&mut self, tenant: &str, envelope: &Envelope, event: &DeskEvent) {
        let at = envelope.timestamp_ms;
        match event {
            DeskEvent::PresenceChanged(change) => {
                let old = self.presence.insert(change.agent.clone(), change.status);
                if let Some(old) = old {
                    self.agents.with_label_values(&[tenant, old.as_str()]).dec();
                }
                self.agents
                    .with_label_values(&[tenant, change.status.as_str()])
                    .inc();
            }
            DeskEvent::ChatQueued(queued) => {
                self.end_assignment(tenant, &queued.conversation, at);
                self.set_queued(tenant, &queued.conversation, false);
                self.chats.insert(
                    queued.conversation.clone(),
                    ChatFacts {
                        group: queued.group.clone(),
                        waiting_since_ms: queued.waiting_since_ms,
                        queued: false,
                        assigned_at_ms: None,
                    },
                );
                self.set_queued(tenant, &queued.conversation, true);
            }
            DeskEvent::ChatOverflowed(overflow) => {
                self.set_queued(tenant, &overflow.conversation, false);
                if let Some(chat) = self.chats.get_mut(&overflow.conversation) {
                    chat.group.clone_from(&overflow.to);
                }
                self.set_queued(tenant, &overflow.conversation, true);
            }
            DeskEvent::ChatOffered(offer) => {
                self.offers
                    .with_label_values(&[tenant, offer.group.as_str(), "offered"])
                    .inc();
            }
            DeskEvent::OfferWithdrawn(withdrawn) => {
                let group = self
                    .chats
                    .get(&withdrawn.conversation)
                    .map_or_else(|| "unknown".to_owned(), |chat| chat.group.clone());
                self.offers
                    .with_label_values(&[tenant, group.as_str(), withdrawn.reason.as_str()])
                    .inc();
            }
            DeskEvent::ChatAssigned(assigned) => {
                self.end_assignment(tenant, &assigned.conversation, at);
                self.set_queued(tenant, &assigned.conversation, false);
                let Some(chat) = self.chats.get_mut(&assigned.conversation) else {
                    return;
                };
                if assigned.reason == "accepted" {
                    self.queue_wait
                        .with_label_values(&[tenant, chat.group.as_str()])
                        .observe(seconds_between(chat.waiting_since_ms, at));
                }
                chat.assigned_at_ms = Some(at);
                self.assignments
                    .with_label_values(&[tenant, chat.group.as_str(), assigned.reason.as_str()])
                    .inc();
            }
            DeskEvent::ChatRefused(refused) => {
                self.refusals
                    .with_label_values(&[tenant, refused.group.as_str()])
                    .inc();
                self.set_queued(tenant, &refused.conversation, false);
                self.chats.remove(&refused.conversation);
            }
            DeskEvent::ChatEnded(ended) => {
                self.end_assignment(tenant, &ended.conversation, at);
                self.set_queued(tenant, &ended.conversation, false);
                self.chats.remove(&ended.conversation);
            }
            _ => {}
        }
    }
}

impl BusinessMetrics {
    /// Tickets are counted from their own events (the desk's `ticket_created` is routing's
    /// decision to open one; the ticket's `opened` follows it).
    fn ticket(&mut self, tenant: &str, envelope: &Envelope, event: &TicketEvent) {
        let Some(ticket) = envelope.stream.ticket_id() else {
            return;
        };
        match event {
            TicketEvent::Opened(opened) => {
                self.tickets_created
                    .with_label_values(&[tenant, opened.kind.as_str()])
                    .inc();
                self.tickets.insert(ticket, TicketFacts::default());
            }
            TicketEvent::SlaBreached(breach) => {
                self.sla_breaches
                    .with_label_values(&[tenant, breach.sla.as_str()])
                    .inc();
                self.tickets.entry(ticket).or_default().breached = true;
            }
            TicketEvent::StatusChanged(change)
                if matches!(change.status, TicketStatus::Solved | TicketStatus::Closed) =>
            {
                let facts = self.tickets.entry(ticket).or_default();
                if !facts.solved {
                    facts.solved = true;
                    let within = if facts.breached { "false" } else { "true" };
                    self.tickets_solved
                        .with_label_values(&[tenant, within])
                        .inc();
                }
            }
            _ => {}
        }
    }
}

impl Projection for BusinessMetrics {
    fn name(&self) -> &'static str {
        "business"
    }

    fn apply(&mut self, envelope: &Envelope, event: &Decoded) {
        let tenant = self.tenant_label.value(envelope.stream.tenant()).to_owned();
        match event {
            Decoded::Conversation(event) => self.conversation(&tenant, envelope, event),
            Decoded::Desk(event) => self.desk(&tenant, envelope, event),
            Decoded::Ticket(event) => self.ticket(&tenant, envelope, event),
            Decoded::Other => {}
        }
    }
}
