//! The API contract, generated from the code: every handler carries a `#[utoipa::path]` with its
//! route, parameters, body and answers, and every request body is a type deriving `ToSchema`, so
//! the document states the constraints the handlers enforce (lengths, patterns, ranges, required
//! fields). What the code knows in one place is added here for every operation: who may call it
//! (the permission table), the error answers every route shares, and the few cross-field rules
//! the derive cannot state. `GET /openapi.json` serves the document; `docs/openapi.yaml` is its
//! copy (`crest openapi > docs/openapi.yaml`; a test fails when they differ).

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::permissions::{self, Permission};

/// The `{tenant}` path segment.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the derive only
pub struct TenantPath {
    /// The merchant: 1-64 characters of lowercase a-z, 0-9, `-` and `_`, starting with a letter or
    /// digit.
    #[param(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$", example = "demo")]
    tenant: String,
}

/// The `{id}` of a conversation, a ticket or an inspection: a ULID.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct UlidPath {
    /// A 26-character ULID (Crockford base 32).
    #[param(
        pattern = r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$",
        example = "01JCX9Z8Q4W3V2T1S0R9P8N7M6"
    )]
    id: String,
}

/// The `{conversation}` of an offer: a ULID.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct OfferPath {
    /// The offered conversation (a 26-character ULID).
    #[param(
        pattern = r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$",
        example = "01JCX9Z8Q4W3V2T1S0R9P8N7M6"
    )]
    conversation: String,
}

/// The `{customer}` path segment.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct CustomerPath {
    /// The merchant's customer id: 1-128 characters of `A-Z a-z 0-9 - _ . @ + :`.
    #[param(
        min_length = 1,
        max_length = 128,
        pattern = r"^[A-Za-z0-9._@+:-]+$",
        example = "c-1001"
    )]
    customer: String,
}

/// The `{agent}` path segment.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct AgentPath {
    /// The agent's seat id: 1-128 characters of `A-Z a-z 0-9 - _ . @ + :`.
    #[param(
        min_length = 1,
        max_length = 128,
        pattern = r"^[A-Za-z0-9._@+:-]+$",
        example = "alice"
    )]
    agent: String,
}

/// The `{group}` path segment.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct GroupPath {
    /// A skill group: 1-64 characters of lowercase a-z, 0-9, `-` and `_`, starting with a letter
    /// or digit.
    #[param(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$", example = "general")]
    group: String,
}

/// The `{key}` path segment.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct KeyPath {
    /// The key's id (as listed by `GET …/api-keys`).
    #[param(
        min_length = 1,
        max_length = 128,
        example = "01JCX9Z8Q4W3V2T1S0R9P8N7M6"
    )]
    key: String,
}

/// A skill group: 1-64 characters of lowercase a-z, 0-9, `-` and `_`, starting with a letter or
/// digit.
#[derive(Debug, ToSchema)]
#[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$")]
#[allow(dead_code)] // the contract's name for a group; the handlers hold groups as strings
pub struct GroupName(String);

/// An intent example: 1-300 characters, no control characters (line breaks included), not only
/// spaces. (A newtype's schema cannot carry lengths through the derive, so it is written here.)
#[derive(Debug)]
#[allow(dead_code)]
pub struct ExampleText(String);

impl utoipa::PartialSchema for ExampleText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(300))
            .pattern(Some(
                r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$",
            ))
            .into()
    }
}

impl utoipa::ToSchema for ExampleText {}

