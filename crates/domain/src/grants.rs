//! Periodic grants (a monthly coupon pack): which calendar months a member receives one
//! for, and at what instant, from the spans in which they held the benefit. The answer
//! depends only on the spans and the window, never on when the clock's job happened to
//! run, so a server that stopped, or a clock that jumped over several months, grants
//! exactly what one that ran every second would. A holding learnt late (an upgrade by an
//! event that occurred before the job's last run) still gets its month's grant, at the
//! instant the member began to hold it, when that month is still the current one: every
//! month the window touches is answered, and the store's unique key on (member, benefit,
//! month) gives each one once. A holding learnt after its month's last run is not granted
//! for that month.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// One grant due: the month (`YYYY-MM` in the programme's zone) and the instant it is
/// issued at (the first instant of the month in the window at which the benefit was held).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub period: String,
    pub at: Timestamp,
}

/// The grants due by `to` for the months the window `(after, to]` touches, for a holder
/// over `spans` (`[start, end)`): one for every such month with an instant of holding at
/// or before `to`, at its first instant of holding (which may lie before the window, when
/// the holding was learnt late). A month is answered by every window that touches it, at
/// the same instant: the caller keeps one grant per month.
pub fn monthly_grants(
    spans: &[(Timestamp, Timestamp)],
    after: Timestamp,
    to: Timestamp,
    tz: &TimeZone,
) -> Vec<Grant> {
    let mut out = Vec::new();
    if to <= after {
        return out;
    }
    // The window's first instant, and its end (exclusive).
    let first = after.checked_add(1.microsecond()).unwrap_or(after);
    let window_end = to.checked_add(1.microsecond()).unwrap_or(to);
    // Months are stepped as calendar dates, each start found in the zone on its own: a
    // month that begins in a daylight-saving gap starts at its first real instant without
    // shifting the months after it.
    let Ok(mut month) = first
        .to_zoned(tz.clone())
        .date()
        .first_of_month()
        .to_zoned(tz.clone())
    else {
        return out;
    };
    loop {
        let Ok(next) = month
            .date()
            .checked_add(1.month())
            .and_then(|d| d.to_zoned(tz.clone()))
        else {
            break;
        };
        if month.timestamp() >= window_end {
            break;
        }
        let (month_start, month_end) = (month.timestamp(), next.timestamp());
        let held_at = spans
            .iter()
            .filter_map(|&(start, end)| {
                let at = month_start.max(start);
                (at < end.min(month_end)).then_some(at)
            })
            .min();
        // Every month stepped through touches the window (the first is `first`'s): it is
        // answered when it was held by the window's end.
        if let Some(at) = held_at.filter(|at| *at < window_end) {
            out.push(Grant {
                period: month.strftime("%Y-%m").to_string(),
                at,
            });
        }
        month = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn check(spans: &[(&str, &str)], after: &str, to: &str, expected: &[(&str, &str)]) {
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        let spans: Vec<_> = spans.iter().map(|(a, b)| (t(a), t(b))).collect();
        let got = monthly_grants(&spans, t(after), t(to), &tz);
        let want: Vec<Grant> = expected
            .iter()
            .map(|(p, at)| Grant {
                period: (*p).to_owned(),
                at: t(at),
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn grants_follow_the_spans_not_the_job_runs() {
        // Held from 10 March (Shanghai), the window from 1 March to 5 May: March at the
        // start of the span, April and May at their first instant.
        check(
            &[("2026-03-10T02:00:00Z", "2027-03-10T02:00:00Z")],
            "2026-02-28T16:00:00Z",
            "2026-05-05T00:00:00Z",
            &[
                ("2026-03", "2026-03-10T02:00:00Z"),
                ("2026-04", "2026-03-31T16:00:00Z"),
                ("2026-05", "2026-04-30T16:00:00Z"),
            ],
        );
        // The same window cut in two runs gives the same grants, once each month is kept
        // once (the month the cut falls in is answered by both, at the same instant).
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        let spans = [(t("2026-03-10T02:00:00Z"), t("2027-03-10T02:00:00Z"))];
        let mut two = monthly_grants(
            &spans,
            t("2026-02-28T16:00:00Z"),
            t("2026-04-12T00:00:00Z"),
            &tz,
        );
        two.extend(monthly_grants(
            &spans,
            t("2026-04-12T00:00:00Z"),
            t("2026-05-05T00:00:00Z"),
            &tz,
        ));
        assert_eq!(two.len(), 4);
        assert_eq!(two[1], two[2], "April, from both runs");
        two.dedup();
        assert_eq!(
            two,
            monthly_grants(
                &spans,
                t("2026-02-28T16:00:00Z"),
                t("2026-05-05T00:00:00Z"),
                &tz
            )
        );
    }

    #[test]
    fn a_month_that_starts_in_a_daylight_saving_gap_shifts_no_other() {
        // Asunción moved its clocks from 00:00 to 01:00 on 1 October 2023: October starts
        // at 01:00 local (04:00 UTC), November still at midnight (03:00 UTC).
        let tz = TimeZone::get("America/Asuncion").unwrap();
        let spans = [(t("2023-09-15T00:00:00Z"), t("2024-01-01T00:00:00Z"))];
        let got = monthly_grants(
            &spans,
            t("2023-09-01T00:00:00Z"),
            t("2023-11-10T00:00:00Z"),
            &tz,
        );
        let at: Vec<(String, Timestamp)> = got.into_iter().map(|g| (g.period, g.at)).collect();
        assert_eq!(
            at,
            [
                ("2023-09".to_owned(), t("2023-09-15T00:00:00Z")),
                ("2023-10".to_owned(), t("2023-10-01T04:00:00Z")),
                ("2023-11".to_owned(), t("2023-11-01T03:00:00Z")),
            ]
        );
    }

    #[test]
    fn months_without_access_get_nothing() {
        // Held in January and again from mid-March: February gets nothing.
        check(
            &[
                ("2026-01-05T00:00:00Z", "2026-01-20T00:00:00Z"),
                ("2026-03-15T00:00:00Z", "2026-04-15T00:00:00Z"),
            ],
            "2025-12-31T16:00:00Z",
            "2026-06-01T00:00:00Z",
            &[
                ("2026-01", "2026-01-05T00:00:00Z"),
                ("2026-03", "2026-03-15T00:00:00Z"),
                ("2026-04", "2026-03-31T16:00:00Z"),
            ],
        );
        // A span that ends before the window: its month is still answered (given once by
        // the caller), no later one; a span before the window's first month: nothing.
        check(
            &[("2026-01-05T00:00:00Z", "2026-01-20T00:00:00Z")],
            "2026-01-20T00:00:00Z",
            "2026-03-01T00:00:00Z",
            &[("2026-01", "2026-01-05T00:00:00Z")],
        );
        check(
            &[("2026-01-05T00:00:00Z", "2026-01-20T00:00:00Z")],
            "2026-02-20T00:00:00Z",
            "2026-03-01T00:00:00Z",
            &[],
        );
        // A holding learnt late: the upgrade occurred before the job's last run, and is
        // granted by the next at the instant it began.
        check(
            &[("2026-03-10T02:00:00Z", "2027-03-10T02:00:00Z")],
            "2026-03-10T05:00:00Z",
            "2026-03-10T06:00:00Z",
            &[("2026-03", "2026-03-10T02:00:00Z")],
        );
        check(
            &[("2026-03-05T00:00:00Z", "2026-04-20T00:00:00Z")],
            "2026-01-01T00:00:00Z",
            "2026-03-04T23:59:59Z",
            &[],
        );
        // An empty window.
        check(
            &[("2026-03-05T00:00:00Z", "2026-04-20T00:00:00Z")],
            "2026-03-06T00:00:00Z",
            "2026-03-06T00:00:00Z",
            &[],
        );
    }
}
