//! One member's loop: heartbeats, leases (take, renew, fence, give back), the coordinator's rounds.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use futures::future::join_all;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::allocation::{Candidate, allocate};
use super::metrics::ClusterMetrics;
use super::{
    ClusterConfig, ClusterError, ClusterView, DesiredMap, MemberRecord, MemberView, Readiness,
    ShardHost,
};

const COORDINATOR: &str = "coordinator";
const DESIRED: &str = "desired";

fn shard_key(shard: u16) -> String {
    format!("shard.{shard}")
}

fn member_key(node: &str) -> String {
    format!("node.{node}")
}

/// A lease this member holds.
#[derive(Debug, Clone, Copy)]
struct Lease {
    /// The revision at acquisition: the writer epoch.
    epoch: u64,
    /// The latest revision (what the next renewal must name).
    revision: u64,
    /// When the last accepted renewal (or the acquisition) was sent.
    renewed: Instant,
}

#[derive(Debug)]
struct Buckets {
    members: kv::Store,
    leases: kv::Store,
    assignment: kv::Store,
}

/// The leases held, shared by the keeper (renewing and fencing) and the loop (taking and giving
/// back).
#[derive(Debug, Default)]
struct Held {
    shards: BTreeMap<u16, Lease>,
    /// Shards being handed over: still leased and renewed until the hand-over ends.
    leaving: BTreeSet<u16>,
    /// Shards whose lease was lost and whose serving is still being stopped: not taken again
    /// until that ends, or the late stop would end the new lease's serving.
    fencing: BTreeSet<u16>,
    coordinator: Option<Lease>,
}

impl Held {
    /// The shards served (leased and not being handed over), with their epochs.
    fn serving(&self) -> BTreeMap<u16, u64> {
        self.shards
            .iter()
            .filter(|(shard, _)| !self.leaving.contains(shard))
            .map(|(shard, lease)| (*shard, lease.epoch))
            .collect()
    }
}

/// The cluster as this member last read the membership.
#[derive(Debug, Clone, Default)]
struct Observed {
    /// When it was read (`None`: never, or the member left).
    at: Option<Instant>,
    /// Whether this member was among the live members.
    member: bool,
    /// Shards some live member serves.
    shards_owned: u16,
    /// The member left the cluster.
    left: bool,
}

#[derive(Debug)]
struct Shared {
    config: ClusterConfig,
    buckets: Buckets,
    held: Mutex<Held>,
    observed: Mutex<Observed>,
    metrics: ClusterMetrics,
}

impl Shared {
    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn observed(&self) -> std::sync::MutexGuard<'_, Observed> {
        self.observed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Brings the owned-shards and coordinator gauges in line with the leases held.
    fn count_held(&self) {
        let (serving, coordinating) = {
            let held = self.held();
            (held.serving().len(), held.coordinator.is_some())
        };
        self.metrics
            .shards_owned
            .set(i64::try_from(serving).unwrap_or(i64::MAX));
        self.metrics.coordinator.set(i64::from(coordinating));
    }

    /// Runs a bucket operation for at most [`ClusterConfig::renew_every`]: a member never waits
    /// on NATS longer than that (`None`: it failed or took too long).
    async fn bounded<T, E>(&self, operation: impl Future<Output = Result<T, E>>) -> Option<T> {
        tokio::time::timeout(self.config.renew_every, operation)
            .await
            .ok()?
            .ok()
    }
}

/// A running member of the cluster.
#[derive(Debug)]
pub struct Cluster {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    keeper: JoinHandle<()>,
}

