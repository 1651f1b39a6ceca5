//! The load generator: open-loop arrivals of virtual customers' messages, WebSocket followers
//! measuring the bot's replies, virtual agents taking handed-off chats, and the final read-back
//! that checks every acknowledged message is stored exactly once.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::loss::{self, Acked, Stored};
use crate::profile::{Profile, ProfileError};
use crate::report::{BotReplies, Handoffs, PhaseReport, Report};
use crate::schedule::Schedule;
use crate::scripts::{self, Rng, Script, Turn};
use crate::stats::{ErrorKind, Errors, Latency, Series};

/// What to run against what.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Base URL of the node, e.g. `http://127.0.0.1:8080`, or of several nodes of one cluster
    /// separated by commas: customers are spread over them, and a request a node cannot answer
    /// (down, or 503) goes to the next one with the same idempotency key.
    pub target: String,
    /// The tenant the virtual customers and agents belong to.
    pub tenant: String,
    /// An admin key of `tenant`: virtual customers post with it, and it issues each virtual
    /// agent's own agent key.
    pub api_key: String,
    /// The load profile.
    pub profile: Profile,
    /// Seed of the script choices.
    pub seed: u64,
    /// Prefix of every customer, message and agent id of this run (unique per run).
    pub run_id: String,
    /// Whether to draw the progress bar on stderr.
    pub progress: bool,
}

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The profile is unusable.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Client(#[from] reqwest::Error),
    /// The API key cannot be sent in a header.
    #[error("the API key has characters an HTTP header cannot carry")]
    ApiKey,
    /// The target URL is not `http://…`.
    #[error("target must be http:// URLs separated by commas, got {0:?}")]
    Target(String),
    /// The target did not answer `GET /healthz`.
    #[error("target {target} is not reachable: {reason}")]
    Unreachable {
        /// The target.
        target: String,
        /// What failed.
        reason: String,
    },
}

/// Everything measured, guarded by one mutex (short critical sections only).
#[derive(Debug)]
struct Metrics {
    ack: Latency,
    bot_reply: Latency,
    handoff_to_offer: Latency,
    /// Arrival due → POST started: the generator's own delay (high means it is the bottleneck).
    send_lag: Latency,
    errors: Errors,
    series: Series,
    acked: Vec<Acked>,
    duplicate_acks: u64,
    last_ack: Duration,
    bot: BotReplies,
    handoffs: Handoffs,
    /// conversation → when its handoff message was acknowledged.
    handoff_acked: HashMap<String, Instant>,
    /// conversation → when a virtual agent first saw its offer.
    offer_seen: HashMap<String, Instant>,
}

impl Metrics {
    fn new() -> Self {
        Self {
            ack: Latency::new(3),
            bot_reply: Latency::new(3),
            handoff_to_offer: Latency::new(3),
            send_lag: Latency::new(3),
            errors: Errors::default(),
            series: Series::default(),
            acked: Vec::new(),
            duplicate_acks: 0,
            last_ack: Duration::ZERO,
            bot: BotReplies::default(),
            handoffs: Handoffs::default(),
            handoff_acked: HashMap::new(),
            offer_seen: HashMap::new(),
        }
    }
}

/// One node of the target.
#[derive(Debug)]
struct Target {
    /// `http://host/v1/tenants/{tenant}`
    api: String,
    /// `ws://host/v1/tenants/{tenant}`
    ws_api: String,
    /// Milliseconds since the start of the run before which the node is not tried first (it
    /// failed to answer recently).
    avoid_until_ms: AtomicU64,
}

/// How long a node that did not answer is tried only after the others.
const AVOID_FOR: Duration = Duration::from_secs(2);

/// State shared by every task of a run.
#[derive(Debug)]
struct Shared {
    http: reqwest::Client,
    /// The admin key (WebSockets carry it as `access_token`).
    api_key: String,
    /// The nodes (at least one).
    targets: Vec<Target>,
    /// How long a message is tried, over the nodes, before it counts as failed.
    retry_for: Duration,
    /// Messages acknowledged only after more than one attempt.
    retried: AtomicU64,
    started: Instant,
    request_timeout: Duration,
    metrics: Mutex<Metrics>,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    offered: AtomicU64,
    acked: AtomicU64,
    message_errors: AtomicU64,
    followers: AtomicUsize,
    stop: watch::Sender<bool>,
}

