//! Named reads of a tenant's desk. A query is answered by the desk actor itself, on the node that
//! runs it; only the answer (a small view) travels to a node that asked from elsewhere, never the
//! desk's whole state.

use std::collections::BTreeMap;

use crest_proto::events::HandoffSummary;
use crest_proto::routing::{Presence, Tier};
use crest_proto::{AgentId, ConversationId, CustomerId};
use serde::{Deserialize, Serialize};

use super::actor::estimated_wait_s;
use super::decide::{DeskSettings, waiting_order};
use super::state::{AgentSeat, ChatStage, DeskState, GroupConfig};

/// A read of a desk, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeskQuery {
    /// One agent's seat with the details of its offers.
    Seat(AgentId),
    /// One skill group's queue.
    Queue(String),
    /// Every seat, by agent id (a supervisor's view of the team).
    Seats,
    /// Every known group's queue in brief.
    Queues,
    /// The intent → group table.
    RoutingTable,
    /// A customer's tier.
    Tier(CustomerId),
    /// The customer a customer is merged into now, if any.
    MergedInto(CustomerId),
    /// Every customer merged into a customer, directly or not.
    Absorbed(CustomerId),
    /// One merge.
    Merge(crest_proto::MergeId),
}

/// The answer to a [`DeskQuery`] (the variant follows the query's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DeskView {
    /// The seat (`None`: no such agent).
    Seat(Option<Box<SeatView>>),
    /// The queue.
    Queue(Box<QueueView>),
    /// The seats, by agent id.
    Seats(Vec<(AgentId, SeatView)>),
    /// The queues in brief, by group name.
    Queues(Vec<QueueBrief>),
    /// The routing table.
    RoutingTable(RoutingTableView),
    /// The tier.
    Tier(Tier),
    /// The customer merged into, if any.
    MergedInto(Option<CustomerId>),
    /// Customers.
    Customers(Vec<CustomerId>),
    /// The merge (`None`: no such merge).
    Merge(Option<crate::customer::merges::MergeRecord>),
}

/// An agent's seat as routing holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeatView {
    /// The seat.
    pub seat: AgentSeat,
    /// The chats offered to the agent, with what the agent needs to decide.
    pub offers: Vec<OfferDetail>,
}

/// A chat offered to an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferDetail {
    /// The chat.
    pub conversation: ConversationId,
    /// Its group.
    pub group: String,
    /// Seconds left to accept (rounded up).
    pub expires_in_s: u64,
    /// The handoff summary.
    pub summary: HandoffSummary,
}

/// A skill group's queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueView {
    /// Waiting chats, first served first.
    pub waiting: Vec<WaitingChat>,
    /// Chats of the group offered to an agent.
    pub offered: Vec<OfferedChat>,
    /// Chats of the group an agent owns.
    pub assigned: usize,
    /// Online agents of the group.
    pub agents_online: usize,
    /// Their free capacity.
    pub free_capacity: u64,
    /// The group's settings.
    pub config: GroupConfig,
}

/// A skill group's queue in brief.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueBrief {
    /// The group.
    pub group: String,
    /// Chats waiting.
    pub waiting: usize,
    /// Seconds the longest-waiting chat has waited.
    pub longest_wait_s: u64,
    /// Chats offered to an agent.
    pub offered: usize,
    /// Chats an agent owns.
    pub assigned: usize,
    /// Online agents of the group.
    pub agents_online: usize,
    /// Their free capacity.
    pub free_capacity: u64,
}

/// A chat in a queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitingChat {
    /// The chat.
    pub conversation: ConversationId,
    /// 1 is served next.
    pub position: usize,
    /// Priority with aging.
    pub priority: f64,
    /// Priority before aging.
    pub base_priority: i32,
    /// Seconds since it started waiting.
    pub waiting_s: u64,
    /// What the priority is made of.
    pub reasons: Vec<String>,
    /// The customer.
    pub customer: CustomerId,
    /// The customer's tier.
    pub tier: Tier,
    /// The handoff summary.
    pub summary: HandoffSummary,
    /// Estimated seconds until an agent takes it.
    pub estimated_wait_s: u64,
}

/// A chat of a queue offered to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferedChat {
    /// The chat.
    pub conversation: ConversationId,
    /// The agent.
    pub agent: AgentId,
    /// Seconds left to accept (rounded up).
    pub expires_in_s: u64,
}

/// The intent → group table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingTableView {
    /// Intent → group.
    pub routes: BTreeMap<String, String>,
    /// The group of every other intent.
    pub default_group: String,
}

impl DeskQuery {
    /// The answer for a tenant that has no desk, if the query has one without opening a desk:
    /// the merges of customers (a tenant without a desk never merged any).
    #[must_use]
    pub fn answer_without_desk(&self) -> Option<DeskView> {
        match self {
            Self::MergedInto(_) => Some(DeskView::MergedInto(None)),
            Self::Absorbed(_) => Some(DeskView::Customers(Vec::new())),
            Self::Merge(_) => Some(DeskView::Merge(None)),
            Self::Seat(_)
            | Self::Queue(_)
            | Self::Seats
            | Self::Queues
            | Self::RoutingTable
            | Self::Tier(_) => None,
        }
    }

