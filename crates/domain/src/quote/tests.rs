use super::*;
use proptest::prelude::*;

fn line(sku: &str, category: &str, quantity: i64, unit: i64, tags: &[&str]) -> CartLine {
    CartLine {
        sku: sku.into(),
        category: category.into(),
        quantity,
        unit_price_minor: unit,
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
    }
}

fn benefit(id: &str, kind: BenefitKind, plans: &[&str], tiers: &[&str], cost: i64) -> Benefit {
    Benefit {
        id: id.into(),
        kind,
        held_by: HeldBy {
            plans: plans.iter().map(|p| (*p).to_owned()).collect(),
            tiers: tiers.iter().map(|t| (*t).to_owned()).collect(),
        },
        cost_per_use_minor: cost,
    }
}

fn benefits() -> Vec<Benefit> {
    vec![
        benefit(
            "plus_prices",
            BenefitKind::MemberPrice([("A".to_owned(), 900)].into()),
            &["plus"],
            &[],
            0,
        ),
        benefit(
            "vip_5",
            BenefitKind::PercentOff {
                percent: 5,
                categories: vec!["grocery".into()],
                tags: vec![],
                days_of_month: vec![],
            },
            &["plus"],
            &["gold"],
            0,
        ),
        benefit(
            "ship",
            BenefitKind::FreeShipping {
                minimum_minor: 0,
                per_month: Some(5),
            },
            &["plus"],
            &[],
            600,
        ),
        benefit(
            "club",
            BenefitKind::MembersOnly {
                skus: vec!["BULK".into()],
                categories: vec![],
                tags: vec![],
            },
            &["plus"],
            &[],
            0,
        ),
    ]
}

fn input<'a>(
    lines: &'a [CartLine],
    holding: Option<Holding>,
    benefits: &'a [Benefit],
    left: &'a BTreeMap<String, i64>,
) -> QuoteInput<'a> {
    QuoteInput {
        lines,
        shipping_minor: 600,
        holding,
        benefits,
        shipping_uses_left: left,
        day_of_month: 8,
        coupons: vec![],
        points: 0,
        points_rate: None,
        stored_value_minor: 0,
    }
}

fn plus() -> Option<Holding> {
    Some(Holding {
        tier: None,
        plans: vec!["plus".into()],
    })
}

#[test]
fn member_price_then_percent_then_shipping() {
    let lines = [
        line("A", "grocery", 2, 1000, &[]),
        line("B", "books", 1, 2000, &[]),
    ];
    let b = benefits();
    let left = BTreeMap::new();
    let q = quote(&input(&lines, plus(), &b, &left));
    // A: 2 × 1000 → member price 2 × 900 = 1800 → 5% off = 90 → 1710. B untouched.
    assert_eq!(q.lines[0].net_minor, 1710);
    assert_eq!(
        q.lines[0]
            .adjustments
            .iter()
            .map(|a| (a.step, a.amount_minor))
            .collect::<Vec<_>>(),
        [("member_price", 200), ("percent_off", 90)]
    );
    assert_eq!(q.lines[1].net_minor, 2000);
    assert_eq!(
        (q.shipping_minor, q.shipping_waived_by.as_deref()),
        (0, Some("benefit:ship"))
    );
    assert_eq!(q.total_minor, 3710);
    assert_eq!(
        q.benefits_used
            .iter()
            .find(|(b, _)| b == "ship")
            .map(|x| x.1),
        Some(600)
    );

    // A non-member pays list and shipping, and cannot buy members-only goods.
    let lines = [
        line("A", "grocery", 2, 1000, &[]),
        line("BULK", "grocery", 1, 5000, &[]),
    ];
    let q = quote(&input(&lines, None, &b, &left));
    assert_eq!(q.total_minor, 2600);
    assert!(q.lines[1].refused.as_deref().unwrap().contains("club"));
    assert!(!q.is_payable());
    // With the quota used up, shipping is charged.
    let left = BTreeMap::from([("ship".to_owned(), 0)]);
    let q = quote(&input(&lines, plus(), &b, &left));
    assert_eq!(q.shipping_minor, 600);
    assert!(q.is_payable());
}

