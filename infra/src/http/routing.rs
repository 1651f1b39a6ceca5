//! Agents, offers, handoff, transfer, resolve, customer tiers, queues, groups and the routing table.
//! Every route is documented in the README and in `docs/openapi.yaml`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use crest_actors::desk::{
    ChatStage, DeskCommand, DeskError, DeskRejection, DeskState, GroupConfig, waiting_order,
};
use crest_proto::api::{MAX_TEXT_BYTES, PostMessageResponse};
use crest_proto::commands::ConversationCommand;
use crest_proto::envelope::EventMeta;
use crest_proto::events::HandoffReason;
use crest_proto::ids::validate_channel_message_id;
use crest_proto::routing::{Presence, Tier};
use crest_proto::{AgentId, ConversationId, CustomerId, MessageId, StreamId, TenantId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::conversations::{EventsQuery, MAX_EVENTS_PAGE, conversation_id, read_events};
use super::error::ApiError;
use super::views::rfc3339;
use super::{AppState, tenant};
use crest_actors::reactor::ProgressWatch;
use std::time::Duration;

impl From<DeskError> for ApiError {
    fn from(error: DeskError) -> Self {
        match error {
            DeskError::Rejected(rejection) => match &rejection {
                DeskRejection::UnknownAgent(_) | DeskRejection::UnknownTicket(_) => {
                    Self::not_found(rejection.to_string())
                }
                DeskRejection::NoSuchOffer { .. } => {
                    Self::new(StatusCode::CONFLICT, "no_offer", rejection.to_string())
                }
                DeskRejection::AgentUnavailable { .. } => Self::new(
                    StatusCode::CONFLICT,
                    "agent_unavailable",
                    rejection.to_string(),
                ),
                DeskRejection::NotInRouting(_) => Self::new(
                    StatusCode::CONFLICT,
                    "not_in_routing",
                    rejection.to_string(),
                ),
                DeskRejection::BadTransition { .. } => Self::new(
                    StatusCode::CONFLICT,
                    "invalid_transition",
                    rejection.to_string(),
                ),
                DeskRejection::Invalid(reason) => Self::bad_request("invalid", reason.clone()),
            },
            DeskError::Journal(error) => Self::unavailable(
                "journal_unavailable",
                format!("not stored ({error}); retry"),
                1,
            ),
            DeskError::Unavailable => {
                Self::unavailable("unavailable", "routing is restarting; retry", 1)
            }
        }
    }
}

/// How long an answer waits for the reactor to carry a command's effects to their targets (an
/// accepted offer to the conversation, a handoff to the desk) before answering anyway.
const EFFECTS_WAIT: Duration = Duration::from_secs(2);

/// Waits (bounded) until the reactor delivered the reactions to the events a command appended
/// (`appended_to`: the stream's last sequence number, `None` if it appended nothing): a client's
/// next request then sees the effects. True if they were delivered in time.
async fn effects_delivered(watch: ProgressWatch, appended_to: Option<u64>) -> bool {
    match appended_to {
        None => true,
        Some(seq) => watch.reached(seq, EFFECTS_WAIT).await,
    }
}

/// Parses an agent id.
pub fn agent_id(tenant: &TenantId, raw: &str) -> Result<AgentId, ApiError> {
    AgentId::new(tenant, raw).map_err(|error| ApiError::invalid_id(&error))
}

/// Validates a skill-group name: the rules of a tenant id (lowercase a-z, 0-9, `-`, `_`).
pub fn group_name(raw: &str) -> Result<String, ApiError> {
    TenantId::new(raw).map(|_| raw.to_owned()).map_err(|_| {
        ApiError::bad_request(
            "invalid_group",
            format!("group {raw:?} must be 1-64 characters of lowercase a-z, 0-9, '-' and '_'"),
        )
    })
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutAgent {
    status: Option<Presence>,
    groups: Option<Vec<String>>,
    capacity: Option<u16>,
    languages: Option<Vec<String>>,
}

/// `PUT /v1/tenants/{t}/agents/{agent}`
pub async fn put_agent(
    State(state): State<AppState>,
    Path((raw_tenant, raw_agent)): Path<(String, String)>,
    body: Result<Json<PutAgent>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let agent = agent_id(&tenant, &raw_agent)?;
    let Json(body) = body?;
    let groups = body
        .groups
        .map(|groups| groups.iter().map(|group| group_name(group)).collect())
        .transpose()?;
    let languages = body.languages.map(languages).transpose()?;
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
    agent_view(&state, &tenant, agent).await
}

/// `GET /v1/tenants/{t}/agents/{agent}`
pub async fn get_agent(
    State(state): State<AppState>,
    Path((raw_tenant, raw_agent)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let agent = agent_id(&tenant, &raw_agent)?;
    agent_view(&state, &tenant, agent).await
}

async fn agent_view(
    state: &AppState,
    tenant: &TenantId,
    agent: AgentId,
) -> Result<Json<Value>, ApiError> {
    let view = state
        .node
        .routing()
        .query(tenant, move |desk, now| render_agent(desk, &agent, now))
        .await?;
    view.map(Json)
        .ok_or_else(|| ApiError::not_found("no such agent; create it with PUT"))
}

/// The JSON view of an agent seat.
#[must_use]
pub fn render_agent(desk: &DeskState, agent: &AgentId, now_ms: u64) -> Option<Value> {
    let seat = desk.agents.get(agent)?;
    let offers: Vec<Value> = seat
        .offers
        .iter()
        .filter_map(|conversation| {
            let chat = desk.chats.get(conversation)?;
            let ChatStage::Offered { expires_at_ms, .. } = chat.stage else {
                return None;
            };
            Some(json!({
                "conversation": conversation.key(),
                "group": chat.group,
                "expires_in_s": expires_at_ms.saturating_sub(now_ms).div_ceil(1000),
                "summary": chat.summary,
            }))
        })
        .collect();
    Some(json!({
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
    }))
}

/// `POST /v1/tenants/{t}/agents/{agent}/offers/{conversation}/accept`
pub async fn accept_offer(
    state: State<AppState>,
    path: Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    answer_offer(state, path, true).await
}

/// `POST /v1/tenants/{t}/agents/{agent}/offers/{conversation}/decline`
pub async fn decline_offer(
    state: State<AppState>,
    path: Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    answer_offer(state, path, false).await
}

/// Accepts or declines an agent's offer.
async fn answer_offer(
    State(state): State<AppState>,
    Path((raw_tenant, raw_agent, raw_conversation)): Path<(String, String, String)>,
    accept: bool,
) -> Result<Json<Value>, ApiError> {
    let (tenant, conversation) = conversation_id(&raw_tenant, &raw_conversation)?;
    let agent = agent_id(&tenant, &raw_agent)?;
    let (agent_key, conversation_key) = (agent.key().to_owned(), conversation.key());
    let command = if accept {
        DeskCommand::Accept {
            agent,
            conversation,
        }
    } else {
        DeskCommand::Decline {
            agent,
            conversation,
        }
    };
    let watch = state.node.reactor().watch(&StreamId::desk(&tenant));
    let appended_to = state.node.routing().command(&tenant, command).await?;
    // An accepted chat is answered once the conversation is the agent's (they reply next).
    effects_delivered(watch, appended_to).await;
    Ok(Json(json!({
        "conversation": conversation_key,
        "agent": agent_key,
        "status": if accept { "assigned" } else { "declined" },
    })))
}

/// Body of `POST …/agent-messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostAgentMessage {
    agent: String,
    id: String,
    text: String,
    #[serde(default)]
    internal: bool,
}

fn checked_text(text: &str) -> Result<(), ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::bad_request(
            "empty_text",
            "text must contain at least one visible character",
        ));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(ApiError::bad_request(
            "text_too_long",
            format!(
                "text is {} bytes; the limit is {MAX_TEXT_BYTES} bytes of UTF-8",
                text.len()
            ),
        ));
    }
    Ok(())
}

