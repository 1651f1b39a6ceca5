//! After-sales tickets: create, read, list, change (status, assignee, comments, linked
//! conversations), and a ticket's own events. Each ticket is its own entity: a create or a change
//! is one command to it, answered from its reply; listings come from the ticket board (a read
//! model), never from reading ticket streams. SLA breaches are ticket events and show in the ticket.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use std::time::Duration;

use crest_actors::shard::recorder::RecordError;
use crest_actors::ticket::{Due, NewTicket, Ticket, TicketChange, TicketCommand, TicketRejection};
use crest_proto::envelope::EventMeta;
use crest_proto::routing::TicketStatus;
use crest_proto::ticket::Deadline;
use crest_proto::{ConversationId, CustomerId, StreamId, TenantId, TicketId};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::agents::agent_id;
use super::body::Object;
use super::conversations::{EventsQuery, MAX_EVENTS_PAGE, journal_error, read_events};
use super::error::ApiError;
use super::views::rfc3339;
use super::{AppState, tenant};
use crate::projections::tickets::{TicketBoard, TicketFilter};

/// Custom SLA of a new ticket, in seconds.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaBody {
    /// Seconds to the first response (default: the node's setting).
    #[serde(default, deserialize_with = "super::whole::optional")]
    #[schema(minimum = 1, maximum = 315_360_000)]
    first_response_s: Option<u64>,
    /// Seconds to the resolution (default: the node's setting).
    #[serde(default, deserialize_with = "super::whole::optional")]
    #[schema(minimum = 1, maximum = 315_360_000)]
    resolution_s: Option<u64>,
}

/// Body of `POST …/tickets`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostTicket {
    /// What the ticket is about.
    #[schema(value_type = TicketKind)]
    kind: String,
    /// One line: at least one visible character, at most 500 bytes of UTF-8 (default: "<kind>
    /// request").
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    subject: Option<String>,
    /// The customer.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._@+:-]+$")]
    customer: Option<String>,
    /// The conversation it came from.
    #[schema(pattern = r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")]
    conversation: Option<String>,
    /// The agent who owns it.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._@+:-]+$")]
    assignee: Option<String>,
    /// The agent who opened it (default: the API).
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._@+:-]+$")]
    created_by: Option<String>,
    /// A custom SLA.
    #[schema(value_type = Option<SlaBody>)]
    sla: Option<Object<SlaBody>>,
}

/// What a ticket is about.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // the contract's list of [`KINDS`]; the handlers hold kinds as strings
pub enum TicketKind {
    /// Return.
    Return,
    /// Refund.
    Refund,
    /// Complaint.
    Complaint,
    /// Exchange.
    Exchange,
    /// Callback.
    Callback,
    /// Other.
    Other,
}

/// Longest custom SLA duration: ten years, in seconds.
const MAX_SLA_S: u64 = 315_360_000;

const KINDS: [&str; 6] = [
    "return",
    "refund",
    "complaint",
    "exchange",
    "callback",
    "other",
];

/// `POST /v1/tenants/{t}/tickets` → 201 with the ticket.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/tickets",
    tag = "tickets",
    params(super::openapi::TenantPath),
    request_body = PostTicket,
    responses(
        (status = 201, description = "Opened: the ticket.", body = Object),
    )
)]
pub async fn post_ticket(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
    body: Result<Json<Object<PostTicket>>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Json(Object(body)) = body?;
    if !KINDS.contains(&body.kind.as_str()) {
        return Err(ApiError::bad_request(
            "invalid_kind",
            format!("kind must be one of {}", KINDS.join(", ")),
        ));
    }
    let subject = body
        .subject
        .unwrap_or_else(|| format!("{} request", body.kind));
    if subject.trim().is_empty() || subject.len() > 500 {
        return Err(ApiError::bad_request(
            "invalid_subject",
            "subject must be 1-500 bytes",
        ));
    }
    let customer = body
        .customer
        .map(|customer| CustomerId::new(&tenant, customer))
        .transpose()
        .map_err(|error| ApiError::invalid_id(&error))?;
    let conversation = body
        .conversation
        .map(|id| ConversationId::parse(&tenant, &id))
        .transpose()
        .map_err(|error| ApiError::invalid_id(&error))?;
    let assignee = body
        .assignee
        .map(|agent| agent_id(&tenant, &agent))
        .transpose()?;
    let created_by = match body.created_by {
        Some(agent) => format!("agent:{}", agent_id(&tenant, &agent)?.key()),
        None => "api".to_owned(),
    };
    let (first_response_s, resolution_s) = body.sla.map_or((None, None), |Object(sla)| {
        (sla.first_response_s, sla.resolution_s)
    });
    let in_range = |seconds: Option<u64>| seconds.is_none_or(|s| (1..=MAX_SLA_S).contains(&s));
    if !in_range(first_response_s) || !in_range(resolution_s) {
        return Err(ApiError::bad_request(
            "invalid_sla",
            format!("SLA durations are 1 to {MAX_SLA_S} seconds (ten years)"),
        ));
    }
    let settings = state.node.routing().settings();
    let due = Due::After {
        first_response_s: first_response_s.unwrap_or(settings.first_response_sla_s),
        resolution_s: resolution_s.unwrap_or(settings.resolution_sla_s),
    };
    let ticket = TicketId::generate(&tenant);
    let command = TicketCommand::Open(NewTicket {
        kind: body.kind,
        subject,
        customer,
        conversation,
        assignee,
        created_by,
        due,
    });
    let view = command_and_view(&state, &ticket, command).await?;
    Ok((StatusCode::CREATED, view))
}

