//! Leads: the tenant's lead policy (`/v1/tenants/{t}/lead-policy`: which intents make the bot ask
//! for contact details, and its words) and its CRM integration
//! (`/v1/tenants/{t}/integrations/crm`: where captured leads are delivered, with dead letters).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use crest_proto::TenantId;
use crest_proto::leads::LeadPolicySet;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::body::Object;
use super::channels::{DeadLettersQuery, MAX_DEAD_LETTER_PAGE, dead_letter_view, failed};
use super::error::ApiError;
use super::pii::IdentifiersOnly;
use super::{AppState, tenant};
use crate::access::Principal;
use crate::channels::crm::CrmRequest;
use crate::channels::{ChannelConfig, ChannelError};
use crate::leads::{LeadPolicyError, PolicyRequest};

/// Body of `PUT /v1/tenants/{t}/lead-policy`. Texts left out take the defaults.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutLeadPolicy {
    /// Pre-sales intents: a customer message recognised as one of them makes the bot collect a
    /// name and a phone (`[]`: never).
    #[schema(max_items = 50, example = json!(["product_info", "stock_availability"]))]
    intents: Vec<IntentName>,
    /// Asking for the name, in Chinese.
    #[schema(min_length = 1, max_length = 500)]
    ask_name_zh: Option<String>,
    /// Asking for the name, in English.
    #[schema(min_length = 1, max_length = 500)]
    ask_name_en: Option<String>,
    /// Asking for the phone, in Chinese.
    #[schema(min_length = 1, max_length = 500)]
    ask_phone_zh: Option<String>,
    /// Asking for the phone, in English.
    #[schema(min_length = 1, max_length = 500)]
    ask_phone_en: Option<String>,
    /// Thanking once both are known, in Chinese.
    #[schema(min_length = 1, max_length = 500)]
    thanks_zh: Option<String>,
    /// Thanking once both are known, in English.
    #[schema(min_length = 1, max_length = 500)]
    thanks_en: Option<String>,
}

/// An intent's name.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(pattern = "^[a-z][a-z0-9_]{0,63}$", example = "product_info")]
pub struct IntentName(String);

/// The formats a CRM integration speaks.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CrmFormatName {
    /// Crest's JSON, signed with `X-Crest-Signature`.
    Generic,
    /// A WeCom group robot (markdown).
    Wecom,
    /// A Feishu custom bot (text, with its `timestamp` and `sign`).
    Feishu,
    /// A DingTalk robot (markdown, `timestamp` and `sign` in the query).
    Dingtalk,
}

impl CrmFormatName {
    fn as_str(self) -> &'static str {
        match self {
            Self::Generic => "generic",
            Self::Wecom => "wecom",
            Self::Feishu => "feishu",
            Self::Dingtalk => "dingtalk",
        }
    }
}

/// Body of `PUT /v1/tenants/{t}/integrations/crm`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutCrm {
    /// Where leads are posted (http or https; a platform robot's webhook URL).
    #[schema(
        max_length = 2048,
        pattern = r"^https?://[^\s/?#]+",
        example = "https://crm.shop.example/leads"
    )]
    url: String,
    /// The shared secret requests are signed with (`X-Crest-Signature`, and the platform's own
    /// `sign` for Feishu and DingTalk): 16-256 bytes, no control characters. Stored sealed, never
    /// shown again.
    #[schema(
        min_length = 16,
        max_length = 256,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    secret: String,
    /// The request format.
    format: CrmFormatName,
    /// Delivery attempts before a lead is dead-lettered (1-100, default 10).
    #[schema(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "super::whole::optional")]
    max_attempts: Option<u32>,
    /// The first retry's delay in ms; each further retry doubles it, at most 300 s (10-600000,
    /// default 500).
    #[schema(minimum = 10, maximum = 600_000)]
    #[serde(default, deserialize_with = "super::whole::optional")]
    backoff_base_ms: Option<u64>,
}

/// Path of a CRM dead letter.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the derive only
pub struct CrmDeadLetterPath {
    #[param(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$", example = "demo")]
    tenant: String,
    /// The lead's delivery id.
    #[param(example = "lead-01JCX9Z8Q4W3V2T1S0R9P8N7M6")]
    id: String,
}

