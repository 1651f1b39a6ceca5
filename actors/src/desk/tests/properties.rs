//! Property: the desk's invariants hold over random command sequences.

use proptest::prelude::*;

use super::*;

const AGENTS: [&str; 3] = ["ann", "bob", "cid"];
const GROUPS: [&str; 2] = ["g1", "g2"];
const CONVERSATIONS: u128 = 6;

/// One random step: a command shape and how much time passes before it.
#[derive(Debug, Clone)]
enum Op {
    SetAgent {
        agent: usize,
        status: Option<usize>,
        groups: Option<usize>,
        capacity: Option<u16>,
    },
    Connect(usize),
    Disconnect(usize),
    Handoff {
        conversation: u128,
        group: usize,
        angry: bool,
        transfer: bool,
        redeliver: bool,
    },
    /// Accept the `n`-th open offer (modulo their number); a wrong agent if `wrong`.
    Accept {
        n: usize,
        wrong: bool,
    },
    /// Decline the `n`-th open offer.
    Decline {
        n: usize,
    },
    Transfer {
        conversation: u128,
        agent: usize,
        group: usize,
        take_over: bool,
        with_handoff: bool,
    },
    Finish(u128),
    Tick,
    /// The bot's refund (or return) flow on a conversation.
    AfterSales {
        conversation: u128,
        refund: bool,
    },
    /// News of a ticket: one the desk tracks (the `n`-th, modulo their number) or, if `other` (or
    /// none is tracked), one of a few ids it may not know.
    TicketNews {
        n: usize,
        other: bool,
        news: News,
    },
}

/// The shape of a ticket's news.
#[derive(Debug, Clone)]
enum News {
    /// Opened (elsewhere: by an agent or the API) with short SLAs, from a conversation.
    Opened { conversation: u128 },
    /// Reopened or back from pending, linked to a conversation, the resolution SLA pending.
    Open { conversation: u128 },
    /// Solved or closed.
    Done,
    /// A conversation linked.
    Linked(u128),
    /// The first-response (or resolution) SLA met or breached.
    Settled { first_response: bool },
}

fn op() -> impl Strategy<Value = Op> {
    let agent = 0..AGENTS.len();
    let conversation = 0..CONVERSATIONS;
    prop_oneof![
        3 => (
            agent.clone(),
            proptest::option::of(0..3usize),
            proptest::option::of(0..3usize),
            proptest::option::of(0..=3u16),
        )
            .prop_map(|(agent, status, groups, capacity)| Op::SetAgent {
                agent,
                status,
                groups,
                capacity,
            }),
        1 => agent.clone().prop_map(Op::Connect),
        1 => agent.clone().prop_map(Op::Disconnect),
        4 => (conversation.clone(), 0..GROUPS.len(), any::<bool>(), prop::bool::weighted(0.2), prop::bool::weighted(0.1))
            .prop_map(|(conversation, group, angry, transfer, redeliver)| Op::Handoff {
                conversation,
                group,
                angry,
                transfer,
                redeliver,
            }),
        4 => (any::<usize>(), prop::bool::weighted(0.1)).prop_map(|(n, wrong)| Op::Accept { n, wrong }),
        2 => any::<usize>().prop_map(|n| Op::Decline { n }),
        2 => (conversation.clone(), agent, 0..GROUPS.len(), any::<bool>(), any::<bool>()).prop_map(
            |(conversation, agent, group, take_over, with_handoff)| Op::Transfer {
                conversation,
                agent,
                group,
                take_over,
                with_handoff,
            }
        ),
        2 => conversation.clone().prop_map(Op::Finish),
        3 => Just(Op::Tick),
        2 => (conversation.clone(), any::<bool>())
            .prop_map(|(conversation, refund)| Op::AfterSales { conversation, refund }),
        4 => (any::<usize>(), prop::bool::weighted(0.2), news(conversation))
            .prop_map(|(n, other, news)| Op::TicketNews { n, other, news }),
    ]
}

fn news(conversation: std::ops::Range<u128>) -> impl Strategy<Value = News> {
    prop_oneof![
        1 => conversation.clone().prop_map(|conversation| News::Opened { conversation }),
        1 => conversation.clone().prop_map(|conversation| News::Open { conversation }),
        2 => Just(News::Done),
        1 => conversation.prop_map(News::Linked),
        2 => any::<bool>().prop_map(|first_response| News::Settled { first_response }),
    ]
}

fn step() -> impl Strategy<Value = (Op, u64)> {
    (op(), prop_oneof![Just(0u64), 1..5_000u64, 5_000..70_000u64])
}

