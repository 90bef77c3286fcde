//! Conversion offers: who an offer targets now (the domain's `offers::ConversionOffer`
//! over the member and their statistics), exposures (an explicit call, and the quote's
//! upsell when it shows an offer), acceptances (the purchase that used the offer, or the
//! coupon it gave) and the counts of both per offer.

use crate::clock::{from_us, to_us};
use crate::quote::Holdings;
use crate::{ActiveProgramme, Engine, EngineError, Result};
use jiff::Timestamp;
use tessera_domain::offers::{
    ConversionOffer, MemberStats, OfferKind, OfferRefusal, STATS_DAYS_MAX,
};
use tessera_domain::ExternalId;
use tessera_store::{CouponRow, OfferAcceptanceRow, OfferCounts};

/// Exposures a quote noted of one offer to one member: the first and last instant shown
/// (microseconds) and the times shown.
pub(crate) type Noted = (i64, i64, i64);

/// An offer as a member may take it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferShown {
    pub id: String,
    pub plan: String,
    pub kind: OfferKind,
    pub ends_at: Timestamp,
}

impl OfferShown {
    fn of(o: &ConversionOffer) -> OfferShown {
        OfferShown {
            id: o.id.clone(),
            plan: o.plan.clone(),
            kind: o.kind.clone(),
            ends_at: o.ends_at,
        }
    }
}

/// An offer with what it did.
#[derive(Debug, Clone)]
pub struct OfferReport {
    pub offer: ConversionOffer,
    pub open: bool,
    pub counts: OfferCounts,
}

/// Where an exposure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExposureSource {
    /// `POST /v1/offers/{id}/exposures`.
    Call,
    /// The quote's upsell showed it.
    Quote,
}

impl ExposureSource {
    fn as_str(self) -> &'static str {
        match self {
            ExposureSource::Call => "call",
            ExposureSource::Quote => "quote",
        }
    }
}

impl Engine {
    /// A member's statistics now, as offers' conditions read them.
    pub(crate) async fn member_stats(&self, h: &Holdings, now: Timestamp) -> Result<MemberStats> {
        let member_id = h.state.member_id();
        let since = now
            .checked_sub(jiff::SignedDuration::from_hours(24 * STATS_DAYS_MAX))
            .unwrap_or(Timestamp::MIN);
        let orders: Vec<(Timestamp, i64)> = self
            .store
            .member_orders_since(member_id, to_us(since))
            .await?
            .into_iter()
            .map(|(at, net)| (from_us(at), net))
            .collect();
        let last = match orders.last() {
            Some((at, _)) => Some(*at),
            None => self
                .store
                .member_last_order_at(member_id)
                .await?
                .map(from_us),
        };
        let mut ever = h.holding.plans.clone();
        for p in h.paid_plans.iter().chain(&h.trialed_plans) {
            if !ever.contains(p) {
                ever.push(p.clone());
            }
        }
        Ok(MemberStats::at(
            now,
            &orders,
            last,
            h.holding.plans.clone(),
            ever,
        ))
    }

    /// The offers open now that target the member.
    pub(crate) async fn offers_for(
        &self,
        programme: &ActiveProgramme,
        h: &Holdings,
        now: Timestamp,
    ) -> Result<Vec<OfferShown>> {
        let open: Vec<&ConversionOffer> = programme
            .programme
            .offers
            .iter()
            .filter(|o| o.is_open(now))
            .collect();
        if open.is_empty() {
            return Ok(Vec::new());
        }
        let stats = self.member_stats(h, now).await?;
        let accepted = self.store.offer_acceptances_of(h.state.member_id()).await?;
        Ok(open
            .into_iter()
            .filter(|o| {
                let history = o.history_of(&accepted, &h.trialed_plans, &h.paid_plans);
                o.refusal(now, &h.value, &stats, history).is_none()
            })
            .map(OfferShown::of)
            .collect())
    }

    /// The offers a member may take now.
    pub async fn member_offers(&self, member: &ExternalId) -> Result<Vec<OfferShown>> {
        let programme = self.programme()?;
        let now = self.now();
        // A closed member may take nothing: the answer is that, not a refusal.
        if self.member(member).await?.status == crate::MemberStatus::Closed {
            return Ok(Vec::new());
        }
        let h = self.cached_holdings(member, now).await?;
        self.offers_for(&programme, &h, now).await
    }

