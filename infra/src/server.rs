//! Starting and stopping a whole node: journal, bus, actors and the HTTP API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::vault::{SealedJournal, Vault};
use std::time::Duration;

use crest_actors::ports::brain::Brain;
use crest_actors::ports::bus::EventBus;
use crest_actors::ports::journal::EventJournal;
use crest_actors::shard::remote::Ownership;
use crest_actors::{Node, NodeConfig};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::bus::{InProcessBus, NatsBus};
use crate::cluster::{
    Cluster, ClusterConfig, ClusterMetrics, FencedJournal, NatsShardLink, NodeHost,
};
use crate::http::{AppParts, AppState, Projections, router};
use crate::journal::{FjallJournal, FjallJournalConfig};
use crate::projections::business::BusinessMetrics;
use crate::projections::quality::{QualityInspection, Rules};
use crate::projections::runner::{Feed, Runner, RunnerMetrics};
use crate::projections::tickets::TicketBoard;
use crate::projections::voc::VoiceOfCustomer;
use crate::projections::{Projection, TenantLabel};
use crate::telemetry::Telemetry;

/// How to run a node.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where the embedded journal lives.
    pub data_dir: PathBuf,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// NATS URL; `None` uses the in-process bus.
    pub nats: Option<String>,
    /// Most commands in flight before answering 503.
    pub max_in_flight: usize,
    /// Longest wait for an acknowledgement.
    pub command_timeout: Duration,
    /// Journal tuning.
    pub journal: FjallJournalConfig,
    /// Actor tuning.
    pub node: NodeConfig,
    /// Whether metrics carry the tenant label (`false`: every tenant is `all`).
    pub metrics_tenant_label: bool,
    /// Quality-inspection rules (JSON); `None` uses the shipped rules.
    pub quality_rules: Option<crate::projections::quality::Rules>,
    /// Which journal holds the events.
    pub backend: JournalBackend,
    /// Membership of a cluster (`None`: a node alone, serving every shard).
    pub cluster: Option<ClusterSettings>,
    /// The operator's credential (`None`: only tenant keys work; nobody can create the first).
    pub operator_token: Option<crate::access::OperatorToken>,
    /// How long a login session lasts.
    pub session_ttl: Duration,
    /// Message rates and WebSocket caps.
    pub limits: crate::http::limits::LimitSettings,
    /// HTTPS and WSS with this certificate and key (`None`: plain HTTP).
    pub tls: Option<crate::tls::TlsFiles>,
    /// The master keys that wrap the customers' keys (the embedded journal seals customers'
    /// texts with those).
    pub master_key: crate::vault::MasterKeySource,
    /// The cipher of new customer keys.
    pub pii_cipher: crate::vault::CipherKind,
    /// The merchant's orders and parcels for the consoles (`None`: the embedded demo data, as the
    /// bot uses without `--commerce-url`).
    pub commerce: Option<crate::http::orders::CommercePort>,
    /// The search index of the tenants' own knowledge-base documents: the node fills it from the
    /// journal and the API's uploads, the bot's engine answers from it (give both the same one,
    /// see [`crest_brain::engine::Engine::with_knowledge`]).
    pub knowledge: Arc<crest_brain::kb::KnowledgeBases>,
    /// The intent models tenants switched to: the node installs them, the bot's engine predicts
    /// with them (give both the same one, see
    /// [`crest_brain::engine::Engine::with_tenant_intents`]).
    pub tenant_intents: Arc<crest_brain::intents::TenantModels>,
    /// How often the proactive silence timers are checked (default
    /// [`crate::proactive::SILENCE_TICK`]).
    pub silence_tick: Duration,
}

/// Which journal a node writes to.
#[derive(Debug, Clone, Default)]
pub enum JournalBackend {
    /// The embedded journal under the data directory (a node alone).
    #[default]
    Fjall,
    /// JetStream streams on the NATS servers of `--nats` (shared by a cluster).
    JetStream {
        /// Replicas of the journal's streams (1, or 3 on a NATS cluster).
        replicas: usize,
    },
    /// ScyllaDB (shared by a cluster).
    Scylla(Box<crate::journal::ScyllaJournalConfig>),
}