/// Turns a random step into a command at `now_ms`, using the live state to pick existing offers
/// and tickets.
fn command_of(
    op: &Op,
    state: &DeskState,
    handoff_seqs: &mut BTreeMap<u128, u64>,
    now_ms: u64,
) -> DeskCommand {
    let open_offers: Vec<(ConversationId, AgentId)> = state
        .chats
        .iter()
        .filter_map(|(conversation, chat)| match &chat.stage {
            ChatStage::Offered { agent, .. } => Some((conversation.clone(), agent.clone())),
            _ => None,
        })
        .collect();
    match op {
        Op::SetAgent {
            agent: index,
            status,
            groups,
            capacity,
        } => DeskCommand::SetAgent {
            agent: agent(AGENTS[*index]),
            status: status.map(|s| [Presence::Online, Presence::Away, Presence::Offline][s]),
            groups: groups.map(|g| match g {
                0 => vec!["g1".to_owned()],
                1 => vec!["g2".to_owned()],
                _ => vec!["g1".to_owned(), "g2".to_owned()],
            }),
            capacity: *capacity,
            languages: None,
        },
        Op::Connect(index) => DeskCommand::AgentConnected(agent(AGENTS[*index])),
        Op::Disconnect(index) => DeskCommand::AgentDisconnected(agent(AGENTS[*index])),
        Op::Handoff {
            conversation,
            group,
            angry,
            transfer,
            redeliver,
        } => {
            let seq = handoff_seqs.entry(*conversation).or_insert(0);
            if !*redeliver || *seq == 0 {
                *seq += 1;
            }
            let mut info = handoff(*conversation, GROUPS[*group]);
            info.handoff_seq = *seq;
            if *angry {
                info.summary.emotion = Some(Emotion {
                    label: "anger".to_owned(),
                    score: 0.9,
                });
            }
            if *transfer {
                info.reason = HandoffReason::Transferred("someone".to_owned());
            }
            DeskCommand::Handoff(info)
        }
        Op::Accept { n, wrong } => match open_offers.get(n % open_offers.len().max(1)) {
            Some((conversation, offered)) => {
                let agent = if *wrong {
                    AGENTS
                        .iter()
                        .map(|name| agent(name))
                        .find(|candidate| candidate != offered)
                        .expect("three agents")
                } else {
                    offered.clone()
                };
                DeskCommand::Accept {
                    agent,
                    conversation: conversation.clone(),
                }
            }
            None => accept(AGENTS[n % AGENTS.len()], (*n as u128) % CONVERSATIONS),
        },
        Op::Decline { n } => match open_offers.get(n % open_offers.len().max(1)) {
            Some((conversation, offered)) => DeskCommand::Decline {
                agent: offered.clone(),
                conversation: conversation.clone(),
            },
            None => DeskCommand::Tick,
        },
        Op::Transfer {
            conversation,
            agent: index,
            group,
            take_over,
            with_handoff,
        } => {
            let handoff = with_handoff.then(|| {
                let seq = handoff_seqs.entry(*conversation).or_insert(0);
                *seq += 1;
                let mut info = handoff(*conversation, GROUPS[*group]);
                info.reason = HandoffReason::Supervisor;
                info.handoff_seq = *seq;
                info
            });
            DeskCommand::TransferToAgent {
                conversation: conv(*conversation),
                agent: agent(AGENTS[*index]),
                take_over: *take_over,
                handoff,
            }
        }
        Op::Finish(conversation) => finished(*conversation),
        Op::Tick => DeskCommand::Tick,
        Op::AfterSales {
            conversation,
            refund,
        } => DeskCommand::BotAfterSales {
            conversation: conv(*conversation),
            customer: customer(*conversation),
            kind: if *refund { "refund" } else { "return" }.to_owned(),
            text: "refund please".to_owned(),
        },
        Op::TicketNews { n, other, news } => {
            let tracked = state.tickets.keys().nth(n % state.tickets.len().max(1));
            let ticket = match tracked {
                Some(ticket) if !*other => ticket.clone(),
                _ => ticket_id(1_000 + (*n as u128) % 4),
            };
            let kind = state
                .tickets
                .get(&ticket)
                .map_or_else(|| "complaint".to_owned(), |known| known.kind.clone());
            let news = match news {
                News::Opened { conversation } => TicketNews::Opened {
                    kind,
                    conversation: Some(conv(*conversation)),
                    deadlines: vec![
                        deadline(Sla::FirstResponse, now_ms + 30 * SECOND),
                        deadline(Sla::Resolution, now_ms + 90 * SECOND),
                    ],
                },
                News::Open { conversation } => TicketNews::StatusChanged {
                    open: true,
                    kind,
                    conversations: vec![conv(*conversation)],
                    pending: vec![deadline(Sla::Resolution, now_ms + 60 * SECOND)],
                },
                News::Done => TicketNews::StatusChanged {
                    open: false,
                    kind,
                    conversations: Vec::new(),
                    pending: Vec::new(),
                },
                News::Linked(conversation) => TicketNews::Linked(conv(*conversation)),
                News::Settled { first_response } => TicketNews::Settled(if *first_response {
                    Sla::FirstResponse
                } else {
                    Sla::Resolution
                }),
            };
            DeskCommand::Ticket { ticket, news }
        }
    }
}