fn ticket_id(tenant: &TenantId, raw: &str) -> Result<TicketId, ApiError> {
    TicketId::parse(tenant, raw).map_err(|error| ApiError::invalid_id(&error))
}

/// Sends one command to the ticket and answers with the ticket after it, once the listings have
/// it too (bounded: the answer never waits longer than [`BOARD_WAIT`]).
async fn command_and_view(
    state: &AppState,
    id: &TicketId,
    command: TicketCommand,
) -> Result<Json<Value>, ApiError> {
    let ack = state
        .node
        .region()
        .ticket_command(id, command, EventMeta::default())
        .await
        .map_err(ticket_error)?;
    if let Some(seq) = ack.appended_to {
        TicketBoard::wait_for(&state.projections.tickets, id, seq, BOARD_WAIT).await;
    }
    let ticket = ack
        .answer
        .ok_or_else(|| ApiError::not_found(format!("no ticket {}", id.key())))?;
    Ok(Json(render(id, &ticket, state.node.now_ms())))
}

/// Longest wait for the listings to show a ticket's change before answering anyway.
const BOARD_WAIT: Duration = Duration::from_secs(2);

fn ticket_error(error: RecordError<TicketRejection>) -> ApiError {
    match error {
        RecordError::Rejected(rejection) => match &rejection {
            TicketRejection::Unknown => ApiError::not_found("unknown ticket"),
            TicketRejection::AlreadyOpened => {
                ApiError::new(StatusCode::CONFLICT, "conflict", rejection.to_string())
            }
            TicketRejection::BadTransition { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "invalid_transition",
                rejection.to_string(),
            ),
            TicketRejection::Invalid(reason) => ApiError::bad_request("invalid", reason.clone()),
            TicketRejection::Closed => {
                ApiError::new(StatusCode::CONFLICT, "ticket_closed", rejection.to_string())
            }
        },
        RecordError::Journal(error) => ApiError::unavailable(
            "journal_unavailable",
            format!("not stored ({error}); retry"),
            1,
        ),
        RecordError::Unavailable => {
            ApiError::unavailable("unavailable", "the ticket is restarting; retry", 1)
        }
    }
}

/// `GET /v1/tenants/{t}/tickets/{id}`
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/tickets/{id}",
    tag = "tickets",
    params(super::openapi::TenantPath, super::openapi::UlidPath),
    responses(
        (status = 200, description = "The ticket.", body = Object),
    )
)]
pub async fn get_ticket(
    State(state): State<AppState>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let id = ticket_id(&tenant, &raw_id)?;
    let ticket = state
        .node
        .region()
        .ticket_state(&id)
        .await?
        .and_then(|state| state.ticket)
        .ok_or_else(|| ApiError::not_found(format!("no ticket {}", id.key())))?;
    Ok(Json(render(&id, &ticket, state.node.now_ms())))
}

/// `GET /v1/tenants/{t}/tickets/{id}/events?after=SEQ&limit=N`: the ticket's own events
/// (`ticket.*`), oldest first; answers like the conversation events route.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/tickets/{id}/events",
    tag = "tickets",
    params(super::openapi::TenantPath, super::openapi::UlidPath, super::conversations::EventsQuery),
    responses(
        (status = 200, description = "`{\"ticket\", \"last_seq\", \"events\": [EventView]}`, oldest first.", body = Object),
    )
)]
pub async fn get_ticket_events(
    State(state): State<AppState>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let id = ticket_id(&tenant, &raw_id)?;
    let Query(query) = query?;
    let limit = query
        .limit
        .unwrap_or(MAX_EVENTS_PAGE)
        .clamp(1, MAX_EVENTS_PAGE);
    let stream = StreamId::ticket(&id);
    let journal = state.node.journal();
    let last_seq = journal.last_seq(&stream).await.map_err(journal_error)?;
    if last_seq == 0 {
        return Err(ApiError::not_found(format!("no ticket {}", id.key())));
    }
    let events = read_events(journal.as_ref(), &stream, query.after, limit).await?;
    Ok(Json(json!({
        "ticket": id.key(),
        "last_seq": last_seq,
        "events": events,
    })))
}

