//! Working-hours intervals: weekly slots and dated slots, minus exception dates, evaluated in
//! the account's time zone (IANA names, DST handled by chrono-tz).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};

use super::PlanError;

/// An IANA time zone name, checked when parsed ("Europe/Rome", "America/Sao_Paulo", "UTC").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZoneName(String);

impl TimeZoneName {
    /// Parses an IANA zone name.
    pub fn parse(s: &str) -> Result<Self, PlanError> {
        s.parse::<chrono_tz::Tz>()
            .map(|_| Self(s.to_owned()))
            .map_err(|_| PlanError::UnknownTimeZone(s.to_owned()))
    }

    /// The zone.
    pub fn tz(&self) -> chrono_tz::Tz {
        // Parsed on construction, so this cannot fail; UTC is a harmless fallback.
        self.0.parse().unwrap_or(chrono_tz::UTC)
    }
}

impl Default for TimeZoneName {
    fn default() -> Self {
        Self("UTC".to_owned())
    }
}

impl TryFrom<String> for TimeZoneName {
    type Error = PlanError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<TimeZoneName> for String {
    fn from(v: TimeZoneName) -> Self {
        v.0
    }
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Day {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

/// Every week on `days`, from `from` (inclusive) to `to` (exclusive), local time. `to` of
/// `00:00` means the end of the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklySlot {
    /// The days.
    pub days: BTreeSet<Day>,
    /// Start, local time.
    pub from: NaiveTime,
    /// End (exclusive), local time.
    pub to: NaiveTime,
}

/// Dates `from..=to` (local), all day or between `from_time` and `to_time` on each of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateSlot {
    /// First date.
    pub from: NaiveDate,
    /// Last date (inclusive).
    pub to: NaiveDate,
    /// Start time on each date; all day when both times are absent.
    #[serde(default)]
    pub from_time: Option<NaiveTime>,
    /// End time (exclusive) on each date.
    #[serde(default)]
    pub to_time: Option<NaiveTime>,
}

/// A working-hours interval: an instant is inside if its local date is not an exception and
/// it falls in any weekly or dated slot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    /// Weekly slots.
    #[serde(default)]
    pub weekly: Vec<WeeklySlot>,
    /// Dated slots (special opening days).
    #[serde(default)]
    pub dates: Vec<DateSlot>,
    /// Dates when the interval is closed whatever the slots say (holidays).
    #[serde(default)]
    pub except: Vec<NaiveDate>,
}

impl Interval {
    /// Whether `at` is inside the interval, in `tz`.
    pub fn contains(&self, at: DateTime<Utc>, tz: &TimeZoneName) -> bool {
        // Slots are local wall-clock times, so DST shifts move them with the clock.
        let local = at.with_timezone(&tz.tz());
        let (date, time) = (local.date_naive(), local.time());
        if self.except.contains(&date) {
            return false;
        }
        let day = Day::from(date.weekday());
        self.weekly.iter().any(|w| w.days.contains(&day) && within(time, w.from, w.to))
            || self.dates.iter().any(|d| {
                (d.from..=d.to).contains(&date)
                    && within(
                        time,
                        d.from_time.unwrap_or(NaiveTime::MIN),
                        d.to_time.unwrap_or(NaiveTime::MIN),
                    )
            })
    }

    /// Checks the slots are well formed (start before end, dates in order, some slot).
    ///
    /// The error names step 0: the interval does not know its step, so the plan's validation
    /// puts the right one in.
    pub fn validate(&self) -> Result<(), PlanError> {
        let invalid = |reason: &str| Err(PlanError::InvalidInterval { step: 0, reason: reason.to_owned() });
        if self.weekly.is_empty() && self.dates.is_empty() {
            return invalid("an interval needs at least one weekly or dated slot");
        }
        for w in &self.weekly {
            if w.days.is_empty() {
                return invalid("a weekly slot needs at least one day");
            }
            if !ordered(w.from, w.to) {
                return invalid("a weekly slot must start before it ends");
            }
        }
        for d in &self.dates {
            if d.from > d.to {
                return invalid("a dated slot's first date must not be after its last");
            }
            match (d.from_time, d.to_time) {
                (None, None) => {}
                (Some(from), Some(to)) if ordered(from, to) => {}
                (Some(_), Some(_)) => return invalid("a dated slot must start before it ends"),
                _ => return invalid("a dated slot gives both times or neither"),
            }
        }
        Ok(())
    }
}

/// `00:00` as an end means the end of the day.
fn is_end_of_day(to: NaiveTime) -> bool {
    to == NaiveTime::MIN
}

/// Whether a slot from `from` to `to` is non-empty.
fn ordered(from: NaiveTime, to: NaiveTime) -> bool {
    is_end_of_day(to) || from < to
}

/// Whether `time` is in `[from, to)`, `to` of `00:00` meaning the end of the day.
fn within(time: NaiveTime, from: NaiveTime, to: NaiveTime) -> bool {
    time >= from && (is_end_of_day(to) || time < to)
}

