//! Handoffs and queues: the group a chat waits in, its priority, refusals of full queues, night
//! mode; transfers and supervisors' take-overs (with the checks made before any event); the end of
//! a chat; customers' tiers, the routing table and group settings.

use std::collections::BTreeMap;

use crest_proto::events::HandoffReason;
use crest_proto::routing::{
    ChatEnded, ChatQueued, ChatRefusedV2, CustomerTierSet, DeskEvent, GroupConfigured, Presence,
    RoutingTableSet, Tier,
};
use crest_proto::{AgentId, ConversationId, CustomerId};

use super::{Desk, DeskRejection, HandoffInfo};
use crate::desk::state::{ChatStage, DeskState, GroupConfig};

/// Whether `agent` can be given `conversation` (a transfer, or a supervisor's take-over): the agent
/// has a seat, is online, has free capacity (or the chat is offered to them) and, unless taking
/// over, is in the chat's group. A chat routing does not know needs its handoff.
pub(super) fn check_transfer(
    state: &DeskState,
    conversation: &ConversationId,
    agent: &AgentId,
    take_over: bool,
    handoff: Option<&HandoffInfo>,
) -> Result<(), DeskRejection> {
    let seat = state
        .agents
        .get(agent)
        .ok_or_else(|| DeskRejection::UnknownAgent(agent.key().to_owned()))?;
    let chat = state.chats.get(conversation);
    if chat.is_none() && handoff.is_none() {
        return Err(DeskRejection::NotInRouting(conversation.key()));
    }
    let already_owner = chat.is_some_and(
        |chat| matches!(&chat.stage, ChatStage::Assigned { agent: owner, .. } if owner == agent),
    );
    if already_owner {
        return Ok(());
    }
    let unavailable = |reason: &str| DeskRejection::AgentUnavailable {
        agent: agent.key().to_owned(),
        reason: reason.to_owned(),
    };
    if seat.status != Presence::Online {
        return Err(unavailable(seat.status.as_str()));
    }
    let offered_to_them = chat.is_some_and(
        |chat| matches!(&chat.stage, ChatStage::Offered { agent: offered, .. } if offered == agent),
    );
    if seat.free() == 0 && !offered_to_them {
        return Err(unavailable("no free capacity"));
    }
    // The group the chat waits in, or will wait in once the handoff queues it.
    let group = match (chat, handoff) {
        (Some(chat), _) => chat.group.clone(),
        (None, Some(handoff)) => handoff_group(state, handoff),
        (None, None) => state.default_group.clone(),
    };
    if !take_over && !seat.groups.contains(&group) {
        return Err(unavailable(&format!("not in group {group}")));
    }
    Ok(())
}

/// The group a handoff queues in: the one it asks for, else its intent's.
/// The group a handoff asks for, else the group of the most recent intent the routing table names
/// (a customer who asks for a human after a refund question goes to after-sales), else the
/// default group.
fn handoff_group(state: &DeskState, handoff: &HandoffInfo) -> String {
    if let Some(group) = &handoff.group {
        return group.clone();
    }
    let routed = handoff
        .summary
        .intent
        .iter()
        .chain(handoff.summary.bot_intents.iter().rev())
        .find(|intent| state.routes.contains_key(*intent));
    state.group_for_intent(routed.map(String::as_str))
}

