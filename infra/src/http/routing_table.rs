//! The tenant's intent → group routing table (`GET`/`PUT /v1/tenants/{t}/routing-table`) and the
//! desk's decision log (`GET /v1/tenants/{t}/routing/events`).

use std::collections::BTreeMap;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use crest_actors::desk::DeskCommand;
use crest_proto::StreamId;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::body::Object;
use super::conversations::{EventsQuery, MAX_EVENTS_PAGE, read_events};
use super::error::ApiError;
use super::queues::group_name;
use super::{AppState, tenant};
use crate::access::Principal;

/// `GET /v1/tenants/{t}/routing-table`
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/routing-table",
    tag = "routing",
    params(super::openapi::TenantPath),
    responses(
        (status = 200, description = "`{routes, default_group}`.", body = Object),
    )
)]
pub async fn get_routing_table(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let table = state.node.routing().routing_table(&tenant).await?;
    Ok(Json(
        json!({"routes": table.routes, "default_group": table.default_group}),
    ))
}

/// Body of `PUT …/routing-table`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRoutingTable {
    /// Intent (1-64 characters) → skill group.
    #[schema(value_type = BTreeMap<String, super::openapi::GroupName>)]
    routes: BTreeMap<String, String>,
    /// The group of intents not in `routes` (default `general`).
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    default_group: Option<String>,
}

/// `PUT /v1/tenants/{t}/routing-table`: replaces the intent → group table.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/routing-table",
    tag = "routing",
    params(super::openapi::TenantPath),
    request_body = PutRoutingTable,
    responses(
        (status = 200, description = "The table after the change: `{routes, default_group}`.", body = Object),
    )
)]
pub async fn put_routing_table(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(raw_tenant): Path<String>,
    body: Result<Json<Object<PutRoutingTable>>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Json(Object(body)) = body?;
    for (intent, group) in &body.routes {
        group_name(group)?;
        if intent.is_empty() || intent.chars().count() > 64 {
            return Err(ApiError::bad_request(
                "invalid_intent",
                "intent names are 1-64 characters",
            ));
        }
    }
    let default_group = group_name(body.default_group.as_deref().unwrap_or("general"))?;
    let detail = format!(
        "{} routes, default group {default_group}",
        body.routes.len()
    );
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
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "routing_table.set",
            &principal.actor(),
            "routing_table",
            &detail,
        )
        .await;
    get_routing_table(State(state), Path(raw_tenant)).await
}

/// `GET /v1/tenants/{t}/routing/events?after=SEQ`: the desk's decisions (offers with their
/// candidates and reasons, assignments, transfers, tickets, SLA breaches), oldest first.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/routing/events",
    tag = "routing",
    params(super::openapi::TenantPath, super::conversations::EventsQuery),
    responses(
        (status = 200, description = "`{\"last_seq\", \"events\": [EventView]}`, oldest first.", body = Object),
    )
)]
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
