//! The tenant's own intents: `GET /v1/tenants/{t}/intents` (every intent with its examples, the
//! model in use, the last candidate), `PUT …/intents/{intent}` (the tenant's examples of one
//! intent), `POST …/intents/candidates` (train a candidate and see its held-out figures) and
//! `POST …/intents/activate` (switch the bot to the candidate, or back to `default`). See
//! [`crate::intents`].

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use crest_brain::intents::{Candidate, model_id};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::body::Object;
use super::error::ApiError;
use super::views::rfc3339;
use super::{AppState, tenant};
use crate::access::Principal;
use crate::intents::{IntentError, IntentState, check_intent, intent_overview};

fn intent_error(error: IntentError) -> ApiError {
    match error {
        IntentError::Invalid { code, reason } => ApiError::bad_request(code, reason),
        IntentError::Stale(reason) => ApiError::new(StatusCode::CONFLICT, "stale_model", reason),
        IntentError::Training(reason) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "training_failed", reason)
        }
        IntentError::Knowledge(error) => super::knowledge::knowledge_error(error),
    }
}

fn body_error(rejection: &JsonRejection) -> ApiError {
    ApiError::new(rejection.status(), "invalid_body", rejection.body_text())
}

fn candidate_json(candidate: &Candidate) -> Value {
    json!({
        "model": candidate.model.id,
        "accuracy": candidate.report.accuracy,
        "macro_f1": candidate.report.macro_f1,
        "held_out": candidate.held_out,
        "trained_on": candidate.trained_on,
    })
}

fn overview_json(state: &AppState, tenant: &str, intents: &IntentState) -> Value {
    let listed: Vec<Value> = intent_overview(intents)
        .into_iter()
        .map(|(intent, (pack_examples, examples))| {
            json!({"intent": intent, "pack_examples": pack_examples, "examples": examples})
        })
        .collect();
    let active = intents.active.as_ref().map(|active| {
        json!({
            "model": active.event.model,
            "accuracy": active.event.accuracy,
            "macro_f1": active.event.macro_f1,
            "held_out": active.event.held_out,
            "trained_on": active.event.trained_on,
            "activated_by": active.event.activated_by,
            "activated_at": rfc3339(active.at_ms),
        })
    });
    json!({
        "intents": listed,
        "model": intents.active_model(),
        "active": active,
        "installed": state.intents.installed(tenant),
        "examples_model": model_id(&intents.examples),
    })
}

/// `GET /v1/tenants/{t}/intents`
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/intents",
    tag = "knowledge",
    params(super::openapi::TenantPath),
    responses(
        (status = 200, description = "`{intents: [{intent, pack_examples, examples}], model, active, installed, examples_model, candidate}`: every intent with the number of the pack's examples and the tenant's own, the model the bot is switched to (`default` or an id) with its held-out figures, the model this node predicts with, the id a candidate of the current examples would get, and that candidate if this node trained it.", body = Object),
    )
)]
pub async fn get_intents(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let intents = state
        .intents
        .refreshed(&tenant)
        .await
        .map_err(super::conversations::journal_error)?;
    let candidate = state
        .intents
        .candidate(&tenant)
        .await
        .map_err(super::conversations::journal_error)?;
    let mut view = overview_json(&state, tenant.as_str(), &intents);
    view["candidate"] = candidate.as_ref().map_or(Value::Null, candidate_json);
    Ok(Json(view))
}

/// Body of `PUT …/intents/{intent}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutIntent {
    /// The tenant's examples (replacing its earlier ones; `[]` removes them): at most 500, each
    /// 1-300 characters.
    #[schema(value_type = Vec<super::openapi::ExampleText>, max_items = 500)]
    examples: Vec<String>,
}

/// `PUT /v1/tenants/{t}/intents/{intent}`: the tenant's examples of one intent (a new intent
/// too). The bot keeps its model until a candidate is trained and switched to.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/intents/{intent}",
    tag = "knowledge",
    params(
        super::openapi::TenantPath,
        ("intent" = String, Path, description = "1-64 characters of a-z, 0-9 and `_`, starting with a letter.", pattern = r"^[a-z][a-z0-9_]{0,63}$"),
    ),
    request_body = PutIntent,
    responses(
        (status = 200, description = "The intents after the change (as `GET …/intents`, without the candidate).", body = Object),
    )
)]
pub async fn put_intent(
    State(state): State<AppState>,
    Path((raw_tenant, intent)): Path<(String, String)>,
    Extension(principal): Extension<Principal>,
    body: Result<Json<Object<PutIntent>>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    check_intent(&intent).map_err(intent_error)?;
    let Json(Object(body)) = body.map_err(|rejection| body_error(&rejection))?;
    let count = body.examples.len();
    let intents = state
        .intents
        .set_examples(&tenant, &intent, body.examples, &principal.actor())
        .await
        .map_err(intent_error)?;
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "intents.examples_set",
            &principal.actor(),
            &format!("intent:{intent}"),
            &format!("{count} examples"),
        )
        .await;
    Ok(Json(overview_json(&state, tenant.as_str(), &intents)))
}

/// `POST /v1/tenants/{t}/intents/candidates`: trains a candidate from the pack's and the tenant's
/// current examples and measures it on the held-out tenth (the same texts every time). Takes
/// seconds; the bot keeps its model.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/intents/candidates",
    tag = "knowledge",
    params(super::openapi::TenantPath),
    responses(
        (status = 201, description = "`{model, accuracy, macro_f1, held_out, trained_on}`: switch to it with `POST …/intents/activate`.", body = Object),
    )
)]
pub async fn post_candidate(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let candidate = state.intents.train(&tenant).await.map_err(intent_error)?;
    Ok((StatusCode::CREATED, Json(candidate_json(&candidate))))
}

/// Body of `POST …/intents/activate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostActivate {
    /// The candidate's id, or `default` for the pack's model.
    #[schema(min_length = 1, max_length = 64)]
    model: String,
}

/// `POST /v1/tenants/{t}/intents/activate`: switches the tenant's bot to the candidate of its
/// current examples (as trained on this node), or back to `default`. Journaled and audited; every
/// node rebuilds the same model.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/intents/activate",
    tag = "knowledge",
    params(super::openapi::TenantPath),
    request_body = PostActivate,
    responses(
        (status = 200, description = "The intents after the switch (as `GET …/intents`, without the candidate).", body = Object),
        (status = 409, description = "`stale_model`: not the candidate of the current examples on this node (train again).", body = crest_proto::api::ErrorBody),
    )
)]
pub async fn post_activate(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
    Extension(principal): Extension<Principal>,
    body: Result<Json<Object<PostActivate>>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Json(Object(body)) = body.map_err(|rejection| body_error(&rejection))?;
    let intents = state
        .intents
        .activate(&tenant, &body.model, &principal.actor())
        .await
        .map_err(intent_error)?;
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "intents.model_activated",
            &principal.actor(),
            &format!("model:{}", body.model),
            "",
        )
        .await;
    Ok(Json(overview_json(&state, tenant.as_str(), &intents)))
}
