//! Quality inspection and voice of the customer, read from the projections.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;

use super::conversations::conversation_id;
use super::error::ApiError;
use super::views::rfc3339;
use super::{AppState, tenant};

/// Query of `GET …/quality`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InspectionsQuery {
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Only inspections scoring at most this (scores are 0-100).
    #[param(minimum = 0, maximum = 100)]
    max_score: Option<u32>,
}

fn inspection_json(inspection: &crate::projections::quality::Inspection) -> Value {
    json!({
        "conversation": inspection.conversation,
        "score": inspection.score,
        "fired": inspection.fired,
        "trigger": inspection.trigger,
        "inspected_at": rfc3339(inspection.inspected_at_ms),
    })
}

/// `GET /v1/tenants/{t}/quality?limit=&max_score=`: the latest inspections, newest first.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/quality",
    tag = "reports",
    params(super::openapi::TenantPath, InspectionsQuery),
    responses(
        (status = 200, description = "`{\"inspections\": [{conversation, score, fired, trigger, inspected_at}], \"rules\": [...]}`, newest first.", body = Object),
    )
)]
pub async fn list_inspections(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
    query: Result<Query<InspectionsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Query(query) = query?;
    if query
        .limit
        .is_some_and(|limit| !(1..=1000).contains(&limit))
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be between 1 and 1000",
        ));
    }
    if query.max_score.is_some_and(|score| score > 100) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "max_score must be between 0 and 100 (scores are 0-100)",
        ));
    }
    let limit = query.limit.unwrap_or(100);
    let quality = state
        .projections
        .quality
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let inspections: Vec<Value> = quality
        .recent(&tenant, limit, query.max_score)
        .into_iter()
        .map(inspection_json)
        .collect();
    let rules: Vec<Value> = quality
        .rules()
        .rules
        .iter()
        .map(
            |rule| json!({"id": rule.id, "description": rule.description, "penalty": rule.penalty}),
        )
        .collect();
    Ok(Json(json!({ "inspections": inspections, "rules": rules })))
}

/// `GET /v1/tenants/{t}/quality/{conversation}`: the conversation's latest inspection (404 until it
/// is resolved or closed).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/quality/{id}",
    tag = "reports",
    params(super::openapi::TenantPath, super::openapi::UlidPath),
    responses(
        (status = 200, description = "The conversation's inspection: `{conversation, score, fired, trigger, inspected_at}`.", body = Object),
    )
)]
pub async fn get_inspection(
    State(state): State<AppState>,
    Path((raw_tenant, raw_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (_, id) = conversation_id(&raw_tenant, &raw_id)?;
    let quality = state
        .projections
        .quality
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    quality
        .inspection(&id)
        .map(|inspection| Json(inspection_json(inspection)))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "conversation {id} has not been inspected (it is inspected once resolved or closed)"
            ))
        })
}

/// Query of `GET …/voc`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VocQuery {
    /// Hours of history (default 24, at most 744: 31 days).
    #[param(minimum = 1, maximum = 744)]
    hours: Option<u64>,
}

/// `GET /v1/tenants/{t}/voc?hours=24`: hourly intent, emotion and SKU-mention counts, and the SKU
/// totals of the period, most mentioned first.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/voc",
    tag = "reports",
    params(super::openapi::TenantPath, VocQuery),
    responses(
        (status = 200, description = "`{hours, buckets: [{start, intents, emotions, skus}], top_skus: [{sku, mentions}]}`.", body = Object),
    )
)]
pub async fn get_voc(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
    query: Result<Query<VocQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Query(query) = query?;
    let hours = query.hours.unwrap_or(24);
    if !(1..=744).contains(&hours) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "hours must be between 1 and 744 (31 days)",
        ));
    }
    let from_ms = crest_actors::context::now_ms().saturating_sub(hours * 3_600_000);
    let trend = state
        .projections
        .voc
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .trend(&tenant, from_ms);
    let mut skus: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for (_, bucket) in &trend {
        for (sku, emotions) in &bucket.skus {
            *skus.entry(sku.clone()).or_default() += emotions.values().sum::<u64>();
        }
    }
    let mut top: Vec<(String, u64)> = skus.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let buckets: Vec<Value> = trend
        .into_iter()
        .map(|(start, bucket)| {
            json!({
                "start": rfc3339(start),
                "intents": bucket.intents,
                "emotions": bucket.emotions,
                "skus": bucket.skus,
            })
        })
        .collect();
    Ok(Json(json!({
        "hours": hours,
        "buckets": buckets,
        "top_skus": top.into_iter().map(|(sku, mentions)| json!({"sku": sku, "mentions": mentions})).collect::<Vec<_>>(),
    })))
}