/// The bucket `config` names, created if missing. A NATS cluster that is still forming answers
/// "no suitable peers for placement" (or does not answer) for a while: retried for up to a minute.
pub(crate) async fn bucket(
    jetstream: &jetstream::Context,
    config: kv::Config,
) -> Result<kv::Store, ClusterError> {
    let name = config.bucket.clone();
    crate::forming::patiently("a cluster bucket", crate::forming::PATIENCE, async || {
        if let Ok(store) = jetstream.get_key_value(&name).await {
            return Ok(store);
        }
        jetstream.create_key_value(config.clone()).await
    })
    .await
    .map_err(|error| ClusterError::Bucket {
        bucket: name.clone(),
        message: error.to_string(),
    })
}

impl Cluster {
    /// Joins the cluster through `client`: creates the buckets if needed and starts the member's
    /// loop, which gives `host` the shards it is to serve. Its metrics are kept apart from any
    /// registry ([`Cluster::metrics`] reads them); [`Cluster::join_with_metrics`] exposes them.
    pub async fn join(
        client: async_nats::Client,
        config: ClusterConfig,
        host: Arc<dyn ShardHost>,
    ) -> Result<Self, ClusterError> {
        let metrics = ClusterMetrics::unregistered()
            .map_err(|error| ClusterError::Metrics(error.to_string()))?;
        Self::join_with_metrics(client, config, host, metrics).await
    }

    /// [`Cluster::join`], counting into `metrics` (registered in the node's registry).
    pub async fn join_with_metrics(
        client: async_nats::Client,
        config: ClusterConfig,
        host: Arc<dyn ShardHost>,
        metrics: ClusterMetrics,
    ) -> Result<Self, ClusterError> {
        if config.node.is_empty()
            || !config
                .node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ClusterError::BadName(config.node.clone()));
        }
        let jetstream = jetstream::new(client);
        let store = |name: &str, max_age: Duration| kv::Config {
            bucket: format!("{}_{name}", config.prefix),
            history: 1,
            max_age,
            num_replicas: config.replicas,
            ..Default::default()
        };
        // A lease that runs out leaves a marker (a `Purge` entry) for a while, so that whoever
        // takes the shard next can tell a failover from a hand-over (a `Delete` entry).
        let leases = kv::Config {
            limit_markers: Some(config.lease_ttl.max(Duration::from_secs(1)) * 4),
            ..store("leases", config.lease_ttl)
        };
        let buckets = Buckets {
            members: bucket(&jetstream, store("members", config.member_ttl)).await?,
            leases: bucket(&jetstream, leases).await?,
            assignment: bucket(&jetstream, store("assignment", Duration::ZERO)).await?,
        };
        metrics.shards.set(i64::from(config.shards));
        let shared = Arc::new(Shared {
            config,
            buckets,
            held: Mutex::new(Held::default()),
            observed: Mutex::new(Observed::default()),
            metrics,
        });
        let (stop, stopped) = watch::channel(false);
        let keeper = tokio::spawn(keep(Arc::clone(&shared), Arc::clone(&host)));
        let task = tokio::spawn(run(Arc::clone(&shared), host, stopped));
        Ok(Self {
            shared,
            stop,
            task: tokio::sync::Mutex::new(Some(task)),
            keeper,
        })
    }

    /// This member's name.
    #[must_use]
    pub fn node(&self) -> &str {
        &self.shared.config.node
    }

    /// The shards this member serves, with their writer epochs.
    #[must_use]
    pub fn owned(&self) -> BTreeMap<u16, u64> {
        self.shared.held().serving()
    }

    /// This member's metrics.
    #[must_use]
    pub fn metrics(&self) -> &ClusterMetrics {
        &self.shared.metrics
    }

    /// Whether this member should take traffic: it is in the membership and every shard of the
    /// cluster has a live owner, as it last read the membership (every
    /// [`ClusterConfig::round_every`]; a reading older than three rounds counts as none).
    #[must_use]
    pub fn readiness(&self) -> Readiness {
        let observed = self.shared.observed().clone();
        if observed.left {
            return Readiness::NotMember;
        }
        let fresh = observed
            .at
            .is_some_and(|at| at.elapsed() <= self.shared.config.round_every * 3);
        if !fresh {
            return Readiness::Unknown;
        }
        if !observed.member {
            return Readiness::NotMember;
        }
        if observed.shards_owned < self.shared.config.shards {
            return Readiness::ShardsUnowned {
                owned: observed.shards_owned,
                total: self.shared.config.shards,
            };
        }
        Readiness::Ready
    }

    /// The cluster as the buckets say now.
    pub async fn view(&self) -> Result<ClusterView, ClusterError> {
        let members = live_members(&self.shared.buckets.members).await?;
        let coordinator = self
            .shared
            .buckets
            .leases
            .get(COORDINATOR)
            .await
            .map_err(|error| ClusterError::Read(error.to_string()))?
            .map(|name| String::from_utf8_lossy(&name).into_owned());
        let owned: BTreeSet<u16> = members
            .iter()
            .flat_map(|member| member.shards.iter().copied())
            .collect();
        Ok(ClusterView {
            node: self.shared.config.node.clone(),
            members: members
                .into_iter()
                .map(|member| MemberView {
                    shards: u16::try_from(member.shards.len()).unwrap_or(u16::MAX),
                    name: member.name,
                    url: member.url,
                    load: member.load,
                })
                .collect(),
            shards_total: self.shared.config.shards,
            shards_owned: u16::try_from(owned.len()).unwrap_or(u16::MAX),
            coordinator,
        })
    }

    /// Leaves in order: hands every shard over, gives the leases back and leaves the membership.
    pub async fn leave(&self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
        self.keeper.abort();
    }

    /// Stops the member's loop as a crash would: nothing is handed over or given back (the leases
    /// run out). For tests of failover.
    pub fn crash(self) {
        if let Some(task) = self.task.try_lock().ok().and_then(|mut task| task.take()) {
            task.abort();
        }
        self.keeper.abort();
    }
}

