//! The README's CLI reference is the binary's own `--help`, word for word (regenerate it with
//! `scripts/gen-cli-reference.sh`).

use playlog_e2e::playlog_bin;

#[test]
fn the_readme_cli_reference_matches_help() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    for command in [
        "produce",
        "consume",
        "vault build",
        "vault run",
        "check",
        "report",
    ] {
        let output = std::process::Command::new(playlog_bin())
            .args(command.split(' '))
            .arg("--help")
            .env("COLUMNS", "100")
            .output()
            .expect("playlog runs");
        assert!(output.status.success());
        let help = String::from_utf8(output.stdout).expect("UTF-8 help");
        assert!(
            readme.contains(&format!("```text\n{help}```")),
            "README's CLI reference for `playlog {command}` differs from --help: run scripts/gen-cli-reference.sh"
        );
    }
}
