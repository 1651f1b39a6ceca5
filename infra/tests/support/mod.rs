//! Test support: real nats-server processes and real Crest nodes on free loopback ports.

#![allow(dead_code)]

pub mod cluster;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crest_actors::NodeConfig;
use crest_actors::context::EntitySettings;
use crest_actors::test_brain::EchoBrain;
pub use crest_infra::server::ServeConfig;
use crest_infra::server::{self, RunningServer};

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// The nats-server binary: `$NATS_SERVER`, the one `scripts/setup.sh` installs, or PATH.
pub fn nats_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return PathBuf::from(path);
    }
    let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/nats-server");
    if installed.exists() {
        return installed;
    }
    PathBuf::from("nats-server")
}

/// A nats-server with JetStream on a free loopback port, killed on drop.
pub struct NatsServer {
    child: Child,
    /// Its client port.
    pub port: u16,
    _store: tempfile::TempDir,
}

/// Spawns `nats-server` with `args` (output discarded), with a clear message if it is missing.
pub fn spawn_nats_server(args: &[String]) -> Child {
    let binary = nats_server_binary();
    Command::new(&binary)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot start {} ({error}); run scripts/setup.sh to install nats-server 2.15.1",
                binary.display()
            )
        })
}

impl NatsServer {
    /// Starts the server and waits until it accepts connections.
    pub fn start() -> Self {
        let store = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = spawn_nats_server(&Self::args(port, store.path()));
        let server = Self {
            child,
            port,
            _store: store,
        };
        wait_for_port(SocketAddr::from(([127, 0, 0, 1], port)));
        server
    }

    fn args(port: u16, store: &Path) -> Vec<String> {
        vec![
            "-a".to_owned(),
            "127.0.0.1".to_owned(),
            "-p".to_owned(),
            port.to_string(),
            "-js".to_owned(),
            "-sd".to_owned(),
            store.display().to_string(),
        ]
    }

    /// Kills the server (clients see an outage); [`NatsServer::restart`] brings it back.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port with the same store, and waits until it accepts
    /// connections.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn_nats_server(&Self::args(self.port, self._store.path()));
        wait_for_port(SocketAddr::from(([127, 0, 0, 1], self.port)));
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to 10 s for a TCP listener.
pub fn wait_for_port(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the real `crest serve` binary (no demo data) on `port` with `data_dir`, waits until it
/// listens, and returns the process (kill it to crash the node).
pub fn serve_process(data_dir: &Path, port: u16) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_crest"))
        .args([
            "serve",
            "--no-demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir)
        .env("CREST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("crest serve starts");
    wait_for_port(SocketAddr::from(([127, 0, 0, 1], port)));
    child
}

/// A node config for tests: loopback port 0, the given data dir, the echo brain's pool.
pub fn config(data_dir: &Path) -> ServeConfig {
    ServeConfig {
        data_dir: data_dir.to_owned(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        node: NodeConfig {
            entities: EntitySettings::default(),
            brain_threads: 1,
            ..NodeConfig::default()
        },
        ..ServeConfig::default()
    }
}

/// Starts a node with the deterministic echo brain.
pub async fn start(config: ServeConfig) -> RunningServer {
    server::start(config, Arc::new(EchoBrain))
        .await
        .expect("node starts")
}

/// A small JSON HTTP client bound to one node.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

/// Status and JSON body of an answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
    pub retry_after: Option<String>,
}

impl Answer {
    /// The `conversation_id` of a message acknowledgement.
    pub fn conversation_id(&self) -> String {
        self.body["conversation_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no conversation_id in {:?}", self.body))
            .to_owned()
    }
}

impl Client {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{addr}"),
        }
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> Answer {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent");
        Self::answer(response).await
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> Answer {
        self.post_raw(path, &body.to_string()).await
    }

    pub async fn put(&self, path: &str, body: &serde_json::Value) -> Answer {
        let response = self
            .http
            .put(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("request sent");
        Self::answer(response).await
    }

    pub async fn patch(&self, path: &str, body: &serde_json::Value) -> Answer {
        let response = self
            .http
            .patch(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("request sent");
        Self::answer(response).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request sent");
        Self::answer(response).await
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Answer {
            status,
            body,
            retry_after,
        }
    }

    /// Posts a customer message.
    pub async fn message(&self, tenant: &str, customer: &str, id: &str, text: &str) -> Answer {
        let body =
            serde_json::json!({"channel": "web", "customer": customer, "id": id, "text": text});
        self.post(&format!("/v1/tenants/{tenant}/messages"), &body)
            .await
    }

    /// Polls a conversation until `done` holds (up to 10 s).
    pub async fn conversation_until(
        &self,
        tenant: &str,
        id: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.conversation_within(tenant, id, Duration::from_secs(10), done)
            .await
    }

    /// Polls a conversation until `done` holds, for at most `patience`.
    pub async fn conversation_within(
        &self,
        tenant: &str,
        id: &str,
        patience: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + patience;
        loop {
            let answer = self
                .get(&format!("/v1/tenants/{tenant}/conversations/{id}"))
                .await;
            if answer.status == 200 && done(&answer.body) {
                return answer.body;
            }
            assert!(
                Instant::now() < deadline,
                "condition not reached: {:?}",
                answer.body
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Roles of a conversation's messages, in order.
pub fn roles(conversation: &serde_json::Value) -> Vec<String> {
    conversation["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|message| message["role"].as_str().expect("role").to_owned())
        .collect()
}
