//! Agent seats: `PUT`/`GET /v1/tenants/{t}/agents/{agent}` (presence, groups, capacity,
//! languages, and the agent's own record: connections and history), the agent's events, and the
//! JSON view of a seat the agent's WebSocket also sends. Offers are in [`super::offers`], the live
//! stream in [`super::agent_stream`].

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use crest_actors::agent::AgentState;
use crest_actors::desk::DeskCommand;
use crest_actors::desk::views::SeatView;
use crest_proto::access::AccessRole;
use crest_proto::routing::Presence;
use crest_proto::{AgentId, ConversationId, StreamId, TenantId};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::body::Object;
use super::conversations::{EventsQuery, MAX_EVENTS_PAGE, journal_error, read_events};
use super::error::ApiError;
use super::queues::group_name;
use super::views::rfc3339;
use super::{AppState, tenant};
use crate::access::{Principal, Role};

/// Parses an agent id.
pub fn agent_id(tenant: &TenantId, raw: &str) -> Result<AgentId, ApiError> {
    AgentId::new(tenant, raw).map_err(|error| ApiError::invalid_id(&error))
}

fn languages(raw: Vec<String>) -> Result<Vec<String>, ApiError> {
    for language in &raw {
        let valid = (2..=8).contains(&language.len())
            && language.chars().all(|c| c.is_ascii_lowercase() || c == '-');
        if !valid {
            return Err(ApiError::bad_request(
                "invalid_language",
                format!("language {language:?} must be a lowercase code such as zh or en"),
            ));
        }
    }
    Ok(raw)
}

/// Body of `PUT …/agents/{agent}`: every field optional; omitted fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutAgent {
    /// Presence.
    status: Option<Presence>,
    /// The skill groups the agent takes chats from (supervisors and admins only).
    #[schema(max_items = 32, value_type = Option<Vec<super::openapi::GroupName>>)]
    groups: Option<Vec<String>>,
    /// Chats at once (supervisors and admins only).
    #[serde(default, deserialize_with = "super::whole::optional")]
    #[schema(minimum = 0, maximum = 100)]
    capacity: Option<u16>,
    /// Languages the agent writes: lowercase codes such as `zh` or `en`.
    #[schema(max_items = 32, value_type = Option<Vec<super::openapi::LanguageCode>>)]
    languages: Option<Vec<String>>,
    /// The seat's login password (admins only; stored as an argon2id hash, never returned).
    #[schema(min_length = 8, max_length = 128)]
    password: Option<String>,
    /// The role the seat's logins get: `agent` (default) or `supervisor` (with `password`).
    login_role: Option<LoginRole>,
}

/// The role a seat's logins get.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoginRole {
    /// Their own seat and their own chats.
    Agent,
    /// Agents' work plus routing, queues, reports and taking chats over.
    Supervisor,
}

impl From<LoginRole> for AccessRole {
    fn from(role: LoginRole) -> Self {
        match role {
            LoginRole::Agent => Self::Agent,
            LoginRole::Supervisor => Self::Supervisor,
        }
    }
}

/// Most skill groups (and languages) of a seat.
const MAX_SEAT_LIST: usize = 32;
/// Most chats an agent holds at once.
const MAX_CAPACITY: u16 = 100;

/// `PUT /v1/tenants/{t}/agents/{agent}`
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/agents/{agent}",
    tag = "agents",
    params(super::openapi::TenantPath, super::openapi::AgentPath),
    request_body = PutAgent,
    responses(
        (status = 200, description = "The seat after the change (created if new).", body = Object),
    )
)]
pub async fn put_agent(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((raw_tenant, raw_agent)): Path<(String, String)>,
    body: Result<Json<Object<PutAgent>>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let agent = agent_id(&tenant, &raw_agent)?;
    let Json(Object(body)) = body?;
    if !principal.may_act_as(&agent) {
        return Err(ApiError::forbidden(
            "this credential may not change another seat",
        ));
    }
    if principal.is_agent() && (body.groups.is_some() || body.capacity.is_some()) {
        return Err(ApiError::forbidden(
            "an agent changes only their own status and languages; groups and capacity are for supervisors",
        ));
    }
    let is_admin = matches!(principal.role(), Role::Tenant(AccessRole::Admin));
    if (body.password.is_some() || body.login_role.is_some()) && !is_admin {
        return Err(ApiError::forbidden("only an admin sets a seat's password"));
    }
    let login_role = body.login_role.map_or(AccessRole::Agent, AccessRole::from);
    if body
        .capacity
        .is_some_and(|capacity| capacity > MAX_CAPACITY)
    {
        return Err(ApiError::bad_request(
            "invalid_capacity",
            format!("capacity must be between 0 and {MAX_CAPACITY} chats"),
        ));
    }
    if body
        .groups
        .as_ref()
        .is_some_and(|groups| groups.len() > MAX_SEAT_LIST)
        || body
            .languages
            .as_ref()
            .is_some_and(|languages| languages.len() > MAX_SEAT_LIST)
    {
        return Err(ApiError::bad_request(
            "too_many",
            format!("a seat has at most {MAX_SEAT_LIST} groups and {MAX_SEAT_LIST} languages"),
        ));
    }
    if body.login_role.is_some() && body.password.is_none() {
        return Err(ApiError::bad_request(
            "invalid_role",
            "\"login_role\" goes with \"password\"",
        ));
    }
    let groups = body
        .groups
        .map(|groups| groups.iter().map(|group| group_name(group)).collect())
        .transpose()?;
    let languages = body.languages.map(languages).transpose()?;
    let detail = format!(
        "status {:?}, groups {:?}, capacity {:?}, languages {:?}",
        body.status, groups, body.capacity, languages
    );
    if let Some(password) = body.password {
        super::access::set_password(&state, &principal, &agent, password, login_role).await?;
    }
    let hub = state.node.routing();
    hub.command(
        &tenant,
        DeskCommand::SetAgent {
            agent: agent.clone(),
            status: body.status,
            groups,
            capacity: body.capacity,
            languages,
        },
    )
    .await?;
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "agent.changed",
            &principal.actor(),
            &format!("agent:{}", agent.key()),
            &detail,
        )
        .await;
    agent_view(&state, &tenant, agent).await
}

