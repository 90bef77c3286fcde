//! The programme: read it, replace it (TOML body), list its versions.

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{encode_cursor, read_body, Caller, VersionPage};
use crate::routes::rfc3339;
use crate::AppState;
use axum::extract::{Request, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tessera_domain::limits::PROGRAMME_BYTES_MAX;
use tessera_engine::{ActiveProgramme, Role};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/programme", get(get_programme).put(put_programme))
        .route("/v1/programme/versions", get(list_versions))
        .route("/v1/programme/versions/{version}", get(get_version))
        .route("/v1/programme/dry-run", post(dry_run))
}

/// A segment the programme declares: a named set of members, described by a condition.
#[derive(Serialize, ToSchema)]
pub struct SegmentView {
    /// The segment's name, unique in the file.
    pub name: String,
    /// The file's words for the segment; absent when it gives none.
    pub description: Option<String>,
    /// The CEL condition over `member`.
    pub condition: String,
}

/// An activity the programme declares, beyond the built-in `review`, `check_in` and
/// `share`.
#[derive(Serialize, ToSchema)]
pub struct ActivityView {
    /// The activity's name, as an `activity` event gives it.
    pub name: String,
    /// The activity's CEL condition over `member` and `event`, as declared; absent when it
    /// has none.
    pub condition: Option<String>,
    /// The name of the segment the activity declares; absent when it names none.
    pub segment: Option<String>,
}

/// A reward of the points catalogue, bought with points by a redemption.
#[derive(Serialize, ToSchema)]
pub struct RewardView {
    /// The reward's id, as a redemption's `reward` names it.
    pub id: String,
    /// The reward's name, for people.
    pub name: String,
    /// What one costs, in points.
    pub points: i64,
    /// How many can ever be redeemed; absent when unlimited.
    pub stock: Option<i64>,
}

/// How points are spent as money at checkout (`[points.redemption]`).
#[derive(Serialize, ToSchema)]
pub struct RedemptionRuleView {
    /// `points` points are worth `value_minor` at checkout.
    pub points: i64,
    /// What `points` points are worth, in minor units of the programme's currency.
    pub value_minor: i64,
    /// The fewest points one redemption or one checkout may spend: a redemption of fewer
    /// is refused (`redemption_below_minimum`), a checkout with fewer spends none.
    pub minimum_points: i64,
    /// The largest share of an order's goods, in percent, that points may pay.
    pub max_order_share_percent: u32,
}

/// The points rules in brief; `source` has every detail.
#[derive(Serialize, ToSchema)]
pub struct PointsRulesView {
    /// `earn_points` points per `earn_per_minor` minor units paid for goods.
    pub earn_points: i64,
    /// Minor units of the programme's currency paid for goods that earn `earn_points`.
    pub earn_per_minor: i64,
    /// Days a lot stays pending after the order's `occurred_at` before it becomes
    /// available to spend; 0 makes it available at once.
    pub return_window_days: i64,
    /// `only_pending`, `within_balance` or `allow_negative`.
    pub refund_policy: String,
    /// The expiry policy, in words.
    pub expiry: String,
    /// The multipliers' names, in the file's order.
    pub multipliers: Vec<String>,
    /// The bonuses' names, in the file's order.
    pub bonuses: Vec<String>,
    /// How points are spent at checkout; absent when the programme has no
    /// `[points.redemption]`.
    pub redemption: Option<RedemptionRuleView>,
    /// The catalogue of rewards; empty when there is none.
    pub rewards: Vec<RewardView>,
}

/// One tier: its name and the measure that reaches it.
#[derive(Serialize, ToSchema)]
pub struct TierLevelView {
    /// The tier's name.
    pub name: String,
    /// The measure, in its window, at which the tier is reached, in the unit of the
    /// tiers' `measure` (score, minor units spent, or points earned); 0 for the first tier.
    pub threshold: i64,
}

/// The tiers in brief; `source` has every detail.
#[derive(Serialize, ToSchema)]
pub struct TiersView {
    /// `score`, `spend` or `points`.
    pub measure: String,
    /// The tiers, lowest first; the first is reached at 0.
    pub levels: Vec<TierLevelView>,
    /// Upgrades at once (`live`) or only at evaluations (`at_evaluation`).
    pub settlement: String,
}

