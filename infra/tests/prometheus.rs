//! The Grafana dashboards (`dashboards/*.json`) and the alerting rules
//! (`infra/deploy/prometheus/rules.yml`) against a real Prometheus scraping a real `crest serve`:
//! `promtool check rules` passes, a scripted scenario (bot chats in Chinese and English, a SKU
//! question, an angry complaint handed to after-sales, two agents, an offer accepted after a wait,
//! a reply, a transfer, a resolve, a CSAT rating, tickets solved within and past their SLA) runs
//! over the HTTP API, and then every dashboard query evaluates without error and returns data, and
//! every alerting rule evaluates without error.
//!
//! Skipped (with a line saying so) when no `prometheus` binary is installed; `scripts/setup.sh`
//! installs Debian's `prometheus` package, which brings `promtool` too.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::{Client, free_port};

/// How long any wait may take: generous, for a loaded 2-core machine (debug build, the brain
/// training its model at start-up next to other tests).
const PATIENCE: Duration = Duration::from_secs(60);
/// Scrape and rule evaluation interval of the test's Prometheus.
const SCRAPE_INTERVAL_S: u64 = 1;
/// What Grafana's variables are replaced with before a query goes to Prometheus.
const VARIABLES: &[(&str, &str)] = &[
    ("tenant", ".*"),
    ("group", ".*"),
    ("__rate_interval", "1m"),
    ("__interval", "15s"),
    ("__range", "5m"),
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn rules_file() -> PathBuf {
    repo_root().join("infra/deploy/prometheus/rules.yml")
}

/// `name` from PATH, else `/usr/bin/name`.
fn find_binary(name: &str) -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    from_path.or_else(|| {
        let fallback = Path::new("/usr/bin").join(name);
        fallback.is_file().then_some(fallback)
    })
}

