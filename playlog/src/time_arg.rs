//! Times on the command line: RFC 3339 (`2026-01-01T00:00:00Z`), or a date (`2026-01-01`, midnight).
//! A time without an offset is UTC, never the host's timezone.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Parses a time to epoch milliseconds, UTC.
pub fn parse_time(value: &str) -> Result<i64, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S") {
        return Ok(t.and_utc().timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp_millis()));
    }
    Err(format!(
        "{value:?} is not a time: use RFC 3339 such as 2026-01-01T00:00:00Z, or a date such as 2026-01-01"
    ))
}

/// Now, in epoch milliseconds.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_without_offset_are_utc() {
        let z = parse_time("2026-01-01T00:00:00Z").expect("rfc3339");
        assert_eq!(parse_time("2026-01-01T00:00:00").expect("naive"), z);
        assert_eq!(parse_time("2026-01-01").expect("date"), z);
        assert_eq!(parse_time("2026-01-01T01:00:00+01:00").expect("offset"), z);
        assert_eq!(z, 1_767_225_600_000);
        assert!(parse_time("yesterday").is_err());
    }
}
