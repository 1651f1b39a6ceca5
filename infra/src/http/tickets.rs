//! After-sales tickets: create, read, list, change (status, assignee, comments, linked
//! conversations). SLA breaches are desk events (`GET …/routing/events`) and show in the ticket.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use crest_actors::desk::{DeskCommand, DeskState, NewTicket, Ticket, TicketChange};
use crest_proto::routing::TicketStatus;
use crest_proto::{ConversationId, CustomerId, TenantId, TicketId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::agents::agent_id;
use super::error::ApiError;
use super::views::rfc3339;
use super::{AppState, tenant};

/// Custom SLA of a new ticket, in seconds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaBody {
    first_response_s: Option<u64>,
    resolution_s: Option<u64>,
}

/// Body of `POST …/tickets`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostTicket {
    kind: String,
    subject: Option<String>,
    customer: Option<String>,
    conversation: Option<String>,
    assignee: Option<String>,
    created_by: Option<String>,
    sla: Option<SlaBody>,
}

const KINDS: [&str; 6] = [
    "return",
    "refund",
    "complaint",
    "exchange",
    "callback",
    "other",
];

/// `POST /v1/tenants/{t}/tickets` → 201 with the ticket.
pub async fn post_ticket(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
    body: Result<Json<PostTicket>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Json(body) = body?;
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
    let (first_response_s, resolution_s) = body
        .sla
        .map_or((None, None), |sla| (sla.first_response_s, sla.resolution_s));
    if first_response_s == Some(0) || resolution_s == Some(0) {
        return Err(ApiError::bad_request(
            "invalid_sla",
            "SLA durations are at least 1 second",
        ));
    }
    let ticket = TicketId::generate(&tenant);
    state
        .node
        .routing()
        .command(
            &tenant,
            DeskCommand::CreateTicket(NewTicket {
                ticket: ticket.clone(),
                kind: body.kind,
                subject,
                customer,
                conversation,
                assignee,
                created_by,
                first_response_s,
                resolution_s,
            }),
        )
        .await?;
    let view = ticket_view(&state, &tenant, ticket).await?;
    Ok((StatusCode::CREATED, view))
}

fn ticket_id(tenant: &TenantId, raw: &str) -> Result<TicketId, ApiError> {
    TicketId::parse(tenant, raw).map_err(|error| ApiError::invalid_id(&error))
}

/// `GET /v1/tenants/{t}/tickets/{id}`
pub async fn get_ticket(
    State(state): State<AppState>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let id = ticket_id(&tenant, &raw_id)?;
    ticket_view(&state, &tenant, id).await
}

async fn ticket_view(
    state: &AppState,
    tenant: &TenantId,
    id: TicketId,
) -> Result<Json<Value>, ApiError> {
    let key = id.key();
    let view = state
        .node
        .routing()
        .query(tenant, move |desk: &DeskState, now| {
            desk.tickets.get(&id).map(|ticket| render(&id, ticket, now))
        })
        .await?;
    view.map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no ticket {key}")))
}

fn render(id: &TicketId, ticket: &Ticket, now_ms: u64) -> Value {
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
        "breached": ticket.breached,
        "overdue": ticket.overdue(now_ms).iter().map(|(sla, _)| *sla).collect::<Vec<_>>(),
        "comments": ticket.comments.iter().map(|(author, text, public, at)| json!({
            "author": author, "text": text, "public": public, "at": rfc3339(*at),
        })).collect::<Vec<_>>(),
    })
}

/// A comment in `PATCH …/tickets/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    author: String,
    text: String,
    #[serde(default = "default_public")]
    public: bool,
}

const fn default_public() -> bool {
    true
}

/// Body of `PATCH …/tickets/{id}`: every field optional; `"assignee": null` unassigns.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchTicket {
    status: Option<TicketStatus>,
    #[serde(default, deserialize_with = "explicit_option")]
    assignee: Option<Option<String>>,
    comment: Option<CommentBody>,
    link_conversation: Option<String>,
}

fn explicit_option<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// `PATCH /v1/tenants/{t}/tickets/{id}`
pub async fn patch_ticket(
    State(state): State<AppState>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
    body: Result<Json<PatchTicket>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let id = ticket_id(&tenant, &raw_id)?;
    let Json(body) = body?;
    let assignee = match body.assignee {
        Some(Some(agent)) => Some(Some(agent_id(&tenant, &agent)?)),
        Some(None) => Some(None),
        None => None,
    };
    let comment = match body.comment {
        Some(comment) => {
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
    state
        .node
        .routing()
        .command(
            &tenant,
            DeskCommand::UpdateTicket {
                ticket: id.clone(),
                change: TicketChange {
                    status: body.status,
                    assignee,
                    comment,
                    link,
                },
            },
        )
        .await?;
    ticket_view(&state, &tenant, id).await
}

/// Query of `GET …/tickets`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<TicketStatus>,
    conversation: Option<String>,
}

/// `GET /v1/tenants/{t}/tickets?status=open&conversation=ID`: newest first, at most 500.
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
    let status = query.status;
    let tickets = state
        .node
        .routing()
        .query(&tenant, move |desk, now| {
            desk.tickets
                .iter()
                .rev()
                .filter(|(_, ticket)| status.is_none_or(|status| ticket.status == status))
                .filter(|(_, ticket)| {
                    conversation
                        .as_ref()
                        .is_none_or(|conversation| ticket.conversations.contains(conversation))
                })
                .take(500)
                .map(|(id, ticket)| render(id, ticket, now))
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(json!({ "tickets": tickets })))
}
