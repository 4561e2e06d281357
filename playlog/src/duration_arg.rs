//! Durations on the command line: `250ms`, `1s`, `5m`, `1h` (a bare number is seconds).

use std::time::Duration;

pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let v = value.trim();
    let (number, unit) = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((v, "s"), |i| v.split_at(i));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{value:?} is not a duration: use 250ms, 1s, 5m or 1h"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "{value:?}: unknown unit {unit:?}; use ms, s, m or h"
            ));
        }
    };
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("soon").is_err());
    }
}
