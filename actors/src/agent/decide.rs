//! The agent's decisions: (state, command, now) → events. Pure. Every command is idempotent on its
//! own terms (a chat taken twice, released when not held, a status that is already so: nothing).

use crest_proto::agent::{
    AgentEvent, ChatReleased, ChatTaken, ConnectionClosed, ConnectionOpened, MessageWritten,
    ProfileRecorded, StatusRecorded, TicketAssigned, TicketUnassigned,
};
use crest_proto::routing::Presence;
use crest_proto::{ConversationId, TicketId};

use super::state::AgentState;

/// Commands an agent's record accepts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AgentCommand {
    /// A live connection opened on `node`.
    OpenConnection {
        /// The node.
        node: String,
    },
    /// A live connection closed on `node`.
    CloseConnection {
        /// The node.
        node: String,
    },
    /// Routing set the profile.
    RecordProfile {
        /// Skill groups.
        groups: Vec<String>,
        /// Maximum concurrent chats.
        capacity: u16,
        /// Languages.
        languages: Vec<String>,
    },
    /// Routing changed the status.
    RecordStatus {
        /// The status.
        status: Presence,
        /// Why.
        reason: String,
    },
    /// Routing gave the agent a chat.
    RecordChatTaken {
        /// The conversation.
        conversation: ConversationId,
        /// `accepted`, `transfer`, `take_over`.
        reason: String,
    },
    /// A chat left the agent.
    RecordChatReleased {
        /// The conversation.
        conversation: ConversationId,
        /// `resolved`, `closed`, `transferred`.
        reason: String,
    },
    /// The agent wrote in a conversation.
    RecordMessage {
        /// The conversation.
        conversation: ConversationId,
        /// An internal note.
        internal: bool,
    },
    /// A ticket was assigned to the agent (`true`) or taken away (`false`).
    RecordTicket {
        /// The ticket.
        ticket: TicketId,
        /// Assigned to the agent, or no longer.
        assigned: bool,
    },
}

/// The events `command` leads to in `state` at `now_ms`.
#[must_use]
pub fn decide(state: &AgentState, command: &AgentCommand, now_ms: u64) -> Vec<AgentEvent> {
    match command {
        AgentCommand::OpenConnection { node } => {
            let on_node = state.connections.get(node).copied().unwrap_or(0) + 1;
            vec![AgentEvent::ConnectionOpened(ConnectionOpened {
                node: node.clone(),
                on_node,
                total: state.live_connections_beside(node) + on_node,
            })]
        }
        AgentCommand::CloseConnection { node } => {
            let Some(open) = state
                .connections
                .get(node)
                .copied()
                .filter(|open| *open > 0)
            else {
                return Vec::new();
            };
            vec![AgentEvent::ConnectionClosed(ConnectionClosed {
                node: node.clone(),
                on_node: open - 1,
                total: state.total_connections() - 1,
            })]
        }
        AgentCommand::RecordProfile {
            groups,
            capacity,
            languages,
        } => {
            let same = &state.groups == groups
                && state.capacity == *capacity
                && &state.languages == languages;
            if same && state.seq > 0 {
                return Vec::new();
            }
            vec![AgentEvent::ProfileRecorded(ProfileRecorded {
                groups: groups.clone(),
                capacity: *capacity,
                languages: languages.clone(),
            })]
        }
        AgentCommand::RecordStatus { status, reason } => {
            if state.status == *status && state.seq > 0 {
                return Vec::new();
            }
            vec![AgentEvent::StatusRecorded(StatusRecorded {
                status: *status,
                reason: reason.clone(),
            })]
        }
        AgentCommand::RecordChatTaken {
            conversation,
            reason,
        } => {
            if state.chats.contains_key(conversation) {
                return Vec::new();
            }
            vec![AgentEvent::ChatTaken(ChatTaken {
                conversation: conversation.clone(),
                reason: reason.clone(),
            })]
        }
        AgentCommand::RecordChatReleased {
            conversation,
            reason,
        } => {
            let Some(taken_at) = state.chats.get(conversation) else {
                return Vec::new();
            };
            vec![AgentEvent::ChatReleased(ChatReleased {
                conversation: conversation.clone(),
                reason: reason.clone(),
                handle_ms: now_ms.saturating_sub(*taken_at),
            })]
        }
        AgentCommand::RecordMessage {
            conversation,
            internal,
        } => vec![AgentEvent::MessageWritten(MessageWritten {
            conversation: conversation.clone(),
            internal: *internal,
        })],
        // Like messages written, each is news once (a reaction delivered again is recognised by
        // the inbox before deciding).
        AgentCommand::RecordTicket {
            ticket,
            assigned: true,
        } => vec![AgentEvent::TicketAssigned(TicketAssigned {
            ticket: ticket.clone(),
        })],
        AgentCommand::RecordTicket {
            ticket,
            assigned: false,
        } => vec![AgentEvent::TicketUnassigned(TicketUnassigned {
            ticket: ticket.clone(),
        })],
    }
}