    /// Checks that a member may take an offer now, for a purchase of `plan` (or the
    /// claim of a coupon offer when `plan` is `None`); the offer.
    pub(crate) async fn offer_for(
        &self,
        programme: &ActiveProgramme,
        offer_id: &str,
        member: &ExternalId,
        plan: Option<&str>,
    ) -> Result<ConversionOffer> {
        let offer = programme
            .programme
            .offer(offer_id)
            .ok_or_else(|| EngineError::OfferNotFound(offer_id.to_owned()))?
            .clone();
        if let Some(plan) = plan {
            if offer.plan != plan {
                return Err(EngineError::OfferRefused(OfferRefusal::Mismatch(format!(
                    "offer `{offer_id}` is for plan `{}`, not `{plan}`",
                    offer.plan
                ))));
            }
        }
        let now = self.now();
        let h = self.cached_holdings(member, now).await?;
        let stats = self.member_stats(&h, now).await?;
        let accepted = self.store.offer_acceptances_of(h.state.member_id()).await?;
        let history = offer.history_of(&accepted, &h.trialed_plans, &h.paid_plans);
        if let Some(refusal) = offer.refusal(now, &h.value, &stats, history) {
            return Err(EngineError::OfferRefused(refusal));
        }
        Ok(offer)
    }

    /// The offer a purchase takes, checked: it exists, is for the plan, is open, targets
    /// the member, and gives what the purchase asks for (a trial, or a paid first term).
    pub(crate) async fn offer_of_purchase(
        &self,
        programme: &ActiveProgramme,
        req: &crate::subscriptions::SubscribeRequest,
    ) -> Result<Option<ConversionOffer>> {
        use crate::subscriptions::Purchase;
        let Some(id) = &req.offer else {
            return Ok(None);
        };
        if req.gift_to.is_some() {
            return Err(EngineError::Field(tessera_domain::FieldError::invalid(
                "offer",
                "an offer is taken by the member it targets, not with a gift",
            )));
        }
        let offer = self
            .offer_for(programme, id, &req.member, Some(&req.plan))
            .await?;
        let mismatch = |why: String| Err(EngineError::OfferRefused(OfferRefusal::Mismatch(why)));
        match (&offer.kind, &req.purchase) {
            (OfferKind::Trial { .. }, Purchase::Trial)
            | (OfferKind::FirstTermPrice { .. }, Purchase::Paid { .. }) => Ok(Some(offer)),
            (OfferKind::Coupon { .. }, _) => mismatch(format!(
                "offer `{id}` gives a coupon: take it with POST /v1/offers/{id}/acceptances"
            )),
            (OfferKind::Trial { .. }, Purchase::Paid { .. }) => {
                mismatch(format!("offer `{id}` gives a trial: ask for `trial: true`"))
            }
            (OfferKind::FirstTermPrice { .. }, Purchase::Trial) => mismatch(format!(
                "offer `{id}` prices a paid term: give the `payment_ref` of the payment"
            )),
        }
    }

    /// Records that a member was shown an offer they may take (`POST .../exposures`).
    pub async fn expose_offer(&self, offer_id: &str, member: &ExternalId) -> Result<OfferShown> {
        let programme = self.programme()?;
        let offer = self.offer_for(&programme, offer_id, member, None).await?;
        let mut tx = self.store.begin().await?;
        let state = self.lock_members(&mut tx, &[member]).await?.remove(0);
        Self::refuse_closed(std::slice::from_ref(&state))?;
        let now = to_us(self.now());
        tx.offer_exposure_record(
            state.member_id(),
            offer_id,
            ExposureSource::Call.as_str(),
            (now, now),
            1,
        )
        .await?;
        tx.commit().await?;
        Ok(OfferShown::of(&offer))
    }

    /// Notes the offers a quote's upsell showed; the clock's jobs write them
    /// (`write_quote_exposures`), so that a quote writes nothing.
    pub(crate) fn note_quote_exposures(&self, member_id: i64, offers: &[String]) {
        let now = to_us(self.now());
        let mut noted = self
            .quote_exposures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for id in offers {
            let e = noted
                .entry((member_id, id.clone()))
                .or_insert((now, now, 0));
            e.1 = now;
            e.2 += 1;
        }
    }