/// The live members, by name.
async fn live_members(members: &kv::Store) -> Result<Vec<MemberRecord>, ClusterError> {
    let read = |error: &dyn std::fmt::Display| ClusterError::Read(error.to_string());
    let mut keys = members.keys().await.map_err(|error| read(&error))?;
    let mut names = Vec::new();
    while let Some(key) = keys.next().await {
        names.push(key.map_err(|error| read(&error))?);
    }
    let mut records = Vec::with_capacity(names.len());
    for key in names {
        if let Some(bytes) = members.get(&key).await.map_err(|error| read(&error))?
            && let Ok(record) = serde_json::from_slice::<MemberRecord>(&bytes)
        {
            records.push(record);
        }
    }
    records.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(records)
}

/// The lease keeper: renews every lease held, all at once, every [`ClusterConfig::renew_every`],
/// and stops serving any shard whose lease went [`ClusterConfig::fence_after`] without a renewal.
/// It runs beside the member's loop so that nothing the loop waits for can delay fencing.
async fn keep(shared: Arc<Shared>, host: Arc<dyn ShardHost>) {
    let mut tick = tokio::time::interval(shared.config.tick.min(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_renewal = Instant::now() + shared.config.renew_every;
    loop {
        tick.tick().await;
        fence_overdue(&shared, &host).await;
        if Instant::now() >= next_renewal {
            next_renewal = Instant::now() + shared.config.renew_every;
            let renewal = renew(&shared, &host);
            // Fencing goes on while the renewals are on their way.
            tokio::pin!(renewal);
            loop {
                tokio::select! {
                    () = &mut renewal => break,
                    _ = tick.tick() => fence_overdue(&shared, &host).await,
                }
            }
        }
    }
}

/// Stops serving every shard whose lease was not renewed in time.
async fn fence_overdue(shared: &Shared, host: &Arc<dyn ShardHost>) {
    let limit = shared.config.fence_after();
    let now = Instant::now();
    let overdue: Vec<u16> = {
        let mut held = shared.held();
        let overdue: Vec<u16> = held
            .shards
            .iter()
            .filter(|(_, lease)| now.duration_since(lease.renewed) >= limit)
            .map(|(shard, _)| *shard)
            .collect();
        for shard in &overdue {
            held.shards.remove(shard);
            held.leaving.remove(shard);
            held.fencing.insert(*shard);
        }
        if held
            .coordinator
            .is_some_and(|lease| now.duration_since(lease.renewed) >= limit)
        {
            tracing::warn!("coordinator lease not renewed in time: no longer coordinating");
            held.coordinator = None;
        }
        overdue
    };
    shared.metrics.moved("fenced", overdue.len());
    shared.count_held();
    for shard in &overdue {
        tracing::warn!(
            shard,
            "lease not renewed in time: no longer serving the shard"
        );
    }
    fence(shared, host, overdue).await;
}

/// Stops serving `shards` (their leases are lost), all at once; each may be taken again once its
/// stop has ended.
async fn fence(shared: &Shared, host: &Arc<dyn ShardHost>, shards: Vec<u16>) {
    join_all(shards.into_iter().map(|shard| async move {
        host.fence(shard).await;
        shared.held().fencing.remove(&shard);
    }))
    .await;
}

/// Renews every lease held, all at once.
async fn renew(shared: &Shared, host: &Arc<dyn ShardHost>) {
    let store = &shared.buckets.leases;
    let value = bytes::Bytes::from(shared.config.node.clone());
    // (shard or None for the coordinator lease, key, revision, epoch)
    let leases: Vec<(Option<u16>, String, u64, u64)> = {
        let held = shared.held();
        held.shards
            .iter()
            .map(|(shard, lease)| (Some(*shard), shard_key(*shard), lease.revision, lease.epoch))
            .chain(
                held.coordinator
                    .map(|lease| (None, COORDINATOR.to_owned(), lease.revision, lease.epoch)),
            )
            .collect()
    };
    if leases.is_empty() {
        return;
    }
    let sent = Instant::now();
    let answers = join_all(leases.iter().map(|(_, key, revision, _)| {
        let renewal = tokio::time::timeout(
            shared.config.renew_every,
            store.update(key, value.clone(), *revision),
        );
        async move {
            let answer = renewal.await;
            let outcome = match &answer {
                Ok(Ok(_)) => "ok",
                Ok(Err(error)) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => "lost",
                Ok(Err(_)) | Err(_) => "error",
            };
            shared.metrics.renewed(outcome, sent.elapsed());
            answer
        }
    }))
    .await;
    let mut lost = Vec::new();
    {
        let mut held = shared.held();
        for ((shard, _, _, epoch), answer) in leases.iter().zip(answers) {
            let lease = match shard {
                Some(shard) => held.shards.get_mut(shard),
                None => held.coordinator.as_mut(),
            };
            // Fenced or given back meanwhile, or taken again since: not this renewal's lease.
            let Some(lease) = lease.filter(|lease| lease.epoch == *epoch) else {
                continue;
            };
            match answer {
                Ok(Ok(revision)) => {
                    lease.revision = revision;
                    lease.renewed = sent;
                }
                Ok(Err(error)) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    lost.push(*shard);
                }
                // A timeout or an unreachable server: the next renewal tries again; fencing ends
                // it if it lasts.
                Ok(Err(_)) | Err(_) => {}
            }
        }
        for shard in &lost {
            match shard {
                Some(shard) => {
                    held.shards.remove(shard);
                    held.leaving.remove(shard);
                    held.fencing.insert(*shard);
                }
                None => held.coordinator = None,
            }
        }
    }
    let lost_shards: Vec<u16> = lost.into_iter().flatten().collect();
    shared.metrics.moved("fenced", lost_shards.len());
    shared.count_held();
    for shard in &lost_shards {
        tracing::warn!(shard, "lease taken over: no longer serving the shard");
    }
    fence(shared, host, lost_shards).await;
}

/// How a lease was taken: what the key held before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Previous {
    /// Nothing: never leased, or the last lease ended long ago.
    Nothing,
    /// A lease given back (a hand-over).
    Released,
    /// A lease that ran out: its owner stopped renewing (a failover).
    Expired,
}

