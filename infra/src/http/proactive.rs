//! Proactive service: the tenant's rules (`GET/PUT /v1/tenants/{t}/proactive-rules`), the merchant's
//! commerce events (`POST /v1/tenants/{t}/commerce-events`) and a customer's recorded decisions
//! (`GET /v1/tenants/{t}/customers/{c}/proactive`). See [`crate::proactive`].

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use crest_proto::ids::validate_channel_message_id;
use crest_proto::{CustomerId, TenantId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::Object;
use super::error::ApiError;
use super::pii::IdentifiersOnly;
use super::{AppState, tenant};
use crate::access::Principal;
use crate::proactive::rules::{QuietHours, Rule, RulesDocument};
use crate::proactive::{Decided, ProactiveError, Trigger};

/// Body of `PUT /v1/tenants/{t}/proactive-rules`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRules {
    /// The IANA time zone quiet hours and days are counted in (`Asia/Shanghai`).
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[A-Za-z0-9_+./-]+$",
        example = "Asia/Shanghai"
    )]
    timezone: String,
    /// When nothing proactive is sent, local time; `from` later than `to` spans midnight, equal
    /// times or `null` mean never quiet.
    #[schema(value_type = Option<QuietHours>)]
    #[serde(default)]
    quiet_hours: Option<Object<QuietHours>>,
    /// At most this many proactive messages per customer per local day (1-20).
    #[schema(minimum = 1, maximum = 20)]
    #[serde(deserialize_with = "super::whole::required")]
    max_per_customer_per_day: u32,
    /// The rules, at most one per trigger (0-32). `after_minutes` is required for the silence
    /// triggers and refused for the commerce ones.
    #[schema(value_type = Vec<Rule>, max_items = 32)]
    rules: Vec<Object<Rule>>,
}

/// The rules in force, and whether they are the defaults (never set).
#[derive(Debug, Serialize, ToSchema)]
pub struct RulesView {
    /// The IANA time zone.
    #[schema(example = "Asia/Shanghai")]
    timezone: String,
    /// The quiet hours (`null`: never quiet).
    quiet_hours: Option<QuietHours>,
    /// At most this many proactive messages per customer per local day.
    max_per_customer_per_day: u32,
    /// The rules.
    rules: Vec<Rule>,
    /// `true` until the tenant sets its own rules.
    defaults: bool,
}

/// Body of `POST /v1/tenants/{t}/commerce-events`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommerceEventBody {
    /// The event's id in the merchant's system: the idempotency key (the same id is decided
    /// once). Default: a fresh id.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[A-Za-z0-9._@+:-]+$",
        example = "evt-20261111-0001"
    )]
    id: Option<String>,
    /// What happened.
    #[schema(
        pattern = r"^(order_unpaid|order_shipped|shipment_delayed|refund_completed)$",
        example = "shipment_delayed"
    )]
    kind: String,
    /// The merchant's customer id.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[A-Za-z0-9._@+:-]+$",
        example = "c-1001"
    )]
    customer: String,
    /// The order's id (`{order}` in the rule's text).
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[A-Za-z0-9._@+:-]+$",
        example = "SO-20261111-0042"
    )]
    order: String,
    /// When it happened (RFC 3339); default: now.
    #[schema(format = DateTime, example = "2026-11-11T10:00:00Z")]
    at: Option<String>,
}

/// A decision: sent or suppressed, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionView {
    /// The trigger's id.
    id: String,
    /// What triggered it.
    #[schema(example = "shipment_delayed")]
    trigger: String,
    /// The order, if any.
    order: Option<String>,
    /// `sent` or `suppressed`.
    #[schema(pattern = "^(sent|suppressed)$")]
    decision: String,
    /// `rule_matched` (sent), or why not: `no_rule`, `no_channel`, `human_chat_open`,
    /// `quiet_hours`, `daily_limit`.
    #[schema(
        pattern = "^(rule_matched|no_rule|no_channel|human_chat_open|quiet_hours|daily_limit)$"
    )]
    reason: String,
    /// The conversation it went to (or would have).
    conversation: Option<String>,
    /// The message sent.
    message_id: Option<String>,
    /// The tenant-local day it counts against (`YYYY-MM-DD`).
    local_day: String,
    /// When the trigger happened.
    occurred_at: String,
    /// When it was decided.
    decided_at: String,
    /// Whether this id was decided before (the recorded decision is answered again).
    duplicate: bool,
}

/// A customer's proactive decisions, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionList {
    /// The decisions (a trigger refused by its conversation after being decided appears twice;
    /// the later entry is its decision).
    decisions: Vec<DecisionView>,
}

fn view(decided: &Decided, duplicate: bool) -> DecisionView {
    let record = &decided.record;
    DecisionView {
        id: record.id.clone(),
        trigger: record.trigger.clone(),
        order: record.order.clone(),
        decision: record.decision.clone(),
        reason: record.reason.clone(),
        conversation: record.conversation.as_ref().map(ToString::to_string),
        message_id: record.message.as_ref().map(ToString::to_string),
        local_day: record.local_day.clone(),
        occurred_at: super::views::rfc3339(record.occurred_at_ms),
        decided_at: super::views::rfc3339(decided.decided_at_ms),
        duplicate,
    }
}

fn failed(error: ProactiveError) -> ApiError {
    match error {
        ProactiveError::Invalid(reasons) => {
            ApiError::bad_request("invalid_rules", reasons.join("; "))
        }
        ProactiveError::Busy | ProactiveError::Unavailable => {
            ApiError::unavailable("unavailable", error.to_string(), 1)
        }
        ProactiveError::Journal(journal) => ApiError::unavailable(
            "journal_unavailable",
            format!("the proactive records cannot be read or written ({journal}); retry"),
            1,
        ),
    }
}