/// A language: a lowercase code such as `zh` or `en` (2-8 characters of a-z and `-`).
#[derive(Debug, ToSchema)]
#[schema(pattern = r"^[a-z-]{2,8}$")]
#[allow(dead_code)]
pub struct LanguageCode(String);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Crest HTTP API",
        version = "v1",
        description = "Event-sourced customer service for e-commerce merchants. Generated from the \
            handlers and types of `infra/src/http` (served at `GET /openapi.json`; \
            `docs/openapi.yaml` is its copy)."
    ),
    paths(
        super::access::list_api_keys,
        super::access::post_api_key,
        super::access::revoke_api_key,
        super::access::get_audit,
        super::access::post_session,
        super::messages::post_message,
        super::conversations::get_conversation,
        super::conversations::get_events,
        super::stream::stream_events,
        super::conversations::get_customer_conversation,
        super::conversations::get_customer_conversations,
        super::orders::get_customer_orders,
        super::conversation_routing::post_agent_message,
        super::conversation_routing::post_handoff,
        super::conversation_routing::post_transfer,
        super::conversation_routing::post_take_over,
        super::conversation_routing::post_resolve,
        super::conversation_routing::post_csat,
        super::agents::list_agents,
        super::agents::get_agent,
        super::agents::put_agent,
        super::agents::get_agent_events,
        super::agent_stream::agent_stream,
        super::offers::accept_offer,
        super::offers::decline_offer,
        super::customers::get_customer,
        super::customers::put_customer,
        super::customers::erase_customer,
        super::customer_merges::put_identity,
        super::customer_merges::get_identities,
        super::customer_merges::post_merge,
        super::customer_merges::post_undo,
        super::queues::list_queues,
        super::queues::get_queue,
        super::queues::put_queue,
        super::routing_table::get_routing_table,
        super::routing_table::put_routing_table,
        super::routing_table::get_desk_events,
        super::tickets::list_tickets,
        super::tickets::post_ticket,
        super::tickets::get_ticket,
        super::tickets::patch_ticket,
        super::tickets::get_ticket_events,
        super::quality::list_inspections,
        super::quality::get_inspection,
        super::quality::get_voc,
        super::knowledge::post_document,
        super::knowledge::list_documents,
        super::knowledge::get_document,
        super::knowledge::delete_document,
        super::kb_search::search,
        super::intents::get_intents,
        super::intents::put_intent,
        super::intents::post_candidate,
        super::intents::post_activate,
        super::channels::put_channel,
        super::channels::get_channel,
        super::channels::list_channels,
        super::channels::delete_channel,
        super::channels::post_inbound,
        super::channels::get_dead_letters,
        super::channels::post_retry,
        super::wechat::get_wechat,
        super::wechat::post_wechat,
        super::wechat::list_profiles,
        super::proactive::get_proactive_rules,
        super::proactive::put_proactive_rules,
        super::proactive::post_commerce_event,
        super::proactive::get_proactive_decisions,
        super::crm::get_lead_policy,
        super::crm::put_lead_policy,
        super::crm::put_crm,
        super::crm::get_crm,
        super::crm::delete_crm,
        super::crm::get_crm_dead_letters,
        super::crm::post_crm_retry,
        super::ops::get_cluster,
        super::widget::get_widget,
        super::widget::put_widget,
        super::widget::post_session,
        super::ops::healthz,
        super::ops::readyz,
        super::ops::metrics,
        super::ops::index,
        super::web::console_redirect,
        super::web::console,
        super::web::console_file,
        super::web::widget_script,
        super::web::widget_file,
        get_openapi,
    ),
    components(schemas(crest_proto::api::ErrorBody)),
    tags(
        (name = "access", description = "API keys, agents' logins, the customer widget and the audit log."),
        (name = "conversations", description = "Customer messages and conversation read models."),
        (name = "agents", description = "Agent seats, presence, offers and the agent's live stream."),
        (name = "routing", description = "Handoff, transfer, take-over, resolve, customer tiers, queues and the routing table."),
        (name = "customers", description = "One customer across channels: identities, merges on strong evidence, undo."),
        (name = "tickets", description = "After-sales tickets with SLAs."),
        (name = "reports", description = "Quality inspection and voice of the customer."),
        (name = "web", description = "The consoles (agent workbench, supervisor view, admin pages) and the customer widget: static files embedded in the binary."),
        (name = "knowledge", description = "The tenant's knowledge base: documents the bot answers from and cites."),
        (name = "channels", description = "Channel connections: signed inbound webhooks, outbound delivery from a durable per-channel outbox, dead letters."),
        (name = "proactive", description = "Proactive service: commerce events and rules (quiet hours in the tenant's time zone, a daily cap per customer, never during a human chat); every decision recorded with its reason."),
        (name = "leads", description = "Leads: the pre-sales policy that makes the bot collect a name and a phone, and the CRM integration captured leads are delivered to (signed, durable retries, dead letters)."),
        (name = "ops", description = "Health, readiness, metrics, the cluster, this document and the index page."),
    )
)]
struct ApiDoc;

