//! One customer across channels: identities recorded per customer, a merge on strong evidence
//! (a phone verified on both, an order both own) shows one history and routes the merged
//! customer's next message into the surviving customer's open conversation; undo separates them
//! again; weak evidence, self-merges, loops, wrong roles and other tenants are refused; merges and
//! undos are audited.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Answer, Client, config, start};

const TENANT: &str = "shop";
const T: &str = "/v1/tenants/shop";
const PHONE: &str = "+8613800138000";

async fn say(client: &Client, customer: &str, channel: &str, id: &str, text: &str) -> Answer {
    let body = json!({"channel": channel, "customer": customer, "id": id, "text": text});
    let answer = client.post(&format!("{T}/messages"), &body).await;
    assert!(
        answer.status == 200 || answer.status == 201 || answer.status == 202,
        "message refused: {} {:?}",
        answer.status,
        answer.body
    );
    answer
}

async fn identify(client: &Client, customer: &str, identity: &Value) -> Answer {
    client
        .put(&format!("{T}/customers/{customer}/identities"), identity)
        .await
}

async fn verified_phone(client: &Client, customer: &str, phone: &str, verified: bool) {
    let answer = identify(
        client,
        customer,
        &json!({"kind": "phone", "value": phone, "verified": verified}),
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}

fn merge_body(from: &str, into: &str, kind: &str, value: &str) -> Value {
    json!({"from": from, "into": into, "reason": "same buyer on WeChat and the web shop",
           "evidence": {"kind": kind, "value": value}})
}

async fn merge(client: &Client, from: &str, into: &str, kind: &str, value: &str) -> Answer {
    client
        .post(
            &format!("{T}/customers/merge"),
            &merge_body(from, into, kind, value),
        )
        .await
}

async fn history(client: &Client, customer: &str) -> Value {
    let answer = client
        .get(&format!("{T}/customers/{customer}/conversations"))
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body
}

fn ids_of(history: &Value) -> Vec<String> {
    history["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .map(|entry| entry["id"].as_str().expect("id").to_owned())
        .collect()
}

fn entry<'a>(history: &'a Value, id: &str) -> &'a Value {
    history["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .find(|entry| entry["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {history}"))
}

async fn history_until(client: &Client, customer: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = history(client, customer).await;
        if done(&found) {
            return found;
        }
        assert!(Instant::now() < deadline, "history not reached: {found}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn texts(conversation: &Value) -> Vec<String> {
    conversation["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|message| message["role"] == "customer")
        .map(|message| message["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merging_two_channel_identities_shows_one_history_and_undo_restores_both() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let admin = Client::new(node.addr);

    // The same buyer, once on WeChat and once on the web shop: two customers, two conversations.
    let on_wechat = say(&admin, "wx-1", "wechat", "wx-m1", "我的包裹到哪了")
        .await
        .conversation_id();
    let on_web = say(&admin, "web-1", "web", "web-m1", "where is my parcel")
        .await
        .conversation_id();
    assert_ne!(on_wechat, on_web);
    let openid = identify(
        &admin,
        "wx-1",
        &json!({"kind": "channel", "channel": "wechat", "value": "oX9a-openid-7"}),
    )
    .await;
    assert_eq!(openid.status, 200, "{:?}", openid.body);
    verified_phone(&admin, "wx-1", PHONE, true).await;
    // Spaces and dashes do not make another phone.
    verified_phone(&admin, "web-1", "+86 138-0013-8000", true).await;
    let identities = admin
        .get(&format!("{T}/customers/wx-1/identities?reveal=pii"))
        .await;
    assert_eq!(identities.status, 200, "{:?}", identities.body);
    assert_eq!(identities.body["identities"][0]["kind"], "channel");
    assert_eq!(identities.body["identities"][1]["value"], PHONE);
    assert_eq!(identities.body["identities"][1]["verified"], true);

    let merged = merge(&admin, "web-1", "wx-1", "verified_phone", PHONE).await;
    assert_eq!(merged.status, 201, "{:?}", merged.body);
    assert_eq!(merged.body["from"], "web-1");
    assert_eq!(merged.body["into"], "wx-1");
    let merge_id = merged.body["id"].as_str().expect("merge id").to_owned();
    // Both had a conversation open: the merged-away customer's is closed, so one stays open.
    assert_eq!(merged.body["closed_conversation"], on_web.as_str());
    admin
        .conversation_until(TENANT, &on_web, |body| body["status"] == "closed")
        .await;

    // One history: both conversations, each under the customer it came from, newest first.
    let together = history_until(&admin, "wx-1", |found| {
        ids_of(found).len() == 2 && !entry(found, &on_web)["ended_at"].is_null()
    })
    .await;
    assert_eq!(ids_of(&together), [on_web.clone(), on_wechat.clone()]);
    assert_eq!(together["merged_customers"], json!(["web-1"]));
    assert_eq!(entry(&together, &on_web)["customer"], "web-1");
    assert_eq!(entry(&together, &on_web)["channel"], "web");
    assert_eq!(entry(&together, &on_wechat)["customer"], "wx-1");
    assert_eq!(entry(&together, &on_wechat)["channel"], "wechat");
    assert!(entry(&together, &on_wechat)["ended_at"].is_null());

    // The merged-away customer writes again, on the web: it joins the WeChat conversation.
    let joined = say(&admin, "web-1", "web", "web-m2", "still waiting")
        .await
        .conversation_id();
    assert_eq!(
        joined, on_wechat,
        "the message lands in into's open conversation"
    );
    let wechat_conversation = admin
        .conversation_until(TENANT, &on_wechat, |body| {
            texts(body).contains(&"still waiting".to_owned())
        })
        .await;
    assert_eq!(
        texts(&wechat_conversation),
        ["我的包裹到哪了", "still waiting"]
    );

    // Undo: separate again.
    let undone = admin
        .post(&format!("{T}/customers/merges/{merge_id}/undo"), &json!({}))
        .await;
    assert_eq!(undone.status, 200, "{:?}", undone.body);
    assert_eq!(undone.body["undone"], true);
    assert_eq!(undone.body["from"], "web-1");
    let twice = admin
        .post(&format!("{T}/customers/merges/{merge_id}/undo"), &json!({}))
        .await;
    assert_eq!(twice.status, 409, "{:?}", twice.body);

    let own = say(&admin, "web-1", "web", "web-m3", "hello again")
        .await
        .conversation_id();
    assert_ne!(
        own, on_wechat,
        "after the undo web-1 has its own conversation"
    );
    assert_ne!(own, on_web, "its old conversation was closed by the merge");
    let wechat_alone = history(&admin, "wx-1").await;
    assert_eq!(ids_of(&wechat_alone), std::slice::from_ref(&on_wechat));
    assert_eq!(wechat_alone["merged_customers"], json!([]));
    let web_alone = history(&admin, "web-1").await;
    assert_eq!(ids_of(&web_alone), [own.clone(), on_web.clone()]);
    let wechat_after = say(&admin, "wx-1", "wechat", "wx-m2", "谢谢")
        .await
        .conversation_id();
    assert_eq!(wechat_after, on_wechat);

    // Merge and undo are in the audit log, with who did them.
    let audit = admin.get(&format!("{T}/audit?after=0&limit=100")).await;
    assert_eq!(audit.status, 200, "{:?}", audit.body);
    let records = audit.body["records"].as_array().expect("records");
    let actions: Vec<&str> = records
        .iter()
        .map(|record| record["action"].as_str().expect("action"))
        .collect();
    for action in [
        "customer.identity_recorded",
        "customer.merged",
        "customer.merge_undone",
    ] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }
    let merged_record = records
        .iter()
        .find(|record| record["action"] == "customer.merged")
        .expect("merge audited");
    assert_eq!(merged_record["target"], "customer:web-1");
    assert!(
        merged_record["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains(&merge_id) && detail.contains("into=wx-1")),
        "{merged_record}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_evidence_self_merges_and_loops_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let admin = Client::new(node.addr);
    verified_phone(&admin, "a", PHONE, true).await;
    verified_phone(&admin, "b", PHONE, false).await;

    // A name is never evidence.
    let by_name = merge(&admin, "a", "b", "name", "Zhang San").await;
    assert_eq!(by_name.status, 422, "{:?}", by_name.body);
    assert!(
        by_name.body["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("name")),
        "{:?}",
        by_name.body
    );
    // A phone verified on one of them only.
    let unverified = merge(&admin, "a", "b", "verified_phone", PHONE).await;
    assert_eq!(unverified.status, 422, "{:?}", unverified.body);
    assert!(
        unverified.body["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("not a verified identity of customer b")),
        "{:?}",
        unverified.body
    );
    // Only phones and emails can be verified.
    let verified_order = identify(
        &admin,
        "a",
        &json!({"kind": "order", "value": "A1024", "verified": true}),
    )
    .await;
    assert_eq!(verified_order.status, 400, "{:?}", verified_order.body);
    // An order only one of them owns.
    let order = identify(&admin, "a", &json!({"kind": "order", "value": "A1024"})).await;
    assert_eq!(order.status, 200, "{:?}", order.body);
    let one_owner = merge(&admin, "a", "b", "shared_order", "A1024").await;
    assert_eq!(one_owner.status, 422, "{:?}", one_owner.body);
    let order = identify(&admin, "b", &json!({"kind": "order", "value": "A1024"})).await;
    assert_eq!(order.status, 200, "{:?}", order.body);
    let on_order = merge(&admin, "a", "b", "shared_order", "A1024").await;
    assert_eq!(on_order.status, 201, "{:?}", on_order.body);

    // Into itself, from a customer merged away, into a customer merged away, and back (a loop).
    let itself = merge(&admin, "b", "b", "shared_order", "A1024").await;
    assert_eq!(itself.status, 409, "{:?}", itself.body);
    for customer in ["c", "d"] {
        let order = identify(
            &admin,
            customer,
            &json!({"kind": "order", "value": "A1024"}),
        )
        .await;
        assert_eq!(order.status, 200, "{:?}", order.body);
    }
    let again = merge(&admin, "a", "c", "shared_order", "A1024").await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert_eq!(again.body["error"], "merge_refused");
    let into_merged = merge(&admin, "c", "a", "shared_order", "A1024").await;
    assert_eq!(into_merged.status, 409, "{:?}", into_merged.body);
    let loop_back = merge(&admin, "b", "a", "shared_order", "A1024").await;
    assert_eq!(loop_back.status, 409, "{:?}", loop_back.body);
    // A chain is allowed (b into d; a follows b), and a's messages reach d.
    let chain = merge(&admin, "b", "d", "shared_order", "A1024").await;
    assert_eq!(chain.status, 201, "{:?}", chain.body);
    let in_d = say(&admin, "a", "web", "a-m1", "hello")
        .await
        .conversation_id();
    let d_open = admin.get(&format!("{T}/customers/d/conversation")).await;
    assert_eq!(d_open.status, 200, "{:?}", d_open.body);
    assert_eq!(d_open.body["id"], in_d.as_str());
    let d_history = history(&admin, "d").await;
    assert_eq!(d_history["merged_customers"], json!(["b", "a"]));
    // Undoing b into d leaves a merged into b: a's next message goes to b, not to d.
    let chain_id = chain.body["id"].as_str().expect("id").to_owned();
    let undone = admin
        .post(&format!("{T}/customers/merges/{chain_id}/undo"), &json!({}))
        .await;
    assert_eq!(undone.status, 200, "{:?}", undone.body);
    let in_b = say(&admin, "a", "web", "a-m2", "hello b")
        .await
        .conversation_id();
    assert_ne!(in_b, in_d);
    let b_open = admin.get(&format!("{T}/customers/b/conversation")).await;
    assert_eq!(b_open.status, 200, "{:?}", b_open.body);
    assert_eq!(b_open.body["id"], in_b.as_str());
    assert_eq!(history(&admin, "d").await["merged_customers"], json!([]));
    assert_eq!(history(&admin, "b").await["merged_customers"], json!(["a"]));

    let unknown = admin
        .post(
            &format!("{T}/customers/merges/01JCX9Z8Q4W3V2T1S0R9P8N7M6/undo"),
            &json!({}),
        )
        .await;
    assert_eq!(unknown.status, 404, "{:?}", unknown.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merging_is_for_admins_supervisors_and_the_operator_within_one_tenant() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let admin = Client::new(node.addr);
    for customer in ["a", "b"] {
        verified_phone(&admin, customer, PHONE, true).await;
    }
    let agent_key = admin.issue_key(TENANT, "agent", Some("mei")).await;
    let agent = Client::with_token(node.addr, &agent_key);
    let denied = merge(&agent, "a", "b", "verified_phone", PHONE).await;
    assert_eq!(denied.status, 403, "{:?}", denied.body);
    let integration_key = admin.issue_key(TENANT, "integration", None).await;
    let integration = Client::with_token(node.addr, &integration_key);
    let denied = merge(&integration, "a", "b", "verified_phone", PHONE).await;
    assert_eq!(denied.status, 403, "{:?}", denied.body);
    // The merchant's systems record identities, agents do not.
    let recorded = identify(
        &integration,
        "e",
        &json!({"kind": "email", "value": "E@x.cn"}),
    )
    .await;
    assert_eq!(recorded.status, 200, "{:?}", recorded.body);
    let refused = identify(&agent, "e", &json!({"kind": "email", "value": "e@x.cn"})).await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);

    // Another tenant's credential cannot merge this tenant's customers, nor undo its merges.
    let other_key = admin.issue_key("other", "admin", None).await;
    let other = Client::with_token(node.addr, &other_key);
    let foreign = other
        .post(
            &format!("{T}/customers/merge"),
            &merge_body("a", "b", "verified_phone", PHONE),
        )
        .await;
    assert_eq!(foreign.status, 403, "{:?}", foreign.body);

    let supervisor_key = admin.issue_key(TENANT, "supervisor", None).await;
    let supervisor = Client::with_token(node.addr, &supervisor_key);
    let merged = merge(&supervisor, "a", "b", "verified_phone", PHONE).await;
    assert_eq!(merged.status, 201, "{:?}", merged.body);
    let merge_id = merged.body["id"].as_str().expect("id").to_owned();
    // In its own tenant, the other tenant's admin finds no such merge, and its customers with the
    // same keys and phone are untouched.
    let own_phone = other
        .put(
            "/v1/tenants/other/customers/a/identities",
            &json!({"kind": "phone", "value": PHONE, "verified": true}),
        )
        .await;
    assert_eq!(own_phone.status, 200, "{:?}", own_phone.body);
    let not_theirs = other
        .post(
            &format!("/v1/tenants/other/customers/merges/{merge_id}/undo"),
            &json!({}),
        )
        .await;
    assert_eq!(not_theirs.status, 404, "{:?}", not_theirs.body);
    let theirs = other
        .get("/v1/tenants/other/customers/b/conversations")
        .await;
    assert_eq!(theirs.status, 200, "{:?}", theirs.body);
    assert_eq!(theirs.body["merged_customers"], json!([]));
    let operator = Client::with_token(node.addr, support::OPERATOR_TOKEN);
    let undone = operator
        .post(&format!("{T}/customers/merges/{merge_id}/undo"), &json!({}))
        .await;
    assert_eq!(undone.status, 200, "{:?}", undone.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merged_widget_visitor_follows_into_the_surviving_conversation_until_the_undo() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let admin = Client::new(node.addr);
    let widget = admin
        .put(
            &format!("{T}/widget"),
            &json!({"origins": ["https://shop.example"]}),
        )
        .await;
    assert_eq!(widget.status, 200, "{:?}", widget.body);
    let website_token = widget.body["website_token"].as_str().expect("token");
    let session = Client::anonymous(node.addr)
        .post(
            &format!("{T}/widget/sessions"),
            &json!({"website_token": website_token}),
        )
        .await;
    assert_eq!(session.status, 201, "{:?}", session.body);
    let visitor_id = session.body["customer"]
        .as_str()
        .expect("customer")
        .to_owned();
    let visitor = Client::with_token(
        node.addr,
        session.body["token"].as_str().expect("session token"),
    );
    let on_wechat = say(&admin, "wx-1", "wechat", "wx-m1", "在吗")
        .await
        .conversation_id();
    let own = visitor
        .message(TENANT, &visitor_id, "w-1", "hello")
        .await
        .conversation_id();
    // The merchant verified the visitor's phone (say, with a code) and merges them.
    verified_phone(&admin, &visitor_id, PHONE, true).await;
    verified_phone(&admin, "wx-1", PHONE, true).await;
    let merged = merge(&admin, &visitor_id, "wx-1", "verified_phone", PHONE).await;
    assert_eq!(merged.status, 201, "{:?}", merged.body);
    assert_eq!(merged.body["closed_conversation"], own.as_str());

    let joined = visitor
        .message(TENANT, &visitor_id, "w-2", "still there?")
        .await;
    assert_eq!(joined.status, 200, "{:?}", joined.body);
    assert_eq!(joined.conversation_id(), on_wechat);
    let read = visitor.get(&format!("{T}/conversations/{on_wechat}")).await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    let open = visitor
        .get(&format!("{T}/customers/{visitor_id}/conversation"))
        .await;
    assert_eq!(open.status, 200, "{:?}", open.body);
    assert_eq!(open.body["id"], on_wechat.as_str());

    let merge_id = merged.body["id"].as_str().expect("id");
    let undone = admin
        .post(&format!("{T}/customers/merges/{merge_id}/undo"), &json!({}))
        .await;
    assert_eq!(undone.status, 200, "{:?}", undone.body);
    let refused = visitor.get(&format!("{T}/conversations/{on_wechat}")).await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    let alone = visitor.message(TENANT, &visitor_id, "w-3", "hi").await;
    assert_eq!(alone.status, 200, "{:?}", alone.body);
    assert_ne!(alone.conversation_id(), on_wechat);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_a_merge_made_on_one_node_routes_messages_taken_by_the_other() {
    let nats = support::NatsServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let ports = [support::free_port(), support::free_port()];
    let _nodes = [
        support::cluster_node(&nats.url(), "one", ports[0], &dir.path().join("one")),
        support::cluster_node(&nats.url(), "two", ports[1], &dir.path().join("two")),
    ];
    let clients: Vec<Client> = ports
        .iter()
        .map(|port| Client::new(std::net::SocketAddr::from(([127, 0, 0, 1], *port))))
        .collect();
    for port in ports {
        support::wait_for_port(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    support::wait_for_cluster(&[&clients[0], &clients[1]], 2).await;
    // Several pairs, so some customers' actors run on the node that did not take the merge.
    for pair in 0..3 {
        let (wechat, web) = (format!("wx-{pair}"), format!("web-{pair}"));
        let [one, two] = [&clients[0], &clients[1]];
        let kept = say(one, &wechat, "wechat", &format!("{wechat}-m1"), "在吗")
            .await
            .conversation_id();
        say(two, &web, "web", &format!("{web}-m1"), "hello").await;
        verified_phone(two, &wechat, PHONE, true).await;
        verified_phone(one, &web, PHONE, true).await;
        let merged = merge(one, &web, &wechat, "verified_phone", PHONE).await;
        assert_eq!(merged.status, 201, "{:?}", merged.body);
        let joined = say(two, &web, "web", &format!("{web}-m2"), "still there?")
            .await
            .conversation_id();
        assert_eq!(
            joined, kept,
            "pair {pair}: the message joins into's conversation"
        );
        let together = history(two, &wechat).await;
        assert_eq!(together["merged_customers"], json!([web.clone()]));
        assert_eq!(ids_of(&together).len(), 2, "{together}");
        let merge_id = merged.body["id"].as_str().expect("id");
        let undone = two
            .post(&format!("{T}/customers/merges/{merge_id}/undo"), &json!({}))
            .await;
        assert_eq!(undone.status, 200, "{:?}", undone.body);
        let own = say(one, &web, "web", &format!("{web}-m3"), "hi")
            .await
            .conversation_id();
        assert_ne!(own, kept, "pair {pair}: separate again after the undo");
    }
}