impl Desk<'_> {
    fn group_of(&self, handoff: &HandoffInfo) -> String {
        handoff_group(self.state, handoff)
    }

    pub(super) fn handoff(&mut self, handoff: HandoffInfo) {
        let seen = self
            .state
            .handoffs_seen
            .get(&handoff.conversation)
            .copied()
            .unwrap_or(0);
        if handoff.handoff_seq <= seen {
            return; // a redelivered event
        }
        if let Some(supervisor) = handoff.take_over_by.clone() {
            self.take_over(&handoff, &supervisor);
            return;
        }
        let existing = self.state.chats.get(&handoff.conversation).cloned();
        let transferred = matches!(handoff.reason, HandoffReason::Transferred(_));
        if existing.is_some() && !transferred {
            return; // already with routing
        }
        let group = self.group_of(&handoff);
        let config = self.state.group_config(&group);
        let waiting = self
            .state
            .chats
            .values()
            .filter(|chat| chat.group == group && chat.stage == ChatStage::Waiting)
            .count();
        if u32::try_from(waiting).unwrap_or(u32::MAX) >= config.max_waiting {
            self.refuse(&handoff, &group, waiting);
            return;
        }
        let reason = handoff.reason.describe();
        self.queue(&handoff, group.clone(), reason);
        if !self.anyone_online(&group) {
            self.night_mode(&handoff, &group);
        }
    }

    /// A supervisor takes a chat over: a chat routing does not know yet is queued first (a full
    /// queue does not refuse a supervisor); then it is the supervisor's if they can take it (online,
    /// free capacity), else it stays where it is (waiting, or with its agent).
    fn take_over(&mut self, handoff: &HandoffInfo, supervisor: &AgentId) {
        if !self.state.chats.contains_key(&handoff.conversation) {
            let group = self.group_of(handoff);
            self.queue(handoff, group, handoff.summary.reason.clone());
        }
        if check_transfer(self.state, &handoff.conversation, supervisor, true, None).is_err() {
            return;
        }
        let from = match self
            .state
            .chats
            .get(&handoff.conversation)
            .map(|chat| &chat.stage)
        {
            Some(ChatStage::Assigned { agent, .. }) if agent == supervisor => return,
            Some(ChatStage::Assigned { agent, .. }) => Some(agent.clone()),
            _ => None,
        };
        self.assign(&handoff.conversation, supervisor, "take_over", from);
    }

    /// Gives a chat to an agent directly (a transfer, or a supervisor's take-over), queueing first
    /// a chat routing does not know yet (the bot owns it).
    pub(super) fn transfer_to_agent(
        &mut self,
        conversation: ConversationId,
        agent: AgentId,
        take_over: bool,
        handoff: Option<HandoffInfo>,
    ) {
        if !self.state.chats.contains_key(&conversation)
            && let Some(handoff) = handoff
        {
            let group = self.group_of(&handoff);
            self.queue(&handoff, group, handoff.summary.reason.clone());
        }
        let stage = self
            .state
            .chats
            .get(&conversation)
            .map(|chat| chat.stage.clone());
        let from = match stage {
            Some(ChatStage::Assigned { agent: owner, .. }) if owner == agent => {
                return;
            }
            Some(ChatStage::Assigned { agent: owner, .. }) => Some(owner),
            _ => None,
        };
        let reason = if take_over { "take_over" } else { "transfer" };
        self.assign(&conversation, &agent, reason, from);
    }

    /// A conversation was resolved or closed: it leaves routing and frees its agent.
    pub(super) fn chat_finished(&mut self, conversation: ConversationId, reason: String) {
        if let Some(chat) = self.state.chats.get(&conversation) {
            let agent = match &chat.stage {
                ChatStage::Assigned { agent, .. } => Some(agent.clone()),
                _ => None,
            };
            self.emit(DeskEvent::ChatEnded(ChatEnded {
                conversation,
                agent,
                reason,
            }));
        }
    }

    fn queue(&mut self, handoff: &HandoffInfo, group: String, reason: String) {
        let tier = self.state.tier(&handoff.customer);
        let mut priority = 0;
        let mut reasons = Vec::new();
        if tier == Tier::Vip {
            priority += self.settings.vip_points;
            reasons.push(format!("vip +{}", self.settings.vip_points));
        }
        let upset = handoff.summary.emotion.as_ref().is_some_and(|emotion| {
            matches!(emotion.label.as_str(), "anger" | "frustration" | "anxiety")
                && emotion.score >= 0.5
        }) || reason.contains("anger");
        if upset {
            priority += self.settings.emotion_points;
            let label = handoff
                .summary
                .emotion
                .as_ref()
                .map_or("anger", |emotion| emotion.label.as_str());
            reasons.push(format!("{label} +{}", self.settings.emotion_points));
        }
        if let Some(intent) = handoff.summary.intent.as_ref()
            && self.settings.urgent_intents.contains(intent)
        {
            priority += self.settings.urgent_points;
            reasons.push(format!("{intent} +{}", self.settings.urgent_points));
        }
        reasons.push(format!("handoff: {reason}"));
        self.emit(DeskEvent::ChatQueued(ChatQueued {
            conversation: handoff.conversation.clone(),
            customer: handoff.customer.clone(),
            group,
            priority,
            reasons,
            handoff_seq: handoff.handoff_seq,
            summary: handoff.summary.clone(),
            waiting_since_ms: self.now_ms,
        }));
    }

    fn anyone_online(&self, group: &str) -> bool {
        let online = |group: &str| {
            self.state.agents.values().any(|seat| {
                seat.status == Presence::Online && seat.groups.iter().any(|g| g == group)
            })
        };
        online(group)
            || self
                .state
                .group_config(group)
                .overflow_to
                .is_some_and(|backup| online(&backup))
    }

    fn night_mode(&mut self, handoff: &HandoffInfo, group: &str) {
        let ticket = self.callback_ticket(handoff, "no agent online");
        let english = handoff.summary.language.as_deref() == Some("en");
        let group = group_display(group, english);
        let text = if english {
            format!(
                "No {group} agent is online right now. You stay in the queue and will be connected as soon as \
                 someone signs in; we also opened ticket {ticket} so we get back to you even if you leave \
                 (reply with a phone number if you prefer a callback)."
            )
        } else {
            format!(
                "当前暂无{group}客服在线。您仍在排队，客服上线后会第一时间接入；我们也已为您创建工单 {ticket}，\
                 即使您离开也会有人跟进（如需回电，请留下电话号码）。"
            )
        };
        self.notify(&handoff.conversation, text);
    }

    fn refuse(&mut self, handoff: &HandoffInfo, group: &str, waiting: usize) {
        let ticket = self.callback_ticket(handoff, "queue full");
        let english = handoff.summary.language.as_deref() == Some("en");
        let shown = group_display(group, english);
        let text = if english {
            format!(
                "Our {shown} queue is full right now ({waiting} customers waiting), so we will not keep you \
                 waiting endlessly: we opened ticket {ticket} and an agent will get back to you. Meanwhile \
                 the assistant can keep helping you here."
            )
        } else {
            format!(
                "当前{shown}排队已满（{waiting}位顾客在等待），为免您长时间等待，我们已为您创建工单 {ticket}，\
                 客服会尽快联系您。在此期间，智能助手可以继续为您服务。"
            )
        };
        self.emit(DeskEvent::ChatRefused(ChatRefusedV2 {
            conversation: handoff.conversation.clone(),
            group: group.to_owned(),
            reason: "queue_full".to_owned(),
            handoff_seq: handoff.handoff_seq,
            text,
        }));
    }

    /// Sets a customer's tier (it counts for chats queued from then on).
    pub(super) fn set_tier(&mut self, customer: CustomerId, tier: Tier) {
        if self.state.tier(&customer) != tier {
            self.emit(DeskEvent::CustomerTierSet(CustomerTierSet {
                customer,
                tier,
            }));
        }
    }

    /// Replaces the routing table (intent → group) and the group of other intents.
    pub(super) fn set_routes(&mut self, routes: BTreeMap<String, String>, default_group: String) {
        self.emit(DeskEvent::RoutingTableSet(RoutingTableSet {
            routes: routes.into_iter().collect(),
            default_group,
        }));
    }

    /// Sets a group's overflow, queue limit and offer timeout.
    pub(super) fn configure_group(&mut self, group: String, config: GroupConfig) {
        self.emit(DeskEvent::GroupConfigured(GroupConfigured {
            group,
            overflow_to: config.overflow_to,
            overflow_after_s: config.overflow_after_s,
            max_waiting: config.max_waiting,
            offer_timeout_s: config.offer_timeout_s,
        }));
    }
}

/// How customers read a group's name.
#[must_use]
pub fn group_display(group: &str, english: bool) -> String {
    let known = match (group, english) {
        ("pre_sales", true) => "pre-sales",
        ("pre_sales", false) => "售前",
        ("after_sales", true) => "after-sales",
        ("after_sales", false) => "售后",
        ("general", true) => "customer service",
        ("general", false) => "人工",
        _ => return group.replace('_', " "),
    };
    known.to_owned()
}
