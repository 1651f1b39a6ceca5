//! Every JSON request body of the API, through the real router in-process (no socket): one node
//! (embedded journal in a temporary directory, in-process bus, the deterministic echo brain) serves
//! every input with a valid admin key of tenant `acme`. The first byte picks a POST, PUT or PATCH
//! route (with real ids: a conversation, a ticket, an agent); the rest is the body. Whatever the
//! body, the answer must not be a server error (503, "busy, retry", aside): a 500 for bad input is
//! a bug, and so is a panic anywhere in the node.

#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use crest_actors::NodeConfig;
use crest_actors::test_brain::EchoBrain;
use crest_infra::access::OperatorToken;
use crest_infra::http::limits::LimitSettings;
use crest_infra::server::{self, RunningServer, ServeConfig};
use tower::ServiceExt as _;

const OPERATOR: &str = "fuzz-operator-token-0123456789";
const TENANT: &str = "acme";

struct Fixture {
    runtime: tokio::runtime::Runtime,
    server: RunningServer,
    admin: String,
    routes: Vec<(Method, String)>,
}

/// Sends one request through the router; returns the status and the body.
async fn send(
    app: &axum::Router,
    method: Method,
    path: &str,
    token: &str,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("a well-formed request");
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the body is read");
    (status, body.to_vec())
}

fn json_field(body: &[u8], field: &str) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).expect("a JSON answer");
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {value}"))
        .to_owned()
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let data_dir = std::env::temp_dir().join(format!("crest-fuzz-http-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let config = ServeConfig {
        data_dir,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        node: NodeConfig::default(),
        operator_token: Some(OperatorToken::new(OPERATOR).expect("long enough")),
        command_timeout: Duration::from_secs(2),
        limits: LimitSettings {
            customer_messages_per_min: 1_000_000,
            customer_burst: 1_000_000,
            tenant_messages_per_s: 1_000_000,
            websockets_per_tenant: 10,
        },
        ..ServeConfig::default()
    };
    let (server, admin, conversation, ticket) = runtime.block_on(async {
        let server = server::start(config, Arc::new(EchoBrain))
            .await
            .expect("the node starts");
        let app = &server.app;
        let tenant = format!("/v1/tenants/{TENANT}");
        let (status, body) = send(
            app,
            Method::POST,
            &format!("{tenant}/api-keys"),
            OPERATOR,
            br#"{"role":"admin","name":"fuzz"}"#.to_vec(),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let admin = json_field(&body, "key");
        let (status, _) = send(
            app,
            Method::PUT,
            &format!("{tenant}/agents/agent-1"),
            &admin,
            br#"{"status":"online","groups":["general"],"capacity":3}"#.to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = send(
            app,
            Method::POST,
            &format!("{tenant}/messages"),
            &admin,
            br#"{"channel":"web","customer":"c-1","id":"m-1","text":"hello"}"#.to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let conversation = json_field(&body, "conversation_id");
        let (status, body) = send(
            app,
            Method::POST,
            &format!("{tenant}/tickets"),
            &admin,
            br#"{"kind":"refund","subject":"fuzz","customer":"c-1"}"#.to_vec(),
        )
        .await;
        assert!(
            status.is_success(),
            "{status}: {}",
            String::from_utf8_lossy(&body)
        );
        let ticket = json_field(&body, "id");
        (server, admin, conversation, ticket)
    });
    let t = format!("/v1/tenants/{TENANT}");
    let c = format!("{t}/conversations/{conversation}");
    let routes = vec![
        (Method::POST, format!("{t}/api-keys")),
        (Method::POST, format!("{t}/sessions")),
        (Method::POST, format!("{t}/messages")),
        (Method::POST, format!("{c}/agent-messages")),
        (Method::POST, format!("{c}/handoff")),
        (Method::POST, format!("{c}/transfer")),
        (Method::POST, format!("{c}/take-over")),
        (Method::POST, format!("{c}/resolve")),
        (Method::POST, format!("{c}/csat")),
        (Method::PUT, format!("{t}/agents/agent-1")),
        (
            Method::POST,
            format!("{t}/agents/agent-1/offers/{conversation}/accept"),
        ),
        (
            Method::POST,
            format!("{t}/agents/agent-1/offers/{conversation}/decline"),
        ),
        (Method::PUT, format!("{t}/customers/c-1")),
        (Method::PUT, format!("{t}/queues/general")),
        (Method::PUT, format!("{t}/routing-table")),
        (Method::POST, format!("{t}/tickets")),
        (Method::PATCH, format!("{t}/tickets/{ticket}")),
    ];
    Fixture {
        runtime,
        server,
        admin,
        routes,
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    let fixture = FIXTURE.get_or_init(fixture);
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let (method, path) = &fixture.routes[usize::from(selector) % fixture.routes.len()];
    let (status, answer) = fixture.runtime.block_on(send(
        &fixture.server.app,
        method.clone(),
        path,
        &fixture.admin,
        body.to_vec(),
    ));
    assert!(
        !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
        "{method} {path} answered {status}: {}",
        String::from_utf8_lossy(&answer)
    );
});