/// Checks that the ticket indexes agree with the tracked tickets: every conversation of a tracked
/// ticket finds it, and nothing else; every deadline is due in the index.
fn check_tickets(state: &DeskState, now_ms: u64) -> Result<(), TestCaseError> {
    for conversation in 0..CONVERSATIONS {
        let found: Vec<&TicketId> = state
            .tickets
            .open_for(&conv(conversation))
            .map(|(id, _)| id)
            .collect();
        let expected: Vec<&TicketId> = state
            .tickets
            .iter()
            .filter(|(_, ticket)| ticket.conversations.contains(&conv(conversation)))
            .map(|(id, _)| id)
            .collect();
        prop_assert_eq!(
            found,
            expected,
            "open tickets of conversation {}",
            conversation
        );
    }
    let mut all: Vec<(u64, TicketId, Sla)> = state
        .tickets
        .iter()
        .flat_map(|(id, ticket)| {
            ticket
                .deadlines
                .iter()
                .map(move |deadline| (deadline.due_ms, id.clone(), deadline.sla))
        })
        .collect();
    all.sort();
    all.dedup();
    let far = now_ms + 365 * 86_400 * SECOND;
    let due: Vec<(u64, TicketId, Sla)> = state
        .tickets
        .due(far)
        .into_iter()
        .map(|(id, deadline)| (deadline.due_ms, id, deadline.sla))
        .collect();
    prop_assert_eq!(due, all, "the deadline index holds every tracked deadline");
    Ok(())
}

/// Checks the desk's invariants on `state`.
fn check_state(state: &DeskState) -> Result<(), TestCaseError> {
    let mut holders: BTreeMap<&ConversationId, Vec<(&AgentId, &str)>> = BTreeMap::new();
    for (name, seat) in &state.agents {
        for conversation in &seat.chats {
            holders
                .entry(conversation)
                .or_default()
                .push((name, "chat"));
        }
        for conversation in &seat.offers {
            holders
                .entry(conversation)
                .or_default()
                .push((name, "offer"));
        }
    }
    for (conversation, held) in &holders {
        prop_assert!(
            held.len() == 1,
            "{conversation} is held by several agents: {held:?}"
        );
        let (holder, how) = held[0];
        let chat = state.chats.get(*conversation);
        prop_assert!(
            chat.is_some(),
            "{conversation} held by {holder} but not in routing"
        );
        let stage = chat.map(|chat| &chat.stage);
        let agrees = match (how, stage) {
            ("offer", Some(ChatStage::Offered { agent, .. })) => agent == holder,
            ("chat", Some(ChatStage::Assigned { agent, .. })) => agent == holder,
            _ => false,
        };
        prop_assert!(
            agrees,
            "{conversation}: {how} of {holder} but stage {stage:?}"
        );
    }
    for (conversation, chat) in &state.chats {
        let expected = match &chat.stage {
            ChatStage::Waiting => None,
            ChatStage::Offered { agent, .. } => Some((agent, "offer")),
            ChatStage::Assigned { agent, .. } => Some((agent, "chat")),
        };
        let actual = holders.get(conversation).map(|held| held[0]);
        prop_assert_eq!(
            actual,
            expected,
            "stage of {} disagrees with the seats",
            conversation
        );
    }
    Ok(())
}

fn load(state: &DeskState, agent: &AgentId) -> usize {
    state
        .agents
        .get(agent)
        .map_or(0, |seat| seat.chats.len() + seat.offers.len())
}

