//! Channel connections: a tenant's webhooks and messaging platforms, signed both ways.
//!
//! A tenant's connections live in the stream `chan:<tenant>:config` ([`ChannelEvent`]), and the
//! node-wide directory `dir:system:channels` lists the tenants that have any. At start
//! [`ChannelStore::load`] reads both; [`ChannelStore::follow`] keeps reading what other nodes
//! wrote. The shared secret is journaled sealed (AES-256-GCM under a key derived from the master
//! key, the tenant and the channel's name), and opened in memory: inbound requests are checked
//! against it ([`signature`]) and outbound ones signed with it.
//!
//! **Inbound**: a signed message is accepted like `POST /v1/tenants/{t}/messages`, its channel
//! label being the channel's name.
//!
//! **Outbound**: the store is the node's [`Outbound`] port. It follows which channel each
//! conversation's customer last wrote through (the label of their latest message, when a channel
//! of that name is configured) and queues the bot's and agents' messages of those conversations
//! in the channel's durable [`outbox::Outbox`]. Captured leads go the same way to the tenant's CRM
//! integration ([`crm`]), stored here among the connections under a reserved name; how an entry
//! becomes a request is its outbox's [`transport::Transport`] (a `wechat_oa` channel with app
//! credentials: WeChat's customer-service API, see [`wechat`]).
//!
//! **In a cluster** every node accepts inbound messages and serves the configuration API. A
//! channel's outbox has one writer: the node serving the shard of its stream
//! (`chan:<tenant>:out.<name>`) runs it. The reactor of the node serving a conversation picks its
//! replies out as alone, and sends them to the outbox's node over the cluster link
//! ([`ShardRequest::OutboxQueue`], retried through hand-overs and failovers like any command);
//! the reply counts as handled once they are journaled there. A node starts the outboxes of the
//! shards it is given (at once, and on every follow as a safety net) and stops them before it
//! gives a shard up; the next owner reads the outbox's stream and carries on — a delivery in
//! flight at the move may be repeated, with the same `id`.

pub mod crm;
pub mod metrics;
pub mod outbox;
pub mod profiles;
pub mod signature;
pub mod transport;
pub mod wechat;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use crest_actors::ports::journal::{EventJournal, JournalError, read_all};
use crest_actors::ports::outbound::{
    DeadLetterRecord, Outbound, OutboundError, OutboundNews, OutboundReply, OutboxAnswer, OutboxOp,
};
use crest_proto::channels::{ChannelConfiguredV2, ChannelEvent, ChannelRemoved, OutboxQueued};
use crest_proto::events::ConversationEvent;
use crest_proto::routing::{ChannelsOpened, DirectoryEvent};
use crest_proto::{ConversationId, CustomerId, StreamId, TenantId};

use crest_actors::shard::remote::{Ownership, ShardReply, ShardRequest};
use crest_proto::slice::shard_of;

use crate::directory::{TenantDirectory, append_one};
use crate::vault::{CipherKind, Key, Keyring};
pub use metrics::ChannelMetrics;
use outbox::{DeadLetter, DeliverySettings, Outbox};
use transport::{CrmFormat, Payload, Transport};

/// How often [`ChannelStore::follow`] reads what other nodes wrote.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(2);

/// Default delivery attempts before a message is dead-lettered.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;

/// Default delay before the first retry (it doubles with each further one).
pub const DEFAULT_BACKOFF_BASE_MS: u64 = 500;

/// Most delivery attempts a channel may ask for.
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;

/// Accepted range of the first retry's delay, in milliseconds.
pub const BACKOFF_BASE_RANGE_MS: std::ops::RangeInclusive<u64> = 10..=600_000;

/// Accepted secret lengths, in bytes.
pub const SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=256;

/// Longest outbound URL.
pub const MAX_URL_LEN: usize = 2048;

/// Longest channel name.
pub const MAX_NAME_LEN: usize = 64;

/// Attempts of an append that keeps meeting another writer.
const APPEND_ATTEMPTS: usize = 5;

/// Shortest interval between two reads of a tenant's configurations for news naming a channel
/// unknown here (in a cluster).
const RECHECK_EVERY: Duration = Duration::from_millis(500);

/// Most conversations whose channel is remembered (a forgotten one is read back from its stream).
const ROUTES_LIMIT: usize = 100_000;

/// Nonce bytes of a sealed secret.
const NONCE_BYTES: usize = 12;

/// The kinds of channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// A merchant's own webhook pair.
    Webhook,
    /// A WeChat Official Account.
    WechatOa,
    /// The customer widget.
    Widget,
    /// The tenant's CRM integration (outbound only; configured through its own API, see
    /// [`crm`]).
    Crm,
}

impl ChannelKind {
    /// Parses `webhook`, `wechat_oa` or `widget` (the kinds the channels API accepts).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "webhook" => Some(Self::Webhook),
            "wechat_oa" => Some(Self::WechatOa),
            "widget" => Some(Self::Widget),
            _ => None,
        }
    }

    /// Parses a journaled kind: one of [`Self::parse`]'s, or `crm`.
    #[must_use]
    pub fn parse_stored(text: &str) -> Option<Self> {
        match text {
            "crm" => Some(Self::Crm),
            _ => Self::parse(text),
        }
    }

    /// The kind's name (the API's and the metrics' label).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::WechatOa => "wechat_oa",
            Self::Widget => "widget",
            Self::Crm => "crm",
        }
    }
}

/// A configuration as the API received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRequest {
    /// `webhook`, `wechat_oa` or `widget`.
    pub kind: String,
    /// The shared secret.
    pub secret: String,
    /// Where outbound messages go (`None`: inbound only).
    pub outbound_url: Option<String>,
    /// The platform profile.
    pub profile: Option<String>,
    /// Attempts before dead-lettering (default [`DEFAULT_MAX_ATTEMPTS`]).
    pub max_attempts: Option<u32>,
    /// The first retry's delay (default [`DEFAULT_BACKOFF_BASE_MS`]).
    pub backoff_base_ms: Option<u64>,
    /// The platform's app id (a WeChat Official Account's AppID).
    pub app_id: Option<String>,
    /// The platform's app secret (a WeChat Official Account's AppSecret).
    pub app_secret: Option<String>,
}

/// Longest app id and app secret.
pub const MAX_APP_CREDENTIAL_LEN: usize = 128;

