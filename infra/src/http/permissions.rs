//! The permission table: every route of the API with the permission it needs, and the middleware
//! that authenticates each request's credential and enforces the table.
//!
//! The table is the one place that says who may call what. A route the router serves but the
//! table does not name is refused (403), and a test walks the whole table: without a credential,
//! with another tenant's credential, and with each role.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::RequestExt as _;
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crest_actors::conversation::Status;
use crest_proto::access::AccessRole;
use crest_proto::{AgentId, ConversationId, CustomerId, TenantId};

use super::AppState;
use super::customer_merges::merge_chain;
use super::error::ApiError;
use crate::access::secret::{TokenKind, digest, parse_token};
use crate::access::{Credential, Principal, Role, now_ms, widget};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Anyone, no credential (health, metrics, the page, logging in).
    Public,
    /// The operator only (node-wide routes).
    Operator,
    /// Managing the tenant's API keys: the operator or the tenant's admin.
    KeysManage,
    /// Reading the audit log: the tenant's admin.
    AuditRead,
    /// Posting a customer's message.
    MessagesWrite,
    /// Reading a conversation (agents: their own chats).
    ConversationsRead,
    /// Replying, noting, resolving, handing off a conversation (agents: their own chats).
    ConversationsAct,
    /// Taking a chat over from anyone, or moving it between agents and groups.
    ConversationsSupervise,
    /// A customer's satisfaction rating.
    CsatWrite,
    /// Reading a seat (agents: their own).
    AgentsRead,
    /// Changing a seat (agents: their own status and languages).
    AgentsWrite,
    /// A seat's own live feed, events and offers (agents: their own).
    AgentsSelf,
    /// Reading a customer's tier.
    CustomersRead,
    /// Changing a customer's tier.
    CustomersWrite,
    /// Erasing a customer (destroying their key): the tenant's admin.
    CustomersErase,
    /// Recording a customer's identities (phone, email, channel ids, orders).
    CustomersIdentify,
    /// Merging customers and undoing merges: admins, supervisors and the operator.
    CustomersMerge,
    /// Reading queues, the routing table and routing's decisions.
    RoutingRead,
    /// Changing queues and the routing table.
    RoutingWrite,
    /// Reading tickets.
    TicketsRead,
    /// Opening and changing tickets.
    TicketsWrite,
    /// Quality inspection and voice of the customer.
    ReportsRead,
    /// Reading the knowledge base's documents.
    KnowledgeRead,
    /// Uploading and deleting knowledge-base documents.
    KnowledgeWrite,
    /// Creating, replacing and removing channel connections: the operator or the tenant's admin.
    ChannelsManage,
    /// Reading channel connections and handling their dead letters: the operator, the tenant's
    /// admins and supervisors.
    ChannelsOperate,
}

impl Permission {
    /// Whether `role` holds this permission (before the checks of scope: own seat, own chats).
    #[must_use]
    pub fn granted_to(self, role: Role) -> bool {
        use AccessRole::{Admin, Agent, Integration, Supervisor};
        let role = match role {
            Role::Operator => {
                return matches!(
                    self,
                    Self::Public
                        | Self::Operator
                        | Self::KeysManage
                        | Self::ChannelsManage
                        | Self::ChannelsOperate
                        | Self::CustomersMerge
                );
            }
            // And only on the routes of [`CUSTOMER_ROUTES`], for their own conversation.
            Role::Customer => {
                return matches!(
                    self,
                    Self::Public | Self::MessagesWrite | Self::ConversationsRead | Self::CsatWrite
                );
            }
            Role::Tenant(role) => role,
        };
        match self {
            Self::Public => true,
            Self::Operator => false,
            Self::KeysManage | Self::AuditRead | Self::CustomersErase | Self::ChannelsManage => {
                role == Admin
            }
            Self::ChannelsOperate => matches!(role, Admin | Supervisor),
            Self::MessagesWrite | Self::CsatWrite => matches!(role, Admin | Integration),
            Self::ConversationsRead | Self::TicketsRead | Self::TicketsWrite => true,
            Self::CustomersRead => true,
            Self::ConversationsAct
            | Self::AgentsRead
            | Self::AgentsWrite
            | Self::AgentsSelf
            | Self::RoutingRead
            | Self::KnowledgeRead => matches!(role, Admin | Supervisor | Agent),
            Self::CustomersIdentify => matches!(role, Admin | Supervisor | Integration),
            Self::ConversationsSupervise
            | Self::CustomersMerge
            | Self::CustomersWrite
            | Self::RoutingWrite
            | Self::ReportsRead
            | Self::KnowledgeWrite => matches!(role, Admin | Supervisor),
        }
    }
}

