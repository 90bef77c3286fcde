//! Members: sign-up, look-up, changes, closing.

use crate::error::ApiResult;
use crate::extract::{ApiJson, Caller};
use crate::routes::{rfc3339, MemberPath};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_domain::limits::{SEARCH_ATTRIBUTES_MAX, SEARCH_ATTRIBUTE_KEY_LEN_MAX};
use tessera_domain::{Attributes, ExternalId, ReferralCode};
use tessera_engine::{Member, MemberPatch, MemberStatus, Role};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/members", post(create_member).get(list_members))
        .route(
            "/v1/members/{member_id}",
            get(get_member).patch(patch_member),
        )
        .route("/v1/members/{member_id}/close", post(close_member))
        .route("/v1/members/{member_id}/erase", post(erase_member))
        .route("/v1/members/{member_id}/export", get(export_member))
}

/// A member to register: the shop's id for them, and optionally their attributes and the
/// referral code they joined with.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"member_id": "u-1001", "attributes": {"city": "Beijing", "newsletter": true}, "referral_code": "FRIEND-42"}))]
pub struct MemberCreate {
    /// The shop's id of the member: 1 to 128 characters, no control characters.
    #[schema(value_type = crate::schema::IdText, example = "u-1001")]
    pub member_id: String,
    /// Free JSON object (at most 16 KiB, 8 levels), usable in rules as `member.attributes`.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Value>,
    /// The referral code the member joined with, if any.
    #[schema(value_type = Option<crate::schema::NameText>)]
    pub referral_code: Option<String>,
}

/// A change to a member: their attributes by JSON merge patch, their status, or both. A
/// closed member cannot be changed.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"attributes": {"city": "Shanghai", "newsletter": null}, "status": "frozen"}))]
pub struct MemberPatchBody {
    /// A JSON merge patch (RFC 7396) of the attributes: `null` removes a key.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Value>,
    /// `active` or `frozen`. Closing is `POST .../close`.
    pub status: Option<PatchStatus>,
}

/// The status a patch can give a member: `active`, or `frozen` (the member keeps earning
/// but cannot spend).
#[derive(Deserialize, Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum PatchStatus {
    Active,
    Frozen,
}

/// A member: their account, and what they hold now (tier, plans, benefits). Lists leave
/// the holdings out.
#[derive(Serialize, ToSchema)]
pub struct MemberView {
    /// The shop's id of the member; `erased-<n>` once the member is erased.
    pub member_id: String,
    /// `active`, `frozen` or `closed`.
    pub status: String,
    /// The member's free JSON object, usable in rules as `member.attributes`; `{}` once the
    /// account is closed.
    #[schema(value_type = Object)]
    pub attributes: serde_json::Value,
    /// The referral code the member joined with.
    pub referred_by: Option<String>,
    /// The member's own referral code, for others to join with; absent for a member who
    /// joined before codes were given, until `GET .../referrals` gives one.
    pub referral_code: Option<String>,
    /// When the member was registered, RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When the member's attributes or status last changed (a patch, the close, the
    /// erasure), RFC 3339; the registration's instant until then.
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// When the account was closed, RFC 3339; absent while it is open.
    #[schema(format = DateTime)]
    pub closed_at: Option<String>,
    /// When the member's personal data was erased (`POST .../erase`); the external id is
    /// then `erased-<n>`.
    #[schema(format = DateTime)]
    pub erased_at: Option<String>,
    /// The member's tier, when the programme has tiers (details: `GET .../tier`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The paid plans the member holds now (details: `GET .../entitlements`).
    pub plans: Vec<String>,
    /// The benefits the member holds now, through their tier and plans, with what is left
    /// of each monthly quota.
    pub benefits: Vec<BenefitView>,
}

