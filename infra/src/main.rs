//! The `crest` command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use crest_actors::NodeConfig;
use crest_actors::context::EntitySettings;
use crest_actors::desk::DeskSettings;
use crest_brain::classifier::TextClassifier;
use crest_brain::commerce::{Commerce, HttpCommerce, HttpCommerceConfig};
use crest_brain::engine;
use crest_brain::llm::{LlmClient, LlmConfig};
use crest_infra::brain_adapter::{DeferredBrain, EngineBrain};
use crest_infra::evaluate;
use crest_infra::journal::FjallJournalConfig;
use crest_infra::server::{self, JournalBackend, ServeConfig};
use tracing_subscriber::EnvFilter;

/// Crest: event-sourced customer service for e-commerce promo peaks.
#[derive(Debug, Parser)]
#[command(
    name = "crest",
    version,
    about = "Crest: event-sourced customer service for e-commerce promo peaks",
    long_about = "Crest: event-sourced customer service for e-commerce promo peaks.\n\n\
        An AI bot answers first, customers who are stuck or ask for a person are handed to human \
        agents, and every conversation is an actor whose acknowledgement means \"durably journaled\".",
    after_help = "Examples:\n  crest serve                                   single node on 127.0.0.1:8080, data in ./data\n  \
        crest serve --data-dir /var/lib/crest --listen 0.0.0.0:8080 --nats nats://127.0.0.1:4222\n\n\
        Run `crest serve --help` for every option. The API is described in README.md and at GET /."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a single node: embedded journal, HTTP/WebSocket API, metrics, demo data.
    ///
    /// Every accepted message is durably journaled before it is acknowledged. SIGTERM or ctrl-c
    /// stops accepting requests, lets in-flight ones finish, publishes pending events and flushes
    /// the journal before exiting.
    Serve(Box<ServeArgs>),
    /// Train and evaluate the intent and sentiment classifier.
    #[command(subcommand)]
    Nlu(NluCommand),
    /// Evaluate knowledge-base retrieval.
    #[command(subcommand)]
    Kb(KbCommand),
    /// Print the API contract (OpenAPI 3.1, generated from the code), as served at
    /// `GET /openapi.json`: `crest openapi > docs/openapi.yaml` refreshes the committed copy.
    Openapi {
        /// Print JSON instead of YAML.
        #[arg(long)]
        json: bool,
    },
    /// Append events to a journal forever, printing each acknowledged append (crash tests).
    #[command(hide = true)]
    JournalWriter {
        /// Journal directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Streams written round-robin.
        #[arg(long, default_value_t = 50)]
        streams: usize,
    },
}

