//! The songs users play: a synthetic catalog by default, or eventsim's `listen_counts.txt[.gz]`.
//!
//! Either way a song is drawn in constant time from an alias table weighted by popularity.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use std::collections::HashSet;

use playlog_model::Song;
use rand::distr::Distribution;
use rand::{Rng, RngExt, SeedableRng};
use rand_distr::LogNormal;
use rand_distr::weighted::WeightedAliasIndex;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::song_names::NameLists;

/// What went wrong loading a song file.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("reading song file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("song file {path}, line {line}: {message}")]
    Line {
        path: String,
        line: usize,
        message: String,
    },
    #[error("song file {path} has no songs with a positive count")]
    Empty { path: String },
}

/// Songs and how popular each is.
pub struct SongCatalog {
    songs: Vec<Song>,
    popularity: WeightedAliasIndex<f64>,
}

impl std::fmt::Debug for SongCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SongCatalog({} songs)", self.songs.len())
    }
}

impl SongCatalog {
    /// A synthetic catalog of `songs` tracks: titles and artists from the word lists and patterns in
    /// `producer/data/song_names.toml` (some with accents, so that UTF-8 is exercised), no title twice for
    /// one artist, Zipf-like popularity (weight 1/rank), and log-normal durations around four minutes.
    /// The same seed gives the same catalog.
    pub fn synthetic(songs: usize, seed: u64) -> SongCatalog {
        let songs = songs.max(1);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5157_1c7a_7a10_9000);
        let names = NameLists::shipped();
        let artist_count = (songs / 8).max(1);
        let artists = names.distinct_artists(artist_count, &mut rng);
        let durations = LogNormal::new(230f64.ln(), 0.3).expect("constant parameters are valid");
        let mut list = Vec::with_capacity(songs);
        let mut taken = HashSet::with_capacity(songs);
        for _ in 0..songs {
            let artist = artists[rng.random_range(0..artist_count)].clone();
            let mut title = names.title(&mut rng);
            for _ in 0..20 {
                if !taken.contains(&(title.clone(), artist.clone())) {
                    break;
                }
                title = names.title(&mut rng);
            }
            // Still a title the artist has: another take of it, as catalogues have.
            let base = title.clone();
            let mut take = 2;
            while taken.contains(&(title.clone(), artist.clone())) {
                title = format!("{base} (Take {take})");
                take += 1;
            }
            taken.insert((title.clone(), artist.clone()));
            let seconds: f64 = durations.sample(&mut rng).clamp(30.0, 1200.0);
            // eventsim's durations have five decimals, e.g. 218.93179.
            let duration = (seconds * 100_000.0).round() / 100_000.0;
            list.push(Song {
                artist,
                title,
                duration,
            });
        }
        // Popularity by a random rank, so that popularity is unrelated to catalogue order.
        let mut ranks: Vec<usize> = (1..=songs).collect();
        for i in (1..songs).rev() {
            ranks.swap(i, rng.random_range(0..=i));
        }
        let weights = ranks.iter().map(|r| 1.0 / *r as f64).collect();
        SongCatalog::new(list, weights).expect("synthetic weights are positive")
    }

    /// eventsim's `listen_counts.txt` (or `.txt.gz`): tab-separated trackId, artist, title, duration in
    /// seconds (blank means 180), listen count. Text is read as UTF-8; invalid UTF-8 is an error naming
    /// the line, never silently reinterpreted as Latin-1 the way eventsim does.
    pub fn from_listen_counts(path: &Path) -> Result<SongCatalog, CatalogError> {
        let shown = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| CatalogError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut reader = BufReader::new(file);
        let gz = reader
            .fill_buf()
            .map(|b| b.starts_with(&[0x1f, 0x8b]))
            .unwrap_or(false);
        let reader: Box<dyn Read> = if gz {
            Box::new(flate2::read::MultiGzDecoder::new(reader))
        } else {
            Box::new(reader)
        };
        SongCatalog::read_listen_counts(BufReader::new(reader), &shown)
    }

    fn read_listen_counts<R: BufRead>(
        mut reader: R,
        path: &str,
    ) -> Result<SongCatalog, CatalogError> {
        let line_err = |line: usize, message: String| CatalogError::Line {
            path: path.to_owned(),
            line,
            message,
        };
        let mut songs = Vec::new();
        let mut weights = Vec::new();
        let mut buf = Vec::new();
        let mut line_no = 0;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|source| CatalogError::Read {
                    path: path.to_owned(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            line_no += 1;
            let text = std::str::from_utf8(&buf).map_err(|e| {
                line_err(
                    line_no,
                    format!("not valid UTF-8 ({e}); the file must be UTF-8"),
                )
            })?;
            let text = text.trim_end_matches(['\n', '\r']);
            if text.is_empty() {
                continue;
            }
            let fields: Vec<&str> = text.split('\t').collect();
            if fields.len() != 5 {
                return Err(line_err(
                    line_no,
                    format!(
                        "expected 5 tab-separated fields (trackId, artist, title, duration, count), found {}",
                        fields.len()
                    ),
                ));
            }
            let duration = match fields[3].trim() {
                "" => 180.0,
                d => d
                    .parse::<f64>()
                    .ok()
                    .filter(|d| d.is_finite() && *d > 0.0)
                    .ok_or_else(|| {
                        line_err(
                            line_no,
                            format!("duration {d:?} is not a positive number of seconds"),
                        )
                    })?,
            };
            let count: u64 = fields[4].trim().parse().map_err(|_| {
                line_err(
                    line_no,
                    format!("count {:?} is not a whole number", fields[4]),
                )
            })?;
            if count == 0 {
                continue;
            }
            songs.push(Song {
                artist: fields[1].to_owned(),
                title: fields[2].to_owned(),
                duration,
            });
            weights.push(count as f64);
        }
        SongCatalog::new(songs, weights).ok_or_else(|| CatalogError::Empty {
            path: path.to_owned(),
        })
    }

    fn new(songs: Vec<Song>, weights: Vec<f64>) -> Option<SongCatalog> {
        if songs.is_empty() {
            return None;
        }
        let popularity = WeightedAliasIndex::new(weights).ok()?;
        Some(SongCatalog { songs, popularity })
    }

    /// A song, by popularity.
    #[inline]
    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        self.popularity.sample(rng) as u32
    }

    pub fn song(&self, id: u32) -> &Song {
        &self.songs[id as usize]
    }

    pub fn len(&self) -> usize {
        self.songs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.songs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_counts_are_read_as_utf8_with_blank_duration_180() {
        let text = "TR1\tSigur Rós\tHoppípolla\t268.5\t10\nTR2\tBjörk\tJóga\t\t5\nTR3\tNobody\tSilence\t200\t0\n";
        let cat = SongCatalog::read_listen_counts(text.as_bytes(), "test").expect("parses");
        assert_eq!(cat.len(), 2, "zero-count songs are never played");
        assert_eq!(cat.song(0).artist, "Sigur Rós");
        assert_eq!(cat.song(0).title, "Hoppípolla");
        assert_eq!(cat.song(1).duration, 180.0);
    }

    #[test]
    fn gzipped_listen_counts_load_from_a_file() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("listen_counts.txt.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).expect("create"),
            flate2::Compression::fast(),
        );
        gz.write_all("T\tMötley Crüe\tKickstart My Heart\t283.2\t3\n".as_bytes())
            .expect("write");
        gz.finish().expect("finish");
        let cat = SongCatalog::from_listen_counts(&path).expect("loads");
        assert_eq!(cat.song(0).artist, "Mötley Crüe");
    }

    #[test]
    fn latin1_bytes_are_an_error_that_names_the_line() {
        let bytes = b"T1\tA\tB\t100\t1\nT2\tBj\xf6rk\tJ\xf3ga\t100\t1\n";
        let err = SongCatalog::read_listen_counts(&bytes[..], "songs.txt")
            .expect_err("latin-1 rejected")
            .to_string();
        assert!(err.contains("line 2") && err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn a_bad_count_names_the_line_and_field() {
        let err = SongCatalog::read_listen_counts(&b"T1\tA\tB\t100\tmany\n"[..], "songs.txt")
            .expect_err("rejected")
            .to_string();
        assert!(err.contains("line 1") && err.contains("count"), "{err}");
    }

    #[test]
    fn synthetic_popularity_is_skewed() {
        let cat = SongCatalog::synthetic(5000, 1);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let mut counts = vec![0u32; cat.len()];
        for _ in 0..200_000 {
            counts[cat.pick(&mut rng) as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top_1pct: u32 = counts[..50].iter().sum();
        // With 1/rank weights over 5000 songs the top 1% take about half the plays.
        assert!(top_1pct > 200_000 / 3, "top 1% got {top_1pct}");
    }
}
