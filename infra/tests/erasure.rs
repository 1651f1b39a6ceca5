//! Crypto-shredding: a customer's texts are stored sealed under their own key; erasing the
//! customer destroys the key, so their words (and the words written to them) read `[erased]` from
//! then on, across a restart, while the rest of every conversation stays.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use support::{Client, KillOnDrop, free_port, serve_command, serve_process};

const TENANT: &str = "alpha";
const CUSTOMER: &str = "mimi-owner";
/// Words that are nobody else's: searched for in the data directory's files.
const SECRET: &str = "Zebrafish-Quokka-Marmalade the third";

/// Every file under `dir`, read whole.
fn bytes_under(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                all.extend(std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    all
}

fn texts(conversation: &serde_json::Value) -> Vec<(String, String)> {
    conversation["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|message| {
            (
                message["role"].as_str().unwrap_or_default().to_owned(),
                message["text"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_customer_leaves_their_conversations_with_erased_texts_across_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut process = KillOnDrop(serve_process(&data, port));
    let admin = Client::new(addr);

    let first = admin
        .message(TENANT, CUSTOMER, "m-1", &format!("hello, {SECRET}"))
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let id = first.conversation_id();
    // The bot answers once its models are built (many seconds in a debug build).
    let before = admin
        .conversation_within(TENANT, &id, Duration::from_secs(180), |body| {
            texts(body).len() >= 2
        })
        .await;
    let path = format!("/v1/tenants/{TENANT}/conversations/{id}");
    let revealed = admin.get(&format!("{path}?reveal=pii")).await;
    assert!(
        texts(&revealed.body)
            .iter()
            .any(|(role, text)| role == "customer" && text.contains(SECRET)),
        "read in clear before erasure: {:?}",
        revealed.body
    );
    // Stored sealed: the words are nowhere in the data directory.
    let stored = bytes_under(&data);
    assert!(!stored.is_empty());
    assert!(
        !stored
            .windows(SECRET.len())
            .any(|window| window == SECRET.as_bytes()),
        "the customer's words are stored in clear"
    );

    // Only the tenant's admin erases.
    let route = format!("/v1/tenants/{TENANT}/customers/{CUSTOMER}");
    for role in ["supervisor", "agent", "integration"] {
        let agent = (role == "agent").then_some("alice");
        let key = admin.issue_key(TENANT, role, agent).await;
        let refused = Client::with_token(addr, &key).delete(&route).await;
        assert_eq!(refused.status, 403, "{role}: {:?}", refused.body);
    }
    let erased = admin.delete(&route).await;
    assert_eq!(erased.status, 200, "{:?}", erased.body);
    assert_eq!(erased.body["erased"], true);
    assert_eq!(erased.body["conversations"], 1);
    let again = admin.delete(&route).await;
    assert_eq!(again.body["erased"], false, "nothing left to erase");

    let check = |conversation: &serde_json::Value, label: &str| {
        let after = texts(conversation);
        assert_eq!(
            after.len(),
            texts(&before).len(),
            "{label}: every message stays"
        );
        for (role, text) in &after {
            if role == "customer" || role == "bot" {
                assert_eq!(text, "[erased]", "{label}: {conversation}");
            }
        }
        assert_eq!(conversation["status"], before["status"], "{label}");
        assert!(!conversation.to_string().contains(SECRET), "{label}");
    };
    let now = admin.get(&format!("{path}?reveal=pii")).await;
    assert_eq!(now.status, 200, "{:?}", now.body);
    check(&now.body, "at once");
    let events = admin
        .get(&format!("{path}/events?after=0&reveal=pii"))
        .await;
    assert_eq!(events.status, 200, "{:?}", events.body);
    assert!(
        !events.body.to_string().contains(SECRET),
        "{:?}",
        events.body
    );

    // The erasure is audited.
    let audit = admin
        .get(&format!("/v1/tenants/{TENANT}/audit?after=0&limit=100"))
        .await;
    assert!(
        audit.body["records"]
            .as_array()
            .expect("records")
            .iter()
            .any(|record| record["action"] == "customer.erased"
                && record["target"] == format!("customer:{CUSTOMER}")),
        "{:?}",
        audit.body
    );

    // Across a restart (the conversation is read from the journal and its snapshot anew).
    drop(process);
    process = KillOnDrop(serve_process(&data, port));
    let restarted = admin.get(&format!("{path}?reveal=pii")).await;
    assert_eq!(restarted.status, 200, "{:?}", restarted.body);
    check(&restarted.body, "after a restart");

    // The customer writes again: a new key, readable, while the old words stay erased.
    let later = admin.message(TENANT, CUSTOMER, "m-2", "back again").await;
    assert_eq!(later.status, 200, "{:?}", later.body);
    let conversation = admin
        .conversation_until(TENANT, &id, |body| {
            texts(body)
                .iter()
                .any(|(role, text)| role == "customer" && text == "back again")
        })
        .await;
    assert_eq!(texts(&conversation)[0].1, "[erased]");
    drop(process);
}

#[test]
fn an_unknown_cipher_or_a_bad_master_key_stops_the_node_with_what_to_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, "1:too-short\n").expect("key file");
    for (extra, expected) in [
        (vec!["--pii-cipher", "des"], "choose aes-256-gcm or sm4-gcm"),
        (
            vec!["--master-key-file", key_file.to_str().expect("utf-8")],
            "master key entry 1",
        ),
    ] {
        let output = serve_command(&dir.path().join("data"), free_port())
            .args(&extra)
            .stderr(Stdio::piped())
            .output()
            .expect("runs");
        assert!(!output.status.success(), "{extra:?} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
    }
}