/// `POST /v1/tenants/{t}/conversations/{id}/agent-messages`: a reply, or an internal note (never
/// shown to the customer; any agent may write one, which is how a supervisor whispers).
pub async fn post_agent_message(
    State(state): State<AppState>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
    body: Result<Json<PostAgentMessage>, JsonRejection>,
) -> Result<Json<PostMessageResponse>, ApiError> {
    let (tenant, conversation) = conversation_id(&raw_tenant, &raw_id)?;
    let Json(body) = body?;
    let agent = agent_id(&tenant, &body.agent)?;
    validate_channel_message_id(&body.id).map_err(|error| ApiError::invalid_id(&error))?;
    checked_text(&body.text)?;
    let command = ConversationCommand::AgentReply {
        agent,
        agent_message_id: body.id.clone(),
        message_id: MessageId::generate(&tenant),
        text: body.text,
        internal: body.internal,
    };
    let meta = EventMeta {
        idempotency_key: Some(body.id),
        ..EventMeta::default()
    };
    let ack = state
        .node
        .region()
        .conversation_command(&conversation, command, meta)
        .await?;
    Ok(Json(PostMessageResponse {
        conversation_id: conversation.to_string(),
        message_id: ack
            .message_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        seq: ack.seq,
        duplicate: ack.duplicate,
    }))
}

