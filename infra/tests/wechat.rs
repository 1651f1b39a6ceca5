//! WeChat Official Account channels end to end: the server URL check, signed XML messages in
//! (deduplicated on `MsgId`), and the customer-service message API out against a local fake of
//! WeChat's API (tokens issued and counted, one expired, window refusals), the reply window of the
//! profile, and the callback ticket a refused reply becomes.

mod support;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::routing::{get, post};
use crest_infra::channels::profiles;
use crest_infra::channels::wechat::{
    CallbackRequest, DeliveryOutcome, SendError, WechatClient, WechatCredentials, WechatReply,
    callback_ticket_id, open_callback_ticket, reply_context, signature,
};
use crest_proto::channels::OutboxQueued;
use crest_proto::{ConversationId, CustomerId, MessageId, StreamId, TenantId};
use serde_json::{Value, json};
use support::{Client, config, start};

const TOKEN: &str = "wechat-token-shared-with-crest";
const APP_ID: &str = "wx0123456789abcdef";
const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";

// ---------------------------------------------------------------------------------------------
// A fake of WeChat's API
// ---------------------------------------------------------------------------------------------

/// WeChat's token and customer-service endpoints, with switches for the failures under test.
#[derive(Default)]
struct FakeWechat {
    /// Tokens issued so far.
    tokens_issued: AtomicUsize,
    /// The token sends must carry.
    current_token: Mutex<String>,
    /// The next send is answered 42001 (the token expired) and the token invalidated.
    expire_next_send: AtomicBool,
    /// Errcodes the next sends are answered with, in order.
    scripted_errcodes: Mutex<Vec<i64>>,
    /// Send requests received (accepted or not).
    send_requests: AtomicUsize,
    /// Accepted messages.
    delivered: Mutex<Vec<Value>>,
}

impl FakeWechat {
    fn delivered(&self) -> Vec<Value> {
        self.delivered.lock().expect("fake lock").clone()
    }
}

async fn issue_token(
    State(fake): State<Arc<FakeWechat>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> axum::Json<Value> {
    let field = |name: &str| query.get(name).map(String::as_str);
    if field("grant_type") != Some("client_credential")
        || field("appid") != Some(APP_ID)
        || field("secret") != Some(APP_SECRET)
    {
        return axum::Json(json!({"errcode": 40125, "errmsg": "invalid appsecret"}));
    }
    // A slow issuer: concurrent senders must wait for one fetch, not start their own.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let number = fake.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("token-{number}");
    *fake.current_token.lock().expect("fake lock") = token.clone();
    axum::Json(json!({"access_token": token, "expires_in": 7200}))
}

async fn custom_send(
    State(fake): State<Arc<FakeWechat>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    fake.send_requests.fetch_add(1, Ordering::SeqCst);
    let presented = query.get("access_token").cloned().unwrap_or_default();
    {
        let mut current = fake.current_token.lock().expect("fake lock");
        if presented != *current {
            return axum::Json(json!({"errcode": 40001, "errmsg": "invalid credential"}));
        }
        if fake.expire_next_send.swap(false, Ordering::SeqCst) {
            current.push_str("-expired");
            return axum::Json(json!({"errcode": 42001, "errmsg": "access_token expired"}));
        }
    }
    let scripted = {
        let mut scripted = fake.scripted_errcodes.lock().expect("fake lock");
        (!scripted.is_empty()).then(|| scripted.remove(0))
    };
    if let Some(errcode) = scripted {
        return axum::Json(json!({"errcode": errcode, "errmsg": format!("scripted {errcode}")}));
    }
    assert_eq!(body["msgtype"], "text", "{body}");
    fake.delivered.lock().expect("fake lock").push(body);
    axum::Json(json!({"errcode": 0, "errmsg": "ok"}))
}

/// Starts the fake on a free port; returns it and its base URL.
async fn start_fake() -> (Arc<FakeWechat>, String) {
    let fake = Arc::new(FakeWechat::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("fake binds");
    let addr = listener.local_addr().expect("fake address");
    let app = axum::Router::new()
        .route("/cgi-bin/token", get(issue_token))
        .route("/cgi-bin/message/custom/send", post(custom_send))
        .with_state(Arc::clone(&fake));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (fake, format!("http://{addr}"))
}

fn client_for(base_url: &str) -> WechatClient {
    WechatClient::new(
        reqwest::Client::new(),
        WechatCredentials {
            app_id: APP_ID.to_owned(),
            app_secret: Arc::from(APP_SECRET),
            base_url: base_url.to_owned(),
        },
    )
}

fn now_ms() -> u64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch");
    u64::try_from(elapsed.as_millis()).expect("fits")
}

fn wechat_profile() -> &'static profiles::PlatformProfile {
    profiles::builtin().get("wechat_oa").expect("wechat_oa")
}

