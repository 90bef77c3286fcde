//! A member's points: balances and lots, the journal, redemptions and adjustments.

use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::{encode_cursor, ApiJson, Caller, LedgerPage, Page};
use crate::routes::{rfc3339, MemberPath};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_domain::ledger::{Balances, Lot};
use tessera_domain::points::POINTS_MAX;
use tessera_domain::ExternalId;
use tessera_engine::{
    AdjustmentRequest, EntryRow, Operation, RedemptionRequest, RedemptionTarget, Role,
};
use utoipa::ToSchema;

/// Longest window of `expiring_within_days`.
const EXPIRING_WITHIN_DAYS_MAX: i64 = 3650;
/// Longest reason of a redemption or adjustment.
const REASON_LEN_MAX: usize = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/members/{member_id}/points", get(get_points))
        .route("/v1/members/{member_id}/ledger", get(get_ledger))
        .route(
            "/v1/members/{member_id}/points/redemptions",
            post(post_redemption),
        )
        .route(
            "/v1/members/{member_id}/points/adjustments",
            post(post_adjustment),
        )
        .route("/v1/points/expiring", get(list_expiring))
}

/// A member's three point balances, in points: pending, available, and the debt a refund
/// left.
#[derive(Serialize, ToSchema)]
pub struct BalancesView {
    /// Earned, still inside the return window.
    pub pending: i64,
    /// Spendable now.
    pub available: i64,
    /// Owed after a refund took back points already spent; repaid by the next earnings.
    pub debt: i64,
}

impl From<Balances> for BalancesView {
    fn from(b: Balances) -> Self {
        BalancesView {
            pending: b.pending,
            available: b.available,
            debt: b.debt,
        }
    }
}

