//! The programme: one declarative TOML file per deployment. Parsing it is all-or-nothing:
//! either every section is valid and every expression compiles, or the file is refused
//! with each problem's line, column, field path and reason.
//!
//! The file grows by sections: later capabilities (points, score, tiers, plans, benefits,
//! coupons, stored value, referral) each add a top-level table to `ProgrammeFile` and a
//! check in `Programme::from_file`; unknown keys are refused, so a typo never passes.

use crate::ids::ActivityName;
use crate::limits::PROGRAMME_BYTES_MAX;
use crate::money::Currency;
use crate::rule::Condition;
use serde::Deserialize;
use std::collections::BTreeSet;
use toml::Spanned;

/// Variables a segment condition may use.
pub const SEGMENT_VARIABLES: &[&str] = &["member"];
/// Variables an activity condition may use.
pub const ACTIVITY_VARIABLES: &[&str] = &["member", "event"];
/// Activity kinds every programme accepts without declaring them.
pub const BUILT_IN_ACTIVITIES: &[&str] = &["review", "check_in", "share"];

/// One problem in a programme file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgrammeIssue {
    /// 1-based line of the problem (0 when the file as a whole is at fault).
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// Dotted path of the field, e.g. `segments[1].condition`.
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for ProgrammeIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}: {}",
            self.line, self.column, self.field, self.reason
        )
    }
}

/// A parsed, checked programme: currency, time zone, and the sections.
#[derive(Debug, Clone)]
pub struct Programme {
    pub name: String,
    pub currency: Currency,
    pub timezone: jiff::tz::TimeZone,
    pub timezone_name: String,
    pub segments: Vec<Segment>,
    pub activities: Vec<CustomActivity>,
    /// The points ledger's rules; `None` when the programme gives no points.
    pub points: Option<crate::points::PointsConfig>,
    /// The score rules; `None` when the programme keeps no score.
    pub score: Option<crate::tiers::ScoreRules>,
    /// The tiers and how members move between them; `None` without tiers.
    pub tiers: Option<crate::tiers::TierRules>,
    /// The paid plans; empty when the programme has no paid track.
    pub plans: Vec<crate::plans::Plan>,
    /// What members get from their tier or plan: price, service, extended, access.
    pub benefits: Vec<crate::quote::Benefit>,
    /// Coupon templates; instances are issued to members.
    pub coupons: Vec<crate::quote::CouponTemplate>,
    /// Stored value: top-up offers and the spending order; `None` without it.
    pub stored_value: Option<crate::stored_value::StoredValueRules>,
    /// Referral: codes, who may use them, and rewards; `None` without it.
    pub referral: Option<crate::referral::ReferralRules>,
    /// Conversion offers: a plan offered to a segment, in a window.
    pub offers: Vec<crate::offers::ConversionOffer>,
    /// Items this version declares under a new id (`renamed_from`).
    pub renames: Vec<change::Rename>,
}

/// A named set of members, described by a condition over the member.
#[derive(Debug, Clone)]
pub struct Segment {
    pub name: String,
    pub description: Option<String>,
    pub condition: Condition,
}

