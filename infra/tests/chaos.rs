//! Chaos under load on a real cluster started by `scripts/cluster.sh` (3 nats-server processes
//! in one JetStream cluster, `crest serve` nodes on the shared JetStream journal): a node killed
//! with SIGKILL, a NATS server killed and restarted, every node restarted in turn, a node joining.
//! Virtual customers keep chatting through whichever node answers (the same message id on a
//! retry); at the end every acknowledged message is in its conversation exactly once and in the
//! order the customer sent it.
//!
//! Bounded: a handful of customers at a modest rate for some seconds per scenario.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const CUSTOMERS: usize = 12;
/// Pause between one customer's messages.
const THINK: Duration = Duration::from_millis(150);
/// How long one message is tried over the nodes before the test gives up on it.
const RETRY_FOR: Duration = Duration::from_secs(40);

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/cluster.sh")
}

/// A cluster under a temporary directory, stopped on drop.
struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start(nodes: usize) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let cluster = Self { dir };
        cluster.run(&[
            "start",
            &cluster.path(),
            "--nodes",
            &nodes.to_string(),
            "--",
            // Each virtual customer sends several messages a second, far above a person's rate.
            "--customer-messages-per-min",
            "100000",
            "--customer-message-burst",
            "10000",
        ]);
        cluster
    }

    fn path(&self) -> String {
        self.dir.path().display().to_string()
    }

    fn run(&self, args: &[&str]) {
        let output = Command::new("bash")
            .arg(script())
            .args(args)
            .env("CREST_BIN", env!("CARGO_BIN_EXE_crest"))
            .env("NATS_SERVER", support::nats_server_binary())
            .env("CREST_LOG", "warn,crest_infra::cluster=info")
            .env("CREST_OPERATOR_TOKEN", support::OPERATOR_TOKEN)
            .output()
            .expect("cluster.sh runs");
        assert!(
            output.status.success(),
            "cluster.sh {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.logs()
        );
    }

    /// Copies every node's and NATS server's log out of the temporary directory (which is removed
    /// on drop); the copy's path.
    fn keep_logs(&self) -> String {
        let kept = std::env::temp_dir().join(format!(
            "crest-chaos-logs-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_millis())
        ));
        for entry in std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let log = entry.path().join("log");
            if log.exists() {
                let _ = std::fs::create_dir_all(&kept);
                let _ = std::fs::copy(&log, kept.join(entry.file_name()));
            }
        }
        kept.display().to_string()
    }

    /// The tail of every node's log (for a failure's message).
    fn logs(&self) -> String {
        let mut logs = String::new();
        for entry in std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let log = entry.path().join("log");
            if let Ok(text) = std::fs::read_to_string(&log) {
                let tail: Vec<&str> = text.lines().rev().take(60).collect();
                logs.push_str(&format!("--- {}\n", log.display()));
                for line in tail.into_iter().rev() {
                    logs.push_str(line);
                    logs.push('\n');
                }
            }
        }
        logs
    }

    fn json(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.path().join("cluster.json")).expect("json");
        serde_json::from_str(&text).expect("cluster.json parses")
    }

    fn urls(&self) -> Vec<String> {
        self.json()["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|node| node["url"].as_str().expect("url").to_owned())
            .collect()
    }

    fn pid(&self, section: &str, name: &str) -> i32 {
        let json = self.json();
        let entry = json[section]
            .as_array()
            .expect("section")
            .iter()
            .enumerate()
            .find(|(index, entry)| entry["name"] == name || format!("nats-{}", index + 1) == name)
            .map(|(_, entry)| entry.clone())
            .expect("entry");
        i32::try_from(entry["pid"].as_i64().expect("pid")).expect("pid fits")
    }

    fn signal(&self, section: &str, name: &str, signal: &str) {
        let pid = self.pid(section, name);
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {name}");
        // Wait until it is gone.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            if std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| stat.split_whitespace().nth(2) == Some("Z"))
            {
                break;
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["stop", &self.path()])
            .output();
    }
}

/// One acknowledged message.
#[derive(Debug, Clone)]
struct Acked {
    customer: usize,
    number: u64,
    conversation: String,
}

/// Customers chatting through the nodes until stopped.
struct Load {
    urls: Vec<String>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Acked>>>,
}