impl From<Weekday> for Day {
    fn from(d: Weekday) -> Self {
        match d {
            Weekday::Mon => Self::Mon,
            Weekday::Tue => Self::Tue,
            Weekday::Wed => Self::Wed,
            Weekday::Thu => Self::Thu,
            Weekday::Fri => Self::Fri,
            Weekday::Sat => Self::Sat,
            Weekday::Sun => Self::Sun,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn time(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("valid time")
    }

    fn date(y: i32, mo: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, mo, d).expect("valid date")
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, m, 0).single().expect("valid instant")
    }

    fn zone(name: &str) -> TimeZoneName {
        TimeZoneName::parse(name).expect("known zone")
    }

    fn weekly(days: &[Day], from: NaiveTime, to: NaiveTime) -> Interval {
        Interval {
            weekly: vec![WeeklySlot { days: days.iter().copied().collect(), from, to }],
            ..Interval::default()
        }
    }

    const WEEKDAYS: [Day; 5] = [Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri];

    #[test]
    fn a_weekly_slot_contains_its_start_but_not_its_end() {
        let office = weekly(&WEEKDAYS, time(9, 0), time(18, 0));
        let utc_zone = TimeZoneName::default();
        // 2026-01-05 is a Monday.
        assert!(office.contains(utc(2026, 1, 5, 9, 0), &utc_zone));
        assert!(office.contains(utc(2026, 1, 5, 17, 59), &utc_zone));
        assert!(!office.contains(utc(2026, 1, 5, 18, 0), &utc_zone));
        assert!(!office.contains(utc(2026, 1, 5, 8, 59), &utc_zone));
        assert!(!office.contains(utc(2026, 1, 10, 10, 0), &utc_zone), "Saturday");
    }

    #[test]
    fn slots_are_local_time_and_follow_daylight_saving() {
        let office = weekly(&WEEKDAYS, time(9, 0), time(18, 0));
        let rome = zone("Europe/Rome");
        // Winter (CET, UTC+1): 16:30 UTC is 17:30 in Rome, inside; 17:30 UTC is 18:30, outside.
        assert!(office.contains(utc(2026, 1, 5, 16, 30), &rome));
        assert!(!office.contains(utc(2026, 1, 5, 17, 30), &rome));
        assert!(!office.contains(utc(2026, 1, 5, 7, 30), &rome));
        // Summer (CEST, UTC+2): the same 16:30 UTC is 18:30 in Rome, outside; 7:30 UTC is 9:30.
        assert!(!office.contains(utc(2026, 6, 1, 16, 30), &rome));
        assert!(office.contains(utc(2026, 6, 1, 7, 30), &rome));
        // Around the switch (Sunday 2026-03-29): 16:30 UTC is 17:30 CET on the Friday before,
        // inside, but 18:30 CEST on the Monday after, outside; 07:00 UTC opens that Monday.
        assert!(office.contains(utc(2026, 3, 27, 16, 30), &rome));
        assert!(!office.contains(utc(2026, 3, 30, 16, 30), &rome));
        assert!(office.contains(utc(2026, 3, 30, 7, 0), &rome));
        assert!(!office.contains(utc(2026, 3, 27, 7, 0), &rome));
    }

    #[test]
    fn a_zone_west_of_utc_shifts_the_day() {
        let office = weekly(&WEEKDAYS, time(9, 0), time(18, 0));
        let sao_paulo = zone("America/Sao_Paulo");
        // UTC-3: 11:00 UTC is 08:00 local, 12:30 UTC is 09:30.
        assert!(!office.contains(utc(2026, 1, 5, 11, 0), &sao_paulo));
        assert!(office.contains(utc(2026, 1, 5, 12, 30), &sao_paulo));
        // Saturday 01:00 UTC is still Friday 22:00 local: outside the hours but on a weekday.
        let late = weekly(&[Day::Fri], time(20, 0), time(0, 0));
        assert!(late.contains(utc(2026, 1, 10, 1, 0), &sao_paulo));
        assert!(!late.contains(utc(2026, 1, 10, 1, 0), &TimeZoneName::default()));
    }

    #[test]
    fn a_local_date_east_of_utc_is_the_next_day() {
        // 2026-01-05 23:30 UTC is Tuesday 00:30 in Rome.
        let tuesday_night = weekly(&[Day::Tue], time(0, 0), time(1, 0));
        assert!(tuesday_night.contains(utc(2026, 1, 5, 23, 30), &zone("Europe/Rome")));
        assert!(!tuesday_night.contains(utc(2026, 1, 5, 23, 30), &TimeZoneName::default()));
    }