/// A paid plan in brief; `file.plans` has every key.
#[derive(Serialize, ToSchema)]
pub struct PlanView {
    /// The plan's id, as subscriptions name it.
    pub id: String,
    /// The plan's name, for people.
    pub name: String,
    /// The term, in words (`1 year`, `30 days`).
    pub term: String,
    /// The list price of a term, in minor units.
    pub price_minor: i64,
    /// The first term's price, when it differs.
    pub first_term_price_minor: Option<i64>,
    /// The price rules' names, in order.
    pub price_rules: Vec<String>,
    /// Days of the trial, when the plan has one.
    pub trial_days: Option<i64>,
    /// Whether a subscription may renew automatically: the shop's billing charges it when
    /// Tessera says a renewal is due.
    pub auto_renew: bool,
    /// Whether buying the plan again while it is held extends its end; without stacking
    /// the purchase is refused (`plan_already_held`).
    pub stacking: bool,
    /// The partner rights' ids.
    pub partner_rights: Vec<String>,
}

/// A benefit in brief; `file.benefits` has every key.
#[derive(Serialize, ToSchema)]
pub struct BenefitRuleView {
    /// The benefit's id.
    pub id: String,
    /// `member_price`, `percent_off`, `free_shipping`, `coupon_grant`, `free_returns`,
    /// `extended_returns`, `priority_service`, `feature` or `members_only`.
    pub kind: String,
    /// The plans whose holders have it.
    pub plans: Vec<String>,
    /// The tiers whose members have it.
    pub tiers: Vec<String>,
    /// What one use costs the shop, in minor units.
    pub cost_per_use_minor: i64,
}

/// A coupon template in brief; `file.coupons` has every key.
#[derive(Serialize, ToSchema)]
pub struct CouponTemplateView {
    /// The template's id, as issues, coupons and `coupon_grant` benefits name it.
    pub id: String,
    /// `amount_off`, `percent_off` or `free_shipping`.
    pub kind: String,
    /// What the covered goods must reach, in minor units.
    pub minimum_minor: i64,
    /// Days a coupon is valid from its issue.
    pub valid_days: i64,
}

/// A stored-value top-up offer.
#[derive(Serialize, ToSchema)]
pub struct OfferView {
    /// The offer's id, as a top-up's `offer` names it.
    pub id: String,
    /// Paid, in minor units.
    pub pay_minor: i64,
    /// Credited (principal and bonus), in minor units.
    pub credit_minor: i64,
}

/// The running programme: its version, its rules in brief, and the whole file.
#[derive(Serialize, ToSchema)]
pub struct ProgrammeView {
    /// The version number; every accepted file gets the next one.
    pub version: i64,
    /// When this version was accepted, by the engine's clock, RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// The programme's name (`name` in the file).
    pub name: String,
    /// ISO 4217 code; every amount of the API is in its minor units.
    pub currency: String,
    /// Digits of the currency's minor unit: with 2, an amount of 12345 minor units is
    /// 123.45.
    pub minor_units: u8,
    /// IANA time zone of the programme's calendar (days, months, member days).
    pub timezone: String,
    /// The segments, in the file's order.
    pub segments: Vec<SegmentView>,
    /// Custom activities; `review`, `check_in` and `share` are built in.
    pub activities: Vec<ActivityView>,
    /// The points rules, when the programme gives points.
    pub points: Option<PointsRulesView>,
    /// The tiers, when the programme has them.
    pub tiers: Option<TiersView>,
    /// The score's rules' names, when the programme keeps a score.
    pub score_rules: Option<Vec<String>>,
    /// The paid plans, in the file's order; empty without a paid track.
    pub plans: Vec<PlanView>,
    /// The benefits, in the file's order.
    pub benefits: Vec<BenefitRuleView>,
    /// The coupon templates, in the file's order.
    pub coupons: Vec<CouponTemplateView>,
    /// Stored-value offers; absent without stored value.
    pub stored_value_offers: Option<Vec<OfferView>>,
    /// The whole file, every section and key, as JSON.
    #[schema(value_type = Object)]
    pub file: serde_json::Value,
    /// The TOML file as accepted.
    pub source: String,
}

