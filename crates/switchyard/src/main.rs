//! `switchyard`: one binary, thin. It parses the command line and hands over to the crates:
//! `gateway` (the server), `bench` (load generator and yardsticks), `journal` (offline
//! dump/verify), `token` (development JWTs), `venue-sim` (a simulated venue). With no
//! subcommand it runs the single-node stack on embedded defaults — the gateway with two
//! in-process simulated venues — so a new user sees orders fill at once.

/// mimalloc instead of glibc's malloc: the durable path allocates a few small blocks per
/// order on one thread and frees them on another (request → engine → journal listener), which
/// glibc serves through arena locks and consolidation (~11 % of a profile at 50 k orders/s);
/// mimalloc's per-thread free lists make the same work a few instructions.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod backoffice_cmd;
mod demo_cmd;
mod embedded;
mod journal_cmd;
mod top;
mod venue_cmd;

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Execution gateway: orders in, journaled, routed, streamed"
)]
struct Cli {
    /// TOML configuration file (environment variables override it).
    #[arg(long, global = true, env = "SWITCHYARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (HTTP and, if enabled, v3 binary TCP ingress).
    Gateway,
    /// Load generator and yardstick servers.
    Bench {
        #[command(subcommand)]
        cmd: switchyard_bench::BenchCommand,
    },
    /// Read a journal offline.
    Journal {
        #[command(subcommand)]
        cmd: journal_cmd::JournalCommand,
    },
    /// Mint a development JWT (HS256).
    Token(TokenArgs),
    /// Run the simulated venue (matching, market makers, faults) until SIGINT/SIGTERM.
    VenueSim(venue_cmd::Args),
    /// Run the back office (ledger, positions, balances, PnL; HTTP API; Kafka consumer).
    Backoffice(backoffice_cmd::Args),
    /// Gentle demo traffic: places, amends and cancels orders across accounts and symbols.
    Demo(demo_cmd::Args),
    /// Live dashboard of a gateway from its /metrics: throughput, latency, rejects, queues.
    Top(top::Args),
}

#[derive(clap::Args)]
struct TokenArgs {
    /// Account id (`accountId` claim).
    #[arg(long, default_value = "demo")]
    account: String,
    /// Session id (`sub`); defaults to the account.
    #[arg(long)]
    session: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 86_400)]
    ttl: u64,
    /// Space-separated scopes, e.g. `ops` for the admin API.
    #[arg(long)]
    scope: Option<String>,
    /// Key id (`kid` header) for a rotated key ring.
    #[arg(long)]
    kid: Option<String>,
    /// Signing secret.
    #[arg(long, env = "JWT_HS256_SECRET", hide_env_values = true)]
    secret: String,
}

/// Secret used when the single-node stack starts without one: development only.
const DEV_SECRET: &str = "switchyard-dev-secret-change-me";
/// The single-node stack chains its journal with a development audit key (`dev`), so that
/// `/audit/verify` works out of the box; production sets `AUDIT_HMAC_KEYS` itself.
const DEV_AUDIT_KEYS: &str = "dev:switchyard-dev-audit-key-change-me";

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Bench { cmd }) => switchyard_bench::run(cmd),
        Some(Command::Journal { cmd }) => journal_cmd::run(cmd),
        Some(Command::VenueSim(args)) => {
            init_tracing();
            venue_cmd::run(args)
        }
        Some(Command::Demo(args)) => demo_cmd::run(args),
        Some(Command::Top(args)) => top::run(args),
        Some(Command::Backoffice(args)) => {
            init_tracing();
            backoffice_cmd::run(args)
        }
        Some(Command::Token(t)) => {
            println!("{}", token(&t));
            Ok(())
        }
        Some(Command::Gateway) => {
            init_tracing();
            let cfg = load_config(cli.config.as_deref(), false)?;
            serve(cfg, false)
        }
        None => {
            init_tracing();
            let cfg = load_config(cli.config.as_deref(), true)?;
            serve(cfg, true)
        }
    }
}

