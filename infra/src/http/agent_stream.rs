//! `GET /v1/tenants/{t}/agents/{agent}/stream`: the agent's live WebSocket. It sends JSON text
//! frames `{"kind":"snapshot","agent":{…}}` first, then `{"kind":"desk","event":{…}}` for routing
//! events about the agent or their groups (offers, withdrawals, assignments, queue changes),
//! `{"kind":"ticket","event":{…}}` when a ticket is assigned to the agent or taken away
//! (`agent.ticket_assigned`, `agent.ticket_unassigned` from the agent's record), and
//! `{"kind":"conversation","conversation":ID,"event":{…}}` for every event of the agent's chats
//! (customer messages included). While at least one connection is open the agent
//! counts as connected; when the last one closes the agent turns away after the grace period
//! (`crest serve --presence-grace-secs`) unless a connection opens again.

use std::collections::HashMap;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Path, State};
use axum::response::Response;
use crest_actors::agent::AgentCommand;
use crest_proto::envelope::EventMeta;
use crest_proto::routing::DeskEvent;
use crest_proto::{AgentId, ConversationId, Envelope, StreamId, TenantId};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::agents::{agent_id, seat};
use super::conversation_routing::effects_delivered;
use super::error::ApiError;
use super::pii::{PiiView, send_frame};
use super::views::event_view;
use super::{AppState, tenant};

/// Upgrades to the agent's WebSocket (404 if the agent has no seat).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/agents/{agent}/stream",
    tag = "agents",
    params(super::openapi::TenantPath, super::openapi::AgentPath, ("access_token" = Option<String>, Query, description = "The credential, for clients that cannot set headers on a WebSocket.")),
    responses(
        (status = 101, description = "Switched to a WebSocket: JSON text frames `{\"kind\": \"snapshot\" | \"desk\" | \"ticket\" | \"conversation\", …}`."),
    )
)]
pub async fn agent_stream(
    State(state): State<AppState>,
    Path((raw_tenant, raw_agent)): Path<(String, String)>,
    view: Option<Extension<PiiView>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let view = view.map_or(PiiView::Masked, |Extension(view)| view);
    let tenant = tenant(&raw_tenant)?;
    let agent = agent_id(&tenant, &raw_agent)?;
    let snapshot = seat(&state, &tenant, &agent).await?;
    let snapshot =
        snapshot.ok_or_else(|| ApiError::not_found("no such agent; create it with PUT"))?;
    let place = state.limits.open_socket(&tenant)?;
    Ok(upgrade.on_upgrade(move |socket| async move {
        run(socket, state, tenant, agent, snapshot, view).await;
        drop(place);
    }))
}

async fn run(
    socket: WebSocket,
    state: AppState,
    tenant: TenantId,
    agent: AgentId,
    snapshot: Value,
    view: PiiView,
) {
    let node = state.node.connections_node().to_owned();
    connection(
        &state,
        &agent,
        AgentCommand::OpenConnection { node: node.clone() },
    )
    .await;
    serve(socket, &state, &tenant, &agent, snapshot, view).await;
    connection(&state, &agent, AgentCommand::CloseConnection { node }).await;
}

/// Records a connection opening or closing on the agent's record; the reactor tells routing of
/// the agent's first and last connection (the answer waits for that, briefly).
async fn connection(state: &AppState, agent: &AgentId, command: AgentCommand) {
    let watch = state.node.reactor().watch(&StreamId::agent(agent));
    match state
        .node
        .region()
        .agent_command(agent, command, EventMeta::default())
        .await
    {
        Ok(ack) => {
            effects_delivered(watch, ack.appended_to).await;
        }
        Err(error) => tracing::warn!(%agent, %error, "agent connection change not recorded"),
    }
}

