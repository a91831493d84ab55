//! Scheduled sessions: checking a room's timetable, its RFC 5545
//! recurrence rule, and when its next session is.
//!
//! The rule is the one the `.ics` feed publishes, and the next session is
//! computed from it by the `rrule` crate (RFC 5545 semantics, time-zone
//! aware), so the lobby and a calendar app cannot disagree.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use rrule::RRuleSet;
use vtp_store::{Recurrence, Schedule, ScheduleEntry, Weekday};

/// Series per room: a class meets on a few slots a week, not dozens.
pub const MAX_SCHEDULE_ENTRIES: usize = 8;
/// Sessions in a series ended by a count: ten years of weekly classes.
pub const MAX_RECURRENCE_COUNT: u32 = 520;
/// A series ended by a date ends within this many days of its start.
pub const MAX_SERIES_DAYS: i64 = 3660;
/// Session length, in minutes.
pub const MIN_DURATION_MINUTES: u32 = 5;
pub const MAX_DURATION_MINUTES: u32 = 24 * 60;
/// First sessions from this year to that one (what a calendar can show).
const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// One session: when it starts and ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Occurrence {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The schedule's time zone, or why it is no IANA name.
pub fn time_zone(schedule: &Schedule) -> Result<Tz, String> {
    schedule.time_zone.parse::<Tz>().map_err(|_| {
        format!(
            "timeZone: {:?} is not an IANA time zone name (like Europe/Berlin)",
            schedule.time_zone
        )
    })
}

/// Checks a schedule a host sent; the error names the field.
pub fn validate(schedule: &Schedule) -> Result<(), String> {
    let tz = time_zone(schedule)?;
    if schedule.entries.len() > MAX_SCHEDULE_ENTRIES {
        return Err(format!("entries: at most {MAX_SCHEDULE_ENTRIES} per room"));
    }
    for (i, entry) in schedule.entries.iter().enumerate() {
        validate_entry(tz, entry).map_err(|e| format!("entries[{i}].{e}"))?;
    }
    Ok(())
}

fn validate_entry(tz: Tz, entry: &ScheduleEntry) -> Result<(), String> {
    if !YEARS.contains(&entry.start.year()) {
        return Err(format!(
            "start: the year must be between {} and {}",
            YEARS.start(),
            YEARS.end()
        ));
    }
    if tz.from_local_datetime(&entry.start).earliest().is_none() {
        return Err("start: this local time does not exist (a daylight saving change)".into());
    }
    if !(MIN_DURATION_MINUTES..=MAX_DURATION_MINUTES).contains(&entry.duration_minutes) {
        return Err(format!(
            "durationMinutes: between {MIN_DURATION_MINUTES} and {MAX_DURATION_MINUTES}"
        ));
    }
    if let Recurrence::Weekly {
        weekdays,
        until,
        count,
    } = &entry.recurrence
    {
        if weekdays.is_empty() || weekdays.len() > 7 {
            return Err("recurrence.weekdays: one to seven days".into());
        }
        let mut sorted = weekdays.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != weekdays.len() {
            return Err("recurrence.weekdays: a day is named twice".into());
        }
        if !weekdays.contains(&Weekday::from_chrono(entry.start.weekday())) {
            return Err("recurrence.weekdays: must include the first session's day".into());
        }
        match (until, count) {
            (Some(_), Some(_)) => {
                return Err("recurrence: give until or count, not both".into());
            }
            (Some(until), None) => {
                let days = (*until - entry.start.date()).num_days();
                if days < 0 {
                    return Err("recurrence.until: before the first session".into());
                }
                if days > MAX_SERIES_DAYS {
                    return Err(format!(
                        "recurrence.until: at most {MAX_SERIES_DAYS} days after the first session"
                    ));
                }
            }
            (None, Some(count)) => {
                if !(1..=MAX_RECURRENCE_COUNT).contains(count) {
                    return Err(format!(
                        "recurrence.count: between 1 and {MAX_RECURRENCE_COUNT}"
                    ));
                }
            }
            (None, None) => {}
        }
    }
    Ok(())
}