    /// Answers the query from the desk's state at `now_ms`.
    #[must_use]
    pub fn answer(&self, desk: &DeskState, now_ms: u64, settings: &DeskSettings) -> DeskView {
        match self {
            Self::Seat(agent) => DeskView::Seat(seat_view(desk, agent, now_ms).map(Box::new)),
            Self::Queue(group) => {
                DeskView::Queue(Box::new(queue_view(desk, group, now_ms, settings)))
            }
            Self::Seats => DeskView::Seats(
                desk.agents
                    .keys()
                    .filter_map(|agent| Some((agent.clone(), seat_view(desk, agent, now_ms)?)))
                    .collect(),
            ),
            Self::Queues => DeskView::Queues(
                desk.group_names()
                    .into_iter()
                    .map(|group| queue_brief(desk, group, now_ms))
                    .collect(),
            ),
            Self::RoutingTable => DeskView::RoutingTable(RoutingTableView {
                routes: desk.routes.clone(),
                default_group: desk.default_group.clone(),
            }),
            Self::Tier(customer) => DeskView::Tier(desk.tier(customer)),
            Self::MergedInto(customer) => DeskView::MergedInto(desk.merges.merged_into(customer)),
            Self::Absorbed(customer) => DeskView::Customers(desk.merges.absorbed(customer)),
            Self::Merge(merge) => DeskView::Merge(desk.merges.merge(merge).cloned()),
        }
    }
}

fn seconds_left(deadline_ms: u64, now_ms: u64) -> u64 {
    deadline_ms.saturating_sub(now_ms).div_ceil(1000)
}

fn seat_view(desk: &DeskState, agent: &AgentId, now_ms: u64) -> Option<SeatView> {
    let seat = desk.agents.get(agent)?;
    let offers = seat
        .offers
        .iter()
        .filter_map(|conversation| {
            let chat = desk.chats.get(conversation)?;
            let ChatStage::Offered { expires_at_ms, .. } = chat.stage else {
                return None;
            };
            Some(OfferDetail {
                conversation: conversation.clone(),
                group: chat.group.clone(),
                expires_in_s: seconds_left(expires_at_ms, now_ms),
                summary: chat.summary.clone(),
            })
        })
        .collect();
    Some(SeatView {
        seat: seat.clone(),
        offers,
    })
}

fn online_in<'a>(desk: &'a DeskState, group: &'a str) -> impl Iterator<Item = &'a AgentSeat> {
    desk.agents.values().filter(move |seat| {
        seat.status == Presence::Online && seat.groups.iter().any(|g| g == group)
    })
}

fn queue_brief(desk: &DeskState, group: String, now_ms: u64) -> QueueBrief {
    let mut brief = QueueBrief {
        waiting: 0,
        longest_wait_s: 0,
        offered: 0,
        assigned: 0,
        agents_online: online_in(desk, &group).count(),
        free_capacity: online_in(desk, &group)
            .map(|seat| u64::from(seat.free()))
            .sum(),
        group,
    };
    for chat in desk.chats.values().filter(|chat| chat.group == brief.group) {
        match chat.stage {
            ChatStage::Waiting => {
                brief.waiting += 1;
                brief.longest_wait_s = brief
                    .longest_wait_s
                    .max(now_ms.saturating_sub(chat.waiting_since_ms) / 1000);
            }
            ChatStage::Offered { .. } => brief.offered += 1,
            ChatStage::Assigned { .. } => brief.assigned += 1,
        }
    }
    brief
}

fn queue_view(desk: &DeskState, group: &str, now_ms: u64, settings: &DeskSettings) -> QueueView {
    let online: Vec<&AgentSeat> = online_in(desk, group).collect();
    let online_capacity: u64 = online
        .iter()
        .map(|seat| u64::from(seat.capacity.max(1)))
        .sum();
    let waiting = waiting_order(desk, group, now_ms, settings)
        .into_iter()
        .enumerate()
        .filter_map(|(index, (conversation, effective))| {
            let chat = desk.chats.get(&conversation)?;
            Some(WaitingChat {
                position: index + 1,
                priority: effective,
                base_priority: chat.priority,
                waiting_s: now_ms.saturating_sub(chat.waiting_since_ms) / 1000,
                reasons: chat.reasons.clone(),
                customer: chat.customer.clone(),
                tier: desk.tier(&chat.customer),
                summary: chat.summary.clone(),
                estimated_wait_s: estimated_wait_s(index + 1, online_capacity, desk.avg_handle_s),
                conversation,
            })
        })
        .collect();
    let offered = desk
        .chats
        .iter()
        .filter(|(_, chat)| chat.group == group)
        .filter_map(|(conversation, chat)| match &chat.stage {
            ChatStage::Offered {
                agent,
                expires_at_ms,
            } => Some(OfferedChat {
                conversation: conversation.clone(),
                agent: agent.clone(),
                expires_in_s: seconds_left(*expires_at_ms, now_ms),
            }),
            _ => None,
        })
        .collect();
    let assigned = desk
        .chats
        .values()
        .filter(|chat| chat.group == group && matches!(chat.stage, ChatStage::Assigned { .. }))
        .count();
    QueueView {
        waiting,
        offered,
        assigned,
        agents_online: online.len(),
        free_capacity: online.iter().map(|seat| u64::from(seat.free())).sum(),
        config: desk.group_config(group),
    }
}