/// Shared error answers: name, status, description.
const ERRORS: [(&str, &str, &str); 10] = [
    (
        "BadRequest",
        "400",
        "A path segment, query parameter or field value the handler refuses (`invalid_id`, `invalid_query`, `invalid_json`, …): `reason` says what to fix.",
    ),
    (
        "Unauthenticated",
        "401",
        "No valid credential (`unauthenticated`).",
    ),
    (
        "Forbidden",
        "403",
        "The credential's tenant or role may not use this route or act as this seat (`forbidden`).",
    ),
    (
        "NotFound",
        "404",
        "No such conversation, agent, ticket, key or customer (`not_found`).",
    ),
    (
        "Conflict",
        "409",
        "The entity's state refuses the command (`rejected`, `no_offer`, `agent_unavailable`, `not_in_routing`, `invalid_transition`, `ticket_closed`, `already_revoked`, `merge_refused`, `already_undone`).",
    ),
    (
        "PayloadTooLarge",
        "413",
        "The body is over 16 KiB (`body_too_large`).",
    ),
    (
        "UnsupportedMediaType",
        "415",
        "The body is not `content-type: application/json` (`unsupported_media_type`).",
    ),
    (
        "InvalidFields",
        "422",
        "A missing, unknown or mistyped field (`invalid_fields`).",
    ),
    (
        "RateLimited",
        "429",
        "Too many requests (`rate_limited`); retry after `Retry-After` seconds.",
    ),
    (
        "Unavailable",
        "503",
        "The node cannot answer now (`journal_unavailable`, `unavailable`, `timeout`, `not_ready`, …); retry after `Retry-After` seconds.",
    ),
];

/// Who holds a permission, as the document tells it.
fn who_may(permission: Permission) -> &'static str {
    match permission {
        Permission::Public => "anyone, without a credential",
        Permission::Operator => "the operator",
        Permission::KeysManage | Permission::ChannelsManage => "the operator, the tenant's admins",
        Permission::ChannelsOperate => "the operator, the tenant's admins and supervisors",
        Permission::AuditRead | Permission::CustomersErase => "the tenant's admins",
        Permission::MessagesWrite | Permission::CsatWrite => "admin and integration keys",
        Permission::ConversationsRead
        | Permission::TicketsRead
        | Permission::TicketsWrite
        | Permission::CustomersRead => "every role of the tenant (agents: their own chats)",
        Permission::ConversationsAct => "admins, supervisors and agents (agents: their own chats)",
        Permission::AgentsRead | Permission::AgentsWrite | Permission::AgentsSelf => {
            "admins, supervisors and agents (agents: their own seat)"
        }
        Permission::RoutingRead | Permission::KnowledgeRead => "admins, supervisors and agents",
        Permission::CustomersIdentify => "admin, supervisor and integration keys",
        Permission::CustomersMerge => "the operator, the tenant's admins and supervisors",
        Permission::ConversationsSupervise
        | Permission::CustomersWrite
        | Permission::RoutingWrite
        | Permission::ReportsRead
        | Permission::KnowledgeWrite => "admins and supervisors",
    }
}

fn error_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}") })
}

/// Adds to `operation` the shared answers it can give.
fn add_shared_answers(path: &str, method: &str, operation: &mut Map<String, Value>, public: bool) {
    let has_body = operation.contains_key("requestBody");
    let has_params = operation
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|parameters| !parameters.is_empty());
    let streams = path.ends_with("/stream");
    let mut names: Vec<&str> = Vec::new();
    if path.starts_with("/v1/") {
        if has_params || has_body {
            names.push("BadRequest");
        }
        if !public {
            names.extend(["Unauthenticated", "Forbidden"]);
        }
        if path.contains('{') {
            names.push("NotFound");
        }
        if method != "get" {
            names.push("Conflict");
        }
        if has_body {
            names.extend(["PayloadTooLarge", "UnsupportedMediaType", "InvalidFields"]);
        }
        if streams || path.ends_with("/messages") || path.ends_with("/sessions") {
            names.push("RateLimited");
        }
        names.push("Unavailable");
    }
    let responses = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses is an object");
    for (name, status, _) in ERRORS {
        if names.contains(&name) {
            responses.entry(status).or_insert_with(|| error_ref(name));
        }
    }
}

