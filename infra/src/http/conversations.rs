//! Reading conversations: state, a customer's open conversation, and the event log.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use crest_actors::ports::journal::read_all;
use crest_proto::api::{ConversationView, EventView};
use crest_proto::events::CustomerEvent;
use crest_proto::{ConversationId, CustomerId, StreamId, TenantId};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use super::views::{conversation_view, event_view};
use super::{AppState, tenant};

/// Most events one `GET …/events` returns.
pub const MAX_EVENTS_PAGE: usize = 1000;

/// Parses `{tenant}` and `{id}`.
pub fn conversation_id(
    raw_tenant: &str,
    raw_id: &str,
) -> Result<(TenantId, ConversationId), ApiError> {
    let tenant = tenant(raw_tenant)?;
    let id =
        ConversationId::parse(&tenant, raw_id).map_err(|error| ApiError::invalid_id(&error))?;
    Ok((tenant, id))
}

/// `GET /v1/tenants/{tenant}/conversations/{id}`
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/conversations/{id}",
    tag = "conversations",
    params(super::openapi::TenantPath, super::openapi::UlidPath),
    responses(
        (status = 200, description = "The conversation.", body = crest_proto::api::ConversationView),
    )
)]
pub async fn get_conversation(
    State(state): State<AppState>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
) -> Result<Json<ConversationView>, ApiError> {
    let (_, id) = conversation_id(&raw_tenant, &raw_id)?;
    let conversation = state.node.region().conversation_state(&id).await?;
    let conversation =
        conversation.ok_or_else(|| ApiError::not_found(format!("no conversation {id}")))?;
    Ok(Json(conversation_view(&conversation)))
}

/// `GET /v1/tenants/{tenant}/customers/{customer}/conversation`: the customer's view of their open
/// conversation (internal notes left out).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/customers/{customer}/conversation",
    tag = "conversations",
    params(super::openapi::TenantPath, super::openapi::CustomerPath),
    responses(
        (status = 200, description = "The open conversation, internal notes left out.", body = crest_proto::api::ConversationView),
    )
)]
pub async fn get_customer_conversation(
    State(state): State<AppState>,
    Path((raw_tenant, raw_customer)): Path<(String, String)>,
) -> Result<Json<ConversationView>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let customer =
        CustomerId::new(&tenant, raw_customer).map_err(|error| ApiError::invalid_id(&error))?;
    let open = state.node.region().open_conversation(&customer).await?;
    let id = open.ok_or_else(|| {
        ApiError::not_found(format!("customer {customer} has no open conversation"))
    })?;
    let conversation = state.node.region().conversation_state(&id).await?;
    // The pointer is written before the conversation's first event; until then there is nothing.
    let conversation = conversation.ok_or_else(|| {
        ApiError::not_found(format!("customer {customer} has no open conversation"))
    })?;
    // The customer's view: agents' internal notes are never shown to the customer.
    let mut view = conversation_view(&conversation);
    view.messages.retain(|message| !message.internal);
    Ok(Json(view))
}

/// Most conversations one `GET …/customers/{customer}/conversations` returns.
pub const MAX_HISTORY_PAGE: usize = 100;

/// Query of `GET …/customers/{customer}/conversations`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// At most this many, newest first (default 20, clamped to 1-100).
    #[param(maximum = 18446744073709551615_u64)]
    pub limit: Option<usize>,
}

/// `GET …/customers/{customer}/conversations`: every conversation of the customer, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CustomerHistory {
    /// The customer id.
    pub customer: String,
    /// How many conversations the customer has had.
    pub total: usize,
    /// The newest `limit` of them, newest first, with their messages (internal notes included).
    pub conversations: Vec<ConversationView>,
}

