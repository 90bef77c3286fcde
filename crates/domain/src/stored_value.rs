//! Stored value (储值): prepaid money with the principal (what the member paid) and the
//! bonus (what the offer added) kept apart, spent in a stated order; a refund of the
//! balance returns the principal only.

/// Which part of the balance pays first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendOrder {
    PrincipalFirst,
    BonusFirst,
}

/// A top-up offer: pay `pay_minor`, get `credit_minor` (the difference is the bonus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub id: String,
    pub pay_minor: i64,
    pub credit_minor: i64,
}

impl Offer {
    pub fn bonus_minor(&self) -> i64 {
        self.credit_minor - self.pay_minor
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredValueRules {
    pub spend_order: SpendOrder,
    pub offers: Vec<Offer>,
}

impl StoredValueRules {
    pub fn offer(&self, id: &str) -> Option<&Offer> {
        self.offers.iter().find(|o| o.id == id)
    }

    /// How `amount` is drawn from a balance: (from principal, from bonus). The caller
    /// makes sure the balance covers it.
    pub fn draw(&self, principal: i64, bonus: i64, amount: i64) -> (i64, i64) {
        match self.spend_order {
            SpendOrder::PrincipalFirst => {
                let p = amount.min(principal);
                (p, (amount - p).min(bonus))
            }
            SpendOrder::BonusFirst => {
                let b = amount.min(bonus);
                ((amount - b).min(principal), b)
            }
        }
    }
}

/// What goes back to each part when `returned` of a spend of (principal, bonus) is given
/// back: in proportion, the principal's share rounded down.
pub fn give_back(principal_used: i64, bonus_used: i64, returned: i64) -> (i64, i64) {
    let used = principal_used + bonus_used;
    if used == 0 {
        return (0, 0);
    }
    let p = i64::try_from(i128::from(principal_used) * i128::from(returned) / i128::from(used))
        .unwrap_or(0);
    (p, returned - p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_in_the_stated_order_and_gives_back_in_proportion() {
        let rules = |spend_order| StoredValueRules {
            spend_order,
            offers: vec![],
        };
        let cases = [
            (SpendOrder::PrincipalFirst, 1000, 100, 300, (300, 0)),
            (SpendOrder::PrincipalFirst, 1000, 100, 1050, (1000, 50)),
            (SpendOrder::BonusFirst, 1000, 100, 300, (200, 100)),
            (SpendOrder::BonusFirst, 1000, 100, 50, (0, 50)),
        ];
        for (order, p, b, amount, expected) in cases {
            assert_eq!(
                rules(order).draw(p, b, amount),
                expected,
                "{order:?} {amount}"
            );
        }
        assert_eq!(give_back(1000, 100, 550), (500, 50));
        assert_eq!(give_back(1000, 100, 1100), (1000, 100));
        assert_eq!(give_back(0, 0, 0), (0, 0));
    }
}
