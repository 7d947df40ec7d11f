//! Standard five-field cron schedules (`minute hour day-of-month month day-of-week`), with
//! `*`, ranges, steps, lists, `@hourly`-style macros and `TZ=`-free UTC evaluation.

/// A parsed schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    days_restricted: bool,
    weekdays_restricted: bool,
}

fn field(text: &str, min: u32, max: u32) -> Result<(Vec<bool>, bool), String> {
    let mut set = vec![false; max as usize + 1];
    let restricted = text != "*" && text != "?";
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| format!("invalid step in {part:?}"))?),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("step 0 in {part:?}"));
        }
        let (lo, hi) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                a.parse().map_err(|_| format!("invalid value in {part:?}"))?,
                b.parse().map_err(|_| format!("invalid value in {part:?}"))?,
            )
        } else {
            let v: u32 = range.parse().map_err(|_| format!("invalid value {range:?}"))?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("{part:?} is outside {min}-{max}"));
        }
        let mut v = lo;
        while v <= hi {
            set[v as usize] = true;
            v += step;
        }
    }
    Ok((set, restricted))
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let expanded = match text.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [m, h, dom, mon, dow] = fields.as_slice() else {
            return Err(format!("expected 5 fields in {text:?}"));
        };
        let (minutes, _) = field(m, 0, 59)?;
        let (hours, _) = field(h, 0, 23)?;
        let (days, days_restricted) = field(dom, 1, 31)?;
        let (months, _) = field(mon, 1, 12)?;
        let (mut weekdays, weekdays_restricted) = field(dow, 0, 7)?;
        if weekdays[7] {
            weekdays[0] = true;
        }
        Ok(Schedule {
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_restricted,
            weekdays_restricted,
        })
    }

    /// Whether the minute starting at `unix_minute * 60` (UTC) is scheduled.
    pub fn matches(&self, unix_seconds: i64) -> bool {
        let days_since_epoch = unix_seconds.div_euclid(86_400);
        let secs = unix_seconds.rem_euclid(86_400);
        let (minute, hour) = ((secs / 60) % 60, secs / 3600);
        let (_, month, day) = civil(days_since_epoch);
        let weekday = (days_since_epoch + 4).rem_euclid(7); // 1970-01-01 was a Thursday
        let day_ok = match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => self.days[day as usize] || self.weekdays[weekday as usize],
            (true, false) => self.days[day as usize],
            (false, true) => self.weekdays[weekday as usize],
            (false, false) => true,
        };
        self.minutes[minute as usize]
            && self.hours[hour as usize]
            && self.months[month as usize]
            && day_ok
    }
}

fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-25T10:30:00Z is a Wednesday.
    const WED_1030: i64 = 1_795_602_600;

    #[test]
    fn schedules() {
        let cases = [
            ("* * * * *", WED_1030, true),
            ("*/15 * * * *", WED_1030, true),
            ("*/7 * * * *", WED_1030, false),
            ("30 10 * * *", WED_1030, true),
            ("30 11 * * *", WED_1030, false),
            ("30 10 25 11 *", WED_1030, true),
            ("30 10 * * 3", WED_1030, true),
            ("30 10 * * 1-2,4", WED_1030, false),
            ("30 10 1 * 3", WED_1030, true),
            ("@hourly", WED_1030, false),
            ("@daily", WED_1030 - 37_800, true),
            ("0,30 9-17 * * 1-5", WED_1030, true),
        ];
        for (text, at, want) in cases {
            assert_eq!(Schedule::parse(text).unwrap().matches(at), want, "{text}");
        }
        for bad in ["* * * *", "60 * * * *", "*/0 * * * *", "a * * * *", "5-1 * * * *"] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }
}