impl Shared {
    fn metrics(&self) -> MutexGuard<'_, Metrics> {
        // A panicking task cannot leave the counters inconsistent enough to matter for a report.
        self.metrics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn since_start(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.started)
    }

    fn message_error(&self, kind: ErrorKind) {
        self.message_errors.fetch_add(1, Ordering::Relaxed);
        let now = self.since_start(Instant::now());
        let mut metrics = self.metrics();
        metrics.errors.add(kind);
        metrics.series.at(now).errors += 1;
    }

    fn other_error(&self, kind: ErrorKind) {
        self.metrics().errors.add(kind);
    }

    /// The nodes to try, `home` first unless it failed recently (then after the others).
    fn nodes_from(&self, home: usize) -> Vec<&Target> {
        let count = self.targets.len();
        let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let order = (0..count).map(|step| &self.targets[(home + step) % count]);
        let (fresh, avoided): (Vec<&Target>, Vec<&Target>) =
            order.partition(|target| target.avoid_until_ms.load(Ordering::Relaxed) <= now_ms);
        fresh.into_iter().chain(avoided).collect()
    }

    /// `GET {api}{path}` on `home`'s node, or the next ones (see [`Self::with_failover`]), with
    /// the run's admin key.
    async fn get(&self, home: usize, path: &str) -> Result<Value, ErrorKind> {
        self.get_as(&self.http, home, path).await
    }

    /// `POST {api}{path}` on `home`'s node, or the next ones, with the run's admin key.
    async fn post(&self, home: usize, path: &str, body: &Value) -> Result<Value, ErrorKind> {
        self.post_as(&self.http, home, path, body).await
    }

    /// `PUT {api}{path}` on `home`'s node, or the next ones, with the run's admin key.
    async fn put(&self, home: usize, path: &str, body: &Value) -> Result<Value, ErrorKind> {
        self.put_as(&self.http, home, path, body).await
    }

    /// [`Self::get`] with the credential of `http` (a virtual agent's own key).
    async fn get_as(
        &self,
        http: &reqwest::Client,
        home: usize,
        path: &str,
    ) -> Result<Value, ErrorKind> {
        self.with_failover(home, |api| get_json(http, format!("{api}{path}")))
            .await
            .0
    }

    /// [`Self::post`] with the credential of `http`.
    async fn post_as(
        &self,
        http: &reqwest::Client,
        home: usize,
        path: &str,
        body: &Value,
    ) -> Result<Value, ErrorKind> {
        self.with_failover(home, |api| post_json(http, format!("{api}{path}"), body))
            .await
            .0
    }

    /// [`Self::put`] with the credential of `http`.
    async fn put_as(
        &self,
        http: &reqwest::Client,
        home: usize,
        path: &str,
        body: &Value,
    ) -> Result<Value, ErrorKind> {
        self.with_failover(home, |api| put_json(http, format!("{api}{path}"), body))
            .await
            .0
    }

    fn avoid(&self, target: &Target) {
        let until = self.started.elapsed() + AVOID_FOR;
        target.avoid_until_ms.store(
            u64::try_from(until.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Sends `request(api)` to `home`'s node, and on an answer that another node could give
    /// (no connection, a timeout, a 5xx) to the next ones, until `retry_for` has passed. Returns
    /// the last outcome and the number of attempts.
    async fn with_failover<F, Fut>(
        &self,
        home: usize,
        request: F,
    ) -> (Result<Value, ErrorKind>, u32)
    where
        F: Fn(&str) -> Fut,
        Fut: std::future::Future<Output = Result<Value, ErrorKind>>,
    {
        if self.targets.len() == 1 {
            // One node: one attempt, as an open-loop test of a single node measures it.
            return (request(&self.targets[0].api).await, 1);
        }
        let deadline = Instant::now() + self.retry_for;
        let mut attempts = 0_u32;
        let mut pause = Duration::from_millis(50);
        loop {
            for target in self.nodes_from(home) {
                attempts += 1;
                let outcome = request(&target.api).await;
                match outcome {
                    Err(kind) if kind.worth_another_node() => {
                        if matches!(kind, ErrorKind::Connect | ErrorKind::Timeout) {
                            self.avoid(target);
                        }
                        if Instant::now() >= deadline {
                            return (Err(kind), attempts);
                        }
                    }
                    other => return (other, attempts),
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}

/// The per-message state of a followed customer.
#[derive(Debug)]
struct Sent {
    posted_at: Instant,
    expects_reply: bool,
    /// Replied, or known failed: no longer outstanding.
    done: bool,
}

#[derive(Debug, Default)]
struct FollowState {
    /// Our channel message id → its state.
    sent: HashMap<String, Sent>,
    /// Crest's message id → our channel message id (from `customer_message_received`).
    crest_to_ours: HashMap<String, String>,
    connected_at: Option<Instant>,
    /// Every turn of the script has been dispatched.
    dispatched_all: bool,
}

impl FollowState {
    fn outstanding(&self) -> u64 {
        self.sent
            .values()
            .filter(|sent| sent.expects_reply && !sent.done)
            .count() as u64
    }
}

/// A customer whose conversation is followed over the WebSocket.
#[derive(Debug, Default)]
struct Follow {
    state: Mutex<FollowState>,
    started: AtomicBool,
    wake: Notify,
}

impl Follow {
    fn state(&self) -> MutexGuard<'_, FollowState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn finish(&self, our_id: &str) {
        if let Some(sent) = self.state().sent.get_mut(our_id) {
            sent.done = true;
        }
        self.wake.notify_one();
    }
}

/// An active virtual customer (owned by the scheduler).
#[derive(Debug)]
struct Customer {
    id: Arc<str>,
    /// The node its messages go to first.
    home: usize,
    script: &'static Script,
    next_turn: usize,
    pick: u64,
    follow: Option<Arc<Follow>>,
}

/// One scheduled message.
#[derive(Debug)]
struct Arrival {
    due: Instant,
    home: usize,
    our_id: String,
    customer: Arc<str>,
    text: String,
    turn: Turn,
    follow: Option<Arc<Follow>>,
}

/// Runs the whole load test and returns its report (the caller prints and writes it).
///
/// # Errors
/// An unusable profile or target; failures during the run are measured, not returned.
pub async fn run(config: RunConfig) -> Result<Report, RunError> {
    config.profile.validate()?;
    let schedule = Schedule::new(&config.profile)?;
    let urls: Vec<String> = config
        .target
        .split(',')
        .map(|url| url.trim().trim_end_matches('/').to_owned())
        .filter(|url| !url.is_empty())
        .collect();
    if urls.is_empty() || urls.iter().any(|url| !url.starts_with("http://")) {
        return Err(RunError::Target(config.target.clone()));
    }
    let target = urls.join(",");
    let profile = &config.profile;
    let request_timeout = Duration::from_millis(profile.request_timeout_ms);
    let http = authorized_client(request_timeout, &config.api_key)?;
    for url in &urls {
        check_reachable(&http, url).await?;
    }
    let (stop, _) = watch::channel(false);
    let shared = Arc::new(Shared {
        http,
        api_key: config.api_key.clone(),
        targets: urls
            .iter()
            .map(|url| Target {
                api: format!("{url}/v1/tenants/{}", config.tenant),
                ws_api: format!(
                    "ws://{}/v1/tenants/{}",
                    url.trim_start_matches("http://"),
                    config.tenant
                ),
                avoid_until_ms: AtomicU64::new(0),
            })
            .collect(),
        retry_for: Duration::from_millis(profile.retry_for_ms),
        retried: AtomicU64::new(0),
        started: Instant::now(),
        request_timeout,
        metrics: Mutex::new(Metrics::new()),
        in_flight: Arc::new(Semaphore::new(profile.max_in_flight)),
        max_in_flight: profile.max_in_flight,
        offered: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        message_errors: AtomicU64::new(0),
        followers: AtomicUsize::new(0),
        stop,
    });

    let agents = start_agents(&shared, &config).await;
    let progress = progress_bar(config.progress, schedule.total());
    let ticker = tokio::spawn(tick_progress(
        Arc::clone(&shared),
        progress.clone(),
        schedule.clone(),
    ));

    schedule_arrivals(&shared, &config, &schedule).await;

    // Let in-flight messages finish (each is bounded by the request timeout).
    let permits = u32::try_from(profile.max_in_flight).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(
        request_timeout + Duration::from_secs(1),
        shared.in_flight.acquire_many(permits),
    )
    .await;
    let last_post = shared.since_start(Instant::now());
    // Give outstanding bot replies and handoffs up to `drain_s`.
    let drain_until = Instant::now() + Duration::from_secs_f64(profile.drain_s);
    while Instant::now() < drain_until && shared.followers.load(Ordering::Relaxed) > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let handoff_wait_until = Instant::now()
        + Duration::from_secs_f64(profile.drain_s.min(2.0))
        + Duration::from_millis(profile.agent_handle_ms);
    while profile.agents > 0 && Instant::now() < handoff_wait_until && !handoffs_settled(&shared) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = shared.stop.send(true);
    let follower_deadline = Instant::now() + Duration::from_secs(3);
    while shared.followers.load(Ordering::Relaxed) > 0 && Instant::now() < follower_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for agent in agents {
        let _ = tokio::time::timeout(Duration::from_secs(5), agent).await;
    }
    ticker.abort();
    progress.finish_and_clear();

    let acked: Vec<Acked> = shared.metrics().acked.clone();
    let loss = read_back(&shared, &acked, &config.run_id, config.progress).await;

    let metrics = shared.metrics();
    let schedule_s = schedule.duration_s();
    let elapsed = metrics
        .last_ack
        .max(Duration::from_secs_f64(schedule_s))
        .min(last_post.max(Duration::from_secs_f64(schedule_s)));
    let phases = schedule
        .segments()
        .iter()
        .zip(schedule.arrivals_per_phase())
        .map(|(segment, (_, arrivals))| PhaseReport {
            name: segment.name.clone(),
            start_s: segment.start_s,
            duration_s: segment.duration_s,
            from: segment.from,
            to: segment.to,
            arrivals,
        })
        .collect();
    Ok(Report::build(crate::report::Parts {
        run_id: config.run_id.clone(),
        target,
        tenant: config.tenant.clone(),
        seed: config.seed,
        profile: config.profile.clone(),
        phases,
        schedule_s,
        elapsed_s: elapsed.as_secs_f64(),
        offered: shared.offered.load(Ordering::Relaxed),
        acked: metrics.acked.len() as u64,
        duplicate_acks: metrics.duplicate_acks,
        retried: shared.retried.load(Ordering::Relaxed),
        ack: &metrics.ack,
        bot_reply: &metrics.bot_reply,
        handoff_to_offer: &metrics.handoff_to_offer,
        send_lag: &metrics.send_lag,
        bot: metrics.bot.clone(),
        handoffs: metrics.handoffs.clone(),
        errors: &metrics.errors,
        loss,
        series: metrics.series.points(),
    }))
}

async fn check_reachable(http: &reqwest::Client, target: &str) -> Result<(), RunError> {
    let unreachable = |reason: String| RunError::Unreachable {
        target: target.to_owned(),
        reason,
    };
    let response = http
        .get(format!("{target}/healthz"))
        .send()
        .await
        .map_err(|error| unreachable(error.to_string()))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(unreachable(format!(
            "GET /healthz answered {}",
            response.status()
        )))
    }
}

fn handoffs_settled(shared: &Shared) -> bool {
    let metrics = shared.metrics();
    metrics.handoffs.accepted == metrics.handoffs.resolved + metrics.handoffs.resolve_failed
}

/// Starts the arrivals at the profile's rate: every millisecond, whatever became due is started
/// at once (a task per message), so slow answers never slow the offered load.
async fn schedule_arrivals(shared: &Arc<Shared>, config: &RunConfig, schedule: &Schedule) {
    let profile = &config.profile;
    let mut rng = Rng::new(config.seed);
    let mut slots: Vec<Option<Customer>> = (0..profile.customers).map(|_| None).collect();
    let mut customers_started = 0_u64;
    let total = schedule.total();
    let duration = schedule.duration_s();
    let mut sent = 0_u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let ticked = tick.tick().await.into_std();
        let now = shared.started.elapsed();
        let due = schedule.due(now.as_secs_f64().min(duration));
        if due > sent {
            let count = due - sent;
            shared.metrics().series.at(now).offered += count;
            shared.offered.fetch_add(count, Ordering::Relaxed);
        }
        while sent < due {
            let index = sent;
            sent += 1;
            let slot_index = usize::try_from(index % profile.customers as u64).unwrap_or(0);
            let slot = &mut slots[slot_index];
            let customer = slot.get_or_insert_with(|| {
                customers_started += 1;
                new_customer(config, &mut rng, customers_started)
            });
            let turn = customer.script.turns[customer.next_turn];
            customer.next_turn += 1;
            let last_turn = customer.next_turn >= customer.script.turns.len();
            let our_id = format!("{}-m{index}", config.run_id);
            let follow = customer.follow.clone();
            if let Some(follow) = &follow {
                let mut state = follow.state();
                state.sent.insert(
                    our_id.clone(),
                    Sent {
                        posted_at: Instant::now(),
                        expects_reply: turn.expects_bot_reply,
                        done: false,
                    },
                );
                state.dispatched_all = last_turn;
            }
            let arrival = Arrival {
                due: ticked,
                home: customer.home,
                text: scripts::render(&turn, customer.pick),
                customer: Arc::clone(&customer.id),
                our_id,
                turn,
                follow,
            };
            if last_turn {
                *slot = None;
            }
            match Arc::clone(&shared.in_flight).try_acquire_owned() {
                Ok(permit) => {
                    tokio::spawn(send_message(Arc::clone(shared), arrival, permit));
                }
                Err(_) => {
                    shared.message_error(ErrorKind::ClientOverload);
                    if let Some(follow) = &arrival.follow {
                        follow.finish(&arrival.our_id);
                    }
                }
            }
        }
        if sent >= total || now.as_secs_f64() >= duration {
            break;
        }
    }
    // Customers still mid-script: nothing more will be sent for them.
    for customer in slots.into_iter().flatten() {
        if let Some(follow) = customer.follow {
            follow.state().dispatched_all = true;
            follow.wake.notify_one();
        }
    }
}

fn new_customer(config: &RunConfig, rng: &mut Rng, number: u64) -> Customer {
    let script = scripts::pick_script(rng, config.profile.handoff_share);
    let pick = rng.next_u64();
    let followed = rng.next_f64() < config.profile.follow_fraction;
    Customer {
        id: Arc::from(format!("{}-c{number}", config.run_id)),
        home: usize::try_from(number).unwrap_or(0),
        script,
        next_turn: 0,
        pick,
        follow: followed.then(|| Arc::new(Follow::default())),
    }
}

/// Posts one customer message and records its acknowledgement.
async fn send_message(shared: Arc<Shared>, arrival: Arrival, _permit: OwnedSemaphorePermit) {
    let body = json!({
        "customer": &*arrival.customer,
        "channel": "web",
        "id": &arrival.our_id,
        "text": &arrival.text,
    });
    let posted = Instant::now();
    if let Some(follow) = &arrival.follow
        && let Some(sent) = follow.state().sent.get_mut(&arrival.our_id)
    {
        sent.posted_at = posted;
    }
    let (outcome, attempts) = shared
        .with_failover(arrival.home, |api| {
            post_json(&shared.http, format!("{api}/messages"), &body)
        })
        .await;
    let answered = Instant::now();
    if attempts > 1 && outcome.is_ok() {
        shared.retried.fetch_add(1, Ordering::Relaxed);
    }
    let ack = match outcome {
        Ok(ack) => ack,
        Err(kind) => {
            shared.message_error(kind);
            if let Some(follow) = &arrival.follow {
                follow.finish(&arrival.our_id);
            }
            return;
        }
    };
    let (Some(conversation), Some(message_id)) =
        (ack["conversation_id"].as_str(), ack["message_id"].as_str())
    else {
        shared.message_error(ErrorKind::Transport);
        return;
    };
    let at = shared.since_start(answered);
    {
        let mut metrics = shared.metrics();
        metrics
            .send_lag
            .record(posted.saturating_duration_since(arrival.due));
        let latency = answered.duration_since(posted);
        metrics.ack.record(latency);
        let second = metrics.series.at(at);
        second.acked += 1;
        second.ack.record(latency);
        metrics.last_ack = metrics.last_ack.max(at);
        if ack["duplicate"].as_bool() == Some(true) {
            metrics.duplicate_acks += 1;
        }
        metrics.acked.push(Acked {
            conversation: conversation.to_owned(),
            message_id: message_id.to_owned(),
        });
        if arrival.turn.hands_off {
            metrics.handoffs.acked += 1;
            match metrics.offer_seen.get(conversation).copied() {
                // An agent saw the offer before this answer was read: the handoff was immediate.
                Some(seen) => {
                    metrics
                        .handoff_to_offer
                        .record(seen.saturating_duration_since(answered));
                    metrics.handoffs.offered += 1;
                }
                None => {
                    metrics
                        .handoff_acked
                        .insert(conversation.to_owned(), answered);
                }
            }
        }
    }
    shared.acked.fetch_add(1, Ordering::Relaxed);
    if let Some(follow) = arrival.follow
        && !follow.started.swap(true, Ordering::AcqRel)
    {
        shared.followers.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(follow_conversation(
            Arc::clone(&shared),
            follow,
            conversation.to_owned(),
            arrival.home,
        ));
    }
}

/// Posts JSON and returns the JSON answer of a 2xx, or the error kind.
/// An HTTP client that sends `Authorization: Bearer <key>` with every request.
fn authorized_client(timeout: Duration, key: &str) -> Result<reqwest::Client, RunError> {
    let mut headers = reqwest::header::HeaderMap::new();
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
        .map_err(|_| RunError::ApiKey)?;
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .build()?)
}

async fn post_json(http: &reqwest::Client, url: String, body: &Value) -> Result<Value, ErrorKind> {
    let response = http.post(url).json(body).send().await.map_err(classify)?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(classify)?;
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        Ok(value)
    } else {
        Err(ErrorKind::from_status(status, value["error"].as_str()))
    }
}

async fn get_json(http: &reqwest::Client, url: String) -> Result<Value, ErrorKind> {
    let response = http.get(url).send().await.map_err(classify)?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(classify)?;
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        Ok(value)
    } else {
        Err(ErrorKind::from_status(status, value["error"].as_str()))
    }
}