/// A benefit the member holds now, through their tier or one of their plans.
#[derive(Serialize, ToSchema)]
pub struct BenefitView {
    /// The benefit's id in the programme (`[[benefits]]`).
    pub benefit: String,
    /// `member_price`, `percent_off`, `free_shipping`, `coupon_grant`, `free_returns`,
    /// `extended_returns`, `priority_service`, `feature` or `members_only`.
    pub kind: String,
    /// The kind's terms (a percentage, a minimum, a feature flag, days ...).
    #[schema(value_type = Object)]
    pub terms: serde_json::Value,
    /// Uses allowed per calendar month (in the programme's time zone), for a
    /// `free_shipping` benefit that sets `per_month` and for `free_returns`; absent for
    /// every other benefit, whose uses are not limited.
    pub per_month: Option<i64>,
    /// Uses left in the current calendar month; absent when the benefit has no monthly
    /// quota.
    pub left_this_month: Option<i64>,
    /// What one use costs the shop, in minor units of the programme's currency (0 when the
    /// programme states no cost).
    pub cost_per_use_minor: i64,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        MemberView {
            member_id: m.external_id,
            status: m.status.as_str().to_owned(),
            attributes: m.attributes,
            referred_by: m.referred_by,
            referral_code: m.referral_code,
            created_at: rfc3339(m.created_at),
            updated_at: rfc3339(m.updated_at),
            closed_at: m.closed_at.map(rfc3339),
            erased_at: m.erased_at.map(rfc3339),
            tier: None,
            plans: Vec::new(),
            benefits: Vec::new(),
        }
    }
}