/// Waits until something listens on `addr`.
fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + PATIENCE;
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed and reaped on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `crest serve --no-demo` on a free loopback port, ready to serve.
async fn start_crest(data_dir: &Path) -> (Reaped, SocketAddr) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_crest"))
        .args([
            "serve",
            "--no-demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env("CREST_LOG", "warn")
        .env("CREST_OPERATOR_TOKEN", support::OPERATOR_TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("crest serve starts");
    let child = Reaped(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_listening(addr);
    let client = Client::new(addr);
    let deadline = Instant::now() + PATIENCE;
    while client.get("/readyz").await.status != 200 {
        assert!(Instant::now() < deadline, "crest never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, addr)
}

/// Prometheus scraping `targets` every second and evaluating the repository's rules.
fn start_prometheus(binary: &Path, dir: &Path, targets: &[SocketAddr]) -> (Reaped, SocketAddr) {
    let targets = targets
        .iter()
        .map(|target| format!("\"{target}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let config = format!(
        "global:\n  scrape_interval: {SCRAPE_INTERVAL_S}s\n  evaluation_interval: {SCRAPE_INTERVAL_S}s\n\
         rule_files:\n  - {rules:?}\n\
         scrape_configs:\n  - job_name: crest\n    static_configs:\n      - targets: [{targets}]\n",
        rules = rules_file().display().to_string(),
    );
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config).expect("config written");
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("prometheus starts");
    let child = Reaped(child);
    wait_listening(addr);
    (child, addr)
}

/// The Prometheus HTTP API.
struct Prometheus {
    http: reqwest::Client,
    base: String,
}

impl Prometheus {
    /// `GET /api/v1/query`: the answer's JSON whatever its status.
    async fn query(&self, expr: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", expr)])
            .send()
            .await
            .expect("prometheus answers");
        let text = response.text().await.expect("body");
        serde_json::from_str(&text).unwrap_or_else(|_| json!({"status": "error", "error": text}))
    }

    /// The instant vector of `expr` (empty on errors).
    async fn vector(&self, expr: &str) -> Vec<Value> {
        self.query(expr).await["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("prometheus answers");
        response.json().await.expect("json")
    }
}

/// Replaces Grafana's `$name` and `${name}` variables; panics on one the test does not know.
fn substitute(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let braced = after.starts_with('{');
        let name_start = usize::from(braced);
        let name_len = after[name_start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len() - name_start);
        let name = &after[name_start..name_start + name_len];
        let mut consumed = name_start + name_len;
        if braced {
            assert!(
                after[consumed..].starts_with('}'),
                "unsupported variable syntax in {expr}"
            );
            consumed += 1;
        }
        let value = VARIABLES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, value)| *value)
            .unwrap_or_else(|| panic!("unknown variable ${name} in {expr}"));
        out.push_str(value);
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

/// A dashboard query: where it is and its PromQL.
struct Query {
    place: String,
    expr: String,
}

/// Every `targets[].expr` of every panel (rows' nested panels included), checking on the way that
/// each panel sets a unit.
fn collect_panels(
    file: &str,
    panels: &[Value],
    queries: &mut Vec<Query>,
    problems: &mut Vec<String>,
) {
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("?");
        if let Some(nested) = panel["panels"].as_array() {
            collect_panels(file, nested, queries, problems);
        }
        if panel["type"] == "row" {
            continue;
        }
        if panel["fieldConfig"]["defaults"]["unit"]
            .as_str()
            .is_none_or(str::is_empty)
        {
            problems.push(format!("{file} / {title}: no unit"));
        }
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("{file} / {title}: no query"));
        }
        for target in targets {
            match target["expr"].as_str() {
                Some(expr) if !expr.trim().is_empty() => queries.push(Query {
                    place: format!(
                        "{file} / {title} / {}",
                        target["refId"].as_str().unwrap_or("?")
                    ),
                    expr: expr.to_owned(),
                }),
                _ => problems.push(format!("{file} / {title}: a target without expr")),
            }
        }
    }
}

/// The dashboard of cluster mode: its panels need cluster nodes (checked by
/// [`cluster_dashboard_evaluates_against_cluster_nodes`]).
const CLUSTER_DASHBOARD: &str = "cluster.json";

/// The queries of the dashboards `wanted` selects (by file name); panics listing structural
/// problems (schema, variables, units) of any dashboard.
fn dashboard_queries(wanted: impl Fn(&str) -> bool) -> Vec<Query> {
    let dir = repo_root().join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("dashboards/")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|path| {
            path.file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for expected in [
        "operations-overview.json",
        "bot-quality.json",
        "system.json",
        "voice-of-customer.json",
        CLUSTER_DASHBOARD,
    ] {
        assert!(
            names.iter().any(|name| name == expected),
            "dashboards/{expected} missing"
        );
    }
    let mut queries = Vec::new();
    let mut problems = Vec::new();
    for (path, name) in files.iter().zip(&names) {
        let text = std::fs::read_to_string(path).expect("dashboard readable");
        let dashboard: Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{name} is not JSON: {error}"));
        if dashboard["schemaVersion"].as_u64().is_none_or(|v| v < 39) {
            problems.push(format!("{name}: schemaVersion below 39"));
        }
        let variables = dashboard["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let uses_tenant = text.contains("$tenant");
        let tenant = variables.iter().find(|v| v["name"] == "tenant");
        if uses_tenant
            && tenant.is_none_or(|v| {
                !v["definition"].as_str().is_some_and(|d| {
                    d.contains("label_values(crest_conversations_started_total, tenant)")
                })
            })
        {
            problems.push(format!(
                "{name}: no tenant variable over crest_conversations_started_total"
            ));
        }
        let uses_group = text.contains("$group");
        let group = variables.iter().find(|v| v["name"] == "group");
        if uses_group
            && group.is_none_or(|v| {
                !v["definition"]
                    .as_str()
                    .is_some_and(|d| d.contains("crest_queue_depth"))
            })
        {
            problems.push(format!(
                "{name}: uses $group without a group variable over crest_queue_depth"
            ));
        }
        let mut found = Vec::new();
        collect_panels(
            name,
            dashboard["panels"].as_array().map_or(&[], Vec::as_slice),
            &mut found,
            &mut problems,
        );
        if wanted(name) {
            queries.extend(found);
        }
    }
    assert!(
        problems.is_empty(),
        "dashboard problems:\n{}",
        problems.join("\n")
    );
    queries
}

/// `{labels} value` of each sample of a query answer, for the test's output.
fn summary(answer: &Value) -> String {
    let Some(samples) = answer["data"]["result"].as_array() else {
        return format!("error {}", answer["error"]);
    };
    if samples.is_empty() {
        return "(empty)".to_owned();
    }
    samples
        .iter()
        .map(|sample| {
            let labels: Vec<String> = sample["metric"]
                .as_object()
                .map(|labels| {
                    labels
                        .iter()
                        .map(|(name, value)| format!("{name}={}", value.as_str().unwrap_or("?")))
                        .collect()
                })
                .unwrap_or_default();
            let value = sample["value"][1].as_str().unwrap_or("?");
            if labels.is_empty() {
                value.to_owned()
            } else {
                format!("{{{}}} {value}", labels.join(","))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Waits until Prometheus scraped the node twice after now and sees its business metrics (up to
/// 10 s for those: until the projections exist their panels are reported empty).
async fn wait_for_scrapes(prometheus: &Prometheus, crest: SocketAddr) {
    let now = unix_now();
    let started = Instant::now();
    loop {
        let scraped = prometheus
            .vector(r#"timestamp(up{job="crest"} == 1)"#)
            .await
            .first()
            .and_then(|sample| sample["value"][1].as_str()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        let business = !prometheus
            .vector("crest_conversations_started_total")
            .await
            .is_empty();
        #[allow(clippy::cast_precision_loss)]
        let scrapes_after = (scraped - now) / SCRAPE_INTERVAL_S as f64;
        if scrapes_after >= 2.0 && (business || started.elapsed() > Duration::from_secs(10)) {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "prometheus never scraped crest at {crest}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

const T: &str = "/v1/tenants/shop";

async fn ok(answer: support::Answer, what: &str) -> Value {
    assert!(
        (200..300).contains(&answer.status),
        "{what}: {} {:?}",
        answer.status,
        answer.body
    );
    answer.body
}

/// Polls `done` every 50 ms.
async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done().await {
        assert!(Instant::now() < deadline, "not reached: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn conversation_until(
    client: &Client,
    tenant: &str,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    client.conversation_within(tenant, id, PATIENCE, done).await
}

/// The scenario every dashboard panel needs data from; `round` keeps customers apart when it runs
/// again.
async fn scenario(client: &Client, round: u32) {
    // Customers chatting with the bot, in Chinese and English, in two tenants.
    let chats = [
        (
            "shop",
            "c-zh-1",
            "你好，我想查一下订单 2026111100003 的物流",
        ),
        ("shop", "c-zh-2", "SKU1003 的耳机有货吗"),
        ("shop", "c-zh-3", "双十一有什么优惠活动？"),
        (
            "shop",
            "c-en-1",
            "Hi, where is my parcel? Order 2026111100001",
        ),
        ("shop", "c-en-2", "Can I pay with a credit card?"),
        (
            "shop",
            "c-en-3",
            "what is the meaning of life, the universe and everything",
        ),
        ("acme", "c-en-4", "Is SKU2001 available in blue?"),
    ];
    let mut conversations = Vec::new();
    for (tenant, customer, text) in chats {
        let id = client
            .message(tenant, &format!("{customer}-{round}"), "m1", text)
            .await
            .conversation_id();
        conversations.push((tenant, id));
    }
    for (tenant, id) in &conversations {
        conversation_until(client, tenant, id, |c| {
            support::roles(c).iter().any(|role| role == "bot")
        })
        .await;
    }
    // A bot conversation resolved at the first contact.
    let (_, contained) = &conversations[0];
    ok(
        client
            .post(
                &format!("{T}/conversations/{contained}/resolve"),
                &json!({}),
            )
            .await,
        "bot resolve",
    )
    .await;

    // After-sales: alice online, bob offline; an angry complaint handed off is offered to alice
    // and waits a moment before she accepts it.
    ok(
        client
            .put(
                &format!("{T}/queues/after_sales"),
                &json!({"offer_timeout_s": 60}),
            )
            .await,
        "queue settings",
    )
    .await;
    ok(
        client
            .put(
                &format!("{T}/agents/alice"),
                &json!({"status": "online", "groups": ["after_sales"], "capacity": 2, "languages": ["zh", "en"]}),
            )
            .await,
        "alice online",
    )
    .await;
    ok(
        client
            .put(&format!("{T}/agents/bob"), &json!({"status": "offline"}))
            .await,
        "bob offline",
    )
    .await;
    let angry_customer = format!("c-angry-{round}");
    let angry = client
        .message("shop", &angry_customer, "m1", "你们这是骗人！我要投诉！")
        .await
        .conversation_id();
    conversation_until(client, "shop", &angry, |c| {
        support::roles(c)
            .iter()
            .any(|role| role == "bot" || role == "system")
    })
    .await;
    let handoff = client
        .post(
            &format!("{T}/conversations/{angry}/handoff"),
            &json!({"reason": "customer_request", "group": "after_sales"}),
        )
        .await;
    ok(handoff, "handoff").await;
    until("the complaint is offered to alice", async || {
        let alice = client.get(&format!("{T}/agents/alice")).await.body;
        alice["offers"]
            .as_array()
            .is_some_and(|offers| offers.iter().any(|id| id == angry.as_str()))
    })
    .await;
    // Waiting: at least one scrape sees the queue depth.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ok(
        client
            .put(
                &format!("{T}/agents/bob"),
                &json!({"status": "online", "groups": ["after_sales"], "capacity": 2, "languages": ["zh", "en"]}),
            )
            .await,
        "bob online",
    )
    .await;
    ok(
        client
            .post(
                &format!("{T}/agents/alice/offers/{angry}/accept"),
                &json!({}),
            )
            .await,
        "alice accepts",
    )
    .await;
    ok(
        client
            .post(
                &format!("{T}/conversations/{angry}/agent-messages"),
                &json!({"agent": "alice", "id": "a-1", "text": "非常抱歉给您带来不便，我来帮您处理。"}),
            )
            .await,
        "alice replies",
    )
    .await;
    ok(
        client
            .post(
                &format!("{T}/conversations/{angry}/transfer"),
                &json!({"agent": "bob"}),
            )
            .await,
        "transfer to bob",
    )
    .await;
    conversation_until(client, "shop", &angry, |c| c["agent"] == "bob").await;
    ok(
        client
            .post(
                &format!("{T}/conversations/{angry}/agent-messages"),
                &json!({"agent": "bob", "id": "b-1", "text": "已为您登记投诉并安排退款。"}),
            )
            .await,
        "bob replies",
    )
    .await;
    ok(
        client
            .post(
                &format!("{T}/conversations/{angry}/resolve"),
                &json!({"agent": "bob"}),
            )
            .await,
        "bob resolves",
    )
    .await;
    ok(
        client
            .post(
                &format!("{T}/conversations/{angry}/csat"),
                &json!({"score": 5, "comment": "谢谢"}),
            )
            .await,
        "csat",
    )
    .await;

    // Tickets: one solved within its SLA, a complaint whose 1 s first-response SLA breaches.
    let quick = ok(
        client
            .post(
                &format!("{T}/tickets"),
                &json!({"kind": "refund", "subject": "refund for order 2026111100003", "customer": format!("c-zh-1-{round}")}),
            )
            .await,
        "ticket",
    )
    .await;
    let late = ok(
        client
            .post(
                &format!("{T}/tickets"),
                &json!({"kind": "complaint", "subject": "misleading promotion", "customer": angry_customer,
                        "conversation": angry, "sla": {"first_response_s": 1}}),
            )
            .await,
        "ticket with a 1 s SLA",
    )
    .await;
    let quick = quick["id"].as_str().expect("ticket id").to_owned();
    let late = late["id"].as_str().expect("ticket id").to_owned();
    ok(
        client
            .patch(
                &format!("{T}/tickets/{quick}"),
                &json!({"status": "solved", "assignee": "alice"}),
            )
            .await,
        "quick ticket solved",
    )
    .await;
    until("first-response SLA breached", async || {
        let view = client.get(&format!("{T}/tickets/{late}")).await.body;
        view["breached"]
            .as_array()
            .is_some_and(|breached| breached.iter().any(|sla| sla == "first_response"))
    })
    .await;
    ok(
        client
            .patch(
                &format!("{T}/tickets/{late}"),
                &json!({"status": "solved", "assignee": "bob"}),
            )
            .await,
        "late ticket solved",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alert_rules_evaluate_against_a_live_node() {
    let Some(prometheus_binary) = find_binary("prometheus") else {
        println!("skipped: prometheus not installed (scripts/setup.sh installs it)");
        return;
    };
    let started = Instant::now();

    // (a) promtool accepts the rules.
    let promtool = find_binary("promtool").expect("promtool next to prometheus");
    let checked = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(rules_file())
        .output()
        .expect("promtool runs");
    assert!(
        checked.status.success(),
        "promtool check rules failed:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let queries = dashboard_queries(|name| name != CLUSTER_DASHBOARD);

    // (b) a node, a Prometheus scraping it, the scenario.
    let data = tempfile::tempdir().expect("temp dir");
    let prometheus_dir = tempfile::tempdir().expect("temp dir");
    let (_crest, crest_addr) = start_crest(data.path()).await;
    let (_prometheus, prometheus_addr) =
        start_prometheus(&prometheus_binary, prometheus_dir.path(), &[crest_addr]);
    let prometheus = Prometheus {
        http: reqwest::Client::new(),
        base: format!("http://{prometheus_addr}"),
    };
    let client = Client::new(crest_addr);
    // Twice: a counter's first sample already holds its first increments, so `rate` and
    // `increase` only see what happens once Prometheus knows the series; the second round makes
    // the panels show non-zero figures, as on a node that has been running for a while.
    scenario(&client, 1).await;
    wait_for_scrapes(&prometheus, crest_addr).await;
    scenario(&client, 2).await;
    wait_for_scrapes(&prometheus, crest_addr).await;

    // Every dashboard query evaluates and returns data.
    let mut failures = evaluate(&prometheus, &queries).await;

    // Every alerting rule Prometheus loaded evaluates (alerts may well be empty).
    let rules = prometheus.get("/api/v1/rules").await;
    let mut rule_count = 0;
    for group in rules["data"]["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        for rule in group["rules"].as_array().cloned().unwrap_or_default() {
            rule_count += 1;
            let name = rule["name"].as_str().unwrap_or("?");
            let expr = rule["query"].as_str().unwrap_or_default();
            let answer = prometheus.query(expr).await;
            if answer["status"] != "success" {
                failures.push(format!(
                    "rule {name}: error {}\n    {expr}",
                    answer["error"]
                ));
            }
            if rule["health"] == "err" {
                failures.push(format!("rule {name}: {}", rule["lastError"]));
            }
        }
    }
    assert!(
        rule_count >= 6,
        "prometheus loaded {rule_count} rules from {}: {rules}",
        rules_file().display()
    );
    println!(
        "{} dashboard queries and {rule_count} rules evaluated in {:.1} s",
        queries.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} dashboard queries / rules failed:\n{}",
        failures.len(),
        queries.len() + rule_count,
        failures.join("\n")
    );
}

/// Evaluates every query: one line per query that fails or returns no data.
async fn evaluate(prometheus: &Prometheus, queries: &[Query]) -> Vec<String> {
    let mut failures = Vec::new();
    for query in queries {
        let expr = substitute(&query.expr);
        let answer = prometheus.query(&expr).await;
        println!("{} = {}", query.place, summary(&answer));
        if answer["status"] != "success" {
            failures.push(format!(
                "{}: error {}\n    {}",
                query.place,
                answer["error"],
                expr.replace('\n', " ")
            ));
        } else if answer["data"]["result"]
            .as_array()
            .is_none_or(Vec::is_empty)
        {
            failures.push(format!(
                "{}: empty\n    {}",
                query.place,
                expr.replace('\n', " ")
            ));
        }
    }
    failures
}

/// `crest serve --cluster-node name` on a free loopback port, journaling to JetStream on `nats`.
fn start_cluster_node(nats: &str, name: &str, data_dir: &Path) -> (Reaped, SocketAddr) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_crest"))
        .args([
            "serve",
            "--no-demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--nats",
            nats,
            "--journal",
            "jetstream",
            "--cluster-node",
            name,
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env("CREST_LOG", "warn")
        .env("CREST_OPERATOR_TOKEN", support::OPERATOR_TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("crest serve starts");
    let child = Reaped(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_listening(addr);
    (child, addr)
}

/// The cluster dashboard against two `crest serve` cluster nodes on one NATS server (JetStream
/// journal), both scraped by a real Prometheus: customers write through both nodes, then every
/// query of `dashboards/cluster.json` evaluates and returns data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_dashboard_evaluates_against_cluster_nodes() {
    let Some(prometheus_binary) = find_binary("prometheus") else {
        println!("skipped: prometheus not installed (scripts/setup.sh installs it)");
        return;
    };
    let queries = dashboard_queries(|name| name == CLUSTER_DASHBOARD);
    assert!(queries.len() >= 15, "{} queries", queries.len());
    let nats = support::NatsServer::start();
    let data = tempfile::tempdir().expect("temp dir");
    let prometheus_dir = tempfile::tempdir().expect("temp dir");
    let nodes = [
        start_cluster_node(&nats.url(), "one", &data.path().join("one")),
        start_cluster_node(&nats.url(), "two", &data.path().join("two")),
    ];
    let addrs: Vec<SocketAddr> = nodes.iter().map(|(_, addr)| *addr).collect();
    let clients: Vec<Client> = addrs.iter().map(|addr| Client::new(*addr)).collect();
    for client in &clients {
        until(
            "cluster node ready (member, every shard owned)",
            async || client.get("/readyz").await.status == 200,
        )
        .await;
    }
    let (_prometheus, prometheus_addr) =
        start_prometheus(&prometheus_binary, prometheus_dir.path(), &addrs);
    let prometheus = Prometheus {
        http: reqwest::Client::new(),
        base: format!("http://{prometheus_addr}"),
    };
    // Twice, so that `rate` and `increase` see traffic after Prometheus knows the series.
    for round in 0..2 {
        let scraped_after = unix_now() + 2.0 * Duration::from_secs(SCRAPE_INTERVAL_S).as_secs_f64();
        for customer in 0..20 {
            let client = &clients[customer % clients.len()];
            let answer = client
                .message(
                    "shop",
                    &format!("c{customer}"),
                    &format!("m{round}"),
                    "where is my parcel?",
                )
                .await;
            assert_eq!(answer.status, 200, "{:?}", answer.body);
        }
        until("both nodes scraped twice since", async || {
            let scraped = prometheus
                .vector(r#"timestamp(up{job="crest"} == 1)"#)
                .await
                .iter()
                .filter_map(|sample| sample["value"][1].as_str()?.parse::<f64>().ok())
                .filter(|at| *at >= scraped_after)
                .count();
            scraped == addrs.len()
        })
        .await;
    }
    let failures = evaluate(&prometheus, &queries).await;
    assert!(
        failures.is_empty(),
        "{} of {} cluster dashboard queries failed:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );
    // The figures mean what the panels say.
    let owned = prometheus.vector("sum(crest_cluster_shards_owned)").await;
    assert_eq!(owned[0]["value"][1], "256", "{owned:?}");
    let coordinators = prometheus.vector("sum(crest_cluster_coordinator)").await;
    assert_eq!(coordinators[0]["value"][1], "1", "{coordinators:?}");
    let members = prometheus.vector("max(crest_cluster_members)").await;
    assert_eq!(members[0]["value"][1], "2", "{members:?}");
}

#[test]
fn grafana_variables_are_substituted() {
    assert_eq!(
        substitute(
            r#"sum(rate(x{tenant=~"$tenant",group=~"${group}"}[$__rate_interval])) + increase(y[$__range]) + z[$__interval]"#
        ),
        r#"sum(rate(x{tenant=~".*",group=~".*"}[1m])) + increase(y[5m]) + z[15s]"#
    );
}
