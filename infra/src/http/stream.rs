//! `GET /v1/tenants/{tenant}/conversations/{id}/stream`: a WebSocket that sends the conversation's
//! events as JSON text frames: first those after `?after=SEQ` from the journal, then new ones live.

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use crest_proto::StreamId;
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use super::conversations::{EventsQuery, MAX_EVENTS_PAGE, conversation_id, read_events};
use super::error::ApiError;
use super::pii::{PiiView, send_frame};
use super::views::event_view;

/// Upgrades to a WebSocket streaming the conversation's events.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/conversations/{id}/stream",
    tag = "conversations",
    params(super::openapi::TenantPath, super::openapi::UlidPath, super::conversations::EventsQuery, ("access_token" = Option<String>, Query, description = "The credential, for clients that cannot set headers on a WebSocket.")),
    responses(
        (status = 101, description = "Switched to a WebSocket: JSON text frames, each an `EventView`: first those after `after`, then new ones live."),
    )
)]
pub async fn stream_events(
    State(state): State<AppState>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
    query: Result<Query<EventsQuery>, QueryRejection>,
    view: Option<Extension<PiiView>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let view = view.map_or(PiiView::Masked, |Extension(view)| view);
    let (tenant, id) = conversation_id(&raw_tenant, &raw_id)?;
    let Query(query) = query?;
    let place = state.limits.open_socket(&tenant)?;
    let stream = StreamId::conversation(&id);
    Ok(upgrade.on_upgrade(move |socket| async move {
        send_events(socket, state, stream, query.after, view).await;
        drop(place);
    }))
}

async fn send_events(
    mut socket: WebSocket,
    state: AppState,
    stream: StreamId,
    after: u64,
    view: PiiView,
) {
    // Subscribe before catching up, so nothing falls between the two.
    let mut live = state.node.feed().subscribe(&stream);
    let mut sent = after;
    if catch_up(&mut socket, &state, &stream, &mut sent, view)
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            received = live.recv() => match received {
                Ok(envelope) => {
                    if envelope.seq <= sent {
                        continue;
                    }
                    if envelope.seq > sent + 1 && catch_up(&mut socket, &state, &stream, &mut sent, view).await.is_err() {
                        return;
                    }
                    if envelope.seq == sent + 1 {
                        if send_frame(&mut socket, &event_view(&envelope), view).await.is_err() {
                            return;
                        }
                        sent = envelope.seq;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    if catch_up(&mut socket, &state, &stream, &mut sent, view).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Sends journaled events after `sent`, advancing it.
async fn catch_up(
    socket: &mut WebSocket,
    state: &AppState,
    stream: &StreamId,
    sent: &mut u64,
    view: PiiView,
) -> Result<(), ()> {
    loop {
        let events = read_events(
            state.node.journal().as_ref(),
            stream,
            *sent,
            MAX_EVENTS_PAGE,
        )
        .await
        .map_err(|_| ())?;
        let count = events.len();
        for event in events {
            let seq = event.seq;
            send_frame(socket, &event, view).await?;
            *sent = seq;
        }
        if count < MAX_EVENTS_PAGE {
            return Ok(());
        }
    }
}
