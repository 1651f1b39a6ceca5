//! What the reactor does with one journaled event: the command it leads to on another entity, if
//! any. Pure: the event alone decides (events carry what their reactions need; nothing is read
//! back from the entity that emitted them).
//!
//! * conversation → desk: a handoff queues the chat (or a supervisor takes it over), a resolution
//!   or a close ends it, the bot's after-sales flow opens a ticket;
//! * desk → conversation: an assignment gives the conversation to the agent, a notice tells the
//!   customer something, a refusal gives the conversation back to the bot;
//! * desk → agent: profile, status, chats taken and released (the agent's own record);
//!   conversation → agent: the messages the agent wrote;
//! * agent → desk: the agent's first live connection (on any node) and their last one;
//! * conversation → customer: a closed conversation is no longer the customer's open one.

use crest_proto::agent::AgentEvent;
use crest_proto::commands::ConversationCommand;
use crest_proto::events::ConversationEvent;
use crest_proto::ids::StreamKind;
use crest_proto::routing::DeskEvent;
use crest_proto::{AgentId, CodecError, ConversationId, CustomerId, Envelope, MessageId, TenantId};

use crate::agent::AgentCommand;
use crate::desk::{DeskCommand, HandoffInfo};

/// A command for another entity, caused by one journaled event.
#[derive(Debug, Clone, PartialEq)]
pub enum Reaction {
    /// For a customer's identity stream: one of their conversations closed.
    CustomerConversationEnded {
        /// The customer.
        customer: CustomerId,
        /// The conversation.
        conversation: ConversationId,
    },
    /// For an agent's record.
    Agent {
        /// The agent.
        agent: AgentId,
        /// The command.
        command: AgentCommand,
    },
    /// For a tenant's routing desk.
    Desk {
        /// The tenant.
        tenant: TenantId,
        /// The command.
        command: DeskCommand,
    },
    /// For a conversation.
    Conversation {
        /// The conversation.
        conversation: ConversationId,
        /// The command.
        command: ConversationCommand,
    },
}

/// The reactions to `envelope` (none, one, or one per entity it concerns). An event that does not
/// decode is an error (the reactor logs it and moves on: it can never be delivered).
pub fn reactions(envelope: &Envelope) -> Result<Vec<Reaction>, CodecError> {
    match envelope.stream.kind() {
        StreamKind::Conversation => {
            let Some(conversation) = envelope.stream.conversation_id() else {
                return Ok(Vec::new());
            };
            let event = envelope.decode_event::<ConversationEvent>()?;
            Ok(conversation_reactions(conversation, envelope.seq, event))
        }
        StreamKind::Desk => {
            let event = envelope.decode_event::<DeskEvent>()?;
            Ok(desk_reactions(envelope, event))
        }
        StreamKind::Agent => {
            let Some(agent) = envelope.stream.agent_id() else {
                return Ok(Vec::new());
            };
            let event = envelope.decode_event::<AgentEvent>()?;
            Ok(agent_reactions(agent, event))
        }
        StreamKind::Customer | StreamKind::Directory => Ok(Vec::new()),
    }
}

/// An agent's first live connection (on any node) and their last one reach routing.
fn agent_reactions(agent: AgentId, event: AgentEvent) -> Vec<Reaction> {
    let tenant = agent.tenant().clone();
    let command = match event {
        AgentEvent::ConnectionOpened(opened) if opened.total == 1 => {
            DeskCommand::AgentConnected(agent)
        }
        AgentEvent::ConnectionClosed(closed) if closed.total == 0 => {
            DeskCommand::AgentDisconnected(agent)
        }
        AgentEvent::ConnectionOpened(_)
        | AgentEvent::ConnectionClosed(_)
        | AgentEvent::ProfileRecorded(_)
        | AgentEvent::StatusRecorded(_)
        | AgentEvent::ChatTaken(_)
        | AgentEvent::ChatReleased(_)
        | AgentEvent::MessageWritten(_) => return Vec::new(),
    };
    vec![Reaction::Desk { tenant, command }]
}