/// How a node takes part in a cluster.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// The node's name (unique in the cluster).
    pub node: String,
    /// The node's HTTP address as the others reach it.
    pub url: String,
    /// Replicas of the cluster's buckets (1, or 3 on a NATS cluster).
    pub replicas: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            nats: None,
            max_in_flight: 8192,
            command_timeout: Duration::from_secs(10),
            journal: FjallJournalConfig::default(),
            node: NodeConfig::default(),
            metrics_tenant_label: true,
            quality_rules: None,
            backend: JournalBackend::Fjall,
            cluster: None,
            operator_token: None,
            session_ttl: crate::access::DEFAULT_SESSION_TTL,
            limits: crate::http::limits::LimitSettings::default(),
            tls: None,
            master_key: crate::vault::MasterKeySource::default(),
            pii_cipher: crate::vault::CipherKind::Aes256Gcm,
            commerce: None,
            knowledge: Arc::new(crest_brain::kb::KnowledgeBases::new(
                crest_brain::engine::engine_kb_config(),
            )),
            tenant_intents: Arc::default(),
            silence_tick: crate::proactive::SILENCE_TICK,
        }
    }
}

/// Why a node could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Metrics registration failed.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The journal could not be opened or flushed.
    #[error("journal in {dir}: {source}")]
    Journal {
        /// The data directory.
        dir: String,
        /// What failed.
        source: crest_actors::ports::JournalError,
    },
    /// NATS was unreachable.
    #[error(transparent)]
    Nats(#[from] crate::bus::nats::NatsBusError),
    /// The configuration cannot work (explained).
    #[error("{0}")]
    Config(String),
    /// The cluster could not be joined.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// The actors did not start.
    #[error(transparent)]
    Node(#[from] crest_actors::NodeError),
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The listen address was unusable.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
}

/// A running node with its HTTP server.
#[derive(Debug)]
pub struct RunningServer {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// The node.
    pub node: Arc<Node>,
    /// Credentials (the demo seeding issues its keys through it).
    pub access: crate::access::Access,
    /// The HTTP API's router, to drive in-process (tests and fuzzing) without a socket.
    pub app: axum::Router,
    /// The embedded journal, closed at stop (`None` with a shared journal).
    journal: Option<FjallJournal>,
    /// This node's membership of its cluster.
    cluster: Option<Arc<Cluster>>,
    /// Channel connections (their outboxes stop before the journal closes).
    channels: Arc<crate::channels::ChannelStore>,
    /// The proactive silence timers: they hold the node, so they stop before it does.
    silence_timers: tokio::task::JoinHandle<()>,
    /// The projection runner and its bus subscription (they hold the journal until stopped).
    background: Vec<tokio::task::JoinHandle<()>>,
    shutdown: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Opens the journal, connects the bus, recovers, and starts serving HTTP.
pub async fn start(
    config: ServeConfig,
    brain: Arc<dyn Brain>,
) -> Result<RunningServer, ServeError> {
    // Unusable TLS files fail the start before anything is opened.
    let tls = config.tls.as_ref().map(crate::tls::acceptor).transpose()?;
    let telemetry = Telemetry::new()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|error| ServeError::Journal {
        dir: config.data_dir.display().to_string(),
        source: crest_actors::ports::JournalError::storage(
            crest_actors::ports::StorageErrorKind::Open,
            error.to_string(),
        ),
    })?;
    let opening = std::time::Instant::now();
    let masters = Arc::new(
        crate::vault::Keyring::load(&config.master_key, &config.data_dir)
            .map_err(|error| ServeError::Config(error.to_string()))?,
    );
    let (journal, mut shared_journal, mut vault) =
        Box::pin(open_journal(&config, &masters, &telemetry.registry)).await?;
    tracing::info!(elapsed_ms = opening.elapsed().as_millis(), "journal opened");
    // The projections subscribe before the node starts, so nothing it republishes is missed.
    let (feed_sender, feed) = tokio::sync::mpsc::channel(crate::projections::runner::FEED_CAPACITY);
    let mut background = Vec::new();
    let shared_master_key = !matches!(config.master_key, crate::vault::MasterKeySource::DataDir);
    if vault.is_none() && !shared_master_key {
        tracing::warn!(
            "customers' texts are stored in clear: a shared journal seals them only when every node is given the same master key (--master-key-file or CREST_MASTER_KEY)"
        );
    }
    if vault.is_none()
        && shared_master_key
        && let Some(url) = &config.nats
    {
        // A shared journal: the customers' keys live in a JetStream bucket every node shares.
        let replicas = match &config.backend {
            JournalBackend::JetStream { replicas } => *replicas,
            _ => config
                .cluster
                .as_ref()
                .map_or(1, |cluster| cluster.replicas),
        };
        let client = async_nats::ConnectOptions::new()
            .name("crest-vault")
            .connect(crate::bus::nats::server_list(url))
            .await
            .map_err(|error| ServeError::Config(format!("cannot reach NATS at {url}: {error}")))?;
        let storage = crate::vault::JetStreamVaultStorage::open(client, replicas)
            .await
            .map_err(|error| ServeError::Config(format!("PII vault bucket: {error}")))?;
        let shared_vault = Arc::new(Vault::with_keyring(
            Arc::new(storage.clone()),
            (*masters).clone(),
            config.pii_cipher,
        ));
        background.push(storage.follow(&shared_vault));
        rewrap_if_rotating(&shared_vault, &masters);
        shared_journal = Arc::new(SealedJournal::new(
            shared_journal,
            Arc::clone(&shared_vault),
        ));
        vault = Some(shared_vault);
    }
    let bus: Arc<dyn EventBus> = match &config.nats {
        Some(url) => {
            let nats = NatsBus::connect(url).await?;
            background.push(follow_nats(nats.subscribe().await?, feed_sender));
            Arc::new(nats)
        }
        None => {
            let bus = InProcessBus::default();
            background.push(follow_in_process(bus.subscribe(), feed_sender));
            Arc::new(bus)
        }
    };
    let (projections, runner, cluster_business) = start_projections(
        Arc::clone(&shared_journal),
        &telemetry.registry,
        if config.metrics_tenant_label {
            TenantLabel::PerTenant
        } else {
            TenantLabel::Dropped
        },
        config
            .quality_rules
            .clone()
            .unwrap_or_else(Rules::default_rules),
        feed,
        config.cluster.is_some(),
    )?;
    background.push(runner);
    let mut node_config = config.node.clone();
    let mut node_journal = Arc::clone(&shared_journal);
    let cluster_client = match (&config.cluster, &config.nats) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(ServeError::Config(
                "a cluster node needs --nats (membership, leases and commands travel over NATS)"
                    .to_owned(),
            ));
        }
        (Some(settings), Some(url)) => {
            let connecting = async_nats::ConnectOptions::new()
                .name("crest-cluster")
                .connect(crate::bus::nats::server_list(url));
            let client = connecting.await.map_err(|error| {
                ServeError::Config(format!("cannot reach NATS at {url}: {error}"))
            })?;
            let link = NatsShardLink::new(client.clone(), CLUSTER_PREFIX, config.command_timeout);
            let ownership = Arc::new(Ownership::new(Arc::new(link), config.command_timeout));
            let metrics = ClusterMetrics::new(&telemetry.registry)?;
            // Entities append only while their shard is served here.
            node_journal = Arc::new(FencedJournal::new(
                node_journal,
                Arc::clone(&ownership),
                metrics.fenced_appends.clone(),
            ));
            node_config.cluster = Some(ownership);
            node_config.name = settings.node.clone();
            node_config.remote_events = Some(Arc::new(crate::bus::nats::NatsRemoteEvents::new(
                client.clone(),
            )));
            Some((client, metrics))
        }
    };
    let limiters = Arc::new(crate::http::limits::Limiters::new(config.limits));
    let access = crate::access::Access {
        store: Arc::new(crate::access::AccessStore::new(Arc::clone(&shared_journal))),
        operator: config.operator_token.clone(),
        session_ttl: config.session_ttl,
        audit: Arc::new(crate::access::AuditLog::new(Arc::clone(&shared_journal))),
        masters,
    };
    // The tenants' documents are indexed before the bot answers anything.
    let knowledge = Arc::new(crate::knowledge::KnowledgeStore::new(
        Arc::clone(&shared_journal),
        Arc::clone(&config.knowledge),
    ));
    let indexing = std::time::Instant::now();
    let kb_tenants = knowledge
        .load()
        .await
        .map_err(|source| ServeError::Journal {
            dir: config.data_dir.display().to_string(),
            source,
        })?;
    tracing::info!(
        tenants = kb_tenants,
        elapsed_ms = indexing.elapsed().as_millis(),
        "knowledge bases indexed"
    );
    background.push(Arc::clone(&knowledge).follow());
    // Tenants' own intent models are rebuilt in the background (training takes seconds); until
    // then a tenant's bot uses the default model.
    let intents = Arc::new(crate::intents::IntentStore::new(
        Arc::clone(&shared_journal),
        Arc::clone(&knowledge),
        Arc::clone(&config.tenant_intents),
    ));
    background.push(Arc::clone(&intents).follow());
    // Lead policies are installed before conversations answer anything.
    let lead_policies = Arc::new(crest_actors::conversation::leads::LeadPolicies::default());
    let leads = Arc::new(crate::leads::LeadPolicyStore::new(
        Arc::clone(&shared_journal),
        Arc::clone(&knowledge),
        Arc::clone(&lead_policies),
    ));
    leads.load().await.map_err(|source| ServeError::Journal {
        dir: config.data_dir.display().to_string(),
        source,
    })?;
    background.push(Arc::clone(&leads).follow());
    node_config.lead_policies = lead_policies;
    // Channel connections load (and their outboxes recover) before the reactor runs: it hands
    // them the replies it recovers. In a cluster each outbox runs on its shard's owner, so none
    // starts before the node is given shards (see `channels`).
    let channels = Arc::new(crate::channels::ChannelStore::new(
        Arc::clone(&shared_journal),
        Arc::clone(&access.masters),
        crate::channels::ChannelMetrics::new(&telemetry.registry)?,
        node_config.cluster.clone(),
    ));
    let channel_count = channels
        .load()
        .await
        .map_err(|source| ServeError::Journal {
            dir: config.data_dir.display().to_string(),
            source,
        })?;
    if channel_count > 0 {
        tracing::info!(channels = channel_count, "channel connections loaded");
    }
    background.push(Arc::clone(&channels).follow());
    node_config.outbound = Some(Arc::clone(&channels) as Arc<dyn crest_actors::ports::Outbound>);
    let node = Arc::new(
        Box::pin(Node::start(
            node_journal,
            bus,
            brain,
            &telemetry.registry,
            node_config,
        ))
        .await?,
    );
    // WeChat outboxes open callback tickets on the node.
    channels.attach_node(&node);
    let cluster = match (&config.cluster, cluster_client) {
        (Some(settings), Some((client, metrics))) => {
            let host = NodeHost::new(client.clone(), CLUSTER_PREFIX, Arc::clone(&node));
            let mut membership = ClusterConfig::new(settings.node.clone(), settings.url.clone());
            membership.prefix = CLUSTER_PREFIX.to_owned();
            membership.replicas = settings.replicas;
            if let Some(runner) = cluster_business {
                background.push(crate::projections::cluster::follow(
                    async_nats::jetstream::new(client.clone()),
                    Arc::clone(&node),
                    runner,
                ));
            }
            Some(Arc::new(
                Box::pin(Cluster::join_with_metrics(
                    client,
                    membership,
                    Arc::new(host),
                    metrics,
                ))
                .await?,
            ))
        }
        _ => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: config.listen,
        source,
    })?;
    let proactive = Arc::new(crate::proactive::ProactiveService::new(
        Arc::clone(&shared_journal),
        Arc::clone(&node),
        Arc::clone(&channels),
        crate::proactive::ProactiveMetrics::new(&telemetry.registry)?,
    ));
    let silence_timers = crate::proactive::watch_silences(
        Arc::clone(&proactive),
        Arc::clone(&projections.silence),
        config.silence_tick,
    );
    let state = AppState::new(AppParts {
        node: Arc::clone(&node),
        telemetry,
        admission: Arc::new(Semaphore::new(config.max_in_flight)),
        command_timeout: config.command_timeout,
        projections,
        cluster: cluster.clone(),
        access: access.clone(),
        limits: Arc::clone(&limiters),
        tls: tls.is_some(),
        vault,
        commerce: config
            .commerce
            .clone()
            .unwrap_or_else(crate::http::orders::CommercePort::demo),
        knowledge,
        intents,
        leads,
        channels: Arc::clone(&channels),
        proactive: Arc::clone(&proactive),
    });
    background.push(forget_idle_limits(Arc::clone(&limiters)));
    let (shutdown, mut shutdown_signal) = tokio::sync::watch::channel(false);
    let app = router(state);
    let in_process = app.clone();
    let stopped = async move {
        let _ = shutdown_signal.wait_for(|stop| *stop).await;
    };
    let server = match tls {
        Some(acceptor) => {
            let listener = crate::tls::TlsListener::new(listener, acceptor).map_err(|source| {
                ServeError::Listen {
                    addr: config.listen,
                    source,
                }
            })?;
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            })
        }
        None => tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
        }),
    };
    tracing::info!(%addr, bus = if config.nats.is_some() { "nats" } else { "inprocess" }, tls = config.tls.is_some(), "crest is serving");
    Ok(RunningServer {
        addr,
        app: in_process,
        node,
        access,
        journal,
        cluster,
        channels,
        silence_timers,
        background,
        shutdown,
        server,
    })
}

