//! Referral (自来水): a member's code, whom they brought and what each referral earned;
//! a code given after joining; the programme's referral figures.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{encode_cursor, ApiJson, Caller, ReferralPage};
use crate::routes::{rfc3339, MemberPath};
use crate::AppState;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_domain::ReferralCode;
use tessera_engine::referrals::{Referrals, RewardView};
use tessera_engine::Role;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/members/{member_id}/referrals", get(get_referrals))
        .route("/v1/members/{member_id}/referrer", post(post_referrer))
        .route("/v1/referrals", get(get_referral_figures))
}

/// One reward of a referral and where it stands.
#[derive(Serialize, ToSchema)]
pub struct ReferralRewardView {
    /// The reward's id in the programme's `[[referral.rewards]]`.
    pub reward_id: String,
    /// What set it off: `join`, `first_order` or `first_plan`.
    pub trigger: String,
    /// Who it goes to: `referrer` or `referee`.
    pub to: String,
    /// What it gives: `points`, `coupon`, `stored_value` or `plan_days`.
    pub kind: String,
    /// How much: points, minor units of stored value, 1 coupon, or days of the plan.
    pub amount: i64,
    /// The coupon template, for a coupon reward.
    pub coupon: Option<String>,
    /// The plan, for a `plan_days` reward.
    pub plan: Option<String>,
    /// `pending` (waiting for `due_at`), `granted`, `capped` (the referrer had reached
    /// the programme's cap), `canceled` (its order or plan was refunded before it was
    /// due, or the beneficiary left), `clawback_due` (given, then its order or plan was
    /// refunded: what the member does not hold yet stays owed and is taken again at
    /// `due_at`) or `clawed_back` (taken back as far as it could come back).
    pub state: String,
    /// The order id or subscription id that set it off; absent for a join.
    pub source: Option<String>,
    /// When it is (or was) due, RFC 3339.
    #[schema(format = DateTime)]
    pub due_at: String,
    /// When it was granted, capped or canceled, RFC 3339.
    #[schema(format = DateTime)]
    pub settled_at: Option<String>,
    /// What was taken back of it (points, minor units, 1 coupon voided, or whole days of
    /// the plan not yet used): at most what the member still held.
    pub clawed_back: i64,
}

/// A member the member brought, with the rewards of that referral.
#[derive(Serialize, ToSchema)]
pub struct RefereeView {
    /// The referee's member id.
    pub member_id: String,
    /// When they gave the code, RFC 3339.
    #[schema(format = DateTime)]
    pub referred_at: Option<String>,
    /// The referral's rewards, to either side.
    pub rewards: Vec<ReferralRewardView>,
}

/// Who brought the member.
#[derive(Serialize, ToSchema)]
pub struct ReferredByView {
    /// The referrer's member id.
    pub member_id: String,
    /// When the member gave the code, RFC 3339.
    #[schema(format = DateTime)]
    pub at: String,
}

