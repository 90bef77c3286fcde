//! Events the shop sends in: orders and activities. Built from parsed parts only, so an
//! `Event` is known to be within every limit.

use crate::ids::{ActivityName, Category, EventId, ExternalId, OrderId, Sku, Tag};
use crate::limits::{LINE_QUANTITY_MAX, LINE_TAGS_MAX, ORDER_LINES_MAX};
use crate::money::AmountMinor;
use crate::{FieldError, FieldErrorCode};
use jiff::Timestamp;

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: EventId,
    pub member: ExternalId,
    pub occurred_at: Timestamp,
    pub body: EventBody,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventBody {
    OrderPaid(OrderPaid),
    OrderCompleted { order_id: OrderId },
    OrderRefunded(OrderRefund),
    Activity(ActivityKind),
}

impl EventBody {
    /// The stable name of the event type, as on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventBody::OrderPaid(_) => "order.paid",
            EventBody::OrderCompleted { .. } => "order.completed",
            EventBody::OrderRefunded(_) => "order.refunded",
            EventBody::Activity(_) => "activity",
        }
    }

    pub fn order_id(&self) -> Option<&OrderId> {
        match self {
            EventBody::OrderPaid(paid) => Some(&paid.order_id),
            EventBody::OrderCompleted { order_id } => Some(order_id),
            EventBody::OrderRefunded(refund) => Some(&refund.order_id),
            EventBody::Activity(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderLine {
    pub sku: Sku,
    pub category: Category,
    quantity: u32,
    pub unit_price: AmountMinor,
    pub tags: Vec<Tag>,
}

impl OrderLine {
    pub fn new(
        sku: Sku,
        category: Category,
        quantity: u32,
        unit_price: AmountMinor,
        tags: Vec<Tag>,
    ) -> Result<Self, FieldError> {
        check_quantity(quantity)?;
        if tags.len() > LINE_TAGS_MAX {
            return Err(too_many("tags", LINE_TAGS_MAX));
        }
        unit_price
            .checked_mul(quantity)
            .map_err(|e| e.within("unit_price_minor"))?;
        Ok(Self {
            sku,
            category,
            quantity,
            unit_price,
            tags,
        })
    }

    pub fn quantity(&self) -> u32 {
        self.quantity
    }

    /// Unit price times quantity; the constructor proved it fits.
    pub fn amount(&self) -> AmountMinor {
        self.unit_price
            .checked_mul(self.quantity)
            .expect("checked in OrderLine::new")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderPaid {
    pub order_id: OrderId,
    lines: Vec<OrderLine>,
    pub shipping: AmountMinor,
    /// What the member paid for the whole order, after any discount the shop applied.
    pub total: AmountMinor,
}

impl OrderPaid {
    pub fn new(
        order_id: OrderId,
        lines: Vec<OrderLine>,
        shipping: AmountMinor,
        total: AmountMinor,
    ) -> Result<Self, FieldError> {
        if lines.is_empty() {
            return Err(FieldError::invalid(
                "lines",
                "an order has at least one line",
            ));
        }
        if lines.len() > ORDER_LINES_MAX {
            return Err(too_many("lines", ORDER_LINES_MAX));
        }
        // The total may differ from lines plus shipping either way: the shop's own discounts
        // lower it, taxes and fees raise it. The sum must still fit, for the rules that use it.
        let mut sum = shipping;
        for line in &lines {
            sum = sum
                .checked_add(line.amount())
                .map_err(|e| e.within("lines"))?;
        }
        Ok(Self {
            order_id,
            lines,
            shipping,
            total,
        })
    }

    pub fn lines(&self) -> &[OrderLine] {
        &self.lines
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RefundLine {
    pub sku: Sku,
    quantity: u32,
}

impl RefundLine {
    pub fn new(sku: Sku, quantity: u32) -> Result<Self, FieldError> {
        check_quantity(quantity)?;
        Ok(Self { sku, quantity })
    }

    pub fn quantity(&self) -> u32 {
        self.quantity
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum RefundBy {
    Lines(Vec<RefundLine>),
    Amount(AmountMinor),
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderRefund {
    pub order_id: OrderId,
    pub by: RefundBy,
}

impl OrderRefund {
    /// Exactly one of `lines` and `amount` says what is refunded.
    pub fn new(
        order_id: OrderId,
        lines: Option<Vec<RefundLine>>,
        amount: Option<AmountMinor>,
    ) -> Result<Self, FieldError> {
        let by = match (lines, amount) {
            (Some(lines), None) => {
                if lines.is_empty() {
                    return Err(FieldError::invalid(
                        "lines",
                        "a refund by lines has at least one line",
                    ));
                }
                if lines.len() > ORDER_LINES_MAX {
                    return Err(too_many("lines", ORDER_LINES_MAX));
                }
                RefundBy::Lines(lines)
            }
            (None, Some(amount)) => {
                if amount == AmountMinor::ZERO {
                    return Err(FieldError::invalid(
                        "amount_minor",
                        "a refund is of a positive amount",
                    ));
                }
                RefundBy::Amount(amount)
            }
            (Some(_), Some(_)) => {
                return Err(FieldError::invalid(
                    "lines",
                    "give either `lines` or `amount_minor`, not both",
                ))
            }
            (None, None) => {
                return Err(FieldError::invalid(
                    "lines",
                    "give either `lines` or `amount_minor`",
                ))
            }
        };
        Ok(Self { order_id, by })
    }
}

/// What a member did that a programme may reward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivityKind {
    Review,
    CheckIn,
    Share,
    /// A name the programme declares in `[activities] custom`.
    Custom(ActivityName),
}

impl ActivityKind {
    pub fn name(&self) -> &str {
        match self {
            ActivityKind::Review => "review",
            ActivityKind::CheckIn => "check_in",
            ActivityKind::Share => "share",
            ActivityKind::Custom(name) => name.as_str(),
        }
    }
}

fn check_quantity(quantity: u32) -> Result<(), FieldError> {
    if quantity == 0 || quantity > LINE_QUANTITY_MAX {
        return Err(FieldError::invalid(
            "quantity",
            format!("must be between 1 and {LINE_QUANTITY_MAX}"),
        ));
    }
    Ok(())
}

fn too_many(field: &str, max: usize) -> FieldError {
    FieldError::new(
        FieldErrorCode::TooManyItems,
        field,
        format!("at most {max} items"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(price: i64, quantity: u32) -> Result<OrderLine, FieldError> {
        OrderLine::new(
            Sku::parse("sku").unwrap(),
            Category::parse("cat").unwrap(),
            quantity,
            AmountMinor::parse(price).unwrap(),
            vec![],
        )
    }

    #[test]
    fn order_paid_is_checked() {
        let order = |lines: Vec<OrderLine>, shipping: i64, total: i64| {
            OrderPaid::new(
                OrderId::parse("o1").unwrap(),
                lines,
                AmountMinor::parse(shipping).unwrap(),
                AmountMinor::parse(total).unwrap(),
            )
            .map(|_| ())
            .map_err(|e| (e.code, e.field))
        };
        let ok = |p, q| line(p, q).unwrap();
        assert_eq!(order(vec![ok(1000, 2)], 600, 2600), Ok(()));
        assert_eq!(
            order(vec![ok(1000, 2)], 600, 2000),
            Ok(()),
            "shop discounts are allowed"
        );
        assert_eq!(
            order(vec![ok(1000, 2)], 600, 2900),
            Ok(()),
            "taxes may raise the total"
        );
        assert_eq!(
            order(vec![], 0, 0),
            Err((FieldErrorCode::InvalidField, "lines".into()))
        );
        assert_eq!(line(1, 0).unwrap_err().field, "quantity");
        assert_eq!(
            line(1, LINE_QUANTITY_MAX + 1).unwrap_err().field,
            "quantity"
        );
        // The largest order the limits allow still sums without overflow.
        let max = crate::limits::AMOUNT_MINOR_MAX;
        let lines = vec![ok(max, LINE_QUANTITY_MAX); ORDER_LINES_MAX];
        assert_eq!(order(lines, max, max), Ok(()));
    }

    #[test]
    fn refund_takes_lines_or_amount() {
        let id = || OrderId::parse("o1").unwrap();
        let amount = |v| Some(AmountMinor::parse(v).unwrap());
        let lines = || Some(vec![RefundLine::new(Sku::parse("s").unwrap(), 1).unwrap()]);
        assert!(OrderRefund::new(id(), lines(), None).is_ok());
        assert!(OrderRefund::new(id(), None, amount(5)).is_ok());
        assert!(OrderRefund::new(id(), None, amount(0)).is_err());
        assert!(OrderRefund::new(id(), lines(), amount(5)).is_err());
        assert!(OrderRefund::new(id(), None, None).is_err());
        assert!(OrderRefund::new(id(), Some(vec![]), None).is_err());
    }
}