impl RunningServer {
    /// Stops accepting requests, lets in-flight ones finish, stops the actors, publishes what the
    /// outbox holds and flushes the journal.
    pub async fn stop(self) -> Result<(), ServeError> {
        // The in-process router and the silence timers hold the node too: let them go first.
        drop(self.app);
        self.silence_timers.abort();
        let _ = self.silence_timers.await;
        let _ = self.shutdown.send(true);
        // WebSocket streams never end by themselves: give HTTP a bounded drain.
        let _ = tokio::time::timeout(Duration::from_secs(10), self.server).await;
        let journal_error = |source| ServeError::Journal {
            dir: "journal".to_owned(),
            source,
        };
        // In a cluster, hand every shard over (its leases given back at once rather than left to
        // run out) before the actors stop.
        if let Some(cluster) = &self.cluster {
            cluster.leave().await;
        }
        // Connection tasks that served the last requests may still hold the router's state for a
        // moment after the server future ends: wait for them (bounded) so the node stops whole.
        let mut node = self.node;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match Arc::try_unwrap(node) {
                Ok(owned) => {
                    owned.shutdown().await.map_err(journal_error)?;
                    break;
                }
                Err(shared) if tokio::time::Instant::now() < deadline => {
                    node = shared;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(shared) => {
                    // A straggling request still holds the node: flush what is journaled anyway.
                    tracing::warn!(
                        references = Arc::strong_count(&shared),
                        "node still referenced at shutdown; flushing journal only"
                    );
                    shared.journal().flush().await.map_err(journal_error)?;
                    break;
                }
            }
        }
        self.channels.stop();
        for task in &self.background {
            task.abort();
        }
        for task in self.background {
            let _ = task.await;
        }
        match self.journal {
            Some(journal) => journal.close().map_err(journal_error),
            None => Ok(()),
        }
    }
}

