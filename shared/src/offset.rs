//! Signed ISO 8601 durations: `-P30D`, `PT0S`, `PT2H`, `-PT90M`, `-P1M`, `P1Y`.
//! Years and months are calendar arithmetic in UTC (`-P1M` from March 31 is
//! the last day of February); weeks, days and smaller units are exact.

use crate::time::{in_rfc3339_range, Time};
use chrono::{Duration, Months};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Ten years either way, counting a year as 365.2425 days.
const MAX_SECONDS: f64 = 10.0 * 365.2425 * 86_400.0;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offset {
    text: String,
    negative: bool,
    months: u32,
    exact: Duration,
}

impl Offset {
    pub fn zero() -> Self {
        Self::parse("PT0S").expect("PT0S parses")
    }

    /// Parses and range-checks an offset. The error says what is wrong.
    pub fn parse(input: &str) -> Result<Self, String> {
        let text = input.trim();
        let bad =
            || format!("`{input}` is not a signed ISO 8601 duration such as -P30D, PT2H or -PT90M");
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let rest = rest.strip_prefix('P').ok_or_else(bad)?;
        let (date, time) = match rest.split_once('T') {
            Some((_, "")) => return Err(bad()),
            Some((date, time)) => (date, Some(time)),
            None => (rest, None),
        };
        let date_parts = components(date, &['Y', 'M', 'W', 'D']).ok_or_else(bad)?;
        let time_parts = match time {
            Some(time) => components(time, &['H', 'M', 'S']).ok_or_else(bad)?,
            None => Vec::new(),
        };
        if date_parts.is_empty() && time_parts.is_empty() {
            return Err(bad());
        }
        let mut months: u64 = 0;
        let mut seconds: u64 = 0;
        for (value, unit) in date_parts {
            match unit {
                'Y' => months += value * 12,
                'M' => months += value,
                'W' => seconds += value * 7 * 86_400,
                _ => seconds += value * 86_400,
            }
        }
        for (value, unit) in time_parts {
            seconds += value
                * match unit {
                    'H' => 3_600,
                    'M' => 60,
                    _ => 1,
                };
        }
        let nominal = months as f64 * 30.436875 * 86_400.0 + seconds as f64;
        if nominal > MAX_SECONDS {
            return Err(format!(
                "`{input}` is beyond the limit of 10 years either way"
            ));
        }
        Ok(Self {
            text: text.to_string(),
            negative: negative && (months > 0 || seconds > 0),
            months: months as u32,
            exact: Duration::seconds(seconds as i64),
        })
    }

    /// The moment shifted by this offset, or None if it leaves the years
    /// RFC 3339 can write (0000 to 9999).
    pub fn apply(&self, moment: Time) -> Option<Time> {
        let months = Months::new(self.months);
        let shifted = if self.negative {
            moment
                .checked_sub_months(months)?
                .checked_sub_signed(self.exact)
        } else {
            moment
                .checked_add_months(months)?
                .checked_add_signed(self.exact)
        };
        shifted.filter(|t| in_rfc3339_range(*t))
    }

    pub fn is_zero(&self) -> bool {
        self.months == 0 && self.exact.is_zero()
    }

    pub fn is_negative(&self) -> bool {
        self.negative
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Splits `30D` / `1Y2M` into (value, unit) pairs, units in the given order,
/// each at most once. None if anything else is there.
fn components(text: &str, units: &[char]) -> Option<Vec<(u64, char)>> {
    let mut parts = Vec::new();
    let mut digits = String::new();
    let mut next_unit = 0;
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let position = units[next_unit..].iter().position(|u| *u == c)? + next_unit;
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        parts.push((digits.parse().ok()?, c));
        digits.clear();
        next_unit = position + 1;
    }
    digits.is_empty().then_some(parts)
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Offset {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Offset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Offset::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_time;

    fn at(text: &str) -> Time {
        parse_time(text).unwrap()
    }

    fn shifted(offset: &str, from: &str) -> String {
        crate::time::format_time(Offset::parse(offset).unwrap().apply(at(from)).unwrap())
    }

    #[test]
    fn the_contract_examples_parse_and_apply() {
        let t = "2026-12-31T00:00:00Z";
        assert_eq!(shifted("-P30D", t), "2026-12-01T00:00:00Z");
        assert_eq!(shifted("PT0S", t), t);
        assert_eq!(shifted("PT2H", t), "2026-12-31T02:00:00Z");
        assert_eq!(shifted("-PT90M", t), "2026-12-30T22:30:00Z");
        assert_eq!(shifted("P1Y", t), "2027-12-31T00:00:00Z");
        assert_eq!(shifted("-P3DT12H", t), "2026-12-27T12:00:00Z");
        assert_eq!(shifted("P2W", t), "2027-01-14T00:00:00Z");
        assert_eq!(shifted("+PT1S", t), "2026-12-31T00:00:01Z");
    }

    #[test]
    fn months_are_calendar_months() {
        assert_eq!(
            shifted("-P1M", "2026-03-31T10:00:00Z"),
            "2026-02-28T10:00:00Z"
        );
        assert_eq!(
            shifted("-P1M", "2028-03-31T10:00:00Z"),
            "2028-02-29T10:00:00Z"
        );
        assert_eq!(
            shifted("P1M", "2026-01-31T00:00:00Z"),
            "2026-02-28T00:00:00Z"
        );
        assert_eq!(
            shifted("-P1Y", "2028-02-29T00:00:00Z"),
            "2027-02-28T00:00:00Z"
        );
        assert_eq!(
            shifted("-P1M1D", "2026-03-31T00:00:00Z"),
            "2026-02-27T00:00:00Z"
        );
    }

    #[test]
    fn shifts_stay_within_rfc3339_years() {
        let late = at("9999-12-01T00:00:00Z");
        assert_eq!(Offset::parse("P1M").unwrap().apply(late), None);
        assert!(Offset::parse("-P1M").unwrap().apply(late).is_some());
        let early = at("0000-01-15T00:00:00Z");
        assert_eq!(Offset::parse("-P1M").unwrap().apply(early), None);
    }

    #[test]
    fn signs_and_zero() {
        assert!(Offset::parse("-P30D").unwrap().is_negative());
        assert!(!Offset::parse("P30D").unwrap().is_negative());
        assert!(Offset::parse("-PT0S").unwrap().is_zero());
        assert!(!Offset::parse("-PT0S").unwrap().is_negative());
        assert!(Offset::zero().is_zero());
    }

    #[test]
    fn ten_years_is_the_limit() {
        assert!(Offset::parse("P10Y").is_ok());
        assert!(Offset::parse("-P120M").is_ok());
        assert!(Offset::parse("-P3652D").is_ok());
        let err = Offset::parse("P10Y1D").unwrap_err();
        assert!(err.contains("10 years"), "{err}");
        assert!(Offset::parse("-P11Y").is_err());
        assert!(Offset::parse("PT999999999H").is_err());
    }

    #[test]
    fn malformed_offsets_are_refused() {
        for bad in [
            "",
            "P",
            "PT",
            "-P",
            "30D",
            "P30",
            "P30X",
            "-P1.5D",
            "P1D2Y",
            "PT1H1H",
            "P1DT",
            "--P1D",
            "p1d",
            "PT1D",
            "P1H",
            "P 1D",
            "P1234567890D",
        ] {
            assert!(Offset::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn keeps_the_text_it_was_given() {
        assert_eq!(Offset::parse("-PT90M").unwrap().as_str(), "-PT90M");
        let json = serde_json::to_string(&Offset::parse("P1Y").unwrap()).unwrap();
        assert_eq!(json, "\"P1Y\"");
    }
}
