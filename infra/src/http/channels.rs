//! Channel connections: their configuration (`/v1/tenants/{t}/channels/…`), the signed inbound
//! webhook (`POST /v1/channels/{tenant}/{name}/inbound`) and the outbound dead letters.

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use crest_proto::TenantId;
use crest_proto::api::{PostMessageRequest, PostMessageResponse};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::body::Object;
use super::error::ApiError;
use super::messages::{accept, correlation_id, inbound};
use super::pii::IdentifiersOnly;
use super::{AppState, tenant};
use crate::access::Principal;
use crate::channels::outbox::DeadLetter;
use crate::channels::signature::{self, SIGNATURE_HEADER, SignatureError, TIMESTAMP_HEADER};
use crate::channels::{ChannelConfig, ChannelError, ChannelRequest};

/// Body of `PUT /v1/tenants/{t}/channels/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutChannel {
    /// `webhook`, `wechat_oa` or `widget`.
    #[schema(pattern = r"^(webhook|wechat_oa|widget)$", example = "webhook")]
    kind: String,
    /// The shared secret both sides sign with (16-256 bytes of UTF-8, no control characters); a
    /// `wechat_oa` channel's token (WeChat takes 3-32 letters and digits). Stored sealed, never
    /// shown again.
    #[schema(
        min_length = 16,
        max_length = 256,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    secret: String,
    /// Where the bot's and agents' messages are posted (http or https); without it the channel is
    /// inbound only. A `wechat_oa` channel's WeChat API base URL (default
    /// `https://api.weixin.qq.com`).
    #[schema(
        max_length = 2048,
        pattern = r"^https?://[^\s/?#]+",
        example = "https://hooks.shop.example/crest"
    )]
    outbound_url: Option<String>,
    /// The platform profile (reply windows, quotas, text limits).
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    profile: Option<String>,
    /// Delivery attempts before a message is dead-lettered (1-100, default 10).
    #[schema(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "super::whole::optional")]
    max_attempts: Option<u32>,
    /// The first retry's delay in ms; each further retry doubles it, at most 300 s (10-600000,
    /// default 500).
    #[schema(minimum = 10, maximum = 600_000)]
    #[serde(default, deserialize_with = "super::whole::optional")]
    backoff_base_ms: Option<u64>,
    /// A `wechat_oa` channel's AppID (with `app_secret`; without both the channel is inbound
    /// only).
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[A-Za-z0-9_-]+$",
        example = "wx0123456789abcdef"
    )]
    app_id: Option<String>,
    /// A `wechat_oa` channel's AppSecret (with `app_id`). Stored sealed, never shown again.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[!-~]+$")]
    app_secret: Option<String>,
}

/// Body of `POST /v1/channels/{tenant}/{name}/inbound`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InboundMessageBody {
    /// The platform's message id: the idempotency key (the same id twice is accepted once).
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._@+:-]+$")]
    id: String,
    /// The customer's id on the platform.
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._@+:-]+$")]
    customer: String,
    /// The message text.
    text: String,
}

/// Path of a channel's routes.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the derive only
pub struct ChannelPath {
    #[param(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$", example = "demo")]
    tenant: String,
    /// The channel's name.
    #[param(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$", example = "wx-main")]
    name: String,
}

/// Path of a dead letter.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct DeadLetterPath {
    #[param(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$", example = "demo")]
    tenant: String,
    /// The channel's name.
    #[param(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$", example = "wx-main")]
    name: String,
    /// The message's delivery id.
    #[param(example = "01JCX9Z8Q4W3V2T1S0R9P8N7M6")]
    id: String,
}

/// Query of `GET …/dead-letters`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeadLettersQuery {
    /// At most this many, oldest first (default 100, clamped to 1-1000).
    #[param(maximum = 18446744073709551615_u64)]
    pub(super) limit: Option<usize>,
}

/// Most dead letters one request lists.
pub(super) const MAX_DEAD_LETTER_PAGE: usize = 1000;