impl ProgrammeView {
    fn of(active: &ActiveProgramme) -> Self {
        let p = &active.programme;
        ProgrammeView {
            version: active.version,
            created_at: rfc3339(active.created_at),
            sha256: active.sha256.clone(),
            name: p.name.clone(),
            currency: p.currency.code().to_owned(),
            minor_units: p.currency.minor_units(),
            timezone: p.timezone_name.clone(),
            segments: p
                .segments
                .iter()
                .map(|s| SegmentView {
                    name: s.name.clone(),
                    description: s.description.clone(),
                    condition: s.condition.source().to_owned(),
                })
                .collect(),
            activities: p
                .activities
                .iter()
                .map(|a| ActivityView {
                    name: a.name.to_string(),
                    condition: a.condition.as_ref().map(|c| c.source().to_owned()),
                    segment: a.segment.map(|i| p.segments[i].name.clone()),
                })
                .collect(),
            points: p.points.as_ref().map(|c| PointsRulesView {
                earn_points: c.earn_points,
                earn_per_minor: c.earn_per_minor,
                return_window_days: c.return_window_days,
                refund_policy: c.refund_policy.as_str().to_owned(),
                expiry: c.expiry.describe(),
                multipliers: c.multipliers.iter().map(|m| m.name.clone()).collect(),
                bonuses: c.bonuses.iter().map(|b| b.name.clone()).collect(),
                redemption: c.redemption.as_ref().map(|r| RedemptionRuleView {
                    points: r.points,
                    value_minor: r.value_minor,
                    minimum_points: r.minimum_points,
                    max_order_share_percent: r.max_order_share_percent,
                }),
                rewards: c
                    .rewards
                    .iter()
                    .map(|r| RewardView {
                        id: r.id.clone(),
                        name: r.name.clone(),
                        points: r.points,
                        stock: r.stock,
                    })
                    .collect(),
            }),
            tiers: p.tiers.as_ref().map(|t| TiersView {
                measure: match t.measure {
                    tessera_domain::tiers::Measure::Score => "score",
                    tessera_domain::tiers::Measure::Spend => "spend",
                    tessera_domain::tiers::Measure::Points => "points",
                }
                .to_owned(),
                levels: t
                    .tiers
                    .iter()
                    .map(|l| TierLevelView {
                        name: l.name.clone(),
                        threshold: l.threshold,
                    })
                    .collect(),
                settlement: if t.live { "live" } else { "at_evaluation" }.to_owned(),
            }),
            score_rules: p
                .score
                .as_ref()
                .map(|s| s.rules.iter().map(|r| r.name.clone()).collect()),
            plans: p
                .plans
                .iter()
                .map(|plan| PlanView {
                    id: plan.id.clone(),
                    name: plan.name.clone(),
                    term: plan.term.describe(),
                    price_minor: plan.price_minor,
                    first_term_price_minor: plan.first_term_price_minor,
                    price_rules: plan.prices.iter().map(|r| r.name.clone()).collect(),
                    trial_days: plan.trial.as_ref().map(|t| t.days),
                    auto_renew: plan.auto_renew,
                    stacking: plan.stacking,
                    partner_rights: plan.partner_rights.iter().map(|r| r.id.clone()).collect(),
                })
                .collect(),
            benefits: p
                .benefits
                .iter()
                .map(|b| BenefitRuleView {
                    id: b.id.clone(),
                    kind: b.kind.name().to_owned(),
                    plans: b.held_by.plans.clone(),
                    tiers: b.held_by.tiers.clone(),
                    cost_per_use_minor: b.cost_per_use_minor,
                })
                .collect(),
            coupons: p
                .coupons
                .iter()
                .map(|c| CouponTemplateView {
                    id: c.id.clone(),
                    kind: c.kind.as_str().to_owned(),
                    minimum_minor: c.minimum_minor,
                    valid_days: c.valid_days,
                })
                .collect(),
            stored_value_offers: p.stored_value.as_ref().map(|sv| {
                sv.offers
                    .iter()
                    .map(|o| OfferView {
                        id: o.id.clone(),
                        pay_minor: o.pay_minor,
                        credit_minor: o.credit_minor,
                    })
                    .collect()
            }),
            // An accepted file is valid TOML: it reads as a table, whose JSON form is the
            // structured file.
            file: toml::from_str::<toml::Table>(&active.source)
                .ok()
                .and_then(|t| serde_json::to_value(t).ok())
                .unwrap_or(serde_json::Value::Null),
            source: active.source.clone(),
        }
    }
}

