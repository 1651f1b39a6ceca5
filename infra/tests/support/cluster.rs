//! A 3-server nats-server cluster with JetStream on free loopback ports, each server with its own
//! store directory; killed on drop.

use std::net::SocketAddr;
use std::process::Child;
use std::time::{Duration, Instant};

use super::{free_port, spawn_nats_server, wait_for_port};

/// One server of a [`NatsCluster`].
pub struct ClusterServer {
    /// Its JetStream server name (`crest-0`, `crest-1`, …), as stream info reports leaders.
    pub name: String,
    /// Its client port.
    pub port: u16,
    child: Option<Child>,
    _store: tempfile::TempDir,
}

impl ClusterServer {
    /// Its client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Whether it still runs.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

/// Servers routed to each other in one cluster (`--cluster_name crest-test`).
pub struct NatsCluster {
    /// The servers, in start order.
    pub servers: Vec<ClusterServer>,
}

impl NatsCluster {
    /// Starts `size` servers and waits until every one of them answers JetStream API requests (a
    /// meta leader was elected and each server knows it).
    pub async fn start(size: usize) -> Self {
        let routes: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let route_urls = routes
            .iter()
            .map(|port| format!("nats://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut servers = Vec::with_capacity(size);
        for (index, route) in routes.iter().enumerate() {
            let store = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let name = format!("crest-{index}");
            let args: Vec<String> = [
                "-a",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-n",
                &name,
                "-js",
                "-sd",
                &store.path().display().to_string(),
                "--cluster_name",
                "crest-test",
                "--cluster",
                &format!("nats://127.0.0.1:{route}"),
                "--routes",
                &route_urls,
            ]
            .iter()
            .map(|arg| (*arg).to_owned())
            .collect();
            servers.push(ClusterServer {
                name,
                port,
                child: Some(spawn_nats_server(&args)),
                _store: store,
            });
        }
        for server in &servers {
            wait_for_port(SocketAddr::from(([127, 0, 0, 1], server.port)));
        }
        let cluster = Self { servers };
        cluster.wait_for_jetstream().await;
        cluster
    }

    async fn wait_for_jetstream(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for server in &self.servers {
            let client = async_nats::connect(server.url())
                .await
                .expect("cluster server accepts clients");
            let jetstream = async_nats::jetstream::new(client);
            loop {
                if jetstream.query_account().await.is_ok() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "jetstream of {} not ready within 30 s",
                    server.name
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Every server's client URL, separated by commas.
    pub fn urls(&self) -> String {
        self.servers
            .iter()
            .map(ClusterServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Kills the server named `name` (`kill -9` style: no shutdown).
    pub fn kill(&mut self, name: &str) {
        let server = self
            .servers
            .iter_mut()
            .find(|server| server.name == name)
            .unwrap_or_else(|| panic!("no server named {name}"));
        if let Some(mut child) = server.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for server in &mut self.servers {
            if let Some(mut child) = server.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