/// A row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRule {
    /// HTTP method.
    pub method: &'static str,
    /// The route's template as the router names it.
    pub path: &'static str,
    /// What it needs.
    pub permission: Permission,
}

const fn rule(method: &'static str, path: &'static str, permission: Permission) -> RouteRule {
    RouteRule {
        method,
        path,
        permission,
    }
}

/// Every route of the API and its permission.
pub const ROUTES: &[RouteRule] = &[
    rule("GET", "/", Permission::Public),
    rule("GET", "/healthz", Permission::Public),
    rule("GET", "/readyz", Permission::Public),
    rule("GET", "/metrics", Permission::Public),
    rule("GET", "/openapi.json", Permission::Public),
    rule("GET", "/console", Permission::Public),
    rule("GET", "/console/", Permission::Public),
    rule("GET", "/console/{file}", Permission::Public),
    rule("GET", "/widget.js", Permission::Public),
    rule("GET", "/widget/{file}", Permission::Public),
    rule("GET", "/v1/cluster", Permission::Operator),
    rule("POST", "/v1/tenants/{tenant}/sessions", Permission::Public),
    rule(
        "POST",
        "/v1/tenants/{tenant}/widget/sessions",
        Permission::Public,
    ),
    rule(
        "POST",
        "/v1/channels/{tenant}/{name}/inbound",
        Permission::Public,
    ),
    rule(
        "GET",
        "/v1/channels/{tenant}/{name}/wechat",
        Permission::Public,
    ),
    rule(
        "POST",
        "/v1/channels/{tenant}/{name}/wechat",
        Permission::Public,
    ),
    rule("GET", "/v1/channel-profiles", Permission::Public),
    rule(
        "GET",
        "/v1/tenants/{tenant}/channels",
        Permission::ChannelsOperate,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/channels/{name}",
        Permission::ChannelsOperate,
    ),
    rule(
        "PUT",
        "/v1/tenants/{tenant}/channels/{name}",
        Permission::ChannelsManage,
    ),
    rule(
        "DELETE",
        "/v1/tenants/{tenant}/channels/{name}",
        Permission::ChannelsManage,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/channels/{name}/dead-letters",
        Permission::ChannelsOperate,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/channels/{name}/dead-letters/{id}/retry",
        Permission::ChannelsOperate,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/proactive-rules",
        Permission::ChannelsOperate,
    ),
    rule(
        "PUT",
        "/v1/tenants/{tenant}/proactive-rules",
        Permission::ChannelsManage,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/commerce-events",
        Permission::MessagesWrite,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/customers/{customer}/proactive",
        Permission::CustomersRead,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/lead-policy",
        Permission::KnowledgeRead,
    ),
    rule(
        "PUT",
        "/v1/tenants/{tenant}/lead-policy",
        Permission::KnowledgeWrite,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/integrations/crm",
        Permission::ChannelsOperate,
    ),
    rule(
        "PUT",
        "/v1/tenants/{tenant}/integrations/crm",
        Permission::ChannelsManage,
    ),
    rule(
        "DELETE",
        "/v1/tenants/{tenant}/integrations/crm",
        Permission::ChannelsManage,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/integrations/crm/dead-letters",
        Permission::ChannelsOperate,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/integrations/crm/dead-letters/{id}/retry",
        Permission::ChannelsOperate,
    ),
    rule("GET", "/v1/tenants/{tenant}/widget", Permission::KeysManage),
    rule("PUT", "/v1/tenants/{tenant}/widget", Permission::KeysManage),
    rule("GET", "/v1/tenants/{tenant}/audit", Permission::AuditRead),
    rule(
        "GET",
        "/v1/tenants/{tenant}/api-keys",
        Permission::KeysManage,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/api-keys",
        Permission::KeysManage,
    ),
    rule(
        "DELETE",
        "/v1/tenants/{tenant}/api-keys/{key}",
        Permission::KeysManage,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/messages",
        Permission::MessagesWrite,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/conversations/{id}",
        Permission::ConversationsRead,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/conversations/{id}/events",
        Permission::ConversationsRead,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/conversations/{id}/stream",
        Permission::ConversationsRead,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/customers/{customer}/conversation",
        Permission::ConversationsRead,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/customers/{customer}/conversations",
        Permission::ConversationsRead,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/customers/{customer}/orders",
        Permission::ConversationsRead,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/conversations/{id}/agent-messages",
        Permission::ConversationsAct,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/conversations/{id}/handoff",
        Permission::ConversationsAct,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/conversations/{id}/transfer",
        Permission::ConversationsAct,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/conversations/{id}/take-over",
        Permission::ConversationsSupervise,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/conversations/{id}/resolve",
        Permission::ConversationsAct,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/conversations/{id}/csat",
        Permission::CsatWrite,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/agents",
        Permission::RoutingRead,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/agents/{agent}",
        Permission::AgentsRead,
    ),
    rule(
        "PUT",
        "/v1/tenants/{tenant}/agents/{agent}",
        Permission::AgentsWrite,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/agents/{agent}/events",
        Permission::AgentsSelf,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/agents/{agent}/stream",
        Permission::AgentsSelf,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/agents/{agent}/offers/{conversation}/accept",
        Permission::AgentsSelf,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/agents/{agent}/offers/{conversation}/decline",
        Permission::AgentsSelf,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/customers/{customer}/identities",
        Permission::CustomersRead,
    ),
    rule(
        "PUT",
        "/v1/tenants/{tenant}/customers/{customer}/identities",
        Permission::CustomersIdentify,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/customers/merge",
        Permission::CustomersMerge,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/customers/merges/{id}/undo",
        Permission::CustomersMerge,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/customers/{customer}",
        Permission::CustomersRead,
    ),
    rule(
        "PUT",
        "/v1/tenants/{tenant}/customers/{customer}",
        Permission::CustomersWrite,
    ),
    rule(
        "DELETE",
        "/v1/tenants/{tenant}/customers/{customer}",
        Permission::CustomersErase,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/queues",
        Permission::RoutingRead,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/queues/{group}",
        Permission::RoutingRead,
    ),
    rule(
        "PUT",
        "/v1/tenants/{tenant}/queues/{group}",
        Permission::RoutingWrite,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/routing-table",
        Permission::RoutingRead,
    ),
    rule(
        "PUT",
        "/v1/tenants/{tenant}/routing-table",
        Permission::RoutingWrite,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/routing/events",
        Permission::RoutingRead,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/tickets",
        Permission::TicketsRead,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/tickets",
        Permission::TicketsWrite,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/tickets/{id}",
        Permission::TicketsRead,
    ),
    rule(
        "PATCH",
        "/v1/tenants/{tenant}/tickets/{id}",
        Permission::TicketsWrite,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/tickets/{id}/events",
        Permission::TicketsRead,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/quality",
        Permission::ReportsRead,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/quality/{id}",
        Permission::ReportsRead,
    ),
    rule("GET", "/v1/tenants/{tenant}/voc", Permission::ReportsRead),
    rule(
        "GET",
        "/v1/tenants/{tenant}/kb/documents",
        Permission::KnowledgeRead,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/kb/search",
        Permission::KnowledgeRead,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/intents",
        Permission::KnowledgeRead,
    ),
    rule(
        "PUT",
        "/v1/tenants/{tenant}/intents/{intent}",
        Permission::KnowledgeWrite,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/intents/candidates",
        Permission::KnowledgeWrite,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/intents/activate",
        Permission::KnowledgeWrite,
    ),
    rule(
        "POST",
        "/v1/tenants/{tenant}/kb/documents",
        Permission::KnowledgeWrite,
    ),
    rule(
        "GET",
        "/v1/tenants/{tenant}/kb/documents/{id}",
        Permission::KnowledgeRead,
    ),
    rule(
        "DELETE",
        "/v1/tenants/{tenant}/kb/documents/{id}",
        Permission::KnowledgeWrite,
    ),
];