/// Whether `name` is a valid channel name: 1-64 of lowercase a-z, 0-9, `-` and `_`, starting with a
/// letter or digit (it is a message's channel label and part of a stream name).
#[must_use]
pub fn name_is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.char_indices().all(|(index, c)| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || (index > 0 && matches!(c, '-' | '_'))
        })
}

/// Every reason `request` for channel `name` cannot be stored (empty: it can).
#[must_use]
pub fn validate(name: &str, request: &ChannelRequest) -> Vec<String> {
    let mut reasons = Vec::new();
    if !name_is_valid(name) {
        reasons.push(format!(
            "name must be 1-{MAX_NAME_LEN} characters of lowercase a-z, 0-9, '-' and '_', starting with a letter or digit"
        ));
    }
    if ChannelKind::parse(&request.kind).is_none() {
        reasons.push("kind must be webhook, wechat_oa or widget".to_owned());
    }
    if !SECRET_LEN.contains(&request.secret.len()) {
        reasons.push(format!(
            "secret must be {} to {} bytes",
            SECRET_LEN.start(),
            SECRET_LEN.end()
        ));
    }
    if request.secret.chars().any(char::is_control) {
        reasons.push("secret must not contain control characters".to_owned());
    }
    if let Some(url) = &request.outbound_url
        && let Err(reason) = check_url(url)
    {
        reasons.push(reason);
    }
    if let Some(profile) = &request.profile {
        let known = profiles::builtin();
        if known.get(profile).is_none() {
            reasons.push(format!("profile must be one of {}", known.names()));
        }
    }
    reasons.extend(check_app_credentials(request));
    if let Some(attempts) = request.max_attempts
        && !(1..=MAX_ATTEMPTS_LIMIT).contains(&attempts)
    {
        reasons.push(format!("max_attempts must be 1 to {MAX_ATTEMPTS_LIMIT}"));
    }
    if let Some(base) = request.backoff_base_ms
        && !BACKOFF_BASE_RANGE_MS.contains(&base)
    {
        reasons.push(format!(
            "backoff_base_ms must be {} to {}",
            BACKOFF_BASE_RANGE_MS.start(),
            BACKOFF_BASE_RANGE_MS.end()
        ));
    }
    reasons
}

/// A platform's app id and secret: both or neither, on a `wechat_oa` channel only.
fn check_app_credentials(request: &ChannelRequest) -> Vec<String> {
    let mut reasons = Vec::new();
    let given = (request.app_id.is_some(), request.app_secret.is_some());
    if given == (false, false) {
        return reasons;
    }
    if request.kind != ChannelKind::WechatOa.as_str() {
        reasons.push("app_id and app_secret are for wechat_oa channels only".to_owned());
    }
    if given != (true, true) {
        reasons.push("app_id and app_secret go together".to_owned());
    }
    if let Some(app_id) = &request.app_id
        && (app_id.is_empty()
            || app_id.len() > MAX_APP_CREDENTIAL_LEN
            || !app_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        reasons.push(format!(
            "app_id must be 1-{MAX_APP_CREDENTIAL_LEN} characters of A-Z, a-z, 0-9, '_' and '-'"
        ));
    }
    if let Some(app_secret) = &request.app_secret
        && (app_secret.is_empty()
            || app_secret.len() > MAX_APP_CREDENTIAL_LEN
            || !app_secret.chars().all(|c| c.is_ascii_graphic()))
    {
        reasons.push(format!(
            "app_secret must be 1-{MAX_APP_CREDENTIAL_LEN} visible ASCII characters"
        ));
    }
    reasons
}

fn check_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_LEN {
        return Err(format!(
            "outbound_url is longer than {MAX_URL_LEN} characters"
        ));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| "outbound_url must start with http:// or https://".to_owned())?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("outbound_url must name a host and contain no spaces".to_owned());
    }
    reqwest::Url::parse(url)
        .map(|_| ())
        .map_err(|error| format!("outbound_url is not a URL: {error}"))
}

/// A configured channel, its secret opened.
#[derive(Clone)]
pub struct ChannelConfig {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: ChannelKind,
    /// The opened secret (`None`: sealed under a master key this node does not have).
    pub secret: Option<Arc<[u8]>>,
    /// Where outbound messages go.
    pub outbound_url: Option<String>,
    /// The platform profile.
    pub profile: Option<String>,
    /// The platform's app id (a WeChat Official Account's AppID).
    pub app_id: Option<String>,
    /// The opened app secret (`None`: none configured, or sealed under a master key this node
    /// does not have).
    pub app_secret: Option<Arc<str>>,
    /// Attempts before dead-lettering.
    pub max_attempts: u32,
    /// The first retry's delay.
    pub backoff_base_ms: u64,
    /// Who configured it.
    pub configured_by: String,
    /// When (ms since the epoch).
    pub configured_at_ms: u64,
}

impl std::fmt::Debug for ChannelConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ChannelConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("outbound_url", &self.outbound_url)
            .finish_non_exhaustive()
    }
}

impl ChannelConfig {
    /// How the channel's outbox delivers; `None`: it has none (inbound only). A `wechat_oa`
    /// channel delivers through WeChat's API when it has an app id and an opened app secret
    /// (its [`DeliverySettings::wechat`] is set by the store), the others to their
    /// `outbound_url`, signed with their secret.
    fn delivery(&self) -> Option<DeliverySettings> {
        let (transport, url, secret) = match self.kind {
            ChannelKind::WechatOa => {
                let credentials = wechat::WechatCredentials::of(self)?;
                let secret = self.secret.clone().unwrap_or_else(|| Arc::from(Vec::new()));
                (Transport::Wechat, credentials.base_url, secret)
            }
            ChannelKind::Crm => (
                Transport::Crm(
                    self.profile
                        .as_deref()
                        .and_then(CrmFormat::parse)
                        .unwrap_or(CrmFormat::Generic),
                ),
                self.outbound_url.clone()?,
                Arc::clone(self.secret.as_ref()?),
            ),
            ChannelKind::Webhook | ChannelKind::Widget => (
                Transport::Webhook,
                self.outbound_url.clone()?,
                Arc::clone(self.secret.as_ref()?),
            ),
        };
        Some(DeliverySettings {
            kind: self.kind.as_str(),
            transport,
            url,
            secret,
            max_attempts: self.max_attempts,
            backoff_base: Duration::from_millis(self.backoff_base_ms),
            wechat: None,
        })
    }
}

/// A tenant's channels, folded from its stream.
#[derive(Debug, Default)]
struct TenantChannels {
    seq: u64,
    channels: BTreeMap<String, ChannelConfig>,
}

