//! eventsim's site configuration, read unchanged from its JSON format, and compiled into the state machine
//! that the simulation walks.
//!
//! A state is (page, method, status, auth, level). A session starts in a state drawn from the
//! `new-session` weights for the user's (auth, level), moves by the `transitions` probabilities, and ends
//! with whatever probability a state's transitions leave below 1.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::{Rng, RngExt};
use serde::Deserialize;

/// The site model Playlog ships: authored by `scripts/gen-default-site.py`, in eventsim's format.
pub const DEFAULT_SITE_JSON: &str = include_str!("../config/default-site.json");

const SECONDS_PER_DAY: f64 = 86_400.0;

/// What went wrong reading a site config, with where.
#[derive(Debug, thiserror::Error)]
pub enum SiteConfigError {
    #[error("reading site config {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("site config {origin}: field `{field}`: {message}")]
    Field {
        origin: String,
        field: String,
        message: String,
    },
    #[error("site config {origin}: {message}")]
    Model { origin: String, message: String },
}

/// The JSON document exactly as eventsim reads it. Unknown keys are rejected, naming the key, so that a
/// typo such as `sesion-gap` is not silently ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    seed: Option<f64>,
    alpha: Option<f64>,
    beta: Option<f64>,
    damping: Option<f64>,
    weekend_damping: Option<f64>,
    weekend_damping_offset: Option<f64>,
    weekend_damping_scale: Option<f64>,
    session_gap: Option<f64>,
    churned_state: Option<String>,
    #[serde(default)]
    show_user_details: Vec<RawShow>,
    #[serde(default)]
    levels: Vec<RawLevelWeight>,
    #[serde(default)]
    auths: Vec<RawAuthWeight>,
    #[serde(default)]
    new_session: Vec<RawWeightedState>,
    new_user_auth: Option<String>,
    new_user_level: Option<String>,
    #[serde(default)]
    transitions: Vec<RawTransition>,
    // Keys eventsim accepts. Dates and user counts become defaults for the matching flags; `upgrades` and
    // `downgrades` are read and ignored, as eventsim ignores them.
    start_date: Option<String>,
    end_date: Option<String>,
    n_users: Option<f64>,
    first_user_id: Option<f64>,
    growth_rate: Option<f64>,
    tag: Option<String>,
    #[serde(default)]
    upgrades: Vec<serde_json::Value>,
    #[serde(default)]
    downgrades: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShow {
    auth: String,
    show: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLevelWeight {
    level: String,
    weight: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthWeight {
    auth: String,
    weight: f64,
}

#[derive(Debug, Deserialize, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
struct RawState {
    page: String,
    method: String,
    status: i32,
    auth: String,
    level: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeightedState {
    #[serde(flatten)]
    state: RawStateFields,
    weight: f64,
}

/// `RawState` for use under `flatten`, where serde cannot deny unknown fields itself.
#[derive(Debug, Deserialize)]
struct RawStateFields {
    page: String,
    method: String,
    status: i32,
    auth: String,
    level: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransition {
    source: RawState,
    dest: RawState,
    p: f64,
}

/// Index of a state in [`SiteModel::states`].
pub type StateId = u32;
type AuthLevel = (String, String);
/// A `new-session` entry: state, weight, and its index in the file (for errors).
type WeightedStart = (StateId, f64, usize);
/// Names with weights, for `levels` and `auths`.
type WeightedNames = (Vec<String>, WeightedIndex<f64>);

/// How an offer the user holds bends their next step, by its lift (0 to 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Nudge {
    /// An upgrade offer: more likely to submit the upgrade.
    Upgrade(f64),
    /// A retention offer: less likely to downgrade or cancel.
    Stay(f64),
}

/// One state of the site, with the facts the simulation asks of it precomputed.
#[derive(Debug, Clone)]
pub struct PageState {
    pub page: String,
    pub method: String,
    pub status: i32,
    pub auth: String,
    pub level: String,
    /// A 3xx response: the next request follows one second later.
    pub is_redirect: bool,
    pub is_next_song: bool,
    pub is_login: bool,
    /// Submit Upgrade or Submit Downgrade: also a status-change event.
    pub is_status_change: bool,
    /// `show-user-details` for this state's auth.
    pub shows_user: bool,
    /// The churned state (`churned-state`): a session ending here ends the user.
    pub is_churned: bool,
    /// Submit Downgrade or Cancel: the step a retention offer tries to talk the user out of.
    pub is_leaving: bool,
    /// Logged in: an auth event for the request after a Login succeeds exactly when this holds.
    pub is_logged_in: bool,
}

/// Weighted choice of a session's first state, for one (auth, level).
#[derive(Debug, Clone)]
struct StartSampler {
    states: Vec<StateId>,
    weights: WeightedIndex<f64>,
}

/// Pacing: how often users act and return. Times in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Mean time between requests in a session.
    pub alpha_ms: f64,
    /// Mean time between sessions, on top of `session_gap_ms`.
    pub beta_ms: f64,
    pub session_gap_ms: i64,
    /// Amplitude of the daily cycle, as a fraction of a day.
    pub damping: f64,
    pub weekend_damping: f64,
    pub weekend_damping_offset_min: i64,
    pub weekend_damping_scale_min: i64,
}

/// Defaults for flags that eventsim also lets the config file set.
#[derive(Debug, Clone, Default)]
pub struct ConfigDefaults {
    pub seed: Option<u64>,
    pub users: Option<u64>,
    pub growth_rate: Option<f64>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
}

/// The compiled site model.
#[derive(Debug, Clone)]
pub struct SiteModel {
    pub states: Vec<PageState>,
    /// Per state: cumulative probabilities and destinations. A draw past the last bound ends the session.
    transitions: Vec<Vec<(f64, StateId)>>,
    start_samplers: Vec<StartSampler>,
    /// Per state: the sampler for the next session of a user whose session ended in it, if any.
    next_session_sampler: Vec<Option<u32>>,
    sampler_by_auth_level: HashMap<(String, String), u32>,
    levels: Option<WeightedNames>,
    auths: Option<WeightedNames>,
    pub new_user_auth: String,
    pub new_user_level: String,
    pub pacing: Pacing,
    pub defaults: ConfigDefaults,
}

impl SiteModel {
    /// Playlog's own site model.
    pub fn default_site() -> Result<SiteModel, SiteConfigError> {
        SiteModel::from_json(DEFAULT_SITE_JSON, "(built-in default)")
    }

    pub fn from_file(path: &Path) -> Result<SiteModel, SiteConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| SiteConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        SiteModel::from_json(&text, &path.display().to_string())
    }

    /// Parses eventsim's JSON. `origin` names the source in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<SiteModel, SiteConfigError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let raw: RawConfig = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let field = e.path().to_string();
            SiteConfigError::Field {
                origin: origin.to_owned(),
                field,
                message: e.into_inner().to_string(),
            }
        })?;
        compile(raw, origin)
    }

    /// The next state after `state`, or `None` when the session ends.
    pub fn next_state<R: Rng + ?Sized>(&self, state: StateId, rng: &mut R) -> Option<StateId> {
        let x: f64 = rng.random();
        self.transitions[state as usize]
            .iter()
            .find(|(bound, _)| x < *bound)
            .map(|(_, dest)| *dest)
    }

    /// The state a step from `state` to Submit Upgrade leads to, if there is such a step (the Upgrade page).
    pub fn upgrade_step(&self, state: StateId) -> Option<StateId> {
        self.transitions[state as usize]
            .iter()
            .map(|(_, dest)| *dest)
            .find(|d| self.states[*d as usize].page == "Submit Upgrade")
    }

    /// The probability of the step from the logged-in page `from` at `level` to the page `to`: what an
    /// analysis of the simulation (the offer uplift test) derives its expectations from.
    pub fn step_probability(&self, from: &str, level: &str, to: &str) -> Option<f64> {
        let state = self
            .states
            .iter()
            .position(|s| s.page == from && s.level == level && s.auth == "Logged In")?;
        let mut previous = 0.0;
        let mut total = None;
        for (bound, dest) in &self.transitions[state] {
            if self.states[*dest as usize].page == to {
                *total.get_or_insert(0.0) += bound - previous;
            }
            previous = *bound;
        }
        total
    }

    /// Whether some step from `state` leaves (Submit Downgrade or Cancel).
    pub fn can_leave(&self, state: StateId) -> bool {
        self.transitions[state as usize]
            .iter()
            .any(|(_, dest)| self.states[*dest as usize].is_leaving)
    }

    /// The next state of a user holding an offer (`playlog produce --offer-response LIFT`):
    /// - [`Nudge::Upgrade`]: where a step to Submit Upgrade exists, the user takes it with probability
    ///   `lift`, and otherwise moves as usual: P(upgrade) = p + lift × (1 − p);
    /// - [`Nudge::Stay`]: a step that leaves is talked out of with probability `lift`, the user then moving
    ///   as usual among the other steps: P(leave) = p × (1 − lift).
    pub fn next_state_nudged<R: Rng + ?Sized>(
        &self,
        state: StateId,
        nudge: Nudge,
        rng: &mut R,
    ) -> Option<StateId> {
        match nudge {
            Nudge::Upgrade(lift) => {
                if let Some(to) = self.upgrade_step(state)
                    && rng.random::<f64>() < lift
                {
                    return Some(to);
                }
                self.next_state(state, rng)
            }
            Nudge::Stay(lift) => {
                let leaves =
                    |n: Option<StateId>| n.is_some_and(|n| self.states[n as usize].is_leaving);
                let next = self.next_state(state, rng);
                if !leaves(next) || rng.random::<f64>() >= lift {
                    return next;
                }
                // Among the other steps, in their proportions: rejection sampling, bounded in case every
                // step leaves (then the user leaves anyway).
                (0..64)
                    .map(|_| self.next_state(state, rng))
                    .find(|n| !leaves(*n))
                    .unwrap_or(next)
            }
        }
    }

    /// The first state of a session for a user whose previous session ended in `last`.
    pub fn next_session_start<R: Rng + ?Sized>(
        &self,
        last: StateId,
        rng: &mut R,
    ) -> Option<StateId> {
        self.next_session_sampler[last as usize].map(|s| self.sample_start(s, rng))
    }

    /// The first state of a session for a user with this auth and level.
    pub fn session_start<R: Rng + ?Sized>(
        &self,
        auth: &str,
        level: &str,
        rng: &mut R,
    ) -> Option<StateId> {
        self.sampler_by_auth_level
            .get(&(auth.to_owned(), level.to_owned()))
            .map(|s| self.sample_start(*s, rng))
    }

    fn sample_start<R: Rng + ?Sized>(&self, sampler: u32, rng: &mut R) -> StateId {
        let s = &self.start_samplers[sampler as usize];
        s.states[s.weights.sample(rng)]
    }

    /// An initial user's (auth, level), from the `auths` and `levels` weights.
    pub fn initial_auth_level<R: Rng + ?Sized>(&self, rng: &mut R) -> (&str, &str) {
        let auth = match &self.auths {
            Some((names, w)) => names[w.sample(rng)].as_str(),
            None => self.new_user_auth.as_str(),
        };
        let level = match &self.levels {
            Some((names, w)) => names[w.sample(rng)].as_str(),
            None => self.new_user_level.as_str(),
        };
        (auth, level)
    }

    /// Names of the states whose outgoing probabilities are listed, for tests and diagnostics.
    pub fn transition_count(&self) -> usize {
        self.transitions.iter().map(Vec::len).sum()
    }
}

