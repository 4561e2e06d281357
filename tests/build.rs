//! Where this crate's binaries and tests find libduckdb.so at run time (see warehouse/duckdb_rpath.rs).

include!("../warehouse/duckdb_rpath.rs");

fn main() {
    emit_duckdb_rpath();
}