    #[test]
    fn an_end_of_midnight_means_the_end_of_the_day() {
        let evening = weekly(&[Day::Mon], time(18, 0), time(0, 0));
        let utc_zone = TimeZoneName::default();
        assert!(evening.contains(utc(2026, 1, 5, 23, 59), &utc_zone));
        assert!(evening.contains(utc(2026, 1, 5, 18, 0), &utc_zone));
        assert!(!evening.contains(utc(2026, 1, 6, 0, 0), &utc_zone), "Tuesday 00:00 is past the end");
        let all_day = weekly(&[Day::Mon], time(0, 0), time(0, 0));
        assert!(all_day.contains(utc(2026, 1, 5, 0, 0), &utc_zone));
        assert!(all_day.contains(utc(2026, 1, 5, 23, 59), &utc_zone));
        assert!(all_day.validate().is_ok());
    }

    #[test]
    fn dated_slots_open_whole_days_or_hours_on_each_date() {
        let utc_zone = TimeZoneName::default();
        let christmas_eve = Interval {
            dates: vec![DateSlot {
                from: date(2026, 12, 24),
                to: date(2026, 12, 24),
                from_time: Some(time(9, 0)),
                to_time: Some(time(13, 0)),
            }],
            ..Interval::default()
        };
        assert!(christmas_eve.contains(utc(2026, 12, 24, 12, 59), &utc_zone));
        assert!(!christmas_eve.contains(utc(2026, 12, 24, 13, 0), &utc_zone));
        assert!(!christmas_eve.contains(utc(2026, 12, 23, 10, 0), &utc_zone));
        let summer_sale = Interval {
            dates: vec![DateSlot {
                from: date(2026, 7, 1),
                to: date(2026, 7, 3),
                from_time: None,
                to_time: None,
            }],
            ..Interval::default()
        };
        assert!(summer_sale.contains(utc(2026, 7, 1, 0, 0), &utc_zone));
        assert!(summer_sale.contains(utc(2026, 7, 3, 23, 59), &utc_zone));
        assert!(!summer_sale.contains(utc(2026, 7, 4, 0, 0), &utc_zone));
    }

    #[test]
    fn an_exception_date_closes_whatever_the_slots_say() {
        let mut office = weekly(&WEEKDAYS, time(9, 0), time(18, 0));
        office.except = vec![date(2026, 1, 6)];
        let rome = zone("Europe/Rome");
        assert!(!office.contains(utc(2026, 1, 6, 10, 0), &rome));
        assert!(office.contains(utc(2026, 1, 7, 10, 0), &rome));
        // The exception is a local date: 23:30 UTC on the 5th is already the 6th in Rome.
        let mut evening = weekly(&WEEKDAYS, time(0, 0), time(0, 0));
        evening.except = vec![date(2026, 1, 6)];
        assert!(!evening.contains(utc(2026, 1, 5, 23, 30), &rome));
        assert!(evening.contains(utc(2026, 1, 5, 22, 30), &rome));
    }

    fn reason(interval: &Interval) -> String {
        match interval.validate() {
            Err(PlanError::InvalidInterval { reason, .. }) => reason,
            other => panic!("expected an invalid interval, got {other:?}"),
        }
    }

    #[test]
    fn malformed_intervals_are_refused() {
        assert!(reason(&Interval::default()).contains("at least one"));
        let only_exceptions = Interval { except: vec![date(2026, 1, 1)], ..Interval::default() };
        assert!(reason(&only_exceptions).contains("at least one"));
        assert!(reason(&weekly(&[], time(9, 0), time(18, 0))).contains("day"));
        assert!(reason(&weekly(&[Day::Mon], time(18, 0), time(9, 0))).contains("start before"));
        assert!(reason(&weekly(&[Day::Mon], time(9, 0), time(9, 0))).contains("start before"));
        let slot = |from, to, from_time, to_time| Interval {
            dates: vec![DateSlot { from, to, from_time, to_time }],
            ..Interval::default()
        };
        assert!(reason(&slot(date(2026, 1, 2), date(2026, 1, 1), None, None)).contains("first date"));
        assert!(reason(&slot(date(2026, 1, 1), date(2026, 1, 1), Some(time(9, 0)), None)).contains("both"));
        assert!(
            reason(&slot(date(2026, 1, 1), date(2026, 1, 1), Some(time(13, 0)), Some(time(9, 0))))
                .contains("start before")
        );
        assert!(
            slot(date(2026, 1, 1), date(2026, 1, 1), Some(time(13, 0)), Some(time(0, 0))).validate().is_ok()
        );
        assert!(weekly(&WEEKDAYS, time(9, 0), time(18, 0)).validate().is_ok());
    }

    #[test]
    fn time_zones_must_be_known() {
        assert!(TimeZoneName::parse("Europe/Rome").is_ok());
        assert_eq!(
            TimeZoneName::parse("Mars/Olympus"),
            Err(PlanError::UnknownTimeZone("Mars/Olympus".into()))
        );
        assert!(serde_json::from_str::<TimeZoneName>("\"Nowhere\"").is_err());
    }
}
