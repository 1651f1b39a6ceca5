//! What agents, supervisors and customers do to a conversation outside the bot's turn, all under
//! `POST /v1/tenants/{t}/conversations/{id}/…`: `agent-messages` (replies and internal notes),
//! `handoff`, `transfer`, `take-over`, `resolve` and `csat`. Answers that start routing wait
//! briefly for the reactor ([`effects_delivered`]) so the client's next request sees the effect.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use crest_actors::command::CommandAck;
use crest_actors::desk::DeskCommand;
use crest_actors::reactor::ProgressWatch;
use crest_proto::api::{MAX_TEXT_BYTES, PostMessageResponse};
use crest_proto::commands::ConversationCommand;
use crest_proto::envelope::EventMeta;
use crest_proto::events::HandoffReason;
use crest_proto::ids::validate_channel_message_id;
use crest_proto::{AgentId, ConversationId, MessageId, StreamId};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::AppState;
use super::agents::agent_id;
use super::body::Object;
use super::conversations::conversation_id;
use super::error::ApiError;
use super::queues::group_name;
use crate::access::Principal;

/// How long an answer waits for the reactor to carry a command's effects to their targets (an
/// accepted offer to the conversation, a handoff to the desk) before answering anyway.
const EFFECTS_WAIT: Duration = Duration::from_secs(2);

/// Waits (bounded) until the reactor delivered the reactions to the events a command appended
/// (`appended_to`: the stream's last sequence number, `None` if it appended nothing): a client's
/// next request then sees the effects. True if they were delivered in time.
pub async fn effects_delivered(watch: ProgressWatch, appended_to: Option<u64>) -> bool {
    match appended_to {
        None => true,
        Some(seq) => watch.reached(seq, EFFECTS_WAIT).await,
    }
}

/// Sends one command to a conversation and waits (bounded) for the reactor to carry what it
/// appended to routing; answers with the acknowledgement and whether routing was reached in time.
async fn command_and_effects(
    state: &AppState,
    conversation: &ConversationId,
    command: ConversationCommand,
) -> Result<(CommandAck, bool), ApiError> {
    let watch = state
        .node
        .reactor()
        .watch(&StreamId::conversation(conversation));
    let ack = state
        .node
        .region()
        .conversation_command(conversation, command, EventMeta::default())
        .await?;
    let routed = effects_delivered(watch, ack.appended_to).await;
    Ok((ack, routed))
}

/// 403 unless the principal may act as `agent` (agents only as themselves).
fn acting_as(principal: &Principal, agent: &AgentId) -> Result<(), ApiError> {
    if principal.may_act_as(agent) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "this credential may not act as {}",
        agent.key()
    )))
}

/// Body of `POST …/agent-messages`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostAgentMessage {
    /// The agent writing.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._@+:-]+$")]
    agent: String,
    /// The message's id (idempotency key).
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._@+:-]+$")]
    id: String,
    /// At least one visible character, at most 4096 bytes of UTF-8.
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    text: String,
    /// An internal note (never shown to the customer).
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
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::bad_request(
            "invalid_text",
            "text must not contain control characters",
        ));
    }
    Ok(())
}

/// `POST /v1/tenants/{t}/conversations/{id}/agent-messages`: a reply, or an internal note (never
/// shown to the customer; any agent may write one, which is how a supervisor whispers).
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/conversations/{id}/agent-messages",
    tag = "conversations",
    params(super::openapi::TenantPath, super::openapi::UlidPath),
    request_body = PostAgentMessage,
    responses(
        (status = 200, description = "Journaled.", body = PostMessageResponse),
    )
)]
pub async fn post_agent_message(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
    body: Result<Json<Object<PostAgentMessage>>, JsonRejection>,
) -> Result<Json<PostMessageResponse>, ApiError> {
    let (tenant, conversation) = conversation_id(&raw_tenant, &raw_id)?;
    let Json(Object(body)) = body?;
    let agent = agent_id(&tenant, &body.agent)?;
    acting_as(&principal, &agent)?;
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostHandoff {
    /// `customer_request`, `supervisor`, or a short text (an escalation; its first 200 characters
    /// are kept). At least one visible character.
    #[schema(min_length = 1, pattern = r"\S", example = "customer_request")]
    reason: String,
    /// The skill group to queue in (default: the routing table's choice).
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    group: Option<String>,
}

/// `POST /v1/tenants/{t}/conversations/{id}/handoff`: the customer (reason `customer_request`) or a
/// supervisor (`supervisor`) asks for a human; any other reason is recorded as an escalation.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/conversations/{id}/handoff",
    tag = "routing",
    params(super::openapi::TenantPath, super::openapi::UlidPath),
    request_body = PostHandoff,
    responses(
        (status = 200, description = "Queued: `{conversation, status, seq, routed}`.", body = Object),
    )
)]
pub async fn post_handoff(
    State(state): State<AppState>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
    body: Result<Json<Object<PostHandoff>>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let (_, conversation) = conversation_id(&raw_tenant, &raw_id)?;
    let Json(Object(body)) = body?;
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
    // Routing hears of the handoff from the conversation's event, through the reactor; the answer
    // waits for that (briefly), so the queue and the offers already show the chat. The position
    // is in `GET …/queues/{group}` and in the notices the customer gets.
    let command = ConversationCommand::RequestHandoff { reason, group };
    let (ack, routed) = command_and_effects(&state, &conversation, command).await?;
    Ok(Json(json!({
        "conversation": conversation.key(),
        "status": "queued",
        "seq": ack.seq,
        "routed": routed,
    })))
}