fn reply<'a>(text: &'a str, last_customer_message_at_ms: u64) -> WechatReply<'a> {
    WechatReply {
        openid: "oCustomer-_1",
        text,
        last_customer_message_at_ms,
        sent_since_customer_message: 0,
        skip_parts: 0,
    }
}

// ---------------------------------------------------------------------------------------------
// Outbound
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_the_reply_delivered() {
    let (fake, base) = start_fake().await;
    let client = client_for(&base);
    let now = now_ms();
    let first = client
        .deliver(
            wechat_profile(),
            &reply("您好，已为您查询", now - 1_000),
            now,
        )
        .await;
    assert_eq!(first, DeliveryOutcome::Delivered { parts: 1 });
    assert_eq!(fake.tokens_issued.load(Ordering::SeqCst), 1);

    // The cached token is reused...
    client
        .send_text("oCustomer-_1", "second")
        .await
        .expect("sent");
    assert_eq!(fake.tokens_issued.load(Ordering::SeqCst), 1);

    // ...until WeChat says it expired (42001): one refresh, the send retried once.
    fake.expire_next_send.store(true, Ordering::SeqCst);
    let after_expiry = client
        .deliver(wechat_profile(), &reply("third", now - 1_000), now)
        .await;
    assert_eq!(after_expiry, DeliveryOutcome::Delivered { parts: 1 });
    assert_eq!(fake.tokens_issued.load(Ordering::SeqCst), 2);
    let delivered = fake.delivered();
    let texts: Vec<&str> = delivered
        .iter()
        .map(|body| body["text"]["content"].as_str().expect("content"))
        .collect();
    assert_eq!(texts, ["您好，已为您查询", "second", "third"]);
    assert!(
        delivered
            .iter()
            .all(|body| body["touser"] == "oCustomer-_1")
    );
}

#[tokio::test]
async fn concurrent_senders_share_one_token_fetch() {
    let (fake, base) = start_fake().await;
    let client = Arc::new(client_for(&base));
    let sends = (0..8).map(|n| {
        let client = Arc::clone(&client);
        tokio::spawn(async move { client.send_text("oCustomer-_1", &format!("m{n}")).await })
    });
    for send in sends {
        send.await.expect("joins").expect("sent");
    }
    assert_eq!(fake.tokens_issued.load(Ordering::SeqCst), 1);
    assert_eq!(fake.delivered().len(), 8);
}

#[tokio::test]
async fn a_window_refusal_from_wechat_is_window_closed() {
    let (fake, base) = start_fake().await;
    fake.scripted_errcodes
        .lock()
        .expect("fake lock")
        .push(45015);
    let client = client_for(&base);
    let now = now_ms();
    let outcome = client
        .deliver(wechat_profile(), &reply("too late?", now - 60_000), now)
        .await;
    let DeliveryOutcome::WindowClosed { reason, sent_parts } = outcome else {
        panic!("expected WindowClosed, got {outcome:?}");
    };
    assert!(reason.contains("45015"), "{reason}");
    assert_eq!(sent_parts, 0);
    assert!(fake.delivered().is_empty());
}