static TABLE: LazyLock<HashMap<(&'static str, &'static str), Permission>> = LazyLock::new(|| {
    ROUTES
        .iter()
        .map(|rule| ((rule.method, rule.path), rule.permission))
        .collect()
});

/// The permission of `method` on the route template `path`.
#[must_use]
pub fn permission_of(method: &Method, path: &str) -> Option<Permission> {
    TABLE.get(&(method.as_str(), path)).copied()
}

/// The methods the permission table lists for the route template `path` (HEAD with GET).
fn methods_of(path: &str) -> Vec<&'static str> {
    let mut methods: Vec<&'static str> = ROUTES
        .iter()
        .filter(|rule| rule.path == path)
        .map(|rule| rule.method)
        .collect();
    if methods.contains(&"GET") {
        methods.push("HEAD");
    }
    methods
}

/// 405 with the `Allow` header: the route exists, but not for this method.
fn method_not_allowed(method: &Method, allowed: &[&str]) -> Response {
    let allow = allowed.join(", ");
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not served here; use {allow}"),
    )
    .into_response();
    if let Ok(value) = header::HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

fn unauthenticated(reason: &str) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", reason).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"crest\""),
    );
    response
}

fn forbidden(reason: impl Into<String>) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", reason).into_response()
}

/// The bearer token of a request: the `Authorization` header, or on WebSocket routes (browsers
/// cannot set headers there) the `access_token` query parameter.
fn presented_token<'a>(
    headers: &'a HeaderMap,
    query: Option<&'a str>,
    path: &str,
) -> Option<&'a str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().ok()?;
        let (scheme, token) = text.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|token| !token.is_empty());
    }
    if !path.ends_with("/stream") {
        return None;
    }
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("access_token="))
        .filter(|token| !token.is_empty())
}