/// Every minute, forgets the rate state of idle customers (bounded memory).
fn forget_idle_limits(limiters: Arc<crate::http::limits::Limiters>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            limiters.forget_idle();
        }
    })
}

/// Subject and bucket prefix of the cluster's traffic on NATS.
const CLUSTER_PREFIX: &str = "crest";

/// Opens the configured journal: the embedded one (returned too, to be closed at stop) or a shared
/// one.
/// The journal a node writes to: the embedded one (also returned as itself, for flushing and its
/// statistics) with customers' texts sealed through the vault (also returned), or a shared one.
async fn open_journal(
    config: &ServeConfig,
    masters: &crate::vault::Keyring,
    registry: &prometheus::Registry,
) -> Result<
    (
        Option<FjallJournal>,
        Arc<dyn EventJournal>,
        Option<Arc<Vault>>,
    ),
    ServeError,
> {
    let failed = |dir: &str| {
        let dir = dir.to_owned();
        move |source| ServeError::Journal { dir, source }
    };
    match &config.backend {
        JournalBackend::Fjall => {
            let journal_dir = config.data_dir.join("journal");
            let journal = FjallJournal::open(&journal_dir, config.journal.clone(), registry)
                .map_err(failed(&journal_dir.display().to_string()))?;
            let vault = open_vault(config, masters.clone())?;
            let shared: Arc<dyn EventJournal> = Arc::new(SealedJournal::new(
                Arc::new(journal.clone()),
                Arc::clone(&vault),
            ));
            Ok((Some(journal), shared, Some(vault)))
        }
        JournalBackend::JetStream { replicas } => {
            let Some(url) = &config.nats else {
                return Err(ServeError::Config(
                    "--journal jetstream needs --nats (the journal's streams live there)"
                        .to_owned(),
                ));
            };
            let journal_config = crate::journal::JetStreamJournalConfig {
                replicas: *replicas,
                ..crate::journal::JetStreamJournalConfig::default()
            };
            // NATS servers started together with the nodes (a cluster's first start, a restart of
            // everything) answer JetStream requests only once their meta leader is elected and the
            // streams' replicas formed: keep trying for a minute before giving up.
            let deadline = std::time::Instant::now() + JETSTREAM_OPEN_PATIENCE;
            let mut pause = std::time::Duration::from_millis(500);
            let journal = loop {
                match crate::journal::JetStreamJournal::connect(
                    url,
                    journal_config.clone(),
                    registry,
                )
                .await
                {
                    Ok(journal) => break journal,
                    Err(error) if std::time::Instant::now() + pause < deadline => {
                        tracing::warn!(%error, retry_in_ms = pause.as_millis(), "journal not open yet");
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(std::time::Duration::from_secs(4));
                    }
                    Err(error) => return Err(failed(url)(error)),
                }
            };
            Ok((None, Arc::new(journal), None))
        }
        JournalBackend::Scylla(scylla) => {
            let journal = crate::journal::ScyllaJournal::connect((**scylla).clone(), registry)
                .await
                .map_err(failed("scylla"))?;
            Ok((None, Arc::new(journal), None))
        }
    }
}

