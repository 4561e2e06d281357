//! Who the users are: names, genders, locations and devices. Each user's profile is drawn once, from the
//! user's own random stream, so a user keeps one name and one place for life, and zip, city, state,
//! latitude and longitude always come from the same row of the location table.

use fake::Fake;
use fake::faker::name::raw::LastName;
use fake::locales::{DE_DE, EN, FR_FR, PT_BR};
use playlog_model::Location;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::{Rng, RngExt};

const LOCATIONS_TSV: &str = include_str!("../data/locations.tsv");
const FIRST_NAMES_TSV: &str = include_str!("../data/first_names.tsv");
const USER_AGENTS_TSV: &str = include_str!("../data/user_agents.tsv");

/// A user's fixed attributes.
#[derive(Debug, Clone)]
pub struct Profile {
    pub first_name: Box<str>,
    pub last_name: Box<str>,
    pub gender: &'static str,
    pub location: u32,
    pub user_agent: u16,
}

/// The tables profiles are drawn from.
#[derive(Debug)]
pub struct Population {
    locations: Vec<Location>,
    location_weights: WeightedIndex<f64>,
    first_names: Vec<(String, &'static str)>,
    user_agents: Vec<String>,
    user_agent_weights: WeightedIndex<f64>,
}

impl Population {
    pub fn new() -> Population {
        let mut locations = Vec::new();
        let mut location_w = Vec::new();
        for fields in rows(LOCATIONS_TSV) {
            let [zip, city, state, lat, lon, weight] = fields[..] else {
                panic!("locations.tsv: 6 fields per row")
            };
            locations.push(Location {
                zip: zip.to_owned(),
                city: city.to_owned(),
                state: state.to_owned(),
                lat: lat.parse().expect("locations.tsv: numeric lat"),
                lon: lon.parse().expect("locations.tsv: numeric lon"),
            });
            location_w.push(
                weight
                    .parse::<f64>()
                    .expect("locations.tsv: numeric weight"),
            );
        }
        let first_names = rows(FIRST_NAMES_TSV)
            .map(|f| (f[0].to_owned(), if f[1] == "F" { "F" } else { "M" }))
            .collect();
        let mut user_agents = Vec::new();
        let mut agent_w = Vec::new();
        for fields in rows(USER_AGENTS_TSV) {
            user_agents.push(fields[0].to_owned());
            agent_w.push(
                fields[1]
                    .parse::<f64>()
                    .expect("user_agents.tsv: numeric weight"),
            );
        }
        Population {
            locations,
            location_weights: WeightedIndex::new(location_w)
                .expect("locations.tsv: positive weights"),
            first_names,
            user_agents,
            user_agent_weights: WeightedIndex::new(agent_w)
                .expect("user_agents.tsv: positive weights"),
        }
    }

    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> Profile {
        let (first, gender) = &self.first_names[rng.random_range(0..self.first_names.len())];
        // Mostly English surnames, with German, French and Portuguese ones for non-ASCII text.
        let last: String = match rng.random_range(0..10) {
            0 => LastName(DE_DE).fake_with_rng(rng),
            1 => LastName(FR_FR).fake_with_rng(rng),
            2 => LastName(PT_BR).fake_with_rng(rng),
            _ => LastName(EN).fake_with_rng(rng),
        };
        Profile {
            first_name: first.as_str().into(),
            last_name: last.into(),
            gender,
            location: self.location_weights.sample(rng) as u32,
            user_agent: self.user_agent_weights.sample(rng) as u16,
        }
    }

    pub fn location(&self, id: u32) -> &Location {
        &self.locations[id as usize]
    }

    pub fn user_agent(&self, id: u16) -> &str {
        &self.user_agents[id as usize]
    }
}

impl Default for Population {
    fn default() -> Self {
        Population::new()
    }
}

/// Tab-separated rows of an embedded table, skipping `#` comments and blank lines.
fn rows(table: &'static str) -> impl Iterator<Item = Vec<&'static str>> {
    table
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn tables_load_and_keep_leading_zeros() {
        let p = Population::new();
        assert!(
            p.locations
                .iter()
                .any(|l| l.zip == "02108" && l.city.starts_with("Boston") && l.state == "MA-NH")
        );
        assert!(p.locations.iter().all(|l| l.zip.len() == 5));
        assert!(p.user_agents.iter().any(|u| u.starts_with('"')));
    }

    #[test]
    fn profiles_are_drawn_deterministically() {
        let p = Population::new();
        let a = p.draw(&mut rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5));
        let b = p.draw(&mut rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5));
        assert_eq!(
            (a.first_name, a.last_name, a.location),
            (b.first_name, b.last_name, b.location)
        );
    }
}
