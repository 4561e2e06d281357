//! Structured logs through `tracing`, as text for people or JSON for machines, on standard error.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "PLAYLOG_LOG_FORMAT"
    )]
    log_format: LogFormat,
    /// Log filter, in `tracing` env-filter syntax (for example `info` or `playlog_producer=debug`).
    /// librdkafka's own connection chatter is off by default: failures surface as errors and counts.
    #[arg(
        long,
        global = true,
        default_value = "warn,librdkafka=off,rdkafka::client=off",
        env = "PLAYLOG_LOG"
    )]
    log: String,
}

pub fn init(args: &LogArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