impl Load {
    fn start(urls: Vec<String>, run: &str, key: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let http = reqwest::Client::builder()
            .default_headers(bearer(key))
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(1))
            .build()
            .expect("client");
        let kept = urls.clone();
        let urls = Arc::new(urls);
        let tasks = (0..CUSTOMERS)
            .map(|customer| {
                let stop = Arc::clone(&stop);
                let http = http.clone();
                let urls = Arc::clone(&urls);
                let run = run.to_owned();
                tokio::spawn(async move {
                    let mut acked = Vec::new();
                    let mut number = 0_u64;
                    while !stop.load(Ordering::Relaxed) {
                        number += 1;
                        let body = json!({
                            "customer": format!("{run}-c{customer}"),
                            "channel": "web",
                            "id": format!("{run}-c{customer}-m{number}"),
                            "text": format!("订单 {number} 到哪了? where is order {number}?"),
                        });
                        let answer = send(&http, &urls, customer, "/v1/tenants/chaos/messages", &body)
                            .await
                            .unwrap_or_else(|error| {
                                panic!("message {number} of customer {customer} never acknowledged: {error}")
                            });
                        acked.push(Acked {
                            customer,
                            number,
                            conversation: answer["conversation_id"]
                                .as_str()
                                .expect("conversation id")
                                .to_owned(),
                        });
                        tokio::time::sleep(THINK).await;
                    }
                    acked
                })
            })
            .collect();
        Self {
            urls: kept,
            stop,
            tasks,
        }
    }

    /// Stops the customers; a customer whose message was never acknowledged fails the test with
    /// the tail of every node's and NATS server's log.
    async fn finish(self, cluster: &Cluster) -> Vec<Acked> {
        self.stop.store(true, Ordering::Relaxed);
        let mut acked = Vec::new();
        for task in self.tasks {
            match task.await {
                Ok(customer) => acked.extend(customer),
                Err(error) => {
                    let views = cluster_views(&self.urls).await;
                    let kept = cluster.keep_logs();
                    panic!(
                        "a customer failed: {error}\n{views}\nlogs kept in {kept}\n{}",
                        cluster.logs()
                    )
                }
            }
        }
        acked
    }
}

/// What every node answers on `GET /v1/cluster` (for a failure's message).
async fn cluster_views(urls: &[String]) -> String {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("client");
    let mut views = String::new();
    for url in urls {
        let view = match http
            .get(format!("{url}/v1/cluster"))
            .bearer_auth(support::OPERATOR_TOKEN)
            .send()
            .await
        {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(error) => error.to_string(),
        };
        views.push_str(&format!("{url}: {view}\n"));
    }
    views
}