/// Takes the lease `key` if free — what `kv::Store::create` does, telling on the way what the key
/// held before. `None`: held by someone else, or NATS failed.
async fn acquire(store: &kv::Store, key: &str, value: bytes::Bytes) -> Option<(u64, Previous)> {
    // Revision 0: only if the key has no entry at all.
    if let Ok(revision) = store.update(key, value.clone(), 0).await {
        return Some((revision, Previous::Nothing));
    }
    let entry = store.entry(key).await.ok()??;
    let previous = match entry.operation {
        kv::Operation::Put => {
            tracing::debug!(
                key,
                revision = entry.revision,
                holder = %String::from_utf8_lossy(&entry.value),
                created = %entry.created,
                "lease held"
            );
            return None;
        }
        kv::Operation::Delete => Previous::Released,
        kv::Operation::Purge => Previous::Expired,
    };
    let revision = store.update(key, value, entry.revision).await.ok()?;
    Some((revision, previous))
}

/// The member's loop state.
struct Member {
    shared: Arc<Shared>,
    host: Arc<dyn ShardHost>,
    handovers: JoinSet<u16>,
    round: u64,
    /// The last member seen serving each shard (kept when that member leaves the membership): a
    /// shard taken with nothing in its lease key after some member served it was taken over from
    /// a lease that ran out.
    last_owners: BTreeMap<u16, String>,
    next_heartbeat: Instant,
    next_round: Instant,
}