/// The vault of a node alone, under `<data-dir>/vault`, with its master keys; when the key file
/// names older keys too, every customer key is rewrapped with the newest in the background.
fn open_vault(
    config: &ServeConfig,
    masters: crate::vault::Keyring,
) -> Result<Arc<Vault>, ServeError> {
    let dir = config.data_dir.join("vault");
    let storage = crate::vault::FjallVaultStorage::open(&dir)
        .map_err(|error| ServeError::Config(format!("PII vault in {}: {error}", dir.display())))?;
    let vault = Arc::new(Vault::with_keyring(
        Arc::new(storage),
        masters.clone(),
        config.pii_cipher,
    ));
    rewrap_if_rotating(&vault, &masters);
    Ok(vault)
}

/// When the key file names older master keys too, rewraps every customer key with the newest, in
/// the background.
fn rewrap_if_rotating(vault: &Arc<Vault>, masters: &crate::vault::Keyring) {
    if masters.len() > 1 {
        let rewrapping = Arc::clone(vault);
        tokio::spawn(async move {
            match rewrapping.rewrap_all().await {
                Ok(count) => tracing::info!(
                    count,
                    "customer keys rewrapped with the newest master key; older master keys may now be removed from the key file"
                ),
                Err(error) => tracing::error!(%error, "customer keys not rewrapped"),
            }
        });
    }
}

