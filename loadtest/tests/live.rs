//! The load generator against a real node (fjall journal, in-process bus, HTTP API) started
//! in-process with the deterministic echo brain. Counts are asserted, timings never.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crest_actors::NodeConfig;
use crest_actors::test_brain::EchoBrain;
use crest_infra::access::OperatorToken;
use crest_infra::server::{self, RunningServer, ServeConfig};
use crest_loadtest::{Phase, Profile, RunConfig, Verdict};

async fn start_node(data_dir: &Path) -> RunningServer {
    let config = ServeConfig {
        data_dir: data_dir.to_owned(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        node: NodeConfig {
            brain_threads: 1,
            ..NodeConfig::default()
        },
        operator_token: Some(OperatorToken::new(OPERATOR_TOKEN).expect("long enough")),
        ..ServeConfig::default()
    };
    server::start(config, Arc::new(EchoBrain))
        .await
        .expect("node starts")
}

const OPERATOR_TOKEN: &str = "loadtest-operator-token-0123";

/// An admin key of `tenant`, issued with the operator token.
async fn admin_key(node: &RunningServer, tenant: &str) -> String {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{}/v1/tenants/{tenant}/api-keys", node.addr))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&serde_json::json!({"role": "admin"}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    answer["key"].as_str().expect("key").to_owned()
}

/// Three seconds: a short baseline, a ramp and a peak, with many handoffs so agents work.
fn tiny_profile() -> Profile {
    let mut profile = Profile::constant(0.0, 1.0);
    profile.name = "tiny".to_owned();
    profile.customers = 20;
    profile.handoff_share = 0.3;
    profile.agents = 2;
    profile.agent_capacity = 3;
    profile.agent_handle_ms = 100;
    profile.drain_s = 5.0;
    profile.phases = vec![
        Phase::constant("baseline", 1.0, 20.0),
        Phase::ramp("ramp", 1.0, 20.0, 60.0),
        Phase::constant("peak", 1.0, 60.0),
    ];
    profile
}

const TINY_TOML: &str = r#"
name = "tiny"
customers = 20
handoff_share = 0.3
agents = 1
agent_capacity = 3
agent_handle_ms = 100
drain_s = 5

[[phases]]
name = "baseline"
duration_s = 1
rate = 20

[[phases]]
name = "ramp"
duration_s = 1
from = 20
to = 60

[[phases]]
name = "peak"
duration_s = 1
rate = 60
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_run_has_no_loss() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start_node(dir.path()).await;
    let report = crest_loadtest::run(RunConfig {
        target: format!("http://{}", node.addr),
        tenant: "loadtest".to_owned(),
        api_key: admin_key(&node, "loadtest").await,
        profile: tiny_profile(),
        seed: 7,
        run_id: crest_loadtest::new_run_id(),
        progress: false,
    })
    .await
    .expect("run completes");
    node.stop().await.expect("node stops");

    assert_eq!(
        report.offered,
        120,
        "20 + 40 + 60 arrivals: {}",
        report.table()
    );
    assert!(report.acked > 0, "{}", report.table());
    assert_eq!(report.acked + report.message_errors, report.offered);
    assert_eq!(report.loss.lost, 0, "{}", report.table());
    assert_eq!(report.loss.duplicated, 0, "{}", report.table());
    assert_eq!(report.loss.checked, report.acked);
    assert_eq!(report.verdict(), Verdict::Ok);
    assert!(report.bot_replies.seen > 0, "{}", report.table());
    assert!(report.handoffs.acked > 0, "{}", report.table());
    let line = report.summary_line();
    assert_eq!(line["lost"], 0);
    assert_eq!(line["duplicated"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_runs_a_profile_file_and_prints_the_json_line_last() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start_node(&dir.path().join("node")).await;
    let profile = dir.path().join("tiny.toml");
    std::fs::write(&profile, TINY_TOML).expect("profile written");
    let report_path = dir.path().join("report.json");
    let plot_path = dir.path().join("plot.svg");
    let key = admin_key(&node, "cli").await;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_crest-loadtest"));
    command
        .env("CREST_API_KEY", key)
        .arg("--target")
        .arg(format!("http://{}", node.addr))
        .arg("--profile")
        .arg(&profile)
        .args(["--tenant", "cli", "--agents", "2", "--seed", "3"])
        .arg("--report")
        .arg(&report_path)
        .arg("--plot")
        .arg(&plot_path);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("joined")
        .expect("crest-loadtest runs");
    node.stop().await.expect("node stops");

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let last = stdout.lines().last().expect("some output");
    let summary: serde_json::Value = serde_json::from_str(last).expect("last line is JSON");
    for key in [
        "achieved_msgs_per_s",
        "offered_msgs_per_s",
        "ack_p50_ms",
        "ack_p99_ms",
        "bot_reply_p99_ms",
        "handoff_to_offer_p99_ms",
        "acked",
        "lost",
        "duplicated",
        "errors",
    ] {
        assert!(summary.get(key).is_some(), "{key} missing in {last}");
    }
    assert!(
        summary["acked"].as_u64().is_some_and(|acked| acked > 0),
        "{last}"
    );
    assert_eq!(summary["lost"], 0, "{stdout}");
    assert_eq!(summary["duplicated"], 0, "{stdout}");
    assert!(stdout.contains("latency (ms)"), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).expect("report written"))
            .expect("report is JSON");
    assert_eq!(report["profile"]["agents"], 2);
    assert!(
        report["series"]
            .as_array()
            .is_some_and(|series| !series.is_empty())
    );
    let svg = std::fs::read_to_string(&plot_path).expect("plot written");
    assert!(svg.contains("<svg") && svg.contains("Throughput"));
}