fn classify(error: reqwest::Error) -> ErrorKind {
    if error.is_timeout() {
        ErrorKind::Timeout
    } else if error.is_connect() {
        ErrorKind::Connect
    } else {
        ErrorKind::Transport
    }
}

/// Follows one conversation over its WebSocket: matches each `conversation.bot_replied` to the
/// customer message it answers (`data.in_reply_to` is Crest's message id, mapped to ours through
/// `conversation.customer_message_received`) and records the bot-reply latency from the start of
/// the POST. Replies to messages posted before the socket was open arrive in its catch-up and are
/// counted but not timed.
async fn follow_conversation(
    shared: Arc<Shared>,
    follow: Arc<Follow>,
    conversation: String,
    home: usize,
) {
    let mut stop = shared.stop.subscribe();
    let mut opened = None;
    for target in shared.nodes_from(home) {
        let url = format!(
            "{}/conversations/{conversation}/stream?after=0&access_token={}",
            target.ws_api, shared.api_key
        );
        let connected = tokio::time::timeout(
            shared.request_timeout,
            tokio_tungstenite::connect_async(url),
        )
        .await;
        if let Ok(Ok((socket, _))) = connected {
            opened = Some(socket);
            break;
        }
    }
    let mut socket = match opened {
        Some(socket) => socket,
        None => {
            shared.other_error(ErrorKind::WebSocket);
            let mut metrics = shared.metrics();
            metrics.bot.unfollowed_conversations += 1;
            drop(metrics);
            shared.followers.fetch_sub(1, Ordering::Relaxed);
            return;
        }
    };
    follow.state().connected_at = Some(Instant::now());
    let mut check = tokio::time::interval(Duration::from_millis(250));
    loop {
        {
            let state = follow.state();
            if state.dispatched_all && state.outstanding() == 0 {
                break;
            }
        }
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => on_event(&shared, &follow, text.as_str()),
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            () = follow.wake.notified() => {}
            _ = check.tick() => {}
            _ = stop.changed() => break,
        }
    }
    let missing = follow.state().outstanding();
    shared.metrics().bot.missing += missing;
    let _ = socket.close(None).await;
    shared.followers.fetch_sub(1, Ordering::Relaxed);
}