/// Posts `body` to node `home`, or to the next ones when a node does not answer or answers 5xx,
/// until acknowledged or [`RETRY_FOR`] has passed.
async fn send(
    http: &reqwest::Client,
    urls: &[String],
    home: usize,
    path: &str,
    body: &Value,
) -> Result<Value, String> {
    let deadline = Instant::now() + RETRY_FOR;
    let mut attempt = 0;
    loop {
        let url = &urls[(home + attempt) % urls.len()];
        attempt += 1;
        let error = match http.post(format!("{url}{path}")).json(body).send().await {
            Ok(response) if response.status().is_success() => {
                return response.json().await.map_err(|error| error.to_string());
            }
            Ok(response) if response.status().is_server_error() => {
                format!("{url}: {}", response.status())
            }
            Ok(response) => {
                let status = response.status();
                return Err(format!(
                    "{url}: {status} {}",
                    response.text().await.unwrap_or_default()
                ));
            }
            Err(error) => format!("{url}: {error}"),
        };
        if Instant::now() >= deadline {
            return Err(error);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads every conversation of `acked` through the live nodes and checks each acknowledged message
/// is stored exactly once, in the order its customer sent it.
async fn verify(urls: &[String], acked: &[Acked], run: &str, key: &str) {
    assert!(
        acked.len() > 50,
        "too few messages acknowledged: {}",
        acked.len()
    );
    let http = reqwest::Client::builder()
        .default_headers(bearer(key))
        .build()
        .expect("client");
    let mut conversations: BTreeMap<String, Vec<&Acked>> = BTreeMap::new();
    for ack in acked {
        conversations
            .entry(ack.conversation.clone())
            .or_default()
            .push(ack);
    }
    for (conversation, acks) in conversations {
        let customer = acks[0].customer;
        let path =
            format!("/v1/tenants/chaos/conversations/{conversation}/events?after=0&limit=10000");
        let mut page = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        'read: while Instant::now() < deadline {
            for url in urls {
                if let Ok(response) = http.get(format!("{url}{path}")).send().await
                    && response.status().is_success()
                {
                    page = response.json::<Value>().await.ok();
                    break 'read;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let page = page.unwrap_or_else(|| panic!("conversation {conversation} unreadable"));
        let prefix = format!("{run}-c{customer}-m");
        let stored: Vec<u64> = page["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|event| event["type"] == "conversation.customer_message_received")
            .filter_map(|event| event["data"]["channel_message_id"].as_str())
            .filter_map(|id| id.strip_prefix(&prefix))
            .map(|number| number.parse().expect("message number"))
            .collect();
        let mut counts: HashMap<u64, usize> = HashMap::new();
        for number in &stored {
            *counts.entry(*number).or_default() += 1;
        }
        for ack in &acks {
            assert_eq!(
                counts.get(&ack.number).copied().unwrap_or(0),
                1,
                "message {} of customer {customer} in {conversation}: stored {:?}",
                ack.number,
                stored
            );
        }
        assert!(
            stored.windows(2).all(|pair| pair[0] < pair[1]),
            "out of order in {conversation}: {stored:?}"
        );
    }
}

/// `Authorization: Bearer <key>` as default headers.
fn bearer(key: &str) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse().expect("header value"),
    );
    headers
}

/// An admin key of the `chaos` tenant, issued with the operator token.
async fn admin_key(url: &str) -> String {
    support::issue_key(&reqwest::Client::new(), url, "chaos", "admin", None).await
}

/// Waits until the node at `url` sees `members` members and every shard owned; returns how long.
async fn settled(url: &str, members: usize) -> Duration {
    let started = Instant::now();
    let http = reqwest::Client::new();
    loop {
        if let Ok(response) = http
            .get(format!("{url}/v1/cluster"))
            .bearer_auth(support::OPERATOR_TOKEN)
            .send()
            .await
            && let Ok(view) = response.json::<Value>().await
            && view["members"].as_array().map(Vec::len) == Some(members)
            && view["shards_owned"] == view["shards_total"]
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{url} did not settle on {members} members"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    tokio::task::spawn_blocking(work)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_nothing_and_its_shards_are_served_again() {
    let cluster = Arc::new(blocking(|| Cluster::start(3)).await.expect("start"));
    let urls = cluster.urls();
    let key = admin_key(&urls[0]).await;
    let load = Load::start(urls.clone(), "kill", &key);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let killed = Arc::clone(&cluster);
    blocking(move || killed.signal("nodes", "crest-2", "-KILL"))
        .await
        .expect("kill");
    let survivors = vec![urls[0].clone(), urls[2].clone()];
    let failover = settled(&survivors[0], 2).await;
    assert!(
        failover < Duration::from_secs(20),
        "failover took {failover:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acked = load.finish(&cluster).await;
    verify(&survivors, &acked, "kill", &key).await;
    // The killed node comes back and takes its share again.
    let back = Arc::clone(&cluster);
    blocking(move || back.run(&["restart-node", &back.path(), "crest-2"]))
        .await
        .expect("restart");
    verify(&urls, &acked, "kill", &key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_killed_and_restarted_under_load_loses_nothing() {
    let cluster = Arc::new(blocking(|| Cluster::start(3)).await.expect("start"));
    let urls = cluster.urls();
    let key = admin_key(&urls[0]).await;
    let load = Load::start(urls.clone(), "nats", &key);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let chaos = Arc::clone(&cluster);
    blocking(move || {
        chaos.signal("nats", "nats-2", "-KILL");
        std::thread::sleep(Duration::from_secs(3));
        chaos.run(&["restart-nats", &chaos.path(), "nats-2"]);
    })
    .await
    .expect("nats restart");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let acked = load.finish(&cluster).await;
    settled(&urls[0], 3).await;
    verify(&urls, &acked, "nats", &key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_node_under_load_loses_nothing() {
    let cluster = Arc::new(blocking(|| Cluster::start(3)).await.expect("start"));
    let urls = cluster.urls();
    let key = admin_key(&urls[0]).await;
    let load = Load::start(urls.clone(), "roll", &key);
    tokio::time::sleep(Duration::from_secs(2)).await;
    for name in ["crest-1", "crest-2", "crest-3"] {
        let chaos = Arc::clone(&cluster);
        blocking(move || {
            chaos.signal("nodes", name, "-TERM");
            chaos.run(&["restart-node", &chaos.path(), name]);
        })
        .await
        .expect("restart");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let acked = load.finish(&cluster).await;
    verify(&urls, &acked, "roll", &key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joining_under_load_gets_shards_and_loses_nothing() {
    let cluster = Arc::new(blocking(|| Cluster::start(2)).await.expect("start"));
    let urls = cluster.urls();
    let key = admin_key(&urls[0]).await;
    let load = Load::start(urls.clone(), "join", &key);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let chaos = Arc::clone(&cluster);
    blocking(move || chaos.run(&["add-node", &chaos.path()]))
        .await
        .expect("join");
    let all = cluster.urls();
    assert_eq!(all.len(), 3);
    // The coordinator gives the newcomer shards in its next rounds (a loaded machine may take
    // a few seconds to run them).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let view: Value = reqwest::Client::new()
            .get(format!("{}/v1/cluster", all[2]))
            .bearer_auth(support::OPERATOR_TOKEN)
            .send()
            .await
            .expect("cluster view")
            .json()
            .await
            .expect("json");
        let joined = view["members"]
            .as_array()
            .expect("members")
            .iter()
            .find(|member| member["name"] == "crest-3")
            .expect("crest-3 is a member")
            .clone();
        if joined["shards"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "crest-3 got no shards: {view}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let acked = load.finish(&cluster).await;
    verify(&all, &acked, "join", &key).await;
}
