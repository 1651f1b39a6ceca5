//! A WeChat Official Account's server URL, `/v1/channels/{tenant}/{name}/wechat`: the URL check
//! (`GET`, echoing `echostr`) and pushed messages (`POST`, plaintext-mode XML), both signed with
//! the channel's token (its `secret`); and the platform profiles, `GET /v1/channel-profiles`.
//!
//! A text message is accepted like the signed webhook's (customer: the sender's OpenID; message
//! id: `MsgId`, so WeChat's re-pushes of one message are accepted once) and answered `success`:
//! replies go through the customer-service message API, not the passive reply. Other messages
//! (images, voice, events such as `subscribe`) are acknowledged with `success` and logged.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crest_proto::TenantId;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;

use super::channels::{ChannelMessage, accept_from_channel, count_inbound, inbound_channel};
use super::error::ApiError;
use super::messages::correlation_id;
use super::{AppState, tenant};
use crate::channels::signature::{REPLAY_WINDOW_S, now_s};
use crate::channels::wechat::{WechatMessage, parse_message, signature_matches};
use crate::channels::{ChannelConfig, ChannelKind, profiles};

/// Longest `echostr` echoed.
const MAX_ECHOSTR_LEN: usize = 128;

/// The path a channel's platform pushes messages to.
#[must_use]
pub fn inbound_path(tenant: &TenantId, channel: &ChannelConfig) -> String {
    match channel.kind {
        ChannelKind::WechatOa => format!("/v1/channels/{tenant}/{}/wechat", channel.name),
        ChannelKind::Webhook | ChannelKind::Widget | ChannelKind::Crm => {
            format!("/v1/channels/{tenant}/{}/inbound", channel.name)
        }
    }
}

/// Query of WeChat's requests to the server URL.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WechatQuery {
    /// Lowercase hex SHA-1 of the token, `timestamp` and `nonce`, sorted and concatenated.
    #[param(example = "8f7b4ad0d3c7e0a4e36f2f8c4b0d2c8a2b9d9e61")]
    signature: Option<String>,
    /// Unix seconds.
    #[param(example = "1733526000")]
    timestamp: Option<String>,
    /// A random number.
    #[param(example = "1372623149")]
    nonce: Option<String>,
    /// The URL check's challenge, echoed (`GET` only; at most 128 visible ASCII characters).
    #[param(example = "5837397520665436492")]
    echostr: Option<String>,
    /// The sender's OpenID (`POST`; the XML's `FromUserName` is used).
    openid: Option<String>,
    /// `aes` when the account uses the encrypted mode (not supported: plaintext mode only).
    encrypt_type: Option<String>,
    /// The encrypted mode's signature (not supported).
    msg_signature: Option<String>,
}

fn unauthorized(code: &'static str, reason: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, reason)
}

/// Checks the request's signature against the channel's token.
fn verify(channel: &ChannelConfig, query: &WechatQuery) -> Result<(), ApiError> {
    let bad = || {
        unauthorized(
            "bad_signature",
            "the signature does not match: sha1 of the channel's token, timestamp and nonce, sorted and concatenated",
        )
    };
    let (Some(token), Some(presented), Some(timestamp), Some(nonce)) = (
        channel
            .secret
            .as_deref()
            .and_then(|secret| std::str::from_utf8(secret).ok()),
        query.signature.as_deref(),
        query.timestamp.as_deref(),
        query.nonce.as_deref(),
    ) else {
        return Err(bad());
    };
    if signature_matches(token, timestamp, nonce, presented) {
        Ok(())
    } else {
        Err(bad())
    }
}

fn text_plain(text: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        text,
    )
        .into_response()
}

fn query_of(query: Result<Query<WechatQuery>, QueryRejection>) -> Result<WechatQuery, ApiError> {
    let Query(query) =
        query.map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))?;
    Ok(query)
}

/// `GET /v1/channels/{tenant}/{name}/wechat`: WeChat's check of the server URL.
#[utoipa::path(
    get,
    path = "/v1/channels/{tenant}/{name}/wechat",
    tag = "channels",
    params(super::channels::ChannelPath, WechatQuery),
    responses(
        (status = 200, description = "The signature matches: `echostr`, as sent.", content_type = "text/plain", body = String),
        (status = 400, description = "`invalid_echostr`: missing, or not 1-128 visible ASCII characters.", body = crest_proto::api::ErrorBody),
        (status = 401, description = "`bad_signature`: missing or wrong signature.", body = crest_proto::api::ErrorBody),
        (status = 404, description = "`unknown_channel`: no wechat_oa channel of this name.", body = crest_proto::api::ErrorBody),
    )
)]
pub async fn get_wechat(
    State(state): State<AppState>,
    Path((raw_tenant, name)): Path<(String, String)>,
    query: Result<Query<WechatQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let channel = inbound_channel(&state, &tenant, &name, is_wechat).await?;
    let query = query_of(query)?;
    if let Err(error) = verify(&channel, &query) {
        count_inbound(&state, channel.kind.as_str(), "bad_signature");
        return Err(error);
    }
    let echostr = query
        .echostr
        .filter(|echo| {
            !echo.is_empty()
                && echo.len() <= MAX_ECHOSTR_LEN
                && echo.chars().all(|c| c.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_echostr",
                format!("echostr must be 1-{MAX_ECHOSTR_LEN} visible ASCII characters"),
            )
        })?;
    tracing::info!(tenant = %tenant, channel = %name, "wechat server url verified");
    count_inbound(&state, channel.kind.as_str(), "verified");
    Ok(text_plain(echostr))
}