async fn serve(
    mut socket: WebSocket,
    state: &AppState,
    tenant: &TenantId,
    agent: &AgentId,
    snapshot: Value,
    view: PiiView,
) {
    let mut desk = state.node.feed().subscribe(&StreamId::desk(tenant));
    let mut record = state.node.feed().subscribe(&StreamId::agent(agent));
    let (forward, mut forwarded) = mpsc::channel::<Value>(256);
    let mut watched: HashMap<ConversationId, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut groups: Vec<String> = snapshot["groups"]
        .as_array()
        .map(|groups| {
            groups
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for chat in snapshot["chats"].as_array().into_iter().flatten() {
        if let Some(id) = chat
            .as_str()
            .and_then(|id| ConversationId::parse(tenant, id).ok())
        {
            watch(state, &mut watched, &forward, id);
        }
    }
    if send_frame(
        &mut socket,
        &json!({"kind": "snapshot", "agent": snapshot}),
        view,
    )
    .await
    .is_err()
    {
        stop_all(watched);
        return;
    }
    loop {
        tokio::select! {
            received = desk.recv() => match received {
                Ok(envelope) => {
                    let Some(relevant) = relevance(&envelope, agent, &mut groups) else { continue };
                    match relevant {
                        Relevance::Watch(conversation) => watch(state, &mut watched, &forward, conversation),
                        Relevance::Unwatch(conversation) => {
                            if let Some(task) = watched.remove(&conversation) {
                                task.abort();
                            }
                        }
                        Relevance::Inform => {}
                    }
                    let frame = json!({"kind": "desk", "event": event_view(&envelope)});
                    if send_frame(&mut socket, &frame, view).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    let frame = json!({"kind": "lagged", "missed": missed, "hint": "GET the agent and its queues again"});
                    if send_frame(&mut socket, &frame, view).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Closed) => break,
            },
            received = record.recv() => match received {
                Ok(envelope) => {
                    if !envelope.event_type.starts_with("agent.ticket_") {
                        continue;
                    }
                    let frame = json!({"kind": "ticket", "event": event_view(&envelope)});
                    if send_frame(&mut socket, &frame, view).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            },
            Some(frame) = forwarded.recv() => {
                if send_frame(&mut socket, &frame, view).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    stop_all(watched);
}

fn stop_all(watched: HashMap<ConversationId, tokio::task::JoinHandle<()>>) {
    for (_, task) in watched {
        task.abort();
    }
}

/// Forwards the live events of one of the agent's chats.
fn watch(
    state: &AppState,
    watched: &mut HashMap<ConversationId, tokio::task::JoinHandle<()>>,
    forward: &mpsc::Sender<Value>,
    conversation: ConversationId,
) {
    if watched.contains_key(&conversation) {
        return;
    }
    let mut live = state
        .node
        .feed()
        .subscribe(&StreamId::conversation(&conversation));
    let forward = forward.clone();
    let key = conversation.key();
    let task = tokio::spawn(async move {
        loop {
            match live.recv().await {
                Ok(envelope) => {
                    let frame = json!({"kind": "conversation", "conversation": key, "event": event_view(&envelope)});
                    if forward.send(frame).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    });
    watched.insert(conversation, task);
}

enum Relevance {
    Inform,
    Watch(ConversationId),
    Unwatch(ConversationId),
}

/// Whether a desk event concerns `agent` (or one of their groups), and what it changes.
fn relevance(envelope: &Envelope, agent: &AgentId, groups: &mut Vec<String>) -> Option<Relevance> {
    let event = envelope.decode_event::<DeskEvent>().ok()?;
    let in_groups = |group: &str, groups: &[String]| groups.iter().any(|g| g == group);
    match event {
        DeskEvent::AgentProfileSet(profile) if &profile.agent == agent => {
            groups.clone_from(&profile.groups);
            Some(Relevance::Inform)
        }
        DeskEvent::PresenceChanged(change) if &change.agent == agent => Some(Relevance::Inform),
        DeskEvent::AgentConnectionChanged(change) if &change.agent == agent => {
            Some(Relevance::Inform)
        }
        DeskEvent::ChatOffered(offer) if &offer.agent == agent => Some(Relevance::Inform),
        DeskEvent::OfferWithdrawn(withdrawn) if &withdrawn.agent == agent => {
            Some(Relevance::Inform)
        }
        DeskEvent::ChatAssigned(assigned) if &assigned.agent == agent => {
            Some(Relevance::Watch(assigned.conversation))
        }
        DeskEvent::ChatAssigned(assigned) if assigned.from.as_ref() == Some(agent) => {
            Some(Relevance::Unwatch(assigned.conversation))
        }
        DeskEvent::ChatEnded(ended) if ended.agent.as_ref() == Some(agent) => {
            Some(Relevance::Unwatch(ended.conversation))
        }
        DeskEvent::ChatQueued(queued) if in_groups(&queued.group, groups) => {
            Some(Relevance::Inform)
        }
        DeskEvent::ChatOverflowed(overflow)
            if in_groups(&overflow.to, groups) || in_groups(&overflow.from, groups) =>
        {
            Some(Relevance::Inform)
        }
        DeskEvent::ChatRefused(refused) if in_groups(&refused.group, groups) => {
            Some(Relevance::Inform)
        }
        _ => None,
    }
}
