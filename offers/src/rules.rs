//! The offer rules file (`schemas/offers/rules.toml`), read strictly: an unknown key, an unknown page, a
//! threshold below one, a holdout share outside [0, 1) or a duration that does not parse is an error that
//! names its place (`rules.upgrade_nudge.holdout`). Pure: text in, rules out.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The pages the simulator produces (`producer/src/site.rs`'s default site; a test holds the two equal).
/// A rule naming another page could never fire: a typo, refused.
pub const PAGES: &[&str] = &[
    "About",
    "Add Friend",
    "Add to Playlist",
    "Cancel",
    "Cancellation Confirmation",
    "Downgrade",
    "Error",
    "Help",
    "Home",
    "Login",
    "Logout",
    "NextSong",
    "Register",
    "Roll Advert",
    "Save Settings",
    "Settings",
    "Submit Downgrade",
    "Submit Registration",
    "Submit Upgrade",
    "Thumbs Down",
    "Thumbs Up",
    "Upgrade",
];

/// The rules of one file, in their ids' order (so that evaluation order, and the offers a replay makes,
/// do not depend on the file's layout).
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub settings: Settings,
    pub rules: Vec<Rule>,
}

/// Durations are milliseconds of event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub frequency_cap_ms: i64,
    pub expiry_ms: i64,
    pub session_gap_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub description: String,
    pub enabled: bool,
    pub level: LevelFilter,
    pub trigger: Trigger,
    pub cooldown_ms: i64,
    /// The share of users held out, in [0, 1).
    pub holdout: f64,
    pub expiry_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LevelFilter {
    Free,
    Paid,
    Any,
}

/// What makes a rule fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Counts in the current session reach every threshold set (at least).
    Session(Thresholds),
    /// A visit to a page.
    Visited(String),
    /// A visit to `page` not followed by a visit to `follow` within `within_ms` of event time: fires when
    /// a later event of the same partition is past the deadline.
    NotFollowed {
        page: String,
        follow: String,
        within_ms: i64,
    },
}

/// Per-session counts; `None` is "not a condition".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub plays: Option<u32>,
    pub adverts: Option<u32>,
    pub thumbs_up: Option<u32>,
    pub thumbs_down: Option<u32>,
    pub errors: Option<u32>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{origin}: {path}: {message}")]
