//! A member's tier: where they stand, what is next, what keeps it, and the history.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{encode_cursor, Caller, TierHistoryPage};
use crate::routes::{rfc3339, MemberPath};
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tessera_engine::Role;
use utoipa::ToSchema;

/// Lines of history a tier view shows.
const HISTORY_MAX: u32 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/members/{member_id}/tier", get(get_tier))
        .route(
            "/v1/members/{member_id}/tier/history",
            get(get_tier_history),
        )
}

/// The tier above the member's, and how far the member is from it.
#[derive(Serialize, ToSchema)]
pub struct NextTierView {
    /// The next tier's name.
    pub tier: String,
    /// The measure, in its window, at which that tier is reached: in the unit of the
    /// view's `measure` (score, minor units of the programme's currency spent, or points
    /// earned).
    pub threshold: i64,
    /// How much more of the measure, in the window, reaches it.
    pub missing: i64,
}

/// What the member must still gain to keep their tier at the next evaluation, which as
/// things stand would downgrade them.
#[derive(Serialize, ToSchema)]
pub struct KeepView {
    /// How much more of the measure, in the window, keeps the tier at the evaluation.
    pub needed: i64,
    /// The evaluation that judges the tier (the view's `next_evaluation`), RFC 3339.
    #[schema(format = DateTime)]
    pub by: String,
}

/// One line of a member's tier history: an upgrade, a downgrade, a requalification (the
/// tier, or a lower floor under it, earned again) or a warning before an evaluation.
#[derive(Serialize, ToSchema)]
pub struct TierHistoryView {
    /// When it happened, RFC 3339: the event's `occurred_at` for a change an event caused,
    /// the scheduled instant for an evaluation or a warning.
    #[schema(format = DateTime)]
    pub at: String,
    /// `upgrade`, `downgrade`, `requalify` or `warning`.
    pub kind: String,
    /// The member's tier before the line. Tessera always writes it; a line without it
    /// counts as the first tier.
    pub from: Option<String>,
    /// The tier after the line: for `requalify`, the tier kept or the floor earned again;
    /// for a `warning`, the tier the evaluation would give. Tessera always writes it; a
    /// line without it counts as the first tier.
    pub to: Option<String>,
    /// The measure at that moment.
    pub value: i64,
    /// For a warning: what was still needed to keep the tier, and by which evaluation.
    pub needed: Option<i64>,
    /// For a warning: the evaluation it announces, RFC 3339; absent on other kinds.
    #[schema(format = DateTime)]
    pub evaluation_at: Option<String>,
}

/// A member's tier now: where they stand on the measure, what the next tier needs, what
/// keeps this one, and the newest lines of history.
#[derive(Serialize, ToSchema)]
pub struct TierView {
    /// The member's tier now; a member starts at the first tier, and a tier the programme
    /// no longer has counts as the first.
    pub tier: String,
    /// When the member reached their tier, RFC 3339; absent while their tier has never
    /// changed (they have held the first tier since joining).
    #[schema(format = DateTime)]
    pub since: Option<String>,
    /// Until then no evaluation downgrades the member.
    #[schema(format = DateTime)]
    pub retained_until: Option<String>,
    /// `score`, `spend` or `points`: what thresholds are measured in.
    pub measure: String,
    /// The measure in its window now.
    pub value: i64,
    /// The window's first instant; absent for a lifetime window.
    #[schema(format = DateTime)]
    pub window_start: Option<String>,
    /// The score in its window now, when the programme keeps a score.
    pub score: Option<i64>,
    /// The next tier up and what reaching it takes; absent at the highest tier.
    pub next: Option<NextTierView>,
    /// Present when the next evaluation would downgrade the member as things stand.
    pub keep: Option<KeepView>,
    /// The next evaluation that may move the member's tier, RFC 3339; absent while none is
    /// scheduled (a member at the first tier when upgrades are live, or one with no
    /// measure recorded yet).
    #[schema(format = DateTime)]
    pub next_evaluation: Option<String>,
    /// The newest lines, newest first.
    pub history: Vec<TierHistoryView>,
    /// Present when there are older lines: pass as `cursor` to
    /// `GET /v1/members/{member_id}/tier/history`.
    pub history_next_cursor: Option<String>,
}

/// A page of a member's tier history.
#[derive(Serialize, ToSchema)]
pub struct TierHistoryList {
    /// Newest first.
    pub items: Vec<TierHistoryView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn history_view(h: tessera_engine::HistoryRow) -> TierHistoryView {
    let t = tessera_engine::clock::from_us;
    TierHistoryView {
        at: rfc3339(t(h.at_us)),
        kind: h.kind,
        from: h.from_tier,
        to: h.to_tier,
        value: h.measure_value,
        needed: h.needed,
        evaluation_at: h.evaluation_at_us.map(|e| rfc3339(t(e))),
    }
}

/// A member's whole tier history, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/members/{member_id}/tier/history", tag = "tiers", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "From `next_cursor` of the previous page, or `history_next_cursor` of the tier view")),
    responses((status = 200, body = TierHistoryList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_tier_history(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
    TierHistoryPage(page): TierHistoryPage,
) -> ApiResult<Json<TierHistoryList>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let (rows, next) = state
        .engine
        .tier_history_page(&external_id, page.after, page.limit)
        .await?;
    Ok(Json(TierHistoryList {
        items: rows.into_iter().map(history_view).collect(),
        next_cursor: next.map(|n| encode_cursor("h", n)),
    }))
}

/// A member's tier, score and progress.
#[utoipa::path(get, path = "/v1/members/{member_id}/tier", tag = "tiers", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path)),
    responses((status = 200, body = TierView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "tiers_disabled", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn get_tier(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
) -> ApiResult<Json<TierView>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let v = state.engine.tier_view(&external_id, HISTORY_MAX).await?;
    Ok(Json(TierView {
        tier: v.tier,
        since: v.since.map(rfc3339),
        retained_until: v.retained_until.map(rfc3339),
        measure: v.measure.to_owned(),
        value: v.value,
        window_start: v.window_start.map(rfc3339),
        score: v.score,
        next: v.next.map(|(tier, threshold, missing)| NextTierView {
            tier,
            threshold,
            missing,
        }),
        keep: v.keep.map(|(needed, by)| KeepView {
            needed,
            by: rfc3339(by),
        }),
        next_evaluation: v.next_evaluation.map(rfc3339),
        history: v.history.into_iter().map(history_view).collect(),
        history_next_cursor: v.history_next.map(|n| encode_cursor("h", n)),
    }))
}