/// Body of `POST …/handoff`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostHandoff {
    reason: String,
    group: Option<String>,
}

/// `POST /v1/tenants/{t}/conversations/{id}/handoff`: the customer (reason `customer_request`) or a
/// supervisor (`supervisor`) asks for a human; any other reason is recorded as an escalation.
pub async fn post_handoff(
    State(state): State<AppState>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
    body: Result<Json<PostHandoff>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let (_, conversation) = conversation_id(&raw_tenant, &raw_id)?;
    let Json(body) = body?;
    let group = body.group.as_deref().map(group_name).transpose()?;
    let reason = match body.reason.trim() {
        "" => {
            return Err(ApiError::bad_request(
                "invalid_reason",
                "reason must say why (customer_request, supervisor, or a short text)",
            ));
        }
        "customer_request" | "customer" => HandoffReason::CustomerRequest,
        "supervisor" => HandoffReason::Supervisor,
        other => HandoffReason::Escalation(other.chars().take(200).collect()),
    };
    let watch = state
        .node
        .reactor()
        .watch(&StreamId::conversation(&conversation));
    let ack = state
        .node
        .region()
        .conversation_command(
            &conversation,
            ConversationCommand::RequestHandoff { reason, group },
            EventMeta::default(),
        )
        .await?;
    // Routing hears of the handoff from the conversation's event, through the reactor; the answer
    // waits for that (briefly), so the queue and the offers already show the chat. The position
    // is in `GET …/queues/{group}` and in the notices the customer gets.
    let routed = effects_delivered(watch, ack.appended_to).await;
    Ok(Json(json!({
        "conversation": conversation.key(),
        "status": "queued",
        "seq": ack.seq,
        "routed": routed,
    })))
}

/// Body of `POST …/transfer`: exactly one of `agent` or `group`; `by` is the agent giving the chat
/// away (default: its owner); `take_over` lets a supervisor take a chat outside their groups.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostTransfer {
    agent: Option<String>,
    group: Option<String>,
    by: Option<String>,
    #[serde(default)]
    take_over: bool,
}

/// `POST /v1/tenants/{t}/conversations/{id}/transfer`
pub async fn post_transfer(
    State(state): State<AppState>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
    body: Result<Json<PostTransfer>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let (tenant, conversation) = conversation_id(&raw_tenant, &raw_id)?;
    let Json(body) = body?;
    match (body.agent, body.group) {
        (Some(agent), None) => {
            let agent = agent_id(&tenant, &agent)?;
            // Routing decides (capacity, presence, group) at once; the reactor then gives the
            // conversation to the agent, and the answer waits for that.
            let watch = state.node.reactor().watch(&StreamId::desk(&tenant));
            let appended_to = state
                .node
                .routing()
                .command(
                    &tenant,
                    DeskCommand::TransferToAgent {
                        conversation: conversation.clone(),
                        agent: agent.clone(),
                        take_over: body.take_over,
                        handoff: None,
                    },
                )
                .await?;
            effects_delivered(watch, appended_to).await;
            Ok(Json(json!({
                "conversation": conversation.key(),
                "status": "assigned",
                "agent": agent.key(),
            })))
        }
        (None, Some(group)) => {
            let group = group_name(&group)?;
            let by = body.by.map(|by| agent_id(&tenant, &by)).transpose()?;
            let watch = state
                .node
                .reactor()
                .watch(&StreamId::conversation(&conversation));
            let ack = state
                .node
                .region()
                .conversation_command(
                    &conversation,
                    ConversationCommand::TransferToGroup {
                        by,
                        group: group.clone(),
                    },
                    EventMeta::default(),
                )
                .await?;
            let routed = effects_delivered(watch, ack.appended_to).await;
            Ok(Json(json!({
                "conversation": conversation.key(),
                "status": "queued",
                "group": group,
                "seq": ack.seq,
                "routed": routed,
            })))
        }
        _ => Err(ApiError::bad_request(
            "invalid_transfer",
            "give exactly one of \"agent\" or \"group\"",
        )),
    }
}