/// How long `crest serve --journal jetstream` keeps trying to open the journal at start.
const JETSTREAM_OPEN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// Registers the projections and starts the runner (rebuild from the journal, then the bus);
/// returns the read models the API serves and the runner's task.
pub fn start_projections(
    journal: Arc<dyn EventJournal>,
    registry: &prometheus::Registry,
    tenant_label: TenantLabel,
    rules: Rules,
    feed: tokio::sync::mpsc::Receiver<Feed>,
    clustered: bool,
) -> Result<(Projections, tokio::task::JoinHandle<()>, Option<Runner>), prometheus::Error> {
    let business: Arc<std::sync::Mutex<dyn Projection>> = Arc::new(std::sync::Mutex::new(
        BusinessMetrics::new(registry, tenant_label)?,
    ));
    let runner_metrics = RunnerMetrics::new(registry)?;
    // The read models every node keeps for its API: in a cluster their metrics stay unexported
    // (each node sees every event, so exported they would count each event once per node).
    let unexported = prometheus::Registry::new();
    let read_model_registry = if clustered { &unexported } else { registry };
    let quality = Arc::new(std::sync::Mutex::new(QualityInspection::new(
        rules.clone(),
        read_model_registry,
        tenant_label,
    )?));
    let voc = Arc::new(std::sync::Mutex::new(VoiceOfCustomer::new(
        read_model_registry,
        tenant_label,
    )?));
    let tickets = Arc::new(std::sync::Mutex::new(TicketBoard::new()));
    let silence = Arc::new(std::sync::Mutex::new(
        crate::proactive::silence::SilenceWatch::new(),
    ));
    let read_models = [
        Arc::clone(&quality) as Arc<std::sync::Mutex<dyn Projection>>,
        Arc::clone(&voc) as Arc<std::sync::Mutex<dyn Projection>>,
        Arc::clone(&tickets) as Arc<std::sync::Mutex<dyn Projection>>,
        Arc::clone(&silence) as Arc<std::sync::Mutex<dyn Projection>>,
    ];
    // In a cluster what Prometheus sums over the nodes (the business metrics, the quality scores
    // and rules fired, the VOC mentions) is counted once for all nodes, by the node serving shard
    // 0 (`projections::cluster`); every node exposes those families (at zero on the others).
    let (node_projections, cluster_business) = if clustered {
        let counted_once: Vec<Arc<std::sync::Mutex<dyn Projection>>> = vec![
            business,
            Arc::new(std::sync::Mutex::new(QualityInspection::new(
                rules,
                registry,
                tenant_label,
            )?)),
            Arc::new(std::sync::Mutex::new(VoiceOfCustomer::new(
                registry,
                tenant_label,
            )?)),
        ];
        (
            read_models.to_vec(),
            Some(Runner::new(
                Arc::clone(&journal),
                counted_once,
                runner_metrics.clone(),
            )),
        )
    } else {
        (std::iter::once(business).chain(read_models).collect(), None)
    };
    let runner = Runner::new(journal, node_projections, runner_metrics);
    let task = tokio::spawn(runner.run(feed));
    Ok((
        Projections {
            quality,
            voc,
            tickets,
            silence,
        },
        task,
        cluster_business,
    ))
}

/// Forwards the in-process bus to the projection feed.
fn follow_in_process(
    mut events: tokio::sync::broadcast::Receiver<Arc<crest_proto::Envelope>>,
    feed: tokio::sync::mpsc::Sender<Feed>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let item = match events.recv().await {
                Ok(envelope) => Feed::Event(envelope),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Feed::Lagged,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            if feed.send(item).await.is_err() {
                return;
            }
        }
    })
}

/// Forwards a NATS subscription to the projection feed.
fn follow_nats(
    mut subscriber: async_nats::Subscriber,
    feed: tokio::sync::mpsc::Sender<Feed>,
) -> tokio::task::JoinHandle<()> {
    use futures::StreamExt;
    tokio::spawn(async move {
        while let Some(message) = subscriber.next().await {
            let item = match crest_proto::Envelope::from_bytes(&message.payload) {
                Ok(envelope) => Feed::Event(Arc::new(envelope)),
                Err(error) => {
                    tracing::warn!(%error, "undecodable event on the bus; rescanning");
                    Feed::Lagged
                }
            };
            if feed.send(item).await.is_err() {
                return;
            }
        }
    })
}