/// Removes `access_token` from the query once it served, so handlers never see it (and their
/// strict query parsing does not refuse it).
fn strip_access_token(request: &mut Request) {
    let Some(query) = request.uri().query() else {
        return;
    };
    if !query
        .split('&')
        .any(|pair| pair.starts_with("access_token="))
    {
        return;
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.starts_with("access_token="))
        .collect();
    let path = request.uri().path();
    let rebuilt = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    if let Ok(uri) = rebuilt.parse() {
        *request.uri_mut() = uri;
    }
}

/// Checks a token: the operator's, a widget session, or a live tenant credential.
async fn authenticate(state: &AppState, token: &str) -> Result<Principal, Response> {
    if widget::is_session_token(token) {
        let session = widget::verify_session(&state.access.masters, token)
            .filter(|session| session.expires_at_ms > now_ms())
            .ok_or_else(|| unauthenticated("unknown or expired widget session; open a new one"))?;
        return Ok(Principal::Customer {
            tenant: session.tenant,
            customer: session.customer,
            verified: session.verified,
        });
    }
    if state
        .access
        .operator
        .as_ref()
        .is_some_and(|operator| operator.matches(token))
    {
        return Ok(Principal::Operator);
    }
    let Some((kind, tenant)) = parse_token(token) else {
        return Err(unauthenticated(
            "the bearer token is not a Crest credential",
        ));
    };
    let found = state
        .access
        .store
        .credential(&tenant, &digest(token), now_ms())
        .await
        .map_err(|error| {
            ApiError::unavailable(
                "unavailable",
                format!("credentials cannot be checked ({error}); retry"),
                1,
            )
            .into_response()
        })?;
    match (kind, found) {
        (TokenKind::ApiKey, Some(Credential::Key(key))) => Ok(Principal::Tenant {
            tenant,
            role: key.role,
            agent: key.agent,
            actor: format!("key:{}", key.id),
        }),
        (TokenKind::Session, Some(Credential::Session(session))) => Ok(Principal::Tenant {
            tenant,
            role: session.role,
            agent: Some(session.agent),
            actor: format!("session:{}", session.id),
        }),
        _ => Err(unauthenticated(
            "unknown, revoked or expired credential; ask an admin for a key or log in again",
        )),
    }
}

