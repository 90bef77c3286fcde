//! Stored value: top-ups confirmed by the shop's payment, spending at commit, giving back
//! on order refunds, and refunding the balance (principal only). Every movement is an entry
//! of the member's journal, on the stored-value accounts, in minor units of money:
//!
//! - top-up: `member:sv_principal` +paid, `member:sv_bonus` +bonus,
//!   `shop:sv_paid_in` −paid, `shop:sv_bonus_granted` −bonus;
//! - spend (an order): `member:sv_*` −drawn, `shop:sv_spent` +drawn;
//! - give back (an order refund): the reverse of a spend, in proportion;
//! - refund of the balance: `member:sv_principal` −p, `shop:sv_refunded` +p, and the bonus
//!   forfeited: `member:sv_bonus` −b, `shop:sv_bonus_granted` +b.

use crate::answers::ClientRequest;
use crate::clock::to_us;
use crate::points::MemberState;
use crate::{Engine, EngineError, Result};
use jiff::Timestamp;
use tessera_domain::limits::STORED_VALUE_MAX_MINOR;
use tessera_domain::ExternalId;
use tessera_store::{EntryRow, PostingRow, StoredValueRow, TopUpRow, Tx};

pub const PRINCIPAL: &str = "member:sv_principal";

/// Whether a journal account counts money (stored value, in minor units) rather than
/// points. An entry's postings are all of one unit.
pub fn is_money_account(account: &str) -> bool {
    account.starts_with("member:sv_") || account.starts_with("shop:sv_")
}
pub const BONUS: &str = "member:sv_bonus";

/// A stored-value movement as an entry of the member's journal; takes the next entry number.
pub(crate) fn sv_entry(
    state: &mut MemberState,
    kind: &str,
    at: Timestamp,
    reference: Option<&str>,
    postings: &[(&str, i64)],
) -> EntryRow {
    let no = state.row.account.next_entry_no;
    state.row.account.next_entry_no += 1;
    state.dirty = true;
    debug_assert_eq!(postings.iter().map(|(_, a)| a).sum::<i64>(), 0);
    EntryRow {
        member_id: state.member_id(),
        entry_no: no,
        kind: kind.to_owned(),
        at_us: to_us(at),
        recorded_at_us: to_us(at),
        order_id: None,
        event_id: None,
        reference: reference.map(str::to_owned),
        reward_id: None,
        reason: None,
        pending_after: state.row.account.pending,
        available_after: state.row.account.available,
        debt_after: state.row.account.debt,
        postings: postings
            .iter()
            .filter(|(_, a)| *a != 0)
            .map(|(account, amount)| PostingRow {
                account: (*account).to_owned(),
                lot_no: None,
                amount: *amount,
            })
            .collect(),
    }
}

/// Writes stored-value entries, the new balance and the member's entry counter.
pub(crate) async fn write_sv(
    tx: &mut Tx,
    state: &MemberState,
    balance: StoredValueRow,
    entries: &[EntryRow],
) -> Result<()> {
    tx.entries_insert(entries).await?;
    tx.stored_value_put(state.member_id(), balance).await?;
    tx.accounts_put_many(&[&state.row.account]).await?;
    Ok(())
}

/// A top-up as answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUp {
    pub payment_ref: String,
    pub offer: String,
    pub principal: i64,
    pub bonus: i64,
    pub entry_no: i64,
    pub balance: StoredValueRow,
    pub replayed: bool,
}

