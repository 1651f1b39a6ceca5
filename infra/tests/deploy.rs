//! The deployment files of `infra/deploy/` against the binary they run, without Docker or
//! Kubernetes: every `crest serve` flag and environment variable they use is one `crest serve
//! --help` lists; the three crest nodes have distinct cluster names and advertise their own
//! address; the NATS servers form one cluster whose every server the nodes know; the ScyllaDB
//! contact points, Prometheus targets, mounted files, volumes and dependencies name things that
//! exist; the Kubernetes readiness probe is `/readyz` on the container's port, and the Services,
//! StatefulSets and PodDisruptionBudgets select the pods they are meant for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn deploy_dir() -> PathBuf {
    repo_root().join("infra/deploy")
}

/// Every YAML document of `path`, as JSON values (anchors and aliases resolved).
fn yaml_documents(path: &Path) -> Vec<Value> {
    use serde::Deserialize;
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| {
            let value = serde_yaml_ng::Value::deserialize(document)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            serde_json::to_value(value)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        })
        .filter(|value| !value.is_null())
        .collect()
}

fn yaml(path: &Path) -> Value {
    let mut documents = yaml_documents(path);
    assert_eq!(documents.len(), 1, "{}: one document", path.display());
    documents.remove(0)
}

/// The long flags and environment variables `crest serve --help` lists.
struct ServeHelp {
    flags: BTreeSet<String>,
    env: BTreeSet<String>,
}

fn serve_help() -> ServeHelp {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_crest"))
        .args(["serve", "--help"])
        .output()
        .expect("crest runs");
    assert!(output.status.success(), "crest serve --help failed");
    let text = String::from_utf8(output.stdout).expect("utf-8 help");
    let mut flags = BTreeSet::new();
    let mut env = BTreeSet::new();
    for word in text.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']') {
        if let Some(flag) = word.strip_prefix("--")
            && !flag.is_empty()
        {
            let name = flag.split(['=', '<']).next().unwrap_or(flag);
            flags.insert(format!("--{name}"));
        }
    }
    for (at, _) in text.match_indices("[env: ") {
        let rest = &text[at + "[env: ".len()..];
        let name = rest.split(['=', ']']).next().unwrap_or_default();
        env.insert(name.to_owned());
    }
    assert!(flags.contains("--cluster-node"), "{flags:?}");
    assert!(env.contains("CREST_NATS"), "{env:?}");
    ServeHelp { flags, env }
}