/// A page of members.
#[derive(Serialize, ToSchema)]
pub struct MemberList {
    /// Members in the order they joined.
    pub items: Vec<MemberView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Members found by status, tier, plan held and attributes, a page at a time in the order
/// they joined. Every filter given must hold. (Tier, plans and benefits are left out of
/// the items: `GET /v1/members/{member_id}` has them.)
#[utoipa::path(get, path = "/v1/members", tag = "members", security(("api_key" = [])),
    params(("status" = Option<String>, Query, description = "`active`, `frozen` or `closed`"),
        ("tier" = Option<String>, Query, description = "Members at this tier now"),
        ("plan" = Option<String>, Query, description = "Members who hold this plan now (a live subscription, or access still running)"),
        ("attribute" = Option<Vec<String>>, Query, description = "`KEY:VALUE`, repeatable: the attribute KEY equals VALUE, read as JSON when it is a JSON number, boolean or quoted string (`vip:true`, `level:3`, `code:\"007\"`), else as text (`city:Beijing`)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "From `next_cursor` of the previous page")),
    responses((status = 200, body = MemberList),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    uri: axum::http::Uri,
) -> ApiResult<Json<MemberList>> {
    caller.require(&[Role::Admin])?;
    let (filter, page) = member_search_query(&uri)?;
    let (members, next) = state
        .engine
        .search_members(&filter, page.after, page.limit)
        .await?;
    Ok(Json(MemberList {
        items: members.into_iter().map(MemberView::from).collect(),
        next_cursor: next.map(|n| crate::extract::encode_cursor("m", n)),
    }))
}

/// The filters and page of a member search, from its query: `attribute` may repeat, so
/// the query is read pair by pair.
fn member_search_query(
    uri: &axum::http::Uri,
) -> ApiResult<(tessera_engine::MemberFilter, crate::extract::Page)> {
    use crate::error::{ApiError, ErrorCode};
    let mut filter = tessera_engine::MemberFilter::default();
    let (mut limit, mut cursor) = (None, None);
    let invalid = |field: &str, message: String| {
        ApiError::new(ErrorCode::InvalidQuery, message).with_field(field)
    };
    for (key, value) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "status" => {
                filter.status = Some(match value.as_ref() {
                    "active" => MemberStatus::Active,
                    "frozen" => MemberStatus::Frozen,
                    "closed" => MemberStatus::Closed,
                    _ => {
                        return Err(invalid(
                            "status",
                            "status is `active`, `frozen` or `closed`".to_owned(),
                        ))
                    }
                })
            }
            "tier" => filter.tier = Some(value.into_owned()),
            "plan" => filter.plan = Some(value.into_owned()),
            "attribute" => {
                let Some((k, v)) = value.split_once(':').filter(|(k, _)| {
                    (1..=SEARCH_ATTRIBUTE_KEY_LEN_MAX).contains(&k.len())
                        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                }) else {
                    return Err(invalid(
                        "attribute",
                        format!("an attribute filter is `KEY:VALUE`, the key 1 to {SEARCH_ATTRIBUTE_KEY_LEN_MAX} letters, digits, `_` or `-`"),
                    ));
                };
                let json = match serde_json::from_str::<serde_json::Value>(v) {
                    Ok(scalar @ (serde_json::Value::Number(_)
                    | serde_json::Value::Bool(_)
                    | serde_json::Value::String(_))) => scalar.to_string(),
                    _ => serde_json::Value::String(v.to_owned()).to_string(),
                };
                if filter.attributes.len() >= SEARCH_ATTRIBUTES_MAX {
                    return Err(invalid(
                        "attribute",
                        format!("at most {SEARCH_ATTRIBUTES_MAX} attribute filters"),
                    ));
                }
                filter.attributes.push((k.to_owned(), json));
            }
            "limit" => limit = Some(value.into_owned()),
            "cursor" => cursor = Some(value.into_owned()),
            other => {
                return Err(invalid(
                    other,
                    format!("unknown query parameter `{other}`; expected status, tier, plan, attribute, limit or cursor"),
                ))
            }
        }
    }
    let page = crate::extract::Page::from_parts(limit, cursor, "m")?;
    Ok((filter, page))
}

/// Registers a member.
#[utoipa::path(post, path = "/v1/members", tag = "members", security(("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    request_body = MemberCreate,
    responses((status = 201, body = MemberView),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody),
        (status = 409, description = "member_exists, idempotency_conflict", body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 415, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
pub async fn create_member(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<MemberCreate>,
) -> ApiResult<(StatusCode, Json<MemberView>)> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let external_id = ExternalId::parse(body.member_id).map_err(|e| e.within("member_id"))?;
    let attributes = match body.attributes {
        None => Attributes::default(),
        Some(v) => Attributes::parse(v).map_err(|e| e.within("attributes"))?,
    };
    let referral = body
        .referral_code
        .map(ReferralCode::parse)
        .transpose()
        .map_err(|e| e.within("referral_code"))?;
    let member = state
        .engine
        .create_member(&external_id, &attributes, referral.as_ref())
        .await
        .map_err(|e| crate::routes::referrals::at_code(e, "referral_code"))?;
    Ok((StatusCode::CREATED, Json(view(&state, member).await?)))
}

/// A member.
#[utoipa::path(get, path = "/v1/members/{member_id}", tag = "members", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path)),
    responses((status = 200, body = MemberView),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn get_member(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
) -> ApiResult<Json<MemberView>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let member = state.engine.member(&external_id).await?;
    Ok(Json(view(&state, member).await?))
}

/// A member as answered, with the tier when the programme has tiers.
async fn view(state: &AppState, member: Member) -> ApiResult<MemberView> {
    let tier = state.engine.tier_name(member.id).await?;
    let (plans, benefits) = match tessera_domain::ExternalId::parse(member.external_id.clone()) {
        Ok(id) if state.engine.programme().is_ok() && member.status != MemberStatus::Closed => {
            let (plans, held) = state.engine.member_holdings(&id).await?;
            let benefits = held
                .into_iter()
                .map(|b| BenefitView {
                    benefit: b.id,
                    kind: b.kind.to_owned(),
                    terms: b.terms,
                    per_month: b.per_month,
                    left_this_month: b.left_this_month,
                    cost_per_use_minor: b.cost_per_use_minor,
                })
                .collect();
            (plans, benefits)
        }
        _ => (Vec::new(), Vec::new()),
    };
    let mut view = MemberView::from(member);
    view.tier = tier;
    view.plans = plans;
    view.benefits = benefits;
    Ok(view)
}

/// Changes a member's attributes (merge patch) or status (active / frozen).
#[utoipa::path(patch, path = "/v1/members/{member_id}", tag = "members", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path)),
    request_body = MemberPatchBody,
    responses((status = 200, body = MemberView),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "member_closed", body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 415, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
pub async fn patch_member(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
    ApiJson(body): ApiJson<MemberPatchBody>,
) -> ApiResult<Json<MemberView>> {
    caller.require(&[Role::Admin])?;
    let patch = MemberPatch {
        attributes: body.attributes,
        status: body.status.map(|s| match s {
            PatchStatus::Active => MemberStatus::Active,
            PatchStatus::Frozen => MemberStatus::Frozen,
        }),
    };
    let member = state.engine.patch_member(&external_id, patch).await?;
    Ok(Json(view(&state, member).await?))
}

/// A subscription ended by the close.
#[derive(Serialize, ToSchema)]
pub struct EndedSubscriptionView {
    /// The subscription's id (`GET /v1/subscriptions/{id}`).
    pub id: i64,
    /// The id of the subscription's plan.
    pub plan: String,
    /// Its status before the close: `trialing`, `active`, `grace` or `canceled`.
    pub status_before: String,
    /// What the plan's refund policy gives back (for the shop to pay), in minor units.
    pub refund_minor: i64,
}

/// What closing the account ended. The journal keeps each movement.
#[derive(Serialize, ToSchema)]
pub struct ClosingView {
    /// Each subscription the member held that still ran (or had access left): refunded
    /// under its plan's policy; access and partner rights end now. Subscriptions the
    /// member bought for others stay theirs.
    pub subscriptions: Vec<EndedSubscriptionView>,
    /// Unused, unexpired coupons, now `voided`.
    pub coupons_voided: u64,
    /// The stored value's principal, owed back to the member (an `sv_refund` entry).
    pub stored_value_owed_minor: i64,
    /// The stored value's bonus, forfeited.
    pub stored_value_bonus_forfeited_minor: i64,
    /// Points forfeited (`forfeit` entries): pending, and available.
    pub points_pending_forfeited: i64,
    /// Available points forfeited (`forfeit` entries). The close first applies what the
    /// clock made due, so pending points past their return window count here.
    pub points_available_forfeited: i64,
    /// Points the member still owes from refunds, left on the books.
    pub points_debt: i64,
}

/// The closed member, and what the close ended.
#[derive(Serialize, ToSchema)]
pub struct ClosedMemberView {
    /// The member after the close, as `GET /v1/members/{member_id}` answers it.
    #[serde(flatten)]
    pub member: MemberView,
    /// What the close ended.
    pub closing: ClosingView,
}

/// Closes a member's account. In one transaction: every subscription they hold is
/// refunded under its plan's policy and ends now (partner access included), unused coupons
/// are voided, stored value is refunded (principal owed back, bonus forfeited), points are
/// forfeited, attributes are emptied; the history stays. Closing again answers as the
/// first close did.
#[utoipa::path(post, path = "/v1/members/{member_id}/close", tag = "members", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    responses((status = 200, body = ClosedMemberView),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn close_member(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
) -> ApiResult<Json<ClosedMemberView>> {
    caller.require(&[Role::Admin])?;
    let (member, c) = state.engine.close_member(&external_id).await?;
    Ok(Json(ClosedMemberView {
        member: view(&state, member).await?,
        closing: ClosingView {
            subscriptions: c
                .subscriptions
                .into_iter()
                .map(|s| EndedSubscriptionView {
                    id: s.id,
                    plan: s.plan,
                    status_before: s.status_before,
                    refund_minor: s.refund_minor,
                })
                .collect(),
            coupons_voided: c.coupons_voided,
            stored_value_owed_minor: c.stored_value_owed_minor,
            stored_value_bonus_forfeited_minor: c.stored_value_bonus_forfeited_minor,
            points_pending_forfeited: c.points_pending_forfeited,
            points_available_forfeited: c.points_available_forfeited,
            points_debt: c.points_debt,
        },
    }))
}

/// Erases a closed member's personal data: the external id becomes `erased-<n>`,
/// attributes and referral code are emptied, stored events name the pseudonym, and the
/// answers kept for retries are dropped. The books stay whole and balanced. Answers the
/// member under the pseudonym; erasing again answers the same.
#[utoipa::path(post, path = "/v1/members/{member_id}/erase", tag = "members", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path)),
    responses((status = 200, body = MemberView),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "member_not_closed", body = crate::error::ErrorBody),
        (status = 422, description = "the id is not a valid id", body = crate::error::ErrorBody)))]