/// `GET /v1/tenants/{t}/agents`: every seat of the tenant (the team, for supervisors and for
/// transfers), read where the tenant's desk runs.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/agents",
    tag = "agents",
    params(super::openapi::TenantPath),
    responses(
        (status = 200, description = "`{agents: [...]}`: each seat as `GET …/agents/{agent}` shows it, without its history, by agent id.", body = Object),
    )
)]
pub async fn list_agents(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let seats = state.node.routing().seats(&tenant).await?;
    let agents: Vec<Value> = seats
        .iter()
        .map(|(agent, seat)| render_seat(agent, seat))
        .collect();
    Ok(Json(json!({ "agents": agents })))
}

/// `GET /v1/tenants/{t}/agents/{agent}`
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/agents/{agent}",
    tag = "agents",
    params(super::openapi::TenantPath, super::openapi::AgentPath),
    responses(
        (status = 200, description = "The seat: status, groups, capacity, languages, chats, offers, history.", body = Object),
    )
)]
pub async fn get_agent(
    State(state): State<AppState>,
    Path((raw_tenant, raw_agent)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let agent = agent_id(&tenant, &raw_agent)?;
    agent_view(&state, &tenant, agent).await
}

/// The seat as routing holds it, with the agent's own record (history, connections per node).
async fn agent_view(
    state: &AppState,
    tenant: &TenantId,
    agent: AgentId,
) -> Result<Json<Value>, ApiError> {
    let record = state.node.region().agent_state(&agent).await?;
    let view = seat(state, tenant, &agent).await?;
    let mut view = view.ok_or_else(|| ApiError::not_found("no such agent; create it with PUT"))?;
    view["history"] = record.as_ref().map_or_else(|| json!({}), render_history);
    Ok(Json(view))
}

/// The agent's own record: chats taken and released, handle times, messages, connections.
fn render_history(record: &AgentState) -> Value {
    json!({
        "chats_taken": record.chats_taken,
        "chats_released": record.chats_released,
        "average_handle_s": record.average_handle_s(),
        "replies_written": record.replies_written,
        "notes_written": record.notes_written,
        "tickets_assigned": record.tickets_assigned,
        "connections": record.connections,
    })
}

/// `GET /v1/tenants/{t}/agents/{agent}/events?after=SEQ&limit=N`: the agent's own events (`agent.*`:
/// connections, profile and status as routing set them, chats taken and released, messages),
/// oldest first; answers like the conversation events route.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/agents/{agent}/events",
    tag = "agents",
    params(super::openapi::TenantPath, super::openapi::AgentPath, super::conversations::EventsQuery),
    responses(
        (status = 200, description = "`{\"agent\", \"last_seq\", \"events\": [EventView]}`, oldest first.", body = Object),
    )
)]
pub async fn get_agent_events(
    State(state): State<AppState>,
    Path((raw_tenant, raw_agent)): Path<(String, String)>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let agent = agent_id(&tenant, &raw_agent)?;
    let Query(query) = query?;
    let limit = query
        .limit
        .unwrap_or(MAX_EVENTS_PAGE)
        .clamp(1, MAX_EVENTS_PAGE);
    let stream = StreamId::agent(&agent);
    let journal = state.node.journal();
    let last_seq = journal.last_seq(&stream).await.map_err(journal_error)?;
    if last_seq == 0 {
        return Err(ApiError::not_found(format!(
            "no events for agent {}; create the seat with PUT",
            agent.key()
        )));
    }
    let events = read_events(journal.as_ref(), &stream, query.after, limit).await?;
    Ok(Json(json!({
        "agent": agent.key(),
        "last_seq": last_seq,
        "events": events,
    })))
}

/// An agent's seat as the API shows it (from the desk's answer to [`DeskQuery::Seat`]).
pub fn render_seat(agent: &AgentId, view: &SeatView) -> Value {
    let seat = &view.seat;
    let offers: Vec<Value> = view
        .offers
        .iter()
        .map(|offer| {
            json!({
                "conversation": offer.conversation.key(),
                "group": offer.group,
                "expires_in_s": offer.expires_in_s,
                "summary": offer.summary,
            })
        })
        .collect();
    json!({
        "agent": agent.key(),
        "status": seat.status.as_str(),
        "groups": seat.groups,
        "capacity": seat.capacity,
        "languages": seat.languages,
        "chats": seat.chats.iter().map(ConversationId::key).collect::<Vec<_>>(),
        "offers": seat.offers.iter().map(ConversationId::key).collect::<Vec<_>>(),
        "offer_details": offers,
        "free": seat.free(),
        "connected": seat.connected,
        "idle_since": (seat.idle_since_ms > 0).then(|| rfc3339(seat.idle_since_ms)),
    })
}

/// The seat of `agent` rendered for the API (`None`: no such agent), read where the desk runs.
pub async fn seat(
    state: &AppState,
    tenant: &TenantId,
    agent: &AgentId,
) -> Result<Option<Value>, ApiError> {
    let seat = state.node.routing().seat(tenant, agent).await?;
    Ok(seat.map(|seat| render_seat(agent, &seat)))
}