/// Walks the events of one step on a copy of the state before it, checking each decision.
fn check_step(
    before: &DeskState,
    events: &[DeskEvent],
    now_ms: u64,
    explicit_transfer: bool,
) -> Result<(), TestCaseError> {
    let mut state = before.clone();
    for event in events {
        let old_stage = match event {
            DeskEvent::ChatAssigned(ChatAssigned { conversation, .. })
            | DeskEvent::ChatOffered(ChatOffered { conversation, .. }) => {
                state.chats.get(conversation).map(|chat| chat.stage.clone())
            }
            _ => None,
        };
        let seq = state.seq + 1;
        state.apply_event(event, seq, now_ms);
        match event {
            DeskEvent::ChatOffered(offer) => {
                prop_assert_eq!(
                    old_stage,
                    Some(ChatStage::Waiting),
                    "only waiting chats are offered"
                );
                let seat = &state.agents[&offer.agent];
                prop_assert_eq!(
                    seat.status,
                    Presence::Online,
                    "offer to an agent not online"
                );
                prop_assert!(
                    seat.groups.contains(&offer.group),
                    "offer outside the agent's groups"
                );
                prop_assert!(
                    load(&state, &offer.agent) <= usize::from(seat.capacity),
                    "offer beyond capacity: {:?}",
                    offer
                );
            }
            DeskEvent::ChatAssigned(assigned) => {
                let seat = &state.agents[&assigned.agent];
                match old_stage {
                    Some(ChatStage::Assigned { agent: owner, .. }) => {
                        prop_assert!(
                            explicit_transfer
                                && matches!(assigned.reason.as_str(), "transfer" | "take_over")
                                && assigned.from.as_ref() == Some(&owner),
                            "reassigned from {} without a transfer: {:?}",
                            owner,
                            assigned
                        );
                        prop_assert!(load(&state, &assigned.agent) <= usize::from(seat.capacity));
                    }
                    Some(ChatStage::Offered { agent: offered, .. })
                        if offered == assigned.agent =>
                    {
                        // An offer turned into a chat: no new load.
                        prop_assert!(assigned.reason == "accepted" || explicit_transfer);
                    }
                    other => {
                        prop_assert!(
                            explicit_transfer,
                            "assigned from {:?} without a transfer: {:?}",
                            other,
                            assigned
                        );
                        prop_assert!(
                            load(&state, &assigned.agent) <= usize::from(seat.capacity),
                            "transfer beyond capacity: {:?}",
                            assigned
                        );
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn routing_invariants_hold_for_any_command_sequence(
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let mut desk = Desk::new();
        desk.run(
            DeskCommand::ConfigureGroup {
                group: "g1".to_owned(),
                config: GroupConfig {
                    overflow_to: Some("g2".to_owned()),
                    overflow_after_s: 60,
                    max_waiting: 10,
                    offer_timeout_s: 20,
                },
            },
            T0,
        );
        desk.run(
            DeskCommand::ConfigureGroup {
                group: "g2".to_owned(),
                config: GroupConfig {
                    overflow_to: None,
                    overflow_after_s: 60,
                    max_waiting: 2,
                    offer_timeout_s: 30,
                },
            },
            T0,
        );
        let mut now = T0;
        let mut handoff_seqs = BTreeMap::new();
        for (op, advance) in steps {
            now += advance;
            let command = command_of(&op, &desk.state, &mut handoff_seqs, now);
            let explicit_transfer = matches!(command, DeskCommand::TransferToAgent { .. });
            let before = desk.state.clone();
            // `try_run` checks that a rejection changes nothing.
            let accepted = desk.try_run(command.clone(), now);
            if let Ok(outcome) = &accepted {
                check_step(&before, &outcome.events, now, explicit_transfer)?;
                // The last assignment of a chat in a decision is where the chat is (what the
                // reactor delivers to the conversation, in order).
                let mut last_assigned = BTreeMap::new();
                for event in &outcome.events {
                    match event {
                        DeskEvent::ChatAssigned(assigned) => {
                            last_assigned.insert(assigned.conversation.clone(), Some(assigned.agent.clone()));
                        }
                        DeskEvent::ChatEnded(ended) => {
                            last_assigned.insert(ended.conversation.clone(), None);
                        }
                        _ => {}
                    }
                }
                for (conversation, agent) in last_assigned {
                    let Some(agent) = agent else { continue };
                    let owner = desk.state.chats.get(&conversation).map(|chat| chat.stage.clone());
                    prop_assert!(
                        matches!(&owner, Some(ChatStage::Assigned { agent: owner, .. }) if owner == &agent),
                        "assigned {} to {} but stage {:?}",
                        conversation,
                        agent,
                        owner
                    );
                }
            }
            check_state(&desk.state)?;
            check_tickets(&desk.state, now)?;
            let replayed = desk.replayed();
            prop_assert_eq!(&replayed, &desk.state, "replay differs after {:?}", command);
            prop_assert_eq!(next_deadline(&replayed), next_deadline(&desk.state));
            prop_assert_eq!(
                &snapshot_round_trip(&desk.state),
                &desk.state,
                "a snapshot differs after {:?}",
                command
            );
            // Every accepted command runs the timers due: none is left overdue. (A rejected
            // command changes nothing, timers included; the actor's own tick fires them.)
            if let (Ok(_), Some(deadline)) = (&accepted, next_deadline(&desk.state)) {
                prop_assert!(deadline > now, "a timer at {} is overdue at {}", deadline, now);
            }
        }
    }
}