fn conversation_reactions(
    conversation: ConversationId,
    seq: u64,
    event: ConversationEvent,
) -> Vec<Reaction> {
    let tenant = conversation.tenant().clone();
    let command = match event {
        ConversationEvent::HandoffRequested(handoff) => {
            // Only events upcast from version 1 lack the customer; routing still needs one.
            let customer = handoff
                .customer
                .unwrap_or_else(|| legacy_customer(&conversation));
            DeskCommand::Handoff(HandoffInfo {
                conversation,
                customer,
                reason: handoff.reason,
                group: handoff.group,
                handoff_seq: seq,
                summary: handoff.summary,
                take_over_by: handoff.take_over_by,
            })
        }
        ConversationEvent::Resolved(_) => DeskCommand::ChatFinished {
            conversation,
            reason: "resolved".to_owned(),
        },
        ConversationEvent::Closed(closed) => {
            let mut reactions = vec![Reaction::Desk {
                tenant,
                command: DeskCommand::ChatFinished {
                    conversation: conversation.clone(),
                    reason: "closed".to_owned(),
                },
            }];
            // Events upcast from version 1 do not name the customer: their next message finds
            // the conversation closed and opens a new one anyway.
            if let Some(customer) = closed.customer {
                reactions.push(Reaction::CustomerConversationEnded {
                    customer,
                    conversation,
                });
            }
            return reactions;
        }
        ConversationEvent::AfterSalesRequested(request) => DeskCommand::BotAfterSales {
            conversation,
            customer: request.customer,
            kind: request.kind,
            text: request.text,
        },
        ConversationEvent::AgentReplied(reply) => {
            return vec![Reaction::Agent {
                agent: reply.agent,
                command: AgentCommand::RecordMessage {
                    conversation,
                    internal: reply.internal,
                },
            }];
        }
        ConversationEvent::Started(_)
        | ConversationEvent::CustomerMessageReceived(_)
        | ConversationEvent::BotReplied(_)
        | ConversationEvent::AgentAssigned(_)
        | ConversationEvent::CsatRated(_)
        | ConversationEvent::SystemNotice(_)
        | ConversationEvent::HandoffDeclined(_) => return Vec::new(),
    };
    vec![Reaction::Desk { tenant, command }]
}

/// The customer of a handoff journaled before handoffs named their customer.
fn legacy_customer(conversation: &ConversationId) -> CustomerId {
    CustomerId::new(
        conversation.tenant(),
        format!("unknown-{}", conversation.key()),
    )
    .unwrap_or_else(|_| unreachable!("a ULID makes a valid customer key"))
}

fn desk_reactions(envelope: &Envelope, event: DeskEvent) -> Vec<Reaction> {
    // A message id derived from the desk event's own id: the same on every delivery.
    let message_id = |conversation: &ConversationId| {
        MessageId::from_parts(conversation.tenant().clone(), envelope.event_id)
    };
    let (conversation, command) = match event {
        DeskEvent::ChatAssigned(assigned) => {
            let mut reactions = vec![
                Reaction::Conversation {
                    conversation: assigned.conversation.clone(),
                    command: ConversationCommand::TransferToAgent {
                        agent: assigned.agent.clone(),
                    },
                },
                Reaction::Agent {
                    agent: assigned.agent,
                    command: AgentCommand::RecordChatTaken {
                        conversation: assigned.conversation.clone(),
                        reason: assigned.reason,
                    },
                },
            ];
            if let Some(from) = assigned.from {
                reactions.push(Reaction::Agent {
                    agent: from,
                    command: AgentCommand::RecordChatReleased {
                        conversation: assigned.conversation,
                        reason: "transferred".to_owned(),
                    },
                });
            }
            return reactions;
        }
        DeskEvent::ChatEnded(ended) => {
            return ended
                .agent
                .map(|agent| Reaction::Agent {
                    agent,
                    command: AgentCommand::RecordChatReleased {
                        conversation: ended.conversation,
                        reason: ended.reason,
                    },
                })
                .into_iter()
                .collect();
        }
        DeskEvent::AgentProfileSet(profile) => {
            return vec![Reaction::Agent {
                agent: profile.agent,
                command: AgentCommand::RecordProfile {
                    groups: profile.groups,
                    capacity: profile.capacity,
                    languages: profile.languages,
                },
            }];
        }
        DeskEvent::PresenceChanged(change) => {
            return vec![Reaction::Agent {
                agent: change.agent,
                command: AgentCommand::RecordStatus {
                    status: change.status,
                    reason: change.reason,
                },
            }];
        }
        DeskEvent::CustomerNotified(notice) => {
            let message_id = message_id(&notice.conversation);
            (
                notice.conversation,
                ConversationCommand::Notify {
                    message_id,
                    text: notice.text,
                },
            )
        }
        DeskEvent::ChatRefused(refused) => {
            let message_id = message_id(&refused.conversation);
            (
                refused.conversation,
                ConversationCommand::DeclineHandoff {
                    reason: refused.reason,
                    message_id,
                    text: refused.text,
                },
            )
        }
        DeskEvent::AgentConnectionChanged(_)
        | DeskEvent::CustomerTierSet(_)
        | DeskEvent::RoutingTableSet(_)
        | DeskEvent::GroupConfigured(_)
        | DeskEvent::ChatQueued(_)
        | DeskEvent::ChatOffered(_)
        | DeskEvent::OfferWithdrawn(_)
        | DeskEvent::ChatOverflowed(_)
        | DeskEvent::TicketCreated(_)
        | DeskEvent::TicketStatusChanged(_)
        | DeskEvent::TicketAssigned(_)
        | DeskEvent::TicketCommented(_)
        | DeskEvent::TicketLinked(_)
        | DeskEvent::SlaBreached(_) => return Vec::new(),
    };
    vec![Reaction::Conversation {
        conversation,
        command,
    }]
}