/// Arguments as strings.
fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("a list: {value}"))
        .iter()
        .map(|arg| match arg {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// The value following `flag` in `args`.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|arg| arg == flag)
        .and_then(|at| args.get(at + 1))
        .map(String::as_str)
}

/// `crest serve` arguments: every flag is one the binary knows, and every flag that takes a value
/// has one.
fn check_serve_args(place: &str, args: &[String], help: &ServeHelp) {
    assert_eq!(
        args.first().map(String::as_str),
        Some("serve"),
        "{place}: {args:?}"
    );
    for arg in args.iter().filter(|arg| arg.starts_with("--")) {
        let name = arg.split('=').next().unwrap_or(arg);
        assert!(
            help.flags.contains(name),
            "{place}: `crest serve` has no {name} (it knows {:?})",
            help.flags
        );
    }
}

/// `(host, port)` of `scheme://host:port` or `host:port`.
fn host_port(address: &str) -> (String, u16) {
    let without_scheme = address.split_once("://").map_or(address, |(_, rest)| rest);
    let authority = without_scheme.split('/').next().unwrap_or(without_scheme);
    let (host, port) = authority
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{address}: no port"));
    (
        host.to_owned(),
        port.parse()
            .unwrap_or_else(|_| panic!("{address}: bad port")),
    )
}

fn is_crest(service: &Value) -> bool {
    service["image"]
        .as_str()
        .is_some_and(|image| image.starts_with("crest:"))
}

#[test]
#[allow(clippy::too_many_lines)]
fn the_cluster_compose_file_runs_three_nodes_on_scylla_and_one_nats_cluster() {
    let help = serve_help();
    let compose = yaml(&deploy_dir().join("docker-compose.cluster.yml"));
    let services = compose["services"].as_object().expect("services");
    let declared_volumes: BTreeSet<&str> = compose["volumes"]
        .as_object()
        .expect("volumes")
        .keys()
        .map(String::as_str)
        .collect();

    // Every service: dependencies exist, named volumes are declared, mounted files exist.
    for (name, service) in services {
        if let Some(depends) = service["depends_on"].as_object() {
            for dependency in depends.keys() {
                assert!(
                    services.contains_key(dependency),
                    "{name} depends on {dependency}"
                );
            }
        }
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let volume = volume.as_str().expect("short volume syntax");
            let source = volume.split(':').next().expect("source");
            if source.starts_with('.') {
                let path = deploy_dir().join(source);
                assert!(path.exists(), "{name} mounts {} (missing)", path.display());
            } else {
                assert!(
                    declared_volumes.contains(source),
                    "{name}: volume {source} undeclared"
                );
            }
        }
    }

    // NATS: three servers of one JetStream cluster, routes naming every server.
    let nats: BTreeMap<&str, Vec<String>> = services
        .iter()
        .filter(|(_, service)| {
            service["image"]
                .as_str()
                .is_some_and(|image| image.starts_with("nats:"))
        })
        .map(|(name, service)| (name.as_str(), strings(&service["command"])))
        .collect();
    assert_eq!(nats.len(), 3, "{:?}", nats.keys());
    let mut cluster_names = BTreeSet::new();
    let mut server_names = BTreeSet::new();
    for (name, args) in &nats {
        assert!(args.iter().any(|arg| arg == "-js"), "{name}: JetStream on");
        cluster_names.insert(flag_value(args, "--cluster_name").expect("--cluster_name"));
        server_names.insert(flag_value(args, "-n").expect("-n"));
        let cluster_port = host_port(flag_value(args, "--cluster").expect("--cluster")).1;
        let routes: BTreeSet<String> = flag_value(args, "--routes")
            .expect("--routes")
            .split(',')
            .map(|route| {
                let (host, port) = host_port(route);
                assert_eq!(port, cluster_port, "{name}: {route}");
                host
            })
            .collect();
        let all: BTreeSet<String> = nats.keys().map(|&name| name.to_owned()).collect();
        assert_eq!(routes, all, "{name}: routes to every server");
    }
    assert_eq!(
        cluster_names.len(),
        1,
        "one NATS cluster: {cluster_names:?}"
    );
    assert_eq!(server_names.len(), 3, "distinct server names");

    // ScyllaDB: three nodes, one seed list; the schema job mounts schema.cql.
    let scylla: Vec<&str> = services
        .iter()
        .filter(|(_, service)| {
            service["image"]
                .as_str()
                .is_some_and(|image| image.starts_with("scylladb/scylla"))
                && service["entrypoint"].is_null()
        })
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(scylla.len(), 3, "{scylla:?}");
    let schema_job = services
        .values()
        .find(|service| service["entrypoint"].to_string().contains("schema.cql"))
        .expect("a service applying schema.cql");
    assert!(
        schema_job["volumes"]
            .to_string()
            .contains("./scylla/schema.cql:"),
        "{schema_job}"
    );

    // Crest: three nodes, distinct names, each advertising itself, knowing every NATS server and
    // ScyllaDB node, waiting for the schema.
    let crest: BTreeMap<&str, &Value> = services
        .iter()
        .filter(|(_, service)| is_crest(service))
        .map(|(name, service)| (name.as_str(), service))
        .collect();
    assert_eq!(crest.len(), 3, "{:?}", crest.keys());
    let mut node_names = BTreeSet::new();
    let mut host_ports = BTreeSet::new();
    for (name, service) in &crest {
        let args = strings(&service["command"]);
        check_serve_args(name, &args, &help);
        let node = flag_value(&args, "--cluster-node").expect("--cluster-node");
        node_names.insert(node.to_owned());
        assert_eq!(flag_value(&args, "--journal"), Some("scylla"), "{name}");
        assert_eq!(
            flag_value(&args, "--replicas"),
            Some("3"),
            "{name}: R3 on three NATS servers"
        );
        let listen_port = host_port(flag_value(&args, "--listen").expect("--listen")).1;
        let advertised = host_port(flag_value(&args, "--advertise-url").expect("--advertise-url"));
        assert_eq!(advertised, ((*name).to_owned(), listen_port), "{name}");
        let nats_hosts: BTreeSet<String> = flag_value(&args, "--nats")
            .expect("--nats")
            .split(',')
            .map(|url| {
                let (host, port) = host_port(url);
                assert_eq!(port, 4222, "{name}: {url}");
                host
            })
            .collect();
        let all_nats: BTreeSet<String> = nats.keys().map(|&name| name.to_owned()).collect();
        assert_eq!(nats_hosts, all_nats, "{name}: every NATS server");
        let scylla_hosts: BTreeSet<String> = flag_value(&args, "--scylla-uri")
            .expect("--scylla-uri")
            .split(',')
            .map(|node| host_port(node).0)
            .collect();
        let all_scylla: BTreeSet<String> = scylla.iter().map(|&name| name.to_owned()).collect();
        assert_eq!(scylla_hosts, all_scylla, "{name}: every ScyllaDB node");
        let depends = service["depends_on"].as_object().expect("depends_on");
        assert!(
            depends
                .iter()
                .any(|(_, condition)| condition["condition"] == "service_completed_successfully"),
            "{name} waits for the schema"
        );
        for port in service["ports"].as_array().expect("ports") {
            let (published, inner) = port
                .as_str()
                .and_then(|port| port.split_once(':'))
                .expect("HOST:CONTAINER");
            assert_eq!(inner.parse::<u16>().ok(), Some(listen_port), "{name}");
            assert!(
                host_ports.insert(published.to_owned()),
                "port {published} twice"
            );
        }
    }
    assert_eq!(
        node_names.len(),
        3,
        "distinct --cluster-node: {node_names:?}"
    );

    // Prometheus scrapes every node at its listen port; Grafana's home dashboard exists.
    let prometheus = &services["prometheus"];
    let config_file = prometheus["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter_map(Value::as_str)
        .find(|volume| volume.ends_with(":/etc/prometheus/prometheus.yml:ro"))
        .and_then(|volume| volume.split(':').next())
        .expect("a mounted prometheus.yml");
    let config = yaml(&deploy_dir().join(config_file));
    let job = config["scrape_configs"]
        .as_array()
        .expect("scrape_configs")
        .iter()
        .find(|job| job["job_name"] == "crest")
        .expect("a crest job");
    let targets: BTreeSet<String> = strings(&job["static_configs"][0]["targets"])
        .into_iter()
        .collect();
    let expected: BTreeSet<String> = crest
        .iter()
        .map(|(name, service)| {
            let args = strings(&service["command"]);
            let port = host_port(flag_value(&args, "--listen").expect("--listen")).1;
            format!("{name}:{port}")
        })
        .collect();
    assert_eq!(targets, expected);
    let home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
        .as_str()
        .expect("a home dashboard");
    let home_file = home.rsplit('/').next().expect("file name");
    assert!(
        repo_root().join("dashboards").join(home_file).exists(),
        "{home}"
    );
}

#[test]
fn the_single_node_compose_file_uses_flags_crest_serve_knows() {
    let help = serve_help();
    let compose = yaml(&deploy_dir().join("docker-compose.yml"));
    let services = compose["services"].as_object().expect("services");
    let crest: Vec<(&String, &Value)> = services
        .iter()
        .filter(|(_, service)| is_crest(service))
        .collect();
    assert_eq!(crest.len(), 1);
    for (name, service) in crest {
        check_serve_args(name, &strings(&service["command"]), &help);
    }
}

/// Every document of every manifest under `infra/deploy/k8s/`, by (kind, name).
fn manifests() -> BTreeMap<(String, String), Value> {
    let dir = deploy_dir().join("k8s");
    let kustomization = yaml(&dir.join("kustomization.yaml"));
    let mut all = BTreeMap::new();
    for file in strings(&kustomization["resources"]) {
        for document in yaml_documents(&dir.join(&file)) {
            let kind = document["kind"].as_str().expect("kind").to_owned();
            let name = document["metadata"]["name"]
                .as_str()
                .expect("name")
                .to_owned();
            let previous = all.insert((kind.clone(), name.clone()), document);
            assert!(previous.is_none(), "{kind} {name} twice");
        }
    }
    all
}

fn get<'a>(manifests: &'a BTreeMap<(String, String), Value>, kind: &str, name: &str) -> &'a Value {
    manifests
        .get(&(kind.to_owned(), name.to_owned()))
        .unwrap_or_else(|| panic!("no {kind} {name} in infra/deploy/k8s"))
}

