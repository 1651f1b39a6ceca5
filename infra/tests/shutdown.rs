//! SIGTERM: the node stops accepting, finishes in-flight work, flushes and exits 0; everything it
//! acknowledged is there after a restart, and the demo data is seeded once.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::{Client, free_port, wait_for_port};

fn serve(data_dir: &std::path::Path, port: u16, demo: bool) -> std::process::Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crest"));
    command.args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
    ]);
    command.arg(data_dir);
    if !demo {
        command.arg("--no-demo");
    }
    let child = command
        .env("CREST_LOG", "warn")
        .env("CREST_OPERATOR_TOKEN", support::OPERATOR_TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("crest serve starts");
    wait_for_port(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    child
}

fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    for _ in 0..200 {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("crest did not exit within 10 s of SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_flushes_and_exits_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut node = serve(dir.path(), port, true);
    let client = Client::new(addr);
    let ack = client
        .message("acme", "c-1", "m-1", "hello before the stop")
        .await;
    assert_eq!(ack.status, 200);
    // The demo is seeded while the node already serves: wait for it (bounded).
    let mut demo = client
        .get("/v1/tenants/demo/customers/alice/conversation")
        .await;
    for _ in 0..200 {
        if demo.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        demo = client
            .get("/v1/tenants/demo/customers/alice/conversation")
            .await;
    }
    assert_eq!(demo.status, 200, "demo data is seeded: {:?}", demo.body);
    let status = terminate(&mut node);
    assert!(status.success(), "clean exit after SIGTERM: {status}");

    let mut node = serve(dir.path(), port, true);
    let again = client
        .message("acme", "c-1", "m-1", "hello before the stop")
        .await;
    assert_eq!(again.body["duplicate"], true);
    assert_eq!(again.body["message_id"], ack.body["message_id"]);
    let demo_again = client
        .get("/v1/tenants/demo/customers/alice/conversation")
        .await;
    let customer_messages = demo_again.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|message| message["role"] == "customer")
        .count();
    assert_eq!(
        customer_messages, 2,
        "seeding twice stores the demo messages once"
    );
    assert!(terminate(&mut node).success());
}