/// Why a channel request failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The request is invalid, for these reasons.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// No such channel.
    #[error("no such channel")]
    NotFound,
    /// Other writers kept changing the stream.
    #[error("the channels are being changed elsewhere; retry")]
    Busy,
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The secret could not be sealed.
    #[error("the secret cannot be sealed: {0}")]
    Sealing(String),
    /// The node running the channel's outbox (in a cluster) did not answer in time.
    #[error("the channel's outbox is not reachable now; retry: {0}")]
    Unreachable(String),
}

/// Which channel a conversation's customer last wrote through.
#[derive(Debug, Clone, Default)]
struct Route {
    customer: Option<CustomerId>,
    channel: Option<String>,
}

/// See the module's documentation.
pub struct ChannelStore {
    journal: Arc<dyn EventJournal>,
    masters: Arc<Keyring>,
    metrics: ChannelMetrics,
    http: reqwest::Client,
    /// In a cluster: which shards this node serves (outboxes run on their shard's owner).
    cluster: Option<Arc<Ownership>>,
    /// Wakes [`Self::follow`] when this node was given a shard.
    given: tokio::sync::Notify,
    /// In a cluster: when each tenant's configurations were last read for news naming a channel
    /// unknown here ([`Self::recheck`]).
    checked: Mutex<HashMap<TenantId, std::time::Instant>>,
    tenants: Mutex<HashMap<TenantId, TenantChannels>>,
    directory: TenantDirectory,
    routes: Mutex<HashMap<ConversationId, Route>>,
    outboxes: Mutex<HashMap<(TenantId, String), Arc<Outbox>>>,
    /// Serialises configuration changes and outbox starts.
    changes: tokio::sync::Mutex<()>,
    /// The WeChat channels' API clients.
    wechat: wechat::WechatClients,
    /// The node, once started (WeChat outboxes open callback tickets on it).
    node: wechat::NodeSlot,
}

impl std::fmt::Debug for ChannelStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ChannelStore")
            .field("cluster", &self.cluster.is_some())
            .finish_non_exhaustive()
    }
}

impl ChannelStore {
    /// A store over `journal`; in a cluster (`cluster`: the shards this node serves) it runs the
    /// outboxes of the shards served here only.
    pub fn new(
        journal: Arc<dyn EventJournal>,
        masters: Arc<Keyring>,
        metrics: ChannelMetrics,
        cluster: Option<Arc<Ownership>>,
    ) -> Self {
        // The embedded platform profiles are checked here, at start.
        let _profiles = profiles::builtin();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(outbox::MAX_IN_FLIGHT)
            .build()
            .unwrap_or_default();
        Self {
            journal,
            masters,
            metrics,
            wechat: wechat::WechatClients::new(http.clone()),
            node: Arc::new(std::sync::OnceLock::new()),
            http,
            cluster,
            given: tokio::sync::Notify::new(),
            checked: Mutex::new(HashMap::new()),
            tenants: Mutex::new(HashMap::new()),
            directory: TenantDirectory::new(
                StreamId::channel_directory(),
                |event| match event {
                    DirectoryEvent::ChannelsOpened(opened) => Some(opened.tenant),
                    _ => None,
                },
                |tenant| DirectoryEvent::ChannelsOpened(ChannelsOpened { tenant }),
            ),
            routes: Mutex::new(HashMap::new()),
            outboxes: Mutex::new(HashMap::new()),
            changes: tokio::sync::Mutex::new(()),
        }
    }

    /// Gives the outboxes the node they open callback tickets on (once it has started).
    pub fn attach_node(&self, node: &Arc<crest_actors::Node>) {
        let _ = self.node.set(Arc::downgrade(node));
    }

    /// The channels' metrics.
    #[must_use]
    pub fn metrics(&self) -> &ChannelMetrics {
        &self.metrics
    }

    /// Reads every listed tenant's channels and opens their outboxes (recovering what was queued);
    /// returns the number of channels.
    pub async fn load(&self) -> Result<usize, JournalError> {
        let _changing = self.changes.lock().await;
        let tenants = self.read_directory().await?;
        let mut count = 0;
        for tenant in tenants {
            let changed = self.read_tenant(&tenant).await?;
            count += self
                .lock_tenants()
                .get(&tenant)
                .map_or(0, |t| t.channels.len());
            for name in changed {
                self.sync_outbox(&tenant, &name).await?;
            }
        }
        Ok(count)
    }

