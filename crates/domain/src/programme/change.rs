//! A change of programme: what differs between the running version and a new one, and
//! whether the change would strand what members hold.
//!
//! Members hold things by id: a subscription names its plan, a member's tier its name, a
//! coupon its template. A new version without that id would leave them holding something
//! the programme no longer knows (no entitlement, a refund refused), so such a change is
//! refused while anyone holds it. A version may carry `renamed_from = "old_id"` on a plan,
//! tier, coupon template or benefit: the engine then moves what members hold from the old
//! id to the new one in the transaction that saves the version. Changing `currency` or
//! `timezone` would reinterpret every amount and every day of a ledger that has entries,
//! so it is refused once one has.

use super::{Issues, Programme};
use std::collections::{BTreeMap, BTreeSet};
use toml::Spanned;

/// A section of the programme whose items have ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Plans,
    Tiers,
    Coupons,
    Benefits,
    Segments,
    Activities,
    Rewards,
    Offers,
    ConversionOffers,
    ReferralRewards,
    Currency,
    Timezone,
}

impl Section {
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Plans => "plans",
            Section::Tiers => "tiers",
            Section::Coupons => "coupons",
            Section::Benefits => "benefits",
            Section::Segments => "segments",
            Section::Activities => "activities",
            Section::Rewards => "rewards",
            Section::Offers => "offers",
            Section::ConversionOffers => "conversion_offers",
            Section::ReferralRewards => "referral_rewards",
            Section::Currency => "currency",
            Section::Timezone => "timezone",
        }
    }
}

/// What happened to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemChange {
    Added,
    Removed,
    /// Still there under the same id, with other settings.
    Changed,
    /// Declared under a new id with `renamed_from` naming the old one.
    Renamed {
        from: String,
    },
    /// A setting of the programme as a whole (currency, time zone): from, to.
    Set {
        from: String,
        to: String,
    },
}

impl ItemChange {
    pub fn as_str(&self) -> &'static str {
        match self {
            ItemChange::Added => "added",
            ItemChange::Removed => "removed",
            ItemChange::Changed => "changed",
            ItemChange::Renamed { .. } => "renamed",
            ItemChange::Set { .. } => "set",
        }
    }
}

/// One item's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub section: Section,
    pub id: String,
    pub change: ItemChange,
}

/// A rename the file declares: the item `to` of `section` was `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    pub section: Section,
    pub from: String,
    pub to: String,
}

/// Who holds what a programme declares, counted in members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holders {
    /// Members with a live subscription (or access still running) by plan.
    pub plans: BTreeMap<String, i64>,
    /// Members at a tier (or with it as their floor), by tier.
    pub tiers: BTreeMap<String, i64>,
    /// Members with an unused, unexpired coupon, by template.
    pub coupons: BTreeMap<String, i64>,
    /// Members with at least one entry in the ledger (points or stored value).
    pub ledger_members: i64,
}

/// An item the change would take from members who hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stranded {
    pub section: Section,
    pub id: String,
    pub members: i64,
    pub reason: String,
}

/// The change, what it does to members, and whether it may be saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub changes: Vec<Change>,
    /// For each change, the members it touches (holders of a removed or renamed item, or
    /// of the plans and tiers a removed benefit came with), in `changes` order.
    pub members: Vec<i64>,
    /// What the change would strand; the change is refused unless this is empty.
    pub stranded: Vec<Stranded>,
    /// The renames to apply to what members hold when the version is saved.
    pub renames: Vec<Rename>,
    /// Members whose measure now qualifies them for another tier under the new rules:
    /// they move at their next evaluation (or at once, for upgrades settled live). Zero
    /// unless counted: it reads every member's measures, which the engine does for a dry
    /// run only.
    pub members_changing_tier: i64,
}