/// A member's referrals: their own code, who brought them, and a page of whom they
/// brought, oldest first.
#[derive(Serialize, ToSchema)]
pub struct ReferralsView {
    /// The member's id.
    pub member_id: String,
    /// The member's own code, for others to join with: 8 characters of Crockford's base
    /// 32, stable for the member's life; absent for a closed member, who brings nobody.
    pub code: Option<String>,
    /// Who brought this member; absent when nobody did.
    pub referred_by: Option<ReferredByView>,
    /// The rewards of this member's own referral (to the referrer or to this member).
    pub rewards: Vec<ReferralRewardView>,
    /// Members this member brought, in the order they joined.
    pub referred: Vec<RefereeView>,
    /// Pass as `cursor` for the next page of `referred`; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A referrer's code given by a member who exists already.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "7K3M-9QXB"}))]
pub struct ReferrerIn {
    /// The referrer's code; case, spaces and hyphens do not matter, and `O`, `I`, `L`
    /// read as `0`, `1`, `1`.
    #[schema(value_type = crate::schema::NameText)]
    pub code: String,
}

/// Rewards of one kind in one state.
#[derive(Serialize, ToSchema)]
pub struct RewardTotalView {
    /// `points`, `coupon`, `stored_value` or `plan_days`.
    pub kind: String,
    /// A reward state (see `ReferralRewardView.state`).
    pub state: String,
    /// How many rewards.
    pub rewards: i64,
    /// Their amounts together: points, minor units, or coupons.
    pub amount: i64,
    /// What was taken back of them.
    pub clawed_back: i64,
}

/// Referral across the programme: members brought, how many of each side came to pay for
/// a plan, and what rewards cost.
#[derive(Serialize, ToSchema)]
pub struct ReferralFiguresView {
    /// Members in all.
    pub members: i64,
    /// Members who joined with a referrer's code (under the `[referral]` section).
    pub referred_members: i64,
    /// Referred members who paid for a term of any plan.
    pub referred_paying: i64,
    /// Members not referred who paid for a term of any plan.
    pub unreferred_paying: i64,
    /// Per reward kind and state.
    pub rewards: Vec<RewardTotalView>,
}

/// A refusal of a referral code, naming the request's field that carried it.
pub fn at_code(e: tessera_engine::EngineError, field: &str) -> crate::error::ApiError {
    use tessera_engine::EngineError;
    let names_code = matches!(
        e,
        EngineError::ReferralCodeUnknown(_) | EngineError::ReferralRefused(_)
    );
    let err = crate::error::ApiError::from(e);
    if names_code {
        err.with_field(field)
    } else {
        err
    }
}

fn reward_view(r: RewardView) -> ReferralRewardView {
    let (coupon, plan) = match r.kind.as_str() {
        "coupon" => (r.item.clone(), None),
        "plan_days" => (None, r.item.clone()),
        _ => (None, None),
    };
    ReferralRewardView {
        reward_id: r.reward_id,
        trigger: r.trigger,
        to: r.to.to_owned(),
        kind: r.kind,
        amount: r.amount,
        coupon,
        plan,
        state: r.state.as_str().to_owned(),
        source: r.source_ref,
        due_at: rfc3339(r.due_at),
        settled_at: r.settled_at.map(rfc3339),
        clawed_back: r.clawed_back,
    }
}

fn referrals_view(r: Referrals) -> ReferralsView {
    ReferralsView {
        member_id: r.member_id,
        code: r.code,
        referred_by: r.referred_by.map(|(member_id, at)| ReferredByView {
            member_id,
            at: rfc3339(at),
        }),
        rewards: r.own_rewards.into_iter().map(reward_view).collect(),
        referred: r
            .referred
            .into_iter()
            .map(|x| RefereeView {
                member_id: x.member_id,
                referred_at: x.referred_at.map(rfc3339),
                rewards: x.rewards.into_iter().map(reward_view).collect(),
            })
            .collect(),
        next_cursor: r.next_after.map(|n| encode_cursor("r", n)),
    }
}

/// A member's referral code, who brought them, and whom they brought with each
/// referral's rewards. A member who joined before codes were given gets theirs now.
#[utoipa::path(get, path = "/v1/members/{member_id}/referrals", tag = "members", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Referees a page: 1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "From `next_cursor` of the previous page")),
    responses((status = 200, body = ReferralsView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_referrals(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
    ReferralPage(page): ReferralPage,
) -> ApiResult<Json<ReferralsView>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let r = state
        .engine
        .referrals(&external_id, page.after, page.limit)
        .await?;
    Ok(Json(referrals_view(r)))
}

/// A referrer's code given after joining: taken only within the programme's
/// `referral.late_days` of joining (0 by default: only at sign-up, `POST /v1/members`
/// with `referral_code`), and never when the member has a referrer.
#[utoipa::path(post, path = "/v1/members/{member_id}/referrer", tag = "members", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path)),
    request_body = ReferrerIn,
    responses((status = 200, description = "The member's referrals, with the join's rewards", body = ReferralsView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "referral_disabled, referral_second_referrer, referral_code_unusable, referral_too_late, member_closed", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "referral_code_unknown, referral_self, invalid_field", body = ErrorBody)))]
pub async fn post_referrer(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
    ApiJson(body): ApiJson<ReferrerIn>,
) -> ApiResult<Json<ReferralsView>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let code = ReferralCode::parse(body.code).map_err(|e| e.within("code"))?;
    let r = state
        .engine
        .attach_referrer(&external_id, &code)
        .await
        .map_err(|e| at_code(e, "code"))?;
    Ok(Json(referrals_view(r)))
}

/// Referral across the programme (admin): members brought, paying members among the
/// referred and the others, and rewards by kind and state.
#[utoipa::path(get, path = "/v1/referrals", tag = "members", security(("api_key" = [])),
    responses((status = 200, body = ReferralFiguresView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn get_referral_figures(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<ReferralFiguresView>> {
    caller.require(&[Role::Admin])?;
    let f = state.engine.referral_figures().await?;
    Ok(Json(ReferralFiguresView {
        members: f.members,
        referred_members: f.referred_members,
        referred_paying: f.referred_paying,
        unreferred_paying: f.unreferred_paying,
        rewards: f
            .rewards
            .into_iter()
            .map(
                |(kind, state, rewards, amount, clawed_back)| RewardTotalView {
                    kind,
                    state,
                    rewards,
                    amount,
                    clawed_back,
                },
            )
            .collect(),
    }))
}
