// The run-time search path for libduckdb.so, emitted by the build script of every crate whose binaries or
// tests link DuckDB (`include!`d there), rather than by `[build] rustflags` in .cargo/config.toml, which any
// RUSTFLAGS in the environment silently replaces. In order:
// - `$ORIGIN`: next to the binary (target/<profile>/playlog, and the image's /opt/playlog);
// - `$ORIGIN/deps`: tests and benches, which run from target/<profile>/deps (the warehouse crate's build
//   script copies the library to both places);
// - the library's own directory, resolved (scripts/install-deps.sh's cache), so that a binary installed
//   with `cargo install --path playlog` runs from ~/.cargo/bin.

fn emit_duckdb_rpath() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    let mut rpath = String::from("$ORIGIN:$ORIGIN/deps");
    if let Some(dir) = std::env::var_os("DUCKDB_LIB_DIR")
        .map(std::path::PathBuf::from)
        .and_then(|d| d.canonicalize().ok())
    {
        rpath.push(':');
        rpath.push_str(&dir.display().to_string());
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{rpath}");
}