pub(super) fn failed(error: ChannelError) -> ApiError {
    match error {
        ChannelError::Invalid(reasons) => {
            ApiError::bad_request("invalid_channel", reasons.join("; "))
        }
        ChannelError::NotFound => ApiError::not_found("no such channel"),
        ChannelError::Busy => ApiError::unavailable("unavailable", error.to_string(), 1),
        ChannelError::Journal(journal) => ApiError::unavailable(
            "journal_unavailable",
            format!("the channels cannot be read or written ({journal}); retry"),
            1,
        ),
        ChannelError::Sealing(_) | ChannelError::Unreachable(_) => {
            ApiError::unavailable("unavailable", error.to_string(), 1)
        }
    }
}

fn checked_name(name: &str) -> Result<(), ApiError> {
    if crate::channels::name_is_valid(name) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_channel",
            "name must be 1-64 characters of lowercase a-z, 0-9, '-' and '_', starting with a letter or digit",
        ))
    }
}

fn view(state: &AppState, tenant: &TenantId, channel: &ChannelConfig) -> Value {
    let (pending, dead_letters) = state.channels.outbox_counts(tenant, &channel.name);
    json!({
        "name": channel.name,
        "kind": channel.kind.as_str(),
        "outbound_url": channel.outbound_url,
        "profile": channel.profile,
        "max_attempts": channel.max_attempts,
        "backoff_base_ms": channel.backoff_base_ms,
        "secret_set": channel.secret.is_some(),
        "app_id": channel.app_id,
        "app_secret_set": channel.app_secret.is_some(),
        "inbound_path": super::wechat::inbound_path(tenant, channel),
        "configured_by": channel.configured_by,
        "configured_at": super::views::rfc3339(channel.configured_at_ms),
        "pending": pending,
        "dead_letters": dead_letters,
    })
}

/// `PUT /v1/tenants/{t}/channels/{name}`: creates or replaces a channel connection.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/channels/{name}",
    tag = "channels",
    params(ChannelPath),
    request_body = PutChannel,
    responses(
        (status = 201, description = "Created: the channel (never its secret).", body = Object),
        (status = 200, description = "Replaced: the channel (never its secret).", body = Object),
    )
)]
pub async fn put_channel(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((raw_tenant, name)): Path<(String, String)>,
    body: Result<Json<Object<PutChannel>>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Json(Object(body)) = body?;
    let request = ChannelRequest {
        kind: body.kind,
        secret: body.secret,
        outbound_url: body.outbound_url,
        profile: body.profile,
        max_attempts: body.max_attempts,
        backoff_base_ms: body.backoff_base_ms,
        app_id: body.app_id,
        app_secret: body.app_secret,
    };
    let actor = principal.actor();
    let (channel, created) = state
        .channels
        .configure(&tenant, &name, &request, &actor)
        .await
        .map_err(failed)?;
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "channel.configured",
            &actor,
            &format!("channel:{name}"),
            &format!(
                "{}; kind {}; outbound {}; max attempts {}; backoff base {} ms",
                if created { "created" } else { "replaced" },
                channel.kind.as_str(),
                channel.outbound_url.as_deref().unwrap_or("none"),
                channel.max_attempts,
                channel.backoff_base_ms
            ),
        )
        .await;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(&state, &tenant, &channel))))
}

/// `GET /v1/tenants/{t}/channels/{name}`
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/channels/{name}",
    tag = "channels",
    params(ChannelPath),
    responses(
        (status = 200, description = "The channel (never its secret), with its outbox's pending messages and dead letters.", body = Object),
    )
)]
pub async fn get_channel(
    State(state): State<AppState>,
    Path((raw_tenant, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    checked_name(&name)?;
    let channel = state
        .channels
        .channel(&tenant, &name)
        .await
        .map_err(|error| failed(error.into()))?
        .ok_or_else(|| ApiError::not_found("no such channel"))?;
    Ok(Json(view(&state, &tenant, &channel)))
}

/// `GET /v1/tenants/{t}/channels`
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/channels",
    tag = "channels",
    params(super::openapi::TenantPath),
    responses(
        (status = 200, description = "`{\"channels\": [...]}` by name.", body = Object),
    )
)]
pub async fn list_channels(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let channels = state
        .channels
        .list(&tenant)
        .await
        .map_err(|error| failed(error.into()))?;
    let views: Vec<Value> = channels
        .iter()
        .map(|channel| view(&state, &tenant, channel))
        .collect();
    Ok(Json(json!({ "channels": views })))
}