#[cfg(test)]
mod tests {
    use crest_proto::envelope::EventMeta;
    use crest_proto::events::{
        AgentAssigned, ConversationEvent, HandoffReason, HandoffRequested, HandoffRequestedV2,
        Resolved,
    };
    use crest_proto::routing::{
        ChatAssigned, ChatRefusedV2, CustomerNotified, DeskEvent, HandoffSummary,
    };
    use crest_proto::{AgentId, ConversationId, CustomerId, Envelope, StreamId, TenantId};

    use super::*;

    fn tenant() -> TenantId {
        TenantId::new("shop").expect("valid")
    }

    fn conversation() -> ConversationId {
        ConversationId::from_parts(tenant(), 42)
    }

    fn wrap<E: crest_proto::events::DomainEvent>(
        event: &E,
        stream: StreamId,
        seq: u64,
    ) -> Envelope {
        Envelope::wrap(event, stream, seq, 1_000, EventMeta::default()).expect("encodes")
    }

    fn desk_event(event: &DeskEvent) -> Envelope {
        wrap(event, StreamId::desk(&tenant()), 9)
    }

    #[test]
    fn a_handoff_becomes_a_desk_handoff_carrying_everything_routing_needs() {
        let customer = CustomerId::new(&tenant(), "c-1").expect("valid");
        let summary = HandoffSummary::from_reason(&HandoffReason::CustomerRequest);
        let event = ConversationEvent::HandoffRequested(HandoffRequestedV2 {
            reason: HandoffReason::CustomerRequest,
            group: Some("after_sales".to_owned()),
            customer: Some(customer.clone()),
            summary: summary.clone(),
            take_over_by: None,
        });
        let envelope = wrap(&event, StreamId::conversation(&conversation()), 5);
        let found = reactions(&envelope).expect("decodes");
        let [
            Reaction::Desk {
                tenant: to,
                command,
            },
        ] = found.as_slice()
        else {
            panic!("a desk command");
        };
        let (to, command) = (to.clone(), command.clone());
        assert_eq!(to, tenant());
        assert_eq!(
            command,
            DeskCommand::Handoff(HandoffInfo {
                conversation: conversation(),
                customer,
                reason: HandoffReason::CustomerRequest,
                group: Some("after_sales".to_owned()),
                handoff_seq: 5,
                summary,
                take_over_by: None,
            })
        );
        let resolved = wrap(
            &ConversationEvent::Resolved(Resolved { by: None }),
            StreamId::conversation(&conversation()),
            6,
        );
        assert!(matches!(
            reactions(&resolved).as_deref(),
            Ok([Reaction::Desk {
                command: DeskCommand::ChatFinished { .. },
                ..
            }])
        ));
        let assigned = wrap(
            &ConversationEvent::AgentAssigned(AgentAssigned {
                agent: AgentId::new(&tenant(), "ann").expect("valid"),
            }),
            StreamId::conversation(&conversation()),
            7,
        );
        assert_eq!(reactions(&assigned), Ok(Vec::new()), "routing caused it");
    }

