//! Timers: offers past their deadline, presence grace periods over, chats due to overflow, open
//! tickets' SLA deadlines reached; and the earliest of them, for the actor to wake up at.

use crest_proto::routing::{
    ChatOverflowed, DeskEvent, OfferWithdrawn, Presence, PresenceChanged, TicketDeadlineReached,
};
use crest_proto::{AgentId, ConversationId};

use super::Desk;
use crate::desk::state::{ChatStage, DeskState};

impl Desk<'_> {
    /// Offers past their deadline, presence grace periods over, chats due to overflow, ticket SLA
    /// deadlines reached (the ticket decides whether that is a breach).
    pub(super) fn expire_timers(&mut self) {
        let now = self.now_ms;
        let expired: Vec<(ConversationId, AgentId)> = self
            .state
            .chats
            .iter()
            .filter_map(|(conversation, chat)| match &chat.stage {
                ChatStage::Offered {
                    agent,
                    expires_at_ms,
                } if *expires_at_ms <= now => Some((conversation.clone(), agent.clone())),
                _ => None,
            })
            .collect();
        for (conversation, agent) in expired {
            self.emit(DeskEvent::OfferWithdrawn(OfferWithdrawn {
                conversation,
                agent,
                reason: "expired".to_owned(),
            }));
        }
        let gone: Vec<AgentId> = self
            .state
            .agents
            .iter()
            .filter(|(_, seat)| seat.away_at_ms.is_some_and(|at| at <= now))
            .map(|(agent, _)| agent.clone())
            .collect();
        for agent in gone {
            self.emit(DeskEvent::PresenceChanged(PresenceChanged {
                agent: agent.clone(),
                status: Presence::Away,
                reason: "connection_lost".to_owned(),
            }));
            self.withdraw_offers_of(&agent, "agent_unavailable");
        }
        let overflowing: Vec<(ConversationId, String, String)> = self
            .state
            .chats
            .iter()
            .filter(|(_, chat)| chat.stage == ChatStage::Waiting)
            .filter_map(|(conversation, chat)| {
                let (due, backup) = self
                    .state
                    .overflow_due(&chat.group, chat.in_group_since_ms)?;
                (due <= now).then(|| (conversation.clone(), chat.group.clone(), backup.to_owned()))
            })
            .collect();
        for (conversation, from, to) in overflowing {
            self.emit(DeskEvent::ChatOverflowed(ChatOverflowed {
                conversation,
                from,
                to,
            }));
        }
        for (ticket, deadline) in self.state.tickets.due(now) {
            self.emit(DeskEvent::TicketDeadlineReached(TicketDeadlineReached {
                ticket,
                sla: deadline.sla,
                due_ms: deadline.due_ms,
            }));
        }
    }
}

/// The earliest time a timer is due (offer deadlines, presence grace periods, overflow, SLAs).
#[must_use]
pub fn next_deadline(state: &DeskState) -> Option<u64> {
    let offers = state.chats.values().filter_map(|chat| match &chat.stage {
        ChatStage::Offered { expires_at_ms, .. } => Some(*expires_at_ms),
        ChatStage::Waiting => state
            .overflow_due(&chat.group, chat.in_group_since_ms)
            .map(|(due, _)| due),
        ChatStage::Assigned { .. } => None,
    });
    let presence = state.agents.values().filter_map(|seat| seat.away_at_ms);
    offers
        .chain(presence)
        .chain(state.tickets.next_deadline())
        .min()
}