#[tokio::test]
async fn a_reply_outside_the_profile_window_never_reaches_the_api() {
    let (fake, base) = start_fake().await;
    let client = client_for(&base);
    let now = now_ms();
    let forty_nine_hours_ago = now - 49 * 3_600_000;
    let outcome = client
        .deliver(
            wechat_profile(),
            &reply("your refund is done", forty_nine_hours_ago),
            now,
        )
        .await;
    let DeliveryOutcome::WindowClosed { reason, .. } = outcome else {
        panic!("expected WindowClosed, got {outcome:?}");
    };
    assert!(reason.starts_with("wechat_oa: "), "{reason}");
    assert!(reason.contains("48 h"), "{reason}");
    assert_eq!(fake.send_requests.load(Ordering::SeqCst), 0);
    assert_eq!(fake.tokens_issued.load(Ordering::SeqCst), 0);

    // The quota of the profile too: 5 messages per customer message.
    let used_up = WechatReply {
        sent_since_customer_message: 5,
        ..reply("one more", now - 1_000)
    };
    let outcome = client.deliver(wechat_profile(), &used_up, now).await;
    assert!(
        matches!(outcome, DeliveryOutcome::WindowClosed { .. }),
        "{outcome:?}"
    );
    assert_eq!(fake.send_requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn failures_are_classified_and_long_texts_split() {
    let (fake, base) = start_fake().await;
    let client = client_for(&base);
    let now = now_ms();
    // -1 (system busy): retry later.
    fake.scripted_errcodes.lock().expect("fake lock").push(-1);
    let busy = client
        .deliver(wechat_profile(), &reply("hi", now), now)
        .await;
    assert!(
        matches!(busy, DeliveryOutcome::Retryable { sent_parts: 0, .. }),
        "{busy:?}"
    );
    // Another errcode (45002: content too long): permanent.
    fake.scripted_errcodes
        .lock()
        .expect("fake lock")
        .push(45_002);
    let refused = client
        .deliver(wechat_profile(), &reply("hi", now), now)
        .await;
    assert!(
        matches!(refused, DeliveryOutcome::Permanent { .. }),
        "{refused:?}"
    );

    // 1,500 CJK characters: three parts of at most 600 characters and 2,048 bytes, in order.
    let long = "请耐心等待您的包裹".repeat(166) + "好的";
    let outcome = client
        .deliver(wechat_profile(), &reply(&long, now), now)
        .await;
    assert_eq!(outcome, DeliveryOutcome::Delivered { parts: 3 });
    let parts: Vec<String> = fake
        .delivered()
        .iter()
        .map(|body| {
            body["text"]["content"]
                .as_str()
                .expect("content")
                .to_owned()
        })
        .collect();
    assert_eq!(parts.len(), 3);
    assert!(
        parts
            .iter()
            .all(|part| part.chars().count() <= 600 && part.len() <= 2_048)
    );
    assert_eq!(parts.concat(), long);

    // A retry after a failure in the middle resumes after the parts already delivered.
    let resumed = WechatReply {
        skip_parts: 2,
        ..reply(&long, now)
    };
    let outcome = client.deliver(wechat_profile(), &resumed, now).await;
    assert_eq!(outcome, DeliveryOutcome::Delivered { parts: 3 });
    assert_eq!(fake.delivered().len(), 4, "only the last part again");

    // Wrong credentials: the token endpoint refuses, permanently.
    let wrong = WechatClient::new(
        reqwest::Client::new(),
        WechatCredentials {
            app_id: APP_ID.to_owned(),
            app_secret: Arc::from("not-the-secret"),
            base_url: base.clone(),
        },
    );
    let error = wrong.send_text("o1", "hi").await.expect_err("refused");
    assert!(matches!(error, SendError::Permanent(_)), "{error:?}");

    // Nothing listening: retryable.
    let unreachable = client_for("http://127.0.0.1:1");
    let error = unreachable
        .send_text("o1", "hi")
        .await
        .expect_err("refused");
    assert!(matches!(error, SendError::Retryable(_)), "{error:?}");
    assert!(
        !error.to_string().contains(APP_SECRET),
        "the app secret never shows in an error: {error}"
    );
}

// ---------------------------------------------------------------------------------------------
// Inbound and configuration
// ---------------------------------------------------------------------------------------------

fn now_s() -> u64 {
    now_ms() / 1_000
}

/// The query WeChat signs a request with.
fn signed_query(timestamp: u64, nonce: &str) -> String {
    let timestamp = timestamp.to_string();
    format!(
        "signature={}&timestamp={timestamp}&nonce={nonce}",
        signature(TOKEN, &timestamp, nonce)
    )
}

fn text_xml(openid: &str, msg_id: &str, text: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>\
         <FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{}</CreateTime>\
         <MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content>\
         <MsgId>{msg_id}</MsgId></xml>",
        now_s()
    )
}

async fn push(
    http: &reqwest::Client,
    addr: std::net::SocketAddr,
    path: &str,
    query: &str,
    xml: &str,
) -> (u16, String) {
    let response = http
        .post(format!("http://{addr}{path}?{query}"))
        .header("content-type", "text/xml")
        .body(xml.to_owned())
        .send()
        .await
        .expect("push sent");
    let status = response.status().as_u16();
    (status, response.text().await.expect("push answer"))
}

async fn configure_wechat(admin: &Client, name: &str, base_url: Option<&str>) -> support::Answer {
    let mut body = json!({
        "kind": "wechat_oa",
        "secret": TOKEN,
        "app_id": APP_ID,
        "app_secret": APP_SECRET,
    });
    if let Some(base_url) = base_url {
        body["outbound_url"] = json!(base_url);
    }
    admin
        .put(&format!("/v1/tenants/shop/channels/{name}"), &body)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_url_check_echoes_only_a_good_signature() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let admin = Client::new(node.addr);
    let created = configure_wechat(&admin, "wx", None).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["inbound_path"], "/v1/channels/shop/wx/wechat");
    let http = reqwest::Client::new();
    let get = |query: String| {
        let http = http.clone();
        let url = format!("http://{}/v1/channels/shop/wx/wechat?{query}", node.addr);
        async move {
            let response = http.get(url).send().await.expect("sent");
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            (status, content_type, response.text().await.expect("body"))
        }
    };
    let good = signed_query(now_s(), "1372623149");
    let (status, content_type, body) = get(format!("{good}&echostr=5837397520665436492")).await;
    assert_eq!(status, 200, "{body}");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(body, "5837397520665436492");

    let wrong = format!(
        "signature={}&timestamp={}&nonce=1&echostr=42",
        signature("another-token", "1", "1"),
        now_s()
    );
    let (status, _, body) = get(wrong).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("bad_signature"), "{body}");
    let (status, _, _) = get("echostr=42".to_owned()).await;
    assert_eq!(status, 401);
    let (status, _, body) = get(good.clone()).await;
    assert_eq!(status, 400, "no echostr: {body}");

    // Not a WeChat channel, or none at all: 404.
    let webhook = admin
        .put(
            "/v1/tenants/shop/channels/hooks",
            &json!({"kind": "webhook", "secret": TOKEN}),
        )
        .await;
    assert_eq!(webhook.status, 201);
    let response = http
        .get(format!(
            "http://{}/v1/channels/shop/hooks/wechat?{good}&echostr=1",
            node.addr
        ))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 404);
    let response = http
        .get(format!(
            "http://{}/v1/channels/other/wx/wechat?{good}&echostr=1",
            node.addr
        ))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 404, "nothing crosses tenants");
    node.stop().await.expect("node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_xml_texts_are_accepted_once_and_everything_else_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let admin = Client::new(node.addr);
    let (_fake, base) = start_fake().await;
    assert_eq!(
        configure_wechat(&admin, "wx", Some(&base)).await.status,
        201
    );
    let http = reqwest::Client::new();
    let path = "/v1/channels/shop/wx/wechat";

    // WeChat pushes the same message three times (it retries when slow to hear back).
    let xml = text_xml(
        "oCustomer-_7",
        "24512345678901234",
        "我的订单 #A1024 到哪了？",
    );
    for nonce in ["1", "2", "3"] {
        let (status, body) =
            push(&http, node.addr, path, &signed_query(now_s(), nonce), &xml).await;
        assert_eq!((status, body.as_str()), (200, "success"));
    }
    // The same message through the messages API is a duplicate of it: one customer message.
    let again = admin
        .post(
            "/v1/tenants/shop/messages",
            &json!({"channel": "wx", "customer": "oCustomer-_7", "id": "24512345678901234", "text": "我的订单 #A1024 到哪了？"}),
        )
        .await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["duplicate"], true);
    let conversation = again.conversation_id();
    let read = admin
        .conversation_until("shop", &conversation, |body| {
            support::roles(body).contains(&"bot".to_owned())
        })
        .await;
    let roles = support::roles(&read);
    assert_eq!(
        roles.iter().filter(|role| *role == "customer").count(),
        1,
        "{roles:?}"
    );

    // Images, voice and events are acknowledged, not stored, never an error.
    let image = format!(
        "<xml><ToUserName>gh_0123456789ab</ToUserName><FromUserName>oCustomer-_7</FromUserName>\
         <CreateTime>{}</CreateTime><MsgType>image</MsgType><PicUrl>http://mmbiz/x.jpg</PicUrl>\
         <MediaId>m1</MediaId><MsgId>2451</MsgId></xml>",
        now_s()
    );
    let subscribe = format!(
        "<xml><ToUserName>gh_0123456789ab</ToUserName><FromUserName>oCustomer-_8</FromUserName>\
         <CreateTime>{}</CreateTime><MsgType>event</MsgType><Event>subscribe</Event></xml>",
        now_s()
    );
    for other in [image, subscribe] {
        let (status, body) =
            push(&http, node.addr, path, &signed_query(now_s(), "4"), &other).await;
        assert_eq!((status, body.as_str()), (200, "success"), "{other}");
    }

    // A bad signature, a stale timestamp, malformed XML, a text without a MsgId.
    let wrong = format!(
        "signature={}&timestamp={}&nonce=5",
        signature("another-token", "1", "5"),
        now_s()
    );
    let (status, body) = push(&http, node.addr, path, &wrong, &xml).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("bad_signature"), "{body}");
    let stale = signed_query(now_s() - 3_600, "6");
    let (status, body) = push(&http, node.addr, path, &stale, &xml).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("stale_timestamp"), "{body}");
    for malformed in [
        "<xml><ToUserName>gh</ToUserName>".to_owned(),
        "{\"json\": true}".to_owned(),
        text_xml("oCustomer-_7", "", "no id"),
        text_xml("oCustomer-_7", "9", "   "),
    ] {
        let (status, body) = push(
            &http,
            node.addr,
            path,
            &signed_query(now_s(), "7"),
            &malformed,
        )
        .await;
        assert_eq!(status, 400, "{malformed}: {body}");
        assert!(body.contains("invalid_body"), "{body}");
    }
    let (_, metrics) = admin.get_text("/metrics").await;
    let samples = support::samples(&metrics);
    let inbound = |outcome: &str| {
        samples
            .iter()
            .filter(|(series, _)| {
                series.contains("inbound")
                    && series.contains("kind=\"wechat_oa\"")
                    && series.contains(&format!("outcome=\"{outcome}\""))
            })
            .map(|(_, value)| *value)
            .sum::<f64>()
    };
    assert_eq!(inbound("accepted"), 1.0, "{metrics}");
    assert_eq!(inbound("duplicate"), 2.0);
    assert_eq!(inbound("ignored"), 2.0);
    node.stop().await.expect("node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_and_app_credentials_are_validated_and_never_echoed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let admin = Client::new(node.addr);
    let unknown = admin
        .put(
            "/v1/tenants/shop/channels/wx",
            &json!({"kind": "wechat_oa", "secret": TOKEN, "profile": "myspace"}),
        )
        .await;
    assert_eq!(unknown.status, 400, "{:?}", unknown.body);
    let reason = unknown.body["reason"].as_str().expect("reason");
    for known in ["douyin", "taobao", "webhook", "wechat_oa", "xiaohongshu"] {
        assert!(reason.contains(known), "{reason}");
    }
    for bad in [
        json!({"kind": "webhook", "secret": TOKEN, "app_id": APP_ID, "app_secret": APP_SECRET}),
        json!({"kind": "wechat_oa", "secret": TOKEN, "app_id": APP_ID}),
        json!({"kind": "wechat_oa", "secret": TOKEN, "app_id": "wx 1", "app_secret": APP_SECRET}),
    ] {
        let answer = admin.put("/v1/tenants/shop/channels/wx", &bad).await;
        assert_eq!(answer.status, 400, "{bad}: {:?}", answer.body);
        assert_eq!(answer.body["error"], "invalid_channel");
    }
    let created = configure_wechat(&admin, "wx", Some("http://127.0.0.1:9/")).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["app_id"], APP_ID);
    assert_eq!(created.body["app_secret_set"], true);
    let read = admin.get("/v1/tenants/shop/channels/wx").await;
    for answer in [&created.body, &read.body] {
        let text = answer.to_string();
        assert!(
            !text.contains(APP_SECRET) && !text.contains(TOKEN),
            "{text}"
        );
    }
    let listed = admin.get("/v1/channel-profiles").await;
    assert_eq!(listed.status, 200);
    let names: Vec<&str> = listed.body["profiles"]
        .as_array()
        .expect("profiles")
        .iter()
        .map(|profile| profile["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["douyin", "taobao", "webhook", "wechat_oa", "xiaohongshu"]
    );
    node.stop().await.expect("node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_the_window_refuses_becomes_one_callback_ticket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let admin = Client::new(node.addr);
    let (fake, base) = start_fake().await;
    assert_eq!(
        configure_wechat(&admin, "wx", Some(&base)).await.status,
        201
    );
    let first = admin
        .post(
            "/v1/tenants/shop/messages",
            &json!({"channel": "wx", "customer": "oCustomer-_9", "id": "m-1", "text": "退货怎么办"}),
        )
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let tenant = TenantId::new("shop").expect("valid");
    let conversation =
        ConversationId::parse(&tenant, &first.conversation_id()).expect("conversation id");
    let customer = CustomerId::new(&tenant, "oCustomer-_9").expect("customer id");
    let message = MessageId::generate(&tenant);

    // The reply's context comes from the conversation: the customer's message, and the bot's
    // echo after it.
    let before = now_ms() - 60_000;
    admin
        .conversation_until("shop", &conversation.key(), |body| {
            support::roles(body).contains(&"bot".to_owned())
        })
        .await;
    let stream = StreamId::conversation(&conversation);
    let context = reply_context(&**node.node.journal(), &stream, u64::MAX)
        .await
        .expect("read");
    let customer_wrote = context
        .last_customer_message_at_ms
        .expect("the customer wrote");
    assert!((before..=now_ms()).contains(&customer_wrote), "{context:?}");
    assert_eq!(
        context.sent_since_customer_message, 1,
        "the bot's echo came after it"
    );
    // The channel's outbox delivers the bot's echo through the fake.
    wait_until("the bot's echo is delivered", || {
        fake.delivered().len() == 1
    })
    .await;
    let sends_before = fake.send_requests.load(Ordering::SeqCst);

    let client = client_for(&base);
    let now = now_ms();
    let text = "您的退货已受理，退款将在 3 个工作日内到账";
    let outcome = client
        .deliver(wechat_profile(), &reply(text, now - 50 * 3_600_000), now)
        .await;
    let DeliveryOutcome::WindowClosed { reason, .. } = outcome else {
        panic!("expected WindowClosed, got {outcome:?}");
    };
    let request = CallbackRequest {
        conversation: &conversation,
        customer: &customer,
        message: &message,
        channel: "wx",
        reason: &reason,
        text,
    };
    let ticket = open_callback_ticket(&node.node, &request)
        .await
        .expect("ticket opened");
    assert_eq!(ticket, callback_ticket_id(&message));
    let again = open_callback_ticket(&node.node, &request)
        .await
        .expect("the same ticket");
    assert_eq!(again, ticket, "asking twice opens one ticket");

    let read = admin
        .get(&format!("/v1/tenants/shop/tickets/{}", ticket.key()))
        .await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.body["kind"], "callback");
    assert_eq!(read.body["customer"], "oCustomer-_9");
    assert_eq!(read.body["conversations"][0], conversation.key());
    assert_eq!(read.body["created_by"], "channel:wx");
    let subject = read.body["subject"].as_str().expect("subject");
    assert!(subject.contains("48 h"), "{subject}");
    assert!(subject.contains(text), "{subject}");
    assert_eq!(fake.send_requests.load(Ordering::SeqCst), sends_before);

    // An outbox entry of the same conversation, within the window: delivered to the customer.
    let entry = OutboxQueued {
        id: message.key(),
        conversation: conversation.clone(),
        customer: customer.clone(),
        role: "agent".to_owned(),
        message: message.clone(),
        source_stream: stream.clone(),
        source_seq: u64::MAX,
        at_ms: now,
    };
    let outcome = client
        .deliver_queued(
            &**node.node.journal(),
            wechat_profile(),
            &entry,
            text,
            0,
            now,
        )
        .await
        .expect("read");
    assert_eq!(outcome, DeliveryOutcome::Delivered { parts: 1 });
    let delivered = fake.delivered();
    let last = delivered.last().expect("delivered");
    assert_eq!(last["touser"], "oCustomer-_9");
    assert_eq!(last["text"]["content"], text);
    node.stop().await.expect("node stops");
}