async fn run(shared: Arc<Shared>, host: Arc<dyn ShardHost>, mut stopped: watch::Receiver<bool>) {
    let now = Instant::now();
    let mut member = Member {
        shared: Arc::clone(&shared),
        host,
        handovers: JoinSet::new(),
        round: 0,
        last_owners: BTreeMap::new(),
        next_heartbeat: now,
        next_round: now,
    };
    let mut tick = tokio::time::interval(shared.config.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => member.step().await,
            Some(done) = member.handovers.join_next() => {
                if let Ok(shard) = done {
                    member.handed_over(shard).await;
                }
            }
            _ = stopped.changed() => break,
        }
    }
    member.leave().await;
}

impl Member {
    fn config(&self) -> &ClusterConfig {
        &self.shared.config
    }

    async fn step(&mut self) {
        let now = Instant::now();
        if now >= self.next_heartbeat {
            self.next_heartbeat = now + self.config().heartbeat_every;
            self.heartbeat().await;
        }
        if now >= self.next_round {
            self.next_round = now + self.config().round_every;
            let members = self.observe().await;
            self.coordinate(members).await;
        }
        self.converge().await;
        self.shared.count_held();
    }

    /// Reads the membership: the members gauge and what readiness looks at.
    async fn observe(&mut self) -> Option<Vec<MemberRecord>> {
        let members = match live_members(&self.shared.buckets.members).await {
            Ok(members) => members,
            Err(error) => {
                tracing::warn!(%error, "membership not read");
                return None;
            }
        };
        let owned: BTreeSet<u16> = members
            .iter()
            .flat_map(|member| member.shards.iter().copied())
            .collect();
        for member in &members {
            for &shard in &member.shards {
                self.last_owners.insert(shard, member.name.clone());
            }
        }
        self.shared
            .metrics
            .members
            .set(i64::try_from(members.len()).unwrap_or(i64::MAX));
        *self.shared.observed() = Observed {
            at: Some(Instant::now()),
            member: members
                .iter()
                .any(|member| member.name == self.config().node),
            shards_owned: u16::try_from(owned.len()).unwrap_or(u16::MAX),
            left: false,
        };
        Some(members)
    }