fn is_wechat(channel: &ChannelConfig) -> bool {
    channel.kind == ChannelKind::WechatOa
}

/// `POST /v1/channels/{tenant}/{name}/wechat`: a message WeChat pushed.
#[utoipa::path(
    post,
    path = "/v1/channels/{tenant}/{name}/wechat",
    tag = "channels",
    params(super::channels::ChannelPath, WechatQuery),
    request_body(
        content = String,
        content_type = "text/xml",
        description = "WeChat's plaintext-mode message: `<xml>` with `ToUserName`, `FromUserName`, `CreateTime`, `MsgType` and, for texts, `Content` and `MsgId`.",
        example = "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oUser123]]></FromUserName><CreateTime>1733526000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content><MsgId>24512345678901234</MsgId></xml>"
    ),
    responses(
        (status = 200, description = "`success`: a text journaled (or a re-push of one accepted before), or another message or event acknowledged.", content_type = "text/plain", body = String),
        (status = 400, description = "`invalid_body` (malformed XML, a missing field, an empty or oversized text) or `unsupported_encryption` (the encrypted mode).", body = crest_proto::api::ErrorBody),
        (status = 401, description = "`bad_signature` (missing or wrong signature) or `stale_timestamp` (more than 300 s from the server's clock).", body = crest_proto::api::ErrorBody),
        (status = 404, description = "`unknown_channel`: no wechat_oa channel of this name.", body = crest_proto::api::ErrorBody),
    )
)]
pub async fn post_wechat(
    State(state): State<AppState>,
    Path((raw_tenant, name)): Path<(String, String)>,
    query: Result<Query<WechatQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let channel = inbound_channel(&state, &tenant, &name, is_wechat).await?;
    let kind = channel.kind.as_str();
    let query = query_of(query)?;
    if let Err(error) = verify(&channel, &query) {
        count_inbound(&state, kind, "bad_signature");
        return Err(error);
    }
    let timestamp_s: u64 = query
        .timestamp
        .as_deref()
        .and_then(|timestamp| timestamp.trim().parse().ok())
        .ok_or_else(|| unauthorized("bad_signature", "timestamp must be unix seconds"))?;
    let skew_s = now_s().abs_diff(timestamp_s);
    if skew_s > REPLAY_WINDOW_S {
        count_inbound(&state, kind, "stale_timestamp");
        return Err(unauthorized(
            "stale_timestamp",
            format!(
                "the timestamp is {skew_s} s away from the server's clock; at most {REPLAY_WINDOW_S} s are accepted"
            ),
        ));
    }
    if query
        .encrypt_type
        .as_deref()
        .is_some_and(|mode| mode != "raw")
        || query.msg_signature.is_some()
    {
        count_inbound(&state, kind, "invalid_body");
        return Err(ApiError::bad_request(
            "unsupported_encryption",
            "only WeChat's plaintext mode is supported: set the account's message encryption to plaintext",
        ));
    }
    let message = parse_message(&body).map_err(|reason| {
        count_inbound(&state, kind, "invalid_body");
        ApiError::bad_request("invalid_body", reason)
    })?;
    if query
        .openid
        .as_deref()
        .is_some_and(|openid| openid != message.from_user)
    {
        count_inbound(&state, kind, "invalid_body");
        return Err(ApiError::bad_request(
            "invalid_body",
            "the query's openid is not the message's <FromUserName>",
        ));
    }
    if message.msg_type != "text" {
        acknowledge_other(&state, &tenant, &channel, &message);
        return Ok(text_plain("success".to_owned()));
    }
    let (Some(id), Some(text)) = (message.msg_id, message.content) else {
        count_inbound(&state, kind, "invalid_body");
        return Err(ApiError::bad_request(
            "invalid_body",
            "a text message needs <MsgId> and <Content>",
        ));
    };
    accept_from_channel(
        &state,
        &tenant,
        &channel,
        ChannelMessage {
            id,
            customer: message.from_user,
            text,
        },
        correlation_id(&headers),
    )
    .await?;
    Ok(text_plain("success".to_owned()))
}

/// Logs and counts a message that is not a text (an image, a voice message, an event).
fn acknowledge_other(
    state: &AppState,
    tenant: &TenantId,
    channel: &ChannelConfig,
    message: &WechatMessage,
) {
    tracing::info!(
        tenant = %tenant,
        channel = %channel.name,
        msg_type = %message.msg_type,
        event = message.event.as_deref().unwrap_or(""),
        "wechat message acknowledged, not a text"
    );
    count_inbound(state, channel.kind.as_str(), "ignored");
}

/// `GET /v1/channel-profiles`: the platform profiles a channel may name.
#[utoipa::path(
    get,
    path = "/v1/channel-profiles",
    tag = "channels",
    responses(
        (status = 200, description = "`{\"profiles\": [{name, platform, reply_window_s, replies_per_customer_message, daily_messages_per_customer, text_limit_chars, text_limit_bytes, overflow, images, cards}]}` by name.", body = super::body::Object),
    )
)]
pub async fn list_profiles() -> Json<Value> {
    let all: Vec<&profiles::PlatformProfile> = profiles::builtin().all().collect();
    Json(json!({ "profiles": all }))
}