/// A lot: the points one earning (an order, an activity) or one manual credit added, and
/// what is left of them. Points are spent, released and expired lot by lot.
#[derive(Serialize, ToSchema)]
pub struct LotView {
    /// The lot's number, per member.
    pub lot: i64,
    /// `order`, `activity` or `adjustment`.
    pub source: String,
    /// The order that earned the lot; null for an activity's lot and for a credit (an
    /// adjustment, or spent points that an order's refund gave back).
    pub order_id: Option<String>,
    /// `pending`, `available` or `expired`.
    pub state: String,
    /// Points the lot was earned or credited with.
    pub points: i64,
    /// Points left in the lot, after what was spent, taken back by refunds or used to
    /// repay a debt; 0 once the lot is expired.
    pub remaining: i64,
    /// When the lot was earned (the event's `occurred_at`) or credited, as an RFC 3339
    /// instant.
    #[schema(format = DateTime)]
    pub earned_at: String,
    /// When the lot leaves `pending` and its points can be spent, as an RFC 3339 instant:
    /// the end of the return window for an order's lot, `earned_at` for any other.
    #[schema(format = DateTime)]
    pub available_at: String,
    /// When what is left of the lot expires, as an RFC 3339 instant; null when the expiry
    /// policy that applied when it was earned gives lots no expiry (`never`, or
    /// `inactivity`, whose deadline is the member's `inactive_at`).
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

impl From<&Lot> for LotView {
    fn from(l: &Lot) -> Self {
        LotView {
            lot: l.no,
            source: l.source.as_str().to_owned(),
            order_id: l.order_id.clone(),
            state: l.state.as_str().to_owned(),
            points: l.points,
            remaining: l.remaining,
            earned_at: rfc3339(l.earned_at),
            available_at: rfc3339(l.available_at),
            expires_at: l.expires_at.map(rfc3339),
        }
    }
}

/// The next instant at which some of a member's points expire, and how many expire then.
#[derive(Serialize, ToSchema)]
pub struct ExpiryView {
    /// When they expire, as an RFC 3339 instant.
    #[schema(format = DateTime)]
    pub at: String,
    /// Points that expire at `at`: what is left of the lots that expire then, or every
    /// available point when `at` is the inactivity deadline.
    pub points: i64,
}

/// A member's points: the balances, what expires next and within a window, and the lots.
#[derive(Serialize, ToSchema)]
pub struct PointsView {
    /// The member's balances now, in points.
    pub balances: BalancesView,
    /// The next instant at which points expire, and how many.
    pub next_expiry: Option<ExpiryView>,
    /// Points that expire within `expiring_within_days` of now.
    pub expiring_points: i64,
    /// The window of `expiring_points`, in days from now: the `expiring_within_days` asked
    /// for, 30 by default.
    pub expiring_within_days: i64,
    /// Under an inactivity policy: when every available point expires unless the member
    /// earns or spends before.
    #[schema(format = DateTime)]
    pub inactive_at: Option<String>,
    /// Open lots (pending, or available with points left), newest first; every lot with
    /// `include=all`.
    pub lots: Vec<LotView>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointsQuery {
    expiring_within_days: Option<String>,
    include: Option<String>,
}

/// A member's points: balances, what expires when, and the lots.
#[utoipa::path(get, path = "/v1/members/{member_id}/points", tag = "points", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path),
        ("expiring_within_days" = Option<i64>, Query, minimum = 0, maximum = 3650, description = "Window of `expiring_points`, default 30"),
        ("include" = Option<String>, Query, pattern = "^(open|all)$", description = "`open` (default) or `all` lots")),
    responses((status = 200, body = PointsView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_points(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
    uri: axum::http::Uri,
) -> ApiResult<Json<PointsView>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let axum::extract::Query(q) = axum::extract::Query::<PointsQuery>::try_from_uri(&uri)
        .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    let within = within_days(q.expiring_within_days, "expiring_within_days")?;
    let all = match q.include.as_deref() {
        None | Some("open") => false,
        Some("all") => true,
        Some(_) => {
            return Err(
                ApiError::new(ErrorCode::InvalidQuery, "include must be `open` or `all`")
                    .with_field("include"),
            )
        }
    };
    let s = state
        .engine
        .points_summary(&external_id, within, all)
        .await?;
    Ok(Json(PointsView {
        balances: s.balances.into(),
        next_expiry: s.next_expiry.map(|(at, points)| ExpiryView {
            at: rfc3339(at),
            points,
        }),
        expiring_points: s.expiring_points,
        expiring_within_days: s.expiring_within_days,
        inactive_at: s.inactive_at.map(rfc3339),
        lots: s.lots.iter().map(LotView::from).collect(),
    }))
}

/// One posting of a journal entry: an amount moved in or out of one account.
#[derive(Serialize, ToSchema)]
pub struct PostingView {
    /// Points: `member:pending`, `member:available`, `member:debt`, `shop:issuance`,
    /// `shop:redeemed`, `shop:expired`, `shop:adjustment`. Stored value (money):
    /// `member:sv_principal`, `member:sv_bonus`, `shop:sv_paid_in`, `shop:sv_bonus_granted`,
    /// `shop:sv_spent`, `shop:sv_refunded`.
    pub account: String,
    /// The member's lot the points moved in or out of.
    pub lot: Option<i64>,
    /// Points moved, signed, on a points account; absent on a stored-value account. The
    /// postings of an entry sum to zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<i64>,
    /// Money moved, signed, in minor units, on a stored-value account; absent on a points
    /// account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_minor: Option<i64>,
}

/// One entry of a member's journal: a balanced movement of points or of stored value, with
/// its postings and the member's point balances after it.
#[derive(Serialize, ToSchema)]
pub struct EntryView {
    /// The entry's number, per member.
    pub entry: i64,
    /// Points: `earn`, `release`, `redeem`, `expire`, `reverse`, `adjust`, `forfeit` (an
    /// account closed). Stored value: `sv_topup`, `sv_spend`, `sv_return` (an order
    /// refunded), `sv_refund` (the balance paid back).
    pub kind: String,
    /// What the entry's postings count: `points`, or `minor` (money in minor units).
    pub unit: String,
    /// When the movement took effect.
    #[schema(format = DateTime)]
    pub at: String,
    /// When Tessera wrote it.
    #[schema(format = DateTime)]
    pub recorded_at: String,
    /// The order whose points the entry moves: set on the earn, release, expiry, reversal
    /// and forfeit of an order's lot; null on every other entry.
    pub order_id: Option<String>,
    /// The id of the event whose intake made the entry (an earning, a refund's reversal,
    /// or a release or expiry that a late event applied at once); null when no event made
    /// it (the clock's jobs, redemptions, adjustments, an order commit's payment, stored
    /// value).
    pub event_id: Option<String>,
    /// What made the entry: the redemption's or adjustment's id; the order id of an order
    /// commit's `redeem` and `sv_spend`; `refund:ORDER` for what a refund gave back; the
    /// `payment_ref` of an `sv_topup`; the refund id of an `sv_refund`.
    pub reference: Option<String>,
    /// The catalogue reward a redemption bought.
    pub reward: Option<String>,
    /// Why: the reason given with a redemption or adjustment, or one Tessera wrote
    /// (`order payment`, `points of a refunded order`, `member closed`); null on other
    /// entries.
    pub reason: Option<String>,
    /// The entry's postings, which sum to zero.
    pub postings: Vec<PostingView>,
    /// The member's balances after this entry.
    pub balances: BalancesView,
}

impl From<&EntryRow> for EntryView {
    fn from(e: &EntryRow) -> Self {
        let t = tessera_engine::clock::from_us;
        EntryView {
            entry: e.entry_no,
            kind: e.kind.clone(),
            unit: if e
                .postings
                .iter()
                .any(|p| tessera_engine::stored_value::is_money_account(&p.account))
            {
                "minor"
            } else {
                "points"
            }
            .to_owned(),
            at: rfc3339(t(e.at_us)),
            recorded_at: rfc3339(t(e.recorded_at_us)),
            order_id: e.order_id.clone(),
            event_id: e.event_id.clone(),
            reference: e.reference.clone(),
            reward: e.reward_id.clone(),
            reason: e.reason.clone(),
            postings: e
                .postings
                .iter()
                .map(|p| {
                    let money = tessera_engine::stored_value::is_money_account(&p.account);
                    PostingView {
                        account: p.account.clone(),
                        lot: p.lot_no,
                        points: (!money).then_some(p.amount),
                        amount_minor: money.then_some(p.amount),
                    }
                })
                .collect(),
            balances: BalancesView {
                pending: e.pending_after,
                available: e.available_after,
                debt: e.debt_after,
            },
        }
    }
}

/// A page of a member's journal, oldest entry first.
#[derive(Serialize, ToSchema)]
pub struct LedgerList {
    /// The entries of this page, by entry number, at most `limit`.
    pub items: Vec<EntryView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A member's journal: every movement of points, oldest first, with its postings.
#[utoipa::path(get, path = "/v1/members/{member_id}/ledger", tag = "points", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "From `next_cursor` of the previous page")),
    responses((status = 200, body = LedgerList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_ledger(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
    LedgerPage(page): LedgerPage,
) -> ApiResult<Json<LedgerList>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let (rows, next) = state
        .engine
        .ledger_page(&external_id, page.after.unwrap_or(0), page.limit)
        .await?;
    Ok(Json(LedgerList {
        items: rows.iter().map(EntryView::from).collect(),
        next_cursor: next.map(|n| encode_cursor("j", n)),
    }))
}

/// A redemption: points spent on a catalogue reward or as a number of points, exactly one
/// of `points` and `reward`.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "red-1", "reward": "coffee", "reason": "Coffee voucher at the shop counter"}))]
pub struct RedemptionIn {
    /// Your id of this redemption: the same id again replays the first answer.
    #[schema(value_type = crate::schema::IdText)]
    pub id: String,
    /// A number of points to spend; give this or `reward`.
    #[schema(minimum = 1, maximum = 1_000_000_000_000i64)]
    pub points: Option<i64>,
    /// A reward of the programme's catalogue; give this or `points`.
    #[schema(value_type = Option<crate::schema::NameText>)]
    pub reward: Option<String>,
    /// What the points were spent on, for the journal.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: Option<String>,
}

/// A manual adjustment: points credited to or debited from a member, with the reason.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "adj-1", "points": 200, "reason": "Goodwill for a late delivery"}))]
pub struct AdjustmentIn {
    /// Your id of this adjustment: the same id again replays the first answer.
    #[schema(value_type = crate::schema::IdText)]
    pub id: String,
    /// Points to credit (positive) or debit (negative); not zero.
    #[schema(minimum = -1_000_000_000_000i64, maximum = 1_000_000_000_000i64)]
    pub points: i64,
    /// Why, for the journal: required.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// A lot that an operation drew points from or credited, and how many.
#[derive(Serialize, ToSchema)]
pub struct LotMove {
    /// The lot's number, per member.
    pub lot: i64,
    /// Points drawn from the lot (a redemption or a debit), or put in it by a credit (less
    /// any debt the credit repaid); never negative.
    pub points: i64,
}

/// A redemption or an adjustment as recorded: the journal entry it made, the lots it moved
/// and the balances after it. The same id and body again answer the same.
#[derive(Serialize, ToSchema)]
pub struct OperationView {
    /// Your id of the operation, as sent.
    pub id: String,
    /// `redemption` or `adjustment`.
    pub kind: String,
    /// The journal entry it made.
    pub entry: i64,
    /// Spent (redemption), or credited (positive) / debited (negative) (adjustment).
    pub points: i64,
    /// The catalogue reward a redemption bought; null for a redemption of a number of
    /// points and for an adjustment.
    pub reward: Option<String>,
    /// The points' money value at the programme's redemption rate, in minor units.
    pub value_minor: Option<i64>,
    /// The reason given, trimmed; null when a redemption gave none.
    pub reason: Option<String>,
    /// The lots drawn, in the order they were drawn; or the lot credited.
    pub lots: Vec<LotMove>,
    /// When the operation took effect, as an RFC 3339 instant.
    #[schema(format = DateTime)]
    pub at: String,
    /// The member's balances right after.
    pub balances: BalancesView,
}

fn operation_reply(op: Operation) -> (StatusCode, Json<OperationView>) {
    let status = if op.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (
        status,
        Json(OperationView {
            id: op.id,
            kind: op.kind.to_owned(),
            entry: op.entry_no,
            points: op.points,
            reward: op.reward,
            value_minor: op.value_minor,
            reason: op.reason,
            lots: op
                .lots
                .into_iter()
                .map(|(lot, points)| LotMove { lot, points })
                .collect(),
            at: rfc3339(op.at),
            balances: op.balances.into(),
        }),
    )
}

fn reason(text: Option<String>, required: bool) -> Result<Option<String>, ApiError> {
    match text {
        None if required => {
            Err(ApiError::new(ErrorCode::InvalidField, "a reason is required").with_field("reason"))
        }
        None => Ok(None),
        Some(r) => {
            let trimmed = r.trim();
            if trimmed.is_empty() {
                Err(
                    ApiError::new(ErrorCode::InvalidField, "reason must not be empty")
                        .with_field("reason"),
                )
            } else if trimmed.chars().count() > REASON_LEN_MAX {
                Err(ApiError::new(
                    ErrorCode::StringTooLong,
                    format!("reason is longer than {REASON_LEN_MAX} characters"),
                )
                .with_field("reason"))
            } else if trimmed.chars().any(char::is_control) {
                Err(ApiError::new(
                    ErrorCode::InvalidField,
                    "reason must not contain control characters",
                )
                .with_field("reason"))
            } else {
                Ok(Some(trimmed.to_owned()))
            }
        }
    }
}

fn operation_id(id: String) -> Result<ExternalId, ApiError> {
    ExternalId::parse(id).map_err(|e| ApiError::from(e.within("id")))
}

/// Spends points: a number of them, or a catalogue reward. Refused whole, with nothing
/// spent, when the balance or the reward's stock is short. 201 the first time; 200 with
/// the first answer for the same id and body.
#[utoipa::path(post, path = "/v1/members/{member_id}/points/redemptions", tag = "points", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    request_body = RedemptionIn,
    responses((status = 201, body = OperationView),
        (status = 200, description = "The same id and body as before: the first answer", body = OperationView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "insufficient_points, reward_out_of_stock, member_closed, member_frozen, operation_conflict, points_disabled", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_redemption(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
    ApiJson(body): ApiJson<RedemptionIn>,
) -> ApiResult<(StatusCode, Json<OperationView>)> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let id = operation_id(body.id)?;
    let target = match (body.points, body.reward) {
        (Some(p), None) => {
            if !(1..=POINTS_MAX).contains(&p) {
                return Err(ApiError::new(
                    ErrorCode::InvalidField,
                    format!("points must be between 1 and {POINTS_MAX}"),
                )
                .with_field("points"));
            }
            RedemptionTarget::Points(p)
        }
        (None, Some(r)) => {
            let r =
                tessera_domain::Tag::parse(r).map_err(|e| ApiError::from(e.within("reward")))?;
            RedemptionTarget::Reward(r.as_str().to_owned())
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                "give either `points` or `reward`, not both",
            )
            .with_field("points"))
        }
        (None, None) => {
            return Err(
                ApiError::new(ErrorCode::InvalidField, "give either `points` or `reward`")
                    .with_field("points"),
            )
        }
    };
    let request = RedemptionRequest {
        id,
        target,
        reason: reason(body.reason, false)?,
    };
    Ok(operation_reply(
        state.engine.redeem(&external_id, request).await?,
    ))
}

/// Credits or debits points by hand, with a reason (admin only). A credit is a new
/// available lot under the programme's expiry; a debit draws lots like a redemption and
/// is refused whole when the balance is short.
#[utoipa::path(post, path = "/v1/members/{member_id}/points/adjustments", tag = "points", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    request_body = AdjustmentIn,
    responses((status = 201, body = OperationView),
        (status = 200, description = "The same id and body as before: the first answer", body = OperationView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "insufficient_points, member_closed, operation_conflict, points_disabled", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_adjustment(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
    ApiJson(body): ApiJson<AdjustmentIn>,
) -> ApiResult<(StatusCode, Json<OperationView>)> {
    caller.require(&[Role::Admin])?;
    let id = operation_id(body.id)?;
    if body.points == 0 || body.points.unsigned_abs() > POINTS_MAX.unsigned_abs() {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("points must be non-zero and at most {POINTS_MAX} either way"),
        )
        .with_field("points"));
    }
    let request = AdjustmentRequest {
        id,
        points: body.points,
        reason: reason(Some(body.reason), true)?.unwrap_or_default(),
    };
    Ok(operation_reply(
        state.engine.adjust(&external_id, request).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpiringQuery {
    within_days: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// A member with points expiring within the window: what a reminder needs.
#[derive(Serialize, ToSchema)]
pub struct ExpiringMember {
    /// The member's id (`external_id`).
    pub member_id: String,
    /// Points that expire within the window.
    pub points: i64,
    /// The first instant at which some of them expire.
    #[schema(format = DateTime)]
    pub first_expiry: String,
}

/// A page of the members whose points expire within a window.
#[derive(Serialize, ToSchema)]
pub struct ExpiringList {
    /// The window, in days from now: the `within_days` asked for, 30 by default.
    pub within_days: i64,
    /// The members of this page, in a stable order (Tessera's own member numbering), at
    /// most `limit`.
    pub items: Vec<ExpiringMember>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn within_days(raw: Option<String>, field: &str) -> Result<i64, ApiError> {
    match raw {
        None => Ok(30),
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if (0..=EXPIRING_WITHIN_DAYS_MAX).contains(&n) => Ok(n),
            _ => Err(ApiError::new(
                ErrorCode::InvalidQuery,
                format!("{field} must be a whole number between 0 and {EXPIRING_WITHIN_DAYS_MAX}"),
            )
            .with_field(field)),
        },
    }
}

/// Every member with points expiring within `within_days` (default 30), by member: for
/// reminders ("N points expire on ..."), a page at a time.
#[utoipa::path(get, path = "/v1/points/expiring", tag = "points", security(("api_key" = [])),
    params(("within_days" = Option<i64>, Query, minimum = 0, maximum = 3650, description = "Window, default 30"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "From `next_cursor` of the previous page")),
    responses((status = 200, body = ExpiringList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list_expiring(
    State(state): State<AppState>,
    caller: Caller,
    uri: axum::http::Uri,
) -> ApiResult<Json<ExpiringList>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let axum::extract::Query(q) = axum::extract::Query::<ExpiringQuery>::try_from_uri(&uri)
        .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    let within = within_days(q.within_days, "within_days")?;
    let page = Page::from_parts(q.limit, q.cursor, "x")?;
    let (rows, next) = state
        .engine
        .expiring_points(within, page.after.unwrap_or(0), page.limit)
        .await?;
    Ok(Json(ExpiringList {
        within_days: within,
        items: rows
            .into_iter()
            .map(|(external_id, points, at)| ExpiringMember {
                member_id: external_id,
                points,
                first_expiry: rfc3339(at),
            })
            .collect(),
        next_cursor: next.map(|n| encode_cursor("x", n)),
    }))
}
