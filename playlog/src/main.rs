//! `playlog`: the one user-facing binary. Parses arguments and hands each subcommand to its module.

mod consume;
mod consume_progress;
mod docs;
mod duration_arg;
mod kafka_args;
mod logging;
mod migrate;
mod offers;
mod produce;
mod serve;
mod signals;
mod time_arg;
mod vault;
mod warehouse_arg;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "playlog",
    version,
    about = "A real-time event pipeline for music-streaming analytics.",
    after_help = "Examples:\n  playlog produce --brokers 127.0.0.1:9092 --users 1000 --from 2026-01-01T00:00:00Z --to 2026-01-02T00:00:00Z --seed 7\n  playlog produce --continuous --speed 60 --users 5000\n  playlog produce --output - --max-events 10 --format json\n  playlog consume --brokers 127.0.0.1:9092 --members 2 --warehouse duckdb:playlog.duckdb\n  playlog vault build --warehouse duckdb:playlog.duckdb\n  playlog check --warehouse duckdb:playlog.duckdb\n\nEvery flag can also be set by the PLAYLOG_* environment variable that its help names."
)]
struct Cli {
    #[command(flatten)]
    logging: logging::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate a music service's users and publish their events to Kafka (or write JSON lines).
    Produce(Box<produce::ProduceArgs>),
    /// Land the event topics in raw warehouse tables, exactly once, about a second after each event.
    Consume(Box<consume::ConsumeArgs>),
    /// Build the Data Vault core and marts from the raw tables, once (build) or continuously (run).
    Vault(vault::VaultArgs),
    /// Run data tests over the vault: keys, relationships, hash collisions, reconciliation, freshness.
    Check(Box<vault::CheckArgs>),
    /// Print a short report from the marts: top songs, daily active users, level changes, sessions.
    Report(vault::ReportArgs),
    /// Bring the warehouse's schemas up to date: raw tables, vault, marts (each migration once).
    Migrate(migrate::MigrateArgs),
    /// Serve the dashboard, the data catalog and a read-only REST API over the marts.
    Serve(Box<serve::ServeArgs>),
    /// Write the data catalog as static HTML: tables, columns, descriptions, tests, freshness, lineage.
    Docs(Box<docs::DocsArgs>),
    /// Make real-time offers: rules over the live page views, with cooldowns and holdouts (offer_events).
    Offers(Box<offers::OffersArgs>),
}

fn main() {
    let cli = Cli::parse();
    logging::init(&cli.logging);
    let result = match cli.command {
        Command::Produce(args) => produce::run(*args),
        Command::Consume(args) => consume::run(*args),
        Command::Vault(args) => vault::run(args),
        Command::Check(args) => vault::check(*args),
        Command::Report(args) => vault::report(args),
        Command::Migrate(args) => migrate::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::Docs(args) => docs::run(*args),
        Command::Offers(args) => offers::run(*args),
    };
    if let Err(error) = result {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
