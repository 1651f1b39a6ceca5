//! Cluster membership and shard leases against real nats-server processes: allocation, joining,
//! a crashed member, a member cut off from NATS (self-fencing), an orderly leave.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use crest_infra::cluster::{
    Cluster, ClusterConfig, DesiredMap, Load, Readiness, ShardHost, move_budget,
};
use futures::StreamExt;
use support::cluster::NatsCluster;
use support::{NatsServer, family_of, samples};

const SHARDS: u16 = 256;

/// Short leases so that failover tests stay short: the protocol does not depend on the figures.
fn config(node: &str) -> ClusterConfig {
    let mut config = ClusterConfig::new(node, format!("http://{node}.invalid"));
    config.lease_ttl = Duration::from_secs(3);
    config.renew_every = Duration::from_millis(500);
    config.member_ttl = Duration::from_secs(2);
    config.heartbeat_every = Duration::from_millis(300);
    config.round_every = Duration::from_millis(500);
    config.tick = Duration::from_millis(100);
    config
}

/// What the hosts did, in order, and who serves what: a shard served by two members at once is a
/// violation.
#[derive(Default)]
struct Ledger {
    serving: BTreeMap<u16, String>,
    events: Vec<(Instant, String, &'static str, u16)>,
    violations: Vec<String>,
}

type SharedLedger = Arc<Mutex<Ledger>>;

struct Host {
    node: String,
    ledger: SharedLedger,
}

#[async_trait::async_trait]
impl ShardHost for Host {
    async fn serve(&self, shard: u16, epoch: u64) {
        let mut ledger = self.ledger.lock().expect("ledger");
        if let Some(other) = ledger.serving.insert(shard, self.node.clone())
            && other != self.node
        {
            ledger.violations.push(format!(
                "{} serves shard {shard} (epoch {epoch}) while {other} does",
                self.node
            ));
        }
        ledger
            .events
            .push((Instant::now(), self.node.clone(), "serve", shard));
    }

    async fn hand_over(&self, shard: u16) {
        // Finishing in-flight work takes a moment.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut ledger = self.ledger.lock().expect("ledger");
        if ledger.serving.get(&shard) == Some(&self.node) {
            ledger.serving.remove(&shard);
        }
        ledger
            .events
            .push((Instant::now(), self.node.clone(), "hand_over", shard));
    }

    async fn fence(&self, shard: u16) {
        let mut ledger = self.ledger.lock().expect("ledger");
        if ledger.serving.get(&shard) == Some(&self.node) {
            ledger.serving.remove(&shard);
        }
        ledger
            .events
            .push((Instant::now(), self.node.clone(), "fence", shard));
    }