/// The running programme.
#[utoipa::path(get, path = "/v1/programme", tag = "programme", security(("api_key" = [])),
    responses((status = 200, body = ProgrammeView),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 409, description = "programme_missing", body = crate::error::ErrorBody)))]
pub async fn get_programme(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<ProgrammeView>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    Ok(Json(ProgrammeView::of(&*state.engine.programme()?)))
}

/// Replaces the programme with a TOML file. A refused file leaves the running version in
/// force and answers `programme_invalid` with every problem's line and field.
#[utoipa::path(put, path = "/v1/programme", tag = "programme", security(("api_key" = [])),
    request_body(content = String, content_type = "text/plain", description = "The programme file (TOML); any Content-Type is read as TOML"),
    responses((status = 200, description = "Accepted; `version` is new unless the file equals the running one", body = ProgrammeView),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 409, description = "programme_strands_value: the change would take from members what they hold; nothing was saved", body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody),
        (status = 422, description = "programme_invalid", body = crate::error::ErrorBody)))]
pub async fn put_programme(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<Json<ProgrammeView>> {
    caller.require(&[Role::Admin])?;
    let source = programme_text(req).await?;
    let (active, _created) = state.engine.put_programme(&source).await?;
    Ok(Json(ProgrammeView::of(&active)))
}

/// One item a programme change touches.
#[derive(Serialize, ToSchema)]
pub struct ChangeView {
    /// `plans`, `tiers`, `coupons`, `benefits`, `segments`, `activities`, `rewards`,
    /// `offers` (stored-value offers), `conversion_offers`, `referral_rewards`, `currency`
    /// or `timezone`.
    pub section: String,
    /// The item's id in the new file (the old one when removed).
    pub id: String,
    /// `added`, `removed`, `changed`, `renamed` or `set` (currency, time zone).
    pub change: String,
    /// For `renamed`: the id members' holdings move from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    /// For `set`: the value before and after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// For `set`: the value after; absent for other changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Members it touches: holders of a removed or renamed plan, tier or coupon template;
    /// holders of the plans and tiers a removed benefit came with; members with ledger
    /// entries for `currency` and `timezone`.
    pub members: i64,
}

/// What saving a programme file would do, computed without saving it.
#[derive(Serialize, ToSchema)]
pub struct ProgrammeChangeView {
    /// Whether `PUT /v1/programme` would accept the file now.
    pub accepted: bool,
    /// Every item added, removed, changed or renamed, against the running version.
    pub changes: Vec<ChangeView>,
    /// What the change would take from members; non-empty means refused with
    /// `programme_strands_value`.
    pub stranded: Vec<crate::error::StrandedBody>,
    /// Members whose measure now qualifies them for another tier under the new tier
    /// rules than under the running ones: they move at their next evaluation (upgrades
    /// settled live move at their next change).
    pub members_changing_tier: i64,
}

impl ProgrammeChangeView {
    pub fn of(a: &tessera_domain::programme::change::Assessment) -> Self {
        use tessera_domain::programme::change::ItemChange;
        ProgrammeChangeView {
            accepted: a.stranded.is_empty(),
            members_changing_tier: a.members_changing_tier,
            changes: a
                .changes
                .iter()
                .zip(&a.members)
                .map(|(c, members)| {
                    let (renamed_from, from, to) = match &c.change {
                        ItemChange::Renamed { from } => (Some(from.clone()), None, None),
                        ItemChange::Set { from, to } => {
                            (None, Some(from.clone()), Some(to.clone()))
                        }
                        _ => (None, None, None),
                    };
                    ChangeView {
                        section: c.section.as_str().to_owned(),
                        id: c.id.clone(),
                        change: c.change.as_str().to_owned(),
                        renamed_from,
                        from,
                        to,
                        members: *members,
                    }
                })
                .collect(),
            stranded: a
                .stranded
                .iter()
                .map(crate::error::StrandedBody::of)
                .collect(),
        }
    }
}

/// What `PUT /v1/programme` with this file would change, and whether it would be
/// accepted, without saving anything.
#[utoipa::path(post, path = "/v1/programme/dry-run", tag = "programme", security(("api_key" = [])),
    request_body(content = String, content_type = "text/plain", description = "The programme file (TOML); any Content-Type is read as TOML"),
    responses((status = 200, description = "The change and its impact; nothing was saved", body = ProgrammeChangeView),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody),
        (status = 422, description = "programme_invalid", body = crate::error::ErrorBody)))]