/// Compares `old` (running) and `new`, item by item.
pub fn diff(old: &Programme, new: &Programme) -> Vec<Change> {
    let mut changes = Vec::new();
    if old.currency != new.currency {
        changes.push(Change {
            section: Section::Currency,
            id: "currency".to_owned(),
            change: ItemChange::Set {
                from: old.currency.code().to_owned(),
                to: new.currency.code().to_owned(),
            },
        });
    }
    if old.timezone_name != new.timezone_name {
        changes.push(Change {
            section: Section::Timezone,
            id: "timezone".to_owned(),
            change: ItemChange::Set {
                from: old.timezone_name.clone(),
                to: new.timezone_name.clone(),
            },
        });
    }
    for section in SECTIONS {
        let (before, after) = (items(old, section), items(new, section));
        let renamed: BTreeMap<&str, &str> = new
            .renames
            .iter()
            .filter(|r| r.section == section && before.contains_key(r.from.as_str()))
            .filter(|r| !before.contains_key(r.to.as_str()))
            .map(|r| (r.to.as_str(), r.from.as_str()))
            .collect();
        let renamed_away: BTreeSet<&str> = renamed.values().copied().collect();
        for (id, fingerprint) in &before {
            if !after.contains_key(id) && !renamed_away.contains(id) {
                changes.push(Change {
                    section,
                    id: (*id).to_owned(),
                    change: ItemChange::Removed,
                });
            } else if after.get(id).is_some_and(|f| f != fingerprint) {
                changes.push(Change {
                    section,
                    id: (*id).to_owned(),
                    change: ItemChange::Changed,
                });
            }
        }
        for id in after.keys() {
            if before.contains_key(id) {
                continue;
            }
            let change = match renamed.get(id) {
                Some(from) => ItemChange::Renamed {
                    from: (*from).to_owned(),
                },
                None => ItemChange::Added,
            };
            changes.push(Change {
                section,
                id: (*id).to_owned(),
                change,
            });
        }
    }
    changes
}

/// The first programme of a database: every item is added, and no one holds anything.
pub fn first(new: &Programme) -> Assessment {
    let changes: Vec<Change> = SECTIONS
        .iter()
        .flat_map(|section| {
            items(new, *section).into_keys().map(|id| Change {
                section: *section,
                id: id.to_owned(),
                change: ItemChange::Added,
            })
        })
        .collect();
    Assessment {
        members: vec![0; changes.len()],
        changes,
        stranded: Vec::new(),
        renames: Vec::new(),
        members_changing_tier: 0,
    }
}

/// The sections whose items have ids, in the order a diff lists them.
const SECTIONS: [Section; 10] = [
    Section::Plans,
    Section::Tiers,
    Section::Coupons,
    Section::Benefits,
    Section::Segments,
    Section::Activities,
    Section::Rewards,
    Section::Offers,
    Section::ConversionOffers,
    Section::ReferralRewards,
];

/// The items of a section by id, each with a fingerprint of its settings (its debug form
/// with the id blanked, so that a renamed item with the same settings compares equal).
fn items(p: &Programme, section: Section) -> BTreeMap<&str, String> {
    fn of<'a, T: std::fmt::Debug + 'a>(
        list: impl IntoIterator<Item = &'a T>,
        id: impl Fn(&'a T) -> &'a str,
    ) -> BTreeMap<&'a str, String> {
        list.into_iter()
            .map(|item| {
                let id = id(item);
                (id, format!("{item:?}").replace(&format!("{id:?}"), "\"\""))
            })
            .collect()
    }
    match section {
        Section::Plans => of(&p.plans, |x| x.id.as_str()),
        Section::Tiers => of(p.tiers.iter().flat_map(|t| &t.tiers), |x| x.name.as_str()),
        Section::Coupons => of(&p.coupons, |x| x.id.as_str()),
        Section::Benefits => of(&p.benefits, |x| x.id.as_str()),
        Section::Segments => of(&p.segments, |x| x.name.as_str()),
        // An activity names its segment by index: compared by the segment's name, so that a
        // segment added before it does not make it look changed.
        Section::Activities => p
            .activities
            .iter()
            .map(|a| {
                let segment = a.segment.map(|i| p.segments[i].name.as_str());
                let condition = a.condition.as_ref().map(|c| c.source());
                (a.name.as_str(), format!("{segment:?} {condition:?}"))
            })
            .collect(),
        Section::Rewards => of(p.points.iter().flat_map(|c| &c.rewards), |x| x.id.as_str()),
        Section::Offers => of(p.stored_value.iter().flat_map(|s| &s.offers), |x| {
            x.id.as_str()
        }),
        Section::ConversionOffers => of(&p.offers, |x| x.id.as_str()),
        Section::ReferralRewards => of(p.referral.iter().flat_map(|r| &r.rewards), |x| {
            x.id.as_str()
        }),
        Section::Currency | Section::Timezone => BTreeMap::new(),
    }
}