// ---------------------------------------------------------------------------------------------
// Replies through the channel's outbox
// ---------------------------------------------------------------------------------------------

/// Polls `done` until it holds (up to 15 s).
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}: not reached");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Configures channel `wx` against the fake with a short backoff and `app_secret`.
async fn configure_fast(admin: &Client, base: &str, app_secret: &str) {
    let created = admin
        .put(
            "/v1/tenants/shop/channels/wx",
            &json!({
                "kind": "wechat_oa",
                "secret": TOKEN,
                "app_id": APP_ID,
                "app_secret": app_secret,
                "outbound_url": base,
                "backoff_base_ms": 20,
                "max_attempts": 5,
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
}

/// Pushes a signed text from `openid` to channel `wx` and returns its conversation's id once
/// the bot answered it, with the bot's replies.
async fn customer_writes(
    node: &crest_infra::server::RunningServer,
    admin: &Client,
    openid: &str,
    msg_id: &str,
    text: &str,
) -> (String, Vec<String>) {
    let http = reqwest::Client::new();
    let (status, body) = push(
        &http,
        node.addr,
        "/v1/channels/shop/wx/wechat",
        &signed_query(now_s(), "n1"),
        &text_xml(openid, msg_id, text),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "success"));
    let again = admin
        .post(
            "/v1/tenants/shop/messages",
            &json!({"channel": "wx", "customer": openid, "id": msg_id, "text": text}),
        )
        .await;
    assert_eq!(again.body["duplicate"], true, "{:?}", again.body);
    let conversation = again.conversation_id();
    let read = admin
        .conversation_until("shop", &conversation, |body| {
            support::roles(body).contains(&"bot".to_owned())
        })
        .await;
    let replies = read["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|message| message["role"] == "bot")
        .map(|message| message["text"].as_str().expect("text").to_owned())
        .collect();
    (conversation, replies)
}

async fn outbound(admin: &Client, outcome: &str) -> f64 {
    let (_, metrics) = admin.get_text("/metrics").await;
    support::samples(&metrics)
        .iter()
        .filter(|(series, _)| {
            series.starts_with("crest_channel_outbound_total")
                && series.contains("kind=\"wechat_oa\"")
                && series.contains(&format!("outcome=\"{outcome}\""))
        })
        .map(|(_, value)| *value)
        .sum()
}

async fn dead_letters(admin: &Client) -> Vec<Value> {
    let answer = admin.get("/v1/tenants/shop/channels/wx/dead-letters").await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["dead_letters"]
        .as_array()
        .expect("dead letters")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bots_reply_reaches_the_customer_through_the_api_once_after_a_busy_answer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let admin = Client::new(node.addr);
    let (fake, base) = start_fake().await;
    // WeChat is busy once (-1): the outbox retries.
    fake.scripted_errcodes.lock().expect("fake lock").push(-1);
    configure_fast(&admin, &base, APP_SECRET).await;
    let (_, replies) =
        customer_writes(&node, &admin, "oCustomer-_21", "3001", "我的订单到哪了？").await;
    assert!(!replies.is_empty());
    wait_until("every reply is delivered", || {
        fake.delivered().len() >= replies.len()
    })
    .await;
    wait_until("the outbox settled the replies", || {
        fake.send_requests.load(Ordering::SeqCst) == replies.len() + 1
    })
    .await;
    let delivered = fake.delivered();
    let texts: Vec<&str> = delivered
        .iter()
        .map(|body| body["text"]["content"].as_str().expect("content"))
        .collect();
    assert_eq!(texts, replies, "each reply exactly once, in order");
    assert!(
        delivered
            .iter()
            .all(|body| body["touser"] == "oCustomer-_21" && body["msgtype"] == "text")
    );
    assert_eq!(fake.tokens_issued.load(Ordering::SeqCst), 1);
    let mut delivered_count = 0.0;
    for _ in 0..500 {
        delivered_count = outbound(&admin, "delivered").await;
        if delivered_count >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    #[allow(clippy::cast_precision_loss)]
    let expected = replies.len() as f64;
    assert_eq!(delivered_count, expected);
    assert_eq!(outbound(&admin, "failed").await, 1.0);
    assert!(dead_letters(&admin).await.is_empty());
    node.stop().await.expect("node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_wechat_refuses_for_its_window_becomes_a_callback_ticket_not_a_dead_letter() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let admin = Client::new(node.addr);
    let (fake, base) = start_fake().await;
    // 45015: the customer is outside the 48 h window (as far as WeChat knows).
    fake.scripted_errcodes
        .lock()
        .expect("fake lock")
        .extend([45015; 8]);
    configure_fast(&admin, &base, APP_SECRET).await;
    let (conversation, replies) =
        customer_writes(&node, &admin, "oCustomer-_22", "3002", "退款呢").await;
    let mut tickets = Vec::new();
    for _ in 0..750 {
        let answer = admin
            .get(&format!(
                "/v1/tenants/shop/tickets?conversation={conversation}"
            ))
            .await;
        tickets = answer.body["tickets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if tickets.len() == replies.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        tickets.len(),
        replies.len(),
        "one ticket per reply: {tickets:?}"
    );
    let ticket = &tickets[0];
    assert_eq!(ticket["kind"], "callback", "{ticket}");
    assert_eq!(ticket["customer"], "oCustomer-_22", "{ticket}");
    let subject = ticket["subject"].as_str().expect("subject");
    assert!(subject.contains("45015"), "{subject}");
    assert!(subject.contains(&replies[0]), "{subject}");
    assert!(fake.delivered().is_empty());
    let mut settled = 0.0;
    for _ in 0..500 {
        settled = outbound(&admin, "callback_ticket").await;
        if settled >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    #[allow(clippy::cast_precision_loss)]
    let expected = replies.len() as f64;
    assert_eq!(settled, expected);
    assert!(
        dead_letters(&admin).await.is_empty(),
        "nothing dead-lettered"
    );
    assert_eq!(outbound(&admin, "dead_lettered").await, 0.0);
    let mut channel = admin.get("/v1/tenants/shop/channels/wx").await;
    for _ in 0..500 {
        if channel.body["pending"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        channel = admin.get("/v1/tenants/shop/channels/wx").await;
    }
    assert_eq!(channel.body["pending"], 0, "settled: {:?}", channel.body);
    assert_eq!(channel.body["dead_letters"], 0, "{:?}", channel.body);
    node.stop().await.expect("node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_app_secret_dead_letters_the_reply_at_once_without_showing_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let admin = Client::new(node.addr);
    let (fake, base) = start_fake().await;
    let wrong_secret = "ffffffffffffffffffffffffffffffff";
    configure_fast(&admin, &base, wrong_secret).await;
    let (_, replies) = customer_writes(&node, &admin, "oCustomer-_23", "3003", "在吗").await;
    let mut letters = Vec::new();
    for _ in 0..750 {
        letters = dead_letters(&admin).await;
        if letters.len() == replies.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(letters.len(), replies.len(), "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["attempts"], 1, "a refused credential is not retried");
    assert_eq!(letter["customer"], "oCustomer-_23");
    let error = letter["last_error"].as_str().expect("last_error");
    assert!(error.contains("40125"), "{error}");
    assert!(error.contains("invalid appsecret"), "{error}");
    let listed = serde_json::to_string(&letters).expect("json");
    assert!(
        !listed.contains(wrong_secret) && !listed.contains(APP_SECRET),
        "{listed}"
    );
    assert_eq!(fake.send_requests.load(Ordering::SeqCst), 0);
    assert!(fake.delivered().is_empty());
    node.stop().await.expect("node stops");
}