/// Body of `POST …/take-over`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostTakeOver {
    supervisor: String,
}

/// `POST /v1/tenants/{t}/conversations/{id}/take-over`: a supervisor owns the chat from now on
/// (from the bot, the queue or another agent).
pub async fn post_take_over(
    State(state): State<AppState>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
    body: Result<Json<PostTakeOver>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let (tenant, conversation) = conversation_id(&raw_tenant, &raw_id)?;
    let Json(body) = body?;
    let supervisor = agent_id(&tenant, &body.supervisor)?;
    let watch = state
        .node
        .reactor()
        .watch(&StreamId::conversation(&conversation));
    let ack = state
        .node
        .region()
        .conversation_command(
            &conversation,
            ConversationCommand::TakeOver {
                supervisor: supervisor.clone(),
            },
            EventMeta::default(),
        )
        .await?;
    // Routing gives the chat to the supervisor if they can take it (online, free capacity); else
    // it stays where it is: `GET …/agents/{supervisor}` shows the outcome.
    let routed = effects_delivered(watch, ack.appended_to).await;
    Ok(Json(json!({
        "conversation": conversation.key(),
        "status": "take_over_requested",
        "supervisor": supervisor.key(),
        "seq": ack.seq,
        "routed": routed,
    })))
}

/// Body of `POST …/resolve`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostResolve {
    agent: Option<String>,
}

/// `POST /v1/tenants/{t}/conversations/{id}/resolve`
pub async fn post_resolve(
    State(state): State<AppState>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
    body: Result<Json<PostResolve>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let (tenant, conversation) = conversation_id(&raw_tenant, &raw_id)?;
    let Json(body) = body?;
    let by = body
        .agent
        .map(|agent| agent_id(&tenant, &agent))
        .transpose()?;
    let watch = state
        .node
        .reactor()
        .watch(&StreamId::conversation(&conversation));
    let ack = state
        .node
        .region()
        .conversation_command(
            &conversation,
            ConversationCommand::Resolve { by },
            EventMeta::default(),
        )
        .await?;
    // Routing frees the agent's capacity when it hears of the resolution (the reactor).
    effects_delivered(watch, ack.appended_to).await;
    Ok(Json(json!({
        "conversation": conversation.key(),
        "status": "resolved",
        "seq": ack.seq,
    })))
}

/// Body of `PUT …/customers/{customer}`: the tier; other customer attributes a merchant sends
/// (name, phone, …) are accepted and not stored (the customer identity stream holds ids only).
#[derive(Debug, Deserialize)]
pub struct PutCustomer {
    tier: Tier,
}

/// `PUT /v1/tenants/{t}/customers/{customer}`
pub async fn put_customer(
    State(state): State<AppState>,
    Path((raw_tenant, raw_customer)): Path<(String, String)>,
    body: Result<Json<PutCustomer>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let customer =
        CustomerId::new(&tenant, raw_customer).map_err(|error| ApiError::invalid_id(&error))?;
    let Json(body) = body?;
    state
        .node
        .routing()
        .command(
            &tenant,
            DeskCommand::SetTier {
                customer: customer.clone(),
                tier: body.tier,
            },
        )
        .await?;
    Ok(Json(
        json!({"customer": customer.key(), "tier": tier_name(body.tier)}),
    ))
}