fn policy_view(policy: &LeadPolicySet) -> Value {
    json!({
        "intents": policy.intents,
        "ask_name_zh": policy.ask_name_zh,
        "ask_name_en": policy.ask_name_en,
        "ask_phone_zh": policy.ask_phone_zh,
        "ask_phone_en": policy.ask_phone_en,
        "thanks_zh": policy.thanks_zh,
        "thanks_en": policy.thanks_en,
        "set_by": policy.set_by,
    })
}

fn policy_failed(error: LeadPolicyError) -> ApiError {
    match error {
        LeadPolicyError::Invalid(reasons) => {
            ApiError::bad_request("invalid_lead_policy", reasons.join("; "))
        }
        LeadPolicyError::Busy => ApiError::unavailable("unavailable", error.to_string(), 1),
        LeadPolicyError::Journal(journal) => ApiError::unavailable(
            "journal_unavailable",
            format!("the lead policy cannot be read or written ({journal}); retry"),
            1,
        ),
    }
}

/// `GET /v1/tenants/{t}/lead-policy`
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/lead-policy",
    tag = "leads",
    params(super::openapi::TenantPath),
    responses(
        (status = 200, description = "The lead policy (`set_by` is `default` until one is set): `{intents, ask_name_zh, ask_name_en, ask_phone_zh, ask_phone_en, thanks_zh, thanks_en, set_by}`.", body = Object),
    )
)]
pub async fn get_lead_policy(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let policy = state
        .leads
        .refreshed(&tenant)
        .await
        .map_err(|error| policy_failed(error.into()))?;
    Ok(Json(policy_view(&policy)))
}

/// `PUT /v1/tenants/{t}/lead-policy`: replaces the lead policy.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/lead-policy",
    tag = "leads",
    params(super::openapi::TenantPath),
    request_body = PutLeadPolicy,
    responses(
        (status = 200, description = "The policy now in force.", body = Object),
    )
)]
pub async fn put_lead_policy(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(raw_tenant): Path<String>,
    body: Result<Json<Object<PutLeadPolicy>>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Json(Object(body)) = body?;
    let request = PolicyRequest {
        intents: body.intents.into_iter().map(|intent| intent.0).collect(),
        ask_name_zh: body.ask_name_zh,
        ask_name_en: body.ask_name_en,
        ask_phone_zh: body.ask_phone_zh,
        ask_phone_en: body.ask_phone_en,
        thanks_zh: body.thanks_zh,
        thanks_en: body.thanks_en,
    };
    let actor = principal.actor();
    let policy = state
        .leads
        .set(&tenant, request, &actor)
        .await
        .map_err(policy_failed)?;
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "lead.policy_set",
            &actor,
            "lead-policy",
            &format!("pre-sales intents: {}", policy.intents.join(", ")),
        )
        .await;
    Ok(Json(policy_view(&policy)))
}

fn crm_view(state: &AppState, tenant: &TenantId, crm: &ChannelConfig) -> Value {
    let (pending, dead_letters) = state
        .channels
        .outbox_counts(tenant, crate::channels::crm::CRM_NAME);
    json!({
        "url": crm.outbound_url,
        "format": crm.profile,
        "max_attempts": crm.max_attempts,
        "backoff_base_ms": crm.backoff_base_ms,
        "secret_set": crm.secret.is_some(),
        "configured_by": crm.configured_by,
        "configured_at": super::views::rfc3339(crm.configured_at_ms),
        "pending": pending,
        "dead_letters": dead_letters,
    })
}

fn no_crm() -> ApiError {
    ApiError::not_found("no CRM integration in this tenant")
}

