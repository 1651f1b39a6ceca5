//! Customer tiers: `PUT`/`GET /v1/tenants/{t}/customers/{customer}`; erasure:
//! `DELETE /v1/tenants/{t}/customers/{customer}`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use crest_actors::desk::DeskCommand;
use crest_actors::ports::journal::read_all;
use crest_proto::commands::ConversationCommand;
use crest_proto::envelope::EventMeta;
use crest_proto::events::CustomerEvent;
use crest_proto::routing::Tier;
use crest_proto::{CustomerId, StreamId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::Object;
use super::error::ApiError;
use super::{AppState, tenant};
use crate::access::Principal;

/// Body of `PUT …/customers/{customer}`: the tier; other customer attributes a merchant sends
/// (name, phone, …) are accepted and not stored (the customer identity stream holds ids only).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PutCustomer {
    tier: Tier,
}

/// `PUT /v1/tenants/{t}/customers/{customer}`
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/customers/{customer}",
    tag = "routing",
    params(super::openapi::TenantPath, super::openapi::CustomerPath),
    request_body = PutCustomer,
    responses(
        (status = 200, description = "`{customer, tier}`.", body = Object),
    )
)]
pub async fn put_customer(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((raw_tenant, raw_customer)): Path<(String, String)>,
    body: Result<Json<Object<PutCustomer>>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let customer =
        CustomerId::new(&tenant, raw_customer).map_err(|error| ApiError::invalid_id(&error))?;
    let Json(Object(body)) = body?;
    state
        .node
        .routing()
        .command(
            &tenant,
            DeskCommand::SetTier {
                customer: customer.clone(),
                tier: body.tier,
            },
        )
        .await?;
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "customer.tier_set",
            &principal.actor(),
            &format!("customer:{}", customer.key()),
            tier_name(body.tier),
        )
        .await;
    Ok(Json(
        json!({"customer": customer.key(), "tier": tier_name(body.tier)}),
    ))
}

/// `GET /v1/tenants/{t}/customers/{customer}`
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/customers/{customer}",
    tag = "routing",
    params(super::openapi::TenantPath, super::openapi::CustomerPath),
    responses(
        (status = 200, description = "`{customer, tier}`.", body = Object),
    )
)]
pub async fn get_customer(
    State(state): State<AppState>,
    Path((raw_tenant, raw_customer)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let customer =
        CustomerId::new(&tenant, raw_customer).map_err(|error| ApiError::invalid_id(&error))?;
    let key = customer.key().to_owned();
    let tier = state.node.routing().tier(&tenant, &customer).await?;
    Ok(Json(json!({"customer": key, "tier": tier_name(tier)})))
}

/// `DELETE /v1/tenants/{t}/customers/{customer}`: erases the customer by destroying their key
/// (crypto-shredding). What they wrote, and the bot's and agents' words to them, read `[erased]`
/// from now on, across restarts; the rest of every conversation stays. Audited before it happens.
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/customers/{customer}",
    tag = "routing",
    params(super::openapi::TenantPath, super::openapi::CustomerPath),
    responses(
        (status = 200, description = "`{customer, erased, conversations}`: whether a key was destroyed, and how many conversations were reloaded.", body = Object),
    )
)]
pub async fn erase_customer(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((raw_tenant, raw_customer)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let customer =
        CustomerId::new(&tenant, raw_customer).map_err(|error| ApiError::invalid_id(&error))?;
    let Some(vault) = state.vault.clone() else {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "not_supported",
            "this node's journal does not seal customers' texts, so nothing can be erased by key \
             (erasure needs the embedded journal)",
        ));
    };
    let target = format!("customer:{}", customer.key());
    state
        .access
        .audit
        .record(&tenant, "customer.erased", &principal.actor(), &target, "")
        .await
        .map_err(|error| {
            ApiError::unavailable(
                "audit_unavailable",
                format!("the erasure was not audited, so not done: {error}"),
                1,
            )
        })?;
    let erased = vault
        .erase(customer.tenant(), &customer)
        .await
        .map_err(|error| ApiError::unavailable("vault_unavailable", error.to_string(), 1))?;
    // Conversations in memory drop what they opened with the key.
    let mut conversations = Vec::new();
    let stream = StreamId::customer(&customer);
    let history = read_all(state.node.journal().as_ref(), &stream, 0)
        .await
        .map_err(|error| ApiError::unavailable("journal_unavailable", error.to_string(), 1))?;
    for stored in history {
        let event = stored
            .envelope()
            .ok()
            .and_then(|envelope| envelope.decode_event::<CustomerEvent>().ok());
        if let Some(CustomerEvent::ConversationOpened(opened)) = event {
            conversations.push(opened.conversation);
        }
    }
    for conversation in &conversations {
        state
            .node
            .region()
            .conversation_command(
                conversation,
                ConversationCommand::Reload,
                EventMeta::default(),
            )
            .await?;
    }
    Ok(Json(json!({
        "customer": customer.key(),
        "erased": erased,
        "conversations": conversations.len(),
    })))
}

/// The API name of a tier.
#[must_use]
pub fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Normal => "normal",
        Tier::Vip => "vip",
    }
}