    #[test]
    fn the_streams_the_reactor_does_not_follow_never_lead_to_a_reaction() {
        use crate::ports::journal::Cursor;
        use crest_proto::events::{ConversationOpened, CustomerEvent};
        use crest_proto::ids::StreamKind;
        let customer = CustomerId::new(&tenant(), "c-1").expect("valid");
        let opened = wrap(
            &CustomerEvent::ConversationOpened(ConversationOpened {
                conversation: conversation(),
            }),
            StreamId::customer(&customer),
            1,
        );
        assert_eq!(reactions(&opened), Ok(Vec::new()));
        for kind in [StreamKind::Customer, StreamKind::Directory] {
            assert!(!Cursor::Reacted.follows(kind), "{kind:?}");
        }
        for kind in [
            StreamKind::Conversation,
            StreamKind::Desk,
            StreamKind::Agent,
        ] {
            assert!(Cursor::Reacted.follows(kind), "{kind:?}");
        }
    }

    #[test]
    fn a_legacy_handoff_still_reaches_routing() {
        let legacy = HandoffRequested {
            reason: HandoffReason::CustomerRequest,
            group: None,
        };
        let mut envelope = wrap(
            &ConversationEvent::HandoffRequested(legacy.clone().into()),
            StreamId::conversation(&conversation()),
            3,
        );
        envelope.schema_version = 1;
        envelope.payload = crest_proto::codec::encode(&legacy).expect("encodes");
        let found = reactions(&envelope).expect("decodes");
        let [
            Reaction::Desk {
                command: DeskCommand::Handoff(info),
                ..
            },
        ] = found.as_slice()
        else {
            panic!("a handoff");
        };
        assert!(info.customer.key().starts_with("unknown-"));
    }

    #[test]
    fn desk_decisions_become_conversation_commands_with_stable_message_ids() {
        let agent = AgentId::new(&tenant(), "ann").expect("valid");
        let assigned = desk_event(&DeskEvent::ChatAssigned(ChatAssigned {
            conversation: conversation(),
            agent: agent.clone(),
            reason: "accepted".to_owned(),
            from: None,
        }));
        let taken = reactions(&assigned).expect("decodes");
        assert_eq!(
            taken[0],
            Reaction::Conversation {
                conversation: conversation(),
                command: ConversationCommand::TransferToAgent {
                    agent: agent.clone()
                },
            }
        );
        assert_eq!(
            taken[1],
            Reaction::Agent {
                agent,
                command: crate::agent::AgentCommand::RecordChatTaken {
                    conversation: conversation(),
                    reason: "accepted".to_owned()
                },
            },
            "the agent's record too"
        );
        let notice = desk_event(&DeskEvent::CustomerNotified(CustomerNotified {
            conversation: conversation(),
            text: "排在第 1 位".to_owned(),
        }));
        let first = reactions(&notice);
        assert_eq!(first, reactions(&notice), "the same command every time");
        let Ok(
            [
                Reaction::Conversation {
                    command: ConversationCommand::Notify { message_id, text },
                    ..
                },
            ],
        ) = first.as_deref()
        else {
            panic!("a notice");
        };
        assert_eq!(text, "排在第 1 位");
        assert_eq!(
            message_id,
            &crest_proto::MessageId::from_parts(tenant(), notice.event_id)
        );
        let refused = desk_event(&DeskEvent::ChatRefused(ChatRefusedV2 {
            conversation: conversation(),
            group: "general".to_owned(),
            reason: "queue_full".to_owned(),
            handoff_seq: 3,
            text: "full".to_owned(),
        }));
        assert!(matches!(
            reactions(&refused).as_deref(),
            Ok([Reaction::Conversation {
                command: ConversationCommand::DeclineHandoff { .. },
                ..
            }])
        ));
    }
}