#[test]
fn coupons_points_and_stored_value() {
    let lines = [
        line("A", "grocery", 1, 3000, &[]),
        line("B", "books", 1, 1000, &[]),
    ];
    let b = benefits();
    let left = BTreeMap::new();
    let off = CouponTemplate {
        id: "ten_off".into(),
        kind: CouponKind::AmountOff(1000),
        minimum_minor: 3000,
        categories: vec![],
        valid_days: 30,
        stacking_group: "order".into(),
    };
    let pct = CouponTemplate {
        id: "pct".into(),
        kind: CouponKind::PercentOff {
            percent: 50,
            cap_minor: Some(300),
        },
        minimum_minor: 0,
        categories: vec!["books".into()],
        valid_days: 30,
        stacking_group: "books".into(),
    };
    let mut i = input(&lines, None, &b, &left);
    i.coupons = vec![
        ChosenCoupon {
            no: 1,
            refused: None,
            template: Some(&off),
        },
        ChosenCoupon {
            no: 2,
            refused: None,
            template: Some(&off),
        },
        ChosenCoupon {
            no: 3,
            refused: None,
            template: Some(&pct),
        },
        ChosenCoupon {
            no: 4,
            refused: Some("used"),
            template: Some(&pct),
        },
    ];
    i.points = 1050;
    i.points_rate = Some(PointsRate {
        points: 100,
        value_minor: 100,
        minimum_points: 100,
        max_order_share_percent: 50,
    });
    i.stored_value_minor = 100_000;
    let q = quote(&i);
    // 1000 off spread 3:1 → 750 and 250; then 50% of books' 750 capped at 300.
    assert_eq!((q.lines[0].net_minor, q.lines[1].net_minor), (2250, 450));
    assert_eq!(
        q.coupons_refused,
        [(2, "stacking_group".to_owned()), (4, "used".to_owned())]
    );
    // 1050 points → 1000 (whole steps) = 10.00; stored value pays the rest.
    assert_eq!((q.points_used, q.points_value_minor), (1000, 1000));
    assert_eq!(q.stored_value_used_minor, 2700 + 600 - 1000);
    assert_eq!(q.total_minor, 0);
}

fn arb_line() -> impl Strategy<Value = CartLine> {
    (
        prop::sample::select(vec!["A", "B", "BULK", "C"]),
        prop::sample::select(vec!["grocery", "books"]),
        1i64..5,
        prop_oneof![Just(0i64), 1i64..100_000, Just(1_000_000_000)],
    )
        .prop_map(|(sku, category, quantity, unit)| line(sku, category, quantity, unit, &[]))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// For any cart and holding: the total is the lines less their adjustments, plus
    /// shipping, less points and stored value; nothing is negative; the same input gives
    /// the same quote.
    #[test]
    fn the_total_adds_up_and_nothing_is_negative(
        lines in prop::collection::vec(arb_line(), 1..8),
        member in 0u8..3,
        shipping in prop_oneof![Just(0i64), 1i64..2000],
        coupon_off in prop_oneof![Just(0i64), 1i64..50_000],
        points in 0i64..100_000,
        stored in 0i64..100_000,
        quota in prop_oneof![Just(None), (0i64..2).prop_map(Some)],
    ) {
        let b = benefits();
        let left: BTreeMap<String, i64> = quota.map(|q| ("ship".to_owned(), q)).into_iter().collect();
        let holding = match member {
            0 => None,
            1 => Some(Holding { tier: Some("gold".into()), plans: vec![] }),
            _ => plus(),
        };
        let template = CouponTemplate {
            id: "t".into(),
            kind: CouponKind::AmountOff(coupon_off),
            minimum_minor: 0,
            categories: vec![],
            valid_days: 1,
            stacking_group: "g".into(),
        };
        let mut i = input(&lines, holding, &b, &left);
        i.shipping_minor = shipping;
        if coupon_off > 0 {
            i.coupons = vec![ChosenCoupon { no: 1, refused: None, template: Some(&template) }];
        }
        i.points = points;
        i.points_rate = Some(PointsRate { points: 100, value_minor: 100, minimum_points: 0, max_order_share_percent: 30 });
        i.stored_value_minor = stored;
        let q = quote(&i);
        prop_assert_eq!(&q, &quote(&i));
        let mut goods = 0i64;
        for l in q.lines.iter() {
            let adjusted: i64 = l.adjustments.iter().map(|a| a.amount_minor).sum();
            prop_assert!(l.net_minor >= 0, "line {:?}", l);
            prop_assert!(l.adjustments.iter().all(|a| a.amount_minor >= 0));
            prop_assert_eq!(l.net_minor, l.list_minor - adjusted);
            if l.refused.is_none() {
                goods += l.net_minor;
            }
        }
        prop_assert_eq!(q.goods_minor, goods);
        prop_assert!(q.shipping_minor == 0 || q.shipping_minor == shipping);
        prop_assert_eq!(
            q.total_minor,
            goods + q.shipping_minor - q.points_value_minor - q.stored_value_used_minor
        );
        prop_assert!(q.total_minor >= 0 && q.points_value_minor >= 0 && q.stored_value_used_minor >= 0);
        prop_assert!(q.points_used <= points);
    }
}
