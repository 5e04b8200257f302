//! When a schedule fires: a cron pattern or one moment.
//!
//! Pulumi Cloud's `scheduleCron` is standard 5-field cron (minute, hour, day of month, month,
//! day of week) evaluated in UTC. Stackhouse also takes the `CRON_TZ=<IANA zone>` prefix that
//! cronie and Kubernetes CronJobs know (`CRON_TZ=Europe/Berlin 0 9 * * 1-5`): the pattern is
//! then evaluated in that zone, daylight-saving changes included, and the field round-trips
//! unchanged through clients that only know UTC.

use std::str::FromStr;

use chrono::{TimeZone, Utc};
use croner::parser::{CronParser, Seconds, Year};

use crate::error::{Error, Result};

/// The longest pattern accepted (zone names are at most ~30 characters).
const MAX_PATTERN: usize = 200;

/// A parsed cron pattern with its time zone.
#[derive(Debug, Clone)]
pub struct Cron {
    cron: croner::Cron,
    zone: chrono_tz::Tz,
}

impl Cron {
    /// Reads a `scheduleCron` (400 with the reason when it is not a 5-field pattern, or names
    /// an unknown zone).
    pub fn parse(text: &str) -> Result<Cron> {
        let bad = |why: String| Error::BadRequest(format!("invalid scheduleCron {text:?}: {why}"));
        if text.len() > MAX_PATTERN {
            return Err(bad(format!("longer than {MAX_PATTERN} characters")));
        }
        let text = text.trim();
        let (zone, pattern) = match text.strip_prefix("CRON_TZ=") {
            Some(rest) => {
                let (name, pattern) = rest
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| bad("CRON_TZ=<zone> is followed by the pattern".into()))?;
                let zone = chrono_tz::Tz::from_str(name)
                    .map_err(|_| bad(format!("unknown time zone {name:?}")))?;
                (zone, pattern.trim())
            }
            None => (chrono_tz::Tz::UTC, text),
        };
        if pattern.split_whitespace().count() != 5 {
            return Err(bad(
                "a pattern has 5 fields: minute hour day-of-month month day-of-week".into()
            ));
        }
        let parser =
            CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
        let cron = parser.parse(pattern).map_err(|e| bad(e.to_string()))?;
        Ok(Cron { cron, zone })
    }

    /// The first time it fires strictly after `after` (Unix seconds); None when it never does
    /// again (a pattern such as February 30th, or past the years the parser knows).
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let from = Utc.timestamp_opt(after, 0).single()?.with_timezone(&self.zone);
        self.cron.find_next_occurrence(&from, false).ok().map(|t| t.timestamp())
    }
}

/// Reads a `scheduleOnce` or TTL `timestamp`: ISO 8601 with a time zone (RFC 3339), or the
/// `2006-01-02 15:04:05.000` UTC form schedules are answered in. Unix seconds.
pub fn parse_moment(field: &str, text: &str) -> Result<i64> {
    let bad = || {
        Error::BadRequest(format!(
            "invalid {field} {text:?}: an ISO 8601 time with a zone, e.g. 2030-01-31T09:00:00Z"
        ))
    };
    if text.len() > 64 {
        return Err(bad());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .map(|t| t.and_utc().timestamp())
        .map_err(|_| bad())
}

/// A time as schedules answer it: `2006-01-02 15:04:05.000`, UTC without a zone (Pulumi
/// Cloud's form; its clients also read RFC 3339).
pub fn format_moment(secs: i64) -> String {
    match Utc.timestamp_opt(secs, 0).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn at(text: &str) -> i64 {
        parse_moment("t", text).unwrap()
    }

    #[test]
    fn patterns_fire_at_the_next_matching_minute_in_utc() {
        let every_hour = Cron::parse("0 * * * *").unwrap();
        assert_eq!(
            every_hour.next_after(at("2030-01-01T10:00:00Z")),
            Some(at("2030-01-01T11:00:00Z"))
        );
        assert_eq!(
            every_hour.next_after(at("2030-01-01T10:59:59Z")),
            Some(at("2030-01-01T11:00:00Z"))
        );
        let weekdays = Cron::parse("30 9 * * 1-5").unwrap();
        // 2030-01-05 is a Saturday: the next is Monday the 7th.
        assert_eq!(
            weekdays.next_after(at("2030-01-05T00:00:00Z")),
            Some(at("2030-01-07T09:30:00Z"))
        );
    }

    #[test]
    fn cron_tz_evaluates_in_the_zone_across_daylight_saving() {
        let berlin = Cron::parse("CRON_TZ=Europe/Berlin 0 9 * * *").unwrap();
        // Winter: UTC+1; summer: UTC+2.
        assert_eq!(berlin.next_after(at("2030-01-10T00:00:00Z")), Some(at("2030-01-10T08:00:00Z")));
        assert_eq!(berlin.next_after(at("2030-07-10T00:00:00Z")), Some(at("2030-07-10T07:00:00Z")));
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        for bad in [
            "",
            "* * * *",
            "0 0 * * * *",
            "61 * * * *",
            "@daily",
            "CRON_TZ=Mars/Olympus 0 0 * * *",
            "CRON_TZ=UTC",
            &"1,".repeat(150),
        ] {
            let e = Cron::parse(bad).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{bad}");
        }
    }

    #[test]
    fn moments_read_rfc3339_and_the_answered_form() {
        assert_eq!(at("2030-01-01T10:00:00+02:00"), at("2030-01-01T08:00:00Z"));
        assert_eq!(at("2030-01-01 08:00:00.000"), at("2030-01-01T08:00:00Z"));
        assert_eq!(format_moment(at("2030-01-01T08:00:00Z")), "2030-01-01 08:00:00.000");
        for bad in ["tomorrow", "2030-01-01", "2030-01-01T08:00:00", ""] {
            assert_eq!(parse_moment("t", bad).unwrap_err().status().as_u16(), 400, "{bad}");
        }
    }

    proptest! {
        /// Whatever a client sends, parsing answers (a pattern or a 400) and a parsed pattern's
        /// next time is strictly later.
        #[test]
        fn any_pattern_parses_or_is_refused(text in "(CRON_TZ=[A-Za-z/_]{0,20} )?[0-9*/,\\-A-Z ]{0,40}", after in 0i64..4_000_000_000) {
            match Cron::parse(&text) {
                Ok(c) => if let Some(next) = c.next_after(after) { prop_assert!(next > after) },
                Err(e) => prop_assert_eq!(e.status().as_u16(), 400),
            }
        }

        #[test]
        fn any_moment_parses_or_is_refused(text in "\\PC{0,70}") {
            if let Err(e) = parse_moment("t", &text) {
                prop_assert_eq!(e.status().as_u16(), 400);
            }
        }
    }
}