    fn load(&self) -> Load {
        Load::default()
    }
}

async fn join(url: &str, node: &str, ledger: &SharedLedger, replicas: usize) -> Cluster {
    // Only through `url`: a member cut off from its server stays cut off.
    let client = async_nats::ConnectOptions::new()
        .ignore_discovered_servers()
        .connect(url)
        .await
        .expect("connects");
    let host = Arc::new(Host {
        node: node.to_owned(),
        ledger: Arc::clone(ledger),
    });
    let mut config = config(node);
    config.replicas = replicas;
    Cluster::join(client, config, host).await.expect("joins")
}

async fn until(what: &str, patience: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !done().await {
        assert!(Instant::now() < deadline, "not within {patience:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// When each of `shards`' leases was last written (acquired or renewed), by the server's clock.
async fn last_renewals(
    url: &str,
    prefix: &str,
    shards: impl Iterator<Item = &u16>,
) -> BTreeMap<u16, std::time::SystemTime> {
    let client = async_nats::connect(url).await.expect("connects");
    let leases = jetstream::new(client)
        .get_key_value(format!("{prefix}_leases"))
        .await
        .expect("leases bucket");
    let mut renewed = BTreeMap::new();
    for &shard in shards {
        let entry = leases
            .entry(format!("shard.{shard}"))
            .await
            .expect("reads")
            .expect("a held lease");
        let nanos = u64::try_from(entry.created.unix_timestamp_nanos()).expect("after 1970");
        renewed.insert(shard, std::time::UNIX_EPOCH + Duration::from_nanos(nanos));
    }
    renewed
}

/// Shards each member serves, by name, as the members themselves say.
fn counts(members: &[&Cluster]) -> BTreeMap<String, usize> {
    members
        .iter()
        .map(|member| (member.node().to_owned(), member.owned().len()))
        .collect()
}

fn balanced(members: &[&Cluster]) -> bool {
    let counts = counts(members);
    let total: usize = counts.values().sum();
    let (min, max) = (
        counts.values().min().copied().unwrap_or(0),
        counts.values().max().copied().unwrap_or(0),
    );
    total == usize::from(SHARDS) && max - min <= 1
}

/// Failovers counted by `members`.
fn failovers(members: &[&Cluster]) -> u64 {
    members.iter().map(|m| m.metrics().failovers.get()).sum()
}

/// Leases `members` dropped by fencing themselves.
fn fenced(members: &[&Cluster]) -> u64 {
    members.iter().map(|m| m.metrics().moves("fenced")).sum()
}

fn violations(ledger: &SharedLedger) -> Vec<String> {
    ledger.lock().expect("ledger").violations.clone()
}

#[tokio::test]
async fn three_members_serve_every_shard_once_evenly_with_one_coordinator() {
    let nats = NatsServer::start();
    let ledger = SharedLedger::default();
    let a = join(&nats.url(), "a", &ledger, 1).await;
    let b = join(&nats.url(), "b", &ledger, 1).await;
    let c = join(&nats.url(), "c", &ledger, 1).await;
    until("balanced", Duration::from_secs(30), async || {
        balanced(&[&a, &b, &c])
    })
    .await;
    let view = b.view().await.expect("view");
    assert_eq!(view.node, "b");
    assert_eq!(view.shards_total, SHARDS);
    let names: Vec<&str> = view.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(
        view.members
            .iter()
            .all(|m| m.url == format!("http://{}.invalid", m.name))
    );
    let coordinator = view.coordinator.expect("a coordinator");
    assert!(["a", "b", "c"].contains(&coordinator.as_str()));
    until(
        "every shard owned in the view",
        Duration::from_secs(5),
        async || {
            let view = a.view().await.expect("view");
            view.shards_owned == SHARDS && view.members.iter().all(|m| m.shards >= 85)
        },
    )
    .await;
    // Epochs are lease revisions: distinct per shard and positive.
    let mut epochs: Vec<u64> = [&a, &b, &c]
        .iter()
        .flat_map(|member| member.owned().into_values())
        .collect();
    epochs.sort_unstable();
    epochs.dedup();
    assert_eq!(epochs.len(), usize::from(SHARDS));
    assert!(epochs[0] > 0);
    assert_eq!(violations(&ledger), Vec::<String>::new());

    // The metrics say the same, and every member is ready.
    let members = [&a, &b, &c];
    until(
        "every member counted the others and is ready",
        Duration::from_secs(5),
        async || {
            members.iter().all(|member| {
                let metrics = member.metrics();
                metrics.members.get() == 3
                    && metrics.shards_owned.get() == member.owned().len() as i64
                    && member.readiness() == Readiness::Ready
            })
        },
    )
    .await;
    let coordinators: Vec<&str> = members
        .iter()
        .filter(|member| member.metrics().coordinator.get() == 1)
        .map(|member| member.node())
        .collect();
    assert_eq!(coordinators, [coordinator.as_str()]);
    let acquired: u64 = members.iter().map(|m| m.metrics().moves("acquired")).sum();
    assert!(acquired >= u64::from(SHARDS), "{acquired}");
    for member in members {
        let metrics = member.metrics();
        assert_eq!(metrics.shards.get(), i64::from(SHARDS));
        assert!(metrics.renewals("ok") > 0, "{}", member.node());
        assert!(metrics.lease_renewal_seconds.get_sample_count() >= metrics.renewals("ok"));
    }
    // Nobody crashed: a lease can only have run out after its live owner fenced itself (a
    // renewal late on a loaded machine), so failovers never outnumber fenced leases.
    assert!(
        failovers(&members) <= fenced(&members),
        "{} failovers, {} fenced",
        failovers(&members),
        fenced(&members)
    );
    let coordinating = members
        .iter()
        .find(|member| member.node() == coordinator)
        .expect("the coordinator is a member");
    assert!(coordinating.metrics().rounds_with("written") >= 1);
    let rounds: u64 = members
        .iter()
        .filter(|member| member.node() != coordinator)
        .map(|member| {
            let metrics = member.metrics();
            metrics.rounds_with("written") + metrics.rounds_with("unchanged")
        })
        .sum();
    assert_eq!(rounds, 0, "only the coordinator runs rounds");
}

#[tokio::test]
async fn a_joining_member_gets_shards_within_two_rounds_and_no_round_moves_more_than_the_budget() {
    let nats = NatsServer::start();
    let ledger = SharedLedger::default();
    let a = join(&nats.url(), "a", &ledger, 1).await;
    let b = join(&nats.url(), "b", &ledger, 1).await;
    until("balanced over two", Duration::from_secs(30), async || {
        balanced(&[&a, &b])
    })
    .await;
    // Watch every map the coordinator writes from now on.
    let client = async_nats::connect(nats.url()).await.expect("connects");
    let store = jetstream::new(client)
        .get_key_value("crest_assignment")
        .await
        .expect("bucket");
    let mut maps = store.watch_with_history("desired").await.expect("watch");
    let first = maps.next().await.expect("a map").expect("entry");
    let mut previous: DesiredMap = serde_json::from_slice(&first.value).expect("map");
    let observed = Arc::new(Mutex::new(Vec::<usize>::new()));
    let watcher = {
        let observed = Arc::clone(&observed);
        tokio::spawn(async move {
            while let Some(Ok(entry)) = maps.next().await {
                let Ok(map) = serde_json::from_slice::<DesiredMap>(&entry.value) else {
                    continue;
                };
                let moved = previous
                    .shards
                    .iter()
                    .zip(&map.shards)
                    .filter(|(before, after)| before.is_some() && before != after)
                    .count();
                observed.lock().expect("ledger").push(moved);
                previous = map;
            }
        })
    };
    let joined = Instant::now();
    let c = join(&nats.url(), "c", &ledger, 1).await;
    let rounds = config("c").round_every * 2;
    // Two rounds, plus the heartbeat that makes it a member and the tick that takes the leases.
    let patience = rounds + config("c").heartbeat_every + Duration::from_millis(400);
    until("c serves a shard", patience, async || !c.owned().is_empty()).await;
    let first_shards = joined.elapsed();
    until("balanced over three", Duration::from_secs(30), async || {
        balanced(&[&a, &b, &c])
    })
    .await;
    watcher.abort();
    let observed = observed.lock().expect("ledger").clone();
    assert!(
        observed.len() >= 4,
        "85 shards need several rounds: {observed:?}"
    );
    assert!(
        observed
            .iter()
            .all(|&moved| moved <= move_budget(usize::from(SHARDS))),
        "{observed:?}"
    );
    assert_eq!(violations(&ledger), Vec::<String>::new());
    // Every shard c serves was handed over by its previous owner first.
    let ledger = ledger.lock().expect("ledger");
    for &(at, ref node, what, shard) in &ledger.events {
        if node == "c" && what == "serve" {
            let handed = ledger.events.iter().any(|(before, other, kind, s)| {
                *s == shard && other != "c" && *kind == "hand_over" && before <= &at
            });
            assert!(handed, "shard {shard} served by c before its hand-over");
        }
    }
    eprintln!("first shards after {first_shards:?}; moves per map {observed:?}");
}

#[tokio::test]
async fn a_crashed_members_shards_are_served_again_after_its_leases_run_out() {
    let nats = NatsServer::start();
    let ledger = SharedLedger::default();
    let a = join(&nats.url(), "a", &ledger, 1).await;
    let b = join(&nats.url(), "b", &ledger, 1).await;
    let c = join(&nats.url(), "c", &ledger, 1).await;
    until("balanced", Duration::from_secs(30), async || {
        balanced(&[&a, &b, &c])
    })
    .await;
    let orphans = b.owned();
    let before = failovers(&[&a, &c]);
    // When b last renewed each lease, as the server stored it: a lease runs out `lease_ttl` after
    // that (under load a renewal can come late, so the crash time alone is no bound).
    let renewed = last_renewals(&nats.url(), &config("b").prefix, orphans.keys()).await;
    let (wall, crashed) = (std::time::SystemTime::now(), Instant::now());
    b.crash();
    {
        // The process is gone: it serves nothing.
        let mut ledger = ledger.lock().expect("ledger");
        ledger.serving.retain(|_, node| node != "b");
    }
    until(
        "a and c serve everything",
        Duration::from_secs(15),
        async || counts(&[&a, &c]).values().sum::<usize>() == usize::from(SHARDS),
    )
    .await;
    let failover = crashed.elapsed();
    until("the view shows it", Duration::from_secs(5), async || {
        let view = c.view().await.expect("view");
        let names: Vec<&str> = view.members.iter().map(|m| m.name.as_str()).collect();
        view.shards_owned == SHARDS && names == ["a", "c"]
    })
    .await;
    // Nobody took one of b's shards before its lease could have run out.
    let ttl = config("b").lease_ttl;
    let ledger = ledger.lock().expect("ledger");
    for &(at, ref node, what, shard) in &ledger.events {
        if what == "serve" && at > crashed && orphans.contains_key(&shard) {
            let served = wall + at.duration_since(crashed);
            let runs_out = renewed[&shard] + ttl;
            // The server's clock and ours are the same machine's; 20 ms for timer granularity.
            assert!(
                served + Duration::from_millis(20) >= runs_out,
                "{node} took shard {shard} {:?} before its lease ran out",
                runs_out.duration_since(served).unwrap_or_default()
            );
            // A later owner writes with a higher epoch.
            let epoch = [&a, &c]
                .iter()
                .find_map(|member| member.owned().get(&shard).copied())
                .expect("served");
            assert!(epoch > orphans[&shard], "shard {shard}");
        }
    }
    assert!(ledger.violations.is_empty(), "{:?}", ledger.violations);
    // Each of b's shards was taken over from a lease that ran out (so was any lease a or c
    // fenced on the way, on a loaded machine).
    let taken_over = failovers(&[&a, &c]) - before;
    assert!(
        taken_over >= orphans.len() as u64
            && taken_over <= orphans.len() as u64 + fenced(&[&a, &c]),
        "{taken_over} failovers for {} orphans",
        orphans.len()
    );
    eprintln!("failover after {failover:?}");
}

#[tokio::test]
async fn a_member_leaving_in_order_hands_every_shard_over_before_others_serve_them() {
    let nats = NatsServer::start();
    let ledger = SharedLedger::default();
    let a = join(&nats.url(), "a", &ledger, 1).await;
    let b = join(&nats.url(), "b", &ledger, 1).await;
    until("balanced", Duration::from_secs(30), async || {
        balanced(&[&a, &b])
    })
    .await;
    let handed = b.owned().len() as u64;
    // Counted from here: a busy balancing may have moved a few of b's shards back and forth.
    let fenced_before = fenced(&[&b]);
    let released_before = b.metrics().moves("released");
    let left = Instant::now();
    b.leave().await;
    assert_eq!(b.readiness(), Readiness::NotMember);
    // Given back, or (a slow NATS on a loaded machine) dropped to run out.
    assert_eq!(
        b.metrics().moves("released") - released_before + fenced(&[&b]) - fenced_before,
        handed
    );
    assert_eq!(b.metrics().shards_owned.get(), 0);
    assert_eq!(b.metrics().coordinator.get(), 0);
    until("a serves everything", Duration::from_secs(10), async || {
        a.owned().len() == usize::from(SHARDS)
    })
    .await;
    // Given back, not run out: well before a lease's lifetime.
    let took = left.elapsed();
    assert!(
        took < config("a").lease_ttl + config("a").member_ttl,
        "{took:?}"
    );
    assert_eq!(violations(&ledger), Vec::<String>::new());
    let view = a.view().await.expect("view");
    let names: Vec<&str> = view.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["a"]);
    // Given back is not a failover. (A lease whose giving back timed out on a loaded machine
    // runs out and is rightly counted as one: a few at most.)
    assert!(
        failovers(&[&a]) * 10 <= handed,
        "{} failovers",
        failovers(&[&a])
    );
}

#[tokio::test]
async fn a_member_cut_off_from_nats_stops_serving_before_anyone_else_may_start() {
    let mut nats = NatsCluster::start(3).await;
    let ledger = SharedLedger::default();
    // a and c reach the cluster through servers 0 and 1, b only through server 2.
    let a = join(&nats.servers[0].url(), "a", &ledger, 3).await;
    let b = join(&nats.servers[2].url(), "b", &ledger, 3).await;
    let c = join(&nats.servers[1].url(), "c", &ledger, 3).await;
    until("balanced", Duration::from_secs(40), async || {
        balanced(&[&a, &b, &c])
    })
    .await;
    let cut_off = b.owned();
    nats.kill("crest-2");
    until(
        "a and c serve everything",
        Duration::from_secs(20),
        async || counts(&[&a, &c]).values().sum::<usize>() == usize::from(SHARDS),
    )
    .await;
    assert!(b.owned().is_empty(), "b fenced itself: {:?}", b.owned());
    assert!(fenced(&[&b]) >= cut_off.len() as u64);
    assert!(b.metrics().renewals("error") > 0);
    // Every shard b fenced was taken over from its lease running out (so was any that a or c
    // fenced on a loaded machine).
    let taken_over = failovers(&[&a, &c]);
    assert!(
        taken_over >= cut_off.len() as u64 && taken_over <= fenced(&[&a, &b, &c]),
        "{taken_over} failovers, {} cut off",
        cut_off.len()
    );
    let ledger_now = ledger.lock().expect("ledger");
    for &shard in cut_off.keys() {
        let fenced = ledger_now
            .events
            .iter()
            .find(|(_, node, what, s)| node == "b" && *what == "fence" && *s == shard)
            .map(|(at, ..)| *at)
            .unwrap_or_else(|| panic!("b never fenced shard {shard}"));
        let taken = ledger_now
            .events
            .iter()
            .filter(|(_, node, what, s)| node != "b" && *what == "serve" && *s == shard)
            .map(|(at, ..)| *at)
            .max()
            .expect("taken over");
        assert!(fenced < taken, "shard {shard}: taken before b fenced it");
    }
    assert!(
        ledger_now.violations.is_empty(),
        "{:?}",
        ledger_now.violations
    );
}

/// A host whose hand-overs wait until the gate opens.
struct Gated {
    open: tokio::sync::watch::Receiver<bool>,
}

#[async_trait::async_trait]
impl ShardHost for Gated {
    async fn serve(&self, _shard: u16, _epoch: u64) {}

    async fn hand_over(&self, _shard: u16) {
        let mut open = self.open.clone();
        let _ = open.wait_for(|open| *open).await;
    }

    async fn fence(&self, _shard: u16) {}

    fn load(&self) -> Load {
        Load::default()
    }
}

#[tokio::test]
async fn a_member_is_ready_only_while_every_shard_has_a_live_owner() {
    let nats = NatsServer::start();
    let (gate, open) = tokio::sync::watch::channel(false);
    let client = async_nats::connect(nats.url()).await.expect("connects");
    let a = Cluster::join(client, config("a"), Arc::new(Gated { open }))
        .await
        .expect("joins");
    until("a alone is ready", Duration::from_secs(15), async || {
        a.readiness() == Readiness::Ready
    })
    .await;
    assert_eq!(a.owned().len(), usize::from(SHARDS));
    // b joins; the shards the coordinator moves to b are stuck in a's hand-over: nobody serves
    // them, so neither member is ready.
    let ledger = SharedLedger::default();
    let b = join(&nats.url(), "b", &ledger, 1).await;
    until(
        "shards in a stuck hand-over make both unready",
        Duration::from_secs(15),
        async || {
            [&a, &b].iter().all(|member| {
                matches!(member.readiness(), Readiness::ShardsUnowned { owned, total }
                    if owned < total && total == SHARDS)
            })
        },
    )
    .await;
    assert!(b.owned().is_empty(), "the leases are still a's");
    let reason = a.readiness().to_string();
    assert!(reason.ends_with("of 256 shards owned"), "{reason}");
    // The hand-overs end: b takes the shards, both are ready.
    gate.send_replace(true);
    until("both ready", Duration::from_secs(30), async || {
        a.readiness() == Readiness::Ready
            && b.readiness() == Readiness::Ready
            && balanced(&[&a, &b])
    })
    .await;
    assert!(a.metrics().moves("released") > 0);
    assert!(
        b.metrics().moves("acquired") <= a.metrics().moves("released") + fenced(&[&a]),
        "every shard b serves came from a"
    );
    assert!(
        failovers(&[&a, &b]) * 10 <= a.metrics().moves("released"),
        "hand-overs are not failovers"
    );
    b.leave().await;
    assert_eq!(b.readiness(), Readiness::NotMember);
}

/// A node of a cluster in this process: its actors, its member of the cluster.
struct ClusterNode {
    node: Arc<crest_actors::Node>,
    member: Cluster,
}

async fn start_node(
    url: &str,
    name: &str,
    journal: &Arc<dyn crest_actors::ports::journal::EventJournal>,
    ledger: &SharedLedger,
) -> ClusterNode {
    use crest_actors::shard::remote::Ownership;
    use crest_infra::cluster::{NatsShardLink, NodeHost};
    let client = async_nats::connect(url).await.expect("connects");
    let link = NatsShardLink::new(client.clone(), "crest", Duration::from_secs(2));
    let ownership = Arc::new(Ownership::new(Arc::new(link), Duration::from_secs(10)));
    let config = crest_actors::NodeConfig {
        name: name.to_owned(),
        cluster: Some(ownership),
        ..crest_actors::NodeConfig::default()
    };
    let node = Arc::new(
        crest_actors::Node::start(
            Arc::clone(journal),
            Arc::new(crest_infra::bus::inprocess::InProcessBus::default()),
            Arc::new(crest_actors::test_brain::EchoBrain),
            &prometheus::Registry::new(),
            config,
        )
        .await
        .expect("node starts"),
    );
    // The ledger checks that no shard is served twice; the node host does the serving.
    let host = Arc::new(Both {
        node: NodeHost::new(client.clone(), "crest", Arc::clone(&node)),
        ledger: Host {
            node: name.to_owned(),
            ledger: Arc::clone(ledger),
        },
    });
    let member = Cluster::join(client, config_for(name), host)
        .await
        .expect("joins");
    ClusterNode { node, member }
}

fn config_for(node: &str) -> ClusterConfig {
    config(node)
}

/// A node host that also keeps the ledger.
struct Both {
    node: crest_infra::cluster::NodeHost,
    ledger: Host,
}

#[async_trait::async_trait]
impl ShardHost for Both {
    async fn serve(&self, shard: u16, epoch: u64) {
        self.ledger.serve(shard, epoch).await;
        self.node.serve(shard, epoch).await;
    }
    async fn hand_over(&self, shard: u16) {
        self.node.hand_over(shard).await;
        self.ledger.hand_over(shard).await;
    }
    async fn fence(&self, shard: u16) {
        self.node.fence(shard).await;
        self.ledger.fence(shard).await;
    }
    fn load(&self) -> Load {
        self.node.load()
    }
}

fn inbound(
    tenant: &crest_proto::TenantId,
    customer: usize,
    id: &str,
) -> crest_proto::commands::InboundMessage {
    crest_proto::commands::InboundMessage {
        customer: crest_proto::CustomerId::new(tenant, format!("customer-{customer}")).expect("id"),
        channel: "web".to_owned(),
        channel_message_id: format!("{customer}-{id}"),
        text: "where is my parcel?".to_owned(),
        message_id: crest_proto::MessageId::generate(tenant),
    }
}

/// Sends message `id` of every customer through `node`; the acknowledgements' duplicate flags.
async fn send_all(node: &crest_actors::Node, customers: usize, id: &str) -> Vec<bool> {
    let tenant = crest_proto::TenantId::new("shop").expect("tenant");
    let sends = (0..customers).map(|customer| {
        let message = inbound(&tenant, customer, id);
        async move {
            node.region()
                .customer_message(message, crest_proto::envelope::EventMeta::default())
                .await
                .unwrap_or_else(|error| panic!("customer-{customer} {id}: {error}"))
                .duplicate
        }
    });
    join_all_in_chunks(sends.collect(), 50).await
}

async fn join_all_in_chunks<F: std::future::Future<Output = bool>>(
    futures: Vec<F>,
    chunk: usize,
) -> Vec<bool> {
    let mut results = Vec::new();
    let mut futures = futures.into_iter().peekable();
    while futures.peek().is_some() {
        let batch: Vec<F> = futures.by_ref().take(chunk).collect();
        results.extend(futures::future::join_all(batch).await);
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_reach_their_shard_from_any_node_exactly_once_also_across_a_hand_over() {
    let nats = NatsServer::start();
    let ledger = SharedLedger::default();
    let dir = tempfile::tempdir().expect("dir");
    let journal: Arc<dyn crest_actors::ports::journal::EventJournal> = Arc::new(
        crest_infra::journal::FjallJournal::open(
            dir.path(),
            crest_infra::journal::FjallJournalConfig::default(),
            &prometheus::Registry::new(),
        )
        .expect("journal"),
    );
    let a = start_node(&nats.url(), "a", &journal, &ledger).await;
    let b = start_node(&nats.url(), "b", &journal, &ledger).await;
    until("balanced", Duration::from_secs(30), async || {
        balanced(&[&a.member, &b.member])
    })
    .await;
    const CUSTOMERS: usize = 120;
    // Through a: about half the customers live on b's shards.
    let first = send_all(&a.node, CUSTOMERS, "m1").await;
    assert!(first.iter().all(|duplicate| !duplicate), "new messages");
    // The same messages through b: each recognised where it was stored.
    let again = send_all(&b.node, CUSTOMERS, "m1").await;
    assert!(again.iter().all(|duplicate| *duplicate), "{again:?}");
    // b leaves while a sends the next message of every customer: each is accepted once.
    let sending = send_all(&a.node, CUSTOMERS, "m2");
    let leaving = b.member.leave();
    // (A message whose first attempt was stored as b stopped is acknowledged on a later attempt
    // as a duplicate: what counts is that every one is acknowledged and stored once, below.)
    let (second, ()) = tokio::join!(sending, leaving);
    assert_eq!(second.len(), CUSTOMERS);
    until("a serves everything", Duration::from_secs(10), async || {
        a.member.owned().len() == usize::from(SHARDS)
    })
    .await;
    let third = send_all(&a.node, CUSTOMERS, "m2").await;
    assert!(third.iter().all(|duplicate| *duplicate), "{third:?}");
    // Every customer's conversation holds both messages, once each.
    let tenant = crest_proto::TenantId::new("shop").expect("tenant");
    for customer in 0..CUSTOMERS {
        let id = crest_proto::CustomerId::new(&tenant, format!("customer-{customer}")).expect("id");
        let conversation = a
            .node
            .region()
            .open_conversation(&id)
            .await
            .expect("answers")
            .expect("an open conversation");
        let state = a
            .node
            .region()
            .conversation_state(&conversation)
            .await
            .expect("answers")
            .expect("exists");
        let from_customer = state
            .messages
            .iter()
            .filter(|message| message.role == crest_proto::events::Role::Customer)
            .count();
        assert_eq!(from_customer, 2, "customer-{customer}");
    }
    assert_eq!(violations(&ledger), Vec::<String>::new());
}

/// `crest serve` as a cluster node on `port`, journaling to JetStream on `nats`.
fn cluster_process(
    nats: &str,
    name: &str,
    port: u16,
    dir: &std::path::Path,
) -> std::process::Child {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_crest"))
        .args([
            "serve",
            "--no-demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args([
            "--nats",
            nats,
            "--journal",
            "jetstream",
            "--cluster-node",
            name,
        ])
        .arg("--data-dir")
        .arg(dir)
        .env("CREST_LOG", "warn")
        .env("CREST_OPERATOR_TOKEN", support::OPERATOR_TOKEN)
        // The nodes share a master key, so they seal customers' texts in a shared vault.
        .env("CREST_MASTER_KEY", SHARED_MASTER_KEY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("crest starts");
    support::wait_for_port(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    child
}

/// The master key of the `crest serve` cluster nodes (32 bytes of 42).
const SHARED_MASTER_KEY: &str = "1:KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serve_nodes_share_the_journal_and_answer_for_each_others_shards() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let ports = [support::free_port(), support::free_port()];
    let _one = Killed(cluster_process(
        &nats.url(),
        "one",
        ports[0],
        &dir.path().join("one"),
    ));
    let _two = Killed(cluster_process(
        &nats.url(),
        "two",
        ports[1],
        &dir.path().join("two"),
    ));
    let clients: Vec<support::Client> = ports
        .iter()
        .map(|port| support::Client::new(std::net::SocketAddr::from(([127, 0, 0, 1], *port))))
        .collect();
    until(
        "both serve half the shards",
        Duration::from_secs(40),
        async || {
            let view = clients[1].get("/v1/cluster").await.body;
            let members = view["members"].as_array().cloned().unwrap_or_default();
            view["shards_owned"] == 256
                && members.len() == 2
                && members.iter().all(|member| member["shards"] == 128)
        },
    )
    .await;
    let view = clients[0].get("/v1/cluster").await.body;
    assert_eq!(view["node"], "one");
    assert_eq!(view["shards_total"], 256);
    assert!(
        view["coordinator"] == "one" || view["coordinator"] == "two",
        "{view}"
    );
    assert_eq!(
        view["members"][1]["url"],
        format!("http://127.0.0.1:{}", ports[1])
    );
    for client in &clients {
        until("ready", Duration::from_secs(10), async || {
            client.get_text("/readyz").await == (200, "ready".to_owned())
        })
        .await;
    }
    // One routing desk for the tenant, whichever node is asked: a seat set through one node is
    // read through the other, and the other way round for the routing table.
    for (writer, reader) in [(0, 1), (1, 0)] {
        let agent = format!("agent-{writer}");
        let seat = clients[writer]
            .put(
                &format!("/v1/tenants/shop/agents/{agent}"),
                &serde_json::json!({"status": "online", "groups": ["general"], "capacity": 3}),
            )
            .await;
        assert_eq!(seat.status, 200, "{:?}", seat.body);
        let read = clients[reader]
            .get(&format!("/v1/tenants/shop/agents/{agent}"))
            .await;
        assert_eq!(read.status, 200, "{:?}", read.body);
        assert_eq!(read.body["capacity"], 3, "{:?}", read.body);
    }
    let table = clients[1]
        .put(
            "/v1/tenants/shop/routing-table",
            &serde_json::json!({"routes": {"refund_request": "after_sales"}, "default_group": "general"}),
        )
        .await;
    assert_eq!(table.status, 200, "{:?}", table.body);
    let read = clients[0].get("/v1/tenants/shop/routing-table").await;
    assert_eq!(
        read.body["routes"]["refund_request"], "after_sales",
        "{:?}",
        read.body
    );
    // The queue and a customer's tier are answered by the desk's node on either node (named
    // queries: only the answer travels).
    let vip = clients[0]
        .put(
            "/v1/tenants/shop/customers/big-spender",
            &serde_json::json!({"tier": "vip"}),
        )
        .await;
    assert_eq!(vip.status, 200, "{:?}", vip.body);
    for client in &clients {
        let tier = client.get("/v1/tenants/shop/customers/big-spender").await;
        assert_eq!(tier.body["tier"], "vip", "{:?}", tier.body);
        let queue = client.get("/v1/tenants/shop/queues/general").await;
        assert_eq!(queue.status, 200, "{:?}", queue.body);
        assert_eq!(queue.body["agents_online"], 2, "{:?}", queue.body);
        assert_eq!(queue.body["free_capacity"], 6, "{:?}", queue.body);
    }
    // Messages through one; every conversation read back through two.
    for customer in 0..20 {
        let answer = clients[0]
            .message("shop", &format!("c{customer}"), "m1", "where is my parcel?")
            .await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        let id = answer.conversation_id();
        let view = clients[1]
            .get(&format!("/v1/tenants/shop/conversations/{id}"))
            .await;
        assert_eq!(view.status, 200, "{:?}", view.body);
        let events = clients[1]
            .get(&format!("/v1/tenants/shop/conversations/{id}/events"))
            .await;
        assert_eq!(events.status, 200, "{:?}", events.body);
        assert!(
            !events.body["events"].as_array().expect("events").is_empty(),
            "{:?}",
            events.body
        );
        // The same message again through two: acknowledged as a duplicate.
        let again = clients[1]
            .message("shop", &format!("c{customer}"), "m1", "where is my parcel?")
            .await;
        assert_eq!(again.body["duplicate"], true, "{:?}", again.body);
    }
    // A conversation's live feed works on both nodes: on one of them its entity runs elsewhere,
    // and its events come over NATS.
    let id = clients[0]
        .message("shop", "c0", "m1", "where is my parcel?")
        .await
        .conversation_id();
    for reader in [0_usize, 1] {
        let writer = 1 - reader;
        let events = clients[reader]
            .get(&format!("/v1/tenants/shop/conversations/{id}/events"))
            .await;
        let last = events.body["events"]
            .as_array()
            .and_then(|events| events.last())
            .and_then(|event| event["seq"].as_u64())
            .expect("events");
        let url = clients[reader]
            .ws_url(&format!(
                "/v1/tenants/shop/conversations/{id}/stream?after={last}"
            ))
            .await;
        let (mut socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        // Let the node start following the stream before the message goes in.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let message_id = format!("live-{reader}");
        let answer = clients[writer]
            .message("shop", "c0", &message_id, "还没到 still not here")
            .await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        let seen = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(Ok(frame)) = socket.next().await {
                if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
                    let event: serde_json::Value = serde_json::from_str(&text).expect("json");
                    if event["data"]["channel_message_id"] == message_id.as_str() {
                        return event;
                    }
                }
            }
            panic!("socket closed");
        })
        .await
        .unwrap_or_else(|_| panic!("no live event on node {reader} within 10 s"));
        assert_eq!(seen["type"], "conversation.customer_message_received");
        assert_eq!(
            seen["data"]["text"], "还没到 still not here",
            "opened on both nodes"
        );
    }
    // Erasure through one node reaches the conversation wherever it runs, and every node.
    let erased = clients[1].delete("/v1/tenants/shop/customers/c0").await;
    assert_eq!(erased.status, 200, "{:?}", erased.body);
    assert_eq!(erased.body["erased"], true, "{:?}", erased.body);
    for client in &clients {
        let view = client
            .get(&format!("/v1/tenants/shop/conversations/{id}?reveal=pii"))
            .await;
        assert_eq!(view.status, 200, "{:?}", view.body);
        let texts: Vec<&str> = view.body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter(|message| message["role"] == "customer")
            .filter_map(|message| message["text"].as_str())
            .collect();
        assert!(
            !texts.is_empty() && texts.iter().all(|text| *text == "[erased]"),
            "{texts:?}"
        );
    }
    // Business metrics are counted once for the whole cluster: summed over the nodes, the
    // customer messages are those sent (20 first messages and 2 live ones), not once per node.
    let customer_messages = async || {
        summed_over(
            &clients,
            "crest_conversation_messages_total{",
            &["role=\"customer\"", "tenant=\"shop\""],
        )
        .await
    };
    until(
        "22 customer messages counted",
        Duration::from_secs(20),
        async || customer_messages().await >= 22.0,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(customer_messages().await, 22.0);
    // So are quality inspections: one resolved conversation is one score over the cluster, while
    // every node's own read model lists its inspection.
    let resolved = clients[0]
        .post(
            &format!("/v1/tenants/shop/conversations/{id}/resolve"),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(resolved.status, 200, "{:?}", resolved.body);
    let scores =
        async || summed_over(&clients, "crest_quality_score_count{", &["tenant=\"shop\""]).await;
    until(
        "the inspection counted",
        Duration::from_secs(20),
        async || scores().await >= 1.0,
    )
    .await;
    for client in &clients {
        until(
            "every node lists the inspection",
            Duration::from_secs(20),
            async || {
                let listed = client.get("/v1/tenants/shop/quality").await;
                listed.body["inspections"]
                    .as_array()
                    .is_some_and(|inspections| !inspections.is_empty())
            },
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(scores().await, 1.0, "one inspection, counted once");
    // Both nodes expose every cluster metric of the catalogue; together they own every shard.
    let mut owned = 0.0;
    let mut coordinators = 0.0;
    for client in &clients {
        let (status, text) = client.get_text("/metrics").await;
        assert_eq!(status, 200);
        let metrics = samples(&text);
        for name in catalogued_cluster_metrics() {
            assert!(
                metrics.keys().any(|series| family_of(series) == name),
                "{name} not exposed"
            );
        }
        assert_eq!(metrics["crest_cluster_members"], 2.0);
        assert_eq!(metrics["crest_cluster_shards"], 256.0);
        owned += metrics["crest_cluster_shards_owned"];
        coordinators += metrics["crest_cluster_coordinator"];
        assert!(metrics[r#"crest_cluster_shard_moves_total{direction="acquired"}"#] >= 1.0);
        assert!(metrics[r#"crest_cluster_lease_renewals_total{outcome="ok"}"#] >= 1.0);
        assert!(metrics.contains_key("crest_cluster_failovers_total"));
        // The journal says which backend it is.
        assert!(
            metrics.keys().any(
                |series| series.starts_with("crest_journal_append_seconds_count")
                    && series.contains(r#"backend="jetstream""#)
            ),
            "no jetstream journal latency"
        );
    }
    assert_eq!(owned, 256.0);
    assert_eq!(coordinators, 1.0);
}

/// The metric names of the Cluster section of `docs/METRICS.md`.
/// The sum over `clients`' nodes of the series of `/metrics` that start with `prefix` and carry
/// every one of `labels`.
async fn summed_over(clients: &[support::Client], prefix: &str, labels: &[&str]) -> f64 {
    let mut total = 0.0;
    for client in clients {
        let (_, text) = client.get_text("/metrics").await;
        total += samples(&text)
            .iter()
            .filter(|(series, _)| {
                series.starts_with(prefix) && labels.iter().all(|label| series.contains(label))
            })
            .map(|(_, value)| value)
            .sum::<f64>();
    }
    total
}

fn catalogued_cluster_metrics() -> Vec<String> {
    let catalogue = include_str!("../../docs/METRICS.md");
    let section = catalogue
        .split("\n## ")
        .find(|section| section.starts_with("Cluster"))
        .expect("a Cluster section in docs/METRICS.md");
    let names: Vec<String> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_owned)
        .collect();
    assert!(names.len() >= 9, "{names:?}");
    names
}

/// A member that takes a shard and then hangs while serving it: its heartbeats stop, its lease
/// keeper goes on renewing.
struct Hanging;

#[async_trait::async_trait]
impl ShardHost for Hanging {
    async fn serve(&self, _shard: u16, _epoch: u64) {
        std::future::pending::<()>().await;
    }

    async fn hand_over(&self, _shard: u16) {}

    async fn fence(&self, _shard: u16) {}

    fn load(&self) -> Load {
        Load::default()
    }
}

#[tokio::test]
async fn readyz_answers_503_with_the_reason_while_a_shard_has_no_live_owner() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let port = support::free_port();
    let _one = Killed(cluster_process(&nats.url(), "one", port, dir.path()));
    let client = support::Client::new(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    until("one alone is ready", Duration::from_secs(40), async || {
        client.get_text("/readyz").await.0 == 200
    })
    .await;
    // A second member takes shards from one and hangs on the first: it leaves the membership
    // (no more heartbeats) while keeping that shard's lease, so one cannot take it back.
    let nats_client = async_nats::connect(nats.url()).await.expect("connects");
    let hanging = Cluster::join(
        nats_client,
        ClusterConfig::new("hanging", "http://hanging.invalid"),
        Arc::new(Hanging),
    )
    .await
    .expect("joins");
    until(
        "one unready: a shard without a live owner",
        Duration::from_secs(40),
        async || {
            let (status, body) = client.get_text("/readyz").await;
            status == 503 && body.contains("255 of 256 shards owned")
        },
    )
    .await;
    let (_, body) = client.get_text("/readyz").await;
    let answer: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(answer["error"], "not_ready", "{answer}");
    // It crashes: the lease runs out and one takes the shard over.
    hanging.crash();
    until("one ready again", Duration::from_secs(40), async || {
        client.get_text("/readyz").await.0 == 200
    })
    .await;
    let (_, text) = client.get_text("/metrics").await;
    let metrics = samples(&text);
    assert!(metrics["crest_cluster_failovers_total"] >= 1.0, "{text}");
    assert!(metrics[r#"crest_cluster_shard_moves_total{direction="released"}"#] >= 1.0);
    assert_eq!(metrics["crest_cluster_shards_owned"], 256.0);
}
