//! Packaging facts a user relies on: a `playlog` binary copied out of the target directory still runs (its
//! rpath reaches libduckdb.so), and the workspace's declared `rust-version` is true: the highest of what the locked dependencies declare
//! and what Playlog's own code needs (let-chains, stable since 1.88). Only one toolchain (the installed
//! one) can be had here, so the check reads the dependencies' own `rust-version` fields through
//! `cargo metadata` rather than building with an old compiler.

/// What Playlog's own code needs: `if let … && let …` chains.
const CODE_NEEDS: (u64, u64) = (1, 88);

fn version(text: &str) -> (u64, u64) {
    let mut parts = text.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[test]
fn the_declared_rust_version_is_the_highest_any_locked_dependency_needs() {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata --locked: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let resolved: std::collections::HashSet<&str> = metadata["resolve"]["nodes"]
        .as_array()
        .expect("resolve nodes")
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    let packages = metadata["packages"].as_array().expect("packages");
    let mut needed = (CODE_NEEDS, "Playlog's own code (let-chains)".to_owned());
    let mut declared = Vec::new();
    for p in packages {
        let (Some(id), Some(name)) = (p["id"].as_str(), p["name"].as_str()) else {
            continue;
        };
        let Some(rv) = p["rust_version"].as_str() else {
            continue;
        };
        if name.starts_with("playlog") {
            declared.push((name.to_owned(), version(rv)));
        } else if resolved.contains(id) && version(rv) > needed.0 {
            needed = (version(rv), format!("{name} {}", p["version"]));
        }
    }
    assert!(
        !declared.is_empty(),
        "no workspace crate declares rust-version"
    );
    for (name, v) in declared {
        assert_eq!(
            v, needed.0,
            "{name} declares rust-version {}.{}, but {} needs {}.{}: set [workspace.package] rust-version to it",
            v.0, v.1, needed.1, needed.0.0, needed.0.1
        );
    }
}

/// The rpath comes from the build scripts (warehouse/duckdb_rpath.rs), not RUSTFLAGS, and includes the
/// library's own directory: a copy of the binary elsewhere (as `cargo install` makes) finds DuckDB.
#[test]
fn a_binary_copied_out_of_the_target_directory_runs() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let copy = dir.path().join("playlog");
    std::fs::copy(playlog_e2e::playlog_bin(), &copy).expect("copy the binary");
    let warehouse = format!("duckdb:{}", dir.path().join("w.duckdb").display());
    let output = std::process::Command::new(&copy)
        .args(["vault", "build", "--warehouse", &warehouse])
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("the copied binary starts");
    assert!(
        output.status.success(),
        "the copied binary failed (libduckdb.so not found?): {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
