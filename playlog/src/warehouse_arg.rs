//! `--warehouse` and `--bigquery-endpoint`, shared by every command that opens a warehouse.

use anyhow::Result;
use clap::Args;
use playlog_warehouse::Warehouse;

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
}

impl WarehouseLocation {
    pub fn open(&self) -> Result<Warehouse> {
        Ok(Warehouse::open_with(
            &self.warehouse,
            self.bigquery_endpoint.as_deref(),
        )?)
    }
}