/// `PUT /v1/tenants/{t}/integrations/crm`: creates or replaces the CRM integration.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/integrations/crm",
    tag = "leads",
    params(super::openapi::TenantPath),
    request_body = PutCrm,
    responses(
        (status = 201, description = "Created: the integration (never its secret).", body = Object),
        (status = 200, description = "Replaced: the integration (never its secret).", body = Object),
    )
)]
pub async fn put_crm(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(raw_tenant): Path<String>,
    body: Result<Json<Object<PutCrm>>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Json(Object(body)) = body?;
    let request = CrmRequest {
        url: body.url,
        secret: body.secret,
        format: body.format.as_str().to_owned(),
        max_attempts: body.max_attempts,
        backoff_base_ms: body.backoff_base_ms,
    };
    let actor = principal.actor();
    let (crm, created) = state
        .channels
        .configure_crm(&tenant, &request, &actor)
        .await
        .map_err(|error| match error {
            ChannelError::Invalid(reasons) => {
                ApiError::bad_request("invalid_crm", reasons.join("; "))
            }
            other => failed(other),
        })?;
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "crm.configured",
            &actor,
            "integration:crm",
            &format!(
                "{}; format {}; url {}",
                if created { "created" } else { "replaced" },
                request.format,
                request.url
            ),
        )
        .await;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(crm_view(&state, &tenant, &crm))))
}

/// `GET /v1/tenants/{t}/integrations/crm`
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/integrations/crm",
    tag = "leads",
    params(super::openapi::TenantPath),
    responses(
        (status = 200, description = "The integration (never its secret), with its pending leads and dead letters.", body = Object),
    )
)]
pub async fn get_crm(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let crm = state
        .channels
        .crm(&tenant)
        .await
        .map_err(|error| failed(error.into()))?
        .ok_or_else(no_crm)?;
    Ok(Json(crm_view(&state, &tenant, &crm)))
}

/// `DELETE /v1/tenants/{t}/integrations/crm`
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/integrations/crm",
    tag = "leads",
    params(super::openapi::TenantPath),
    responses(
        (status = 204, description = "Removed: no more leads are delivered (what was queued stays in the journal)."),
    )
)]
pub async fn delete_crm(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(raw_tenant): Path<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let actor = principal.actor();
    state
        .channels
        .remove_crm(&tenant, &actor)
        .await
        .map_err(|error| match error {
            ChannelError::NotFound => no_crm(),
            other => failed(other),
        })?;
    state
        .access
        .audit
        .record_or_log(&tenant, "crm.removed", &actor, "integration:crm", "")
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/tenants/{t}/integrations/crm/dead-letters?limit=`
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/integrations/crm/dead-letters",
    tag = "leads",
    params(super::openapi::TenantPath, DeadLettersQuery),
    responses(
        (status = 200, description = "`{\"dead_letters\": [{id, conversation, customer, role, written_at, attempts, last_error}]}`, oldest first (`role` is `lead`).", body = Object),
    )
)]
pub async fn get_crm_dead_letters(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
    query: Result<Query<DeadLettersQuery>, QueryRejection>,
) -> Result<(Extension<IdentifiersOnly>, Json<Value>), ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_DEAD_LETTER_PAGE);
    let letters = state
        .channels
        .crm_dead_letters(&tenant, limit)
        .await
        .map_err(|error| match error {
            ChannelError::NotFound => no_crm(),
            other => failed(other),
        })?;
    let views: Vec<Value> = letters.iter().map(dead_letter_view).collect();
    Ok((
        Extension(IdentifiersOnly),
        Json(json!({ "dead_letters": views })),
    ))
}

/// `POST /v1/tenants/{t}/integrations/crm/dead-letters/{id}/retry`: queues a lead again.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/integrations/crm/dead-letters/{id}/retry",
    tag = "leads",
    params(CrmDeadLetterPath),
    responses(
        (status = 202, description = "Queued again at the back of the outbox, with a fresh retry budget.", body = Object),
    )
)]
pub async fn post_crm_retry(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((raw_tenant, id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let actor = principal.actor();
    state
        .channels
        .retry_crm(&tenant, &id, &actor)
        .await
        .map_err(|error| match error {
            ChannelError::NotFound => {
                ApiError::not_found("no such dead letter in the CRM integration")
            }
            other => failed(other),
        })?;
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "crm.dead_letter_retried",
            &actor,
            "integration:crm",
            &id,
        )
        .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "requeued": true })),
    ))
}