/// `GET /v1/tenants/{t}/customers/{customer}`
pub async fn get_customer(
    State(state): State<AppState>,
    Path((raw_tenant, raw_customer)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let customer =
        CustomerId::new(&tenant, raw_customer).map_err(|error| ApiError::invalid_id(&error))?;
    let key = customer.key().to_owned();
    let tier = state
        .node
        .routing()
        .query(&tenant, move |desk, _| desk.tier(&customer))
        .await?;
    Ok(Json(json!({"customer": key, "tier": tier_name(tier)})))
}

fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Normal => "normal",
        Tier::Vip => "vip",
    }
}

/// `GET /v1/tenants/{t}/queues/{group}`
pub async fn get_queue(
    State(state): State<AppState>,
    Path((raw_tenant, raw_group)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let group = group_name(&raw_group)?;
    let settings = state.node.routing().settings().clone();
    let view = state
        .node
        .routing()
        .query(&tenant, move |desk, now| {
            render_queue(desk, &group, now, &settings)
        })
        .await?;
    Ok(Json(view))
}

fn render_queue(
    desk: &DeskState,
    group: &str,
    now_ms: u64,
    settings: &crest_actors::desk::DeskSettings,
) -> Value {
    let online: Vec<_> = desk
        .agents
        .values()
        .filter(|seat| seat.status == Presence::Online && seat.groups.iter().any(|g| g == group))
        .collect();
    let online_capacity: u64 = online
        .iter()
        .map(|seat| u64::from(seat.capacity.max(1)))
        .sum();
    let waiting: Vec<Value> = waiting_order(desk, group, now_ms, settings)
        .into_iter()
        .enumerate()
        .filter_map(|(index, (conversation, effective))| {
            let chat = desk.chats.get(&conversation)?;
            Some(json!({
                "conversation": conversation.key(),
                "position": index + 1,
                "priority": effective.round(),
                "base_priority": chat.priority,
                "waiting_s": now_ms.saturating_sub(chat.waiting_since_ms) / 1000,
                "reasons": chat.reasons,
                "customer": chat.customer.key(),
                "tier": tier_name(desk.tier(&chat.customer)),
                "intent": chat.summary.intent,
                "emotion": chat.summary.emotion,
                "estimated_wait_s": crest_actors::desk::actor::estimated_wait_s(index + 1, online_capacity, desk.avg_handle_s),
            }))
        })
        .collect();
    let offered: Vec<Value> = desk
        .chats
        .iter()
        .filter(|(_, chat)| chat.group == group)
        .filter_map(|(conversation, chat)| match &chat.stage {
            ChatStage::Offered {
                agent,
                expires_at_ms,
            } => Some(json!({
                "conversation": conversation.key(),
                "agent": agent.key(),
                "expires_in_s": expires_at_ms.saturating_sub(now_ms).div_ceil(1000),
            })),
            _ => None,
        })
        .collect();
    let assigned = desk
        .chats
        .values()
        .filter(|chat| chat.group == group && matches!(chat.stage, ChatStage::Assigned { .. }))
        .count();
    let config = desk.group_config(group);
    json!({
        "group": group,
        "waiting": waiting,
        "offered": offered,
        "assigned": assigned,
        "agents_online": online.len(),
        "free_capacity": online.iter().map(|seat| u64::from(seat.free())).sum::<u64>(),
        "config": config_json(&config),
    })
}

fn config_json(config: &GroupConfig) -> Value {
    json!({
        "overflow_to": config.overflow_to,
        "overflow_after_s": config.overflow_after_s,
        "max_waiting": config.max_waiting,
        "offer_timeout_s": config.offer_timeout_s,
    })
}

/// Body of `PUT …/queues/{group}`: omitted fields keep their value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutQueue {
    overflow_to: Option<Option<String>>,
    overflow_after_s: Option<u32>,
    max_waiting: Option<u32>,
    offer_timeout_s: Option<u32>,
}

