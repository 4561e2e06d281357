//! Durations on the command line: `250ms`, `1s`, `5m`, `1h`, `1h 30m` (humantime's syntax), or a bare
//! number of seconds (`2`, `0.5`).

use std::time::Duration;

pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let v = value.trim();
    if let Ok(seconds) = v.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|_| {
            format!("{value:?} seconds is out of range: give a duration from 0 to about 584 billion years, such as 250ms, 1s, 5m or 1h")
        });
    }
    humantime::parse_duration(v).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => {
            format!(
                "{value:?} is out of range: give a shorter duration, such as 250ms, 1s, 5m or 1h"
            )
        }
        other => format!("{value:?} is not a duration ({other}): use 250ms, 1s, 5m or 1h"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests: a failed step should stop them loudly.
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn out_of_range_and_negative_durations_are_errors_not_panics() {
        for value in ["99999999999999999999h", "1e30", "-1", "-5s"] {
            let error = parse_duration(value).unwrap_err();
            assert!(
                error.contains("out of range") || error.contains("not a duration"),
                "{value}: {error}"
            );
        }
        assert!(
            parse_duration("99999999999999999999h")
                .unwrap_err()
                .contains("out of range")
        );
    }
}