fn compile(raw: RawConfig, origin: &str) -> Result<SiteModel, SiteConfigError> {
    let model_err = |message: String| SiteConfigError::Model {
        origin: origin.to_owned(),
        message,
    };
    let field_err = |field: &str, message: String| SiteConfigError::Field {
        origin: origin.to_owned(),
        field: field.to_owned(),
        message,
    };

    let positive = |field: &str, v: Option<f64>, default: f64| -> Result<f64, SiteConfigError> {
        let v = v.unwrap_or(default);
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(field_err(
                field,
                format!("must be a positive number, got {v}"),
            ))
        }
    };
    let non_negative =
        |field: &str, v: Option<f64>, default: f64| -> Result<f64, SiteConfigError> {
            let v = v.unwrap_or(default);
            if v.is_finite() && v >= 0.0 {
                Ok(v)
            } else {
                Err(field_err(field, format!("must be zero or more, got {v}")))
            }
        };
    // eventsim's defaults where a key is missing.
    let pacing = Pacing {
        alpha_ms: positive("alpha", raw.alpha, 60.0)? * 1000.0,
        beta_ms: positive("beta", raw.beta, SECONDS_PER_DAY * 3.0)? * 1000.0,
        session_gap_ms: (non_negative("session-gap", raw.session_gap, 1800.0)? * 1000.0) as i64,
        damping: non_negative("damping", raw.damping, 0.0625)?,
        weekend_damping: non_negative("weekend-damping", raw.weekend_damping, 0.5)?,
        weekend_damping_offset_min: non_negative(
            "weekend-damping-offset",
            raw.weekend_damping_offset,
            6.0,
        )? as i64,
        weekend_damping_scale_min: positive(
            "weekend-damping-scale",
            raw.weekend_damping_scale,
            6.0,
        )? as i64,
    };
    if pacing.damping >= 0.5 / std::f64::consts::PI {
        // Beyond this the warp is no longer monotonic within a day and time would run backwards.
        return Err(field_err(
            "damping",
            format!("must be below 1/(2π) ≈ 0.159, got {}", pacing.damping),
        ));
    }
    if pacing.weekend_damping > 1.0 {
        return Err(field_err(
            "weekend-damping",
            format!(
                "is a fraction of traffic removed; must be at most 1, got {}",
                pacing.weekend_damping
            ),
        ));
    }

    let shows: HashMap<&str, bool> = raw
        .show_user_details
        .iter()
        .map(|s| (s.auth.as_str(), s.show))
        .collect();
    let churned = raw.churned_state.clone();

    let mut ids: BTreeMap<RawState, StateId> = BTreeMap::new();
    let mut states: Vec<PageState> = Vec::new();
    let mut intern = |s: &RawState| -> StateId {
        if let Some(id) = ids.get(s) {
            return *id;
        }
        let id = states.len() as StateId;
        states.push(PageState {
            page: s.page.clone(),
            method: s.method.clone(),
            status: s.status,
            auth: s.auth.clone(),
            level: s.level.clone(),
            is_redirect: (300..400).contains(&s.status),
            is_next_song: s.page == "NextSong",
            is_login: s.page == "Login",
            is_status_change: s.page == "Submit Upgrade" || s.page == "Submit Downgrade",
            shows_user: shows.get(s.auth.as_str()).copied().unwrap_or(false),
            is_churned: churned.as_deref() == Some(s.auth.as_str()),
            is_logged_in: s.auth == "Logged In",
            is_leaving: s.page == "Submit Downgrade" || s.page == "Cancel",
        });
        ids.insert(s.clone(), id);
        id
    };

    let mut edges: Vec<(StateId, StateId, f64)> = Vec::with_capacity(raw.transitions.len());
    for (i, t) in raw.transitions.iter().enumerate() {
        if !(t.p.is_finite() && (0.0..=1.0).contains(&t.p)) {
            return Err(field_err(
                &format!("transitions[{i}].p"),
                format!("must be a probability between 0 and 1, got {}", t.p),
            ));
        }
        let from = intern(&t.source);
        let to = intern(&t.dest);
        edges.push((from, to, t.p));
    }
    let mut starts: Vec<(StateId, f64, usize)> = Vec::new();
    for (i, w) in raw.new_session.iter().enumerate() {
        if !(w.weight.is_finite() && w.weight >= 0.0) {
            return Err(field_err(
                &format!("new-session[{i}].weight"),
                format!("must be zero or more, got {}", w.weight),
            ));
        }
        let f = &w.state;
        let s = RawState {
            page: f.page.clone(),
            method: f.method.clone(),
            status: f.status,
            auth: f.auth.clone(),
            level: f.level.clone(),
        };
        starts.push((intern(&s), w.weight, i));
    }

    let mut transitions: Vec<Vec<(f64, StateId)>> = vec![Vec::new(); states.len()];
    for (from, to, p) in edges {
        let row = &mut transitions[from as usize];
        let bound = row.last().map_or(0.0, |(b, _)| *b) + p;
        row.push((bound, to));
    }
    for (id, row) in transitions.iter().enumerate() {
        if let Some((total, _)) = row.last()
            && *total > 1.0 + 1e-9
        {
            let s = &states[id];
            return Err(model_err(format!(
                "the transitions out of ({}, {}, {}, {}, {}) add up to {total:.6}, more than 1",
                s.page, s.method, s.status, s.auth, s.level
            )));
        }
    }

    let mut start_samplers = Vec::new();
    let mut sampler_by_auth_level: HashMap<(String, String), u32> = HashMap::new();
    let mut grouped: BTreeMap<AuthLevel, Vec<WeightedStart>> = BTreeMap::new();
    for (state, weight, i) in starts {
        let s = &states[state as usize];
        grouped
            .entry((s.auth.clone(), s.level.clone()))
            .or_default()
            .push((state, weight, i));
    }
    for (key, entries) in grouped {
        let weights = WeightedIndex::new(entries.iter().map(|e| e.1)).map_err(|e| {
            field_err(
                &format!("new-session[{}].weight", entries[0].2),
                format!(
                    "the weights for auth {:?}, level {:?} are unusable: {e}",
                    key.0, key.1
                ),
            )
        })?;
        sampler_by_auth_level.insert(key, start_samplers.len() as u32);
        start_samplers.push(StartSampler {
            states: entries.iter().map(|e| e.0).collect(),
            weights,
        });
    }

    // Every state that can end a session must lead somewhere: to churn, or to a next session.
    let mut next_session_sampler = Vec::with_capacity(states.len());
    for (id, s) in states.iter().enumerate() {
        let sampler = sampler_by_auth_level
            .get(&(s.auth.clone(), s.level.clone()))
            .copied();
        let can_end = transitions[id]
            .last()
            .is_none_or(|(total, _)| *total < 1.0 - 1e-12);
        if can_end && !s.is_churned && sampler.is_none() {
            return Err(model_err(format!(
                "a session can end in ({}, {}, {}, {}, {}), but `new-session` has no state with auth {:?} and level {:?} to start the next one",
                s.page, s.method, s.status, s.auth, s.level, s.auth, s.level
            )));
        }
        next_session_sampler.push(sampler);
    }

    let weighted = |field: &str,
                    items: Vec<(String, f64)>|
     -> Result<Option<WeightedNames>, SiteConfigError> {
        if items.is_empty() {
            return Ok(None);
        }
        let w = WeightedIndex::new(items.iter().map(|i| i.1))
            .map_err(|e| field_err(field, format!("unusable weights: {e}")))?;
        Ok(Some((items.into_iter().map(|i| i.0).collect(), w)))
    };
    let levels = weighted(
        "levels",
        raw.levels
            .iter()
            .map(|l| (l.level.clone(), l.weight))
            .collect(),
    )?;
    let auths = weighted(
        "auths",
        raw.auths
            .iter()
            .map(|a| (a.auth.clone(), a.weight))
            .collect(),
    )?;
    let new_user_auth = raw
        .new_user_auth
        .clone()
        .unwrap_or_else(|| "Guest".to_owned());
    let new_user_level = raw
        .new_user_level
        .clone()
        .unwrap_or_else(|| "free".to_owned());

    // Every (auth, level) a user can be created with needs a way to start a session.
    let mut combos: Vec<(String, String, &str)> = vec![(
        new_user_auth.clone(),
        new_user_level.clone(),
        "new-user-auth/new-user-level",
    )];
    for a in raw.auths.iter().filter(|a| a.weight > 0.0) {
        for l in raw.levels.iter().filter(|l| l.weight > 0.0) {
            combos.push((a.auth.clone(), l.level.clone(), "auths/levels"));
        }
    }
    for (auth, level, source) in combos {
        if !sampler_by_auth_level.contains_key(&(auth.clone(), level.clone())) {
            return Err(model_err(format!(
                "{source} can create users with auth {auth:?} and level {level:?}, but `new-session` has no state for them to start in"
            )));
        }
    }

    let seed = raw.seed.map(|s| s as u64);
    let defaults = ConfigDefaults {
        seed,
        users: raw.n_users.map(|n| n as u64),
        growth_rate: raw.growth_rate,
        start_date: raw.start_date.clone(),
        end_date: raw.end_date.clone(),
    };
    // Accepted for compatibility; nothing in Playlog reads them.
    let _ = (&raw.first_user_id, &raw.tag, &raw.upgrades, &raw.downgrades);

    Ok(SiteModel {
        states,
        transitions,
        start_samplers,
        next_session_sampler,
        sampler_by_auth_level,
        levels,
        auths,
        new_user_auth,
        new_user_level,
        pacing,
        defaults,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_site_compiles_and_has_the_pages_we_promise() {
        let site = SiteModel::default_site().expect("default site");
        for page in [
            "NextSong",
            "Add to Playlist",
            "Thumbs Up",
            "Thumbs Down",
            "Roll Advert",
            "Add Friend",
            "Submit Upgrade",
            "Submit Downgrade",
            "Cancellation Confirmation",
            "Login",
            "Logout",
        ] {
            assert!(
                site.states.iter().any(|s| s.page == page),
                "default site lacks {page}"
            );
        }
        assert!(site.transition_count() > 100);
    }

    /// How often `next_state_nudged` from the page `page` at `level` lands on `target`, over many draws.
    fn share(site: &SiteModel, page: &str, level: &str, nudge: Option<Nudge>, target: &str) -> f64 {
        use rand::SeedableRng;
        let state = site
            .states
            .iter()
            .position(|s| s.page == page && s.level == level && s.auth == "Logged In")
            .expect("the page") as StateId;
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        let n = 200_000;
        let hits = (0..n)
            .filter(|_| {
                let next = match nudge {
                    Some(nudge) => site.next_state_nudged(state, nudge, &mut rng),
                    None => site.next_state(state, &mut rng),
                };
                next.is_some_and(|s| site.states[s as usize].page == target)
            })
            .count();
        hits as f64 / n as f64
    }

    #[test]
    fn a_nudge_moves_the_step_it_targets_by_its_lift_and_nothing_else() {
        let site = SiteModel::default_site().expect("default site");
        // The shipped site: Upgrade -> Submit Upgrade 0.45, Downgrade -> Submit Downgrade 0.3. Five
        // standard errors at 200,000 draws are about 0.006.
        let base = share(&site, "Upgrade", "free", None, "Submit Upgrade");
        assert!((base - 0.45).abs() < 0.006, "{base}");
        let p = site.step_probability("Upgrade", "free", "Submit Upgrade");
        assert!(p.is_some_and(|p| (p - 0.45).abs() < 1e-9), "{p:?}");
        let lifted = share(
            &site,
            "Upgrade",
            "free",
            Some(Nudge::Upgrade(0.5)),
            "Submit Upgrade",
        );
        assert!((lifted - (0.45 + 0.5 * 0.55)).abs() < 0.006, "{lifted}");
        let stay = share(
            &site,
            "Downgrade",
            "paid",
            Some(Nudge::Stay(0.5)),
            "Submit Downgrade",
        );
        assert!((stay - 0.3 * 0.5).abs() < 0.006, "{stay}");
        // The other steps keep their proportions: Home is 0.35 of the 0.7 that stays, and gets that share
        // of the 0.15 talked out of leaving: 0.35 + 0.15 × 0.35 / 0.7 = 0.425.
        let home = share(&site, "Downgrade", "paid", Some(Nudge::Stay(0.5)), "Home");
        assert!((home - 0.425).abs() < 0.006, "{home}");
        // A page without the targeted step is not moved at all.
        let home_up = share(
            &site,
            "Home",
            "free",
            Some(Nudge::Upgrade(0.9)),
            "Submit Upgrade",
        );
        assert_eq!(home_up, 0.0);
        let unnudged = share(&site, "Home", "free", None, "Upgrade");
        let nudged = share(&site, "Home", "free", Some(Nudge::Upgrade(0.9)), "Upgrade");
        assert!((unnudged - nudged).abs() < 0.006, "{unnudged} vs {nudged}");
    }
}