/// Whether `selector` (`matchLabels` or a Service's plain map) selects pods labelled `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let wanted = selector["matchLabels"]
        .as_object()
        .or_else(|| selector.as_object())
        .expect("a selector");
    !wanted.is_empty() && wanted.iter().all(|(key, value)| &labels[key] == value)
}

#[test]
#[allow(clippy::too_many_lines)]
fn the_kubernetes_manifests_run_crest_and_nats_as_consistent_stateful_sets() {
    let help = serve_help();
    let manifests = manifests();

    // NATS: a StatefulSet of three behind a headless Service, its config routing to every pod.
    let nats = get(&manifests, "StatefulSet", "nats");
    let nats_replicas = nats["spec"]["replicas"].as_u64().expect("replicas");
    assert_eq!(nats_replicas, 3);
    let nats_labels = &nats["spec"]["template"]["metadata"]["labels"];
    assert!(selects(&nats["spec"]["selector"], nats_labels));
    let nats_service_name = nats["spec"]["serviceName"].as_str().expect("serviceName");
    let nats_service = get(&manifests, "Service", nats_service_name);
    assert_eq!(nats_service["spec"]["clusterIP"], "None", "headless");
    assert!(selects(&nats_service["spec"]["selector"], nats_labels));
    let nats_pods: BTreeSet<String> = (0..nats_replicas)
        .map(|index| format!("nats-{index}.{nats_service_name}"))
        .collect();
    let config = get(&manifests, "ConfigMap", "nats-config")["data"]["nats.conf"]
        .as_str()
        .expect("nats.conf");
    assert!(config.contains("jetstream"), "JetStream on");
    let routes: BTreeSet<String> = config
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("nats://"))
        .map(|route| {
            let (host, port) = host_port(route);
            assert_eq!(port, 6222, "{route}");
            host
        })
        .collect();
    assert_eq!(routes, nats_pods, "routes to every NATS pod");
    assert!(selects(
        &get(&manifests, "PodDisruptionBudget", "nats")["spec"]["selector"],
        nats_labels
    ));

    // Crest: a StatefulSet of three; flags and environment variables crest serve knows; each pod
    // named after itself; readiness is /readyz.
    let crest = get(&manifests, "StatefulSet", "crest");
    assert_eq!(crest["spec"]["replicas"], 3);
    let pod = &crest["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    assert!(selects(&crest["spec"]["selector"], labels));
    let container = &pod["spec"]["containers"][0];
    let args = strings(&container["args"]);
    check_serve_args("StatefulSet crest", &args, &help);
    assert_eq!(flag_value(&args, "--journal"), Some("scylla"));
    assert_eq!(
        flag_value(&args, "--replicas").and_then(|r| r.parse::<u64>().ok()),
        Some(nats_replicas)
    );
    // Distinct node names: the pod's own name.
    assert_eq!(flag_value(&args, "--cluster-node"), Some("$(POD_NAME)"));
    let env: BTreeMap<&str, &Value> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|var| (var["name"].as_str().expect("name"), var))
        .collect();
    assert_eq!(
        env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    let service_name = crest["spec"]["serviceName"].as_str().expect("serviceName");
    let headless = get(&manifests, "Service", service_name);
    assert_eq!(headless["spec"]["clusterIP"], "None", "headless");
    assert!(selects(&headless["spec"]["selector"], labels));
    let advertised = flag_value(&args, "--advertise-url").expect("--advertise-url");
    let (host, port) = host_port(advertised);
    assert!(
        host.starts_with(&format!("$(POD_NAME).{service_name}.")),
        "{advertised}"
    );
    assert_eq!(
        port,
        host_port(flag_value(&args, "--listen").expect("--listen")).1
    );
    // Environment variables crest reads, from keys the ConfigMap has.
    for (name, var) in &env {
        if let Some(key) = var["valueFrom"]["configMapKeyRef"].as_object() {
            assert!(
                help.env.contains(*name) || *name == "CREST_LOG",
                "crest serve reads no {name}"
            );
            let map = get(&manifests, "ConfigMap", key["name"].as_str().expect("map"));
            assert!(
                map["data"][key["key"].as_str().expect("key")].is_string(),
                "{name}: no such key"
            );
        }
    }
    let crest_config = &get(&manifests, "ConfigMap", "crest-config")["data"];
    let nats_hosts: BTreeSet<String> = crest_config["CREST_NATS"]
        .as_str()
        .expect("CREST_NATS")
        .split(',')
        .map(|url| {
            let (host, port) = host_port(url);
            assert_eq!(port, 4222, "{url}");
            host
        })
        .collect();
    assert_eq!(nats_hosts, nats_pods, "crest knows every NATS server");
    // Readiness: /readyz on the container's HTTP port.
    let container_port = container["ports"][0]["containerPort"]
        .as_u64()
        .expect("containerPort");
    assert_eq!(u64::from(port), container_port);
    let probe = &container["readinessProbe"]["httpGet"];
    assert_eq!(probe["path"], "/readyz");
    assert!(
        probe["port"] == container["ports"][0]["name"]
            || probe["port"].as_u64() == Some(container_port),
        "{probe}"
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    // The client Service reaches the pods' HTTP port; the budget keeps two of three.
    let client = get(&manifests, "Service", "crest");
    assert!(selects(&client["spec"]["selector"], labels));
    assert_eq!(
        client["spec"]["ports"][0]["targetPort"],
        container["ports"][0]["name"]
    );
    let budget = get(&manifests, "PodDisruptionBudget", "crest");
    assert!(selects(&budget["spec"]["selector"], labels));
    assert_eq!(budget["spec"]["maxUnavailable"], 1);
}