    /// Writes the exposures quotes noted since the last run, in one transaction; how many
    /// (member, offer) pairs. Noted exposures are lost if the process stops first: they
    /// are the shop's analytics, not its books.
    pub(crate) async fn write_quote_exposures(&self) -> Result<u64> {
        let noted: Vec<((i64, String), Noted)> = {
            let mut noted = self
                .quote_exposures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            noted.drain().collect()
        };
        if noted.is_empty() {
            return Ok(0);
        }
        let mut tx = self.store.begin().await?;
        for ((member_id, offer_id), (first, last, count)) in &noted {
            tx.offer_exposure_record(
                *member_id,
                offer_id,
                ExposureSource::Quote.as_str(),
                (*first, *last),
                *count,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(noted.len() as u64)
    }

    /// Takes a coupon offer: issues its coupon once per member (a second call answers the
    /// first coupon) and records the acceptance.
    pub async fn accept_coupon_offer(
        &self,
        offer_id: &str,
        member: &ExternalId,
    ) -> Result<(CouponRow, bool)> {
        let programme = self.programme()?;
        let issue_id = format!("offer:{offer_id}");
        // A second claim answers the first, even once the window has closed.
        let mut tx = self.store.begin().await?;
        let state = self.lock_members(&mut tx, &[member]).await?.remove(0);
        if let Some(a) = tx.offer_acceptance_get(state.member_id(), offer_id).await? {
            let first = tx
                .coupons_by_issue(state.member_id(), &issue_id)
                .await?
                .into_iter()
                .find(|c| Some(c.coupon_no) == a.coupon_no)
                .ok_or_else(|| {
                    EngineError::OfferRefused(OfferRefusal::Mismatch(format!(
                        "offer `{offer_id}` was taken with a purchase, not as a coupon"
                    )))
                })?;
            return Ok((first, true));
        }
        // Checked under the member's lock, so that a concurrent claim waits and then
        // answers this one's coupon.
        let offer = self.offer_for(&programme, offer_id, member, None).await?;
        let OfferKind::Coupon { template } = &offer.kind else {
            return Err(EngineError::OfferRefused(OfferRefusal::Mismatch(format!(
                "offer `{offer_id}` gives a {}: it is taken by buying plan `{}` with `offer`",
                offer.kind.name(),
                offer.plan
            ))));
        };
        let t = programme
            .programme
            .coupon(template)
            .ok_or_else(|| EngineError::UnknownCoupon(template.clone()))?;
        let now = self.now();
        Self::refuse_closed(std::slice::from_ref(&state))?;
        let member_id = state.member_id();
        let to_issue = crate::quote::coupon_to_issue(
            member_id,
            t,
            &format!("offer:{offer_id}"),
            issue_id,
            now,
            &programme.programme.timezone,
        );
        let coupon = tx.coupons_issue(&[to_issue]).await?.remove(0);
        self.accepted(
            &mut tx,
            member_id,
            offer_id,
            None,
            Some(coupon.coupon_no),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok((coupon, false))
    }

    /// Records an acceptance inside the transaction of what it bought (and an exposure, for
    /// a member who took the offer without being shown it through Tessera).
    pub(crate) async fn accepted(
        &self,
        tx: &mut tessera_store::Tx,
        member_id: i64,
        offer_id: &str,
        subscription_id: Option<i64>,
        coupon_no: Option<i64>,
        now: Timestamp,
    ) -> Result<()> {
        let first = tx
            .offer_acceptance_insert(&OfferAcceptanceRow {
                member_id,
                offer_id: offer_id.to_owned(),
                at_us: to_us(now),
                subscription_id,
                coupon_no,
            })
            .await?;
        if !first {
            return Err(EngineError::OfferAlreadyUsed(offer_id.to_owned()));
        }
        tx.offer_exposure_ensure(member_id, offer_id, "acceptance", to_us(now))
            .await?;
        Ok(())
    }

    /// An offer and what it did.
    pub async fn offer_report(&self, offer_id: &str) -> Result<OfferReport> {
        let programme = self.programme()?;
        let offer = programme
            .programme
            .offer(offer_id)
            .ok_or_else(|| EngineError::OfferNotFound(offer_id.to_owned()))?
            .clone();
        Ok(OfferReport {
            open: offer.is_open(self.now()),
            counts: self.store.offer_counts(offer_id).await?,
            offer,
        })
    }
}