fn on_event(shared: &Shared, follow: &Follow, text: &str) {
    let Ok(event) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let data = &event["data"];
    match event["type"].as_str() {
        Some(loss::CUSTOMER_MESSAGE) => {
            if let (Some(message), Some(ours)) = (
                data["message"].as_str(),
                data["channel_message_id"].as_str(),
            ) {
                follow
                    .state()
                    .crest_to_ours
                    .insert(message.to_owned(), ours.to_owned());
            }
        }
        Some("conversation.bot_replied") => {
            let seen = Instant::now();
            let Some(in_reply_to) = data["in_reply_to"].as_str() else {
                return;
            };
            let latency = {
                let mut state = follow.state();
                let connected_at = state.connected_at;
                let Some(ours) = state.crest_to_ours.get(in_reply_to).cloned() else {
                    return;
                };
                let Some(sent) = state.sent.get_mut(&ours) else {
                    return;
                };
                if sent.done && sent.expects_reply {
                    // Already counted (a second reply to the same message is not expected).
                    return;
                }
                sent.done = true;
                let live = connected_at.is_some_and(|connected| sent.posted_at >= connected);
                live.then(|| seen.saturating_duration_since(sent.posted_at))
            };
            let at = shared.since_start(seen);
            let mut metrics = shared.metrics();
            metrics.bot.seen += 1;
            match latency {
                Some(latency) => {
                    metrics.bot.timed += 1;
                    metrics.bot_reply.record(latency);
                    metrics.series.at(at).bot_reply.record(latency);
                }
                None => metrics.bot.untimed += 1,
            }
        }
        Some("conversation.handoff_requested") => {
            shared.metrics().bot.handoffs_seen += 1;
        }
        _ => {}
    }
}