/// `DELETE /v1/tenants/{t}/channels/{name}`
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/channels/{name}",
    tag = "channels",
    params(ChannelPath),
    responses(
        (status = 204, description = "Removed: inbound requests are refused, nothing more is delivered (what was queued stays in the journal)."),
    )
)]
pub async fn delete_channel(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((raw_tenant, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    checked_name(&name)?;
    let actor = principal.actor();
    state
        .channels
        .remove(&tenant, &name, &actor)
        .await
        .map_err(failed)?;
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "channel.removed",
            &actor,
            &format!("channel:{name}"),
            "",
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/channels/{tenant}/{name}/inbound`: a customer message from the channel, signed with
/// its secret; answered like `POST /v1/tenants/{t}/messages`.
#[utoipa::path(
    post,
    path = "/v1/channels/{tenant}/{name}/inbound",
    tag = "channels",
    params(
        ChannelPath,
        ("x-crest-timestamp" = String, Header, description = "Unix seconds the request was signed at; more than 300 s away from the server's clock is refused."),
        ("x-crest-signature" = String, Header, description = "`sha256=<hex>`: HMAC-SHA256 of `<timestamp>.<body>` under the channel's secret."),
    ),
    request_body = InboundMessageBody,
    responses(
        (status = 200, description = "Journaled (or a duplicate of a message accepted before).", body = PostMessageResponse),
        (status = 401, description = "`bad_signature` (missing, malformed or wrong signature or timestamp) or `stale_timestamp`.", body = crest_proto::api::ErrorBody),
    )
)]
pub async fn post_inbound(
    State(state): State<AppState>,
    Path((raw_tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(Extension<IdentifiersOnly>, Json<PostMessageResponse>), ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let channel = inbound_channel(&state, &tenant, &name, |_| true).await?;
    let kind = channel.kind.as_str();
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let checked = match &channel.secret {
        Some(secret) => signature::verify(
            secret,
            header(TIMESTAMP_HEADER),
            header(SIGNATURE_HEADER),
            &body,
            signature::now_s(),
        ),
        None => Err(SignatureError::BadSignature),
    };
    if let Err(error) = checked {
        let code = match error {
            SignatureError::BadSignature => "bad_signature",
            SignatureError::StaleTimestamp { .. } => "stale_timestamp",
        };
        count_inbound(&state, kind, code);
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            code,
            error.to_string(),
        ));
    }
    let message: InboundMessageBody = serde_json::from_slice(&body).map_err(|error| {
        count_inbound(&state, kind, "invalid_body");
        ApiError::bad_request(
            "invalid_body",
            format!("expected {{\"id\", \"customer\", \"text\"}}: {error}"),
        )
    })?;
    let response = accept_from_channel(
        &state,
        &tenant,
        &channel,
        ChannelMessage {
            id: message.id,
            customer: message.customer,
            text: message.text,
        },
        correlation_id(&headers),
    )
    .await?;
    Ok((Extension(IdentifiersOnly), Json(response)))
}

/// The channel `name` of `tenant` if it is configured and `wanted` (its kind fits the route),
/// else 404 `unknown_channel`.
pub(super) async fn inbound_channel(
    state: &AppState,
    tenant: &TenantId,
    name: &str,
    wanted: impl Fn(&ChannelConfig) -> bool,
) -> Result<ChannelConfig, ApiError> {
    let unknown = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_channel",
            "no such channel in this tenant",
        )
    };
    if !crate::channels::name_is_valid(name) {
        return Err(unknown());
    }
    state
        .channels
        .channel(tenant, name)
        .await
        .map_err(|error| failed(error.into()))?
        .filter(|channel| wanted(channel))
        .ok_or_else(unknown)
}

/// Counts an inbound request of a channel of `kind` by its outcome.
pub(super) fn count_inbound(state: &AppState, kind: &str, outcome: &str) {
    state
        .channels
        .metrics()
        .inbound
        .with_label_values(&[kind, outcome])
        .inc();
}

/// A customer message a channel delivered, its origin verified.
#[derive(Debug)]
pub(super) struct ChannelMessage {
    /// The platform's message id (the idempotency key).
    pub id: String,
    /// The customer's id on the platform.
    pub customer: String,
    /// The text.
    pub text: String,
}

/// Accepts a verified message from `channel` like `POST /v1/tenants/{t}/messages` (its channel
/// label being the channel's name; the same id twice is accepted once), counting the outcome.
pub(super) async fn accept_from_channel(
    state: &AppState,
    tenant: &TenantId,
    channel: &ChannelConfig,
    message: ChannelMessage,
    correlation_id: Option<String>,
) -> Result<PostMessageResponse, ApiError> {
    let kind = channel.kind.as_str();
    let message = inbound(
        tenant,
        PostMessageRequest {
            channel: channel.name.clone(),
            customer: message.customer,
            id: message.id,
            text: message.text,
        },
    )
    .map_err(|error| {
        count_inbound(state, kind, "invalid_body");
        ApiError::bad_request("invalid_body", error.reason)
    })?;
    let response = accept(state, tenant, message, correlation_id).await?;
    count_inbound(
        state,
        kind,
        if response.duplicate {
            "duplicate"
        } else {
            "accepted"
        },
    );
    Ok(response)
}

pub(super) fn dead_letter_view(letter: &DeadLetter) -> Value {
    json!({
        "id": letter.entry.id,
        "conversation": letter.entry.conversation.to_string(),
        "customer": letter.entry.customer.key(),
        "role": letter.entry.role,
        "written_at": super::views::rfc3339(letter.entry.at_ms),
        "attempts": letter.attempts,
        "last_error": letter.last_error,
    })
}

/// `GET /v1/tenants/{t}/channels/{name}/dead-letters?limit=`
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/channels/{name}/dead-letters",
    tag = "channels",
    params(ChannelPath, DeadLettersQuery),
    responses(
        (status = 200, description = "`{\"dead_letters\": [{id, conversation, customer, role, written_at, attempts, last_error}]}`, oldest first.", body = Object),
    )
)]
pub async fn get_dead_letters(
    State(state): State<AppState>,
    Path((raw_tenant, name)): Path<(String, String)>,
    query: Result<axum::extract::Query<DeadLettersQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<(Extension<IdentifiersOnly>, Json<Value>), ApiError> {
    let tenant = tenant(&raw_tenant)?;
    checked_name(&name)?;
    let axum::extract::Query(query) = query?;
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_DEAD_LETTER_PAGE);
    let letters = state
        .channels
        .dead_letters(&tenant, &name, limit)
        .await
        .map_err(failed)?;
    let views: Vec<Value> = letters.iter().map(dead_letter_view).collect();
    Ok((
        Extension(IdentifiersOnly),
        Json(json!({ "dead_letters": views })),
    ))
}

/// `POST /v1/tenants/{t}/channels/{name}/dead-letters/{id}/retry`: queues a dead letter again.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/channels/{name}/dead-letters/{id}/retry",
    tag = "channels",
    params(DeadLetterPath),
    responses(
        (status = 202, description = "Queued again at the back of the outbox, with a fresh retry budget.", body = Object),
    )
)]
pub async fn post_retry(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((raw_tenant, name, id)): Path<(String, String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = tenant(&raw_tenant)?;
    checked_name(&name)?;
    let actor = principal.actor();
    state
        .channels
        .retry(&tenant, &name, &id, &actor)
        .await
        .map_err(|error| match error {
            ChannelError::NotFound => ApiError::not_found("no such dead letter in this channel"),
            other => failed(other),
        })?;
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "channel.dead_letter_retried",
            &actor,
            &format!("channel:{name}"),
            &id,
        )
        .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "requeued": true })),
    ))
}