fn render(id: &TicketId, ticket: &Ticket, now_ms: u64) -> Value {
    let sla_names = |deadlines: Vec<Deadline>| -> Vec<&'static str> {
        deadlines
            .iter()
            .map(|deadline| deadline.sla.as_str())
            .collect()
    };
    json!({
        "id": id.key(),
        "kind": ticket.kind,
        "subject": ticket.subject,
        "status": ticket.status.as_str(),
        "customer": ticket.customer.as_ref().map(CustomerId::key),
        "conversations": ticket.conversations.iter().map(ConversationId::key).collect::<Vec<_>>(),
        "assignee": ticket.assignee.as_ref().map(|agent| agent.key().to_owned()),
        "created_by": ticket.created_by,
        "created_at": rfc3339(ticket.created_at_ms),
        "first_response_due": rfc3339(ticket.first_response_due_ms),
        "resolution_due": rfc3339(ticket.resolution_due_ms),
        "first_response_at": ticket.first_response_at_ms.map(rfc3339),
        "solved_at": ticket.solved_at_ms.map(rfc3339),
        "breached": ticket.breached.iter().map(|sla| sla.as_str()).collect::<Vec<_>>(),
        "overdue": sla_names(ticket.overdue(now_ms)),
        "comments": ticket.comments.iter().map(|comment| json!({
            "author": comment.author, "text": comment.text, "public": comment.public,
            "at": rfc3339(comment.at_ms),
        })).collect::<Vec<_>>(),
    })
}

/// A comment in `PATCH …/tickets/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    /// `customer`, or the id of the agent writing.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._@+:-]+$")]
    author: String,
    /// At least one visible character, at most 4096 bytes of UTF-8.
    #[schema(min_length = 1, max_length = 4096, pattern = r"\S")]
    text: String,
    /// Whether the customer sees it (default true).
    #[serde(default = "default_public")]
    #[schema(default = true)]
    public: bool,
}

const fn default_public() -> bool {
    true
}

/// Body of `PATCH …/tickets/{id}`: every field optional; `"assignee": null` unassigns.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTicket {
    /// The next state (open → pending → solved → closed; a solved ticket may reopen).
    status: Option<TicketStatus>,
    /// The agent who owns it; `null` unassigns.
    #[serde(default, deserialize_with = "explicit_option")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._@+:-]+$")]
    assignee: Option<Option<String>>,
    /// A comment to add.
    #[schema(value_type = Option<CommentBody>)]
    comment: Option<Object<CommentBody>>,
    /// A conversation to link.
    #[schema(pattern = r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")]
    link_conversation: Option<String>,
}

fn explicit_option<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// `PATCH /v1/tenants/{t}/tickets/{id}`
#[utoipa::path(
    patch,
    path = "/v1/tenants/{tenant}/tickets/{id}",
    tag = "tickets",
    params(super::openapi::TenantPath, super::openapi::UlidPath),
    request_body = PatchTicket,
    responses(
        (status = 200, description = "The ticket after the change.", body = Object),
    )
)]
pub async fn patch_ticket(
    State(state): State<AppState>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
    body: Result<Json<Object<PatchTicket>>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let id = ticket_id(&tenant, &raw_id)?;
    let Json(Object(body)) = body?;
    let assignee = match body.assignee {
        Some(Some(agent)) => Some(Some(agent_id(&tenant, &agent)?)),
        Some(None) => Some(None),
        None => None,
    };
    let comment = match body.comment {
        Some(Object(comment)) => {
            if comment.text.trim().is_empty() || comment.text.len() > 4096 {
                return Err(ApiError::bad_request(
                    "invalid_comment",
                    "comment text must be 1-4096 bytes",
                ));
            }
            let author = if comment.author == "customer" {
                "customer".to_owned()
            } else {
                format!("agent:{}", agent_id(&tenant, &comment.author)?.key())
            };
            Some((author, comment.text, comment.public))
        }
        None => None,
    };
    let link = body
        .link_conversation
        .map(|id| ConversationId::parse(&tenant, &id))
        .transpose()
        .map_err(|error| ApiError::invalid_id(&error))?;
    let command = TicketCommand::Change(TicketChange {
        status: body.status,
        assignee,
        comment,
        link,
    });
    command_and_view(&state, &id, command).await
}

/// Query of `GET …/tickets`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only tickets in this state.
    status: Option<TicketStatus>,
    /// Only tickets linked to this conversation.
    #[param(pattern = r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")]
    conversation: Option<String>,
}

/// `GET /v1/tenants/{t}/tickets?status=open&conversation=ID`: newest first, at most 500.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/tickets",
    tag = "tickets",
    params(super::openapi::TenantPath, ListQuery),
    responses(
        (status = 200, description = "`{\"tickets\": [...]}`, newest first, at most 500.", body = Object),
    )
)]
pub async fn list_tickets(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Query(query) = query?;
    let conversation = query
        .conversation
        .map(|id| ConversationId::parse(&tenant, &id))
        .transpose()
        .map_err(|error| ApiError::invalid_id(&error))?;
    let filter = TicketFilter {
        status: query.status,
        conversation,
    };
    let now_ms = state.node.now_ms();
    let tickets: Vec<Value> = state
        .projections
        .tickets
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .list(&tenant, &filter, MAX_LISTED)
        .iter()
        .map(|(id, ticket)| render(id, ticket, now_ms))
        .collect();
    Ok(Json(json!({ "tickets": tickets })))
}

/// Most tickets one listing returns.
const MAX_LISTED: usize = 500;