/// Puts the virtual agents online and starts their loops.
async fn start_agents(
    shared: &Arc<Shared>,
    config: &RunConfig,
) -> Vec<tokio::task::JoinHandle<()>> {
    let profile = &config.profile;
    let mut handles = Vec::with_capacity(profile.agents);
    for number in 1..=profile.agents {
        let agent = format!("{}-a{number}", config.run_id);
        let seat = json!({
            "status": "online",
            "groups": ["after_sales", "general", "pre_sales"],
            "capacity": profile.agent_capacity,
        });
        // Agents are spread over the nodes like customers.
        let home = number;
        if shared
            .put(home, &format!("/agents/{agent}"), &seat)
            .await
            .is_err()
        {
            shared.other_error(ErrorKind::Agent);
            continue;
        }
        // Each virtual agent works with its own agent key, issued with the run's admin key.
        let issued = shared
            .post(
                home,
                "/api-keys",
                &json!({"role": "agent", "agent": &agent, "name": format!("loadtest {agent}")}),
            )
            .await;
        let agent_http = issued
            .ok()
            .and_then(|answer| answer["key"].as_str().map(str::to_owned))
            .and_then(|key| authorized_client(shared.request_timeout, &key).ok());
        let Some(agent_http) = agent_http else {
            shared.other_error(ErrorKind::Agent);
            continue;
        };
        handles.push(tokio::spawn(agent_loop(
            Arc::clone(shared),
            agent_http,
            home,
            agent,
            Duration::from_millis(profile.agent_poll_ms),
            Duration::from_millis(profile.agent_handle_ms),
        )));
    }
    handles
}

