//! `playlog docs`: the data catalog as static HTML (as `dbt docs generate` makes), for a wiki, a bucket
//! or a CI artifact: the same page `playlog serve` shows at `/catalog`.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  # The catalog of playlog.duckdb, with row counts, freshness and the data tests' results:
  playlog docs --out target/docs && xdg-open target/docs/index.html
  # From the model alone (no warehouse: descriptions, types, tests and lineage, no results):
  playlog docs --out target/docs --model-only
  # Of a BigQuery warehouse:
  playlog docs --out docs-site --warehouse bigquery://my-project/playlog")]
pub struct DocsArgs {
    /// The directory to write index.html and catalog.css into (made if missing).
    #[arg(long, env = "PLAYLOG_DOCS_OUT")]
    out: std::path::PathBuf,
    #[command(flatten)]
    location: crate::warehouse_arg::WarehouseLocation,
    /// The vault model (TOML); the one shipped in schemas/vault/model.toml by default.
    #[arg(long, env = "PLAYLOG_VAULT_MODEL")]
    model: Option<std::path::PathBuf>,
    /// Document the model without reading a warehouse (no rows, freshness or test results).
    #[arg(long)]
    model_only: bool,
    /// The freshness test fails when the newest raw load is older than this (as `playlog check --max-age`).
    #[arg(long, env = "PLAYLOG_CHECK_MAX_AGE", default_value = "1h", value_parser = crate::duration_arg::parse_duration)]
    max_age: Duration,
}

pub fn run(args: DocsArgs) -> Result<()> {
    let model = crate::vault::load_model(args.model.as_deref())?;
    let catalog = playlog_vault::Catalog::for_model(&model)?;
    let (doc, observed, label) = if args.model_only {
        let sql = playlog_vault::Sql::new(playlog_sql::DialectName::DuckDb, "");
        let doc = playlog_vault::docs::document(&model, &catalog, &sql, args.max_age);
        (
            doc,
            None,
            "the model alone (types as DuckDB names them)".to_owned(),
        )
    } else {
        eprintln!(
            "docs: reading {} (the data tests run now)",
            args.location.warehouse
        );
        let observe = |warehouse: &mut dyn playlog_sql::Transact| -> Result<_> {
            let sql = playlog_vault::Sql::for_warehouse(warehouse);
            let doc = playlog_vault::docs::document(&model, &catalog, &sql, args.max_age);
            let observed = playlog_catalog::observe(warehouse, &doc, &model, args.max_age)?;
            Ok((doc, observed))
        };
        // A DuckDB file is opened read-only, so that `playlog serve` (or another reader) may hold it too.
        let (doc, observed) = match playlog_warehouse::duckdb_path(&args.location.warehouse) {
            Some(path) if !path.is_empty() => {
                let conn = playlog_serve::open_read_only(path).map_err(anyhow::Error::msg)?;
                observe(&mut playlog_warehouse::DuckDbReader::new(&conn))?
            }
            _ => observe(&mut args.location.open_existing()?)?,
        };
        (doc, Some(observed), args.location.warehouse.clone())
    };
    let frame = playlog_catalog::Frame {
        css_href: "catalog.css",
        warehouse: &label,
        links: &[],
    };
    let html = playlog_catalog::render(&doc, observed.as_ref(), &frame);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("making the docs directory {}", args.out.display()))?;
    let index = args.out.join("index.html");
    std::fs::write(&index, html).with_context(|| format!("writing {}", index.display()))?;
    let css = args.out.join("catalog.css");
    std::fs::write(&css, playlog_catalog::CSS)
        .with_context(|| format!("writing {}", css.display()))?;
    let tests = match observed.as_ref().map(|o| &o.tests) {
        None => "tests not run (--model-only)".to_owned(),
        Some(Ok(run)) => format!(
            "{} of {} data tests pass",
            run.results.iter().filter(|r| r.passed()).count(),
            run.results.len()
        ),
        Some(Err(why)) => format!("tests not run: {why}"),
    };
    eprintln!(
        "docs: {} tables, {} lineage edges, {tests} -> {}",
        doc.tables.len(),
        doc.lineage.len(),
        index.display()
    );
    Ok(())
}
