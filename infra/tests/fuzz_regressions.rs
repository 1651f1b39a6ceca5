//! Inputs the `http_bodies` fuzz target (fuzz/fuzz_targets/http_bodies.rs) crashed the node with,
//! replayed the way the target sends them: `fuzz_crashes/http_bodies/*` is a route selector byte
//! then a request body, sent with an admin key of the tenant to the same routes (same order, same
//! kinds of ids). Each must be answered without a server error.

mod support;

use support::{Client, config, start};

#[test]
fn times_past_year_9999_are_written_as_its_last_instant() {
    use crest_infra::http::views::rfc3339;
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59.999Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_crashed_the_node_are_answered_without_a_server_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(config(dir.path())).await;
    let client = Client::new(server.addr);
    let t = "/v1/tenants/acme";
    let seat = serde_json::json!({"status": "online", "groups": ["general"], "capacity": 3});
    assert_eq!(
        client
            .put(&format!("{t}/agents/agent-1"), &seat)
            .await
            .status,
        200
    );
    let conversation = client
        .message("acme", "c-1", "m-1", "hello")
        .await
        .conversation_id();
    let ticket = serde_json::json!({"kind": "refund", "subject": "fuzz", "customer": "c-1"});
    let ticket = client.post(&format!("{t}/tickets"), &ticket).await;
    assert_eq!(ticket.status, 201, "{:?}", ticket.body);
    let ticket = ticket.body["id"].as_str().expect("id").to_owned();
    let c = format!("{t}/conversations/{conversation}");
    let routes = [
        ("POST", format!("{t}/api-keys")),
        ("POST", format!("{t}/sessions")),
        ("POST", format!("{t}/messages")),
        ("POST", format!("{c}/agent-messages")),
        ("POST", format!("{c}/handoff")),
        ("POST", format!("{c}/transfer")),
        ("POST", format!("{c}/take-over")),
        ("POST", format!("{c}/resolve")),
        ("POST", format!("{c}/csat")),
        ("PUT", format!("{t}/agents/agent-1")),
        (
            "POST",
            format!("{t}/agents/agent-1/offers/{conversation}/accept"),
        ),
        (
            "POST",
            format!("{t}/agents/agent-1/offers/{conversation}/decline"),
        ),
        ("PUT", format!("{t}/customers/c-1")),
        ("PUT", format!("{t}/queues/general")),
        ("PUT", format!("{t}/routing-table")),
        ("POST", format!("{t}/tickets")),
        ("PATCH", format!("{t}/tickets/{ticket}")),
    ];
    let crashes =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_crashes/http_bodies");
    let mut files: Vec<_> = std::fs::read_dir(crashes)
        .expect("the crash directory exists")
        .map(|entry| entry.expect("readable").path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let http = reqwest::Client::new();
    for file in files {
        let input = std::fs::read(&file).expect("readable");
        let Some((&selector, body)) = input.split_first() else {
            continue;
        };
        let (method, path) = &routes[usize::from(selector) % routes.len()];
        let token = client.token_for(path).await.expect("an admin key");
        let response = http
            .request(
                method.parse().expect("a method"),
                format!("http://{}{path}", server.addr),
            )
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("answered");
        let status = response.status();
        let text = response.text().await.expect("a body");
        assert!(
            !status.is_server_error() || status.as_u16() == 503,
            "{} ({method} {path}) answered {status}: {text}",
            file.display()
        );
        // The node still serves.
        assert_eq!(
            client.get(&format!("{t}/tickets/{ticket}")).await.status,
            200
        );
    }
    server.stop().await.expect("stops");
}
