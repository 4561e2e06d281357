//! Puts the prebuilt libduckdb.so (see .cargo/config.toml) into target/<profile> and target/<profile>/deps,
//! where the rpath of every binary and test looks for it, so that `target/release/playlog` runs from
//! anywhere; and emits that rpath for this crate's own tests.

use std::path::{Path, PathBuf};

include!("duckdb_rpath.rs");

fn main() {
    emit_duckdb_rpath();
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    let Some(lib_dir) = std::env::var_os("DUCKDB_LIB_DIR").map(PathBuf::from) else {
        panic!(
            "DUCKDB_LIB_DIR is not set: build from the repository (its .cargo/config.toml sets it), after scripts/install-deps.sh"
        );
    };
    let lib = lib_dir.join("libduckdb.so");
    println!("cargo:rerun-if-changed={}", lib.display());
    if !lib.exists() {
        panic!(
            "{} is missing: run scripts/install-deps.sh, which fetches DuckDB's prebuilt library",
            lib.display()
        );
    }
    // OUT_DIR is target/<profile>/build/<package>-<hash>/out.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let Some(profile_dir) = out_dir.ancestors().nth(3).map(Path::to_path_buf) else {
        return;
    };
    for dir in [profile_dir.join("deps"), profile_dir] {
        let target = dir.join("libduckdb.so");
        let stale = std::fs::metadata(&target).and_then(|m| m.modified()).ok()
            < std::fs::metadata(&lib).and_then(|m| m.modified()).ok();
        if !target.exists() || stale {
            let _ = std::fs::create_dir_all(&dir);
            std::fs::copy(&lib, &target).unwrap_or_else(|e| {
                panic!("copying {} to {}: {e}", lib.display(), target.display())
            });
        }
    }
}
