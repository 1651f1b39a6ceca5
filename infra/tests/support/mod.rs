//! Test support: real nats-server processes and real Crest nodes on free loopback ports.

#![allow(dead_code)]

pub mod cluster;
pub mod receiver;

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
    serve_process_logging(data_dir, port, "warn", Stdio::inherit())
}

/// [`serve_process`] with the log level `CREST_LOG=level` and the node's stderr sent to `log`.
pub fn serve_process_logging(data_dir: &Path, port: u16, level: &str, log: Stdio) -> Child {
    let child = serve_command(data_dir, port)
        .env("CREST_LOG", level)
        .stderr(log)
        .spawn()
        .expect("crest serve starts");
    wait_for_port(SocketAddr::from(([127, 0, 0, 1], port)));
    child
}

/// The `crest serve` command of [`serve_process`], to add arguments to before spawning it.
pub fn serve_command(data_dir: &Path, port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crest"));
    command
        .args([
            "serve",
            "--no-demo",
            "--customer-messages-per-min",
            "100000",
            "--customer-message-burst",
            "10000",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir)
        .env("CREST_LOG", "warn")
        .env("CREST_OPERATOR_TOKEN", OPERATOR_TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    command
}

/// The master key cluster nodes share (32 bytes of 42): what one node seals (channel secrets,
/// customers' texts) the others open.
pub const CLUSTER_MASTER_KEY: &str = "1:KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

/// `crest serve` as cluster node `name` on `port` (journal in JetStream on `nats`, data under
/// `dir`, the shared master key); killed on drop. Wait for it with [`wait_for_cluster`].
pub fn cluster_node(nats: &str, name: &str, port: u16, dir: &Path) -> KillOnDrop {
    let child = serve_command(dir, port)
        .args([
            "--nats",
            nats,
            "--journal",
            "jetstream",
            "--cluster-node",
            name,
        ])
        .env("CREST_MASTER_KEY", CLUSTER_MASTER_KEY)
        .spawn()
        .expect("crest starts");
    KillOnDrop(child)
}

/// Waits (up to a minute) until every one of `clients` is ready and sees `members` members that
/// own all 256 shards.
pub async fn wait_for_cluster(clients: &[&Client], members: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut formed = true;
        for client in clients {
            let view = client.get("/v1/cluster").await.body;
            let count = view["members"].as_array().map_or(0, Vec::len);
            formed &= view["shards_owned"] == 256
                && count == members
                && client.get_text("/readyz").await.0 == 200;
        }
        if formed {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster of {members} did not form"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A child process killed (and reaped) when dropped, so a failing test leaves no node behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Seats `agent` online in `general`, has `customer` write `text` (message `id`) and a supervisor
/// hand the chat to `agent`; returns the conversation once it is the agent's.
pub async fn chat_of(
    admin: &Client,
    tenant: &str,
    agent: &str,
    customer: &str,
    id: &str,
    text: &str,
) -> String {
    let seat = admin
        .put(
            &format!("/v1/tenants/{tenant}/agents/{agent}"),
            &serde_json::json!({"status": "online", "groups": ["general"], "capacity": 3}),
        )
        .await;
    assert_eq!(seat.status, 200, "{:?}", seat.body);
    let conversation = admin
        .message(tenant, customer, id, text)
        .await
        .conversation_id();
    let taken = admin
        .post(
            &format!("/v1/tenants/{tenant}/conversations/{conversation}/take-over"),
            &serde_json::json!({"supervisor": agent}),
        )
        .await;
    assert_eq!(taken.status, 200, "{:?}", taken.body);
    admin
        .conversation_until(tenant, &conversation, |body| body["agent"] == agent)
        .await;
    conversation
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
        operator_token: Some(
            crest_infra::access::OperatorToken::new(OPERATOR_TOKEN).expect("long enough"),
        ),
        // Tests post many messages per customer at once; the limits have tests of their own.
        limits: TEST_LIMITS,
        ..ServeConfig::default()
    }
}

/// Generous message rates for tests that post many messages per customer quickly.
pub const TEST_LIMITS: crest_infra::http::limits::LimitSettings =
    crest_infra::http::limits::LimitSettings {
        customer_messages_per_min: 100_000,
        customer_burst: 10_000,
        tenant_messages_per_s: 100_000,
        websockets_per_tenant: 5_000,
    };

/// Starts a node with the deterministic echo brain.
pub async fn start(config: ServeConfig) -> RunningServer {
    server::start(config, Arc::new(EchoBrain))
        .await
        .expect("node starts")
}

/// The operator token every test node runs with.
pub const OPERATOR_TOKEN: &str = "test-operator-token-0123456789";

/// How a [`Client`] authenticates.
#[derive(Clone)]
enum Auth {
    /// No credential at all.
    Anonymous,
    /// One fixed bearer token.
    Bearer(String),
    /// An admin key per tenant, issued with the operator token on first use (the operator token
    /// itself for node-wide routes).
    AdminPerTenant(Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>),
}

/// A small JSON HTTP client bound to one node.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Auth,
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

/// The tenant of an API path `/v1/tenants/{tenant}/…`.
fn tenant_of_path(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/tenants/")?.split(['/', '?']).next()
}

/// Issues a key of `role` (optionally bound to `agent`) in `tenant` with the operator token.
pub async fn issue_key(
    http: &reqwest::Client,
    base: &str,
    tenant: &str,
    role: &str,
    agent: Option<&str>,
) -> String {
    let mut body = serde_json::json!({"role": role, "name": format!("test {role}")});
    if let Some(agent) = agent {
        body["agent"] = serde_json::json!(agent);
    }
    let response = http
        .post(format!("{base}/v1/tenants/{tenant}/api-keys"))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let answer: serde_json::Value = response.json().await.expect("json");
    assert_eq!(status, 201, "key not issued: {answer}");
    answer["key"].as_str().expect("key text").to_owned()
}

impl Client {
    /// A client that acts as each tenant's admin (keys issued with the operator token on first
    /// use) and as the operator on node-wide routes.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{addr}"),
            auth: Auth::AdminPerTenant(Arc::default()),
        }
    }

    /// A client without any credential.
    pub fn anonymous(addr: SocketAddr) -> Self {
        Self {
            auth: Auth::Anonymous,
            ..Self::new(addr)
        }
    }

    /// A client that sends one bearer token.
    pub fn with_token(addr: SocketAddr, token: &str) -> Self {
        Self {
            auth: Auth::Bearer(token.to_owned()),
            ..Self::new(addr)
        }
    }

    /// Issues a key of `role` in `tenant` (with the operator token) and returns its text.
    pub async fn issue_key(&self, tenant: &str, role: &str, agent: Option<&str>) -> String {
        issue_key(&self.http, &self.base, tenant, role, agent).await
    }

    /// The bearer token this client sends on `path` (`None`: none).
    pub async fn token_for(&self, path: &str) -> Option<String> {
        match &self.auth {
            Auth::Anonymous => None,
            Auth::Bearer(token) => Some(token.clone()),
            Auth::AdminPerTenant(keys) => {
                let Some(mut tenant) = tenant_of_path(path) else {
                    return Some(OPERATOR_TOKEN.to_owned());
                };
                if crest_proto::TenantId::new(tenant).is_err() {
                    // Any tenant's credential reaches the handler's 400 for a malformed tenant.
                    tenant = "malformed-tenant-probe";
                }
                let known = keys.lock().expect("keys").get(tenant).cloned();
                if let Some(key) = known {
                    return Some(key);
                }
                let key = issue_key(&self.http, &self.base, tenant, "admin", None).await;
                keys.lock()
                    .expect("keys")
                    .entry(tenant.to_owned())
                    .or_insert(key)
                    .clone()
                    .into()
            }
        }
    }

    /// A WebSocket URL for `path` carrying this client's credential as `access_token`.
    pub async fn ws_url(&self, path: &str) -> String {
        let url = format!("{}{path}", self.base.replacen("http://", "ws://", 1));
        match self.token_for(path).await {
            None => url,
            Some(token) => {
                let separator = if path.contains('?') { '&' } else { '?' };
                format!("{url}{separator}access_token={token}")
            }
        }
    }

    async fn send(&self, path: &str, request: reqwest::RequestBuilder) -> Answer {
        let request = match self.token_for(path).await {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        Self::answer(request.send().await.expect("request sent")).await
    }

    /// Sends `method` on `path` with an optional JSON body.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(path, request).await
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> Answer {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        self.send(path, request).await
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> Answer {
        self.post_raw(path, &body.to_string()).await
    }

    pub async fn put(&self, path: &str, body: &serde_json::Value) -> Answer {
        let request = self.http.put(format!("{}{path}", self.base)).json(body);
        self.send(path, request).await
    }

    pub async fn patch(&self, path: &str, body: &serde_json::Value) -> Answer {
        let request = self.http.patch(format!("{}{path}", self.base)).json(body);
        self.send(path, request).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        let request = self.http.delete(format!("{}{path}", self.base));
        self.send(path, request).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(path, request).await
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = self.token_for(path).await {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
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

/// `name{labels}` → value of a Prometheus text exposition.
pub fn samples(text: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The metric family of a series (`_bucket`, `_sum`, `_count` of a histogram dropped).
pub fn family_of(series: &str) -> &str {
    let name = series.split('{').next().unwrap_or(series);
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}
