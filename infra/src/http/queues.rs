//! Skill-group queues: `GET /v1/tenants/{t}/queues/{group}` (who waits, in which order, who is
//! offered what) and `PUT` (the group's overflow, queue cap and offer timeout); also the rule for
//! group names.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use crest_actors::desk::views::QueueView;
use crest_actors::desk::{DeskCommand, GroupChange, GroupConfig};
use crest_proto::TenantId;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::body::Object;
use super::customers::tier_name;
use super::error::ApiError;
use super::{AppState, tenant};
use crate::access::Principal;

/// Validates a skill-group name: the rules of a tenant id (lowercase a-z, 0-9, `-`, `_`).
pub fn group_name(raw: &str) -> Result<String, ApiError> {
    TenantId::new(raw).map(|_| raw.to_owned()).map_err(|_| {
        ApiError::bad_request(
            "invalid_group",
            format!("group {raw:?} must be 1-64 characters of lowercase a-z, 0-9, '-' and '_'"),
        )
    })
}

/// `GET /v1/tenants/{t}/queues`: every known group's queue in brief (a supervisor's overview).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/queues",
    tag = "routing",
    params(super::openapi::TenantPath),
    responses(
        (status = 200, description = "`{queues: [{group, waiting, longest_wait_s, offered, assigned, agents_online, free_capacity}]}` by group name.", body = Object),
    )
)]
pub async fn list_queues(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let queues = state.node.routing().queues(&tenant).await?;
    Ok(Json(json!({ "queues": queues })))
}

/// `GET /v1/tenants/{t}/queues/{group}`
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/queues/{group}",
    tag = "routing",
    params(super::openapi::TenantPath, super::openapi::GroupPath),
    responses(
        (status = 200, description = "The group's settings, waiting chats (with position, priority and reasons) and offered chats.", body = Object),
    )
)]
pub async fn get_queue(
    State(state): State<AppState>,
    Path((raw_tenant, raw_group)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let group = group_name(&raw_group)?;
    let queue = state.node.routing().queue(&tenant, &group).await?;
    Ok(Json(render_queue(&group, &queue)))
}

fn render_queue(group: &str, view: &QueueView) -> Value {
    let waiting: Vec<Value> = view
        .waiting
        .iter()
        .map(|chat| {
            json!({
                "conversation": chat.conversation.key(),
                "position": chat.position,
                "priority": chat.priority.round(),
                "base_priority": chat.base_priority,
                "waiting_s": chat.waiting_s,
                "reasons": chat.reasons,
                "customer": chat.customer.key(),
                "tier": tier_name(chat.tier),
                "intent": chat.summary.intent,
                "emotion": chat.summary.emotion,
                "estimated_wait_s": chat.estimated_wait_s,
            })
        })
        .collect();
    let offered: Vec<Value> = view
        .offered
        .iter()
        .map(|chat| {
            json!({
                "conversation": chat.conversation.key(),
                "agent": chat.agent.key(),
                "expires_in_s": chat.expires_in_s,
            })
        })
        .collect();
    json!({
        "group": group,
        "waiting": waiting,
        "offered": offered,
        "assigned": view.assigned,
        "agents_online": view.agents_online,
        "free_capacity": view.free_capacity,
        "config": config_json(&view.config),
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutQueue {
    /// The backup group chats move to after `overflow_after_s` (not the group itself); `null`
    /// removes it.
    #[serde(default, deserialize_with = "explicit_group")]
    #[schema(value_type = Option<String>, pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    overflow_to: Option<Option<String>>,
    /// Seconds a chat waits before it overflows.
    #[serde(default, deserialize_with = "super::whole::optional")]
    #[schema(minimum = 0, maximum = 4294967295_u64, format = Int64)]
    overflow_after_s: Option<u32>,
    /// Longest queue; a handoff beyond it is refused with an honest notice and a callback ticket.
    #[serde(default, deserialize_with = "super::whole::optional")]
    #[schema(minimum = 0, maximum = 4294967295_u64, format = Int64)]
    max_waiting: Option<u32>,
    /// Seconds an agent has to accept an offer before it goes to the next agent.
    #[serde(default, deserialize_with = "super::whole::optional")]
    #[schema(minimum = 1, maximum = 3600)]
    offer_timeout_s: Option<u32>,
}

/// `"overflow_to": null` (remove the backup) is told apart from an absent field (keep it).
fn explicit_group<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// `PUT /v1/tenants/{t}/queues/{group}`: the group's overflow, queue cap and offer timeout.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/queues/{group}",
    tag = "routing",
    params(super::openapi::TenantPath, super::openapi::GroupPath),
    request_body = PutQueue,
    responses(
        (status = 200, description = "The queue after the change.", body = Object),
    )
)]
pub async fn put_queue(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((raw_tenant, raw_group)): Path<(String, String)>,
    body: Result<Json<Object<PutQueue>>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let group = group_name(&raw_group)?;
    let Json(Object(body)) = body?;
    let overflow_to = match body.overflow_to {
        Some(Some(backup)) => Some(Some(group_name(&backup)?)),
        Some(None) => Some(None),
        None => None,
    };
    if overflow_to
        .as_ref()
        .is_some_and(|backup| backup.as_deref() == Some(group.as_str()))
    {
        return Err(ApiError::bad_request(
            "invalid_overflow",
            "a group cannot overflow to itself",
        ));
    }
    if body
        .offer_timeout_s
        .is_some_and(|timeout| !(1..=3600).contains(&timeout))
    {
        return Err(ApiError::bad_request(
            "invalid_timeout",
            "offer_timeout_s must be between 1 and 3600",
        ));
    }
    // One command: routing merges the change into the group's settings (no read, then write).
    let change = GroupChange {
        overflow_to,
        overflow_after_s: body.overflow_after_s,
        max_waiting: body.max_waiting,
        offer_timeout_s: body.offer_timeout_s,
    };
    let detail = format!("{change:?}");
    state
        .node
        .routing()
        .command(
            &tenant,
            DeskCommand::ChangeGroup {
                group: group.clone(),
                change,
            },
        )
        .await?;
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "queue.configured",
            &principal.actor(),
            &format!("queue:{group}"),
            &detail,
        )
        .await;
    get_queue(State(state), Path((raw_tenant, raw_group))).await
}
