//! Properties of the simulated behaviour, measured over a large sample of the default site.

mod common;

use std::collections::HashMap;

use common::*;
use playlog_model::Stream;
use playlog_producer::SiteModel;

/// One sample for all tests in this file: 3,000 users and strong growth over two weeks.
fn sample() -> &'static [Emitted] {
    static SAMPLE: std::sync::OnceLock<Vec<Emitted>> = std::sync::OnceLock::new();
    SAMPLE.get_or_init(|| {
        let world = world(SiteModel::default_site().expect("default site"));
        let mut p = plan(11, 3000);
        p.growth_rate = 5.0;
        simulate(&world, p, 14).0
    })
}

fn page_views(events: &[Emitted]) -> Vec<&Emitted> {
    events
        .iter()
        .filter(|e| e.stream == Stream::PageView)
        .collect()
}

#[test]
fn paid_sessions_are_much_longer_than_free_ones() {
    let events = sample();
    // Requests per session, by the level the session started at.
    let mut sessions: HashMap<i64, (String, u32)> = HashMap::new();
    for e in page_views(events) {
        let entry = sessions
            .entry(e.record.session_id)
            .or_insert_with(|| (e.record.level.clone(), 0));
        entry.1 += 1;
    }
    let mean = |level: &str| {
        let lens: Vec<u32> = sessions
            .values()
            .filter(|(l, _)| l == level)
            .map(|(_, n)| *n)
            .collect();
        lens.iter().sum::<u32>() as f64 / lens.len().max(1) as f64
    };
    let (free, paid) = (mean("free"), mean("paid"));
    assert!(
        paid > 1.5 * free,
        "paid sessions average {paid:.1} requests, free ones {free:.1}"
    );
}

#[test]
fn the_listen_share_is_plausible_for_the_config() {
    let events = sample();
    let listens = events.iter().filter(|e| e.stream == Stream::Listen).count() as f64;
    let views = page_views(events).len() as f64;
    let share = listens / views;
    // The default site sends most logged-in requests to NextSong; eventsim's sample data shows 75-85%.
    assert!(
        (0.6..0.9).contains(&share),
        "listens are {share:.3} of page views"
    );
    // Every listen is also a NextSong page view with the same song.
    let next_songs = page_views(events)
        .iter()
        .filter(|e| e.record.page.as_deref() == Some("NextSong"))
        .count() as f64;
    assert_eq!(listens, next_songs);
}

#[test]
fn nothing_follows_a_cancellation_confirmation() {
    let events = sample();
    let mut cancelled_at: HashMap<i64, i64> = HashMap::new();
    for e in page_views(events) {
        if e.record.page.as_deref() == Some("Cancellation Confirmation") {
            let user = e.record.user_id.expect("cancelled users are shown");
            cancelled_at.insert(user, e.record.ts);
        }
    }
    assert!(
        cancelled_at.len() > 5,
        "the sample has cancellations: {}",
        cancelled_at.len()
    );
    for e in events {
        if let Some(user) = e.record.user_id
            && let Some(at) = cancelled_at.get(&user)
        {
            assert!(
                e.record.ts <= *at,
                "user {user} emitted {:?} after cancelling",
                e.record.page
            );
        }
    }
}

#[test]
fn levels_change_only_at_submit_pages() {
    let events = sample();
    let mut by_user: HashMap<i64, Vec<&Emitted>> = HashMap::new();
    for e in page_views(events) {
        if let Some(user) = e.record.user_id {
            by_user.entry(user).or_default().push(e);
        }
    }
    let mut changes = 0;
    for views in by_user.values() {
        // Page views of a user are emitted in time order.
        for pair in views.windows(2) {
            if pair[0].record.level != pair[1].record.level {
                changes += 1;
                let page = pair[0].record.page.as_deref();
                assert!(
                    matches!(page, Some("Submit Upgrade") | Some("Submit Downgrade")),
                    "level changed after {page:?}"
                );
            }
        }
    }
    assert!(changes > 10, "the sample has level changes: {changes}");
    // Status-change events are exactly the Submit pages.
    let submits = page_views(events)
        .iter()
        .filter(|e| {
            matches!(
                e.record.page.as_deref(),
                Some("Submit Upgrade") | Some("Submit Downgrade")
            )
        })
        .count();
    assert_eq!(
        submits,
        events
            .iter()
            .filter(|e| e.stream == Stream::StatusChange)
            .count()
    );
}

