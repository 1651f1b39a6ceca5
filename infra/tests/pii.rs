//! PII in answers and logs: a customer's phone, email, identity and bank card numbers and address
//! are masked for an agent, revealed to an
//! admin who asks (with an audit record), refused to an agent who asks, and never written to the
//! node's log even at `CREST_LOG=debug`, nor in its metrics.

mod support;

use std::net::SocketAddr;
use std::process::Stdio;

use support::{Client, KillOnDrop, free_port, serve_process_logging};

const TENANT: &str = "alpha";
const PHONE: &str = "13812345678";
const EMAIL: &str = "alice.wang@shop.example";
const ID_CARD: &str = "11010519491231002X";
const BANK_CARD: &str = "6222021234567890128";
const ADDRESS: &str = "北京市朝阳区建国路88号3栋";
/// Everything above, none of which may be shown to an agent or logged.
const SECRETS: [&str; 5] = [PHONE, EMAIL, ID_CARD, BANK_CARD, ADDRESS];
/// The customer's id is itself a phone number, as it often is.
const CUSTOMER: &str = "13900001111";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pii_is_masked_for_agents_revealed_to_admins_with_an_audit_record_and_never_logged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("node.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let port = free_port();
    let process = KillOnDrop(serve_process_logging(
        &dir.path().join("data"),
        port,
        "debug",
        Stdio::from(log),
    ));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let admin = Client::new(addr);
    let text = format!(
        "我的手机是{PHONE}，邮箱 {EMAIL}，身份证{ID_CARD}，退款到卡号{BANK_CARD}，寄到{ADDRESS}，请尽快联系我"
    );
    let id = support::chat_of(&admin, TENANT, "alice", CUSTOMER, "m-1", &text).await;
    let alice = Client::with_token(addr, &admin.issue_key(TENANT, "agent", Some("alice")).await);
    let path = format!("/v1/tenants/{TENANT}/conversations/{id}");

    // The agent sees the masked forms, in the conversation and in its events.
    for route in [path.clone(), format!("{path}/events?after=0")] {
        let seen = alice.get(&route).await;
        assert_eq!(seen.status, 200, "{route}: {:?}", seen.body);
        let body = seen.body.to_string();
        for secret in SECRETS.iter().chain([&CUSTOMER]) {
            assert!(!body.contains(secret), "{route}: {secret} in {body}");
        }
        for masked in [
            "138****5678",
            "a***@shop.example",
            "110***********002X",
            "6222***********0128",
            "北京市朝阳区****",
        ] {
            assert!(body.contains(masked), "{route}: no {masked} in {body}");
        }
    }
    let asked = alice.get(&format!("{path}?reveal=pii")).await;
    assert_eq!(asked.status, 403, "{:?}", asked.body);
    assert_eq!(asked.body["error"], "forbidden");

    // The admin sees masked forms too, unless they ask; asking is audited.
    let masked = admin.get(&path).await;
    assert!(!masked.body.to_string().contains(PHONE));
    let revealed = admin.get(&format!("{path}?reveal=pii")).await;
    assert_eq!(revealed.status, 200, "{:?}", revealed.body);
    let body = revealed.body.to_string();
    for secret in SECRETS {
        assert!(body.contains(secret), "{secret} not revealed: {body}");
    }
    let audit = admin
        .get(&format!("/v1/tenants/{TENANT}/audit?after=0&limit=100"))
        .await;
    let reveals: Vec<&serde_json::Value> = audit.body["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|record| record["action"] == "pii.revealed")
        .collect();
    assert_eq!(reveals.len(), 1, "{:?}", audit.body);
    assert_eq!(reveals[0]["target"], path);
    assert!(
        reveals[0]["actor"]
            .as_str()
            .is_some_and(|actor| actor.starts_with("key:"))
    );
    // Other query parameters still reach the handler.
    let page = admin
        .get(&format!("{path}/events?after=1&reveal=pii&limit=1"))
        .await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    assert_eq!(page.body["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(page.body["events"][0]["seq"], 2);

    // Metrics never carry customer data.
    let (status, metrics) = admin.get_text("/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("crest_"), "{metrics}");
    for secret in SECRETS.iter().chain([&CUSTOMER]) {
        assert!(!metrics.contains(secret), "{secret} in /metrics");
    }

    drop(process);
    let logged = std::fs::read_to_string(&log_path).expect("log");
    // The acknowledgement's debug line names the customer's stream, masked.
    assert!(
        logged.contains("cust:alpha:139****1111"),
        "the message was logged at debug, masked: {logged}"
    );
    for secret in SECRETS.iter().chain([&CUSTOMER]) {
        assert!(!logged.contains(secret), "{secret} in the node's log");
    }
}
