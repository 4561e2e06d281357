//! The simulation of one shard of users: a priority queue of users by the time of their next request,
//! popped in time order. Each pop emits that request's events and advances the user's session by one step
//! of the site's state machine.
//!
//! Every user has its own random stream, seeded from the run's seed and the user's number, so a user
//! behaves the same whichever shard simulates it; the run as a whole is a pure function of its seed and
//! flags.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use playlog_model::{Event, Stream, UserDetails};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::catalog::SongCatalog;
use crate::clock::{MS_PER_SECOND, MS_PER_YEAR, SessionClock, exponential};
use crate::ids::{SessionIds, mix_seed};
use crate::offer_response::OfferBook;
use crate::population::{Population, Profile};
use crate::site::{SiteModel, StateId};

/// Everything the shards share, read-only.
#[derive(Debug)]
pub struct World {
    pub site: SiteModel,
    pub catalog: SongCatalog,
    pub population: Population,
    pub clock: SessionClock,
}

impl World {
    pub fn new(site: SiteModel, catalog: SongCatalog) -> World {
        let clock = SessionClock::new(site.pacing);
        World {
            site,
            catalog,
            population: Population::new(),
            clock,
        }
    }
}

/// What one shard simulates.
#[derive(Debug, Clone)]
pub struct ShardPlan {
    pub seed: u64,
    pub instance_id: u16,
    pub shard: u16,
    pub shards: u16,
    /// Users at the start, across all shards; this shard takes every `shards`-th.
    pub initial_users: u64,
    /// Annual growth, as a fraction of the current users (0.01 = 1%).
    pub growth_rate: f64,
    /// Annual attrition, as a fraction of the current users, who then go silent.
    pub attrition_rate: f64,
    /// Simulated time starts here (epoch ms, UTC); events before it are simulated but not emitted.
    pub start: i64,
}

const NO_SONG: u32 = u32::MAX;
/// User ids per producer instance: instance k numbers its users from k * 10^9 + 1.
const USER_IDS_PER_INSTANCE: i64 = 1_000_000_000;

struct User {
    user_id: i64,
    profile: Profile,
    registration: i64,
    alpha_ms: f64,
    beta_ms: f64,
    /// When attrition takes this user (epoch ms); `i64::MAX` for never.
    leaves_at: i64,
    rng: Xoshiro256PlusPlus,
    // The current session.
    /// 0 until the session's first event is emitted.
    session_id: i64,
    state: StateId,
    item: i32,
    /// The previous request was a Login: this one is also an auth event.
    after_login: bool,
    song: u32,
    song_end: i64,
    /// When the current request happens.
    ts: i64,
}

/// One shard's simulation.
pub struct Simulation<'w> {
    world: &'w World,
    plan: ShardPlan,
    users: Vec<User>,
    queue: BinaryHeap<Reverse<(i64, u32)>>,
    session_ids: SessionIds,
    growth: Option<Growth>,
    attrition_mean_ms: Option<f64>,
    /// The offers users hold, when the run reacts to them (`--offers-topic`).
    offers: Option<Arc<OfferBook>>,
}

struct Growth {
    rng: Xoshiro256PlusPlus,
    next_arrival: i64,
    /// Arrivals so far in this shard, which number the new users.
    arrivals: u64,
}

