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
//! * conversation → customer: a closed conversation is no longer the customer's open one;
//! * desk → customer: a merge or its undo changes where the merged customer's messages go;
//! * desk → ticket: a ticket routing opens (a callback, the bot's after-sales request), an SLA
//!   deadline the desk's timers reached;
//! * ticket → desk: what routing watches of open tickets (conversations, pending deadlines);
//!   ticket → agent: tickets assigned to the agent and taken away.

use crest_proto::agent::AgentEvent;
use crest_proto::commands::ConversationCommand;
use crest_proto::events::ConversationEvent;
use crest_proto::ids::StreamKind;
use crest_proto::routing::{DeskEvent, TicketStatus};
use crest_proto::ticket::{Deadline, Sla, TicketEvent};
use crest_proto::{
    AgentId, CodecError, ConversationId, CustomerId, Envelope, MessageId, TenantId, TicketId,
};

use crate::agent::AgentCommand;
use crate::desk::{DeskCommand, HandoffInfo, TicketNews};
use crate::ticket::{Due, NewTicket, TicketChange, TicketCommand};

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
    /// For a customer's identity stream: it was merged into another customer, or a merge of it
    /// was undone (it asks routing again where its messages go).
    CustomerMergesChanged {
        /// The customer.
        customer: CustomerId,
        /// The merge made or undone.
        merge: crest_proto::MergeId,
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
    /// For a ticket.
    Ticket {
        /// The ticket.
        ticket: TicketId,
        /// The command.
        command: TicketCommand,
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
        StreamKind::Ticket => {
            let Some(ticket) = envelope.stream.ticket_id() else {
                return Ok(Vec::new());
            };
            let event = envelope.decode_event::<TicketEvent>()?;
            Ok(ticket_reactions(ticket, event))
        }
        StreamKind::Customer
        | StreamKind::Directory
        | StreamKind::Access
        | StreamKind::Audit
        | StreamKind::Knowledge
        | StreamKind::Channel
        | StreamKind::Proactive => Ok(Vec::new()),
    }
}

/// What routing watches of open tickets (their conversations and SLA deadlines), and the tickets
/// in agents' records.
fn ticket_reactions(ticket: TicketId, event: TicketEvent) -> Vec<Reaction> {
    let tenant = ticket.tenant().clone();
    let record = |agent: AgentId, assigned: bool| Reaction::Agent {
        agent,
        command: AgentCommand::RecordTicket {
            ticket: ticket.clone(),
            assigned,
        },
    };
    let mut reactions = Vec::new();
    let news = match event {
        TicketEvent::Assigned(assigned) => {
            reactions.extend(assigned.previous.map(|agent| record(agent, false)));
            reactions.extend(assigned.assignee.map(|agent| record(agent, true)));
            return reactions;
        }
        TicketEvent::Opened(opened) => {
            reactions.extend(opened.assignee.clone().map(|agent| record(agent, true)));
            TicketNews::Opened {
                kind: opened.kind,
                conversation: opened.conversation,
                deadlines: vec![
                    Deadline {
                        sla: Sla::FirstResponse,
                        due_ms: opened.first_response_due_ms,
                    },
                    Deadline {
                        sla: Sla::Resolution,
                        due_ms: opened.resolution_due_ms,
                    },
                ],
            }
        }
        TicketEvent::StatusChanged(change) => TicketNews::StatusChanged {
            open: matches!(change.status, TicketStatus::Open | TicketStatus::Pending),
            kind: change.kind,
            conversations: change.conversations,
            pending: change.pending,
        },
        TicketEvent::Linked(link) => TicketNews::Linked(link.conversation),
        TicketEvent::Commented(comment) if comment.first_response => {
            TicketNews::Settled(Sla::FirstResponse)
        }
        TicketEvent::SlaBreached(breach) => TicketNews::Settled(breach.sla),
        TicketEvent::Commented(_) => return Vec::new(),
    };
    reactions.push(Reaction::Desk {
        tenant,
        command: DeskCommand::Ticket {
            ticket: ticket.clone(),
            news,
        },
    });
    reactions
}