pub async fn erase_member(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
) -> ApiResult<Json<MemberView>> {
    caller.require(&[Role::Admin])?;
    let member = state.engine.erase_member(&external_id).await?;
    Ok(Json(view(&state, member).await?))
}

/// Everything Tessera holds about one member, whole (every page of every listing).
#[derive(Serialize, ToSchema)]
pub struct MemberExport {
    /// When the export was made, by the engine's clock, RFC 3339.
    #[schema(format = DateTime)]
    pub exported_at: String,
    /// The member, as `GET /v1/members/{member_id}` answers it.
    pub member: MemberView,
    /// The points, as `GET /v1/members/{member_id}/points` answers with its defaults: open
    /// lots only, and what expires within 30 days.
    pub points: crate::routes::points::PointsView,
    /// Every journal entry, points and stored value, oldest first.
    pub journal: Vec<crate::routes::points::EntryView>,
    /// The tier, when the programme has tiers.
    pub tier: Option<crate::routes::tiers::TierView>,
    /// The whole tier history, newest first; empty when the programme has no tiers.
    pub tier_history: Vec<crate::routes::tiers::TierHistoryView>,
    /// Every subscription the member holds or held, and those they bought for others,
    /// newest first.
    pub subscriptions: Vec<crate::routes::subscriptions::SubscriptionOut>,
    /// Every coupon issued to the member, newest first.
    pub coupons: Vec<crate::routes::quotes::CouponView>,
    /// The stored value, when the programme has it.
    pub stored_value: Option<crate::routes::quotes::StoredValueView>,
    /// Every event received for the member, oldest first.
    pub events: Vec<crate::routes::events::EventView>,
}

