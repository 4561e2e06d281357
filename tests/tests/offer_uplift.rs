//! The loop closed: `playlog produce --continuous --offers-topic offer_events --offer-response LIFT`, with
//! `playlog offers` making offers from its page views, then `playlog consume` and the vault. The uplift
//! that `marts.offer_performance` measures must be the one the configured lift produces, within a
//! confidence interval computed here.
//!
//! **What the lift should produce, from the simulation's own parameters.** An upgrade happens only from
//! the Upgrade page (free, logged in): the site's step to Submit Upgrade has probability `p`
//! (`SiteModel::step_probability`, 0.45 in the shipped site). An offer shown moves it to
//! `p' = p + LIFT (1 - p)` at the user's visits to Upgrade in sessions after the offer's, until it expires
//! (`offer_response`); every other visit keeps `p`. So an offer whose window holds visits `1..K` converts
//! with probability `1 - Π (1 - q_i)`, `q_i` being `p'` or `p` by that rule. Held-out users are never
//! influenced, and how many visits a user makes does not depend on being held out, so the held-out
//! offers show the distribution of visits. They show it censored (a user who upgrades makes no more free
//! visits), which inverse-probability weighting undoes exactly: a held-out offer's j-th visit is reached
//! with probability `(1 - p)^(j-1)` given the visits exist. The expected conversion rate of shown offers is
//! then the mean over held-out offers of `Σ_j q_j Π_{i<j} (1 - q_i) / (1 - p)^(j-1)`, and of held-out ones
//! the mean of `Σ_j p`; their difference is the expected uplift.
//!
//! The check: the mart's uplift minus the expected one lies within 3.5 standard errors of a difference of
//! two proportions (the offers of one user are not independent, which this neglects; the sample is about
//! seven hundred offers per group). It also checks the parts on their own: the held-out conversion rate
//! against the one `p` predicts, held-out users converting at `p` per visit, and shown offers at `p'` per
//! nudged visit. Four checks at 3.5 standard errors: a false alarm about once in a thousand runs.

#![allow(clippy::unwrap_used)] // A test: a failed step should stop it loudly.

use std::collections::BTreeMap;
use std::time::Duration;

use playlog_e2e::*;

const LIFT: f64 = 0.8;
/// Standard errors allowed, for each of the four checks.
const Z: f64 = 3.5;
const WINDOW_MS: i64 = playlog_vault::CONVERSION_DAYS * 86_400_000;

/// The shipped rules with only `upgrade_nudge` on, half of its users held out, and offers that hold for
/// the whole run.
fn uplift_rules() -> String {
    let text = playlog_offers::DEFAULT_RULES
        .replace(
            "holdout = 0.1\n\n[rules.upgrade_reminder]",
            "holdout = 0.5\n\n[rules.upgrade_reminder]",
        )
        .replace(
            "[rules.upgrade_reminder]\n",
            "[rules.upgrade_reminder]\nenabled = false\n",
        )
        .replace(
            "[rules.retention]\n",
            "[rules.retention]\nenabled = false\n",
        )
        .replace("expiry = \"24h\"", "expiry = \"30d\"");
    assert_eq!(
        text.matches("enabled = false").count(),
        2,
        "the shipped rules changed: update this test"
    );
    text
}

/// A number from a summary line such as `  page_view_events   12 sent   12 delivered   0 failed`: the
/// word before `label`.
fn before(line: &str, label: &str) -> Option<u64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1].trim_end_matches([',', ';']) == label)
        .and_then(|w| w[0].parse().ok())
}

struct Offer {
    session_id: i64,
    ts: i64,
    expires_at: i64,
    holdout: bool,
}

