//! The HTTP/WebSocket API (v1). Routes, limits and error shapes are documented in the README.

mod access;
mod agent_stream;
mod agents;
mod body;
mod channels;
mod conversation_routing;
mod conversations;
mod crm;
pub mod customer_merges;
mod customers;
pub mod error;
mod headers;
mod intents;
mod kb_search;
mod knowledge;
pub mod limits;
mod messages;
mod offers;
pub mod openapi;
mod ops;
pub mod orders;
pub mod permissions;
pub mod pii;
mod proactive;
mod quality;
mod queues;
mod routing_table;
mod stream;
mod tickets;
pub mod views;
mod web;
mod wechat;
pub(crate) mod whole;
mod widget;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use crest_actors::Node;
use crest_proto::TenantId;
use tokio::sync::Semaphore;

use crate::projections::quality::QualityInspection;
use crate::projections::tickets::TicketBoard;
use crate::projections::voc::VoiceOfCustomer;
use crate::telemetry::Telemetry;
use error::ApiError;

/// Everything a handler needs: a cheap handle (every middleware layer and extractor clones it
/// per request) to the [`AppParts`].
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    /// The handle to `parts`.
    #[must_use]
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What [`AppState`] holds.
#[derive(Debug)]
pub struct AppParts {
    /// The node.
    pub node: Arc<Node>,
    /// Metrics.
    pub telemetry: Telemetry,
    /// Admission control: one permit per command in flight.
    pub admission: Arc<Semaphore>,
    /// Longest wait for a command's acknowledgement before answering 503.
    pub command_timeout: Duration,
    /// Read models of the projections.
    pub projections: Projections,
    /// This node's membership of its cluster (`None`: alone).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Credentials: the tenants' access streams and the operator's token.
    pub access: crate::access::Access,
    /// Message rates and WebSocket caps.
    pub limits: Arc<limits::Limiters>,
    /// Whether the node serves HTTPS (answers carry HSTS).
    pub tls: bool,
    /// Customers' keys (`None`: the journal does not seal customers' texts).
    pub vault: Option<Arc<crate::vault::Vault>>,
    /// The merchant's orders and parcels.
    pub commerce: orders::CommercePort,
    /// The tenants' knowledge bases.
    pub knowledge: Arc<crate::knowledge::KnowledgeStore>,
    /// The tenants' own intents and models.
    pub intents: Arc<crate::intents::IntentStore>,
    /// The tenants' channel connections and their outboxes (and their CRM integrations).
    pub channels: Arc<crate::channels::ChannelStore>,
    /// Proactive messages: the tenants' rules and the customers' decisions.
    pub proactive: Arc<crate::proactive::ProactiveService>,
    /// The tenants' lead policies.
    pub leads: Arc<crate::leads::LeadPolicyStore>,
}

/// The read models the API serves, kept up to date by the projection runner (which the node's
/// startup wires to the journal and the bus).
#[derive(Debug, Clone)]
pub struct Projections {
    /// Quality inspections.
    pub quality: Arc<std::sync::Mutex<QualityInspection>>,
    /// Voice of the customer.
    pub voc: Arc<std::sync::Mutex<VoiceOfCustomer>>,
    /// Every tenant's tickets.
    pub tickets: Arc<std::sync::Mutex<TicketBoard>>,
    /// Silent conversations, for the proactive service's silence timers.
    pub silence: Arc<std::sync::Mutex<crate::proactive::silence::SilenceWatch>>,
}

