//! What a new user meets first, tried as one would: `check` and `report` before any vault exists (or any
//! warehouse), a warehouse in a directory that does not exist, and a duration no one could mean. Each is
//! one clear line naming what to do, a failure exit, and no file left behind.

use playlog_e2e::*;

/// Runs `playlog ARGS`, which must fail with one `error:` line containing every one of `wanted`.
fn fails_with(args: &[&str], wanted: &[&str]) {
    let output = playlog(args, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{args:?} succeeded:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: want one line:\n{stderr}");
    for w in wanted {
        assert!(lines[0].contains(w), "{args:?}: want {w:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn check_and_report_without_a_warehouse_say_what_fills_it_and_create_nothing() {
    let scratch = Scratch::new("first-contact-none");
    let file = scratch.path().join("never.duckdb");
    let url = format!("duckdb:{}", file.display());
    for command in ["check", "report"] {
        fails_with(
            &[command, "--warehouse", &url],
            &["no warehouse at", "playlog consume --warehouse"],
        );
        assert!(
            !file.exists(),
            "`playlog {command}` created {}",
            file.display()
        );
    }
}

#[test]
fn check_and_report_before_a_vault_build_name_vault_build() {
    let scratch = Scratch::new("first-contact-novault");
    let url = format!(
        "duckdb:{}",
        scratch.path().join("raw-only.duckdb").display()
    );
    // A warehouse with raw tables only, as a consumer leaves it before any vault run.
    drop(playlog_warehouse::Warehouse::open(&url).unwrap_or_else(|e| panic!("{e}")));
    for command in ["check", "report"] {
        fails_with(
            &[command, "--warehouse", &url],
            &["no vault has been built", "playlog vault build --warehouse"],
        );
    }
}

#[test]
fn a_warehouse_in_a_missing_directory_says_so() {
    fails_with(
        &[
            "vault",
            "build",
            "--warehouse",
            "duckdb:/no/such/dir/x.duckdb",
        ],
        &["The directory /no/such/dir does not exist"],
    );
}

#[test]
fn an_out_of_range_duration_is_an_error_not_a_panic() {
    let output = playlog(
        &[
            "consume",
            "--vault-every",
            "99999999999999999999h",
            "--brokers",
            "127.0.0.1:1",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("out of range") && stderr.contains("--vault-every"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
