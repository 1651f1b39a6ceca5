//! A tenant's own intents over HTTP, behind a real node with the real brain: examples of a new
//! intent, a candidate measured on held-out examples, the switch, the bot recognising the new
//! intent for that tenant only, and the same model rebuilt after a restart.

mod support;

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use crest_brain::classifier::TextClassifier;
use crest_brain::engine::{Engine, train_default_intent_model};
use crest_brain::intents::TenantModels;
use crest_infra::brain_adapter::EngineBrain;
use crest_infra::server::RunningServer;
use serde_json::{Value, json};
use support::{Client, config, roles};

static MODEL: LazyLock<TextClassifier> =
    LazyLock::new(|| train_default_intent_model().expect("default model trains"));

const GIFT_WRAP: [&str; 10] = [
    "can you gift wrap my order",
    "I want gift wrapping please",
    "do you offer gift wrap",
    "please wrap it as a present",
    "add a gift box and a card",
    "能帮我礼品包装吗",
    "可以包装成礼物吗",
    "我要礼盒包装",
    "送人的，帮我包一下",
    "有没有礼品包装服务",
];

/// Starts a node on `dir` whose bot predicts with the models the node installs (a fresh set each
/// time, as a new process would have).
async fn start(dir: &std::path::Path) -> RunningServer {
    let models = Arc::new(TenantModels::default());
    let engine = Engine::new(MODEL.clone())
        .expect("engine builds")
        .with_tenant_intents(Arc::clone(&models));
    let mut config = config(dir);
    config.tenant_intents = models;
    crest_infra::server::start(config, Arc::new(EngineBrain::new(Arc::new(engine))))
        .await
        .expect("node starts")
}

/// The intent the bot recognised in `text`, sent by a new customer of `tenant`.
async fn intent_of(client: &Client, tenant: &str, customer: &str, text: &str) -> Value {
    let first = client.message(tenant, customer, "m-1", text).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let conversation = client
        .conversation_until(tenant, &first.conversation_id(), |body| {
            roles(body).len() >= 2
        })
        .await;
    conversation["messages"][1]["intent"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_own_intent_is_measured_switched_to_and_rebuilt_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(dir.path()).await;
    let client = Client::new(node.addr);
    let question = "do you do gift wrapping";
    assert_ne!(
        intent_of(&client, "shop", "c-1", question).await,
        "gift_wrap"
    );

    let set = client
        .put(
            "/v1/tenants/shop/intents/gift_wrap",
            &json!({ "examples": GIFT_WRAP }),
        )
        .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    let listed = set.body["intents"]
        .as_array()
        .expect("intents")
        .iter()
        .find(|intent| intent["intent"] == "gift_wrap")
        .cloned()
        .expect("the new intent is listed");
    assert_eq!(listed["examples"].as_array().map(Vec::len), Some(10));
    assert_eq!(set.body["model"], "default", "nothing switches by itself");

    // A stale or unknown model is refused; a candidate is measured on held-out examples.
    let early = client
        .post(
            "/v1/tenants/shop/intents/activate",
            &json!({"model": "m-0000000000000000"}),
        )
        .await;
    assert_eq!(early.status, 409, "{:?}", early.body);
    let candidate = client
        .post("/v1/tenants/shop/intents/candidates", &json!({}))
        .await;
    assert_eq!(candidate.status, 201, "{:?}", candidate.body);
    let model = candidate.body["model"]
        .as_str()
        .expect("model id")
        .to_owned();
    assert_eq!(model, set.body["examples_model"], "{:?}", candidate.body);
    let accuracy = candidate.body["accuracy"].as_f64().expect("accuracy");
    assert!(accuracy > 0.5 && accuracy <= 1.0, "{:?}", candidate.body);
    assert!(candidate.body["held_out"].as_u64() > Some(0));
    assert_ne!(
        intent_of(&client, "shop", "c-2", question).await,
        "gift_wrap"
    );

    let switched = client
        .post(
            "/v1/tenants/shop/intents/activate",
            &json!({"model": model}),
        )
        .await;
    assert_eq!(switched.status, 200, "{:?}", switched.body);
    assert_eq!(switched.body["model"], model.as_str());
    assert_eq!(switched.body["installed"], model.as_str());
    assert_eq!(switched.body["active"]["accuracy"], accuracy);
    assert_eq!(
        intent_of(&client, "shop", "c-3", question).await,
        "gift_wrap"
    );
    assert_ne!(
        intent_of(&client, "other", "c-1", question).await,
        "gift_wrap",
        "another tenant keeps the default model"
    );
    node.stop().await.expect("stops");

    // After a restart the node rebuilds the same model from the journaled examples.
    let node = start(dir.path()).await;
    let client = Client::new(node.addr);
    let started = Instant::now();
    loop {
        let view = client.get("/v1/tenants/shop/intents").await;
        if view.body["installed"] == model.as_str() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "model not rebuilt: {:?}",
            view.body
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        intent_of(&client, "shop", "c-4", question).await,
        "gift_wrap"
    );
    // Back to the default model.
    let back = client
        .post(
            "/v1/tenants/shop/intents/activate",
            &json!({"model": "default"}),
        )
        .await;
    assert_eq!(back.body["installed"], "default", "{:?}", back.body);
    assert_ne!(
        intent_of(&client, "shop", "c-5", question).await,
        "gift_wrap"
    );
    for (path, body) in [
        (
            "/v1/tenants/shop/intents/Bad-Name",
            json!({"examples": ["x"]}),
        ),
        (
            "/v1/tenants/shop/intents/gift_wrap",
            json!({"examples": [""]}),
        ),
        (
            "/v1/tenants/shop/intents/gift_wrap",
            json!({"examples": "x"}),
        ),
    ] {
        let answer = client.put(path, &body).await;
        assert!(
            (400..500).contains(&answer.status),
            "{path}: {:?}",
            answer.body
        );
    }
    node.stop().await.expect("stops");
}
