//! Credentials, roles and tenant isolation, checked over the whole permission table rather than by
//! example: every route without a credential, with another tenant's admin key, and with each role.

mod support;

use std::time::Duration;

use crest_infra::access::Role;
use crest_infra::http::permissions::{Permission, ROUTES};
use crest_proto::access::AccessRole;
use reqwest::Method;
use serde_json::json;
use support::{Answer, Client, config, start};

const TENANT: &str = "alpha";
const OTHER: &str = "beta";

/// A conversation of `alpha` assigned to agent `alice`, who wrote in it.
async fn alices_chat(admin: &Client) -> String {
    let id = support::chat_of(admin, TENANT, "alice", "c-1", "m-1", "hello").await;
    let reply = admin
        .post(
            &format!("/v1/tenants/{TENANT}/conversations/{id}/agent-messages"),
            &json!({"agent": "alice", "id": "a-1", "text": "hi, Alice here"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    id
}

/// The path of `template` with every parameter filled for tenant `alpha`.
fn concrete(template: &str, conversation: &str) -> String {
    template
        .replace("{tenant}", TENANT)
        .replace("{id}", conversation)
        .replace("{conversation}", conversation)
        .replace("{agent}", "alice")
        .replace("{customer}", "c-1")
        .replace("{group}", "general")
        .replace("{key}", "01JD5Q8R4S9T0V1W2X3Y4Z5A6B")
}

async fn call(client: &Client, method: &str, path: &str) -> Answer {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    // Empty bodies: a handler may refuse them (4xx), which still shows that access was granted.
    let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
    client.request(method, path, body.as_ref()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_checks_credential_tenant_and_role() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let admin = Client::new(node.addr);
    let conversation = alices_chat(&admin).await;
    let anonymous = Client::anonymous(node.addr);
    let other_admin = Client::with_token(node.addr, &admin.issue_key(OTHER, "admin", None).await);
    let operator = Client::with_token(node.addr, support::OPERATOR_TOKEN);
    let roles = [
        (
            AccessRole::Admin,
            Client::with_token(node.addr, &admin.issue_key(TENANT, "admin", None).await),
        ),
        (
            AccessRole::Supervisor,
            Client::with_token(
                node.addr,
                &admin.issue_key(TENANT, "supervisor", None).await,
            ),
        ),
        (
            AccessRole::Agent,
            Client::with_token(
                node.addr,
                &admin.issue_key(TENANT, "agent", Some("alice")).await,
            ),
        ),
        (
            AccessRole::Integration,
            Client::with_token(
                node.addr,
                &admin.issue_key(TENANT, "integration", None).await,
            ),
        ),
    ];
    let mut problems = Vec::new();
    for rule in ROUTES {
        let path = concrete(rule.path, &conversation);
        let public = rule.permission == Permission::Public;
        let answer = call(&anonymous, rule.method, &path).await;
        if !public && answer.status != 401 {
            problems.push(format!(
                "{} {path} without a credential: {} (want 401)",
                rule.method, answer.status
            ));
        }
        if public || !rule.path.starts_with("/v1/") {
            continue;
        }
        let answer = call(&other_admin, rule.method, &path).await;
        if !matches!(answer.status, 403 | 404) {
            problems.push(format!(
                "{} {path} with tenant {OTHER}'s admin key: {} (want 403 or 404)",
                rule.method, answer.status
            ));
        }
        let answer = call(&operator, rule.method, &path).await;
        let operator_allowed = rule.permission.granted_to(Role::Operator);
        if operator_allowed == (answer.status == 403) || answer.status == 401 {
            problems.push(format!(
                "{} {path} with the operator token: {} (allowed: {operator_allowed})",
                rule.method, answer.status
            ));
        }
        for (role, client) in &roles {
            let allowed = rule.permission.granted_to(Role::Tenant(*role));
            let answer = call(client, rule.method, &path).await;
            let refused = answer.status == 403;
            if allowed == refused || answer.status == 401 {
                problems.push(format!(
                    "{} {path} as {}: {} {} (allowed: {allowed})",
                    rule.method,
                    role.as_str(),
                    answer.status,
                    answer.body
                ));
            }
            if refused && answer.body["error"] != "forbidden" {
                problems.push(format!("{} {path}: 403 without `forbidden`", rule.method));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    node.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_act_only_as_themselves_and_on_their_own_chats() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let admin = Client::new(node.addr);
    let conversation = alices_chat(&admin).await;
    let bob = Client::with_token(
        node.addr,
        &admin.issue_key(TENANT, "agent", Some("bob")).await,
    );
    let alice = Client::with_token(
        node.addr,
        &admin.issue_key(TENANT, "agent", Some("alice")).await,
    );
    let path = format!("/v1/tenants/{TENANT}/conversations/{conversation}");
    assert_eq!(alice.get(&path).await.status, 200);
    assert_eq!(bob.get(&path).await.status, 403, "not bob's chat");
    // The customer's whole history: for the agent serving them, not for another agent.
    let history = format!("/v1/tenants/{TENANT}/customers/c-1/conversations");
    let read = alice.get(&history).await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.body["total"], 1, "{:?}", read.body);
    assert_eq!(
        read.body["conversations"][0]["id"], conversation,
        "{:?}",
        read.body
    );
    let denied = bob.get(&history).await;
    assert_eq!(denied.status, 403, "{:?}", denied.body);
    let orders = format!("/v1/tenants/{TENANT}/customers/c-1/orders");
    assert_eq!(alice.get(&orders).await.status, 200);
    assert_eq!(bob.get(&orders).await.status, 403);
    let nobody = admin
        .get(&format!(
            "/v1/tenants/{TENANT}/customers/c-unknown/conversations"
        ))
        .await;
    assert_eq!(nobody.body["total"], 0, "{:?}", nobody.body);
    let as_alice = json!({"agent": "alice", "id": "a-2", "text": "pretending"});
    let answer = bob.post(&format!("{path}/agent-messages"), &as_alice).await;
    assert_eq!(answer.status, 403);
    let answer = alice
        .post(&format!("{path}/agent-messages"), &as_alice)
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let seat = bob
        .put(
            &format!("/v1/tenants/{TENANT}/agents/alice"),
            &json!({"status": "away"}),
        )
        .await;
    assert_eq!(seat.status, 403);
    let own = bob
        .put(
            &format!("/v1/tenants/{TENANT}/agents/bob"),
            &json!({"status": "online"}),
        )
        .await;
    assert_eq!(own.status, 200, "{:?}", own.body);
    let promote = bob
        .put(
            &format!("/v1/tenants/{TENANT}/agents/bob"),
            &json!({"capacity": 50}),
        )
        .await;
    assert_eq!(promote.status, 403);
    // Integration keys post and read, but touch neither routing, keys nor agents.
    let integration = Client::with_token(
        node.addr,
        &admin.issue_key(TENANT, "integration", None).await,
    );
    let table = integration
        .put(
            &format!("/v1/tenants/{TENANT}/routing-table"),
            &json!({"routes": {}, "default_group": "general"}),
        )
        .await;
    assert_eq!(table.status, 403);
    assert_eq!(table.body["error"], "forbidden");
    let key = integration
        .post(
            &format!("/v1/tenants/{TENANT}/api-keys"),
            &json!({"role": "admin"}),
        )
        .await;
    assert_eq!(key.status, 403);
    let posted = integration.message(TENANT, "c-9", "m-9", "hi").await;
    assert_eq!(posted.status, 200, "{:?}", posted.body);
    node.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_listed_revoked_and_never_stored_in_clear() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let operator = Client::with_token(node.addr, support::OPERATOR_TOKEN);
    let created = operator
        .post(
            &format!("/v1/tenants/{TENANT}/api-keys"),
            &json!({"role": "admin", "name": "ops"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let admin_key = created.body["key"].as_str().expect("key").to_owned();
    let admin = Client::with_token(node.addr, &admin_key);
    // A tenant admin creates keys too.
    let created = admin
        .post(
            &format!("/v1/tenants/{TENANT}/api-keys"),
            &json!({"role": "integration"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["role"], "integration");
    let integration_key = created.body["key"].as_str().expect("key").to_owned();
    let integration_id = created.body["id"].as_str().expect("id").to_owned();
    let listed = admin.get(&format!("/v1/tenants/{TENANT}/api-keys")).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["keys"].as_array().expect("keys").len(), 2);
    assert!(!listed.body.to_string().contains(&integration_key));
    // Bad input is refused with a reason.
    let bad = admin
        .post(
            &format!("/v1/tenants/{TENANT}/api-keys"),
            &json!({"role": "agent"}),
        )
        .await;
    assert_eq!(bad.status, 422);
    let bad = admin
        .post(
            &format!("/v1/tenants/{TENANT}/api-keys"),
            &json!({"role": "root"}),
        )
        .await;
    assert_eq!(bad.status, 422);

    // A password, a login, a session token.
    let seat = admin
        .put(
            &format!("/v1/tenants/{TENANT}/agents/mei"),
            &json!({"status": "online", "password": "correct horse battery", "login_role": "supervisor"}),
        )
        .await;
    assert_eq!(seat.status, 200, "{:?}", seat.body);
    assert!(!seat.body.to_string().contains("correct horse"));
    let anonymous = Client::anonymous(node.addr);
    let wrong = anonymous
        .post(
            &format!("/v1/tenants/{TENANT}/sessions"),
            &json!({"agent": "mei", "password": "wrong horse battery"}),
        )
        .await;
    assert_eq!(wrong.status, 401);
    let login = anonymous
        .post(
            &format!("/v1/tenants/{TENANT}/sessions"),
            &json!({"agent": "mei", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(login.status, 201, "{:?}", login.body);
    assert_eq!(login.body["role"], "supervisor");
    let session_token = login.body["token"].as_str().expect("token").to_owned();
    let session = Client::with_token(node.addr, &session_token);
    assert_eq!(
        session
            .get(&format!("/v1/tenants/{TENANT}/routing-table"))
            .await
            .status,
        200
    );

    // Revoking works at once.
    let integration = Client::with_token(node.addr, &integration_key);
    assert_eq!(
        integration.message(TENANT, "c-1", "m-1", "hi").await.status,
        200
    );
    let revoked = admin
        .delete(&format!("/v1/tenants/{TENANT}/api-keys/{integration_id}"))
        .await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    assert_eq!(revoked.body["revoked"], true);
    assert_eq!(
        integration.message(TENANT, "c-1", "m-2", "hi").await.status,
        401
    );
    let again = admin
        .delete(&format!("/v1/tenants/{TENANT}/api-keys/{integration_id}"))
        .await;
    assert_eq!(again.status, 409);

    node.stop().await.expect("stops");
    // Nothing under the data directory holds a key, a token or the password in clear.
    let secrets = [
        admin_key.as_str(),
        integration_key.as_str(),
        session_token.as_str(),
        "correct horse battery",
        support::OPERATOR_TOKEN,
    ];
    let mut found = Vec::new();
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).expect("readable");
        for secret in secrets {
            // The random part of a token (after `ck.<tenant>.`) is what must never appear.
            let needle = secret.rsplit('.').next().expect("part");
            if bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
            {
                found.push(format!("{} holds {needle}", entry.display()));
            }
        }
    }
    assert!(found.is_empty(), "{found:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_take_the_credential_as_a_query_parameter() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let admin = Client::new(node.addr);
    let id = admin
        .message(TENANT, "c-1", "m-1", "hello")
        .await
        .conversation_id();
    let path = format!("/v1/tenants/{TENANT}/conversations/{id}/stream");
    let anonymous = format!("ws://{}{path}", node.addr);
    assert!(
        tokio_tungstenite::connect_async(anonymous).await.is_err(),
        "an anonymous WebSocket is refused"
    );
    let url = admin.ws_url(&path).await;
    let connected = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(url),
    )
    .await;
    assert!(
        matches!(connected, Ok(Ok(_))),
        "the admin's WebSocket opens"
    );
    drop(connected);
    node.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_actions_are_in_the_audit_log_for_admins_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let operator = Client::with_token(node.addr, support::OPERATOR_TOKEN);
    let created = operator
        .post(
            &format!("/v1/tenants/{TENANT}/api-keys"),
            &json!({"role": "admin"}),
        )
        .await;
    let admin = Client::with_token(node.addr, created.body["key"].as_str().expect("key"));
    let admin_key_id = created.body["id"].as_str().expect("id").to_owned();
    let table = admin
        .put(
            &format!("/v1/tenants/{TENANT}/routing-table"),
            &json!({"routes": {"refund_request": "after_sales"}, "default_group": "general"}),
        )
        .await;
    assert_eq!(table.status, 200, "{:?}", table.body);
    let queue = admin
        .put(
            &format!("/v1/tenants/{TENANT}/queues/general"),
            &json!({"max_waiting": 50}),
        )
        .await;
    assert_eq!(queue.status, 200, "{:?}", queue.body);
    let seat = admin
        .put(
            &format!("/v1/tenants/{TENANT}/agents/mei"),
            &json!({"status": "online", "password": "a long enough secret"}),
        )
        .await;
    assert_eq!(seat.status, 200, "{:?}", seat.body);
    let anonymous = Client::anonymous(node.addr);
    let refused = anonymous
        .post(
            &format!("/v1/tenants/{TENANT}/sessions"),
            &json!({"agent": "mei", "password": "not the secret"}),
        )
        .await;
    assert_eq!(refused.status, 401);
    let login = anonymous
        .post(
            &format!("/v1/tenants/{TENANT}/sessions"),
            &json!({"agent": "mei", "password": "a long enough secret"}),
        )
        .await;
    assert_eq!(login.status, 201, "{:?}", login.body);

    let audit = admin
        .get(&format!("/v1/tenants/{TENANT}/audit?after=0&limit=100"))
        .await;
    assert_eq!(audit.status, 200, "{:?}", audit.body);
    let records = audit.body["records"].as_array().expect("records");
    let actions: Vec<&str> = records
        .iter()
        .map(|record| record["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        [
            "api_key.issued",
            "routing_table.set",
            "queue.configured",
            "password.set",
            "agent.changed",
            "login.refused",
            "login",
        ]
    );
    assert_eq!(records[0]["actor"], "operator");
    assert_eq!(records[1]["actor"], format!("key:{admin_key_id}"));
    assert_eq!(records[3]["target"], "agent:mei");
    assert!(
        !audit.body.to_string().contains("a long enough secret"),
        "no secret in the audit log"
    );
    let page = admin
        .get(&format!("/v1/tenants/{TENANT}/audit?after=5&limit=1"))
        .await;
    assert_eq!(page.body["records"].as_array().map(Vec::len), Some(1));
    assert_eq!(page.body["records"][0]["action"], "login.refused");
    let session = Client::with_token(node.addr, login.body["token"].as_str().expect("token"));
    let denied = session.get(&format!("/v1/tenants/{TENANT}/audit")).await;
    assert_eq!(
        denied.status, 403,
        "a session's agent role may not read the audit log"
    );
    node.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_burst_is_limited_while_normal_chat_never_is() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut serve = config(dir.path());
    serve.limits = crest_infra::http::limits::LimitSettings {
        websockets_per_tenant: 1,
        ..crest_infra::http::limits::LimitSettings::default()
    };
    let node = start(serve).await;
    let client = Client::new(node.addr);
    // Normal chat: many customers, each a few messages in a row.
    for customer in 0..10 {
        for message in 0..5 {
            let answer = client
                .message(
                    TENANT,
                    &format!("c-{customer}"),
                    &format!("m-{message}"),
                    "你好",
                )
                .await;
            assert_eq!(answer.status, 200, "{:?}", answer.body);
        }
    }
    // One customer's burst of 60 messages.
    let mut limited = Vec::new();
    for message in 0..60 {
        let answer = client
            .message(TENANT, "flooder", &format!("f-{message}"), "spam")
            .await;
        match answer.status {
            200 => {}
            429 => limited.push(answer),
            other => panic!("unexpected {other}: {:?}", answer.body),
        }
    }
    assert!(!limited.is_empty(), "a burst of 60 gets some 429s");
    assert!(limited.len() < 60, "the allowance goes through first");
    assert_eq!(limited[0].body["error"], "rate_limited");
    let retry_after: u64 = limited[0]
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(retry_after >= 1);
    // Others are unaffected.
    assert_eq!(
        client.message(TENANT, "c-0", "m-9", "还在吗").await.status,
        200
    );

    // WebSocket connections per tenant are capped (1 here).
    let id = client
        .message(TENANT, "c-1", "m-9", "hello")
        .await
        .conversation_id();
    let url = client
        .ws_url(&format!("/v1/tenants/{TENANT}/conversations/{id}/stream"))
        .await;
    let first = tokio_tungstenite::connect_async(url.clone())
        .await
        .expect("first WebSocket opens");
    let second = tokio_tungstenite::connect_async(url.clone()).await;
    match second {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 429);
        }
        other => panic!(
            "the second WebSocket should be refused: {:?}",
            other.map(|_| ())
        ),
    }
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(socket) = tokio_tungstenite::connect_async(url.clone()).await {
            drop(socket);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the place is given back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node.stop().await.expect("stops");
}