/// A desk event about a ticket: the command it leads to on the ticket. Besides the tickets routing
/// opens and the deadlines it reaches, journals from before tickets were their own entities hold
/// the desk's ticket changes; they reach the ticket the same way.
fn desk_ticket_reaction(event: DeskEvent) -> Option<Reaction> {
    let change = |ticket: TicketId, change: TicketChange| Reaction::Ticket {
        ticket,
        command: TicketCommand::Change(change),
    };
    Some(match event {
        DeskEvent::TicketCreated(created) => Reaction::Ticket {
            ticket: created.ticket,
            command: TicketCommand::Open(NewTicket {
                kind: created.kind,
                subject: created.subject,
                customer: created.customer,
                conversation: created.conversation,
                assignee: created.assignee,
                created_by: created.created_by,
                due: Due::At {
                    first_response_ms: created.first_response_due_ms,
                    resolution_ms: created.resolution_due_ms,
                },
            }),
        },
        DeskEvent::TicketDeadlineReached(reached) => Reaction::Ticket {
            ticket: reached.ticket,
            command: TicketCommand::CheckDeadline { sla: reached.sla },
        },
        DeskEvent::SlaBreached(breach) => Reaction::Ticket {
            ticket: breach.ticket,
            command: TicketCommand::CheckDeadline {
                sla: Sla::parse(&breach.sla)?,
            },
        },
        DeskEvent::TicketStatusChanged(status) => change(
            status.ticket,
            TicketChange {
                status: Some(status.status),
                ..TicketChange::default()
            },
        ),
        DeskEvent::TicketAssigned(assigned) => change(
            assigned.ticket,
            TicketChange {
                assignee: Some(assigned.assignee),
                ..TicketChange::default()
            },
        ),
        DeskEvent::TicketCommented(comment) => change(
            comment.ticket,
            TicketChange {
                comment: Some((comment.author, comment.text, comment.public)),
                ..TicketChange::default()
            },
        ),
        DeskEvent::TicketLinked(link) => change(
            link.ticket,
            TicketChange {
                link: Some(link.conversation),
                ..TicketChange::default()
            },
        ),
        _ => return None,
    })
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
        | AgentEvent::MessageWritten(_)
        | AgentEvent::TicketAssigned(_)
        | AgentEvent::TicketUnassigned(_) => return Vec::new(),
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
        | ConversationEvent::ProactiveSent(_)
        | ConversationEvent::HandoffDeclined(_)
        | ConversationEvent::LeadProgressed(_)
        | ConversationEvent::LeadCaptured(_) => return Vec::new(),
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
        | DeskEvent::TicketTracked(_)
        | DeskEvent::TicketUntracked(_) => return Vec::new(),
        DeskEvent::CustomersMerged(merged) => {
            return vec![Reaction::CustomerMergesChanged {
                customer: merged.from,
                merge: merged.merge,
            }];
        }
        DeskEvent::CustomerMergeUndone(undone) => {
            return vec![Reaction::CustomerMergesChanged {
                customer: undone.from,
                merge: undone.merge,
            }];
        }
        DeskEvent::TicketCreated(_)
        | DeskEvent::TicketDeadlineReached(_)
        | DeskEvent::TicketStatusChanged(_)
        | DeskEvent::TicketAssigned(_)
        | DeskEvent::TicketCommented(_)
        | DeskEvent::TicketLinked(_)
        | DeskEvent::SlaBreached(_) => return desk_ticket_reaction(event).into_iter().collect(),
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
    fn a_merge_and_its_undo_reach_the_merged_away_customer() {
        use crest_proto::MergeId;
        use crest_proto::customers::{
            CustomerMergeUndone, CustomersMerged, EvidenceKind, MergeEvidence,
        };
        let from = CustomerId::new(&tenant(), "web-1").expect("valid");
        let into = CustomerId::new(&tenant(), "wx-1").expect("valid");
        let merge = MergeId::from_parts(tenant(), 1);
        let merged = desk_event(&DeskEvent::CustomersMerged(CustomersMerged {
            merge: merge.clone(),
            from: from.clone(),
            into: into.clone(),
            reason: "same buyer".to_owned(),
            evidence: MergeEvidence {
                kind: EvidenceKind::VerifiedPhone,
                value: "+8613800138000".to_owned(),
            },
            by: "admin:k".to_owned(),
        }));
        let expected = vec![Reaction::CustomerMergesChanged {
            customer: from.clone(),
            merge: merge.clone(),
        }];
        assert_eq!(reactions(&merged).expect("decodes"), expected);
        let undone = desk_event(&DeskEvent::CustomerMergeUndone(CustomerMergeUndone {
            merge,
            from,
            into,
            by: "admin:k".to_owned(),
        }));
        assert_eq!(reactions(&undone).expect("decodes"), expected);
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
        for kind in [
            StreamKind::Customer,
            StreamKind::Directory,
            StreamKind::Access,
            StreamKind::Audit,
            StreamKind::Knowledge,
            StreamKind::Channel,
            StreamKind::Proactive,
        ] {
            assert!(!Cursor::Reacted.follows(kind), "{kind:?}");
        }
        for kind in [
            StreamKind::Conversation,
            StreamKind::Desk,
            StreamKind::Agent,
            StreamKind::Ticket,
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

    fn ticket() -> TicketId {
        TicketId::from_parts(tenant(), 7)
    }

    fn ann() -> AgentId {
        AgentId::new(&tenant(), "ann").expect("valid")
    }

    fn ticket_event(event: &TicketEvent, seq: u64) -> Envelope {
        wrap(event, StreamId::ticket(&ticket()), seq)
    }

    /// The only reaction to `envelope`: a command for the ticket.
    fn ticket_command(envelope: &Envelope) -> TicketCommand {
        match reactions(envelope).expect("decodes").as_slice() {
            [
                Reaction::Ticket {
                    ticket: to,
                    command,
                },
            ] => {
                assert_eq!(to, &ticket());
                command.clone()
            }
            other => panic!("one ticket command, got {other:?}"),
        }
    }

    /// The reactions to `envelope` for a desk (a ticket's events may reach agents too).
    fn desk_reactions_to(envelope: &Envelope) -> Vec<Reaction> {
        reactions(envelope)
            .expect("decodes")
            .into_iter()
            .filter(|reaction| matches!(reaction, Reaction::Desk { .. }))
            .collect()
    }

    /// The only desk reaction to `envelope`: news of the ticket for its tenant's desk.
    fn desk_news(envelope: &Envelope) -> TicketNews {
        match desk_reactions_to(envelope).as_slice() {
            [
                Reaction::Desk {
                    tenant: to,
                    command:
                        DeskCommand::Ticket {
                            ticket: about,
                            news,
                        },
                },
            ] => {
                assert_eq!(to, &tenant());
                assert_eq!(about, &ticket());
                news.clone()
            }
            other => panic!("news for the desk, got {other:?}"),
        }
    }

    #[test]
    fn a_ticket_the_desk_opens_is_opened_on_the_ticket_with_the_desks_deadlines() {
        use crest_proto::routing::TicketCreated;
        let customer = CustomerId::new(&tenant(), "c-1").expect("valid");
        let created = desk_event(&DeskEvent::TicketCreated(TicketCreated {
            ticket: ticket(),
            kind: "callback".to_owned(),
            subject: "Callback (queue full): hello".to_owned(),
            customer: Some(customer.clone()),
            conversation: Some(conversation()),
            assignee: None,
            created_by: "routing".to_owned(),
            first_response_due_ms: 4_600_000,
            resolution_due_ms: 87_400_000,
        }));
        assert_eq!(
            ticket_command(&created),
            TicketCommand::Open(NewTicket {
                kind: "callback".to_owned(),
                subject: "Callback (queue full): hello".to_owned(),
                customer: Some(customer),
                conversation: Some(conversation()),
                assignee: None,
                created_by: "routing".to_owned(),
                due: Due::At {
                    first_response_ms: 4_600_000,
                    resolution_ms: 87_400_000,
                },
            })
        );
    }

    #[test]
    fn a_deadline_the_desk_reached_asks_the_ticket_to_check_it() {
        use crest_proto::routing::{SlaBreached, TicketDeadlineReached};
        for sla in [Sla::FirstResponse, Sla::Resolution] {
            let reached = desk_event(&DeskEvent::TicketDeadlineReached(TicketDeadlineReached {
                ticket: ticket(),
                sla,
                due_ms: 5_000,
            }));
            assert_eq!(
                ticket_command(&reached),
                TicketCommand::CheckDeadline { sla }
            );
        }
        // A legacy journal's breach: the ticket checks (and records) it; an SLA nobody knows
        // leads nowhere.
        let breach = |sla: &str| {
            desk_event(&DeskEvent::SlaBreached(SlaBreached {
                ticket: ticket(),
                sla: sla.to_owned(),
                due_ms: 5_000,
            }))
        };
        assert_eq!(
            ticket_command(&breach("resolution")),
            TicketCommand::CheckDeadline {
                sla: Sla::Resolution
            }
        );
        assert_eq!(reactions(&breach("lunch")), Ok(Vec::new()));
    }

    #[test]
    fn legacy_desk_ticket_changes_reach_the_ticket_as_changes() {
        use crate::ticket::TicketChange;
        use crest_proto::routing::{
            TicketAssigned, TicketCommented, TicketLinked, TicketStatusChanged,
        };
        let other = ConversationId::from_parts(tenant(), 43);
        let cases = [
            (
                DeskEvent::TicketStatusChanged(TicketStatusChanged {
                    ticket: ticket(),
                    status: TicketStatus::Solved,
                }),
                TicketChange {
                    status: Some(TicketStatus::Solved),
                    ..TicketChange::default()
                },
            ),
            (
                DeskEvent::TicketAssigned(TicketAssigned {
                    ticket: ticket(),
                    assignee: Some(ann()),
                }),
                TicketChange {
                    assignee: Some(Some(ann())),
                    ..TicketChange::default()
                },
            ),
            (
                DeskEvent::TicketAssigned(TicketAssigned {
                    ticket: ticket(),
                    assignee: None,
                }),
                TicketChange {
                    assignee: Some(None),
                    ..TicketChange::default()
                },
            ),
            (
                DeskEvent::TicketCommented(TicketCommented {
                    ticket: ticket(),
                    author: "agent:ann".to_owned(),
                    text: "on its way".to_owned(),
                    public: true,
                }),
                TicketChange {
                    comment: Some(("agent:ann".to_owned(), "on its way".to_owned(), true)),
                    ..TicketChange::default()
                },
            ),
            (
                DeskEvent::TicketLinked(TicketLinked {
                    ticket: ticket(),
                    conversation: other.clone(),
                }),
                TicketChange {
                    link: Some(other),
                    ..TicketChange::default()
                },
            ),
        ];
        for (event, change) in cases {
            assert_eq!(
                ticket_command(&desk_event(&event)),
                TicketCommand::Change(change),
                "{event:?}"
            );
        }
    }

    #[test]
    fn what_the_desk_tracks_of_tickets_leads_nowhere() {
        use crest_proto::routing::{TicketTracked, TicketUntracked};
        let tracked = desk_event(&DeskEvent::TicketTracked(TicketTracked {
            ticket: ticket(),
            kind: "refund".to_owned(),
            conversations: vec![conversation()],
            deadlines: Vec::new(),
        }));
        assert_eq!(reactions(&tracked), Ok(Vec::new()));
        let untracked = desk_event(&DeskEvent::TicketUntracked(TicketUntracked {
            ticket: ticket(),
        }));
        assert_eq!(reactions(&untracked), Ok(Vec::new()));
    }

    #[test]
    fn a_ticket_opening_tells_its_desk_both_deadlines() {
        use crest_proto::ticket::Opened;
        // Assigned from the start or not, the desk hears the same.
        for assignee in [None, Some(ann())] {
            let opened = ticket_event(
                &TicketEvent::Opened(Opened {
                    kind: "refund".to_owned(),
                    subject: "refund please".to_owned(),
                    customer: None,
                    conversation: Some(conversation()),
                    assignee: assignee.clone(),
                    created_by: "api".to_owned(),
                    first_response_due_ms: 61_000,
                    resolution_due_ms: 3_601_000,
                }),
                1,
            );
            assert_eq!(
                desk_news(&opened),
                TicketNews::Opened {
                    kind: "refund".to_owned(),
                    conversation: Some(conversation()),
                    deadlines: vec![
                        Deadline {
                            sla: Sla::FirstResponse,
                            due_ms: 61_000,
                        },
                        Deadline {
                            sla: Sla::Resolution,
                            due_ms: 3_601_000,
                        },
                    ],
                },
                "assignee {assignee:?}"
            );
        }
    }

    #[test]
    fn a_status_change_tells_the_desk_whether_the_ticket_is_open() {
        use crest_proto::ticket::StatusChanged;
        let pending = vec![Deadline {
            sla: Sla::Resolution,
            due_ms: 3_601_000,
        }];
        // (from, to, still open)
        let cases = [
            (TicketStatus::Open, TicketStatus::Solved, false),
            (TicketStatus::Open, TicketStatus::Closed, false),
            (TicketStatus::Solved, TicketStatus::Closed, false),
            (TicketStatus::Open, TicketStatus::Pending, true),
            (TicketStatus::Pending, TicketStatus::Open, true),
            (TicketStatus::Solved, TicketStatus::Open, true),
        ];
        for (from, to, open) in cases {
            let pending = if open { pending.clone() } else { Vec::new() };
            let changed = ticket_event(
                &TicketEvent::StatusChanged(StatusChanged {
                    from,
                    status: to,
                    kind: "refund".to_owned(),
                    conversations: vec![conversation()],
                    pending: pending.clone(),
                }),
                2,
            );
            assert_eq!(
                desk_news(&changed),
                TicketNews::StatusChanged {
                    open,
                    kind: "refund".to_owned(),
                    conversations: vec![conversation()],
                    pending,
                },
                "{from:?} → {to:?}"
            );
        }
    }

    #[test]
    fn a_first_response_a_breach_or_a_link_reaches_the_desk_other_changes_do_not() {
        use crest_proto::ticket::{Assigned, Commented, Linked, SlaBreached};
        let comment = |author: &str, public: bool, first_response: bool| {
            ticket_event(
                &TicketEvent::Commented(Commented {
                    author: author.to_owned(),
                    text: "text".to_owned(),
                    public,
                    first_response,
                }),
                3,
            )
        };
        assert_eq!(
            desk_news(&comment("agent:ann", true, true)),
            TicketNews::Settled(Sla::FirstResponse)
        );
        for (author, public) in [
            ("agent:ann", true),
            ("agent:ann", false),
            ("customer", true),
        ] {
            assert_eq!(
                desk_reactions_to(&comment(author, public, false)),
                [],
                "{author} (public: {public}), no first response"
            );
        }
        let assigned = ticket_event(
            &TicketEvent::Assigned(Assigned {
                assignee: Some(ann()),
                previous: None,
            }),
            4,
        );
        assert_eq!(
            desk_reactions_to(&assigned),
            [],
            "an assignment is nothing to routing"
        );
        for sla in [Sla::FirstResponse, Sla::Resolution] {
            let breached = ticket_event(
                &TicketEvent::SlaBreached(SlaBreached {
                    sla,
                    due_ms: 61_000,
                }),
                5,
            );
            assert_eq!(desk_news(&breached), TicketNews::Settled(sla));
        }
        let other = ConversationId::from_parts(tenant(), 43);
        let linked = ticket_event(
            &TicketEvent::Linked(Linked {
                conversation: other.clone(),
            }),
            6,
        );
        assert_eq!(desk_news(&linked), TicketNews::Linked(other));
    }
}