/// Cross-field rules the derive cannot state: schema name → keywords added to it.
fn cross_field_rules() -> Vec<(&'static str, Value)> {
    vec![
        // `post_api_key`: an agent key names its seat; only agent and supervisor keys may (a
        // `null` seat is no seat).
        (
            "PostApiKey",
            json!({
                "if": { "properties": { "role": { "const": "agent" } } },
                "then": {
                    "required": ["agent"],
                    "properties": { "agent": { "type": "string" } }
                },
                "else": {
                    "if": { "properties": { "role": { "enum": ["admin", "integration"] } } },
                    "then": { "properties": { "agent": { "type": "null" } } }
                }
            }),
        ),
        // `put_agent`: a `login_role` goes with a `password`.
        (
            "PutAgent",
            json!({
                "if": {
                    "required": ["login_role"],
                    "properties": { "login_role": { "type": "string" } }
                },
                "then": {
                    "required": ["password"],
                    "properties": { "password": { "type": "string" } }
                }
            }),
        ),
        // `post_transfer`: exactly one of `agent` or `group` (a `null` one is not given).
        (
            "PostTransfer",
            json!({
                "oneOf": [
                    { "required": ["agent"], "properties": { "agent": { "type": "string" } } },
                    { "required": ["group"], "properties": { "group": { "type": "string" } } }
                ]
            }),
        ),
        // `put_widget`: each origin is a scheme and a host (the handler's `origin_is_valid`).
        (
            "PutWidget",
            json!({ "properties": { "origins": { "items": {
                "maxLength": 200,
                "pattern": r"^https?://[A-Za-z0-9.:\[\]-]+$"
            } } } }),
        ),
        // `post_widget_session`: `identifier` goes with `identifier_hash`.
        (
            "PostWidgetSession",
            json!({
                "if": {
                    "required": ["identifier"],
                    "properties": { "identifier": { "type": "string" } }
                },
                "then": {
                    "required": ["identifier_hash"],
                    "properties": { "identifier_hash": { "type": "string" } }
                },
                "else": {
                    "properties": { "identifier_hash": { "type": "null" } }
                }
            }),
        ),
        // `put_routing_table`: intent names are 1-64 characters.
        (
            "PutRoutingTable",
            json!({ "properties": { "routes": { "propertyNames": { "minLength": 1, "maxLength": 64 } } } }),
        ),
    ]
}

/// Merges `extra` into `target` (objects key by key, anything else replaced).
fn merge(target: &mut Value, extra: Value) {
    match (target, extra) {
        (Value::Object(target), Value::Object(extra)) => {
            for (key, value) in extra {
                merge(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, extra) => *target = extra,
    }
}

/// The whole document, as JSON.
#[must_use]
pub fn document() -> Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
    document["servers"] = json!([{
        "url": "http://127.0.0.1:8080",
        "description": "`./scripts/run.sh` (demo tenant `demo`; its keys are printed at start)"
    }]);
    document["security"] = json!([{ "bearer": [] }]);
    let components = document
        .as_object_mut()
        .expect("the document is an object")
        .entry("components")
        .or_insert_with(|| json!({}));
    components["securitySchemes"] = json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A tenant API key (`ck.<tenant>.…`), a login session token \
                (`cs.<tenant>.…`) or the operator's token. WebSocket routes also take it as the \
                query parameter `access_token`."
        }
    });
    let mut responses = Map::new();
    for (name, _, description) in ERRORS {
        let mut response = json!({
            "description": description,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } }
        });
        if matches!(name, "RateLimited" | "Unavailable") {
            response["headers"] = json!({
                "Retry-After": { "description": "Seconds to wait.", "schema": { "type": "integer", "minimum": 0 } }
            });
        }
        responses.insert(name.to_owned(), response);
    }
    components["responses"] = Value::Object(responses);
    for (schema, rules) in cross_field_rules() {
        merge(&mut components["schemas"][schema], rules);
    }
    let paths = document["paths"]
        .as_object_mut()
        .expect("the document has paths");
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            let Some(operation) = operation.as_object_mut() else {
                continue;
            };
            let permission = permissions::ROUTES
                .iter()
                .find(|rule| rule.path == path && rule.method.eq_ignore_ascii_case(method))
                .map_or(Permission::Public, |rule| rule.permission);
            let public = permission == Permission::Public;
            if public {
                operation.insert("security".to_owned(), json!([]));
            }
            let who = format!("Who may: {}.", who_may(permission));
            let description = match operation.get("description").and_then(Value::as_str) {
                Some(text) if !text.is_empty() => format!("{text}\n\n{who}"),
                _ => who,
            };
            operation.insert("description".to_owned(), Value::String(description));
            add_shared_answers(path, method, operation, public);
        }
    }
    document
}

/// The document as pretty JSON.
#[must_use]
pub fn to_json() -> String {
    serde_json::to_string_pretty(&document()).expect("JSON serializes")
}

/// The document as YAML (the text of `docs/openapi.yaml`).
#[must_use]
pub fn to_yaml() -> String {
    let body = serde_yaml_ng::to_string(&document()).expect("YAML serializes");
    format!(
        "# Generated from the code by `cargo run -p crest-infra --bin crest -- openapi > docs/openapi.yaml`;\n\
         # do not edit by hand (infra/tests/openapi.rs fails when this copy and the code differ).\n{body}"
    )
}

static JSON: LazyLock<String> = LazyLock::new(to_json);

/// This document: the API contract, generated from the code.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json", body = Object))
)]
pub async fn get_openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], JSON.as_str()).into_response()
}
