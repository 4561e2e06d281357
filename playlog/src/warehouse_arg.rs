//! `--warehouse`, `--bigquery-endpoint` and `--bigquery-location`, shared by every command that opens a
//! warehouse.

use anyhow::Result;
use clap::Args;
use playlog_warehouse::{OpenOptions, Warehouse};

#[derive(Debug, Clone, Args)]
pub struct WarehouseLocation {
    /// Warehouse URL: duckdb:PATH, or bigquery://PROJECT/DATASET_PREFIX (datasets PREFIX_raw,
    /// PREFIX_vault, PREFIX_marts; Application Default Credentials).
    #[arg(
        long,
        env = "PLAYLOG_WAREHOUSE",
        default_value = "duckdb:playlog.duckdb"
    )]
    pub warehouse: String,
    /// A BigQuery emulator (host:port or URL): BigQuery requests go there, unauthenticated.
    #[arg(long, env = "BIGQUERY_EMULATOR_HOST", value_name = "URL")]
    pub bigquery_endpoint: Option<String>,
    /// Where the BigQuery datasets are (EU, US, europe-west1, …); every job and session runs there.
    /// Without it, the location of PREFIX_raw; `playlog migrate` creates the datasets there (default US).
    #[arg(long, env = "PLAYLOG_BIGQUERY_LOCATION", value_name = "LOCATION")]
    pub bigquery_location: Option<String>,
}

impl WarehouseLocation {
    /// For reading commands (`check`, `report`): a DuckDB file that does not exist is an error saying
    /// what fills it, not a new empty file.
    pub fn open_existing(&self) -> Result<Warehouse> {
        if let Some(path) = playlog_warehouse::duckdb_path(&self.warehouse)
            && !path.is_empty()
            && !std::path::Path::new(path).exists()
        {
            anyhow::bail!(
                "no warehouse at {path}: nothing has landed there yet. Run `playlog consume --warehouse {w}`, then `playlog vault build --warehouse {w}`, or point --warehouse at an existing file",
                w = self.warehouse
            );
        }
        self.open()
    }

    /// The options to open with; `migrate`: create what is missing (BigQuery), rather than only check.
    pub fn options(&self, migrate: bool) -> OpenOptions {
        OpenOptions {
            bigquery_endpoint: self.bigquery_endpoint.clone(),
            bigquery_location: self.bigquery_location.clone(),
            migrate,
        }
    }

    /// Opens without migrating: BigQuery's schemas must exist (`playlog migrate`).
    pub fn open(&self) -> Result<Warehouse> {
        Ok(Warehouse::open_with(&self.warehouse, &self.options(false))?)
    }
}