async fn put_json(http: &reqwest::Client, url: String, body: &Value) -> Result<Value, ErrorKind> {
    let response = http.put(url).json(body).send().await.map_err(classify)?;
    let status = response.status().as_u16();
    let value: Value = response.json().await.unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        Ok(value)
    } else {
        Err(ErrorKind::from_status(status, value["error"].as_str()))
    }
}

/// A virtual agent: polls its seat for offers, accepts each, replies after the handling time and
/// resolves the chat. Goes offline when the run stops.
async fn agent_loop(
    shared: Arc<Shared>,
    http: reqwest::Client,
    home: usize,
    agent: String,
    poll: Duration,
    handle: Duration,
) {
    let mut stop = shared.stop.subscribe();
    let seat = format!("/agents/{agent}");
    let mut taken: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            () = tokio::time::sleep(poll) => {}
        }
        let Ok(seat) = shared.get_as(&http, home, &seat).await else {
            shared.other_error(ErrorKind::Agent);
            continue;
        };
        let seen = Instant::now();
        let offers: Vec<String> = seat["offers"]
            .as_array()
            .map(|offers| {
                offers
                    .iter()
                    .filter_map(|offer| offer.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for conversation in offers {
            if !taken.insert(conversation.clone()) {
                continue;
            }
            {
                let mut metrics = shared.metrics();
                if !metrics.offer_seen.contains_key(&conversation) {
                    metrics.offer_seen.insert(conversation.clone(), seen);
                    if let Some(acked) = metrics.handoff_acked.remove(&conversation) {
                        metrics
                            .handoff_to_offer
                            .record(seen.saturating_duration_since(acked));
                        metrics.handoffs.offered += 1;
                    }
                }
            }
            let accept = format!("{seat}/offers/{conversation}/accept");
            match shared.post_as(&http, home, &accept, &json!({})).await {
                Ok(_) => {
                    shared.metrics().handoffs.accepted += 1;
                    tokio::spawn(handle_chat(
                        Arc::clone(&shared),
                        http.clone(),
                        home,
                        agent.clone(),
                        conversation,
                        handle,
                    ));
                }
                Err(_) => {
                    shared.metrics().handoffs.accept_failed += 1;
                }
            }
        }
    }
    let offline = json!({"status": "offline"});
    if shared.put_as(&http, home, &seat, &offline).await.is_err() {
        shared.other_error(ErrorKind::Agent);
    }
}

async fn handle_chat(
    shared: Arc<Shared>,
    http: reqwest::Client,
    home: usize,
    agent: String,
    conversation: String,
    handle: Duration,
) {
    tokio::time::sleep(handle).await;
    let chat = format!("/conversations/{conversation}");
    let reply = json!({
        "agent": &agent,
        "id": format!("{agent}-{conversation}-1"),
        "text": "您好，我是人工客服，非常抱歉给您带来不便，马上为您处理。Sorry for the trouble, I am on it.",
    });
    let replied = shared
        .post_as(&http, home, &format!("{chat}/agent-messages"), &reply)
        .await;
    let resolved = shared
        .post_as(
            &http,
            home,
            &format!("{chat}/resolve"),
            &json!({"agent": &agent}),
        )
        .await;
    let mut metrics = shared.metrics();
    if replied.is_err() {
        metrics.errors.add(ErrorKind::Agent);
    }
    match resolved {
        Ok(_) => metrics.handoffs.resolved += 1,
        Err(_) => {
            metrics.errors.add(ErrorKind::Agent);
            metrics.handoffs.resolve_failed += 1;
        }
    }
}

/// Reads every conversation back and accounts for each acknowledged message.
async fn read_back(
    shared: &Arc<Shared>,
    acked: &[Acked],
    run_id: &str,
    show_progress: bool,
) -> loss::LossReport {
    let conversations: Vec<String> = acked
        .iter()
        .map(|ack| ack.conversation.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let progress = if show_progress {
        let bar = ProgressBar::with_draw_target(
            Some(conversations.len() as u64),
            ProgressDrawTarget::stderr(),
        );
        if let Ok(style) =
            ProgressStyle::with_template("read-back {bar:30} {pos}/{len} conversations {per_sec}")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let stored: HashMap<String, Option<Stored>> = futures::stream::iter(conversations)
        .map(|conversation| {
            let shared = Arc::clone(shared);
            let progress = progress.clone();
            async move {
                let messages = read_conversation(&shared, &conversation).await;
                progress.inc(1);
                (conversation, messages)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    progress.finish_and_clear();
    let prefix = format!("{run_id}-m");
    loss::account(acked, &stored, &prefix)
}

/// Every customer message of one conversation (`None` if it could not be read whole).
async fn read_conversation(shared: &Shared, conversation: &str) -> Option<Stored> {
    let mut messages = Vec::new();
    let mut after = 0_u64;
    loop {
        let path = format!("/conversations/{conversation}/events?after={after}&limit=1000");
        let mut page = None;
        for attempt in 0..5_u64 {
            match shared.get(0, &path).await {
                Ok(value) => {
                    page = Some(value);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await,
            }
        }
        let page = page?;
        let events = page["events"].as_array()?;
        messages.extend(loss::customer_messages(events));
        let Some(last) = events.last().and_then(|event| event["seq"].as_u64()) else {
            return Some(messages);
        };
        if events.len() < 1000 {
            return Some(messages);
        }
        after = last;
    }
}

fn progress_bar(show: bool, total: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(4));
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} offered  {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Updates the progress bar four times a second with the phase, rates and errors.
async fn tick_progress(shared: Arc<Shared>, bar: ProgressBar, schedule: Schedule) {
    let mut interval = tokio::time::interval(Duration::from_millis(250));
    let mut previous = (0_u64, 0_u64, Instant::now());
    loop {
        interval.tick().await;
        let now = Instant::now();
        let offered = shared.offered.load(Ordering::Relaxed);
        let acked = shared.acked.load(Ordering::Relaxed);
        let seconds = now.duration_since(previous.2).as_secs_f64().max(1e-3);
        let offered_rate = (offered - previous.0) as f64 / seconds;
        let acked_rate = (acked.saturating_sub(previous.1)) as f64 / seconds;
        previous = (offered, acked, now);
        let t = shared.started.elapsed().as_secs_f64();
        let phase = schedule
            .segment_at(t)
            .map_or("drain", |segment| segment.name.as_str());
        let in_flight = shared.max_in_flight
            - shared
                .in_flight
                .available_permits()
                .min(shared.max_in_flight);
        bar.set_position(offered);
        bar.set_message(format!(
            "{phase}: offered {offered_rate:.0}/s, acked {acked_rate:.0}/s, errors {}, in flight {in_flight}, followers {}",
            shared.message_errors.load(Ordering::Relaxed),
            shared.followers.load(Ordering::Relaxed),
        ));
    }
}
