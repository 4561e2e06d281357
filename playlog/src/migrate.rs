//! `playlog migrate`: brings every schema Playlog owns up to date in one explicit step: BigQuery's datasets,
//! the raw tables and offsets, then the vault's tables, marts and run log. Each migration is applied once
//! and recorded; running it again changes nothing. On BigQuery this is the one step that creates anything
//! (the consumer's and the vault's accounts only check, and name what is missing); a DuckDB file is also
//! migrated whenever it opens.

use anyhow::{Context, Result};
use clap::Args;

use crate::vault::WarehouseArgs;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  playlog migrate
  playlog migrate --warehouse duckdb:/data/playlog.duckdb
  # BigQuery: creates the datasets PREFIX_raw, PREFIX_vault and PREFIX_marts in EU, then every table:
  playlog migrate --warehouse bigquery://my-project/playlog --bigquery-location EU
  # With a model of your own (a new satellite column becomes one ALTER TABLE … ADD COLUMN):
  playlog migrate --model my-model.toml")]
pub struct MigrateArgs {
    #[command(flatten)]
    warehouse: WarehouseArgs,
}

pub fn run(args: MigrateArgs) -> Result<()> {
    let (mut w, model) = args.warehouse.open_migrating()?;
    let applied = playlog_vault::migrate(&mut w, &model)
        .with_context(|| format!("migrating the vault in {}", w.describe()))?;
    if applied.is_empty() {
        eprintln!("migrate: {} is up to date", w.describe());
    }
    for name in &applied {
        eprintln!("migrate: applied {name}");
    }
    Ok(())
}