async fn rules_view(state: &AppState, tenant: &TenantId) -> Result<RulesView, ApiError> {
    let (rules, defaults) = state
        .proactive
        .rules(tenant)
        .await
        .map_err(|error| failed(error.into()))?;
    Ok(RulesView {
        timezone: rules.timezone.clone(),
        quiet_hours: rules.quiet_hours.clone(),
        max_per_customer_per_day: rules.max_per_customer_per_day,
        rules: rules.rules.clone(),
        defaults,
    })
}

/// `GET /v1/tenants/{t}/proactive-rules`
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/proactive-rules",
    tag = "proactive",
    params(super::openapi::TenantPath),
    responses(
        (status = 200, description = "The rules (the defaults, in Chinese and English, until the tenant sets its own).", body = RulesView),
    )
)]
pub async fn get_proactive_rules(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
) -> Result<Json<RulesView>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    Ok(Json(rules_view(&state, &tenant).await?))
}

/// `PUT /v1/tenants/{t}/proactive-rules`: replaces the tenant's rules.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/proactive-rules",
    tag = "proactive",
    params(super::openapi::TenantPath),
    request_body = PutRules,
    responses(
        (status = 200, description = "The rules now in force.", body = RulesView),
        (status = 400, description = "`invalid_rules`: every reason (an unknown time zone, a malformed HH:MM, a cap outside 1-20, an unknown trigger, two rules for one trigger, `after_minutes` missing on a silence trigger or given on a commerce one, an empty text).", body = crest_proto::api::ErrorBody),
    )
)]
pub async fn put_proactive_rules(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(raw_tenant): Path<String>,
    body: Result<Json<Object<PutRules>>, JsonRejection>,
) -> Result<Json<RulesView>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Json(Object(body)) = body?;
    let document = RulesDocument {
        timezone: body.timezone,
        quiet_hours: body.quiet_hours.map(|Object(quiet)| quiet),
        max_per_customer_per_day: body.max_per_customer_per_day,
        rules: body.rules.into_iter().map(|Object(rule)| rule).collect(),
    };
    let actor = principal.actor();
    state
        .proactive
        .set_rules(&tenant, &document, &actor)
        .await
        .map_err(failed)?;
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "proactive.rules_set",
            &actor,
            "proactive-rules",
            &format!(
                "{} rules; time zone {}; at most {} a day",
                document.rules.len(),
                document.timezone,
                document.max_per_customer_per_day
            ),
        )
        .await;
    Ok(Json(rules_view(&state, &tenant).await?))
}

/// `POST /v1/tenants/{t}/commerce-events`: the merchant reports an order's news; Crest decides
/// whether to tell the customer, and records why.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/commerce-events",
    tag = "proactive",
    params(super::openapi::TenantPath),
    request_body = CommerceEventBody,
    responses(
        (status = 202, description = "Decided: `sent` (the message is in the customer's open conversation, on its way to their last channel) or `suppressed` with the reason. A repeated id answers the recorded decision.", body = DecisionView),
    )
)]
pub async fn post_commerce_event(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
    body: Result<Json<Object<CommerceEventBody>>, JsonRejection>,
) -> Result<(StatusCode, Extension<IdentifiersOnly>, Json<DecisionView>), ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Json(Object(body)) = body?;
    if !crate::proactive::rules::COMMERCE_KINDS.contains(&body.kind.as_str()) {
        return Err(ApiError::bad_request(
            "invalid_kind",
            "kind must be order_unpaid, order_shipped, shipment_delayed or refund_completed",
        ));
    }
    let customer =
        CustomerId::new(&tenant, body.customer).map_err(|error| ApiError::invalid_id(&error))?;
    validate_channel_message_id(&body.order).map_err(|_| {
        ApiError::bad_request(
            "invalid_order",
            "order must be 1-128 characters of A-Z a-z 0-9 - _ . @ + :",
        )
    })?;
    let id = match body.id {
        Some(id) => {
            validate_channel_message_id(&id).map_err(|error| ApiError::invalid_id(&error))?;
            id
        }
        None => ulid::Ulid::new().to_string(),
    };
    let now = state.node.now_ms();
    let at_ms = match body.at.as_deref() {
        None => now,
        // A time before 1970 is recorded as the epoch (it only dates the record).
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|at| u64::try_from(at.timestamp_millis()).unwrap_or(0))
            .map_err(|error| {
                ApiError::bad_request("invalid_at", format!("at is not an RFC 3339 time: {error}"))
            })?,
    };
    let trigger = Trigger {
        id,
        kind: body.kind,
        customer,
        order: Some(body.order),
        at_ms,
    };
    let (decided, duplicate) = state.proactive.decide(&trigger).await.map_err(failed)?;
    Ok((
        StatusCode::ACCEPTED,
        Extension(IdentifiersOnly),
        Json(view(&decided, duplicate)),
    ))
}

/// `GET /v1/tenants/{t}/customers/{c}/proactive`: every proactive decision for the customer.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/customers/{customer}/proactive",
    tag = "proactive",
    params(super::openapi::TenantPath, super::openapi::CustomerPath),
    responses(
        (status = 200, description = "The decisions, oldest first, each with its reason.", body = DecisionList),
    )
)]
pub async fn get_proactive_decisions(
    State(state): State<AppState>,
    Path((raw_tenant, raw_customer)): Path<(String, String)>,
) -> Result<Json<DecisionList>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let customer =
        CustomerId::new(&tenant, raw_customer).map_err(|error| ApiError::invalid_id(&error))?;
    let decided = state
        .proactive
        .decisions(&customer)
        .await
        .map_err(|error| failed(error.into()))?;
    let decisions = decided.iter().map(|decided| view(decided, false)).collect();
    Ok(Json(DecisionList { decisions }))
}