#[test]
fn the_uplift_the_mart_measures_is_the_one_the_configured_lift_produces() {
    let broker = Broker::start();
    let scratch = Scratch::new("offer-uplift");
    let rules = scratch.path().join("rules.toml");
    std::fs::write(&rules, uplift_rules()).unwrap();
    let rules_arg = rules.display().to_string();
    let lift = LIFT.to_string();

    // 3,000 users over twelve simulated days (about a million events), in about a minute.
    let mut producer = Background::spawn(
        &[
            "produce",
            "--brokers",
            &broker.address,
            "--continuous",
            "--speed",
            "17280",
            "--users",
            "3000",
            "--from",
            "2026-03-01T00:00:00Z",
            "--to",
            "2026-03-13T00:00:00Z",
            "--seed",
            "5",
            "--partitions",
            "3",
            "--offers-topic",
            "offer_events",
            "--offer-response",
            &lift,
        ],
        &[],
        scratch.path().join("producer.log"),
    );
    assert!(
        wait_for(Duration::from_secs(60), || broker
            .has_topic("page_view_events")
            && broker.has_topic("offer_events")),
        "{}",
        producer.output()
    );
    let offers_args = [
        "offers",
        "--brokers",
        &broker.address,
        "--rules",
        &rules_arg,
        "--commit-interval",
        "500ms",
    ];
    let mut offers = Background::spawn(&offers_args, &[], scratch.path().join("offers.log"));
    assert!(
        producer
            .wait(Duration::from_secs(600))
            .is_some_and(|s| s.success()),
        "{}",
        producer.output()
    );
    let summary = producer.output();
    let delivered = |topic: &str| {
        summary
            .lines()
            .find(|l| l.trim_start().starts_with(topic))
            .and_then(|l| before(l, "delivered"))
            .unwrap_or_else(|| panic!("no {topic} line in the producer's summary:\n{summary}"))
    };
    let views = delivered("page_view_events");
    let events: u64 = [
        "listen_events",
        "page_view_events",
        "auth_events",
        "status_change_events",
    ]
    .iter()
    .map(|t| delivered(t))
    .sum();
    assert!(
        wait_for(Duration::from_secs(300), || broker
            .committed_offsets("playlog-offers", "page_view_events", 3)
            .iter()
            .sum::<i64>()
            >= views as i64),
        "offers never caught up:\n{}",
        offers.output()
    );
    assert!(
        offers.terminate(Duration::from_secs(30)),
        "{}",
        offers.output()
    );
    let log = offers.output();
    let line = log
        .lines()
        .find(|l| l.contains("page views,"))
        .unwrap_or_else(|| panic!("no summary line:\n{log}"));
    let decisions = before(line, "offers").unwrap() + before(line, "held").unwrap();

    let mut consumer = start_consumer(&broker, &scratch, "consumer", &[], &[]);
    consumer.land_and_stop((events + decisions) as usize, Duration::from_secs(600));
    let warehouse = format!("duckdb:{}", scratch.path().join("w.duckdb").display());
    assert_success(
        &playlog(&["vault", "build", "--warehouse", &warehouse], &[]),
        "vault build",
    );
    let conn = open_warehouse(&scratch.path().join("w.duckdb"));

    // The measured uplift, as the mart has it.
    let (shown, held, shown_converted, held_converted): (i64, i64, i64, i64) = conn
        .query_row(
            "SELECT SUM(offers), SUM(holdouts), SUM(conversions), SUM(holdout_conversions) \
             FROM marts.offer_performance WHERE rule_id = 'upgrade_nudge'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    let r1 = shown_converted as f64 / shown as f64;
    let r0 = held_converted as f64 / held as f64;
    let measured = r1 - r0;

    // What the lift should produce: offers, the Upgrade visits of their users, and their upgrades.
    let mut by_user: BTreeMap<i64, Vec<Offer>> = BTreeMap::new();
    let mut stmt = conn
        .prepare(
            "SELECT DISTINCT offer_id, user_id, session_id, epoch_ms(ts), epoch_ms(expires_at), holdout \
             FROM raw.offer_events WHERE rule_id = 'upgrade_nudge'",
        )
        .unwrap();
    for row in stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(1)?,
                Offer {
                    session_id: r.get(2)?,
                    ts: r.get(3)?,
                    expires_at: r.get(4)?,
                    holdout: r.get(5)?,
                },
            ))
        })
        .unwrap()
    {
        let (user, offer) = row.unwrap();
        by_user.entry(user).or_default().push(offer);
    }
    let timeline = |sql: &str| -> BTreeMap<i64, Vec<(i64, i64)>> {
        let mut out: BTreeMap<i64, Vec<(i64, i64)>> = BTreeMap::new();
        let mut stmt = conn.prepare(sql).unwrap();
        for row in stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
        {
            let (user, session, ts) = row.unwrap();
            out.entry(user).or_default().push((session, ts));
        }
        out
    };
    let visits = timeline(
        "SELECT user_id, session_id, epoch_ms(ts) FROM raw.page_view_events \
         WHERE page = 'Upgrade' AND level = 'free' AND user_id IS NOT NULL ORDER BY ts",
    );
    let upgrades = timeline(
        "SELECT user_id, session_id, epoch_ms(ts) FROM raw.status_change_events \
         WHERE level = 'free' ORDER BY ts",
    );
    let site = playlog_producer::SiteModel::default_site().unwrap();
    let p = site
        .step_probability("Upgrade", "free", "Submit Upgrade")
        .unwrap();
    let p_lifted = p + LIFT * (1.0 - p);

    let (mut expected_shown, mut expected_held, mut held_offers) = (0.0, 0.0, 0usize);
    // Per-visit conversion: (visits, conversions) of held-out users, and of shown users' nudged visits.
    let (mut held_visits, mut held_upgrades) = (0usize, 0usize);
    let (mut nudged_visits, mut nudged_upgrades) = (0usize, 0usize);
    let none = Vec::new();
    for (user, offers) in &by_user {
        let user_visits = visits.get(user).unwrap_or(&none);
        let user_upgrades = upgrades.get(user).unwrap_or(&none);
        // A visit is nudged when an offer of an earlier session holds (for held-out users: would hold).
        let nudged = |session: i64, ts: i64| {
            offers
                .iter()
                .any(|o| o.session_id != session && o.ts <= ts && ts < o.expires_at)
        };
        // The visit converted when an upgrade follows it in the same session before any other visit.
        let converted = |i: usize| {
            let (session, ts) = user_visits[i];
            let next = user_visits.get(i + 1).map_or(i64::MAX, |v| v.1);
            user_upgrades
                .iter()
                .any(|&(s, t)| s == session && t > ts && t < next)
        };
        for (i, &(session, ts)) in user_visits.iter().enumerate() {
            let is_nudged = nudged(session, ts);
            if offers[0].holdout {
                held_visits += 1;
                held_upgrades += usize::from(converted(i));
            } else if is_nudged {
                nudged_visits += 1;
                nudged_upgrades += usize::from(converted(i));
            }
        }
        for offer in offers.iter().filter(|o| o.holdout) {
            held_offers += 1;
            // The offer's window, cut at the user's first upgrade in it (no free visits after it).
            let end = offer.ts + WINDOW_MS;
            let first_upgrade = user_upgrades
                .iter()
                .map(|u| u.1)
                .find(|&t| t > offer.ts && t <= end)
                .unwrap_or(i64::MAX);
            let mut weight = 1.0; // Π_{i<j} (1 - q_i) / (1 - p)^(j-1)
            for &(session, ts) in user_visits
                .iter()
                .filter(|v| v.1 >= offer.ts && v.1 <= end && v.1 < first_upgrade)
            {
                let q = if nudged(session, ts) { p_lifted } else { p };
                expected_shown += weight * q;
                expected_held += p;
                weight *= (1.0 - q) / (1.0 - p);
            }
        }
    }
    let expected_r1 = expected_shown / held_offers as f64;
    let expected_r0 = expected_held / held_offers as f64;
    let expected = expected_r1 - expected_r0;
    let se = (r1 * (1.0 - r1) / shown as f64 + r0 * (1.0 - r0) / held as f64).sqrt();
    let per_visit_held = held_upgrades as f64 / held_visits as f64;
    let per_visit_nudged = nudged_upgrades as f64 / nudged_visits as f64;
    eprintln!(
        "offer uplift: {shown} offers shown, {held} held out; conversion {r1:.3} vs {r0:.3}: measured uplift {measured:.3}, \
         expected {expected:.3} ({expected_r1:.3} vs {expected_r0:.3}) from p = {p}, lift {LIFT} (p' = {p_lifted:.3}); \
         standard error {se:.3}; per visit: held out {per_visit_held:.3} of {held_visits}, nudged {per_visit_nudged:.3} of {nudged_visits}"
    );
    assert!(
        shown > 500 && held > 500,
        "too small a sample: {shown} shown, {held} held out"
    );
    assert!(
        (measured - expected).abs() <= Z * se,
        "measured uplift {measured:.3} is not within {Z} standard errors ({se:.3}) of the expected {expected:.3}"
    );
    assert!(
        (r0 - expected_r0).abs() <= Z * (r0 * (1.0 - r0) / held as f64).sqrt(),
        "held-out conversion {r0:.3} vs {expected_r0:.3} from p"
    );
    let binomial = |q: f64, n: usize| Z * (q * (1.0 - q) / n as f64).sqrt();
    assert!(
        (per_visit_held - p).abs() <= binomial(p, held_visits),
        "held-out users convert at {per_visit_held:.3} per Upgrade visit, not p = {p}: they were influenced"
    );
    assert!(
        (per_visit_nudged - p_lifted).abs() <= binomial(p_lifted, nudged_visits),
        "shown offers convert at {per_visit_nudged:.3} per nudged visit, not p' = {p_lifted:.3}"
    );
}
