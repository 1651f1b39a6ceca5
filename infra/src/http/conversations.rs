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
use super::views::{conversation_view, event_view, rfc3339};
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
/// conversation (internal notes left out); for a customer merged into another, that customer's.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/customers/{customer}/conversation",
    tag = "conversations",
    params(super::openapi::TenantPath, super::openapi::CustomerPath),
    responses(
        (status = 200, description = "The open conversation (of the customer this one is merged into, if merged), internal notes left out.", body = crest_proto::api::ConversationView),
    )
)]
pub async fn get_customer_conversation(
    State(state): State<AppState>,
    Path((raw_tenant, raw_customer)): Path<(String, String)>,
) -> Result<Json<ConversationView>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let customer =
        CustomerId::new(&tenant, raw_customer).map_err(|error| ApiError::invalid_id(&error))?;
    // A customer merged into another writes into that customer's open conversation.
    let owner = super::customer_merges::merge_chain(&state, &customer)
        .await?
        .pop()
        .unwrap_or_else(|| customer.clone());
    let open = state.node.region().open_conversation(&owner).await?;
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

/// `GET …/customers/{customer}/conversations`: every conversation of the customer and of the
/// customers merged into it, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CustomerHistory {
    /// The customer id.
    pub customer: String,
    /// The customers merged into this one, directly or through others (their conversations are
    /// listed too, each under its own `customer`).
    pub merged_customers: Vec<String>,
    /// How many conversations they have had.
    pub total: usize,
    /// The newest `limit` of them, newest first, with their messages (internal notes included).
    pub conversations: Vec<HistoryEntry>,
}

/// One conversation of a customer's history.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// The conversation (its `customer` is the customer whose conversation it is: this customer
    /// or one merged into it).
    #[serde(flatten)]
    pub conversation: ConversationView,
    /// RFC 3339 time the customer's pointer to it was opened.
    pub opened_at: String,
    /// RFC 3339 time it stopped being the customer's open conversation (`None`: still open).
    pub ended_at: Option<String>,
}

/// A conversation in a customer stream: opened and ended times (ms).
struct Opened {
    conversation: ConversationId,
    opened_ms: u64,
    ended_ms: Option<u64>,
}

/// The conversations `customer`'s stream opened, oldest first.
async fn opened_conversations(
    state: &AppState,
    customer: &CustomerId,
) -> Result<Vec<Opened>, ApiError> {
    let stream = StreamId::customer(customer);
    let history = read_all(state.node.journal().as_ref(), &stream, 0)
        .await
        .map_err(journal_error)?;
    let mut opened: Vec<Opened> = Vec::new();
    for stored in history {
        let Ok(envelope) = stored.envelope() else {
            continue;
        };
        let Ok(event) = envelope.decode_event::<CustomerEvent>() else {
            continue;
        };
        match event {
            CustomerEvent::ConversationOpened(open) => opened.push(Opened {
                conversation: open.conversation,
                opened_ms: envelope.timestamp_ms,
                ended_ms: None,
            }),
            CustomerEvent::ConversationEnded(ended) => {
                if let Some(entry) = opened
                    .iter_mut()
                    .rev()
                    .find(|entry| entry.conversation == ended.conversation)
                {
                    entry.ended_ms.get_or_insert(envelope.timestamp_ms);
                }
            }
            CustomerEvent::IdentityRecorded(_) | CustomerEvent::MergeInvolved(_) => {}
        }
    }
    Ok(opened)
}

/// `GET /v1/tenants/{tenant}/customers/{customer}/conversations`: the customer's whole history,
/// whatever the channel, with the conversations of every customer merged into it, for agents
/// (internal notes included).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/customers/{customer}/conversations",
    tag = "conversations",
    params(super::openapi::TenantPath, super::openapi::CustomerPath, HistoryQuery),
    responses(
        (status = 200, description = "The conversations of the customer and of the customers merged into it, newest first (an unknown customer has none).", body = CustomerHistory),
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
    let merged = state.node.routing().absorbed_customers(&customer).await?;
    let mut opened = opened_conversations(&state, &customer).await?;
    for other in &merged {
        opened.extend(opened_conversations(&state, other).await?);
    }
    opened.sort_by(|first, second| {
        (second.opened_ms, &second.conversation).cmp(&(first.opened_ms, &first.conversation))
    });
    let mut conversations = Vec::new();
    for entry in opened.iter().take(limit) {
        if let Some(conversation) = state
            .node
            .region()
            .conversation_state(&entry.conversation)
            .await?
        {
            conversations.push(HistoryEntry {
                conversation: conversation_view(&conversation),
                opened_at: rfc3339(entry.opened_ms),
                ended_at: entry.ended_ms.map(rfc3339),
            });
        }
    }
    Ok(Json(CustomerHistory {
        customer: customer.key().to_owned(),
        merged_customers: merged.iter().map(|other| other.key().to_owned()).collect(),
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
