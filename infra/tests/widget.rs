//! The customer widget: a tenant's public website token opens customer sessions (anonymous, or
//! verified by the merchant's HMAC of their user id); a session sees only its own conversation,
//! on every route of the table; CORS answers only the tenant's widget origins.

mod support;

use crest_infra::http::permissions::{CUSTOMER_ROUTES, Permission, ROUTES};
use reqwest::Method;
use serde_json::json;
use support::{Answer, Client, config, start};

const TENANT: &str = "alpha";
const OTHER: &str = "beta";
const SHOP: &str = "https://shop.example";

fn hex_hmac(secret_hex: &str, identifier: &str) -> String {
    let secret: Vec<u8> = (0..secret_hex.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&secret_hex[index..index + 2], 16).expect("hex"))
        .collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
    ring::hmac::sign(&key, identifier.as_bytes())
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

async fn open_session(anonymous: &Client, tenant: &str, body: serde_json::Value) -> Answer {
    anonymous
        .post(&format!("/v1/tenants/{tenant}/widget/sessions"), &body)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_widget_session_reaches_only_its_own_conversation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let admin = Client::new(node.addr);
    let anonymous = Client::anonymous(node.addr);

    // Only admins configure the widget; origins are checked.
    let supervisor = Client::with_token(
        node.addr,
        &admin.issue_key(TENANT, "supervisor", None).await,
    );
    let refused = supervisor
        .put(&format!("/v1/tenants/{TENANT}/widget"), &json!({}))
        .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    let bad = admin
        .put(
            &format!("/v1/tenants/{TENANT}/widget"),
            &json!({"origins": ["shop.example/path"]}),
        )
        .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    assert_eq!(bad.body["error"], "invalid_origins");
    let widget = admin
        .put(
            &format!("/v1/tenants/{TENANT}/widget"),
            &json!({"origins": [SHOP]}),
        )
        .await;
    assert_eq!(widget.status, 200, "{:?}", widget.body);
    let website_token = widget.body["website_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(widget.body["identity_required"], false);
    assert_eq!(
        admin
            .get(&format!("/v1/tenants/{TENANT}/widget"))
            .await
            .body,
        widget.body
    );

    // A wrong website token opens nothing.
    let wrong = open_session(
        &anonymous,
        TENANT,
        json!({"website_token": format!("{website_token}x")}),
    )
    .await;
    assert_eq!(wrong.status, 401, "{:?}", wrong.body);
    let session = open_session(&anonymous, TENANT, json!({"website_token": website_token})).await;
    assert_eq!(session.status, 201, "{:?}", session.body);
    assert_eq!(session.body["verified"], false);
    let customer = session.body["customer"]
        .as_str()
        .expect("customer")
        .to_owned();
    let token = session.body["token"].as_str().expect("token").to_owned();
    let visitor = Client::with_token(node.addr, &token);

    // The visitor writes as themselves and reads their own conversation.
    let sent = visitor
        .message(TENANT, &customer, "w-1", "你好，在吗")
        .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    let own = sent.conversation_id();
    let as_other = visitor.message(TENANT, "someone-else", "w-2", "hi").await;
    assert_eq!(as_other.status, 403, "{:?}", as_other.body);
    let mine = visitor
        .get(&format!(
            "/v1/tenants/{TENANT}/customers/{customer}/conversation"
        ))
        .await;
    assert_eq!(mine.status, 200, "{:?}", mine.body);
    assert_eq!(mine.body["id"], own);
    let by_id = visitor
        .get(&format!("/v1/tenants/{TENANT}/conversations/{own}"))
        .await;
    assert_eq!(by_id.status, 200, "{:?}", by_id.body);

    // Someone else's conversation, by customer or by id, is out of reach.
    let theirs = admin
        .message(TENANT, "c-2", "m-1", "my order?")
        .await
        .conversation_id();
    for path in [
        format!("/v1/tenants/{TENANT}/customers/c-2/conversation"),
        format!("/v1/tenants/{TENANT}/conversations/{theirs}"),
        format!("/v1/tenants/{TENANT}/conversations/{theirs}/events?after=0"),
    ] {
        let answer = visitor.get(&path).await;
        assert_eq!(answer.status, 403, "{path}: {:?}", answer.body);
    }

    // Over the whole route table: nothing but the customer routes, never another tenant's.
    let mut problems = Vec::new();
    for rule in ROUTES {
        if rule.permission == Permission::Public || !rule.path.starts_with("/v1/") {
            continue;
        }
        let path = rule
            .path
            .replace("{tenant}", TENANT)
            .replace("{id}", &own)
            .replace("{conversation}", &own)
            .replace("{customer}", &customer)
            .replace("{agent}", "alice")
            .replace("{group}", "general")
            .replace("{key}", "01JD5Q8R4S9T0V1W2X3Y4Z5A6B");
        let method = Method::from_bytes(rule.method.as_bytes()).expect("method");
        let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
        let answer = visitor.request(method.clone(), &path, body.as_ref()).await;
        let customer_route = CUSTOMER_ROUTES.iter().any(|(allowed_method, allowed)| {
            *allowed_method == rule.method && *allowed == rule.path
        });
        if customer_route == (answer.status == 403) || answer.status == 401 {
            problems.push(format!(
                "{} {path}: {} (customer route: {customer_route})",
                rule.method, answer.status
            ));
        }
        let elsewhere = path.replacen(TENANT, OTHER, 1);
        let answer = visitor.request(method, &elsewhere, body.as_ref()).await;
        if answer.status != 403 {
            problems.push(format!(
                "{} {elsewhere} (another tenant): {}",
                rule.method, answer.status
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The same browser resumes as the same anonymous customer; a tampered token is nobody.
    let resumed = open_session(
        &anonymous,
        TENANT,
        json!({"website_token": website_token, "resume": token}),
    )
    .await;
    assert_eq!(resumed.status, 201, "{:?}", resumed.body);
    assert_eq!(resumed.body["customer"], customer.as_str());
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    let answer = Client::with_token(node.addr, &tampered)
        .get(&format!("/v1/tenants/{TENANT}/conversations/{own}"))
        .await;
    assert_eq!(answer.status, 401, "{:?}", answer.body);

    // Identity verification: required, then only a correct HMAC of the user id opens a session.
    let rotated = admin
        .put(
            &format!("/v1/tenants/{TENANT}/widget"),
            &json!({"origins": [SHOP], "identity_required": true, "rotate": true}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let new_token = rotated.body["website_token"].as_str().expect("token");
    assert_ne!(new_token, website_token, "rotated");
    let secret = rotated.body["identity_secret"].as_str().expect("secret");
    let old = open_session(&anonymous, TENANT, json!({"website_token": website_token})).await;
    assert_eq!(old.status, 401, "the old website token is gone");
    let unverified = open_session(&anonymous, TENANT, json!({"website_token": new_token})).await;
    assert_eq!(unverified.status, 401, "{:?}", unverified.body);
    let forged = open_session(
        &anonymous,
        TENANT,
        json!({"website_token": new_token, "identifier": "u-1001",
               "identifier_hash": hex_hmac(secret, "u-1002")}),
    )
    .await;
    assert_eq!(forged.status, 401, "{:?}", forged.body);
    let verified = open_session(
        &anonymous,
        TENANT,
        json!({"website_token": new_token, "identifier": "u-1001",
               "identifier_hash": hex_hmac(secret, "u-1001")}),
    )
    .await;
    assert_eq!(verified.status, 201, "{:?}", verified.body);
    assert_eq!(verified.body["verified"], true);
    assert_eq!(verified.body["customer"], "u-1001");
    node.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_only_the_tenants_widget_origins() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let admin = Client::new(node.addr);
    let widget = admin
        .put(
            &format!("/v1/tenants/{TENANT}/widget"),
            &json!({"origins": [SHOP]}),
        )
        .await;
    assert_eq!(widget.status, 200, "{:?}", widget.body);
    let website_token = widget.body["website_token"].as_str().expect("token");
    let http = reqwest::Client::new();
    let base = format!("http://{}", node.addr);
    let sessions = format!("{base}/v1/tenants/{TENANT}/widget/sessions");
    let allow_origin = |response: &reqwest::Response| {
        response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };

    for (origin, allowed) in [(SHOP, true), ("https://evil.example", false)] {
        let preflight = http
            .request(Method::OPTIONS, &sessions)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .expect("sent");
        assert_eq!(preflight.status().as_u16(), if allowed { 204 } else { 403 });
        assert_eq!(
            allow_origin(&preflight).as_deref(),
            allowed.then_some(origin)
        );
        let opened = http
            .post(&sessions)
            .header("origin", origin)
            .json(&json!({"website_token": website_token}))
            .send()
            .await
            .expect("sent");
        assert_eq!(opened.status().as_u16(), if allowed { 201 } else { 403 });
        assert_eq!(allow_origin(&opened).as_deref(), allowed.then_some(origin));
    }
    // Another tenant's origins are not this one's.
    let other = http
        .request(
            Method::OPTIONS,
            format!("{base}/v1/tenants/{OTHER}/messages"),
        )
        .header("origin", SHOP)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("sent");
    assert_eq!(other.status().as_u16(), 403);
    assert_eq!(allow_origin(&other), None);
    node.stop().await.expect("stops");
}
