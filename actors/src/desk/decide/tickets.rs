//! Tickets, as routing sees them: the tickets it opens (the callback tickets of night mode and full
//! queues, and the bot's after-sales requests) unless the conversation has one open, and what it
//! watches of open tickets (their conversations and SLA deadlines), kept from the tickets' news.
//! The tickets themselves are their own entities (see `crate::ticket`).

use crest_proto::routing::{DeskEvent, TicketCreated, TicketTracked, TicketUntracked};
use crest_proto::{ConversationId, CustomerId, TicketId};

use super::{Desk, HandoffInfo, TicketNews};
use crate::desk::state::TrackedTicket;

/// A ticket routing opens.
struct NewTicket {
    ticket: TicketId,
    kind: String,
    subject: String,
    customer: CustomerId,
    conversation: ConversationId,
    created_by: &'static str,
}

impl Desk<'_> {
    /// The bot's refund or return flow ran in a conversation: a ticket of that kind opens unless
    /// one is open.
    pub(super) fn bot_after_sales(
        &mut self,
        conversation: ConversationId,
        customer: CustomerId,
        kind: String,
        text: String,
    ) {
        if !self.has_open_ticket(&conversation, &kind) {
            let ticket = self.derived_ticket_id(&conversation, &kind);
            self.create_ticket(NewTicket {
                ticket,
                kind,
                subject: truncate(&text, 120),
                customer,
                conversation,
                created_by: "bot",
            });
        }
    }

    pub(super) fn callback_ticket(&mut self, handoff: &HandoffInfo, why: &str) -> String {
        if let Some((id, _)) = self.state.tickets.open_for(&handoff.conversation).next() {
            return id.key();
        }
        let ticket = self.derived_ticket_id(&handoff.conversation, "callback");
        let key = ticket.key();
        let subject = format!(
            "Callback ({why}): {}",
            truncate(&handoff.summary.last_customer_text, 100)
        );
        self.create_ticket(NewTicket {
            ticket,
            kind: "callback".to_owned(),
            subject,
            customer: handoff.customer.clone(),
            conversation: handoff.conversation.clone(),
            created_by: "routing",
        });
        key
    }

    fn has_open_ticket(&self, conversation: &ConversationId, kind: &str) -> bool {
        self.state
            .tickets
            .open_for(conversation)
            .any(|(_, ticket)| ticket.kind == kind)
    }

    /// A ticket id derived from the time and the conversation (decisions stay deterministic).
    fn derived_ticket_id(&self, conversation: &ConversationId, kind: &str) -> TicketId {
        let mut hash = crest_proto::hash::Fnv1a::new();
        hash.write(conversation.key().as_bytes());
        hash.write(kind.as_bytes());
        hash.write(&self.state.seq.to_le_bytes());
        let ulid = (u128::from(self.now_ms) << 80) | u128::from(hash.finish());
        TicketId::from_parts(self.tenant.clone(), ulid)
    }

    fn create_ticket(&mut self, ticket: NewTicket) {
        let first_response_s = self.settings.first_response_sla_s;
        let resolution_s = self.settings.resolution_sla_s;
        self.emit(DeskEvent::TicketCreated(TicketCreated {
            ticket: ticket.ticket,
            kind: ticket.kind,
            subject: ticket.subject,
            customer: Some(ticket.customer),
            conversation: Some(ticket.conversation),
            assignee: None,
            created_by: ticket.created_by.to_owned(),
            first_response_due_ms: self.now_ms + first_response_s * 1000,
            resolution_due_ms: self.now_ms + resolution_s * 1000,
        }));
    }

    /// Keeps what routing watches of a ticket in step with the ticket's news: an event only when
    /// it changes (news of a ticket routing opened itself, for one, changes nothing).
    pub(super) fn ticket_news(&mut self, ticket: TicketId, news: TicketNews) {
        let current = self.state.tickets.get(&ticket);
        let next = match news {
            TicketNews::Opened {
                kind,
                conversation,
                deadlines,
            } => Some(TrackedTicket {
                kind,
                conversations: conversation.into_iter().collect(),
                deadlines,
            }),
            TicketNews::StatusChanged { open: false, .. } => None,
            TicketNews::StatusChanged {
                open: true,
                kind,
                conversations,
                pending,
            } => Some(TrackedTicket {
                kind,
                conversations,
                deadlines: pending,
            }),
            TicketNews::Linked(conversation) => {
                let Some(current) = current else { return };
                let mut next = current.clone();
                if !next.conversations.contains(&conversation) {
                    next.conversations.push(conversation);
                }
                Some(next)
            }
            TicketNews::Settled(sla) => {
                let Some(current) = current else { return };
                let mut next = current.clone();
                next.deadlines.retain(|deadline| deadline.sla != sla);
                Some(next)
            }
        };
        match next {
            Some(next) if current != Some(&next) => {
                self.emit(DeskEvent::TicketTracked(TicketTracked {
                    ticket,
                    kind: next.kind,
                    conversations: next.conversations,
                    deadlines: next.deadlines,
                }));
            }
            None if current.is_some() => {
                self.emit(DeskEvent::TicketUntracked(TicketUntracked { ticket }));
            }
            Some(_) | None => {}
        }
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    let mut out: String = text.chars().take(max_chars).collect();
    if text.chars().count() > max_chars {
        out.push('…');
    }
    out
}
