//! The `crest` command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use crest_actors::NodeConfig;
use crest_actors::context::EntitySettings;
use crest_infra::journal::FjallJournalConfig;
use crest_infra::server::{self, ServeConfig};
use crest_infra::starter_brain::StarterBrain;
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
    Serve(ServeArgs),
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
    /// Do not seed the `demo` tenant with sample conversations.
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
    /// Passivate actors idle for this many seconds.
    #[arg(long, default_value_t = 120)]
    idle_timeout_secs: u64,
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
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("CREST_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
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
            Command::Serve(args) => serve(args).await,
            Command::JournalWriter { data_dir, streams } => journal_writer(data_dir, streams).await,
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

async fn serve(args: ServeArgs) -> Result<(), String> {
    if args.max_in_flight == 0 {
        return Err("--max-in-flight must be at least 1".to_owned());
    }
    if args.snapshot_every == 0 {
        return Err("--snapshot-every must be at least 1".to_owned());
    }
    let config = ServeConfig {
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
        },
    };
    let running = server::start(config, Arc::new(StarterBrain))
        .await
        .map_err(|error| error.to_string())?;
    if !args.no_demo {
        match crest_infra::demo::seed(&running.node).await {
            Ok(new_messages) => tracing::info!(new_messages, "demo tenant seeded"),
            Err(error) => tracing::warn!(%error, "demo data not seeded"),
        }
    }
    println!("crest listening on http://{}", running.addr);
    wait_for_stop_signal().await;
    tracing::info!("stopping: draining requests, publishing events, flushing the journal");
    running.stop().await.map_err(|error| error.to_string())?;
    tracing::info!("stopped");
    Ok(())
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
