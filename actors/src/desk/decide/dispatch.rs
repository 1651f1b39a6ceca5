//! Offers: waiting chats offered to free agents (the rules are in the documentation of the parent
//! module), agents' answers to offers, and assignments.

use crest_proto::routing::{
    Candidate, ChatAssigned, ChatOffered, DeskEvent, OfferWithdrawn, Presence,
};
use crest_proto::{AgentId, ConversationId};

use super::{Desk, DeskSettings};
use crate::desk::state::{ChatStage, DeskState};

impl Desk<'_> {
    /// The agent accepts an offer (accepting a chat they already own changes nothing).
    pub(super) fn accept(&mut self, agent: AgentId, conversation: ConversationId) {
        let already = self.state.chats.get(&conversation).is_some_and(
            |chat| matches!(&chat.stage, ChatStage::Assigned { agent: owner, .. } if owner == &agent),
        );
        if !already {
            self.assign(&conversation, &agent, "accepted", None);
        }
    }

    /// The agent declines an offer: it is withdrawn, and not made to them again while the chat
    /// waits in that group.
    pub(super) fn decline(&mut self, agent: AgentId, conversation: ConversationId) {
        self.emit(DeskEvent::OfferWithdrawn(OfferWithdrawn {
            conversation,
            agent,
            reason: "declined".to_owned(),
        }));
    }

    pub(super) fn assign(
        &mut self,
        conversation: &ConversationId,
        agent: &AgentId,
        reason: &str,
        from: Option<AgentId>,
    ) {
        self.emit(DeskEvent::ChatAssigned(ChatAssigned {
            conversation: conversation.clone(),
            agent: agent.clone(),
            reason: reason.to_owned(),
            from,
        }));
        let english = self.is_english(conversation);
        let text = if english {
            format!("Agent {} has joined the conversation.", agent.key())
        } else {
            format!("客服 {} 已接入会话，请稍候。", agent.key())
        };
        self.notify(conversation, text);
    }

    fn is_english(&self, conversation: &ConversationId) -> bool {
        self.state
            .chats
            .get(conversation)
            .and_then(|chat| chat.summary.language.as_deref())
            == Some("en")
    }

    /// Offers waiting chats to free agents (see the documentation of the parent module).
    pub(super) fn dispatch(&mut self) {
        let groups: Vec<String> = self
            .state
            .groups_with_free_agents()
            .into_iter()
            .map(str::to_owned)
            .collect();
        for group in groups {
            self.dispatch_group(&group);
        }
    }

    fn dispatch_group(&mut self, group: &str) {
        let mut free: Vec<(AgentId, u16, u64)> = self
            .state
            .agents
            .iter()
            .filter(|(_, seat)| {
                seat.status == Presence::Online
                    && seat.free() > 0
                    && seat.groups.iter().any(|candidate| candidate == group)
            })
            .map(|(agent, seat)| (agent.clone(), seat.free(), seat.idle_since_ms))
            .collect();
        if free.is_empty() {
            return;
        }
        let order = waiting_order(self.state, group, self.now_ms, self.settings);
        let timeout_ms = u64::from(self.state.group_config(group).offer_timeout_s) * 1000;
        for (conversation, effective) in order {
            if free.is_empty() {
                return;
            }
            let Some(chat) = self.state.chats.get(&conversation) else {
                continue;
            };
            let language = chat.summary.language.clone();
            let capable = |agent: &AgentId| {
                !chat.declined.contains(agent)
                    && self
                        .state
                        .agents
                        .get(agent)
                        .is_some_and(|seat| seat.serves(group, language.as_deref()))
            };
            let mut candidates: Vec<&(AgentId, u16, u64)> = free
                .iter()
                .filter(|(agent, _, _)| capable(agent) && !chat.passed.contains(agent))
                .collect();
            if candidates.is_empty() {
                candidates = free.iter().filter(|(agent, _, _)| capable(agent)).collect();
            }
            if candidates.is_empty() {
                continue;
            }
            candidates.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)).then(a.0.cmp(&b.0)));
            let chosen = candidates[0].clone();
            let waited_s = self.now_ms.saturating_sub(chat.waiting_since_ms) / 1000;
            let reason = format!(
                "priority {effective:.0} ({}; waited {waited_s} s); {} has the most free capacity ({}) and the longest idle among {} candidate(s)",
                chat.reasons.join(", "),
                chosen.0.key(),
                chosen.1,
                candidates.len()
            );
            let candidates = candidates
                .iter()
                .map(|(agent, free, idle)| Candidate {
                    agent: agent.clone(),
                    free: *free,
                    idle_since_ms: *idle,
                })
                .collect();
            self.emit(DeskEvent::ChatOffered(ChatOffered {
                conversation,
                group: group.to_owned(),
                agent: chosen.0.clone(),
                expires_at_ms: self.now_ms + timeout_ms,
                candidates,
                reason,
            }));
            if let Some(entry) = free.iter_mut().find(|(agent, _, _)| agent == &chosen.0) {
                entry.1 -= 1;
            }
            free.retain(|(_, remaining, _)| *remaining > 0);
        }
    }
}

/// Waiting chats of `group` with their effective priority, first served first.
#[must_use]
pub fn waiting_order(
    state: &DeskState,
    group: &str,
    now_ms: u64,
    settings: &DeskSettings,
) -> Vec<(ConversationId, f64)> {
    let mut order: Vec<(ConversationId, f64, u64)> = state
        .chats
        .iter()
        .filter(|(_, chat)| chat.group == group && chat.stage == ChatStage::Waiting)
        .map(|(conversation, chat)| {
            #[allow(clippy::cast_precision_loss)]
            let waited_s = now_ms.saturating_sub(chat.waiting_since_ms) as f64 / 1000.0;
            let effective = f64::from(chat.priority) + waited_s * settings.aging_points_per_s;
            (conversation.clone(), effective, chat.waiting_since_ms)
        })
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)).then(a.0.cmp(&b.0)));
    order
        .into_iter()
        .map(|(conversation, effective, _)| (conversation, effective))
        .collect()
}