pub struct RulesError {
    pub origin: String,
    pub path: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    settings: SettingsToml,
    rules: BTreeMap<String, RuleToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsToml {
    frequency_cap: String,
    expiry: String,
    session_gap: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleToml {
    description: String,
    #[serde(default = "yes")]
    enabled: bool,
    level: LevelFilter,
    session: Option<Thresholds>,
    visited: Option<String>,
    not_followed_by: Option<String>,
    within: Option<String>,
    cooldown: String,
    holdout: f64,
    expiry: Option<String>,
}

fn yes() -> bool {
    true
}

impl Rules {
    /// The rules Playlog ships.
    pub fn shipped() -> Rules {
        Rules::parse(DEFAULT_RULES, "schemas/offers/rules.toml")
            .unwrap_or_else(|e| panic!("the shipped rules are invalid: {e}"))
    }

    /// Reads a rules file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Rules, RulesError> {
        let error = |path: &str, message: String| RulesError {
            origin: origin.to_owned(),
            path: path.to_owned(),
            message,
        };
        let deserializer =
            toml::Deserializer::parse(text).map_err(|e| error("(syntax)", e.to_string()))?;
        let file: File = serde_path_to_error::deserialize(deserializer)
            .map_err(|e| error(&e.path().to_string(), e.inner().message().to_owned()))?;
        let duration = |path: &str, text: &str| -> Result<i64, RulesError> {
            let d = humantime::parse_duration(text).map_err(|e| {
                error(
                    path,
                    format!("{text:?} is not a duration (10m, 1h, 7d): {e}"),
                )
            })?;
            if d.is_zero() {
                return Err(error(path, "must be longer than zero".into()));
            }
            i64::try_from(d.as_millis()).map_err(|_| error(path, format!("{text:?} is too long")))
        };
        let settings = Settings {
            frequency_cap_ms: duration("settings.frequency_cap", &file.settings.frequency_cap)?,
            expiry_ms: duration("settings.expiry", &file.settings.expiry)?,
            session_gap_ms: duration("settings.session_gap", &file.settings.session_gap)?,
        };
        if file.rules.is_empty() {
            return Err(error("rules", "no rule is defined".into()));
        }
        let mut rules = Vec::new();
        for (id, r) in file.rules {
            let at = |field: &str| format!("rules.{id}.{field}");
            if !id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(error(
                    &format!("rules.{id}"),
                    "a rule id is lowercase letters, digits and _ (it is part of every offer id)"
                        .into(),
                ));
            }
            let page = |field: &str, name: &str| -> Result<String, RulesError> {
                if PAGES.contains(&name) {
                    Ok(name.to_owned())
                } else {
                    Err(error(
                        &at(field),
                        format!(
                            "{name:?} is not a page users visit; pages are {}",
                            PAGES.join(", ")
                        ),
                    ))
                }
            };
            let trigger = match (&r.session, &r.visited, &r.not_followed_by, &r.within) {
                (Some(t), None, None, None) => {
                    let set = [t.plays, t.adverts, t.thumbs_up, t.thumbs_down, t.errors];
                    if set.iter().all(Option::is_none) {
                        return Err(error(&at("session"), "sets no threshold".into()));
                    }
                    if set.contains(&Some(0)) {
                        return Err(error(
                            &at("session"),
                            "a threshold of 0 always holds: use 1 or more".into(),
                        ));
                    }
                    Trigger::Session(*t)
                }
                (None, Some(v), None, None) => Trigger::Visited(page("visited", v)?),
                (None, Some(v), Some(f), Some(w)) => Trigger::NotFollowed {
                    page: page("visited", v)?,
                    follow: page("not_followed_by", f)?,
                    within_ms: duration(&at("within"), w)?,
                },
                (None, Some(_), Some(_), None) => {
                    return Err(error(&at("within"), "not_followed_by needs within".into()));
                }
                (None, _, None, Some(_)) | (None, None, Some(_), _) => {
                    return Err(error(
                        &at("not_followed_by"),
                        "within goes with visited and not_followed_by".into(),
                    ));
                }
                _ => {
                    return Err(error(
                        &format!("rules.{id}"),
                        "set one trigger: session = {…}, or visited (with not_followed_by and within)"
                            .into(),
                    ));
                }
            };
            if !(0.0..1.0).contains(&r.holdout) {
                return Err(error(
                    &at("holdout"),
                    format!(
                        "{} is not a share in [0, 1): 0.1 holds out one user in ten",
                        r.holdout
                    ),
                ));
            }
            rules.push(Rule {
                cooldown_ms: duration(&at("cooldown"), &r.cooldown)?,
                expiry_ms: match &r.expiry {
                    Some(e) => duration(&at("expiry"), e)?,
                    None => settings.expiry_ms,
                },
                id,
                description: r.description,
                enabled: r.enabled,
                level: r.level,
                trigger,
                holdout: r.holdout,
            });
        }
        Ok(Rules { settings, rules })
    }

    /// What a newer version of the file changes that applies while running: rules switched on or off
    /// (`enabled`), as (id, enabled). Anything else that differs (a threshold, a new rule) needs a restart,
    /// and is named in the second list, so that it can be said rather than half applied.
    pub fn changes(&self, newer: &Rules) -> (Vec<(String, bool)>, Vec<String>) {
        let mut switched = Vec::new();
        let mut restart = Vec::new();
        if self.settings != newer.settings {
            restart.push("settings".to_owned());
        }
        for n in &newer.rules {
            match self.rules.iter().find(|r| r.id == n.id) {
                Some(r) => {
                    if r.enabled != n.enabled {
                        switched.push((n.id.clone(), n.enabled));
                    }
                    let same = Rule {
                        enabled: n.enabled,
                        ..r.clone()
                    };
                    if &same != n {
                        restart.push(format!("rules.{}", n.id));
                    }
                }
                None => restart.push(format!("rules.{} (new)", n.id)),
            }
        }
        for r in &self.rules {
            if !newer.rules.iter().any(|n| n.id == r.id) {
                restart.push(format!("rules.{} (removed)", r.id));
            }
        }
        (switched, restart)
    }

    /// The longest stretch of event time any state must be kept for: what a restart replays.
    pub fn lookback_ms(&self) -> i64 {
        self.rules
            .iter()
            .flat_map(|r| {
                let within = match &r.trigger {
                    Trigger::NotFollowed { within_ms, .. } => *within_ms,
                    _ => 0,
                };
                [r.cooldown_ms, within]
            })
            .chain([self.settings.frequency_cap_ms, self.settings.session_gap_ms])
            .max()
            .unwrap_or(0)
    }
}