/// `PUT /v1/tenants/{t}/queues/{group}`: the group's overflow, queue cap and offer timeout.
pub async fn put_queue(
    State(state): State<AppState>,
    Path((raw_tenant, raw_group)): Path<(String, String)>,
    body: Result<Json<PutQueue>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let group = group_name(&raw_group)?;
    let Json(body) = body?;
    let hub = state.node.routing();
    let current = {
        let group = group.clone();
        hub.query(&tenant, move |desk, _| desk.group_config(&group))
            .await?
    };
    let overflow_to = match body.overflow_to {
        Some(Some(backup)) => Some(group_name(&backup)?),
        Some(None) => None,
        None => current.overflow_to,
    };
    if overflow_to.as_deref() == Some(group.as_str()) {
        return Err(ApiError::bad_request(
            "invalid_overflow",
            "a group cannot overflow to itself",
        ));
    }
    let offer_timeout_s = body.offer_timeout_s.unwrap_or(current.offer_timeout_s);
    if !(1..=3600).contains(&offer_timeout_s) {
        return Err(ApiError::bad_request(
            "invalid_timeout",
            "offer_timeout_s must be between 1 and 3600",
        ));
    }
    let config = GroupConfig {
        overflow_to,
        overflow_after_s: body.overflow_after_s.unwrap_or(current.overflow_after_s),
        max_waiting: body.max_waiting.unwrap_or(current.max_waiting),
        offer_timeout_s,
    };
    hub.command(
        &tenant,
        DeskCommand::ConfigureGroup {
            group: group.clone(),
            config,
        },
    )
    .await?;
    get_queue(State(state), Path((raw_tenant, raw_group))).await
}

/// `GET /v1/tenants/{t}/routing-table`
pub async fn get_routing_table(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let view = state
        .node
        .routing()
        .query(
            &tenant,
            |desk, _| json!({"routes": desk.routes, "default_group": desk.default_group}),
        )
        .await?;
    Ok(Json(view))
}

/// Body of `PUT …/routing-table`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutRoutingTable {
    routes: BTreeMap<String, String>,
    default_group: Option<String>,
}

/// `PUT /v1/tenants/{t}/routing-table`: replaces the intent → group table.
pub async fn put_routing_table(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
    body: Result<Json<PutRoutingTable>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Json(body) = body?;
    for (intent, group) in &body.routes {
        group_name(group)?;
        if intent.is_empty() || intent.len() > 64 {
            return Err(ApiError::bad_request(
                "invalid_intent",
                "intent names are 1-64 characters",
            ));
        }
    }
    let default_group = group_name(body.default_group.as_deref().unwrap_or("general"))?;
    state
        .node
        .routing()
        .command(
            &tenant,
            DeskCommand::SetRoutes {
                routes: body.routes,
                default_group,
            },
        )
        .await?;
    get_routing_table(State(state), Path(raw_tenant)).await
}

/// `GET /v1/tenants/{t}/routing/events?after=SEQ`: the desk's decisions (offers with their
/// candidates and reasons, assignments, transfers, tickets, SLA breaches), oldest first.
pub async fn get_desk_events(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Query(query) = query?;
    let limit = query
        .limit
        .unwrap_or(MAX_EVENTS_PAGE)
        .clamp(1, MAX_EVENTS_PAGE);
    let events = read_events(
        state.node.journal().as_ref(),
        &StreamId::desk(&tenant),
        query.after,
        limit,
    )
    .await?;
    Ok(Json(json!({ "events": events })))
}

/// Body of `POST …/csat`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostCsat {
    score: u8,
    comment: Option<String>,
}

/// `POST /v1/tenants/{t}/conversations/{id}/csat`: the customer's satisfaction rating (1–5).
pub async fn post_csat(
    State(state): State<AppState>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
    body: Result<Json<PostCsat>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let (_, conversation) = conversation_id(&raw_tenant, &raw_id)?;
    let Json(body) = body?;
    if !(1..=5).contains(&body.score) {
        return Err(ApiError::bad_request(
            "invalid_score",
            "score must be between 1 (worst) and 5 (best)",
        ));
    }
    if let Some(comment) = &body.comment {
        checked_text(comment)?;
    }
    let ack = state
        .node
        .region()
        .conversation_command(
            &conversation,
            ConversationCommand::RateCsat {
                score: body.score,
                comment: body.comment,
            },
            EventMeta::default(),
        )
        .await?;
    Ok(Json(json!({
        "conversation": conversation.key(),
        "score": body.score,
        "seq": ack.seq,
    })))
}