/// The path parameter `name`, if the route has one.
fn param<'a>(params: &'a RawPathParams, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// Whether an agent-role principal may touch the conversation: it is theirs now, or they wrote in
/// it.
async fn own_chat(state: &AppState, agent: &AgentId, conversation: &ConversationId) -> bool {
    let Ok(Some(found)) = state.node.region().conversation_state(conversation).await else {
        // Unknown conversations fall through to the handler's 404.
        return true;
    };
    found.status == Status::Assigned(agent.clone())
        || found
            .messages
            .iter()
            .any(|message| message.agent.as_ref() == Some(agent))
}

/// The routes a customer's widget session may use (each for its own customer and conversation).
pub const CUSTOMER_ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/tenants/{tenant}/messages"),
    (
        "GET",
        "/v1/tenants/{tenant}/customers/{customer}/conversation",
    ),
    ("GET", "/v1/tenants/{tenant}/conversations/{id}"),
    ("GET", "/v1/tenants/{tenant}/conversations/{id}/events"),
    ("GET", "/v1/tenants/{tenant}/conversations/{id}/stream"),
    ("POST", "/v1/tenants/{tenant}/conversations/{id}/csat"),
];

/// A widget session's scope: its tenant, the customer routes, its own customer and conversation.
async fn check_customer_scope(
    state: &AppState,
    (tenant, customer): (&TenantId, &CustomerId),
    (method, route): (&Method, &str),
    params: &RawPathParams,
) -> Result<(), Response> {
    if param(params, "tenant") != Some(tenant.as_str()) {
        return Err(forbidden("this widget session belongs to another tenant"));
    }
    if !CUSTOMER_ROUTES
        .iter()
        .any(|(allowed_method, allowed)| method.as_str() == *allowed_method && route == *allowed)
    {
        return Err(forbidden(
            "a widget session reaches only its own customer's conversation",
        ));
    }
    if let Some(raw_customer) = param(params, "customer")
        && raw_customer != customer.key()
    {
        return Err(forbidden("a widget session acts only as its own customer"));
    }
    if let Some(raw_id) = param(params, "id")
        && let Ok(conversation) = ConversationId::parse(tenant, raw_id)
        && let Ok(Some(found)) = state.node.region().conversation_state(&conversation).await
        && found.customer.as_ref() != Some(customer)
    {
        // A customer merged into another writes into that customer's conversation: its widget
        // follows it there, until the merge is undone.
        let merged_into_owner = match (&found.customer, merge_chain(state, customer).await) {
            (Some(owner), Ok(chain)) => chain.contains(owner),
            _ => false,
        };
        if !merged_into_owner {
            return Err(forbidden(
                "a widget session sees only its own customer's conversation",
            ));
        }
    }
    Ok(())
}