/// Body of `POST …/transfer`: exactly one of `agent` or `group`; `by` is the agent giving the chat
/// away (default: its owner); `take_over` lets a supervisor take a chat outside their groups.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostTransfer {
    /// The agent to give the chat to.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._@+:-]+$")]
    agent: Option<String>,
    /// The skill group to queue the chat in.
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    group: Option<String>,
    /// The agent giving the chat away (default: its owner).
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._@+:-]+$")]
    by: Option<String>,
    /// A supervisor takes a chat outside their groups (not for agents).
    #[serde(default)]
    take_over: bool,
}

/// `POST /v1/tenants/{t}/conversations/{id}/transfer`
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/conversations/{id}/transfer",
    tag = "routing",
    params(super::openapi::TenantPath, super::openapi::UlidPath),
    request_body = PostTransfer,
    responses(
        (status = 200, description = "Assigned to the agent, or queued in the group.", body = Object),
    )
)]
pub async fn post_transfer(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
    body: Result<Json<Object<PostTransfer>>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let (tenant, conversation) = conversation_id(&raw_tenant, &raw_id)?;
    let Json(Object(body)) = body?;
    if body.take_over && principal.is_agent() {
        return Err(ApiError::forbidden(
            "taking a chat over is for supervisors and admins",
        ));
    }
    if let Some(by) = &body.by {
        acting_as(&principal, &agent_id(&tenant, by)?)?;
    }
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
            let command = ConversationCommand::TransferToGroup {
                by,
                group: group.clone(),
            };
            let (ack, routed) = command_and_effects(&state, &conversation, command).await?;
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostTakeOver {
    /// The supervisor taking the chat.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._@+:-]+$")]
    supervisor: String,
}

/// `POST /v1/tenants/{t}/conversations/{id}/take-over`: a supervisor owns the chat from now on
/// (from the bot, the queue or another agent).
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/conversations/{id}/take-over",
    tag = "routing",
    params(super::openapi::TenantPath, super::openapi::UlidPath),
    request_body = PostTakeOver,
    responses(
        (status = 200, description = "Take-over requested: `{conversation, status, supervisor, seq, routed}`.", body = Object),
    )
)]
pub async fn post_take_over(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
    body: Result<Json<Object<PostTakeOver>>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let (tenant, conversation) = conversation_id(&raw_tenant, &raw_id)?;
    let Json(Object(body)) = body?;
    let supervisor = agent_id(&tenant, &body.supervisor)?;
    acting_as(&principal, &supervisor)?;
    // Routing gives the chat to the supervisor if they can take it (online, free capacity); else
    // it stays where it is: `GET …/agents/{supervisor}` shows the outcome.
    let command = ConversationCommand::TakeOver {
        supervisor: supervisor.clone(),
    };
    let (ack, routed) = command_and_effects(&state, &conversation, command).await?;
    Ok(Json(json!({
        "conversation": conversation.key(),
        "status": "take_over_requested",
        "supervisor": supervisor.key(),
        "seq": ack.seq,
        "routed": routed,
    })))
}

/// Body of `POST …/resolve`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostResolve {
    /// The agent resolving the chat.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._@+:-]+$")]
    agent: Option<String>,
}

/// `POST /v1/tenants/{t}/conversations/{id}/resolve`
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/conversations/{id}/resolve",
    tag = "routing",
    params(super::openapi::TenantPath, super::openapi::UlidPath),
    request_body = PostResolve,
    responses(
        (status = 200, description = "Resolved: `{conversation, status, seq}`.", body = Object),
    )
)]
pub async fn post_resolve(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
    body: Result<Json<Object<PostResolve>>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let (tenant, conversation) = conversation_id(&raw_tenant, &raw_id)?;
    let Json(Object(body)) = body?;
    let by = body
        .agent
        .map(|agent| agent_id(&tenant, &agent))
        .transpose()?;
    if let Some(by) = &by {
        acting_as(&principal, by)?;
    }
    // Routing frees the agent's capacity when it hears of the resolution (the reactor).
    let command = ConversationCommand::Resolve { by };
    let (ack, _) = command_and_effects(&state, &conversation, command).await?;
    Ok(Json(json!({
        "conversation": conversation.key(),
        "status": "resolved",
        "seq": ack.seq,
    })))
}

/// Body of `POST …/csat`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostCsat {
    /// 1 (worst) to 5 (best).
    #[serde(deserialize_with = "super::whole::required")]
    #[schema(minimum = 1, maximum = 5)]
    score: u8,
    /// What the customer said: at least one visible character, at most 4096 bytes of UTF-8.
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    comment: Option<String>,
}

/// `POST /v1/tenants/{t}/conversations/{id}/csat`: the customer's satisfaction rating (1–5).
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/conversations/{id}/csat",
    tag = "conversations",
    params(super::openapi::TenantPath, super::openapi::UlidPath),
    request_body = PostCsat,
    responses(
        (status = 200, description = "Recorded: `{conversation, score, seq}`.", body = Object),
    )
)]
pub async fn post_csat(
    State(state): State<AppState>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
    body: Result<Json<Object<PostCsat>>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let (_, conversation) = conversation_id(&raw_tenant, &raw_id)?;
    let Json(Object(body)) = body?;
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
