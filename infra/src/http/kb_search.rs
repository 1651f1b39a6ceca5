//! Knowledge-base suggestions for agents: `GET /v1/tenants/{t}/kb/search?q=…` searches the tenant's
//! own documents first, then the pack's starter knowledge base (as the bot does), and gives the
//! passages with their citation, for the agent to read or quote.

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use crest_brain::engine::{default_knowledge_base, today_utc};
use crest_brain::kb::{Hit, KnowledgeBase};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::{AppState, tenant};

/// Most suggestions one search gives.
pub const MAX_SUGGESTIONS: usize = 20;

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 500;

/// Query of `GET …/kb/search`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// What to look for (typically the customer's last message): 1-500 characters.
    #[param(min_length = 1, max_length = 500)]
    pub q: String,
    /// At most this many passages (default 5, clamped to 1-20).
    #[param(maximum = 18446744073709551615_u64)]
    pub limit: Option<usize>,
}

/// One suggested passage.
#[derive(Debug, Serialize, ToSchema)]
pub struct Suggestion {
    /// `tenant` (the tenant's own documents) or `pack` (the starter knowledge base).
    pub source: &'static str,
    /// The document id.
    pub document_id: String,
    /// The document title.
    pub title: String,
    /// The document version.
    pub version: u32,
    /// The passage.
    pub passage: String,
    /// Byte offset of the passage in the document's text.
    pub start: u32,
    /// End of the passage (exclusive).
    pub end: u32,
    /// Share of the query's weight the passage matches, 0 to 1.
    pub confidence: f32,
}

/// Answer of `GET …/kb/search`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Suggestions {
    /// The query.
    pub query: String,
    /// Best first: the tenant's own passages, then the starter knowledge base's.
    pub suggestions: Vec<Suggestion>,
}

/// The pack's starter knowledge base, built on the first search (the bot keeps its own copy).
fn pack() -> Result<&'static KnowledgeBase, ApiError> {
    static PACK: OnceLock<Result<KnowledgeBase, String>> = OnceLock::new();
    PACK.get_or_init(|| default_knowledge_base().map_err(|error| error.to_string()))
        .as_ref()
        .map_err(|error| ApiError::unavailable("kb_unavailable", error.clone(), 5))
}

fn suggestion(source: &'static str, hit: Hit) -> Suggestion {
    let citation = hit.citation();
    Suggestion {
        source,
        document_id: hit.document_id,
        title: hit.title,
        version: hit.version,
        passage: hit.text,
        start: citation.start,
        end: citation.end,
        confidence: hit.confidence,
    }
}

/// `GET /v1/tenants/{tenant}/kb/search?q=…&limit=…`
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/kb/search",
    tag = "knowledge",
    params(super::openapi::TenantPath, SearchQuery),
    responses(
        (status = 200, description = "Passages for the query, the tenant's own documents first.", body = Suggestions),
    )
)]
pub async fn search(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<Suggestions>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Query(query) =
        query.map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))?;
    let length = query.q.chars().count();
    if query.q.trim().is_empty() || length > MAX_QUERY_CHARS {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("q must be 1-{MAX_QUERY_CHARS} characters, not only spaces ({length} given)"),
        ));
    }
    let limit = query.limit.unwrap_or(5).clamp(1, MAX_SUGGESTIONS);
    let bases = Arc::clone(state.knowledge.bases());
    let text = query.q.clone();
    // Searching is CPU work (and the first search builds the starter index): off the async workers.
    let suggestions = tokio::task::spawn_blocking(move || {
        let today = today_utc();
        let mut found: Vec<Suggestion> = bases
            .search(tenant.as_str(), &text, today, limit)
            .into_iter()
            .map(|hit| suggestion("tenant", hit))
            .collect();
        if found.len() < limit {
            let more = pack()?.search(&text, today, limit - found.len());
            found.extend(more.into_iter().map(|hit| suggestion("pack", hit)));
        }
        Ok::<_, ApiError>(found)
    })
    .await
    .map_err(|error| ApiError::unavailable("kb_unavailable", error.to_string(), 1))??;
    Ok(Json(Suggestions {
        query: query.q,
        suggestions,
    }))
}