/// The scope checks after the role check: the tenant of the path, for agents their own seat
/// and chats, for widget sessions their own customer.
async fn check_scope(
    state: &AppState,
    principal: &Principal,
    (method, route): (&Method, &str),
    params: &RawPathParams,
) -> Result<(), Response> {
    if let Principal::Customer {
        tenant, customer, ..
    } = principal
    {
        return check_customer_scope(state, (tenant, customer), (method, route), params).await;
    }
    let Principal::Tenant { tenant, .. } = principal else {
        return Ok(());
    };
    let Some(raw_tenant) = param(params, "tenant") else {
        return Err(forbidden("a tenant credential cannot use node-wide routes"));
    };
    if TenantId::new(raw_tenant).is_err() {
        // No tenant can have this name, so there is nothing to protect: the handler answers 400
        // `invalid_id` with its reason.
        return Ok(());
    }
    if raw_tenant != tenant.as_str() {
        return Err(forbidden("this credential belongs to another tenant"));
    }
    if !principal.is_agent() {
        return Ok(());
    }
    let own = principal.agent();
    if let Some(raw_agent) = param(params, "agent") {
        let same = AgentId::new(tenant, raw_agent)
            .ok()
            .is_some_and(|agent| own == Some(&agent));
        if !same {
            return Err(forbidden("an agent credential acts only as its own agent"));
        }
    }
    if let Some(raw_id) = param(params, "id")
        && let Ok(conversation) = ConversationId::parse(tenant, raw_id)
    {
        let Some(own) = own else {
            return Err(forbidden("this agent key is not bound to an agent"));
        };
        if !own_chat(state, own, &conversation).await {
            return Err(forbidden("an agent sees and acts only on their own chats"));
        }
    }
    if AGENT_CUSTOMER_ROUTES.contains(&route)
        && let Some(raw_customer) = param(params, "customer")
        && let Ok(customer) = CustomerId::new(tenant, raw_customer)
    {
        let Some(own) = own else {
            return Err(forbidden("this agent key is not bound to an agent"));
        };
        if !serves_customer(state, own, &customer).await {
            return Err(forbidden(
                "an agent reads the history only of customers in their own chats or offers",
            ));
        }
    }
    Ok(())
}

/// A customer's whole history and orders: an agent reads them only while serving (or being
/// offered) one of the customer's chats.
const AGENT_CUSTOMER_ROUTES: [&str; 3] = [
    "/v1/tenants/{tenant}/customers/{customer}/conversations",
    "/v1/tenants/{tenant}/customers/{customer}/orders",
    "/v1/tenants/{tenant}/customers/{customer}/proactive",
];

/// Whether one of the agent's chats or offers is with `customer`.
async fn serves_customer(state: &AppState, agent: &AgentId, customer: &CustomerId) -> bool {
    let Ok(Some(seat)) = state.node.routing().seat(agent.tenant(), agent).await else {
        return false;
    };
    for conversation in seat.seat.chats.iter().chain(&seat.seat.offers) {
        if let Ok(Some(found)) = state.node.region().conversation_state(conversation).await
            && found.customer.as_ref() == Some(customer)
        {
            return true;
        }
    }
    false
}

/// The middleware: finds the route's permission, authenticates the credential, checks role and
/// scope, and hands the [`Principal`] to the handler as an extension.
pub async fn enforce(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(route) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned())
    else {
        return next.run(request).await;
    };
    // HEAD is answered wherever GET is (axum serves it from the GET handler).
    let method = if request.method() == Method::HEAD {
        Method::GET
    } else {
        request.method().clone()
    };
    let Some(permission) = permission_of(&method, &route) else {
        let allowed = methods_of(&route);
        if allowed.is_empty() {
            tracing::error!(route, method = %request.method(), "route missing from the permission table");
            return forbidden("this route has no permission entry");
        }
        return method_not_allowed(request.method(), &allowed);
    };
    if permission == Permission::Public {
        return next.run(request).await;
    }
    let token =
        presented_token(request.headers(), request.uri().query(), &route).map(str::to_owned);
    let Some(token) = token else {
        return unauthenticated("send Authorization: Bearer <key>");
    };
    let principal = match authenticate(&state, &token).await {
        Ok(principal) => principal,
        Err(response) => return response,
    };
    if !permission.granted_to(principal.role()) {
        return forbidden(format!(
            "the {} role may not do this",
            match principal.role() {
                Role::Operator => "operator",
                Role::Tenant(role) => role.as_str(),
                Role::Customer => "customer widget",
            }
        ));
    }
    let params = match request.extract_parts::<RawPathParams>().await {
        Ok(params) => params,
        Err(rejection) => {
            return ApiError::bad_request("invalid_path", rejection.body_text()).into_response();
        }
    };
    let method = request.method().clone();
    if let Err(response) = check_scope(&state, &principal, (&method, &route), &params).await {
        return response;
    }
    request.extensions_mut().insert(principal);
    strip_access_token(&mut request);
    next.run(request).await
}