#[derive(Debug, Subcommand)]
enum NluCommand {
    /// Evaluate a classifier. With --train, trains a fresh one on TRAIN; without, evaluates the
    /// default intent model (mapping test labels with --map). The last line is a JSON object
    /// {"n","accuracy","macro_f1","p50_us","p99_us"[,"oos_recall","in_scope_accuracy"]}.
    Eval {
        /// Training examples, JSON lines {"text","label"}.
        #[arg(long)]
        train: Option<PathBuf>,
        /// Test examples, JSON lines {"text","label"}; labels `oos`/`out_of_scope` are out of scope.
        #[arg(long)]
        test: PathBuf,
        /// JSON object mapping test labels to default intents (unmapped labels count as out_of_scope).
        #[arg(long)]
        map: Option<PathBuf>,
        /// A default intent model file (otherwise it is trained from the pack).
        #[arg(long, conflicts_with = "train")]
        model: Option<PathBuf>,
    },
    /// Build the default intent model from the pack (deterministic) and write it to OUT.
    TrainDefault {
        /// Where to write the model file.
        #[arg(long, default_value = "default-intents.model")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum KbCommand {
    /// Build a knowledge base from FAQ lines {"id","question","answer"} and measure retrieval of
    /// queries {"text","label"} (label = FAQ id). The last line is a JSON object
    /// {"n","top1","top3","mrr","p99_us",…}.
    Eval {
        /// FAQ entries, JSON lines.
        #[arg(long)]
        kb: PathBuf,
        /// Queries, JSON lines.
        #[arg(long)]
        test: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Directory of the embedded journal (created if missing).
    #[arg(long, env = "CREST_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Address for the HTTP API, the web page and /metrics.
    #[arg(long, env = "CREST_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// NATS server URL: publish events to JetStream (stream CREST_EVENTS). Without it events go to
    /// an in-process bus.
    #[arg(long, env = "CREST_NATS")]
    nats: Option<String>,
    /// Where events are journaled: `fjall` (embedded, under --data-dir; a node alone),
    /// `jetstream` (streams on the NATS servers of --nats) or `scylla` (--scylla-uri).
    #[arg(long, value_enum, default_value_t = JournalKind::Fjall)]
    journal: JournalKind,
    /// Replicas of the JetStream journal's streams and of the cluster's buckets (3 on a NATS
    /// cluster).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// ScyllaDB contact points for `--journal scylla` (`host:port,host:port`).
    #[arg(long, env = "SCYLLA_URI")]
    scylla_uri: Option<String>,
    /// Join a cluster under this node name (letters, digits, '-', '_'); needs --nats and a shared
    /// journal (`--journal jetstream` or `scylla`).
    #[arg(long, env = "CREST_CLUSTER_NODE")]
    cluster_node: Option<String>,
    /// This node's HTTP address as other nodes and clients reach it (default: http://<listen>).
    #[arg(long)]
    advertise_url: Option<String>,
    /// File holding the operator's token (which may create any tenant's API keys and read
    /// GET /v1/cluster); the environment variable CREST_OPERATOR_TOKEN works too.
    #[arg(long)]
    operator_token_file: Option<PathBuf>,
    /// File of master keys (`ID:BASE64` lines; the highest id wraps) that wrap each customer's
    /// key. CREST_MASTER_KEY may hold the same text instead. Without either, a node alone
    /// generates <data-dir>/master.key.
    #[arg(long, env = "CREST_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    /// Cipher of new customer keys: aes-256-gcm, or sm4-gcm for deployments that must use the
    /// Chinese national algorithms.
    #[arg(long, env = "CREST_PII_CIPHER", default_value = "aes-256-gcm")]
    pii_cipher: String,
    /// Serve HTTPS and WSS with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, requires = "tls_key", env = "CREST_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert", env = "CREST_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Messages one customer may send per minute, sustained (beyond: 429 rate_limited).
    #[arg(long, default_value_t = 60)]
    customer_messages_per_min: u32,
    /// Messages one customer may send at once before the per-minute rate applies.
    #[arg(long, default_value_t = 20)]
    customer_message_burst: u32,
    /// Messages all customers of one tenant may send per second on this node.
    #[arg(long, default_value_t = 20_000)]
    tenant_messages_per_s: u32,
    /// WebSocket connections one tenant may hold open on this node.
    #[arg(long, default_value_t = 5_000)]
    websockets_per_tenant: usize,
    /// Seconds a login session (POST /v1/tenants/{t}/sessions) lasts.
    #[arg(long, default_value_t = 8 * 3600)]
    session_ttl_secs: u64,
    /// Do not seed the `demo` tenant with sample conversations (nor issue and print its keys).
    #[arg(long)]
    no_demo: bool,
    /// Most commands in flight; beyond it requests get 503 with Retry-After.
    #[arg(long, default_value_t = 8192)]
    max_in_flight: usize,
    /// Seconds to wait for an acknowledgement before answering 503 (retry with the same id).
    #[arg(long, default_value_t = 10)]
    command_timeout_secs: u64,
    /// Snapshot an actor's state every N events.
    #[arg(long, default_value_t = 64)]
    snapshot_every: u64,
    /// Passivate actors idle for this many seconds. Memory holds every conversation active within
    /// this window (its conversation and customer actors take about 16 KB, measured with massif):
    /// at 1,400 new conversations/s that is ~0.7 GB for 30 s and ~2.7 GB for 120 s. A later
    /// message recovers the actor from the journal (~8 µs).
    #[arg(long, default_value_t = 30)]
    idle_timeout_secs: u64,
    /// Label business metrics with the tenant (`false`: every tenant is `all`, for many tenants).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    metrics_tenant_label: bool,
    /// Quality-inspection rules (JSON, the format of infra/src/projections/quality_rules.default.json).
    #[arg(long)]
    quality_rules: Option<PathBuf>,
    /// Seconds an agent whose live connection dropped stays online before turning away.
    #[arg(long, default_value_t = 60)]
    presence_grace_secs: u64,
    /// Threads running the bot's brain.
    #[arg(long, default_value_t = 1)]
    brain_threads: usize,
    /// Microseconds the journal writer waits to gather more appends into one sync (0: only what
    /// queued during the previous sync).
    #[arg(long, default_value_t = 0)]
    group_commit_linger_us: u64,
    /// Sync every append on its own instead of group commit (for comparisons only).
    #[arg(long)]
    no_group_commit: bool,
    /// Default intent model file (from `crest nlu train-default`); without it the model is trained
    /// from the pack at start-up.
    #[arg(long, env = "CREST_INTENT_MODEL")]
    intent_model: Option<PathBuf>,
    /// Merchant commerce endpoint (see brain/src/commerce/HTTP_CONTRACT.md); without it the
    /// embedded demo orders, parcels and products are used.
    #[arg(long, env = "CREST_COMMERCE_URL")]
    commerce_url: Option<String>,
    /// Bearer token for --commerce-url.
    #[arg(long, env = "CREST_COMMERCE_TOKEN", hide_env_values = true)]
    commerce_token: Option<String>,
    /// OpenAI-compatible chat-completions base URL (e.g. http://127.0.0.1:8000/v1): lets an LLM
    /// phrase knowledge-base answers, grounded on the retrieved passages. Off unless set.
    #[arg(long, env = "CREST_LLM_URL", requires = "llm_model")]
    llm_url: Option<String>,
    /// LLM model name.
    #[arg(long, env = "CREST_LLM_MODEL")]
    llm_model: Option<String>,
    /// LLM API key.
    #[arg(long, env = "CREST_LLM_KEY", hide_env_values = true)]
    llm_key: Option<String>,
    /// LLM timeout per attempt, in milliseconds (one retry; then the retrieval answer is used).
    #[arg(long, default_value_t = 3000)]
    llm_timeout_ms: u64,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("CREST_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(crest_infra::logging::MaskedStderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve(*args).await,
            Command::Nlu(NluCommand::Eval {
                train,
                test,
                map,
                model,
            }) => evaluate::nlu_eval(train.as_deref(), &test, map.as_deref(), model.as_deref()),
            Command::Nlu(NluCommand::TrainDefault { out }) => evaluate::nlu_train_default(&out),
            Command::Kb(KbCommand::Eval { kb, test }) => evaluate::kb_eval(&kb, &test),
            Command::JournalWriter { data_dir, streams } => journal_writer(data_dir, streams).await,
            Command::Openapi { json } => {
                let document = if json {
                    crest_infra::http::openapi::to_json() + "\n"
                } else {
                    crest_infra::http::openapi::to_yaml()
                };
                std::io::Write::write_all(&mut std::io::stdout(), document.as_bytes())
                    .map_err(|error| format!("cannot write the document: {error}"))
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The journal a node writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum JournalKind {
    /// Embedded, under --data-dir.
    Fjall,
    /// JetStream streams on the NATS servers of --nats.
    Jetstream,
    /// ScyllaDB at --scylla-uri.
    Scylla,
}

fn journal_backend(args: &ServeArgs) -> Result<JournalBackend, String> {
    if args.replicas == 0 {
        return Err("--replicas must be at least 1".to_owned());
    }
    let backend = match args.journal {
        JournalKind::Fjall => JournalBackend::Fjall,
        JournalKind::Jetstream => {
            if args.nats.is_none() {
                return Err("--journal jetstream needs --nats URL".to_owned());
            }
            JournalBackend::JetStream {
                replicas: args.replicas,
            }
        }
        JournalKind::Scylla => {
            let Some(uri) = &args.scylla_uri else {
                return Err("--journal scylla needs --scylla-uri host:port[,host:port…]".to_owned());
            };
            JournalBackend::Scylla(Box::new(
                crest_infra::journal::ScyllaJournalConfig::with_uri(uri),
            ))
        }
    };
    if args.cluster_node.is_some() {
        if matches!(backend, JournalBackend::Fjall) {
            return Err(
                "a cluster node needs a shared journal: add --journal jetstream (or scylla)"
                    .to_owned(),
            );
        }
        if args.nats.is_none() {
            return Err("a cluster node needs --nats URL".to_owned());
        }
    }
    Ok(backend)
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    if args.max_in_flight == 0 {
        return Err("--max-in-flight must be at least 1".to_owned());
    }
    if args.snapshot_every == 0 {
        return Err("--snapshot-every must be at least 1".to_owned());
    }
    let args_brain = BrainArgs {
        intent_model: args.intent_model.clone(),
        commerce_url: args.commerce_url.clone(),
        commerce_token: args.commerce_token.clone(),
        llm_url: args.llm_url.clone(),
        llm_model: args.llm_model.clone(),
        llm_key: args.llm_key.clone(),
        llm_timeout: Duration::from_millis(args.llm_timeout_ms.max(1)),
    };
    let quality_rules = match &args.quality_rules {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| {
                format!("cannot read --quality-rules {}: {error}", path.display())
            })?;
            Some(
                crest_infra::projections::quality::Rules::parse(&text)
                    .map_err(|error| format!("--quality-rules {}: {error}", path.display()))?,
            )
        }
        None => None,
    };
    let backend = journal_backend(&args)?;
    let operator_token = operator_token(args.operator_token_file.as_deref())?;
    let cluster = args
        .cluster_node
        .clone()
        .map(|node| crest_infra::server::ClusterSettings {
            node,
            url: args
                .advertise_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", args.listen)),
            replicas: args.replicas,
        });
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crest_infra::tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    let pii_cipher = crest_infra::vault::CipherKind::parse(&args.pii_cipher).ok_or_else(|| {
        format!(
            "--pii-cipher {}: choose aes-256-gcm or sm4-gcm",
            args.pii_cipher
        )
    })?;
    let master_key = match (&args.master_key_file, std::env::var("CREST_MASTER_KEY")) {
        (Some(path), _) => crest_infra::vault::MasterKeySource::File(path.clone()),
        (None, Ok(text)) if !text.trim().is_empty() => {
            crest_infra::vault::MasterKeySource::Text(text)
        }
        _ => crest_infra::vault::MasterKeySource::DataDir,
    };
    // The bot answers from the knowledge bases the node indexes.
    let knowledge = Arc::new(crest_brain::kb::KnowledgeBases::new(
        engine::engine_kb_config(),
    ));
    // … and predicts with the intent models tenants switch to.
    let tenant_intents = Arc::new(crest_brain::intents::TenantModels::default());
    let config = ServeConfig {
        commerce: None,
        silence_tick: crest_infra::proactive::SILENCE_TICK,
        knowledge: Arc::clone(&knowledge),
        tenant_intents: Arc::clone(&tenant_intents),
        tls,
        master_key,
        pii_cipher,
        operator_token,
        session_ttl: Duration::from_secs(args.session_ttl_secs.max(60)),
        limits: crest_infra::http::limits::LimitSettings {
            customer_messages_per_min: args.customer_messages_per_min.max(1),
            customer_burst: args.customer_message_burst.max(1),
            tenant_messages_per_s: args.tenant_messages_per_s.max(1),
            websockets_per_tenant: args.websockets_per_tenant.max(1),
        },
        backend,
        cluster,
        metrics_tenant_label: args.metrics_tenant_label,
        quality_rules,
        data_dir: args.data_dir,
        listen: args.listen,
        nats: args.nats,
        max_in_flight: args.max_in_flight,
        command_timeout: Duration::from_secs(args.command_timeout_secs.max(1)),
        journal: FjallJournalConfig {
            group_commit: !args.no_group_commit,
            linger: Duration::from_micros(args.group_commit_linger_us),
            ..FjallJournalConfig::default()
        },
        node: NodeConfig {
            entities: EntitySettings {
                snapshot_every: args.snapshot_every,
                idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(1)),
                idle_check_interval: Duration::from_secs(args.idle_timeout_secs.clamp(1, 15)),
                ..EntitySettings::default()
            },
            brain_threads: args.brain_threads.max(1),
            routing: DeskSettings {
                presence_grace_ms: args.presence_grace_secs.saturating_mul(1000),
                ..DeskSettings::default()
            },
            ..NodeConfig::default()
        },
    };
    // Listen for SIGTERM/ctrl-c before anything else, so a stop during start-up is orderly too.
    let stop = tokio::spawn(wait_for_stop_signal());
    let (brain, commerce) = build_brain(args_brain, knowledge, tenant_intents)?;
    let config = ServeConfig {
        commerce: commerce.map(crest_infra::http::orders::CommercePort::new),
        ..config
    };
    let running = server::start(config, Arc::new(brain))
        .await
        .map_err(|error| error.to_string())?;
    if !args.no_demo {
        match crest_infra::demo::seed(&running.node).await {
            Ok(new_messages) => tracing::info!(new_messages, "demo tenant seeded"),
            Err(error) => tracing::warn!(%error, "demo data not seeded"),
        }
    }
    if !args.no_demo {
        match crest_infra::demo::issue_keys(&running.access).await {
            Ok(keys) => {
                println!(
                    "demo tenant keys for this run (stored only as hashes; earlier runs' are revoked):"
                );
                for key in &keys {
                    println!("  {:<12} {}", key.label, key.key);
                }
                if let Some(page) = keys.iter().find(|key| key.label == "web page") {
                    println!("web chat page: http://{}/#key={}", running.addr, page.key);
                }
                println!(
                    "consoles: http://{}/console/ (tenant demo, user mei, the `login mei` password; \
                     tom is a supervisor; admins sign in with the admin key)",
                    running.addr
                );
                if let Some(widget) = keys.iter().find(|key| key.label == "widget token") {
                    println!(
                        "widget demo shop: http://{}/widget/demo.html?tenant=demo&token={}",
                        running.addr, widget.key
                    );
                }
                if let Some(admin) = keys.iter().find(|key| key.label == "admin") {
                    println!(
                        "try: curl -H 'Authorization: Bearer {}' http://{}/v1/tenants/demo/routing-table",
                        admin.key, running.addr
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "demo keys not issued"),
        }
    }
    println!("crest listening on http://{}", running.addr);
    let _ = stop.await;
    tracing::info!("stopping: draining requests, publishing events, flushing the journal");
    running.stop().await.map_err(|error| error.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

/// The operator's token: `--operator-token-file`, else `CREST_OPERATOR_TOKEN`, else none.
fn operator_token(
    file: Option<&std::path::Path>,
) -> Result<Option<crest_infra::access::OperatorToken>, String> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path).map_err(|error| {
            format!(
                "cannot read --operator-token-file {}: {error}",
                path.display()
            )
        })?,
        None => match std::env::var("CREST_OPERATOR_TOKEN") {
            Ok(text) if !text.trim().is_empty() => text,
            _ => {
                tracing::warn!(
                    "no operator token (CREST_OPERATOR_TOKEN or --operator-token-file): only existing tenant keys can call the API"
                );
                return Ok(None);
            }
        },
    };
    crest_infra::access::OperatorToken::new(&text).map(Some)
}

/// The brain's options of `crest serve`.
struct BrainArgs {
    intent_model: Option<PathBuf>,
    commerce_url: Option<String>,
    commerce_token: Option<String>,
    llm_url: Option<String>,
    llm_model: Option<String>,
    llm_key: Option<String>,
    llm_timeout: Duration,
}

/// Checks the brain's options now (a bad model file or URL is a start-up error) and builds the brain
/// in the background (training the default model takes a moment; the node starts meanwhile). The
/// merchant's commerce adapter, if one is configured, comes back too (the consoles show orders).
fn build_brain(
    args: BrainArgs,
    knowledge: Arc<crest_brain::kb::KnowledgeBases>,
    tenant_intents: Arc<crest_brain::intents::TenantModels>,
) -> Result<(DeferredBrain, Option<Arc<dyn Commerce>>), String> {
    let model = match &args.intent_model {
        Some(path) => Some(
            TextClassifier::load(path)
                .map_err(|error| format!("--intent-model {}: {error}", path.display()))?,
        ),
        None => None,
    };
    let commerce: Option<Arc<dyn Commerce>> = match &args.commerce_url {
        Some(base_url) => Some(Arc::new(
            HttpCommerce::new(HttpCommerceConfig {
                base_url: base_url.clone(),
                bearer_token: args.commerce_token.clone(),
                ..HttpCommerceConfig::default()
            })
            .map_err(|error| format!("--commerce-url {base_url}: {error}"))?,
        )),
        None => None,
    };
    let for_api = commerce.clone();
    let llm = match (&args.llm_url, &args.llm_model) {
        (Some(base_url), Some(model)) => Some(
            LlmClient::new(LlmConfig {
                base_url: base_url.clone(),
                model: model.clone(),
                api_key: args.llm_key.clone(),
                timeout: args.llm_timeout,
                ..LlmConfig::default()
            })
            .map_err(|error| format!("--llm-url {base_url}: {error}"))?,
        ),
        _ => None,
    };
    let brain = DeferredBrain::build_in_background(move || {
        let model = match model {
            Some(model) => model,
            None => engine::train_default_intent_model()?,
        };
        let mut brain = engine::Engine::new(model)?
            .with_knowledge(knowledge)
            .with_tenant_intents(tenant_intents);
        if let Some(commerce) = commerce {
            brain = brain.with_commerce(commerce);
        }
        if let Some(llm) = llm {
            brain = brain.with_llm(llm);
        }
        Ok(EngineBrain::new(Arc::new(brain)))
    });
    Ok((brain, for_api))
}

async fn wait_for_stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM; ctrl-c still works");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Appends one event at a time to `streams` streams round-robin and prints `acked <stream> <seq>`
/// after each durable append, until killed.
async fn journal_writer(data_dir: PathBuf, streams: usize) -> Result<(), String> {
    use crest_actors::ports::journal::EventJournal;
    use crest_infra::journal::contract;
    use std::io::Write;

    let registry = prometheus::Registry::new();
    let journal = crest_infra::journal::FjallJournal::open(
        &data_dir,
        FjallJournalConfig::default(),
        &registry,
    )
    .map_err(|error| error.to_string())?;
    let tenant = contract::fresh_tenant();
    let names: Vec<_> = (0..streams.max(1))
        .map(|_| contract::fresh_stream(&tenant))
        .collect();
    let mut heads = vec![0_u64; names.len()];
    let mut stdout = std::io::stdout().lock();
    loop {
        for (stream, head) in names.iter().zip(heads.iter_mut()) {
            let events = contract::events(stream, *head + 1, 1);
            journal
                .append(stream, *head, events)
                .await
                .map_err(|error| error.to_string())?;
            *head += 1;
            writeln!(stdout, "acked {stream} {head}").map_err(|error| error.to_string())?;
            stdout.flush().map_err(|error| error.to_string())?;
        }
    }
}