/// The RFC 5545 `RRULE` value of a weekly entry (`None` for a one-off).
/// `UNTIL` is the end of the local day, in UTC, as RFC 5545 requires when
/// `DTSTART` has a `TZID`.
pub fn rrule_value(tz: Tz, entry: &ScheduleEntry) -> Option<String> {
    let Recurrence::Weekly {
        weekdays,
        until,
        count,
    } = &entry.recurrence
    else {
        return None;
    };
    let days: Vec<&str> = weekdays.iter().map(|d| d.as_rfc5545()).collect();
    let mut rule = format!("FREQ=WEEKLY;BYDAY={}", days.join(","));
    if let Some(count) = count {
        rule.push_str(&format!(";COUNT={count}"));
    }
    if let Some(until) = until {
        rule.push_str(&format!(
            ";UNTIL={}",
            until_utc(tz, *until).format("%Y%m%dT%H%M%SZ")
        ));
    }
    Some(rule)
}

fn until_utc(tz: Tz, until: NaiveDate) -> DateTime<Utc> {
    let end_of_day = until.and_time(NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default());
    tz.from_local_datetime(&end_of_day)
        .latest()
        .map(|t| t.with_timezone(&Utc))
        // A day ending in a daylight-saving gap: an hour later exists.
        .unwrap_or_else(|| end_of_day.and_utc() + Duration::hours(1))
}

