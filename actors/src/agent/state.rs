//! The agent's record, rebuilt from its events.

use std::collections::BTreeMap;

use crest_proto::ConversationId;
use crest_proto::agent::AgentEvent;
use crest_proto::routing::Presence;
use serde::{Deserialize, Serialize};

use crate::persistence::Aggregate;
use crate::reactor::inbox::Inbox;

/// Version of the snapshot encoding of [`AgentState`].
pub const AGENT_STATE_SCHEMA_VERSION: u16 = 2;

/// Everything an agent's record holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    /// Last applied sequence number.
    pub seq: u64,
    /// Skill groups (as routing set them).
    pub groups: Vec<String>,
    /// Maximum concurrent chats (as routing set it).
    pub capacity: u16,
    /// Languages served.
    pub languages: Vec<String>,
    /// Status (as routing set it).
    pub status: Presence,
    /// Live connections per node.
    pub connections: BTreeMap<String, u32>,
    /// Chats the agent has, with when they took each (ms since the epoch).
    pub chats: BTreeMap<ConversationId, u64>,
    /// Chats taken, ever.
    pub chats_taken: u64,
    /// Chats released (resolved, closed, transferred away), ever.
    pub chats_released: u64,
    /// Total handle time of the released chats, in milliseconds.
    pub handle_ms_total: u64,
    /// Replies written to customers, ever.
    pub replies_written: u64,
    /// Internal notes written, ever.
    pub notes_written: u64,
    /// Tickets assigned to the agent, ever.
    pub tickets_assigned: u64,
    /// Reactions applied (from the desk and from conversations).
    pub inbox: Inbox,
}

impl Default for AgentState {
    fn default() -> Self {
        Self {
            seq: 0,
            groups: Vec::new(),
            capacity: 0,
            languages: Vec::new(),
            status: Presence::Offline,
            connections: BTreeMap::new(),
            chats: BTreeMap::new(),
            chats_taken: 0,
            chats_released: 0,
            handle_ms_total: 0,
            replies_written: 0,
            notes_written: 0,
            tickets_assigned: 0,
            // Sources are the desk and every conversation the agent writes in: forget old ones.
            inbox: Inbox::forgetting_after(crate::reactor::inbox::DEFAULT_RETENTION_MS),
        }
    }
}

/// The node name in `<name>@<run>` (a node counts connections under its name and the id of its
/// current run, so the connections a crashed run left behind are dropped when the node's next run
/// records one).
#[must_use]
pub fn node_name(node: &str) -> &str {
    node.split_once('@').map_or(node, |(name, _)| name)
}

impl AgentState {
    /// Live connections on every node.
    #[must_use]
    pub fn total_connections(&self) -> u32 {
        self.connections.values().sum()
    }

    /// Live connections on every node but those of earlier runs of `node`'s node.
    #[must_use]
    pub fn live_connections_beside(&self, node: &str) -> u32 {
        let name = node_name(node);
        self.connections
            .iter()
            .filter(|(other, _)| node_name(other) != name)
            .map(|(_, count)| count)
            .sum()
    }

    /// Average handle time of released chats, in seconds (`None` before the first).
    #[must_use]
    pub fn average_handle_s(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        (self.chats_released > 0)
            .then(|| self.handle_ms_total as f64 / self.chats_released as f64 / 1000.0)
    }
}

impl Aggregate for AgentState {
    type Event = AgentEvent;
    const STATE_SCHEMA_VERSION: u16 = AGENT_STATE_SCHEMA_VERSION;
    const KIND: &'static str = "agent";

    fn seq(&self) -> u64 {
        self.seq
    }

    fn inbox_mut(&mut self) -> Option<&mut Inbox> {
        Some(&mut self.inbox)
    }

    fn apply_event(&mut self, event: &AgentEvent, seq: u64, at_ms: u64) {
        self.seq = seq;
        match event {
            AgentEvent::ConnectionOpened(opened) => {
                // Connections of an earlier run of the same node died with it.
                let name = node_name(&opened.node);
                self.connections
                    .retain(|node, _| node_name(node) != name || node == &opened.node);
                self.connections.insert(opened.node.clone(), opened.on_node);
            }
            AgentEvent::ConnectionClosed(closed) => {
                if closed.on_node == 0 {
                    self.connections.remove(&closed.node);
                } else {
                    self.connections.insert(closed.node.clone(), closed.on_node);
                }
            }
            AgentEvent::ProfileRecorded(profile) => {
                self.groups.clone_from(&profile.groups);
                self.capacity = profile.capacity;
                self.languages.clone_from(&profile.languages);
            }
            AgentEvent::StatusRecorded(status) => self.status = status.status,
            AgentEvent::ChatTaken(taken) => {
                self.chats.insert(taken.conversation.clone(), at_ms);
                self.chats_taken += 1;
            }
            AgentEvent::ChatReleased(released) => {
                self.chats.remove(&released.conversation);
                self.chats_released += 1;
                self.handle_ms_total += released.handle_ms;
            }
            AgentEvent::MessageWritten(written) => {
                if written.internal {
                    self.notes_written += 1;
                } else {
                    self.replies_written += 1;
                }
            }
            AgentEvent::TicketAssigned(_) => self.tickets_assigned += 1,
            AgentEvent::TicketUnassigned(_) => {}
        }
    }
}
