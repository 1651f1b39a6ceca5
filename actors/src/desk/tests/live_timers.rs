//! A desk actor on a node, on tokio's paused time: the node's clock stamps its events and its
//! timers fire when that clock reaches their deadline, without waiting for them.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::node::{Node, NodeConfig};
use crate::ports::clock::{Clock, TokioClock};
use crate::ports::journal::EventJournal;
use crate::test_brain::EchoBrain;
use crate::testkit::{MemoryJournal, NullBus};

#[tokio::test(start_paused = true)]
async fn a_dropped_connection_turns_the_agent_away_when_paused_time_reaches_the_grace_deadline() {
    let journal = Arc::new(MemoryJournal::default());
    let clock = Arc::new(TokioClock::starting_at(T0));
    let config = NodeConfig {
        clock: Arc::clone(&clock) as Arc<dyn Clock>,
        ..NodeConfig::default()
    };
    let grace_ms = config.routing.presence_grace_ms;
    let node = Node::start(
        Arc::clone(&journal) as Arc<dyn EventJournal>,
        Arc::new(NullBus),
        Arc::new(EchoBrain),
        &prometheus::Registry::new(),
        config,
    )
    .await
    .expect("node starts");
    let routing = node.routing();
    for command in [
        set_agent("ann", Presence::Online, &["general"], 1),
        DeskCommand::AgentConnected(agent("ann")),
        DeskCommand::AgentDisconnected(agent("ann")),
    ] {
        routing
            .command(&tenant(), command)
            .await
            .expect("the desk accepts");
    }
    let presence = async || {
        routing
            .query(&tenant(), |state, _| state.agents[&agent("ann")].status)
            .await
            .expect("the desk answers")
    };

    // The drop is stamped with the node's clock, which started at T0 and only moves with tokio.
    let events = || {
        journal
            .envelopes(&crest_proto::StreamId::desk(&tenant()))
            .into_iter()
            .map(|envelope| {
                let event = envelope.decode_event::<DeskEvent>().expect("desk event");
                (event, envelope.timestamp_ms)
            })
            .collect::<Vec<_>>()
    };
    let dropped = events().into_iter().find_map(|(event, at_ms)| match event {
        DeskEvent::AgentConnectionChanged(change) if !change.connected => {
            Some((at_ms, change.away_at_ms))
        }
        _ => None,
    });
    let Some((dropped_at, Some(away_at))) = dropped else {
        panic!("the drop is journaled with a deadline: {:?}", events());
    };
    assert!(
        (T0..T0 + SECOND).contains(&dropped_at),
        "stamped on the node's clock: {dropped_at}"
    );
    assert_eq!(away_at, dropped_at + grace_ms);

    tokio::time::sleep(Duration::from_millis(away_at - SECOND - clock.now_ms())).await;
    assert_eq!(
        presence().await,
        Presence::Online,
        "still in the grace period"
    );

    tokio::time::sleep(Duration::from_millis(2 * SECOND)).await;
    assert_eq!(presence().await, Presence::Away, "the desk's timer fired");
    let turned_away = events().into_iter().find_map(|(event, at_ms)| match event {
        DeskEvent::PresenceChanged(change) if change.status == Presence::Away => Some(at_ms),
        _ => None,
    });
    assert!(
        turned_away.is_some_and(|at_ms| (away_at..away_at + SECOND).contains(&at_ms)),
        "turned away at the deadline ({away_at}): {turned_away:?}"
    );

    node.shutdown().await.expect("node stops");
}