/// Builds the router.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route(
            "/v1/tenants/{tenant}/api-keys",
            get(access::list_api_keys).post(access::post_api_key),
        )
        .route(
            "/v1/tenants/{tenant}/api-keys/{key}",
            delete(access::revoke_api_key),
        )
        .route("/v1/tenants/{tenant}/audit", get(access::get_audit))
        .route("/v1/tenants/{tenant}/sessions", post(access::post_session))
        .route(
            "/v1/tenants/{tenant}/messages",
            post(messages::post_message),
        )
        .route(
            "/v1/tenants/{tenant}/conversations/{id}",
            get(conversations::get_conversation),
        )
        .route(
            "/v1/tenants/{tenant}/conversations/{id}/events",
            get(conversations::get_events),
        )
        .route(
            "/v1/tenants/{tenant}/conversations/{id}/stream",
            get(stream::stream_events),
        )
        .route(
            "/v1/tenants/{tenant}/customers/{customer}/conversation",
            get(conversations::get_customer_conversation),
        )
        .route(
            "/v1/tenants/{tenant}/customers/{customer}/conversations",
            get(conversations::get_customer_conversations),
        )
        .route(
            "/v1/tenants/{tenant}/customers/{customer}/orders",
            get(orders::get_customer_orders),
        )
        .route(
            "/v1/tenants/{tenant}/conversations/{id}/agent-messages",
            post(conversation_routing::post_agent_message),
        )
        .route(
            "/v1/tenants/{tenant}/conversations/{id}/handoff",
            post(conversation_routing::post_handoff),
        )
        .route(
            "/v1/tenants/{tenant}/conversations/{id}/transfer",
            post(conversation_routing::post_transfer),
        )
        .route(
            "/v1/tenants/{tenant}/conversations/{id}/take-over",
            post(conversation_routing::post_take_over),
        )
        .route(
            "/v1/tenants/{tenant}/conversations/{id}/resolve",
            post(conversation_routing::post_resolve),
        )
        .route(
            "/v1/tenants/{tenant}/conversations/{id}/csat",
            post(conversation_routing::post_csat),
        )
        .route("/v1/tenants/{tenant}/agents", get(agents::list_agents))
        .route(
            "/v1/tenants/{tenant}/agents/{agent}",
            get(agents::get_agent).put(agents::put_agent),
        )
        .route(
            "/v1/tenants/{tenant}/agents/{agent}/events",
            get(agents::get_agent_events),
        )
        .route(
            "/v1/tenants/{tenant}/agents/{agent}/stream",
            get(agent_stream::agent_stream),
        )
        .route(
            "/v1/tenants/{tenant}/agents/{agent}/offers/{conversation}/accept",
            post(offers::accept_offer),
        )
        .route(
            "/v1/tenants/{tenant}/agents/{agent}/offers/{conversation}/decline",
            post(offers::decline_offer),
        )
        .route(
            "/v1/tenants/{tenant}/customers/{customer}/identities",
            get(customer_merges::get_identities).put(customer_merges::put_identity),
        )
        .route(
            "/v1/tenants/{tenant}/customers/merge",
            post(customer_merges::post_merge),
        )
        .route(
            "/v1/tenants/{tenant}/customers/merges/{id}/undo",
            post(customer_merges::post_undo),
        )
        .route(
            "/v1/tenants/{tenant}/customers/{customer}",
            get(customers::get_customer)
                .put(customers::put_customer)
                .delete(customers::erase_customer),
        )
        .route("/v1/tenants/{tenant}/queues", get(queues::list_queues))
        .route(
            "/v1/tenants/{tenant}/queues/{group}",
            get(queues::get_queue).put(queues::put_queue),
        )
        .route(
            "/v1/tenants/{tenant}/routing-table",
            get(routing_table::get_routing_table).put(routing_table::put_routing_table),
        )
        .route(
            "/v1/tenants/{tenant}/routing/events",
            get(routing_table::get_desk_events),
        )
        .route(
            "/v1/tenants/{tenant}/tickets",
            get(tickets::list_tickets).post(tickets::post_ticket),
        )
        .route(
            "/v1/tenants/{tenant}/tickets/{id}",
            get(tickets::get_ticket).patch(tickets::patch_ticket),
        )
        .route(
            "/v1/tenants/{tenant}/tickets/{id}/events",
            get(tickets::get_ticket_events),
        )
        .route(
            "/v1/tenants/{tenant}/quality",
            get(quality::list_inspections),
        )
        .route(
            "/v1/tenants/{tenant}/quality/{id}",
            get(quality::get_inspection),
        )
        .route("/v1/tenants/{tenant}/voc", get(quality::get_voc))
        .route(
            "/v1/tenants/{tenant}/kb/documents",
            get(knowledge::list_documents)
                .post(knowledge::post_document)
                .layer(DefaultBodyLimit::max(knowledge::MAX_UPLOAD_BYTES)),
        )
        .route(
            "/v1/tenants/{tenant}/kb/documents/{id}",
            get(knowledge::get_document).delete(knowledge::delete_document),
        )
        .route("/v1/tenants/{tenant}/kb/search", get(kb_search::search))
        .route("/v1/tenants/{tenant}/intents", get(intents::get_intents))
        .route(
            "/v1/tenants/{tenant}/intents/candidates",
            post(intents::post_candidate),
        )
        .route(
            "/v1/tenants/{tenant}/intents/activate",
            post(intents::post_activate),
        )
        .route(
            "/v1/tenants/{tenant}/intents/{intent}",
            put(intents::put_intent),
        )
        .route(
            "/v1/tenants/{tenant}/channels",
            get(channels::list_channels),
        )
        .route(
            "/v1/tenants/{tenant}/channels/{name}",
            get(channels::get_channel)
                .put(channels::put_channel)
                .delete(channels::delete_channel),
        )
        .route(
            "/v1/tenants/{tenant}/channels/{name}/dead-letters",
            get(channels::get_dead_letters),
        )
        .route(
            "/v1/tenants/{tenant}/channels/{name}/dead-letters/{id}/retry",
            post(channels::post_retry),
        )
        .route(
            "/v1/tenants/{tenant}/lead-policy",
            get(crm::get_lead_policy).put(crm::put_lead_policy),
        )
        .route(
            "/v1/tenants/{tenant}/integrations/crm",
            get(crm::get_crm).put(crm::put_crm).delete(crm::delete_crm),
        )
        .route(
            "/v1/tenants/{tenant}/integrations/crm/dead-letters",
            get(crm::get_crm_dead_letters),
        )
        .route(
            "/v1/tenants/{tenant}/integrations/crm/dead-letters/{id}/retry",
            post(crm::post_crm_retry),
        )
        .route(
            "/v1/channels/{tenant}/{name}/inbound",
            post(channels::post_inbound),
        )
        .route(
            "/v1/channels/{tenant}/{name}/wechat",
            get(wechat::get_wechat).post(wechat::post_wechat),
        )
        .route("/v1/channel-profiles", get(wechat::list_profiles))
        .route(
            "/v1/tenants/{tenant}/proactive-rules",
            get(proactive::get_proactive_rules).put(proactive::put_proactive_rules),
        )
        .route(
            "/v1/tenants/{tenant}/commerce-events",
            post(proactive::post_commerce_event),
        )
        .route(
            "/v1/tenants/{tenant}/customers/{customer}/proactive",
            get(proactive::get_proactive_decisions),
        )
        .route("/v1/cluster", get(ops::get_cluster))
        .route(
            "/v1/tenants/{tenant}/widget",
            get(widget::get_widget).put(widget::put_widget),
        )
        .route(
            "/v1/tenants/{tenant}/widget/sessions",
            post(widget::post_session),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(openapi::get_openapi))
        .route("/", get(ops::index))
        .route("/console", get(web::console_redirect))
        .route("/console/", get(web::console))
        .route("/console/{file}", get(web::console_file))
        .route("/widget.js", get(web::widget_script))
        .route("/widget/{file}", get(web::widget_file))
        // Inside the permission check: it needs the request's principal.
        .route_layer(middleware::from_fn_with_state(state.clone(), pii::protect))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            permissions::enforce,
        ))
        .fallback(ops::not_found)
        .layer(DefaultBodyLimit::max(crest_proto::api::MAX_BODY_BYTES));
    api.layer(middleware::from_fn_with_state(state.clone(), widget::cors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            headers::secure,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), track_request))
        .with_state(state)
}

/// Records request count and duration by route template (bounded labels).
async fn track_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .telemetry
        .http_seconds
        .with_label_values(&[&route, &method])
        .observe(started.elapsed().as_secs_f64());
    state
        .telemetry
        .http_requests
        .with_label_values(&[&route, &method, response.status().as_str()])
        .inc();
    response
}

/// Parses the tenant path segment.
fn tenant(raw: &str) -> Result<TenantId, ApiError> {
    TenantId::new(raw).map_err(|error| ApiError::invalid_id(&error))
}