    async fn heartbeat(&mut self) {
        let record = MemberRecord {
            name: self.config().node.clone(),
            url: self.config().url.clone(),
            load: self.host.load(),
            shards: self.shared.held().serving().into_keys().collect(),
        };
        let Ok(bytes) = serde_json::to_vec(&record) else {
            return;
        };
        let members = &self.shared.buckets.members;
        let key = member_key(&self.config().node);
        if self
            .shared
            .bounded(members.put(key, bytes.into()))
            .await
            .is_none()
        {
            tracing::warn!("cluster heartbeat not written");
        }
    }

    async fn desired(&self) -> Option<DesiredMap> {
        let assignment = &self.shared.buckets.assignment;
        let bytes = self.shared.bounded(assignment.get(DESIRED)).await??;
        serde_json::from_slice(&bytes).ok()
    }

    /// Takes the coordinator lease if free; as coordinator, runs a round over `members` (`None`:
    /// the membership could not be read).
    async fn coordinate(&mut self, members: Option<Vec<MemberRecord>>) {
        let store = &self.shared.buckets.leases;
        if self.shared.held().coordinator.is_none() {
            let sent = Instant::now();
            let node = self.config().node.clone();
            if let Some(revision) = self
                .shared
                .bounded(store.create(COORDINATOR, node.into()))
                .await
            {
                tracing::info!(node = %self.config().node, "coordinating the cluster");
                self.shared.held().coordinator = Some(Lease {
                    epoch: revision,
                    revision,
                    renewed: sent,
                });
                self.shared.count_held();
            }
        }
        if self.shared.held().coordinator.is_none() {
            return;
        }
        let Some(members) = members else {
            tracing::warn!("coordinator round skipped");
            self.shared.metrics.round("failed");
            return;
        };
        let shards = usize::from(self.config().shards);
        let previous = self.desired().await;
        let desired = previous
            .as_ref()
            .map(|map| map.shards.clone())
            .filter(|map| map.len() == shards)
            .unwrap_or_else(|| vec![None; shards]);
        let mut owners: Vec<Option<String>> = vec![None; shards];
        for member in &members {
            for &shard in &member.shards {
                if let Some(owner) = owners.get_mut(usize::from(shard)) {
                    *owner = Some(member.name.clone());
                }
            }
        }
        let candidates: Vec<Candidate> = members
            .iter()
            .map(|member| Candidate {
                name: member.name.clone(),
                load: member.load.weight(),
            })
            .collect();
        let round = allocate(&desired, &owners, &candidates);
        if round.desired == desired && previous.is_some() {
            self.shared.metrics.round("unchanged");
            return;
        }
        self.round = previous.map_or(0, |map| map.round).max(self.round) + 1;
        let map = DesiredMap {
            round: self.round,
            coordinator: self.config().node.clone(),
            shards: round.desired,
        };
        let Ok(bytes) = serde_json::to_vec(&map) else {
            self.shared.metrics.round("failed");
            return;
        };
        let assignment = &self.shared.buckets.assignment;
        if self
            .shared
            .bounded(assignment.put(DESIRED, bytes.into()))
            .await
            .is_some()
        {
            self.shared.metrics.round("written");
            tracing::info!(
                round = map.round,
                placed = round.placed,
                moved = round.moved,
                "shard map written"
            );
        } else {
            self.shared.metrics.round("failed");
            tracing::warn!("shard map not written");
        }
    }