    /// Keeps reading what other nodes wrote, every [`FOLLOW_EVERY`].
    pub fn follow(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(FOLLOW_EVERY);
            every.tick().await;
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    () = self.given.notified() => {}
                }
                if let Err(error) = self.load().await {
                    tracing::warn!(%error, "channels not refreshed");
                }
                if let Err(error) = self.place_outboxes().await {
                    tracing::warn!(%error, "channel outboxes not placed");
                }
            }
        })
    }

    /// Stops every outbox (what is queued stays in the journal).
    pub fn stop(&self) {
        let outboxes: Vec<Arc<Outbox>> = self
            .outboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, outbox)| outbox)
            .collect();
        for outbox in outboxes {
            outbox.stop();
        }
    }

    /// The channel `name` of `tenant`, if configured.
    pub async fn channel(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<ChannelConfig>, JournalError> {
        if name == crm::CRM_NAME {
            return Ok(None);
        }
        self.config_of(tenant, name).await
    }

    /// The configuration named `name` of `tenant` (a channel's, or the CRM integration's).
    async fn config_of(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<ChannelConfig>, JournalError> {
        if !self.lock_tenants().contains_key(tenant) {
            // Configured on another node since the last follow?
            self.refresh(tenant).await?;
        }
        Ok(self
            .lock_tenants()
            .get(tenant)
            .and_then(|channels| channels.channels.get(name).cloned()))
    }

    /// Every channel of `tenant`, by name.
    pub async fn list(&self, tenant: &TenantId) -> Result<Vec<ChannelConfig>, JournalError> {
        self.refresh(tenant).await?;
        Ok(self
            .lock_tenants()
            .get(tenant)
            .map(|channels| {
                channels
                    .channels
                    .values()
                    .filter(|config| config.kind != ChannelKind::Crm)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Messages pending and dead letters of a channel's outbox (zeros when it has none here).
    #[must_use]
    pub fn outbox_counts(&self, tenant: &TenantId, name: &str) -> (usize, usize) {
        self.outbox(tenant, name).map_or((0, 0), |outbox| {
            (outbox.pending(), outbox.dead_letter_count())
        })
    }

    /// Creates or replaces channel `name`; returns it and whether it is new.
    pub async fn configure(
        &self,
        tenant: &TenantId,
        name: &str,
        request: &ChannelRequest,
        configured_by: &str,
    ) -> Result<(ChannelConfig, bool), ChannelError> {
        let reasons = validate(name, request);
        if !reasons.is_empty() {
            return Err(ChannelError::Invalid(reasons));
        }
        let kind = ChannelKind::parse(&request.kind)
            .ok_or_else(|| ChannelError::Invalid(vec!["unknown kind".to_owned()]))?;
        self.store(tenant, name, kind, request, configured_by).await
    }

    /// Seals the secret and journals a validated configuration of `kind` under `name`.
    async fn store(
        &self,
        tenant: &TenantId,
        name: &str,
        kind: ChannelKind,
        request: &ChannelRequest,
        configured_by: &str,
    ) -> Result<(ChannelConfig, bool), ChannelError> {
        let master = self.masters.current();
        let sealed_secret = seal_secret(master, tenant, name, request.secret.as_bytes())?;
        let sealed_app_secret = request
            .app_secret
            .as_ref()
            .map(|app_secret| {
                seal_secret(
                    master,
                    tenant,
                    &app_secret_purpose(name),
                    app_secret.as_bytes(),
                )
            })
            .transpose()?;
        let event = ChannelEvent::Configured(ChannelConfiguredV2 {
            name: name.to_owned(),
            kind: kind.as_str().to_owned(),
            sealed_secret,
            master_id: master.id,
            outbound_url: request.outbound_url.clone(),
            profile: request.profile.clone(),
            max_attempts: request.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
            backoff_base_ms: request.backoff_base_ms.unwrap_or(DEFAULT_BACKOFF_BASE_MS),
            configured_by: configured_by.to_owned(),
            app_id: request.app_id.clone(),
            sealed_app_secret,
        });
        let _changing = self.changes.lock().await;
        self.list_in_directory(tenant).await?;
        let (existed, changed) = self.append_event(tenant, &event).await?;
        for changed_name in changed {
            self.sync_outbox(tenant, &changed_name).await?;
        }
        let config = self
            .lock_tenants()
            .get(tenant)
            .and_then(|channels| channels.channels.get(name).cloned())
            .ok_or(ChannelError::NotFound)?;
        Ok((config, !existed))
    }

    /// Removes channel `name`.
    pub async fn remove(
        &self,
        tenant: &TenantId,
        name: &str,
        removed_by: &str,
    ) -> Result<(), ChannelError> {
        if name == crm::CRM_NAME {
            return Err(ChannelError::NotFound);
        }
        self.remove_named(tenant, name, removed_by).await
    }

    /// The dead letters of channel `name`, oldest first.
    pub async fn dead_letters(
        &self,
        tenant: &TenantId,
        name: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, ChannelError> {
        if name == crm::CRM_NAME {
            return Err(ChannelError::NotFound);
        }
        self.dead_letters_named(tenant, name, limit).await
    }

    /// Queues dead letter `id` of channel `name` again; `NotFound` if there is none.
    pub async fn retry(
        &self,
        tenant: &TenantId,
        name: &str,
        id: &str,
        requeued_by: &str,
    ) -> Result<(), ChannelError> {
        if name == crm::CRM_NAME {
            return Err(ChannelError::NotFound);
        }
        self.retry_named(tenant, name, id, requeued_by).await
    }

    /// Removes the configuration `name` (a channel's or the CRM integration's).
    async fn remove_named(
        &self,
        tenant: &TenantId,
        name: &str,
        removed_by: &str,
    ) -> Result<(), ChannelError> {
        let _changing = self.changes.lock().await;
        self.refresh_locked(tenant).await?;
        let known = self
            .lock_tenants()
            .get(tenant)
            .is_some_and(|channels| channels.channels.contains_key(name));
        if !known {
            return Err(ChannelError::NotFound);
        }
        let event = ChannelEvent::Removed(ChannelRemoved {
            name: name.to_owned(),
            removed_by: removed_by.to_owned(),
        });
        let (_, changed) = self.append_event(tenant, &event).await?;
        for changed_name in changed {
            self.sync_outbox(tenant, &changed_name).await?;
        }
        Ok(())
    }

    /// The dead letters of the outbox of configuration `name`, oldest first.
    async fn dead_letters_named(
        &self,
        tenant: &TenantId,
        name: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, ChannelError> {
        if self.config_of(tenant, name).await?.is_none() {
            return Err(ChannelError::NotFound);
        }
        match self
            .run_op(tenant, name, OutboxOp::DeadLetters(limit))
            .await?
        {
            OutboxAnswer::DeadLetters(records) => Ok(records
                .into_iter()
                .map(|record| DeadLetter {
                    entry: record.entry,
                    attempts: record.attempts,
                    last_error: record.last_error,
                })
                .collect()),
            _ => Err(ChannelError::Unreachable("unexpected answer".to_owned())),
        }
    }

    /// Queues dead letter `id` of configuration `name` again; `NotFound` if there is none.
    async fn retry_named(
        &self,
        tenant: &TenantId,
        name: &str,
        id: &str,
        requeued_by: &str,
    ) -> Result<(), ChannelError> {
        if self.config_of(tenant, name).await?.is_none() {
            return Err(ChannelError::NotFound);
        }
        let op = OutboxOp::Requeue {
            id: id.to_owned(),
            by: requeued_by.to_owned(),
        };
        match self.run_op(tenant, name, op).await? {
            OutboxAnswer::Requeued(true) => Ok(()),
            _ => Err(ChannelError::NotFound),
        }
    }

    /// Runs `op` on channel `name`'s outbox: here if it runs here, else (in a cluster) at the
    /// node serving its shard, waiting through a hand-over or failover up to the command timeout.
    async fn run_op(
        &self,
        tenant: &TenantId,
        name: &str,
        op: OutboxOp,
    ) -> Result<OutboxAnswer, ChannelError> {
        let Some(ownership) = &self.cluster else {
            return self
                .op_here(tenant, name, op)
                .await
                .map_err(|error| ChannelError::Unreachable(error.0));
        };
        let request = ShardRequest::Outbox {
            tenant: tenant.clone(),
            channel: name.to_owned(),
            op,
        };
        let reply = ownership
            .route(request, |request| async move {
                let ShardRequest::Outbox {
                    tenant,
                    channel,
                    op,
                } = request
                else {
                    return request.unavailable();
                };
                ShardReply::Outbox(
                    self.op_here(&tenant, &channel, op)
                        .await
                        .map_err(|_| crest_actors::command::CommandError::Unavailable),
                )
            })
            .await;
        match reply {
            ShardReply::Outbox(Ok(answer)) => Ok(answer),
            ShardReply::Outbox(Err(error)) => Err(ChannelError::Unreachable(format!(
                "the outbox of {tenant}/{name} was not reached: {error}"
            ))),
            _ => Err(ChannelError::Unreachable("unexpected reply".to_owned())),
        }
    }

    /// Runs `op` on channel `name`'s outbox on this node (starting it if this node was given its
    /// shard a moment ago or the channel was configured elsewhere since the last follow); an
    /// error if it runs elsewhere.
    async fn op_here(
        &self,
        tenant: &TenantId,
        name: &str,
        op: OutboxOp,
    ) -> Result<OutboxAnswer, OutboundError> {
        let failed = |error: JournalError| OutboundError(error.to_string());
        if !self.runs_here(tenant, name) {
            return Err(OutboundError(format!(
                "the outbox of {tenant}/{name} runs elsewhere"
            )));
        }
        if self.outbox(tenant, name).is_none() {
            self.refresh(tenant).await.map_err(failed)?;
            let _changing = self.changes.lock().await;
            self.sync_outbox(tenant, name).await.map_err(failed)?;
        }
        let outbox = self.outbox(tenant, name);
        Ok(match (op, outbox) {
            // The channel does not deliver (any more): nothing to queue, no dead letters.
            (OutboxOp::Queue(_), None) => OutboxAnswer::Queued,
            (OutboxOp::DeadLetters(_), None) => OutboxAnswer::DeadLetters(Vec::new()),
            (OutboxOp::Requeue { .. }, None) => OutboxAnswer::Requeued(false),
            (OutboxOp::Queue(entries), Some(outbox)) => {
                outbox.queue(entries).await.map_err(failed)?;
                OutboxAnswer::Queued
            }
            (OutboxOp::DeadLetters(limit), Some(outbox)) => OutboxAnswer::DeadLetters(
                outbox
                    .dead_letters(limit)
                    .await
                    .map_err(failed)?
                    .into_iter()
                    .map(|dead| DeadLetterRecord {
                        entry: dead.entry,
                        attempts: dead.attempts,
                        last_error: dead.last_error,
                    })
                    .collect(),
            ),
            (OutboxOp::Requeue { id, by }, Some(outbox)) => {
                OutboxAnswer::Requeued(outbox.requeue(&id, &by).await.map_err(failed)?)
            }
        })
    }

    fn lock_tenants(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, TenantChannels>> {
        self.tenants.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn outbox(&self, tenant: &TenantId, name: &str) -> Option<Arc<Outbox>> {
        self.outboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(tenant.clone(), name.to_owned()))
            .cloned()
    }

    /// Reads `tenant`'s new events and brings the outboxes of the changed channels in line.
    async fn refresh(&self, tenant: &TenantId) -> Result<(), JournalError> {
        let _changing = self.changes.lock().await;
        self.refresh_locked(tenant).await
    }

    /// [`Self::refresh`] for a caller that holds `changes` (so no two callers start the same
    /// channel's outbox: one writer per outbox stream).
    async fn refresh_locked(&self, tenant: &TenantId) -> Result<(), JournalError> {
        let changed = self.read_tenant(tenant).await?;
        for name in changed {
            self.sync_outbox(tenant, &name).await?;
        }
        Ok(())
    }

    /// Applies `tenant`'s new events; returns the names of the channels they changed.
    async fn read_tenant(&self, tenant: &TenantId) -> Result<Vec<String>, JournalError> {
        let stream = StreamId::channels(tenant);
        let after = self.lock_tenants().get(tenant).map_or(0, |t| t.seq);
        let events = read_all(&*self.journal, &stream, after).await?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut decoded = Vec::with_capacity(events.len());
        for stored in events {
            let envelope = stored.envelope()?;
            let event = envelope
                .decode_event::<ChannelEvent>()
                .map_err(|error| JournalError::Codec(error.to_string()))?;
            decoded.push((envelope.seq, envelope.timestamp_ms, event));
        }
        let mut tenants = self.lock_tenants();
        let channels = tenants.entry(tenant.clone()).or_default();
        let mut changed = Vec::new();
        for (seq, at_ms, event) in decoded {
            if seq <= channels.seq {
                continue;
            }
            channels.seq = seq;
            match event {
                ChannelEvent::Configured(configured) => {
                    changed.push(configured.name.clone());
                    let config = self.opened(tenant, configured, at_ms);
                    channels.channels.insert(config.name.clone(), config);
                }
                ChannelEvent::Removed(removed) => {
                    channels.channels.remove(&removed.name);
                    changed.push(removed.name);
                }
            }
        }
        Ok(changed)
    }

    fn opened(
        &self,
        tenant: &TenantId,
        configured: ChannelConfiguredV2,
        at_ms: u64,
    ) -> ChannelConfig {
        let secret = self.masters.get(configured.master_id).and_then(|master| {
            open_secret(master, tenant, &configured.name, &configured.sealed_secret)
        });
        if secret.is_none() {
            tracing::error!(tenant = %tenant, channel = %configured.name, master_id = configured.master_id, "channel secret does not open: its master key is missing");
        }
        let app_secret = configured.sealed_app_secret.as_ref().and_then(|sealed| {
            let master = self.masters.get(configured.master_id)?;
            let opened = open_secret(
                master,
                tenant,
                &app_secret_purpose(&configured.name),
                sealed,
            )?;
            String::from_utf8(opened).ok().map(Arc::from)
        });
        ChannelConfig {
            kind: ChannelKind::parse_stored(&configured.kind).unwrap_or(ChannelKind::Webhook),
            name: configured.name,
            secret: secret.map(Arc::from),
            outbound_url: configured.outbound_url,
            profile: configured.profile,
            app_id: configured.app_id,
            app_secret,
            max_attempts: configured.max_attempts,
            backoff_base_ms: configured.backoff_base_ms,
            configured_by: configured.configured_by,
            configured_at_ms: at_ms,
        }
    }

    /// Starts, updates or stops the outbox of channel `name` to match its configuration.
    async fn sync_outbox(&self, tenant: &TenantId, name: &str) -> Result<(), JournalError> {
        let config = self
            .lock_tenants()
            .get(tenant)
            .and_then(|channels| channels.channels.get(name))
            .cloned();
        let delivery = config
            .as_ref()
            .and_then(|config| self.delivery_of(tenant, config))
            .filter(|_| self.runs_here(tenant, name));
        if config.is_none() {
            self.wechat.forget(tenant, name);
        }
        let key = (tenant.clone(), name.to_owned());
        let running = self.outbox(tenant, name);
        match (delivery, running) {
            (Some(settings), Some(outbox)) => outbox.update(settings),
            (Some(settings), None) => {
                let outbox = Outbox::open(
                    StreamId::channel_outbox(tenant, name),
                    Arc::clone(&self.journal),
                    self.http.clone(),
                    self.metrics.clone(),
                    settings,
                )
                .await?;
                self.outboxes
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(key, Arc::new(outbox));
            }
            (None, Some(outbox)) => {
                outbox.stop();
                self.outboxes
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&key);
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// How channel `config` of `tenant` delivers, with its WeChat client when it has one.
    fn delivery_of(&self, tenant: &TenantId, config: &ChannelConfig) -> Option<DeliverySettings> {
        let mut settings = config.delivery()?;
        if settings.transport == Transport::Wechat {
            settings.wechat = Some(Arc::new(wechat::WechatDelivery {
                client: self.wechat.client_for(tenant, config)?,
                profile: profiles::builtin().for_channel(config.kind, config.profile.as_deref()),
                channel: config.name.clone(),
                node: Arc::clone(&self.node),
            }));
        }
        Some(settings)
    }

    /// Appends `event` to `tenant`'s stream (retrying when another node wrote first) and applies
    /// it; returns whether the channel it names existed before, and every channel changed by the
    /// events read on the way (the event's own included).
    async fn append_event(
        &self,
        tenant: &TenantId,
        event: &ChannelEvent,
    ) -> Result<(bool, BTreeSet<String>), ChannelError> {
        let stream = StreamId::channels(tenant);
        let name = match event {
            ChannelEvent::Configured(configured) => configured.name.clone(),
            ChannelEvent::Removed(removed) => removed.name.clone(),
        };
        let mut changed = BTreeSet::new();
        for _ in 0..APPEND_ATTEMPTS {
            changed.extend(self.read_tenant(tenant).await?);
            let (expected, existed) = self
                .lock_tenants()
                .get(tenant)
                .map_or((0, false), |t| (t.seq, t.channels.contains_key(&name)));
            match append_one(&*self.journal, &stream, expected, event).await {
                Ok(()) => {
                    changed.extend(self.read_tenant(tenant).await?);
                    return Ok((existed, changed));
                }
                Err(JournalError::Conflict { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(ChannelError::Busy)
    }

    /// Reads the directory's new events; returns the tenants it lists.
    async fn read_directory(&self) -> Result<BTreeSet<TenantId>, JournalError> {
        self.directory.read(&*self.journal).await
    }

    /// Lists `tenant` in the directory unless it is already.
    async fn list_in_directory(&self, tenant: &TenantId) -> Result<(), ChannelError> {
        if self
            .directory
            .list(&*self.journal, tenant, APPEND_ATTEMPTS)
            .await?
        {
            Ok(())
        } else {
            Err(ChannelError::Busy)
        }
    }

    /// The channel a conversation's customer last wrote through, if a channel of that name is
    /// configured to deliver (an outbound URL, or WeChat app credentials) (so a message written now reaches them): read from the
    /// conversation's stream.
    pub async fn reply_channel(
        &self,
        conversation: &ConversationId,
    ) -> Result<Option<String>, JournalError> {
        let stream = StreamId::conversation(conversation);
        let events = read_all(&*self.journal, &stream, 0).await?;
        let mut last = None;
        for stored in events {
            let Ok(event) = stored.envelope()?.decode_event::<ConversationEvent>() else {
                continue;
            };
            match event {
                ConversationEvent::Started(started) => last = Some(started.channel),
                ConversationEvent::CustomerMessageReceived(received) => {
                    last = Some(received.channel);
                }
                _ => {}
            }
        }
        let Some(name) = last else {
            return Ok(None);
        };
        let delivers = self
            .channel(conversation.tenant(), &name)
            .await?
            .is_some_and(|config| config.delivery().is_some());
        Ok(delivers.then_some(name))
    }

    /// Whether `tenant` has a channel that delivers (here or, in a cluster, on another node).
    fn delivers_for(&self, tenant: &TenantId) -> bool {
        self.lock_tenants().get(tenant).is_some_and(|channels| {
            channels
                .channels
                .values()
                .any(|config| config.delivery().is_some())
        })
    }

    /// Whether channel `name` of `tenant` delivers.
    fn delivers_through(&self, tenant: &TenantId, name: &str) -> bool {
        self.lock_tenants()
            .get(tenant)
            .and_then(|channels| channels.channels.get(name))
            .is_some_and(|config| config.delivery().is_some())
    }

    /// In a cluster: reads `tenant`'s configurations again when news names a channel this node
    /// does not know — configured on another node since this one last followed, the message
    /// that names it having come in there — at most every [`RECHECK_EVERY`] per tenant (a
    /// tenant's messages through unconfigured labels such as the widget's cost one read per
    /// interval). Alone, every configuration is made here and known at once.
    async fn recheck(&self, tenant: &TenantId, channel: &str) -> Result<(), JournalError> {
        if self.cluster.is_none() {
            return Ok(());
        }
        let known = self
            .lock_tenants()
            .get(tenant)
            .is_some_and(|channels| channels.channels.contains_key(channel));
        if known {
            return Ok(());
        }
        {
            let mut checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
            let now = std::time::Instant::now();
            if checked
                .get(tenant)
                .is_some_and(|at| now.duration_since(*at) < RECHECK_EVERY)
            {
                return Ok(());
            }
            if checked.len() >= ROUTES_LIMIT {
                checked.clear();
            }
            checked.insert(tenant.clone(), now);
        }
        self.refresh(tenant).await
    }

    /// The shard of channel `name`'s outbox stream.
    fn outbox_shard(tenant: &TenantId, name: &str) -> u16 {
        shard_of(StreamId::channel_outbox(tenant, name).as_str())
    }

    /// Whether the outbox of channel `name` runs on this node: alone always; in a cluster while
    /// this node serves the shard of the outbox's stream.
    fn runs_here(&self, tenant: &TenantId, name: &str) -> bool {
        self.cluster
            .as_ref()
            .is_none_or(|ownership| ownership.epoch(Self::outbox_shard(tenant, name)).is_some())
    }

    /// In a cluster: starts the outboxes of the shards served here that are not running yet, and
    /// stops those of shards no longer served.
    async fn place_outboxes(&self) -> Result<(), JournalError> {
        if self.cluster.is_none() {
            return Ok(());
        }
        let _changing = self.changes.lock().await;
        let mut names: BTreeSet<(TenantId, String)> = self
            .lock_tenants()
            .iter()
            .flat_map(|(tenant, channels)| {
                channels
                    .channels
                    .keys()
                    .map(|name| (tenant.clone(), name.clone()))
            })
            .collect();
        names.extend(
            self.outboxes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .keys()
                .cloned(),
        );
        for (tenant, name) in names {
            let running = self.outbox(&tenant, &name).is_some();
            if running != (self.runs_here(&tenant, &name) && self.delivers_through(&tenant, &name))
            {
                self.sync_outbox(&tenant, &name).await?;
            }
        }
        Ok(())
    }

    /// Where a reply goes: its conversation's customer and last channel, remembered from the news
    /// or read back from the conversation's stream.
    async fn route_of(&self, reply: &OutboundReply) -> Result<Route, JournalError> {
        let remembered = self
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&reply.conversation)
            .cloned();
        if let Some(route) = remembered
            && route.customer.is_some()
            && route.channel.is_some()
        {
            return Ok(route);
        }
        let limit = usize::try_from(reply.source_seq).unwrap_or(usize::MAX);
        let events = self.journal.read(&reply.source_stream, 0, limit).await?;
        let mut route = Route::default();
        for stored in events {
            let Ok(event) = stored.envelope()?.decode_event::<ConversationEvent>() else {
                continue;
            };
            match event {
                ConversationEvent::Started(started) => {
                    route.customer = Some(started.customer);
                    route.channel = Some(started.channel);
                }
                ConversationEvent::CustomerMessageReceived(received) => {
                    route.channel = Some(received.channel);
                }
                _ => {}
            }
        }
        self.remember_route(&reply.conversation, |known| *known = route.clone());
        Ok(route)
    }

    fn remember_route(&self, conversation: &ConversationId, change: impl FnOnce(&mut Route)) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        if routes.len() >= ROUTES_LIMIT && !routes.contains_key(conversation) {
            // Forgotten routes are read back from their conversations when needed.
            routes.clear();
        }
        change(routes.entry(conversation.clone()).or_default());
    }
}

#[async_trait]
impl Outbound for ChannelStore {
    async fn news(&self, news: Vec<OutboundNews>) -> Result<(), OutboundError> {
        let mut batches: HashMap<(TenantId, String), Vec<(OutboxQueued, Payload)>> = HashMap::new();
        for item in news {
            let tenant = item.conversation().tenant().clone();
            let label = match &item {
                OutboundNews::Started { channel, .. }
                | OutboundNews::CustomerWrote { channel, .. } => Some(channel.as_str()),
                OutboundNews::Reply(_) | OutboundNews::Lead(_) => None,
            };
            if let Some(label) = label {
                self.recheck(&tenant, label)
                    .await
                    .map_err(|error| OutboundError(error.to_string()))?;
            }
            if !self.delivers_for(&tenant) {
                continue;
            }
            match item {
                OutboundNews::Started {
                    conversation,
                    customer,
                    channel,
                } => self.remember_route(&conversation, |route| {
                    route.customer = Some(customer);
                    route.channel = Some(channel);
                }),
                OutboundNews::CustomerWrote {
                    conversation,
                    channel,
                } => self.remember_route(&conversation, |route| route.channel = Some(channel)),
                OutboundNews::Reply(reply) => {
                    let route = self
                        .route_of(&reply)
                        .await
                        .map_err(|error| OutboundError(error.to_string()))?;
                    let (Some(customer), Some(channel)) = (route.customer, route.channel) else {
                        continue;
                    };
                    self.recheck(&tenant, &channel)
                        .await
                        .map_err(|error| OutboundError(error.to_string()))?;
                    if !self.delivers_through(&tenant, &channel) {
                        continue;
                    }
                    let queued = OutboxQueued {
                        id: reply.message.to_string(),
                        conversation: reply.conversation.clone(),
                        customer,
                        role: reply.role.as_str().to_owned(),
                        message: reply.message.clone(),
                        source_stream: reply.source_stream.clone(),
                        source_seq: reply.source_seq,
                        at_ms: reply.at_ms,
                    };
                    batches
                        .entry((tenant, channel))
                        .or_default()
                        .push((queued, Payload::Message(reply.text)));
                }
                OutboundNews::Lead(lead) => {
                    if !self.delivers_through(&tenant, crm::CRM_NAME) {
                        continue;
                    }
                    let queued = crm::entry_of(&lead);
                    batches
                        .entry((tenant, crm::CRM_NAME.to_owned()))
                        .or_default()
                        .push((queued, Payload::Lead(lead.lead)));
                }
            }
        }
        for ((tenant, channel), entries) in batches {
            self.run_op(&tenant, &channel, OutboxOp::Queue(entries))
                .await
                .map_err(|error| OutboundError(error.to_string()))?;
        }
        Ok(())
    }

    fn follows(&self, tenant: &TenantId) -> bool {
        // In a cluster a channel may have been configured on another node since this one last
        // followed: the news of every tenant is looked at ([`ChannelStore::recheck`]).
        self.cluster.is_some() || self.delivers_for(tenant)
    }

    async fn outbox(
        &self,
        tenant: &TenantId,
        channel: &str,
        op: OutboxOp,
    ) -> Result<OutboxAnswer, OutboundError> {
        self.op_here(tenant, channel, op).await
    }

    fn shard_served(&self, shard: u16) {
        let _ = shard;
        self.given.notify_one();
    }

    async fn shard_released(&self, shard: u16) {
        let _changing = self.changes.lock().await;
        let leaving: Vec<(TenantId, String)> = self
            .outboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .filter(|(tenant, name)| Self::outbox_shard(tenant, name) == shard)
            .cloned()
            .collect();
        for key in leaving {
            let outbox = self
                .outboxes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
            if let Some(outbox) = outbox {
                outbox.stop();
                tracing::debug!(tenant = %key.0, channel = %key.1, shard, "channel outbox handed over");
            }
        }
    }
}

/// The name an app secret is sealed under: its own key and associated data, so it never opens as
/// the channel's secret (`#` is not allowed in channel names).
fn app_secret_purpose(name: &str) -> String {
    format!("{name}#app_secret")
}

/// The key a channel's secret is sealed with: derived from the master key for this tenant and
/// channel, so a sealed secret copied to another channel does not open.
fn sealing_key(
    master: &crate::vault::MasterKey,
    tenant: &TenantId,
    name: &str,
) -> Result<Key, ChannelError> {
    let purpose = format!("crest channel secret v1:{tenant}:{name}");
    Key::new(CipherKind::Aes256Gcm, &master.derive(purpose.as_bytes()))
        .map_err(|error| ChannelError::Sealing(error.to_string()))
}

fn seal_secret(
    master: &crate::vault::MasterKey,
    tenant: &TenantId,
    name: &str,
    secret: &[u8],
) -> Result<Vec<u8>, ChannelError> {
    let key = sealing_key(master, tenant, name)?;
    let nonce = crate::access::secret::random_bytes::<NONCE_BYTES>()
        .map_err(|error| ChannelError::Sealing(error.to_string()))?;
    let aad = format!("{tenant}:{name}");
    let mut sealed = nonce.to_vec();
    sealed.extend(
        key.seal(&nonce, aad.as_bytes(), secret)
            .map_err(|error| ChannelError::Sealing(error.to_string()))?,
    );
    Ok(sealed)
}

fn open_secret(
    master: &crate::vault::MasterKey,
    tenant: &TenantId,
    name: &str,
    sealed: &[u8],
) -> Option<Vec<u8>> {
    let key = sealing_key(master, tenant, name).ok()?;
    let nonce: [u8; NONCE_BYTES] = sealed.get(..NONCE_BYTES)?.try_into().ok()?;
    let aad = format!("{tenant}:{name}");
    key.open(&nonce, aad.as_bytes(), &sealed[NONCE_BYTES..])
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ChannelRequest {
        ChannelRequest {
            kind: "webhook".to_owned(),
            secret: "a-secret-of-sixteen+".to_owned(),
            outbound_url: Some("https://hooks.example/crest".to_owned()),
            profile: None,
            max_attempts: None,
            backoff_base_ms: None,
            app_id: None,
            app_secret: None,
        }
    }

    #[test]
    fn requests_are_validated_with_every_reason() {
        assert!(validate("wx-main", &request()).is_empty());
        let bad = ChannelRequest {
            kind: "fax".to_owned(),
            secret: "short".to_owned(),
            outbound_url: Some("ftp://hooks.example".to_owned()),
            profile: Some("Bad Profile".to_owned()),
            max_attempts: Some(0),
            backoff_base_ms: Some(1),
            app_id: Some("wx 1".to_owned()),
            app_secret: None,
        };
        let reasons = validate("Bad.Name", &bad);
        // Name, kind, secret, URL, profile, attempts, backoff, and the app credentials' three.
        assert_eq!(reasons.len(), 10, "{reasons:?}");
        assert!(!validate("-x", &request()).is_empty());
        assert!(!validate(&"x".repeat(65), &request()).is_empty());
        let no_host = ChannelRequest {
            outbound_url: Some("https:///path".to_owned()),
            ..request()
        };
        assert_eq!(validate("ok", &no_host).len(), 1);
        let plain_http = ChannelRequest {
            outbound_url: Some("http://127.0.0.1:9000/in".to_owned()),
            ..request()
        };
        assert!(validate("ok", &plain_http).is_empty());
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_tenant_and_channel() {
        let master = crate::vault::MasterKey::new(1, &[7_u8; 32]).expect("32 bytes");
        let tenant = TenantId::new("shop").expect("valid");
        let other = TenantId::new("other").expect("valid");
        let sealed = seal_secret(&master, &tenant, "wx", b"0123456789abcdef").expect("seals");
        assert!(
            !sealed
                .windows(16)
                .any(|window| window == b"0123456789abcdef")
        );
        assert_eq!(
            open_secret(&master, &tenant, "wx", &sealed).as_deref(),
            Some(&b"0123456789abcdef"[..])
        );
        assert_eq!(open_secret(&master, &tenant, "wx2", &sealed), None);
        assert_eq!(open_secret(&master, &other, "wx", &sealed), None);
        let another = crate::vault::MasterKey::new(2, &[8_u8; 32]).expect("32 bytes");
        assert_eq!(open_secret(&another, &tenant, "wx", &sealed), None);
    }

    #[test]
    fn an_app_secret_never_opens_as_the_channel_secret() {
        let master = crate::vault::MasterKey::new(1, &[7_u8; 32]).expect("32 bytes");
        let tenant = TenantId::new("shop").expect("valid");
        let purpose = app_secret_purpose("wx");
        let sealed = seal_secret(&master, &tenant, &purpose, b"the-app-secret").expect("seals");
        assert_eq!(
            open_secret(&master, &tenant, &purpose, &sealed).as_deref(),
            Some(&b"the-app-secret"[..])
        );
        assert_eq!(open_secret(&master, &tenant, "wx", &sealed), None);
        let channel_secret =
            seal_secret(&master, &tenant, "wx", b"0123456789abcdef").expect("seals");
        assert_eq!(
            open_secret(&master, &tenant, &purpose, &channel_secret),
            None
        );
    }

    fn wechat_config(outbound_url: Option<&str>, app: bool) -> ChannelConfig {
        ChannelConfig {
            name: "wx".to_owned(),
            kind: ChannelKind::WechatOa,
            secret: Some(Arc::from(b"token-token-token".to_vec())),
            outbound_url: outbound_url.map(str::to_owned),
            profile: None,
            app_id: app.then(|| "wx0123456789abcdef".to_owned()),
            app_secret: app.then(|| Arc::from("app-secret")),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff_base_ms: 500,
            configured_by: "admin".to_owned(),
            configured_at_ms: 0,
        }
    }

    #[test]
    fn a_wechat_channel_delivers_through_the_api_only_with_app_credentials() {
        let default = wechat_config(None, true)
            .delivery()
            .expect("an outbox with the default base URL");
        assert_eq!(default.transport, Transport::Wechat);
        assert_eq!(default.url, wechat::DEFAULT_BASE_URL);
        let local = wechat_config(Some("http://127.0.0.1:9/"), true)
            .delivery()
            .expect("an outbox");
        assert_eq!(local.transport, Transport::Wechat);
        assert_eq!(local.url, "http://127.0.0.1:9");
        assert!(
            wechat_config(Some("http://127.0.0.1:9/"), false)
                .delivery()
                .is_none(),
            "inbound only, never the webhook protocol"
        );
        assert!(wechat_config(None, false).delivery().is_none());
    }
}
