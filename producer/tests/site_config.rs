//! eventsim's config format: read unchanged, with errors that name the field.

mod common;

use std::path::Path;

use common::*;
use playlog_producer::SiteModel;

const EVENTSIM_SITE: &str = include_str!("data/eventsim-site.json");

#[test]
fn an_eventsim_config_file_is_read_unchanged() {
    let site = SiteModel::from_file(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/eventsim-site.json"
    )))
    .expect("parses");
    assert_eq!(site.defaults.seed, Some(42));
    assert_eq!(site.pacing.alpha_ms, 30_000.0);
    assert_eq!(site.pacing.session_gap_ms, 1_800_000);
    assert_eq!(site.transition_count(), 19);
    let cancelled = site
        .states
        .iter()
        .find(|s| s.page == "Cancellation Confirmation")
        .expect("state");
    assert!(cancelled.is_churned && cancelled.shows_user);
    assert!(
        site.states
            .iter()
            .find(|s| s.page == "Login")
            .expect("login")
            .is_redirect
    );
    // And it drives a simulation.
    let (events, _) = simulate(&world(site), plan(42, 200), 2);
    assert!(
        events
            .iter()
            .any(|e| e.record.page.as_deref() == Some("Submit Upgrade"))
    );
}

fn error_for(edit: impl Fn(&mut serde_json::Value)) -> String {
    let mut doc: serde_json::Value =
        serde_json::from_str(EVENTSIM_SITE).expect("test data is JSON");
    edit(&mut doc);
    SiteModel::from_json(&doc.to_string(), "site.json")
        .expect_err("must be rejected")
        .to_string()
}

#[test]
fn a_wrongly_typed_probability_names_its_field() {
    let err = error_for(|d| d["transitions"][3]["p"] = serde_json::json!("often"));
    assert!(
        err.contains("site.json") && err.contains("transitions[3].p"),
        "{err}"
    );
}

#[test]
fn a_missing_state_field_names_where() {
    let err = error_for(|d| {
        d["transitions"][0]["dest"]
            .as_object_mut()
            .expect("object")
            .remove("status");
    });
    assert!(
        err.contains("transitions[0].dest") && err.contains("status"),
        "{err}"
    );
}

#[test]
fn an_unknown_key_is_named() {
    let err = error_for(|d| d["sesion-gap"] = serde_json::json!(1800));
    assert!(err.contains("sesion-gap"), "{err}");
}

#[test]
fn probabilities_above_one_name_the_state() {
    let err = error_for(|d| d["transitions"][4]["p"] = serde_json::json!(0.95));
    assert!(
        err.contains("NextSong") && err.contains("more than 1"),
        "{err}"
    );
}

#[test]
fn a_state_with_no_next_session_is_explained() {
    let err = error_for(|d| {
        let starts = d["new-session"].as_array_mut().expect("array");
        starts.retain(|s| !(s["auth"] == "Logged Out" && s["level"] == "free"));
    });
    assert!(
        err.contains("Logged Out") && err.contains("new-session"),
        "{err}"
    );
}

#[test]
fn malformed_json_gives_position() {
    let err = SiteModel::from_json("{\"alpha\": 3,", "broken.json")
        .expect_err("rejected")
        .to_string();
    assert!(
        err.contains("broken.json") && err.contains("line 1"),
        "{err}"
    );
}
