//! An agent's answer to an offer: `POST …/agents/{agent}/offers/{conversation}/accept` and
//! `…/decline`.

use axum::Json;
use axum::extract::{Path, State};
use crest_actors::desk::DeskCommand;
use crest_proto::StreamId;
use serde_json::{Value, json};

use super::AppState;
use super::agents::agent_id;
use super::conversation_routing::effects_delivered;
use super::conversations::conversation_id;
use super::error::ApiError;

/// `POST /v1/tenants/{t}/agents/{agent}/offers/{conversation}/accept`
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/agents/{agent}/offers/{conversation}/accept",
    tag = "agents",
    params(super::openapi::TenantPath, super::openapi::AgentPath, super::openapi::OfferPath),
    responses(
        (status = 200, description = "Assigned: `{conversation, agent, status}`.", body = Object),
    )
)]
pub async fn accept_offer(
    state: State<AppState>,
    path: Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    answer_offer(state, path, true).await
}

/// `POST /v1/tenants/{t}/agents/{agent}/offers/{conversation}/decline`
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/agents/{agent}/offers/{conversation}/decline",
    tag = "agents",
    params(super::openapi::TenantPath, super::openapi::AgentPath, super::openapi::OfferPath),
    responses(
        (status = 200, description = "Declined: `{conversation, agent, status}`.", body = Object),
    )
)]
pub async fn decline_offer(
    state: State<AppState>,
    path: Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    answer_offer(state, path, false).await
}

/// Accepts or declines an agent's offer.
async fn answer_offer(
    State(state): State<AppState>,
    Path((raw_tenant, raw_agent, raw_conversation)): Path<(String, String, String)>,
    accept: bool,
) -> Result<Json<Value>, ApiError> {
    let (tenant, conversation) = conversation_id(&raw_tenant, &raw_conversation)?;
    let agent = agent_id(&tenant, &raw_agent)?;
    let (agent_key, conversation_key) = (agent.key().to_owned(), conversation.key());
    let command = if accept {
        DeskCommand::Accept {
            agent,
            conversation,
        }
    } else {
        DeskCommand::Decline {
            agent,
            conversation,
        }
    };
    let watch = state.node.reactor().watch(&StreamId::desk(&tenant));
    let appended_to = state.node.routing().command(&tenant, command).await?;
    // An accepted chat is answered once the conversation is the agent's (they reply next).
    effects_delivered(watch, appended_to).await;
    Ok(Json(json!({
        "conversation": conversation_key,
        "agent": agent_key,
        "status": if accept { "assigned" } else { "declined" },
    })))
}