impl Engine {
    /// A top-up of an offer, confirmed by the shop's payment; the same `payment_ref` again
    /// answers as the first time.
    pub async fn top_up(
        &self,
        member: &ExternalId,
        offer: &str,
        payment_ref: &ExternalId,
    ) -> Result<TopUp> {
        let programme = self.programme()?;
        let request = ClientRequest::new(
            "topup",
            payment_ref.as_str(),
            &serde_json::json!({ "offer": offer }),
        );
        let mut tx = self.store.begin().await?;
        let mut state = self.lock_members(&mut tx, &[member]).await?.remove(0);
        // A retry answers as the first time, even if the offer left the programme since.
        if let Some(t) = tx.topup_get(payment_ref.as_str()).await? {
            if t.member_id != state.member_id() || t.offer != offer {
                return Err(EngineError::PaymentRefConflict(payment_ref.to_string()));
            }
            // Top-ups recorded before answers were kept show the balance now.
            let first = match request.replay(&mut tx, state.member_id()).await? {
                Some(first) => first,
                None => {
                    let now = tx.stored_value_get(state.member_id()).await?;
                    TopUpAnswer {
                        balance_principal_minor: now.principal,
                        balance_bonus_minor: now.bonus,
                    }
                }
            };
            return Ok(TopUp {
                payment_ref: t.payment_ref,
                offer: t.offer,
                principal: t.principal,
                bonus: t.bonus,
                entry_no: t.entry_no,
                balance: StoredValueRow {
                    principal: first.balance_principal_minor,
                    bonus: first.balance_bonus_minor,
                },
                replayed: true,
            });
        }
        Self::refuse_closed(std::slice::from_ref(&state))?;
        let rules = programme
            .programme
            .stored_value
            .as_ref()
            .ok_or(EngineError::StoredValueDisabled)?;
        let o = rules
            .offer(offer)
            .ok_or_else(|| EngineError::UnknownOffer(offer.to_owned()))?;
        let now = self.now();
        let mut balance = tx.stored_value_get(state.member_id()).await?;
        let (principal, bonus) = (o.pay_minor, o.bonus_minor());
        let overflow = || {
            EngineError::Field(tessera_domain::FieldError::new(
                tessera_domain::FieldErrorCode::AmountOverflow,
                "offer",
                format!("the balance would exceed {STORED_VALUE_MAX_MINOR}"),
            ))
        };
        balance.principal = balance
            .principal
            .checked_add(principal)
            .ok_or_else(overflow)?;
        balance.bonus = balance.bonus.checked_add(bonus).ok_or_else(overflow)?;
        if balance.principal.saturating_add(balance.bonus) > STORED_VALUE_MAX_MINOR {
            return Err(overflow());
        }
        let entry = sv_entry(
            &mut state,
            "sv_topup",
            now,
            Some(payment_ref.as_str()),
            &[
                (PRINCIPAL, principal),
                (BONUS, bonus),
                ("shop:sv_paid_in", -principal),
                ("shop:sv_bonus_granted", -bonus),
            ],
        );
        let entry_no = entry.entry_no;
        write_sv(&mut tx, &state, balance, &[entry]).await?;
        tx.topup_insert(&TopUpRow {
            payment_ref: payment_ref.to_string(),
            member_id: state.member_id(),
            offer: offer.to_owned(),
            principal,
            bonus,
            entry_no,
            at_us: to_us(now),
        })
        .await?;
        let answer = TopUpAnswer {
            balance_principal_minor: balance.principal,
            balance_bonus_minor: balance.bonus,
        };
        request
            .remember(&mut tx, state.member_id(), &answer, now)
            .await?;
        tx.commit().await?;
        Ok(TopUp {
            payment_ref: payment_ref.to_string(),
            offer: offer.to_owned(),
            principal,
            bonus,
            entry_no,
            balance,
            replayed: false,
        })
    }

    /// A member's stored value.
    pub async fn stored_value(&self, member: &ExternalId) -> Result<StoredValueRow> {
        let m = self.member(member).await?;
        Ok(self.store.stored_value_read(m.id).await?)
    }

    /// Refunds the balance: the principal goes back (the shop pays it), the bonus is
    /// forfeited. Returns (principal refunded, bonus forfeited). The refund's id is looked
    /// up under the member's lock: a retry answers as the first time.
    pub async fn refund_stored_value(
        &self,
        member: &ExternalId,
        reference: &ExternalId,
    ) -> Result<(i64, i64)> {
        let request = ClientRequest::new("sv_refund", reference.as_str(), &serde_json::json!({}));
        let mut tx = self.store.begin().await?;
        let mut state = self.lock_members(&mut tx, &[member]).await?.remove(0);
        if let Some(first) = request
            .replay::<StoredValueRefund>(&mut tx, state.member_id())
            .await?
        {
            return Ok((first.principal_refunded_minor, first.bonus_forfeited_minor));
        }
        Self::refuse_closed(std::slice::from_ref(&state))?;
        let now = self.now();
        let balance = refund_balance(&mut tx, &mut state, now, reference.as_str()).await?;
        let answer = StoredValueRefund {
            principal_refunded_minor: balance.principal,
            bonus_forfeited_minor: balance.bonus,
        };
        request
            .remember(&mut tx, state.member_id(), &answer, now)
            .await?;
        tx.commit().await?;
        Ok((balance.principal, balance.bonus))
    }
}

/// Refunds the whole balance: the principal is owed back to the member, the bonus is
/// forfeited; one journal entry. Answers the balance as it was.
pub(crate) async fn refund_balance(
    tx: &mut Tx,
    state: &mut MemberState,
    now: Timestamp,
    reference: &str,
) -> Result<StoredValueRow> {
    let balance = tx.stored_value_get(state.member_id()).await?;
    if balance != StoredValueRow::default() {
        let entry = sv_entry(
            state,
            "sv_refund",
            now,
            Some(reference),
            &[
                (PRINCIPAL, -balance.principal),
                ("shop:sv_refunded", balance.principal),
                (BONUS, -balance.bonus),
                ("shop:sv_bonus_granted", balance.bonus),
            ],
        );
        write_sv(tx, state, StoredValueRow::default(), &[entry]).await?;
    }
    Ok(balance)
}

/// What a top-up answered beyond its stored row: the balance right after it.
#[derive(serde::Serialize, serde::Deserialize)]
struct TopUpAnswer {
    balance_principal_minor: i64,
    balance_bonus_minor: i64,
}

/// What a stored-value refund answered.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredValueRefund {
    principal_refunded_minor: i64,
    bonus_forfeited_minor: i64,
}
