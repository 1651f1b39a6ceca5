//! `POST /v1/tenants/{tenant}/messages`: a customer message, acknowledged once journaled.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use crest_proto::api::{MAX_TEXT_BYTES, PostMessageRequest, PostMessageResponse};
use crest_proto::commands::InboundMessage;
use crest_proto::envelope::EventMeta;
use crest_proto::ids::{validate_channel, validate_channel_message_id};
use crest_proto::{CustomerId, MessageId, StreamId};
use tracing::Instrument;

use super::body::Object;
use super::error::ApiError;
use super::pii::IdentifiersOnly;
use super::{AppState, tenant};
use crate::access::Principal;

/// Validates the request into an inbound message.
pub(super) fn inbound(
    tenant: &crest_proto::TenantId,
    request: PostMessageRequest,
) -> Result<InboundMessage, ApiError> {
    validate_channel(&request.channel).map_err(|error| ApiError::invalid_id(&error))?;
    let customer =
        CustomerId::new(tenant, request.customer).map_err(|error| ApiError::invalid_id(&error))?;
    validate_channel_message_id(&request.id).map_err(|error| ApiError::invalid_id(&error))?;
    if request.text.trim().is_empty() {
        return Err(ApiError::bad_request(
            "empty_text",
            "text must contain at least one visible character",
        ));
    }
    if request.text.len() > MAX_TEXT_BYTES {
        return Err(ApiError::bad_request(
            "text_too_long",
            format!(
                "text is {} bytes; the limit is {MAX_TEXT_BYTES} bytes of UTF-8",
                request.text.len()
            ),
        ));
    }
    if request
        .text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::bad_request(
            "invalid_text",
            "text must not contain control characters",
        ));
    }
    Ok(InboundMessage {
        customer,
        channel: request.channel,
        channel_message_id: request.id,
        text: request.text,
        message_id: MessageId::generate(tenant),
    })
}

/// Accepts a customer message. Answers once the message is durably journaled.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/messages",
    tag = "conversations",
    params(super::openapi::TenantPath, ("x-request-id" = Option<String>, Header, description = "Correlation id recorded on the event (ignored when longer than 128 bytes).")),
    request_body = PostMessageRequest,
    responses(
        (status = 200, description = "Journaled (or a duplicate of a message accepted before).", body = PostMessageResponse),
    )
)]
pub async fn post_message(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(raw_tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Object<PostMessageRequest>>, JsonRejection>,
) -> Result<(Extension<IdentifiersOnly>, Json<PostMessageResponse>), ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Json(Object(request)) = body?;
    let message = inbound(&tenant, request)?;
    if let Principal::Customer { customer, .. } = &principal
        && message.customer != *customer
    {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            "a widget session posts only as its own customer",
        ));
    }
    let response = accept(&state, &tenant, message, correlation_id(&headers)).await?;
    Ok((Extension(IdentifiersOnly), Json(response)))
}

/// The request's `x-request-id`, unless longer than 128 bytes.
pub(super) fn correlation_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| value.len() <= 128)
        .map(str::to_owned)
}

/// Admits a validated customer message (rate limits, readiness, in-flight cap) and hands it to
/// its customer's actor; answers once it is durably journaled, or recognised as a duplicate of a
/// message accepted before (same channel and id). Every way a customer message enters Crest
/// (`POST …/messages`, a channel's signed inbound webhook) goes through here.
pub(super) async fn accept(
    state: &AppState,
    tenant: &crest_proto::TenantId,
    message: InboundMessage,
    correlation_id: Option<String>,
) -> Result<PostMessageResponse, ApiError> {
    if let Err(limited) = state.limits.admit_message(&message.customer) {
        state
            .telemetry
            .admission_rejections
            .with_label_values(&["rate_limited"])
            .inc();
        return Err(limited);
    }
    if !state.node.is_ready() {
        state
            .telemetry
            .admission_rejections
            .with_label_values(&["not_ready"])
            .inc();
        return Err(ApiError::unavailable(
            "not_ready",
            "the node is starting or stopping; retry",
            1,
        ));
    }
    let Ok(_permit) = state.admission.try_acquire() else {
        state
            .telemetry
            .admission_rejections
            .with_label_values(&["overloaded"])
            .inc();
        return Err(ApiError::unavailable(
            "overloaded",
            "too many messages in flight; retry with the same id",
            1,
        ));
    };
    let in_flight = state.telemetry.command_in_flight();
    let meta = EventMeta {
        causation_id: None,
        correlation_id,
        idempotency_key: Some(message.idempotency_key()),
    };
    let span = tracing::debug_span!(
        "post_message",
        tenant = %tenant,
        stream = %StreamId::customer(&message.customer),
        command = "receive_customer_message",
    );
    let result = tokio::time::timeout(
        state.command_timeout,
        state.node.region().customer_message(message, meta),
    )
    .instrument(span.clone())
    .await;
    drop(in_flight);
    let ack = match result {
        Ok(ack) => ack?,
        Err(_) => {
            state
                .telemetry
                .admission_rejections
                .with_label_values(&["timeout"])
                .inc();
            return Err(ApiError::unavailable(
                "timeout",
                "not acknowledged in time; retry with the same id (it is never stored twice)",
                1,
            ));
        }
    };
    // The span names the customer's stream: the log writer masks the id if it is a phone or email.
    tracing::debug!(
        parent: &span,
        conversation = %ack.conversation,
        seq = ack.seq,
        duplicate = ack.duplicate,
        "customer message acknowledged"
    );
    Ok(PostMessageResponse {
        conversation_id: ack.conversation.to_string(),
        message_id: ack.message_id.map(|id| id.to_string()).unwrap_or_default(),
        seq: ack.seq,
        duplicate: ack.duplicate,
    })
}