/// An activity kind beyond the built-in ones, with who may earn from it.
#[derive(Debug, Clone)]
pub struct CustomActivity {
    pub name: ActivityName,
    pub condition: Option<Condition>,
    /// Index into `Programme::segments`: only its members earn from this activity.
    pub segment: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgrammeFile {
    name: Spanned<String>,
    currency: Spanned<String>,
    minor_units: Option<Spanned<u8>>,
    timezone: Spanned<String>,
    #[serde(default)]
    segments: Vec<SegmentFile>,
    #[serde(default)]
    activities: Vec<ActivityFile>,
    points: Option<points_section::PointsFile>,
    score: Option<tiers_section::ScoreFile>,
    #[serde(default)]
    tiers: Vec<tiers_section::TierFile>,
    tier_rules: Option<Spanned<tiers_section::TierRulesFile>>,
    #[serde(default)]
    plans: Vec<plans_section::PlanFile>,
    #[serde(default)]
    benefits: Vec<benefits_section::BenefitFile>,
    #[serde(default)]
    coupons: Vec<benefits_section::CouponFile>,
    stored_value: Option<benefits_section::StoredValueFile>,
    referral: Option<referral_section::ReferralFile>,
    #[serde(default)]
    offers: Vec<offers_section::OfferFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentFile {
    name: Spanned<String>,
    description: Option<String>,
    condition: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivityFile {
    name: Spanned<String>,
    condition: Option<Spanned<String>>,
    segment: Option<Spanned<String>>,
}

impl Programme {
    /// Parses and checks a programme file.
    pub fn parse(source: &str) -> Result<Programme, Vec<ProgrammeIssue>> {
        Self::parse_with(source, true)
    }

    /// Parses a version saved before conditions were type-checked: the same checks, but
    /// a condition is refused only for an unknown variable. A new file is always `parse`d.
    pub fn parse_stored(source: &str) -> Result<Programme, Vec<ProgrammeIssue>> {
        Self::parse_with(source, false)
    }

    fn parse_with(source: &str, type_check: bool) -> Result<Programme, Vec<ProgrammeIssue>> {
        if source.len() > PROGRAMME_BYTES_MAX {
            return Err(vec![ProgrammeIssue {
                line: 0,
                column: 0,
                field: String::new(),
                reason: format!("the file is larger than {PROGRAMME_BYTES_MAX} bytes"),
            }]);
        }
        // A key the file should not have, or a value of the wrong type, stops serde at
        // the first: each is reported, its line is set aside (commented out, so every
        // other line keeps its number), and the file read again, so that every such
        // problem is reported, and then every problem of the sections. Reading stops
        // where setting a line aside would itself cause a problem (a required key, a
        // value over several lines): a cascade is never reported.
        let mut working = source.to_owned();
        let mut set_aside: Vec<ProgrammeIssue> = Vec::new();
        let mut keys_set_aside: Vec<String> = Vec::new();
        let file = loop {
            match parse_file(&working) {
                Ok(file) => break Some(file),
                Err((issue, syntax)) => {
                    // A syntax error, or a missing key, after a line was set aside may be
                    // the setting aside's doing: not reported, and reading stops.
                    let caused = !set_aside.is_empty()
                        && (syntax
                            || keys_set_aside.iter().any(|k| {
                                issue.reason.starts_with(&format!("missing field `{k}`"))
                            }));
                    if caused {
                        break None;
                    }
                    let key = (!syntax && set_aside.len() < SET_ASIDE_MAX)
                        .then(|| set_line_aside(&mut working, issue.line))
                        .flatten();
                    set_aside.push(issue);
                    match key {
                        Some(key) => keys_set_aside.push(key),
                        None => break None,
                    }
                }
            }
        };
        let Some(file) = file else {
            return Err(set_aside);
        };
        let mut issues = Issues {
            source: &working,
            found: set_aside,
            type_check,
        };
        let programme = Programme::from_file(file, &mut issues);
        if issues.found.is_empty() {
            Ok(programme.expect("no issue means every part was built"))
        } else {
            Err(issues.found)
        }
    }

    fn from_file(file: ProgrammeFile, issues: &mut Issues) -> Option<Programme> {
        let name = file.name.get_ref().trim().to_owned();
        if name.is_empty() {
            issues.add(&file.name, "name", "must not be empty");
        }
        let currency = match Currency::parse(
            file.currency.get_ref(),
            file.minor_units.as_ref().map(|d| *d.get_ref()),
        ) {
            Ok(c) => Some(c),
            Err(reason) => {
                match &file.minor_units {
                    Some(d) if *d.get_ref() > 4 => issues.add(d, "minor_units", &reason),
                    _ => issues.add(&file.currency, "currency", &reason),
                }
                None
            }
        };
        let timezone = match jiff::tz::TimeZone::get(file.timezone.get_ref()) {
            Ok(tz) => Some(tz),
            Err(_) => {
                issues.add(
                    &file.timezone,
                    "timezone",
                    &format!(
                        "`{}` is not an IANA time zone name",
                        file.timezone.get_ref()
                    ),
                );
                None
            }
        };

        let mut segments = Vec::new();
        let mut segment_names = BTreeSet::new();
        for (i, seg) in file.segments.iter().enumerate() {
            let field = format!("segments[{i}]");
            let seg_name = seg.name.get_ref();
            if !is_identifier(seg_name) {
                issues.add(
                    &seg.name,
                    &format!("{field}.name"),
                    "must be lower_snake_case: letters, digits and `_`, starting with a letter",
                );
            } else if !segment_names.insert(seg_name.clone()) {
                issues.add(
                    &seg.name,
                    &format!("{field}.name"),
                    &format!("segment `{seg_name}` is declared twice"),
                );
            }
            match Condition::compile_with(
                seg.condition.get_ref(),
                SEGMENT_VARIABLES,
                issues.type_check,
            ) {
                Ok(condition) => segments.push(Segment {
                    name: seg_name.clone(),
                    description: seg.description.clone(),
                    condition,
                }),
                Err(problems) => {
                    issues.add_condition(&seg.condition, &format!("{field}.condition"), &problems)
                }
            }
        }

        let mut activities = Vec::new();
        let mut activity_names = BTreeSet::new();
        for (i, act) in file.activities.iter().enumerate() {
            let field = format!("activities[{i}]");
            let act_name = act.name.get_ref();
            let name = if !is_identifier(act_name) {
                issues.add(
                    &act.name,
                    &format!("{field}.name"),
                    "must be lower_snake_case: letters, digits and `_`, starting with a letter",
                );
                None
            } else if BUILT_IN_ACTIVITIES.contains(&act_name.as_str()) {
                issues.add(
                    &act.name,
                    &format!("{field}.name"),
                    &format!("`{act_name}` is built in and needs no declaration"),
                );
                None
            } else if !activity_names.insert(act_name.clone()) {
                issues.add(
                    &act.name,
                    &format!("{field}.name"),
                    &format!("activity `{act_name}` is declared twice"),
                );
                None
            } else {
                ActivityName::parse(act_name.clone())
                    .map_err(|e| issues.add(&act.name, &format!("{field}.name"), &e.message))
                    .ok()
            };
            let condition = match &act.condition {
                None => Some(None),
                Some(source) => match Condition::compile_with(
                    source.get_ref(),
                    ACTIVITY_VARIABLES,
                    issues.type_check,
                ) {
                    Ok(c) => Some(Some(c)),
                    Err(problems) => {
                        issues.add_condition(source, &format!("{field}.condition"), &problems);
                        None
                    }
                },
            };
            let segment = match &act.segment {
                None => Some(None),
                Some(reference) => {
                    match file
                        .segments
                        .iter()
                        .position(|s| s.name.get_ref() == reference.get_ref())
                    {
                        Some(index) => Some(Some(index)),
                        None => {
                            issues.add(
                                reference,
                                &format!("{field}.segment"),
                                &format!("no segment is named `{}`", reference.get_ref()),
                            );
                            None
                        }
                    }
                }
            };
            if let (Some(name), Some(condition), Some(segment)) = (name, condition, segment) {
                activities.push(CustomActivity {
                    name,
                    condition,
                    segment,
                });
            }
        }

        let points = match &file.points {
            None => Some(None),
            Some(section) => points_section::parse(section, &activity_names, issues).map(Some),
        };

        let score = match &file.score {
            None => Some(None),
            Some(section) => tiers_section::parse_score(section, &activity_names, issues).map(Some),
        };
        let tiers = if file.tiers.is_empty() {
            if let Some(rules) = &file.tier_rules {
                issues.add(rules, "tier_rules", "`[tier_rules]` needs `[[tiers]]`");
            }
            Some(None)
        } else {
            tiers_section::parse_tiers(
                &file.tiers,
                file.tier_rules.as_ref(),
                score.as_ref().and_then(|s| s.as_ref().map(|s| s.window)),
                file.score.is_some(),
                file.points.is_some(),
                issues,
            )
            .map(Some)
        };

        let plans = plans_section::parse_plans(&file.plans, issues);
        let coupons = benefits_section::parse_coupons(&file.coupons, issues);
        let plan_ids: BTreeSet<String> = file.plans.iter().map(|p| p.id().to_owned()).collect();
        // Names as the file declares them, whether or not their own section is valid: a
        // reference to a declared item that has a problem of its own is not a second
        // problem (one mistake, one message).
        let tier_names: BTreeSet<String> = file
            .tiers
            .iter()
            .map(|t| t.name.get_ref().clone())
            .collect();
        let coupon_ids: BTreeSet<String> = file
            .coupons
            .iter()
            .map(|c| c.id.get_ref().clone())
            .collect();
        let benefits = benefits_section::parse_benefits(
            &file.benefits,
            &plan_ids,
            &tier_names,
            &coupon_ids,
            issues,
        );

        let stored_value = match &file.stored_value {
            None => Some(None),
            Some(f) => benefits_section::parse_stored_value(f, issues).map(Some),
        };

        let referral = match &file.referral {
            None => Some(None),
            Some(f) => {
                let declared = referral_section::Declared {
                    plans: &plan_ids,
                    coupons: &coupon_ids,
                    return_window_days: file.points.as_ref().map(|p| p.return_window_days()),
                    stored_value: file.stored_value.is_some(),
                };
                referral_section::parse(f, &declared, issues).map(Some)
            }
        };

        let offers = offers_section::parse(&file.offers, &plan_ids, &coupon_ids, issues);

        let mut renames = Vec::new();
        change::collect_renames(
            change::Section::Plans,
            "plans",
            file.plans
                .iter()
                .map(|x| (x.id.get_ref().as_str(), x.renamed_from.as_ref())),
            issues,
            &mut renames,
        );
        change::collect_renames(
            change::Section::Tiers,
            "tiers",
            file.tiers
                .iter()
                .map(|x| (x.name.get_ref().as_str(), x.renamed_from.as_ref())),
            issues,
            &mut renames,
        );
        change::collect_renames(
            change::Section::Coupons,
            "coupons",
            file.coupons
                .iter()
                .map(|x| (x.id.get_ref().as_str(), x.renamed_from.as_ref())),
            issues,
            &mut renames,
        );
        change::collect_renames(
            change::Section::Benefits,
            "benefits",
            file.benefits
                .iter()
                .map(|x| (x.id.get_ref().as_str(), x.renamed_from.as_ref())),
            issues,
            &mut renames,
        );

        Some(Programme {
            name,
            currency: currency?,
            timezone: timezone?,
            timezone_name: file.timezone.into_inner(),
            segments,
            activities,
            points: points?,
            score: score?,
            tiers: tiers?,
            plans: plans?,
            benefits: benefits?,
            coupons: coupons?,
            stored_value: stored_value?,
            referral: referral?,
            offers: offers?,
            renames,
        })
    }

    /// The plan with this id, if any.
    pub fn plan(&self, id: &str) -> Option<&crate::plans::Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    /// The conversion offer with this id, if any.
    pub fn offer(&self, id: &str) -> Option<&crate::offers::ConversionOffer> {
        self.offers.iter().find(|o| o.id == id)
    }

    pub fn coupon(&self, id: &str) -> Option<&crate::quote::CouponTemplate> {
        self.coupons.iter().find(|c| c.id == id)
    }

    /// The declared custom activity of that name, if any.
    pub fn custom_activity(&self, name: &str) -> Option<&CustomActivity> {
        self.activities.iter().find(|a| a.name.as_str() == name)
    }

    /// Whether an activity of this name can earn for `member` (as conditions see it) on
    /// `event`: a declared activity's members are those of its segment who meet its
    /// condition; a built-in activity earns for everyone. A condition that cannot be
    /// evaluated (a missing attribute) does not hold.
    pub fn activity_earns(
        &self,
        name: &str,
        member: &serde_json::Value,
        event: &serde_json::Value,
    ) -> bool {
        let Some(activity) = self.custom_activity(name) else {
            return true;
        };
        let in_segment = activity.segment.is_none_or(|i| {
            self.segments[i]
                .condition
                .evaluate(&[("member", member)])
                .unwrap_or(false)
        });
        in_segment
            && activity.condition.as_ref().is_none_or(|c| {
                c.evaluate(&[("member", member), ("event", event)])
                    .unwrap_or(false)
            })
    }
}

struct Issues<'s> {
    source: &'s str,
    found: Vec<ProgrammeIssue>,
    /// Whether conditions are type-checked (`Programme::parse`) or not (`parse_stored`).
    type_check: bool,
}

impl Issues<'_> {
    /// An issue of the file as a whole (a missing section), at line 0.
    fn add_at_start(&mut self, field: &str, reason: &str) {
        self.found.push(ProgrammeIssue {
            line: 0,
            column: 0,
            field: field.to_owned(),
            reason: reason.to_owned(),
        });
    }

    fn add<T>(&mut self, at: &Spanned<T>, field: &str, reason: &str) {
        let (line, column) = line_column(self.source, at.span().start);
        self.found.push(ProgrammeIssue {
            line,
            column,
            field: field.to_owned(),
            reason: reason.to_owned(),
        });
    }
}

impl Issues<'_> {
    /// The problems of one condition, each at its place in the file when the TOML string
    /// holds the expression character for character (no escapes), else at the string.
    fn add_condition(
        &mut self,
        at: &Spanned<String>,
        field: &str,
        problems: &[crate::rule::ConditionProblem],
    ) {
        let expression = at.get_ref();
        let raw = &self.source[at.span()];
        // Where the expression starts within the file, if the file spells it verbatim.
        let verbatim_start = ["\"\"\"\n", "'''\n", "\"\"\"", "'''", "\"", "'"]
            .iter()
            .find(|delimiter| raw.starts_with(*delimiter))
            .map(|delimiter| at.span().start + delimiter.len())
            .filter(|start| self.source[*start..].starts_with(expression.as_str()));
        for problem in problems {
            let (line, column, reason) = match (problem.at, verbatim_start) {
                (Some(place), Some(start)) => {
                    let (line0, column0) = line_column(self.source, start);
                    let (line, column) = if place.line == 1 {
                        (line0, column0 + place.column - 1)
                    } else {
                        (line0 + place.line - 1, place.column)
                    };
                    (line, column, problem.reason.clone())
                }
                (Some(place), None) => {
                    let (line, column) = line_column(self.source, at.span().start);
                    let reason = format!(
                        "{} (at line {}, column {} of the expression)",
                        problem.reason, place.line, place.column
                    );
                    (line, column, reason)
                }
                (None, _) => {
                    let (line, column) = line_column(self.source, at.span().start);
                    (line, column, problem.reason.clone())
                }
            };
            self.found.push(ProgrammeIssue {
                line,
                column,
                field: field.to_owned(),
                reason,
            });
        }
    }
}