impl<'w> Simulation<'w> {
    pub fn new(world: &'w World, plan: ShardPlan) -> Simulation<'w> {
        // Attrition as a hazard, so that after a year exactly `attrition_rate` of the users are gone.
        let attrition_mean_ms =
            (plan.attrition_rate > 0.0).then(|| MS_PER_YEAR / -(1.0 - plan.attrition_rate).ln());
        let mut sim = Simulation {
            world,
            session_ids: SessionIds::new(plan.instance_id, plan.shard),
            users: Vec::new(),
            queue: BinaryHeap::new(),
            growth: None,
            attrition_mean_ms,
            offers: None,
            plan,
        };
        let shards = u64::from(sim.plan.shards);
        let mut index = u64::from(sim.plan.shard);
        while index < sim.plan.initial_users {
            sim.add_initial_user(index);
            index += shards;
        }
        if sim.plan.growth_rate > 0.0 {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(mix_seed(
                sim.plan.seed,
                0x6120_7774 + u64::from(sim.plan.shard),
            ));
            let first = sim.plan.start + sim.arrival_gap(&mut rng);
            sim.growth = Some(Growth {
                rng,
                next_arrival: first,
                arrivals: 0,
            });
        }
        sim
    }

    /// Makes users react to the offers in `book` (see `offer_response`).
    pub fn with_offers(mut self, book: Arc<OfferBook>) -> Self {
        self.offers = Some(book);
        self
    }

    /// Users alive in this shard (not churned, not gone to attrition).
    pub fn active_users(&self) -> usize {
        self.queue.len()
    }

    /// Time of the next request, if any user is left.
    pub fn next_time(&self) -> Option<i64> {
        let next_user = self.queue.peek().map(|Reverse((ts, _))| *ts);
        match (&self.growth, next_user) {
            (Some(g), Some(ts)) => Some(ts.min(g.next_arrival)),
            (Some(g), None) => Some(g.next_arrival),
            (None, ts) => ts,
        }
    }

    /// Simulates the next request: calls `emit` for each of its events (none before the start time), then
    /// advances that user. Returns the request's time, or `None` when no user is left.
    pub fn step<F: FnMut(&Event<'_>)>(&mut self, mut emit: F) -> Option<i64> {
        let next_user = self.queue.peek().map(|Reverse((ts, _))| *ts);
        if let Some(g) = &self.growth
            && next_user.is_none_or(|ts| g.next_arrival <= ts)
        {
            self.arrive();
        }
        let Reverse((ts, index)) = self.queue.pop()?;
        let world = self.world;
        let user = &mut self.users[index as usize];
        if ts >= self.plan.start {
            if user.session_id == 0 {
                user.session_id = self.session_ids.assign(ts);
            }
            emit_request(world, user, &mut emit);
        }
        let offers = self.offers.as_deref();
        if let Some(next) = advance(world, user, self.attrition_mean_ms.is_some(), offers) {
            self.queue.push(Reverse((next, index)));
        }
        Some(ts)
    }

    fn add_initial_user(&mut self, index: u64) {
        let world = self.world;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(mix_seed(self.plan.seed, index));
        let (auth, level) = world.site.initial_auth_level(&mut rng);
        let (auth, level) = (auth.to_owned(), level.to_owned());
        // Registered some time before the start: exponential with a mean of a year, at most five.
        let tenure = exponential(MS_PER_YEAR, &mut rng).min(5.0 * MS_PER_YEAR) as i64;
        let registration = self.plan.start - tenure;
        let mut user = self.new_user(index, rng, registration, &auth, &level);
        user.ts = world
            .clock
            .first_session_start(self.plan.start, user.beta_ms, &mut user.rng);
        self.schedule(user);
    }

    fn arrive(&mut self) {
        let Some(mut growth) = self.growth.take() else {
            return;
        };
        let at = growth.next_arrival;
        let index = self.plan.initial_users
            + u64::from(self.plan.shard)
            + growth.arrivals * u64::from(self.plan.shards);
        growth.arrivals += 1;
        let rng = Xoshiro256PlusPlus::seed_from_u64(mix_seed(self.plan.seed, index));
        let site = &self.world.site;
        let (auth, level) = (site.new_user_auth.clone(), site.new_user_level.clone());
        let mut user = self.new_user(index, rng, at, &auth, &level);
        // A new user's first session starts when the user arrives, never before.
        user.ts = at;
        self.schedule(user);
        growth.next_arrival = at + self.arrival_gap(&mut growth.rng);
        self.growth = Some(growth);
    }

    /// Compounding growth, as eventsim does it: the mean gap shrinks as the population grows.
    fn arrival_gap(&self, rng: &mut Xoshiro256PlusPlus) -> i64 {
        let population = (self.users.len() as f64).max(1.0);
        (exponential(MS_PER_YEAR / (population * self.plan.growth_rate), rng) as i64).max(1)
    }

    fn new_user(
        &self,
        index: u64,
        mut rng: Xoshiro256PlusPlus,
        registration: i64,
        auth: &str,
        level: &str,
    ) -> User {
        let world = self.world;
        let pacing = world.site.pacing;
        let profile = world.population.draw(&mut rng);
        let alpha_ms = pacing.alpha_ms * log_normal_mean_one(&mut rng);
        let beta_ms = pacing.beta_ms * log_normal_mean_one(&mut rng);
        let leaves_at = match self.attrition_mean_ms {
            Some(mean) => registration
                .max(self.plan.start)
                .saturating_add(exponential(mean, &mut rng) as i64),
            None => i64::MAX,
        };
        let state = world.site.session_start(auth, level, &mut rng).expect(
            "the site model was checked to start sessions for every creatable auth and level",
        );
        User {
            user_id: i64::from(self.plan.instance_id) * USER_IDS_PER_INSTANCE + index as i64 + 1,
            profile,
            registration,
            alpha_ms,
            beta_ms,
            leaves_at,
            rng,
            session_id: 0,
            state,
            item: 0,
            after_login: false,
            song: NO_SONG,
            song_end: 0,
            ts: registration,
        }
    }

    fn schedule(&mut self, mut user: User) {
        if self.world.site.states[user.state as usize].is_next_song {
            start_song(self.world, &mut user);
        }
        let index = self.users.len() as u32;
        self.queue.push(Reverse((user.ts, index)));
        self.users.push(user);
    }
}

/// exp(N(0,1)) / sqrt(e): log-normal with mean 1, eventsim's per-user pacing factor.
fn log_normal_mean_one(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let z: f64 = StandardNormal.sample(rng);
    (z - 0.5).exp()
}

fn start_song(world: &World, user: &mut User) {
    user.song = world.catalog.pick(&mut user.rng);
    let seconds = world.catalog.song(user.song).duration;
    user.song_end = user.ts + (seconds * MS_PER_SECOND as f64) as i64;
}

/// The events of the user's current request, in eventsim's order: listen, status change, auth, page view.
fn emit_request<F: FnMut(&Event<'_>)>(world: &World, user: &User, emit: &mut F) {
    let state = &world.site.states[user.state as usize];
    let profile = &user.profile;
    let details = state.shows_user.then_some(UserDetails {
        user_id: user.user_id,
        first_name: &profile.first_name,
        last_name: &profile.last_name,
        gender: profile.gender,
        registration: user.registration,
    });
    let song = (state.is_next_song && user.song != NO_SONG).then(|| world.catalog.song(user.song));
    let page_view = Event {
        stream: Stream::PageView,
        ts: user.ts,
        session_id: user.session_id,
        item_in_session: user.item,
        level: &state.level,
        auth: &state.auth,
        page: &state.page,
        method: &state.method,
        status: state.status,
        location: world.population.location(profile.location),
        user_agent: world.population.user_agent(profile.user_agent),
        user: details,
        song,
        success: false,
    };
    if song.is_some() {
        emit(&Event {
            stream: Stream::Listen,
            ..page_view
        });
    }
    if state.is_status_change {
        emit(&Event {
            stream: Stream::StatusChange,
            ..page_view
        });
    }
    if user.after_login {
        emit(&Event {
            stream: Stream::Auth,
            success: state.is_logged_in,
            ..page_view
        });
    }
    emit(&page_view);
}

/// Moves the user to its next request. Returns its time, or `None` when the user has churned or left.
fn advance(
    world: &World,
    user: &mut User,
    attrition: bool,
    offers: Option<&OfferBook>,
) -> Option<i64> {
    let site = &world.site;
    let current = &site.states[user.state as usize];
    // The book is asked only where an offer could change the step: the Upgrade, Downgrade and Settings
    // pages, a few requests in a hundred.
    let nudge = offers
        .filter(|_| site.upgrade_step(user.state).is_some() || site.can_leave(user.state))
        .and_then(|book| book.nudge(user.user_id, user.session_id, user.ts));
    let next = match nudge {
        Some(nudge) => site.next_state_nudged(user.state, nudge, &mut user.rng),
        None => site.next_state(user.state, &mut user.rng),
    };
    match next {
        Some(next) => {
            let next_state = &site.states[next as usize];
            user.ts = if current.is_redirect {
                // The redirect's target is requested a second later.
                user.ts + MS_PER_SECOND
            } else if next_state.is_next_song && user.song != NO_SONG && user.ts < user.song_end {
                // The next song starts when the current one ends.
                user.song_end
            } else {
                user.ts + (exponential(user.alpha_ms, &mut user.rng) as i64).max(1)
            };
            user.after_login = current.is_login;
            user.item += 1;
            user.state = next;
            if next_state.is_next_song {
                start_song(world, user);
            }
            Some(user.ts)
        }
        None => {
            if current.is_churned {
                return None;
            }
            let start = world
                .clock
                .next_session_start(user.ts, user.beta_ms, &mut user.rng);
            if attrition && start >= user.leaves_at {
                return None;
            }
            user.state = site.next_session_start(user.state, &mut user.rng)?;
            user.session_id = 0;
            user.item = 0;
            user.after_login = false;
            user.song = NO_SONG;
            user.ts = start;
            if site.states[user.state as usize].is_next_song {
                start_song(world, user);
            }
            Some(start)
        }
    }
}