#[cfg(test)]
mod tests {
    use crest_proto::TenantId;

    use super::*;
    use crate::persistence::Aggregate;

    fn conversation(n: u128) -> ConversationId {
        ConversationId::from_parts(TenantId::new("shop").expect("valid"), n)
    }

    fn run(state: &mut AgentState, command: &AgentCommand, now_ms: u64) -> Vec<AgentEvent> {
        let events = decide(state, command, now_ms);
        for event in &events {
            let seq = state.seq + 1;
            state.apply_event(event, seq, now_ms);
        }
        events
    }

    #[test]
    fn connections_are_counted_per_node_and_in_total() {
        let mut state = AgentState::default();
        let open = |node: &str| AgentCommand::OpenConnection {
            node: node.to_owned(),
        };
        let close = |node: &str| AgentCommand::CloseConnection {
            node: node.to_owned(),
        };
        run(&mut state, &open("a"), 1);
        run(&mut state, &open("a"), 2);
        let events = run(&mut state, &open("b"), 3);
        assert_eq!(
            events,
            [AgentEvent::ConnectionOpened(ConnectionOpened {
                node: "b".to_owned(),
                on_node: 1,
                total: 3
            })]
        );
        run(&mut state, &close("a"), 4);
        run(&mut state, &close("a"), 5);
        assert_eq!(state.total_connections(), 1);
        assert!(
            run(&mut state, &close("a"), 6).is_empty(),
            "a close without a connection is nothing"
        );
        let events = run(&mut state, &close("b"), 7);
        assert!(matches!(
            events.as_slice(),
            [AgentEvent::ConnectionClosed(ConnectionClosed {
                total: 0,
                ..
            })]
        ));
    }

    #[test]
    fn a_new_run_of_a_node_drops_the_connections_its_last_run_left() {
        let mut state = AgentState::default();
        let open = |node: &str| AgentCommand::OpenConnection {
            node: node.to_owned(),
        };
        run(&mut state, &open("a@run1"), 1);
        run(&mut state, &open("b@run1"), 2);
        // Node a crashed; its next run records a connection: only b's and the new one count.
        let events = run(&mut state, &open("a@run2"), 3);
        assert!(matches!(
            events.as_slice(),
            [AgentEvent::ConnectionOpened(ConnectionOpened {
                on_node: 1,
                total: 2,
                ..
            })]
        ));
        assert_eq!(state.total_connections(), 2);
        assert!(!state.connections.contains_key("a@run1"));
    }

    #[test]
    fn the_history_counts_chats_handle_times_and_messages() {
        let mut state = AgentState::default();
        let taken = |n| AgentCommand::RecordChatTaken {
            conversation: conversation(n),
            reason: "accepted".to_owned(),
        };
        let released = |n| AgentCommand::RecordChatReleased {
            conversation: conversation(n),
            reason: "resolved".to_owned(),
        };
        run(&mut state, &taken(1), 1_000);
        assert!(run(&mut state, &taken(1), 2_000).is_empty(), "taken once");
        run(&mut state, &taken(2), 3_000);
        let events = run(&mut state, &released(1), 61_000);
        assert_eq!(
            events,
            [AgentEvent::ChatReleased(ChatReleased {
                conversation: conversation(1),
                reason: "resolved".to_owned(),
                handle_ms: 60_000
            })]
        );
        assert!(
            run(&mut state, &released(1), 70_000).is_empty(),
            "released once"
        );
        run(
            &mut state,
            &AgentCommand::RecordMessage {
                conversation: conversation(2),
                internal: false,
            },
            4_000,
        );
        assert_eq!(state.chats_taken, 2);
        assert_eq!(state.chats_released, 1);
        assert_eq!(state.average_handle_s(), Some(60.0));
        assert_eq!(state.replies_written, 1);
        assert_eq!(state.chats.keys().collect::<Vec<_>>(), [&conversation(2)]);
    }
}
