//! The real brain behind a real node: the customer journeys of the brain issue, over HTTP.

mod support;

use std::sync::{Arc, LazyLock};

use crest_brain::engine::{Engine, train_default_intent_model};
use crest_infra::brain_adapter::EngineBrain;
use support::{Client, config, roles};

static ENGINE: LazyLock<Arc<Engine>> = LazyLock::new(|| {
    let model = train_default_intent_model().expect("default model trains");
    Arc::new(Engine::new(model).expect("engine builds"))
});

async fn start() -> (tempfile::TempDir, crest_infra::server::RunningServer) {
    let dir = tempfile::tempdir().expect("temp dir");
    let brain = EngineBrain::new(Arc::clone(&ENGINE));
    let node = crest_infra::server::start(config(dir.path()), Arc::new(brain))
        .await
        .expect("node starts");
    (dir, node)
}

async fn events(client: &Client, id: &str) -> Vec<serde_json::Value> {
    let answer = client
        .get(&format!("/v1/tenants/acme/conversations/{id}/events"))
        .await;
    answer.body["events"].as_array().expect("events").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_asks_for_the_order_number_then_tracks_the_parcel() {
    let (_dir, node) = start().await;
    let client = Client::new(node.addr);
    let first = client
        .message("acme", "c-1", "m-1", "我的订单什么时候到")
        .await;
    let id = first.conversation_id();
    let asked = client
        .conversation_until("acme", &id, |body| roles(body).len() == 2)
        .await;
    assert!(
        asked["messages"][1]["text"]
            .as_str()
            .expect("text")
            .contains("订单号"),
        "{asked}"
    );
    client.message("acme", "c-1", "m-2", "2026111100001").await;
    let answered = client
        .conversation_until("acme", &id, |body| roles(body).len() == 4)
        .await;
    let reply = answered["messages"][3]["text"].as_str().expect("text");
    assert!(
        reply.contains("2026111100001") && reply.contains("顺丰"),
        "{reply}"
    );
    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knowledge_answers_carry_their_citation_in_the_event_and_the_view() {
    let (_dir, node) = start().await;
    let client = Client::new(node.addr);
    let first = client
        .message("acme", "c-2", "m-1", "双十一预售的定金可以退吗？")
        .await;
    let id = first.conversation_id();
    let conversation = client
        .conversation_until("acme", &id, |body| roles(body).len() == 2)
        .await;
    // The conversation view shows the bot turn with the same citation (for the agent's history).
    let shown = &conversation["messages"][1]["citations"][0];
    let replied = events(&client, &id)
        .await
        .into_iter()
        .find(|event| event["type"] == "conversation.bot_replied")
        .expect("a bot reply");
    let citation = &replied["data"]["citations"][0];
    assert!(
        !citation["document_id"]
            .as_str()
            .expect("document id")
            .is_empty(),
        "{replied}"
    );
    assert!(citation["end"].as_u64() > citation["start"].as_u64());
    assert_eq!(shown, citation, "{conversation}");
    assert!(
        replied["data"]["intent"].is_string() && replied["data"]["emotion"]["label"].is_string()
    );
    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_angry_complaint_is_handed_off_with_its_reason() {
    let (_dir, node) = start().await;
    let client = Client::new(node.addr);
    let first = client
        .message("acme", "c-3", "m-1", "你们这是骗人！我要投诉！")
        .await;
    let id = first.conversation_id();
    client
        .conversation_until("acme", &id, |body| body["status"] == "queued")
        .await;
    let handoff = events(&client, &id)
        .await
        .into_iter()
        .find(|event| event["type"] == "conversation.handoff_requested")
        .expect("a handoff");
    let reason = handoff["data"]["reason"].to_string();
    assert!(
        reason.contains("anger") || reason.contains("complaint"),
        "{handoff}"
    );
    assert_eq!(handoff["data"]["group"], "after_sales");
    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn english_refund_questions_are_understood() {
    let (_dir, node) = start().await;
    let client = Client::new(node.addr);
    let first = client
        .message("acme", "c-4", "m-1", "where is my refund")
        .await;
    let id = first.conversation_id();
    let conversation = client
        .conversation_until("acme", &id, |body| roles(body).len() == 2)
        .await;
    assert_eq!(
        conversation["messages"][1]["intent"], "refund_status",
        "{conversation}"
    );
    node.stop().await.expect("clean stop");
}