/// Exports everything Tessera holds about a member as one JSON document (admin).
#[utoipa::path(get, path = "/v1/members/{member_id}/export", tag = "members", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path)),
    responses((status = 200, body = MemberExport),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 422, description = "the id is not a valid id", body = crate::error::ErrorBody)))]
pub async fn export_member(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
) -> ApiResult<Json<MemberExport>> {
    use crate::extract::{
        CouponPage, EventPage, LedgerPage, Page, SubscriptionPage, TierHistoryPage,
    };
    use crate::routes::{events, points, quotes, subscriptions, tiers};
    use tessera_domain::limits::PAGE_SIZE_MAX;
    caller.require(&[Role::Admin])?;
    let path = || MemberPath(external_id.clone());
    /// Every item of a listing: its pages in turn, from the first.
    macro_rules! every_page {
        ($handler:path, $page:ident, $kind:literal) => {{
            let mut items = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = Page::from_parts(Some(PAGE_SIZE_MAX.to_string()), cursor.take(), $kind)?;
                let Json(list) =
                    $handler(State(state.clone()), caller, path(), $page(page)).await?;
                items.extend(list.items);
                match list.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            items
        }};
    }
    let root: axum::http::Uri = "/".parse().expect("a valid URI");
    let member = get_member(State(state.clone()), caller, path()).await?.0;
    let points = points::get_points(State(state.clone()), caller, path(), root.clone())
        .await?
        .0;
    let journal = every_page!(points::get_ledger, LedgerPage, "j");
    let has_tiers = state.engine.programme()?.programme.tiers.is_some();
    let (tier, tier_history) = if has_tiers {
        let tier = tiers::get_tier(State(state.clone()), caller, path())
            .await?
            .0;
        (
            Some(tier),
            every_page!(tiers::get_tier_history, TierHistoryPage, "h"),
        )
    } else {
        (None, Vec::new())
    };
    let subscriptions = every_page!(subscriptions::member_subscriptions, SubscriptionPage, "s");
    let coupons = every_page!(quotes::list_coupons, CouponPage, "c");
    let stored_value = if state.engine.programme()?.programme.stored_value.is_some() {
        Some(
            quotes::get_stored_value(State(state.clone()), caller, path())
                .await?
                .0,
        )
    } else {
        None
    };
    let events = every_page!(events::list_events, EventPage, "e");
    Ok(Json(MemberExport {
        exported_at: rfc3339(state.engine.now()),
        member,
        points,
        journal,
        tier,
        tier_history,
        subscriptions,
        coupons,
        stored_value,
        events,
    }))
}
