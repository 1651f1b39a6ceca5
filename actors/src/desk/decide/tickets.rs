//! Tickets: creation (by agents and the API, by the bot's after-sales flows, and the callback
//! tickets of night mode and full queues), changes, the lifecycle, and the ticket ids the desk
//! derives.

use crest_proto::routing::{
    DeskEvent, SlaBreached, TicketAssigned, TicketCommented, TicketCreated, TicketLinked,
    TicketStatus, TicketStatusChanged,
};
use crest_proto::{ConversationId, CustomerId, TicketId};

use super::{Desk, HandoffInfo, NewTicket, TicketChange};

/// The ticket lifecycle: open ⇄ pending → solved → closed; solved may reopen; closed is final.
#[must_use]
pub fn transition_allowed(from: TicketStatus, to: TicketStatus) -> bool {
    use TicketStatus::{Closed, Open, Pending, Solved};
    matches!(
        (from, to),
        (Open, Pending | Solved | Closed)
            | (Pending, Open | Solved | Closed)
            | (Solved, Open | Closed)
    )
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
                customer: Some(customer),
                conversation: Some(conversation),
                assignee: None,
                created_by: "bot".to_owned(),
                first_response_s: None,
                resolution_s: None,
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
            customer: Some(handoff.customer.clone()),
            conversation: Some(handoff.conversation.clone()),
            assignee: None,
            created_by: "routing".to_owned(),
            first_response_s: None,
            resolution_s: None,
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

    pub(super) fn create_ticket(&mut self, ticket: NewTicket) {
        let first_response_s = ticket
            .first_response_s
            .unwrap_or(self.settings.first_response_sla_s);
        let resolution_s = ticket
            .resolution_s
            .unwrap_or(self.settings.resolution_sla_s);
        self.emit(DeskEvent::TicketCreated(TicketCreated {
            ticket: ticket.ticket,
            kind: ticket.kind,
            subject: ticket.subject,
            customer: ticket.customer,
            conversation: ticket.conversation,
            assignee: ticket.assignee,
            created_by: ticket.created_by,
            first_response_due_ms: self.now_ms + first_response_s * 1000,
            resolution_due_ms: self.now_ms + resolution_s * 1000,
        }));
    }

    pub(super) fn update_ticket(&mut self, ticket: &TicketId, change: TicketChange) {
        // A deadline that passed before this change is a breach even if this change is the
        // answer that came too late.
        let overdue = self
            .state
            .tickets
            .get(ticket)
            .map(|current| current.overdue(self.now_ms))
            .unwrap_or_default();
        for (sla, due_ms) in overdue {
            self.emit(DeskEvent::SlaBreached(SlaBreached {
                ticket: ticket.clone(),
                sla: sla.to_owned(),
                due_ms,
            }));
        }
        if let Some(conversation) = change.link {
            self.emit(DeskEvent::TicketLinked(TicketLinked {
                ticket: ticket.clone(),
                conversation,
            }));
        }
        if let Some(assignee) = change.assignee {
            self.emit(DeskEvent::TicketAssigned(TicketAssigned {
                ticket: ticket.clone(),
                assignee,
            }));
        }
        if let Some((author, text, public)) = change.comment {
            self.emit(DeskEvent::TicketCommented(TicketCommented {
                ticket: ticket.clone(),
                author,
                text,
                public,
            }));
        }
        let current = self.state.tickets.get(ticket).map(|ticket| ticket.status);
        if let Some(status) = change.status
            && current != Some(status)
        {
            self.emit(DeskEvent::TicketStatusChanged(TicketStatusChanged {
                ticket: ticket.clone(),
                status,
            }));
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