/// The first session's start in UTC.
pub fn first_start(tz: Tz, entry: &ScheduleEntry) -> Option<DateTime<Utc>> {
    tz.from_local_datetime(&entry.start)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// The session in progress at `now`, or else the next one; `None` when
/// every series is over (or the schedule is not valid any more, e.g. a
/// time zone renamed out of the database).
pub fn next_session(schedule: &Schedule, now: DateTime<Utc>) -> Option<Occurrence> {
    let tz = time_zone(schedule).ok()?;
    schedule
        .entries
        .iter()
        .filter_map(|entry| next_of_entry(tz, entry, now))
        .min_by_key(|o| o.start)
}

fn next_of_entry(tz: Tz, entry: &ScheduleEntry, now: DateTime<Utc>) -> Option<Occurrence> {
    let length = Duration::minutes(i64::from(entry.duration_minutes));
    // A session that started less than its length ago is still on.
    let from = now - length + Duration::seconds(1);
    let start = match rrule_value(tz, entry) {
        None => first_start(tz, entry).filter(|s| *s >= from)?,
        Some(rule) => {
            let text = format!(
                "DTSTART;TZID={}:{}\nRRULE:{rule}",
                tz.name(),
                entry.start.format("%Y%m%dT%H%M%S")
            );
            let set: RRuleSet = text.parse().ok()?;
            let found = set.after(from.with_timezone(&rrule::Tz::UTC)).all(1);
            found.dates.first()?.with_timezone(&Utc)
        }
    };
    Some(Occurrence {
        start,
        end: start + length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;

    fn entry(start: &str, recurrence: Recurrence) -> ScheduleEntry {
        ScheduleEntry {
            start: NaiveDateTime::parse_from_str(start, "%Y-%m-%dT%H:%M").unwrap(),
            duration_minutes: 60,
            recurrence,
        }
    }

    fn schedule(tz: &str, entries: Vec<ScheduleEntry>) -> Schedule {
        Schedule {
            time_zone: tz.into(),
            entries,
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn weekly_next_session_follows_local_time_across_dst() {
        // Tuesdays 10:00 in Berlin from 2026-10-20 (CEST, UTC+2); after
        // 25 October it is CET (UTC+1), so 09:00 UTC.
        let s = schedule(
            "Europe/Berlin",
            vec![entry(
                "2026-10-20T10:00",
                Recurrence::Weekly {
                    weekdays: vec![Weekday::Tu],
                    until: None,
                    count: None,
                },
            )],
        );
        validate(&s).unwrap();
        let next = next_session(&s, utc("2026-10-19T00:00:00Z")).unwrap();
        assert_eq!(next.start, utc("2026-10-20T08:00:00Z"));
        let next = next_session(&s, utc("2026-10-21T00:00:00Z")).unwrap();
        assert_eq!(next.start, utc("2026-10-27T09:00:00Z"));
        assert_eq!(next.end, utc("2026-10-27T10:00:00Z"));
        // In progress: still this one.
        let next = next_session(&s, utc("2026-10-27T09:30:00Z")).unwrap();
        assert_eq!(next.start, utc("2026-10-27T09:00:00Z"));
    }

    #[test]
    fn count_and_until_end_a_series() {
        let counted = schedule(
            "UTC",
            vec![entry(
                "2026-12-01T10:00",
                Recurrence::Weekly {
                    weekdays: vec![Weekday::Tu, Weekday::Th],
                    until: None,
                    count: Some(3),
                },
            )],
        );
        validate(&counted).unwrap();
        // Tue 1, Thu 3, Tue 8 December; nothing after.
        assert_eq!(
            next_session(&counted, utc("2026-12-04T00:00:00Z"))
                .unwrap()
                .start,
            utc("2026-12-08T10:00:00Z")
        );
        assert_eq!(next_session(&counted, utc("2026-12-09T00:00:00Z")), None);
        let until = schedule(
            "America/New_York",
            vec![entry(
                "2026-12-01T18:00",
                Recurrence::Weekly {
                    weekdays: vec![Weekday::Tu],
                    until: Some(NaiveDate::from_ymd_opt(2026, 12, 15).unwrap()),
                    count: None,
                },
            )],
        );
        validate(&until).unwrap();
        assert_eq!(
            rrule_value(chrono_tz::America::New_York, &until.entries[0]).unwrap(),
            "FREQ=WEEKLY;BYDAY=TU;UNTIL=20261216T045959Z"
        );
        assert_eq!(
            next_session(&until, utc("2026-12-10T00:00:00Z"))
                .unwrap()
                .start,
            utc("2026-12-15T23:00:00Z")
        );
        assert_eq!(next_session(&until, utc("2026-12-16T01:00:00Z")), None);
    }

    #[test]
    fn one_off_and_bad_schedules() {
        let once = schedule("UTC", vec![entry("2026-12-09T10:00", Recurrence::None)]);
        assert_eq!(
            next_session(&once, utc("2026-12-09T10:59:00Z"))
                .unwrap()
                .start,
            utc("2026-12-09T10:00:00Z")
        );
        assert_eq!(next_session(&once, utc("2026-12-09T11:00:00Z")), None);
        let bad = |s: Schedule| validate(&s).unwrap_err();
        assert!(bad(schedule("Mars/Olympus", vec![])).starts_with("timeZone"));
        let weekly = |days: Vec<Weekday>, until, count| Recurrence::Weekly {
            weekdays: days,
            until,
            count,
        };
        // 2026-12-09 is a Wednesday.
        assert!(
            bad(schedule(
                "UTC",
                vec![entry(
                    "2026-12-09T10:00",
                    weekly(vec![Weekday::Mo], None, None)
                )]
            ))
            .contains("first session's day")
        );
        assert!(
            bad(schedule(
                "UTC",
                vec![entry("2026-12-09T10:00", weekly(vec![], None, None))]
            ))
            .contains("weekdays")
        );
        assert!(
            bad(schedule(
                "UTC",
                vec![entry(
                    "2026-12-09T10:00",
                    weekly(vec![Weekday::We], None, Some(521))
                )]
            ))
            .contains("count")
        );
        assert!(
            bad(schedule(
                "UTC",
                vec![entry(
                    "2026-12-09T10:00",
                    weekly(
                        vec![Weekday::We],
                        NaiveDate::from_ymd_opt(2026, 12, 1),
                        None
                    )
                )]
            ))
            .contains("until")
        );
        assert!(
            bad(schedule(
                "UTC",
                vec![entry("2026-12-09T10:00", Recurrence::None); 9]
            ))
            .contains("at most")
        );
        // 02:30 on 29 March 2026 does not exist in Berlin.
        assert!(
            bad(schedule(
                "Europe/Berlin",
                vec![entry("2026-03-29T02:30", Recurrence::None)]
            ))
            .contains("does not exist")
        );
    }
}