    /// Takes the free leases the map gives this member; hands over the shards it moves away.
    async fn converge(&mut self) {
        let Some(map) = self.desired().await else {
            return;
        };
        let me = self.config().node.clone();
        let wanted = |shard: u16| {
            map.shards
                .get(usize::from(shard))
                .and_then(Option::as_deref)
        };
        let (mine, moving): (Vec<u16>, Vec<u16>) = {
            let held = self.shared.held();
            let mine = (0..self.config().shards)
                .filter(|shard| {
                    wanted(*shard) == Some(me.as_str())
                        && !held.shards.contains_key(shard)
                        && !held.fencing.contains(shard)
                })
                .collect();
            let moving = held
                .shards
                .keys()
                .copied()
                .filter(|shard| {
                    !held.leaving.contains(shard) && wanted(*shard).is_some_and(|owner| owner != me)
                })
                .collect();
            (mine, moving)
        };
        if !mine.is_empty() {
            let store = &self.shared.buckets.leases;
            let value = bytes::Bytes::from(me.clone());
            let sent = Instant::now();
            let answers = join_all(mine.iter().map(|shard| {
                let key = shard_key(*shard);
                let value = value.clone();
                let acquiring = async move { acquire(store, &key, value).await.ok_or(()) };
                self.shared.bounded(acquiring)
            }))
            .await;
            for (shard, answer) in mine.into_iter().zip(answers) {
                if let Some((revision, previous)) = answer {
                    self.shared.metrics.moved("acquired", 1);
                    // A lease that ran out leaves a marker where the server keeps one (not on
                    // every replicated bucket); an empty key for a shard a member (this one
                    // included, before a hand-over) was seen serving tells the same.
                    let served_before = self.last_owners.contains_key(&shard);
                    if previous == Previous::Expired
                        || (previous == Previous::Nothing && served_before)
                    {
                        self.shared.metrics.failovers.inc();
                        tracing::info!(shard, "shard taken over from a lease that ran out");
                    }
                    self.shared.held().shards.insert(
                        shard,
                        Lease {
                            epoch: revision,
                            revision,
                            renewed: sent,
                        },
                    );
                    self.host.serve(shard, revision).await;
                    tracing::debug!(shard, epoch = revision, "serving the shard");
                }
            }
        }
        for shard in moving {
            self.hand_over(shard);
        }
    }

    fn hand_over(&mut self, shard: u16) {
        if !self.shared.held().leaving.insert(shard) {
            return;
        }
        let host = Arc::clone(&self.host);
        self.handovers.spawn(async move {
            host.hand_over(shard).await;
            shard
        });
    }

    /// A hand-over ended: give the lease back (if still ours).
    async fn handed_over(&mut self, shard: u16) {
        let lease = {
            let mut held = self.shared.held();
            if !held.leaving.remove(&shard) {
                return;
            }
            held.shards.remove(&shard)
        };
        if let Some(lease) = lease {
            let store = &self.shared.buckets.leases;
            let given_back = self
                .shared
                .bounded(store.delete_expect_revision(shard_key(shard), Some(lease.revision)))
                .await;
            if given_back.is_some() {
                self.shared.metrics.moved("released", 1);
            } else {
                // It runs out on its own: dropped, not given back.
                tracing::warn!(shard, "lease not given back");
                self.shared.metrics.moved("fenced", 1);
            }
        }
        self.shared.count_held();
    }

    /// Leaves in order: every shard handed over and its lease given back, then the membership and
    /// the coordinator lease.
    async fn leave(mut self) {
        let shards: Vec<u16> = self.shared.held().shards.keys().copied().collect();
        for shard in shards {
            self.hand_over(shard);
        }
        while let Some(done) = self.handovers.join_next().await {
            if let Ok(shard) = done {
                self.handed_over(shard).await;
            }
        }
        let members = &self.shared.buckets.members;
        let _ = self
            .shared
            .bounded(members.delete(member_key(&self.config().node)))
            .await;
        let coordinator = self.shared.held().coordinator.take();
        if let Some(lease) = coordinator {
            let store = &self.shared.buckets.leases;
            let _ = self
                .shared
                .bounded(store.delete_expect_revision(COORDINATOR, Some(lease.revision)))
                .await;
        }
        *self.shared.observed() = Observed {
            left: true,
            ..Observed::default()
        };
        self.shared.metrics.members.set(0);
        self.shared.count_held();
    }
}