#[test]
fn auth_events_follow_logins() {
    let events = sample();
    let pages: HashMap<(i64, i32), &str> = page_views(events)
        .iter()
        .map(|e| {
            (
                (e.record.session_id, e.record.item_in_session),
                e.record.page.as_deref().unwrap_or_default(),
            )
        })
        .collect();
    let auths: Vec<&Emitted> = events.iter().filter(|e| e.stream == Stream::Auth).collect();
    assert!(
        auths.len() > 20,
        "the sample has auth events: {}",
        auths.len()
    );
    assert!(
        auths.iter().any(|a| a.record.success == Some(false)),
        "some logins fail"
    );
    for a in &auths {
        let previous = pages
            .get(&(a.record.session_id, a.record.item_in_session - 1))
            .copied();
        assert_eq!(previous, Some("Login"), "auth event not after a Login");
        // The auth event is the request after the Login: that page view exists too.
        assert!(pages.contains_key(&(a.record.session_id, a.record.item_in_session)));
        assert_eq!(
            a.record.success,
            Some(a.record.user_id.is_some()),
            "success means logged in, which shows the user"
        );
    }
}

#[test]
fn new_users_arrive_as_guests_and_register() {
    let events = sample();
    let guests = page_views(events)
        .iter()
        .filter(|e| e.record.auth.as_deref() == Some("Guest"))
        .count();
    assert!(guests > 0, "growth brings guests");
    assert!(
        page_views(events)
            .iter()
            .all(|e| (e.record.auth.as_deref() == Some("Guest")) <= e.record.user_id.is_none()),
        "guests are anonymous"
    );
    assert!(
        page_views(events)
            .iter()
            .any(|e| e.record.page.as_deref() == Some("Submit Registration"))
    );
}

#[test]
fn a_user_keeps_one_name_and_place_and_location_fields_belong_together() {
    let events = sample();
    let mut seen: HashMap<i64, (String, String, String, String)> = HashMap::new();
    let mut places: HashMap<String, (String, String, u64, u64)> = HashMap::new();
    for e in events {
        let r = &e.record;
        let place = (
            r.city.clone(),
            r.state.clone(),
            r.lat.to_bits(),
            r.lon.to_bits(),
        );
        assert_eq!(
            places.entry(r.zip.clone()).or_insert_with(|| place.clone()),
            &place,
            "zip {} in two places",
            r.zip
        );
        if let Some(user) = r.user_id {
            let me = (
                r.first_name.clone().unwrap_or_default(),
                r.last_name.clone().unwrap_or_default(),
                r.zip.clone(),
                r.user_agent.clone(),
            );
            assert_eq!(
                seen.entry(user).or_insert_with(|| me.clone()),
                &me,
                "user {user} changed"
            );
        }
    }
    assert!(
        events.iter().any(|e| e.record.zip.starts_with('0')),
        "leading-zero zips occur"
    );
}

#[test]
fn records_are_keyed_by_user_or_else_session() {
    for e in sample().iter().take(50_000) {
        assert_eq!(e.key, e.record.user_id.unwrap_or(e.record.session_id));
    }
}

#[test]
fn attrition_removes_the_documented_yearly_fraction() {
    // With a yearly attrition of 90%, after 73 days (a fifth of a year) 1 - 0.1^0.2 = 36.9% of users
    // are gone on top of whatever the site's own cancellations take.
    let world = world(SiteModel::default_site().expect("default site"));
    let days = 73;
    let base = active_after(&world, plan(5, 4000), days) as f64;
    let mut with = plan(5, 4000);
    with.attrition_rate = 0.9;
    let remaining = active_after(&world, with, days) as f64;
    let lost = 1.0 - remaining / base;
    let expected = 1.0 - 0.1f64.powf(days as f64 / 365.25);
    assert!(
        (lost - expected).abs() < 0.05,
        "lost {lost:.3} of users, expected about {expected:.3}"
    );
}