/// `GET /v1/tenants/{tenant}/customers/{customer}/conversations`: the customer's whole history,
/// whatever the channel, for agents (internal notes included).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/customers/{customer}/conversations",
    tag = "conversations",
    params(super::openapi::TenantPath, super::openapi::CustomerPath, HistoryQuery),
    responses(
        (status = 200, description = "The customer's conversations, newest first (an unknown customer has none).", body = CustomerHistory),
    )
)]
pub async fn get_customer_conversations(
    State(state): State<AppState>,
    Path((raw_tenant, raw_customer)): Path<(String, String)>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<CustomerHistory>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let customer =
        CustomerId::new(&tenant, raw_customer).map_err(|error| ApiError::invalid_id(&error))?;
    let Query(query) =
        query.map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))?;
    let limit = query.limit.unwrap_or(20).clamp(1, MAX_HISTORY_PAGE);
    let stream = StreamId::customer(&customer);
    let history = read_all(state.node.journal().as_ref(), &stream, 0)
        .await
        .map_err(journal_error)?;
    let opened: Vec<ConversationId> = history
        .iter()
        .filter_map(|stored| {
            let event = stored
                .envelope()
                .ok()?
                .decode_event::<CustomerEvent>()
                .ok()?;
            match event {
                CustomerEvent::ConversationOpened(opened) => Some(opened.conversation),
                CustomerEvent::ConversationEnded(_) => None,
            }
        })
        .collect();
    let mut conversations = Vec::new();
    for id in opened.iter().rev().take(limit) {
        if let Some(conversation) = state.node.region().conversation_state(id).await? {
            conversations.push(conversation_view(&conversation));
        }
    }
    Ok(Json(CustomerHistory {
        customer: customer.key().to_owned(),
        total: opened.len(),
        conversations,
    }))
}

/// Query of `GET …/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Return events with a sequence number above this (default 0).
    #[serde(default)]
    #[param(maximum = 18446744073709551615_u64)]
    pub after: u64,
    /// At most this many (default and maximum 1000; clamped to 1-1000).
    #[param(maximum = 18446744073709551615_u64)]
    pub limit: Option<usize>,
}

/// `GET /v1/tenants/{tenant}/conversations/{id}/events?after=SEQ`
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/conversations/{id}/events",
    tag = "conversations",
    params(super::openapi::TenantPath, super::openapi::UlidPath, EventsQuery),
    responses(
        (status = 200, description = "`{\"conversation_id\", \"last_seq\", \"events\": [EventView]}`, oldest first.", body = Object),
    )
)]
pub async fn get_events(
    State(state): State<AppState>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (_, id) = conversation_id(&raw_tenant, &raw_id)?;
    let Query(query) = query?;
    let limit = query
        .limit
        .unwrap_or(MAX_EVENTS_PAGE)
        .clamp(1, MAX_EVENTS_PAGE);
    let stream = StreamId::conversation(&id);
    let journal = state.node.journal();
    let last_seq = journal.last_seq(&stream).await.map_err(journal_error)?;
    if last_seq == 0 {
        return Err(ApiError::not_found(format!("no conversation {id}")));
    }
    let events = read_events(journal.as_ref(), &stream, query.after, limit).await?;
    Ok(Json(serde_json::json!({
        "conversation_id": id.to_string(),
        "last_seq": last_seq,
        "events": events,
    })))
}

/// Reads and renders events after `after`.
pub async fn read_events(
    journal: &dyn crest_actors::ports::EventJournal,
    stream: &StreamId,
    after: u64,
    limit: usize,
) -> Result<Vec<EventView>, ApiError> {
    let stored = journal
        .read(stream, after, limit)
        .await
        .map_err(journal_error)?;
    stored
        .iter()
        .map(|event| {
            event
                .envelope()
                .map(|envelope| event_view(&envelope))
                .map_err(journal_error)
        })
        .collect()
}

/// A journal failure as the API answers it (503, retry).
pub fn journal_error(error: crest_actors::ports::JournalError) -> ApiError {
    ApiError::unavailable("journal_unavailable", error.to_string(), 1)
}
