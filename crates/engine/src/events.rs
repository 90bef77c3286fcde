//! Event intake: validated events are stored once per id, durably; the same id with the
//! same body answers with what was stored the first time.

use crate::clock::to_us;
use crate::points::{effect_of, MemberState};
use crate::{sha256_hex, Engine, EngineError, Result};
use std::collections::HashMap;
use tessera_domain::event::Event;
use tessera_domain::event::{ActivityKind, EventBody};
use tessera_domain::ExternalId;
use tessera_store::{EventRow, NewEvent};

/// One event to take in, with its canonical JSON (what is stored and hashed).
pub struct IngestItem {
    pub event: Event,
    pub canonical_json: String,
}

/// What became of one event.
#[derive(Debug)]
pub enum IngestOutcome {
    /// Stored now.
    Accepted(EventRow),
    /// Stored before with the same body: the first result.
    Duplicate(EventRow),
}

impl IngestOutcome {
    pub fn row(&self) -> &EventRow {
        match self {
            IngestOutcome::Accepted(row) | IngestOutcome::Duplicate(row) => row,
        }
    }
}

impl Engine {
    /// Takes in a batch of events in one transaction; each item gets its own outcome, and a
    /// refused item does not stop the others. What an event earns or takes back (points,
    /// refunds) is written in the same transaction as the event itself.
    pub async fn ingest(&self, items: &[IngestItem]) -> Result<Vec<Result<IngestOutcome>>> {
        let programme = self.programme()?;
        let now = self.now();
        let received_at = to_us(now);
        let mut tx = self.store.begin().await?;
        // Every member of the batch is locked up front, in member order, so that two
        // batches never wait on each other in a cycle.
        let mut external_ids: Vec<&str> = items.iter().map(|i| i.event.member.as_str()).collect();
        external_ids.sort_unstable();
        external_ids.dedup();
        let mut members: HashMap<String, MemberState> = tx
            .members_with_accounts_for_update(&external_ids)
            .await?
            .into_iter()
            .map(|row| (row.external_id.clone(), MemberState { row, dirty: false }))
            .collect();
        let mut entries = Vec::new();
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let event = &item.event;
            if let EventBody::Activity(ActivityKind::Custom(name)) = &event.body {
                if programme.programme.custom_activity(name.as_str()).is_none() {
                    outcomes.push(Err(EngineError::UnknownActivity(name.to_string())));
                    continue;
                }
            }
            let Some(state) = members.get_mut(event.member.as_str()) else {
                outcomes.push(Err(EngineError::MemberNotFound(event.member.to_string())));
                continue;
            };
            let sha = sha256_hex(item.canonical_json.as_bytes());
            // A closed account earns nothing new, but what it already bought can still be
            // completed or refunded.
            let earns = matches!(event.body, EventBody::OrderPaid(_) | EventBody::Activity(_));
            let refused = if state.row.status == "closed" && earns {
                Some(EngineError::MemberClosed(event.member.to_string()))
            } else {
                None
            };
            let effect = match refused {
                Some(e) => Err(e),
                None => {
                    effect_of(&mut tx, &programme, state, event, &item.canonical_json, now).await
                }
            };
            let effect = match effect {
                Ok(effect) => effect,
                Err(EngineError::Store(e)) => return Err(e.into()),
                Err(refusal) => {
                    // A repeat of an event taken in before still answers with the first
                    // result, even where the event would now be refused.
                    outcomes.push(match tx.event_get(event.id.as_str()).await? {
                        Some(row) if row.body_sha256 == sha => Ok(IngestOutcome::Duplicate(row)),
                        Some(_) => Err(EngineError::EventConflict(event.id.to_string())),
                        None => Err(refusal),
                    });
                    continue;
                }
            };
            let new = NewEvent {
                event_id: event.id.as_str(),
                member_id: state.member_id(),
                event_type: event.body.type_name(),
                order_id: event.body.order_id().map(|o| o.as_str()),
                occurred_at_us: to_us(event.occurred_at),
                received_at_us: received_at,
                body: &item.canonical_json,
                body_sha256: &sha,
            };
            let (row, inserted) = tx.event_insert(&new).await?;
            outcomes.push(if inserted {
                effect
                    .write(
                        &mut tx,
                        &programme,
                        state,
                        event.id.as_str(),
                        now,
                        &mut entries,
                    )
                    .await?;
                Ok(IngestOutcome::Accepted(row))
            } else if row.body_sha256 == sha {
                Ok(IngestOutcome::Duplicate(row))
            } else {
                Err(EngineError::EventConflict(event.id.to_string()))
            });
        }
        tx.entries_insert(&entries).await?;
        for state in members.values().filter(|s| s.dirty) {
            tx.account_update(&state.row.account).await?;
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// A member's events in arrival order, a page at a time: the rows after `after_seq`,
    /// and the cursor of the next page when there is one.
    pub async fn member_events(
        &self,
        external_id: &ExternalId,
        after_seq: i64,
        limit: u32,
    ) -> Result<(Vec<EventRow>, Option<i64>)> {
        let member = self.member(external_id).await?;
        let mut rows = self
            .store
            .events_list(member.id, after_seq, limit + 1)
            .await?;
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.seq)
        } else {
            None
        };
        Ok((rows, next))
    }
}