pub async fn dry_run(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<Json<ProgrammeChangeView>> {
    caller.require(&[Role::Admin])?;
    let source = programme_text(req).await?;
    let assessment = state.engine.assess_programme(&source).await?;
    Ok(Json(ProgrammeChangeView::of(&assessment)))
}

async fn programme_text(req: Request) -> ApiResult<String> {
    let bytes = read_body(req, PROGRAMME_BYTES_MAX).await?;
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        ApiError::new(
            ErrorCode::ProgrammeInvalid,
            "the programme file is not UTF-8",
        )
    })
}

/// A programme version as listed: its number, when it was accepted, and its hash.
#[derive(Serialize, ToSchema)]
pub struct VersionView {
    /// The version number.
    pub version: i64,
    /// When the version was accepted, by the engine's clock, RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

/// A page of programme versions.
#[derive(Serialize, ToSchema)]
pub struct VersionList {
    /// Newest first.
    pub items: Vec<VersionView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Every accepted version, newest first.
#[utoipa::path(get, path = "/v1/programme/versions", tag = "programme", security(("api_key" = [])),
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "From `next_cursor` of the previous page")),
    responses((status = 200, body = VersionList),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn list_versions(
    State(state): State<AppState>,
    caller: Caller,
    VersionPage(page): VersionPage,
) -> ApiResult<Json<VersionList>> {
    caller.require(&[Role::Admin])?;
    let mut rows = state
        .engine
        .programme_versions(page.after, page.limit + 1)
        .await?;
    let next_cursor = if rows.len() > page.limit as usize {
        rows.truncate(page.limit as usize);
        rows.last().map(|r| encode_cursor("v", r.version))
    } else {
        None
    };
    let items = rows
        .into_iter()
        .map(|r| VersionView {
            version: r.version,
            created_at: rfc3339(tessera_engine::clock::from_us(r.created_at_us)),
            sha256: r.sha256,
        })
        .collect();
    Ok(Json(VersionList { items, next_cursor }))
}

/// One programme version with its file.
#[derive(Serialize, ToSchema)]
pub struct VersionSourceView {
    /// The version number.
    pub version: i64,
    /// When the version was accepted, by the engine's clock, RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// The TOML file as accepted.
    pub source: String,
}

/// One programme version, with the file as accepted.
#[utoipa::path(get, path = "/v1/programme/versions/{version}", tag = "programme", security(("api_key" = [])),
    params(("version" = i64, Path, minimum = 1, description = "The version number")),
    responses((status = 200, body = VersionSourceView),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody),
        (status = 404, description = "version_not_found", body = crate::error::ErrorBody),
        (status = 422, description = "invalid_field: not a version number", body = crate::error::ErrorBody)))]
pub async fn get_version(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(version): axum::extract::Path<String>,
) -> ApiResult<Json<VersionSourceView>> {
    caller.require(&[Role::Admin])?;
    let number = version
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidField, "version is a whole number from 1")
                .with_field("version")
        })?;
    let row = state
        .engine
        .programme_version(number)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::VersionNotFound,
                format!("no programme version {number}"),
            )
        })?;
    Ok(Json(VersionSourceView {
        version: row.version,
        created_at: rfc3339(tessera_engine::clock::from_us(row.created_at_us)),
        sha256: row.sha256,
        source: row.source,
    }))
}