/// `schemas/offers/rules.toml`, built in.
pub const DEFAULT_RULES: &str = include_str!("../../schemas/offers/rules.toml");

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn with_rule(rule: &str) -> String {
        format!(
            "[settings]\nfrequency_cap = \"1h\"\nexpiry = \"1d\"\nsession_gap = \"30m\"\n\n[rules.r]\ndescription = \"d\"\nlevel = \"free\"\ncooldown = \"1d\"\nholdout = 0.1\n{rule}\n"
        )
    }

    fn refused(text: &str) -> RulesError {
        Rules::parse(text, "rules.toml").unwrap_err()
    }

    #[test]
    fn the_pages_rules_may_name_are_the_pages_the_simulator_serves() {
        let site = playlog_producer::site::SiteModel::default_site().unwrap();
        let served: std::collections::BTreeSet<&str> =
            site.states.iter().map(|s| s.page.as_str()).collect();
        let named: std::collections::BTreeSet<&str> = PAGES.iter().copied().collect();
        assert_eq!(named, served);
    }

    #[test]
    fn the_shipped_rules_read_as_documented() {
        let rules = Rules::shipped();
        let ids: Vec<&str> = rules.rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["retention", "upgrade_nudge", "upgrade_reminder"]);
        let nudge = &rules.rules[1];
        assert_eq!(
            nudge.trigger,
            Trigger::Session(Thresholds {
                adverts: Some(3),
                plays: Some(10),
                ..Thresholds::default()
            })
        );
        assert_eq!(nudge.holdout, 0.1);
        assert_eq!(
            rules.rules[2].trigger,
            Trigger::NotFollowed {
                page: "Upgrade".into(),
                follow: "Submit Upgrade".into(),
                within_ms: 600_000
            }
        );
        assert_eq!(rules.rules[0].expiry_ms, 3 * 86_400_000);
        assert_eq!(rules.rules[1].expiry_ms, 86_400_000);
        assert_eq!(rules.lookback_ms(), 7 * 86_400_000);
    }

    #[test]
    fn an_edited_file_switches_rules_and_names_what_needs_a_restart() {
        let old = Rules::shipped();
        let edited = DEFAULT_RULES
            .replacen(
                "level = \"paid\"\nvisited",
                "enabled = false\nlevel = \"paid\"\nvisited",
                1,
            )
            .replace("plays = 10", "plays = 12");
        let new = Rules::parse(&edited, "edited").unwrap();
        let (switched, restart) = old.changes(&new);
        assert_eq!(switched, [("retention".to_owned(), false)]);
        assert_eq!(restart, ["rules.upgrade_nudge"]);
        assert_eq!(old.changes(&old), (vec![], vec![]));
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_place() {
        let e = refused(&with_rule("session = { plays = 3 }\ncolour = \"red\""));
        assert_eq!(e.path, "rules.r.colour");
        assert!(e.message.contains("unknown field `colour`"), "{e}");
        let e = refused(&with_rule("session = { plays = 3, skips = 2 }"));
        assert_eq!(e.path, "rules.r.session.skips");
        assert!(e.message.contains("skips"), "{e}");
    }

    #[test]
    fn bad_values_name_their_place() {
        let e = refused(&with_rule("session = { plays = 0 }"));
        assert_eq!(e.path, "rules.r.session");
        let e = refused(&with_rule("visited = \"Upgrades\""));
        assert_eq!(e.path, "rules.r.visited");
        assert!(e.message.contains("\"Upgrades\" is not a page"), "{e}");
        let e = refused(&with_rule(
            "visited = \"Upgrade\"\nnot_followed_by = \"Submit Upgrade\"",
        ));
        assert_eq!(e.path, "rules.r.within");
        let e = refused(&with_rule(
            "visited = \"Upgrade\"\nnot_followed_by = \"Submit Upgrade\"\nwithin = \"soon\"",
        ));
        assert_eq!(e.path, "rules.r.within");
        let e = refused(&with_rule("session = { plays = 1 }\nvisited = \"Upgrade\""));
        assert_eq!(e.path, "rules.r");
        let e = refused(&with_rule("visited = \"Upgrade\"").replace("0.1", "1.5"));
        assert_eq!(e.path, "rules.r.holdout");
        let e = refused(
            &with_rule("visited = \"Upgrade\"").replace("cooldown = \"1d\"", "cooldown = \"0s\""),
        );
        assert_eq!(e.path, "rules.r.cooldown");
        let e = refused(
            &with_rule("visited = \"Upgrade\"").replace("level = \"free\"", "level = \"gold\""),
        );
        assert_eq!(e.path, "rules.r.level");
        let e = refused("[settings]\nfrequency_cap = \"1h\"\n");
        assert!(e.message.contains("missing field"), "{e}");
    }
}
