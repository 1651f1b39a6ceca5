//! `crest-loadtest --target http://127.0.0.1:8080 --profile loadtest/profiles/smoke.toml`
//!
//! Prints a live progress bar on stderr, a summary table on stdout, writes the JSON report and the
//! SVG plot, and prints one JSON object as the last stdout line. Exits 0 when every acknowledged
//! message was found exactly once, 1 on loss or duplicates, 2 when the run could not start, 3 when
//! some conversations could not be read back.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use crest_loadtest::{Profile, RunConfig, Verdict};

/// Open-loop load test of a Crest node over its HTTP and WebSocket API.
#[derive(Debug, Parser)]
#[command(name = "crest-loadtest", version)]
struct Cli {
    /// Base URL of the node, or of several nodes of one cluster separated by commas: customers and
    /// agents are spread over them, and a request a node cannot answer goes to the next one
    /// (same idempotency key) for up to the profile's `retry_for_ms`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    target: String,
    /// A TOML profile (phases, customers, agents, limits); see loadtest/profiles/.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// A constant rate (messages/s) instead of the profile's phases (for step runs).
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds of the constant rate given with --rate.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// The tenant.
    #[arg(long, default_value = "load")]
    tenant: String,
    /// An admin key of --tenant (POST /v1/tenants/{tenant}/api-keys with the operator token);
    /// the virtual agents get their own agent keys through it.
    #[arg(long, env = "CREST_API_KEY", hide_env_values = true)]
    api_key: String,
    /// Where to write the JSON report.
    #[arg(long, default_value = "loadtest-report.json")]
    report: PathBuf,
    /// Where to write the SVG plot.
    #[arg(long, default_value = "loadtest-report.svg")]
    plot: PathBuf,
    /// Virtual agents (overrides the profile).
    #[arg(long)]
    agents: Option<usize>,
    /// Seed of the script choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Concurrently active virtual customers (overrides the profile).
    #[arg(long)]
    customers: Option<usize>,
    /// Share of customers followed over the WebSocket to time bot replies (overrides the profile).
    #[arg(long)]
    follow_fraction: Option<f64>,
    /// Share of customers whose script hands off to an agent (overrides the profile).
    #[arg(long)]
    handoff_share: Option<f64>,
    /// Most messages in flight; more arrivals count as `client_overload` (overrides the profile).
    #[arg(long)]
    max_in_flight: Option<usize>,
    /// Multiply every rate of the profile by this factor (e.g. 0.3 for a node that sustains 30 % of
    /// the profile's peak); applied after --rate.
    #[arg(long)]
    rate_scale: Option<f64>,
    /// Worker threads of the generator's runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Never draw the progress bar.
    #[arg(long)]
    no_progress: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let profile = match profile(&cli) {
        Ok(profile) => profile,
        Err(error) => {
            eprintln!("crest-loadtest: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("crest-loadtest: runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let config = RunConfig {
        target: cli.target.clone(),
        tenant: cli.tenant.clone(),
        api_key: cli.api_key.clone(),
        profile,
        seed: cli.seed,
        run_id: crest_loadtest::new_run_id(),
        progress: !cli.no_progress && std::io::stderr().is_terminal(),
    };
    let report = match runtime.block_on(crest_loadtest::run(config)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("crest-loadtest: {error}");
            return ExitCode::from(2);
        }
    };
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));

    print!("{}", report.table());
    match serde_json::to_string_pretty(&report) {
        Ok(json) => match std::fs::write(&cli.report, json) {
            Ok(()) => println!("report       {}", cli.report.display()),
            Err(error) => eprintln!("cannot write {}: {error}", cli.report.display()),
        },
        Err(error) => eprintln!("cannot encode the report: {error}"),
    }
    match crest_loadtest::plot::write_svg(&report, &cli.plot) {
        Ok(()) => println!("plot         {}", cli.plot.display()),
        Err(error) => eprintln!("{error}"),
    }
    let code = match report.verdict() {
        Verdict::Ok => ExitCode::SUCCESS,
        Verdict::Loss => {
            eprintln!(
                "FAILED: {} acknowledged messages lost and {} duplicated (examples: lost {:?}, duplicated {:?})",
                report.loss.lost,
                report.loss.duplicated,
                report.loss.lost_examples,
                report.loss.duplicated_examples
            );
            ExitCode::from(1)
        }
        Verdict::Unverified => {
            eprintln!(
                "UNVERIFIED: {} conversations could not be read back",
                report.loss.unreadable_conversations
            );
            ExitCode::from(3)
        }
    };
    println!("{}", report.summary_line());
    code
}

fn profile(cli: &Cli) -> Result<Profile, String> {
    let mut profile = match (&cli.profile, cli.rate) {
        (Some(path), _) => Profile::load(path).map_err(|error| error.to_string())?,
        (None, Some(_)) => Profile::constant(0.0, cli.duration),
        (None, None) => return Err("give --profile FILE or --rate N [--duration S]".to_owned()),
    };
    if let Some(rate) = cli.rate {
        profile.name = format!("constant-{rate}");
        profile.phases = vec![crest_loadtest::Phase::constant(
            "constant",
            cli.duration,
            rate,
        )];
    }
    if let Some(agents) = cli.agents {
        profile.agents = agents;
    }
    if let Some(customers) = cli.customers {
        profile.customers = customers;
    }
    if let Some(fraction) = cli.follow_fraction {
        profile.follow_fraction = fraction;
    }
    if let Some(share) = cli.handoff_share {
        profile.handoff_share = share;
    }
    if let Some(max) = cli.max_in_flight {
        profile.max_in_flight = max;
    }
    if let Some(factor) = cli.rate_scale {
        profile
            .scale_rates(factor)
            .map_err(|error| error.to_string())?;
    }
    profile.validate().map_err(|error| error.to_string())?;
    Ok(profile)
}