fn token(t: &TokenArgs) -> String {
    let now = switchyard_auth::now_sec();
    let mut claims = serde_json::json!({
        "sub": t.session.as_deref().unwrap_or(&t.account),
        "accountId": t.account,
        "iat": now,
        "exp": now + t.ttl,
    });
    if let Some(s) = &t.scope {
        claims["scope"] = s.clone().into();
    }
    switchyard_auth::mint(t.secret.as_bytes(), t.kid.as_deref(), &claims)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

/// Loads configuration; the single-node stack adds developer defaults for what is unset.
fn load_config(
    path: Option<&std::path::Path>,
    single_node: bool,
) -> anyhow::Result<switchyard_gateway::Config> {
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    if single_node {
        let has = |k: &str| env.iter().any(|(n, _)| n == k);
        let mut add = Vec::new();
        if !has("JWT_HS256_SECRET") {
            add.push(("JWT_HS256_SECRET", DEV_SECRET));
        }
        if !has("V3_TCP_ENABLE") {
            add.push(("V3_TCP_ENABLE", "true"));
            add.push(("V3_TCP_PORT", "9101"));
        }
        if !has("GATEWAY_HOST") {
            add.push(("GATEWAY_HOST", "127.0.0.1"));
        }
        if !has("AUDIT_HMAC_KEYS") && !has("AUDIT_HMAC_KEY") {
            add.push(("AUDIT_HMAC_KEYS", DEV_AUDIT_KEYS));
        }
        // Two simulated venues in process, so that orders fill at once; BTC and ETH trade on
        // both (best-price routing), the other symbols are spread by the reference's hash.
        if !has("EXCHANGE_TRANSPORT") && !has("EXCHANGE_TCP_HOST") {
            add.push(("EXCHANGE_TRANSPORT", "sim"));
            if !has("SOR_VENUES") {
                add.push(("SOR_VENUES", "simA,simB"));
                add.push(("SOR_SYMBOL_ROUTES", "BTC=simA|simB,ETH=simA|simB"));
            }
        }
        env.extend(add.into_iter().map(|(k, v)| (k.to_string(), v.to_string())));
    }
    let cfg = switchyard_gateway::Config::load(path, env)?;
    if single_node && cfg.auth.secret == DEV_SECRET {
        let demo = switchyard_auth::mint_dev(DEV_SECRET, "demo", 86_400, Some("ops"));
        eprintln!(
            "single-node stack with the DEVELOPMENT secret; a demo token (account `demo`, scope ops):\n  {demo}\n\
             try:\n  curl -s -XPOST http://127.0.0.1:{}/v3/orders -H \"Authorization: Bearer $TOKEN\" \
             -H 'Content-Type: application/json' -d '{{\"symbol\":\"AAPL\",\"side\":\"BUY\",\"type\":\"LIMIT\",\"qty\":10,\"price\":15000}}'\n\
             a fill at a simulated venue:\n  curl -s -XPOST http://127.0.0.1:{}/orders -H \"Authorization: Bearer $TOKEN\" \
             -H 'Content-Type: application/json' -H 'Idempotency-Key: first' -d '{{\"symbol\":\"BTC\",\"side\":\"BUY\",\"type\":\"MARKET\",\"qty\":5,\"timeInForce\":\"IOC\"}}'",
            cfg.gateway.port, cfg.gateway.port
        );
    }
    Ok(cfg)
}

/// Runs the gateway with what the configuration embeds: simulated venues
/// (`EXCHANGE_TRANSPORT=sim`) and the back office fed from the journal (`BACKOFFICE_EMBEDDED`,
/// on by default in the single-node stack when Kafka is off).
fn serve(mut cfg: switchyard_gateway::Config, single_node: bool) -> anyhow::Result<()> {
    let _venues = embedded::start_venues(&mut cfg)?;
    let backoffice = match std::env::var("BACKOFFICE_EMBEDDED") {
        Ok(v) => switchyard_gateway::config::parse_bool("BACKOFFICE_EMBEDDED", &v)?,
        Err(_) => single_node,
    } && !cfg.bus.enable;
    let rt = switchyard_gateway::sched::ingress_runtime(
        cfg.gateway.worker_threads,
        cfg.gateway.ingress_rt_priority,
    )
    .context("starting the async runtime")?;
    rt.block_on(async move {
        let mut server = switchyard_gateway::start(cfg).await?;
        let books = match backoffice {
            true => Some(embedded::start_backoffice(&mut server).await?),
            false => None,
        };
        // The gateway's shutdown drains its outbox into the books before they close.
        server.run_until_signal().await?;
        match books {
            Some(b) => b.stop().await,
            None => Ok(()),
        }
    })
}
