//! The data catalog, as dbt's docs are for a dbt project: every raw, vault and mart table with its
//! columns, types and descriptions, the data tests over it with their latest results, freshness, and a
//! lineage graph generated from the vault's plan. One HTML page, served at `/catalog` by `playlog serve`
//! and written by `playlog docs --out DIR`.
//!
//! - `playlog_vault::docs` says what the model documents (pure);
//! - [`observe`] adds what the warehouse knows now (rows, newest loads, test results);
//! - [`page`] renders both, with the graph from [`lineage_svg`] (pure).

pub mod lineage_svg;
pub mod observe;
pub mod page;

pub use observe::{Observed, observe};
pub use page::{Frame, render};

/// The page's stylesheet (served at `/assets/catalog.css`, written beside `index.html` by `playlog docs`).
pub const CSS: &str = include_str!("../assets/catalog.css");