/// The change from `old` to `new` given who holds what: its items, the members each
/// touches, what it would strand and the renames to apply.
pub fn assess(old: &Programme, new: &Programme, holders: &Holders) -> Assessment {
    let changes = diff(old, new);
    let held = |section: Section, id: &str| -> i64 {
        let by = match section {
            Section::Plans => &holders.plans,
            Section::Tiers => &holders.tiers,
            Section::Coupons => &holders.coupons,
            _ => return 0,
        };
        by.get(id).copied().unwrap_or(0)
    };
    let mut members = Vec::with_capacity(changes.len());
    let mut stranded = Vec::new();
    let mut renames = Vec::new();
    for c in &changes {
        let count = match &c.change {
            ItemChange::Removed if c.section == Section::Benefits => {
                old.benefits.iter().find(|b| b.id == c.id).map_or(0, |b| {
                    let plans: i64 = b
                        .held_by
                        .plans
                        .iter()
                        .map(|p| held(Section::Plans, p))
                        .sum();
                    let tiers: i64 = b
                        .held_by
                        .tiers
                        .iter()
                        .map(|t| held(Section::Tiers, t))
                        .sum();
                    plans + tiers
                })
            }
            ItemChange::Removed => held(c.section, &c.id),
            ItemChange::Renamed { from } => {
                renames.push(Rename {
                    section: c.section,
                    from: from.clone(),
                    to: c.id.clone(),
                });
                held(c.section, from)
            }
            ItemChange::Set { .. } => holders.ledger_members,
            ItemChange::Added | ItemChange::Changed => 0,
        };
        members.push(count);
        if count == 0 {
            continue;
        }
        let reason = match (&c.change, c.section) {
            (ItemChange::Removed, Section::Plans) => format!(
                "plan `{}` is removed while {count} member(s) hold a live subscription to it; keep it, or rename it with `renamed_from`",
                c.id
            ),
            (ItemChange::Removed, Section::Tiers) => format!(
                "tier `{}` is removed while {count} member(s) hold it; keep it, or rename it with `renamed_from`",
                c.id
            ),
            (ItemChange::Removed, Section::Coupons) => format!(
                "coupon template `{}` is removed while {count} member(s) hold an unused coupon of it; keep it until they expire, or rename it with `renamed_from`",
                c.id
            ),
            (ItemChange::Set { from, to }, section) => format!(
                "{} would change from `{from}` to `{to}` while {count} member(s) have entries in the ledger, whose amounts and days it would reinterpret",
                section.as_str()
            ),
            _ => continue,
        };
        stranded.push(Stranded {
            section: c.section,
            id: c.id.clone(),
            members: count,
            reason,
        });
    }
    Assessment {
        changes,
        members,
        stranded,
        renames,
        members_changing_tier: 0,
    }
}

/// The tier a measure of `old_value` reaches under `old` and one of `new_value` under
/// `new`, by name: whether a member with those measures changes tier.
pub fn changes_tier(
    old: &crate::tiers::TierRules,
    old_value: i64,
    new: &crate::tiers::TierRules,
    new_value: i64,
) -> bool {
    fn name(rules: &crate::tiers::TierRules, value: i64) -> Option<&str> {
        rules
            .tiers
            .get(rules.qualifying(value))
            .map(|t| t.name.as_str())
    }
    name(old, old_value) != name(new, new_value)
}

/// Reads the `renamed_from` of the items of one section: each names an id the file does
/// not declare, and no two name the same one.
pub(super) fn collect_renames<'f>(
    section: Section,
    field: &str,
    items: impl IntoIterator<Item = (&'f str, Option<&'f Spanned<String>>)>,
    issues: &mut Issues,
    renames: &mut Vec<Rename>,
) {
    let items: Vec<(&str, Option<&Spanned<String>>)> = items.into_iter().collect();
    let declared: BTreeSet<&str> = items.iter().map(|(id, _)| *id).collect();
    let mut claimed = BTreeSet::new();
    for (i, (id, from)) in items.iter().enumerate() {
        let Some(from) = from else { continue };
        let old = from.get_ref();
        let at = format!("{field}[{i}].renamed_from");
        if declared.contains(old.as_str()) {
            issues.add(
                from,
                &at,
                &format!("`{old}` is still declared; a renamed item's old id must be gone"),
            );
        } else if old == id {
            issues.add(from, &at, "an item cannot be renamed from its own id");
        } else if !claimed.insert(old.clone()) {
            issues.add(
                from,
                &at,
                &format!("`{old}` is the `renamed_from` of two items"),
            );
        } else {
            renames.push(Rename {
                section,
                from: old.clone(),
                to: (*id).to_owned(),
            });
        }
    }
}