/// Lines `Programme::parse` sets aside at most before it stops reading on.
const SET_ASIDE_MAX: usize = 50;

/// Comments out `line` (1-based) of `source` when it is one whole `key = value` entry (not
/// a table header, not part of a value over several lines); answers its key if it did.
fn set_line_aside(source: &mut String, line: u32) -> Option<String> {
    let index = usize::try_from(line).ok()?.checked_sub(1)?;
    let mut lines: Vec<&str> = source.split('\n').collect();
    let text = *lines.get(index)?;
    let trimmed = text.trim_start();
    let balanced = |open: char, close: char| {
        trimmed.chars().filter(|c| *c == open).count()
            == trimmed.chars().filter(|c| *c == close).count()
    };
    let one_entry = trimmed.contains('=')
        && !trimmed.starts_with('[')
        && !trimmed.starts_with('#')
        && !trimmed.contains("\"\"\"")
        && !trimmed.contains("'''")
        && balanced('[', ']')
        && balanced('{', '}');
    if !one_entry {
        return None;
    }
    let key = trimmed
        .split('=')
        .next()
        .unwrap_or_default()
        .trim()
        .trim_matches('"')
        .to_owned();
    let commented = format!("#{text}");
    lines[index] = &commented;
    *source = lines.join("\n");
    Some(key)
}

fn parse_file(source: &str) -> Result<ProgrammeFile, (ProgrammeIssue, bool)> {
    let syntax_issue = |e: toml::de::Error| {
        let (line, column) = e
            .span()
            .map(|s| line_column(source, s.start))
            .unwrap_or((0, 0));
        ProgrammeIssue {
            line,
            column,
            field: String::new(),
            reason: e.message().to_owned(),
        }
    };
    let deserializer = toml::Deserializer::parse(source).map_err(|e| (syntax_issue(e), true))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        // `Spanned` fields show up in the path as a private inner key; the user wrote none.
        let field = e
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        let mut issue = syntax_issue(e.into_inner());
        issue.field = if field == "." { String::new() } else { field };
        (issue, false)
    })
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= crate::limits::NAME_LEN_MAX
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(source: &str, offset: usize) -> (u32, u32) {
    let mut end = offset.min(source.len());
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    let before = &source[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

pub mod change;

mod benefits_section;
mod offers_section;
mod plans_section;
mod points_section;
mod referral_section;
mod tiers_section;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod props;
