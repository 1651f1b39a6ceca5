//! Health, readiness, metrics, the index page and the JSON 404.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::AppState;
use super::error::ApiError;

/// `GET /healthz`: the process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    responses(
        (status = 200, description = "`ok`: the process is up.", content_type = "text/plain", body = String),
    )
)]
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 once start-up recovery is done, 503 before and while stopping. A cluster
/// node is ready only while it is a member and every shard of the cluster has a live owner (503
/// with the reason otherwise).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses(
        (status = 200, description = "`ready`.", content_type = "text/plain", body = String),
        (status = 503, description = "Starting, stopping, or (in a cluster) not every shard has a live owner (`not_ready`).", body = crest_proto::api::ErrorBody),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    if !state.node.is_ready() {
        return ApiError::unavailable("not_ready", "recovery in progress or shutting down", 1)
            .into_response();
    }
    if let Some(cluster) = &state.cluster {
        let readiness = cluster.readiness();
        if !readiness.is_ready() {
            return ApiError::unavailable("not_ready", readiness.to_string(), 1).into_response();
        }
    }
    (StatusCode::OK, "ready").into_response()
}

/// `GET /metrics`: Prometheus text exposition.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses(
        (status = 200, description = "Prometheus text exposition.", content_type = "text/plain", body = String),
    )
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.telemetry.render(),
    )
        .into_response()
}

/// `GET /`: a small page that explains the API and lets you talk to the bot.
#[utoipa::path(
    get,
    path = "/",
    tag = "ops",
    responses(
        (status = 200, description = "A small page that explains the API and lets you talk to the bot.", content_type = "text/html", body = String),
    )
)]
pub async fn index() -> Html<&'static str> {
    Html(include_str!("index.html"))
}

/// Any other path.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see GET / for the API")
}

/// `GET /v1/cluster`: the members, the shards each serves, the coordinator. A node alone answers
/// as a cluster of one that serves every shard.
#[utoipa::path(
    get,
    path = "/v1/cluster",
    tag = "ops",
    responses(
        (status = 200, description = "The members, the shards each serves, the coordinator.", body = Object),
    )
)]
pub async fn get_cluster(State(state): State<AppState>) -> Response {
    let Some(cluster) = &state.cluster else {
        let name = state
            .node
            .connections_node()
            .split('@')
            .next()
            .unwrap_or("local")
            .to_owned();
        let shards = crest_proto::slice::SHARD_COUNT;
        return axum::Json(crate::cluster::ClusterView {
            node: name.clone(),
            members: vec![crate::cluster::MemberView {
                name: name.clone(),
                url: String::new(),
                shards,
                load: crate::cluster::Load::default(),
            }],
            shards_total: shards,
            shards_owned: shards,
            coordinator: Some(name),
        })
        .into_response();
    };
    match cluster.view().await {
        Ok(view) => axum::Json(view).into_response(),
        Err(error) => {
            ApiError::unavailable("cluster_unavailable", error.to_string(), 1).into_response()
        }
    }
}
