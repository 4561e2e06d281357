//! Song titles and artist names a person would believe ("Velvet Harbor" by "Maya Quinn & the Foxes"),
//! from the word lists and patterns in `producer/data/song_names.toml`. Pure and deterministic: the same
//! random stream gives the same names.

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use rand::{Rng, RngExt};

/// The word lists and patterns, read strictly (an unknown list or placeholder is an error naming it).
#[derive(Debug)]
pub struct NameLists {
    title_patterns: Vec<String>,
    artist_patterns: Vec<String>,
    lists: BTreeMap<String, Vec<String>>,
}

const LISTS: [&str; 9] = [
    "adjective",
    "noun",
    "nouns",
    "verb",
    "place",
    "time",
    "color",
    "first_name",
    "last_name",
];
const WORD: &str = "word";

impl NameLists {
    /// Reads lists in the shape of `song_names.toml`.
    pub fn parse(text: &str, origin: &str) -> Result<NameLists, String> {
        let mut table: BTreeMap<String, Vec<String>> =
            toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        let mut take = |key: &str| {
            table
                .remove(key)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{origin}: `{key}` is missing or empty"))
        };
        let title_patterns = take("title_patterns")?;
        let artist_patterns = take("artist_patterns")?;
        let mut lists = BTreeMap::new();
        for key in LISTS.iter().chain(&[WORD]) {
            lists.insert((*key).to_owned(), take(key)?);
        }
        if let Some(unknown) = table.keys().next() {
            return Err(format!(
                "{origin}: unknown list `{unknown}` (known: title_patterns, artist_patterns, {}, {WORD})",
                LISTS.join(", ")
            ));
        }
        let names = NameLists {
            title_patterns,
            artist_patterns,
            lists,
        };
        for pattern in names.title_patterns.iter().chain(&names.artist_patterns) {
            for placeholder in placeholders(pattern)? {
                if !names.lists.contains_key(placeholder) {
                    return Err(format!(
                        "{origin}: pattern {pattern:?} uses {{{placeholder}}}, which is no list"
                    ));
                }
            }
        }
        Ok(names)
    }

    /// The lists shipped in the repository.
    pub fn shipped() -> &'static NameLists {
        static SHIPPED: OnceLock<NameLists> = OnceLock::new();
        SHIPPED.get_or_init(|| {
            NameLists::parse(
                include_str!("../data/song_names.toml"),
                "producer/data/song_names.toml",
            )
            .expect("the shipped name lists are valid (a unit test reads them)")
        })
    }

    pub fn title<R: Rng + ?Sized>(&self, rng: &mut R) -> String {
        self.fill(&self.title_patterns, rng)
    }

    pub fn artist<R: Rng + ?Sized>(&self, rng: &mut R) -> String {
        self.fill(&self.artist_patterns, rng)
    }

    /// `count` distinct artist names (after a few tries a repeat gets a numeral: "Maya Quinn II").
    pub fn distinct_artists<R: Rng + ?Sized>(&self, count: usize, rng: &mut R) -> Vec<String> {
        let mut seen = HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let mut name = self.artist(rng);
            for _ in 0..20 {
                if !seen.contains(&name) {
                    break;
                }
                name = self.artist(rng);
            }
            let mut n = 2;
            let base = name.clone();
            while seen.contains(&name) {
                name = format!("{base} {}", roman(n));
                n += 1;
            }
            seen.insert(name.clone());
            out.push(name);
        }
        out
    }

    fn fill<R: Rng + ?Sized>(&self, patterns: &[String], rng: &mut R) -> String {
        let pattern = &patterns[rng.random_range(0..patterns.len())];
        let mut out = String::with_capacity(pattern.len() + 16);
        let mut rest = pattern.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = open + rest[open..].find('}').expect("checked when parsed");
            let list = &self.lists[&rest[open + 1..close]];
            out.push_str(&list[rng.random_range(0..list.len())]);
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        out
    }
}

fn placeholders(pattern: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("pattern {pattern:?}: a {{ without its }}"))?;
        out.push(&rest[open + 1..open + close]);
        rest = &rest[open + close + 1..];
    }
    Ok(out)
}

fn roman(n: usize) -> String {
    const NUMERALS: [&str; 9] = ["II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X"];
    NUMERALS
        .get(n.wrapping_sub(2))
        .map_or_else(|| n.to_string(), |s| (*s).to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn the_shipped_lists_read_and_make_names_without_placeholders() {
        let names = NameLists::shipped();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        for _ in 0..2000 {
            let title = names.title(&mut rng);
            let artist = names.artist(&mut rng);
            assert!(!title.contains('{') && !title.is_empty(), "{title}");
            assert!(!artist.contains('{') && !artist.is_empty(), "{artist}");
        }
    }

    #[test]
    fn the_same_seed_makes_the_same_names() {
        let names = NameLists::shipped();
        let make = |seed| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            (0..50).map(|_| names.title(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(make(3), make(3));
        assert_ne!(make(3), make(4));
    }

    #[test]
    fn artists_are_distinct_even_past_the_patterns_reach() {
        let names = NameLists::shipped();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let artists = names.distinct_artists(20_000, &mut rng);
        assert_eq!(artists.iter().collect::<HashSet<_>>().len(), 20_000);
    }

    #[test]
    fn lists_are_read_strictly_naming_the_fault() {
        let base = include_str!("../data/song_names.toml");
        let unknown = format!("{base}\ncolour = [\"Red\"]\n");
        assert!(
            NameLists::parse(&unknown, "x.toml")
                .unwrap_err()
                .contains("unknown list `colour`")
        );
        let bad = base.replace("\"{adjective} {noun}\",", "\"{adjectiv} {noun}\",");
        assert!(
            NameLists::parse(&bad, "x.toml")
                .unwrap_err()
                .contains("{adjectiv}")
        );
        let empty = base.replace(
            "color = [\n  \"Blue\", \"Red\", \"Silver\", \"Black\", \"Crimson\", \"Violet\", \"Scarlet\", \"Amber\", \"Emerald\", \"White\",\n]",
            "color = []",
        );
        assert!(
            NameLists::parse(&empty, "x.toml")
                .unwrap_err()
                .contains("`color` is missing or empty")
        );
    }
}
