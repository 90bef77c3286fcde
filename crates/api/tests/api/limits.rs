//! `docs/LIMITS.md` against the code: each constant a row names has the value the row
//! states, every constant of `crates/domain/src/limits.rs` is in the table, and no row
//! names a constant that does not exist.

use std::collections::BTreeMap;
use tessera_domain::limits as l;

/// Every constant the table may name, with its value.
fn constants() -> BTreeMap<&'static str, i128> {
    BTreeMap::from([
        ("ID_LEN_MAX", l::ID_LEN_MAX as i128),
        ("NAME_LEN_MAX", l::NAME_LEN_MAX as i128),
        ("ATTRIBUTES_BYTES_MAX", l::ATTRIBUTES_BYTES_MAX as i128),
        ("ATTRIBUTES_DEPTH_MAX", l::ATTRIBUTES_DEPTH_MAX as i128),
        ("ORDER_LINES_MAX", l::ORDER_LINES_MAX as i128),
        ("LINE_TAGS_MAX", l::LINE_TAGS_MAX as i128),
        ("LINE_QUANTITY_MAX", l::LINE_QUANTITY_MAX as i128),
        ("AMOUNT_MINOR_MAX", l::AMOUNT_MINOR_MAX as i128),
        (
            "OCCURRED_AT_PAST_DAYS_MAX",
            l::OCCURRED_AT_PAST_DAYS_MAX as i128,
        ),
        (
            "OCCURRED_AT_FUTURE_SECONDS_MAX",
            l::OCCURRED_AT_FUTURE_SECONDS_MAX as i128,
        ),
        ("STORED_VALUE_MAX_MINOR", l::STORED_VALUE_MAX_MINOR as i128),
        ("POINT_VALUE_MINOR_MAX", l::POINT_VALUE_MINOR_MAX as i128),
        ("BATCH_ITEMS_MAX", l::BATCH_ITEMS_MAX as i128),
        ("PAGE_SIZE_MAX", l::PAGE_SIZE_MAX as i128),
        ("PAGE_SIZE_DEFAULT", l::PAGE_SIZE_DEFAULT as i128),
        ("PROGRAMME_BYTES_MAX", l::PROGRAMME_BYTES_MAX as i128),
        ("EXPRESSION_LEN_MAX", l::EXPRESSION_LEN_MAX as i128),
        (
            "IDEMPOTENCY_KEY_LEN_MAX",
            l::IDEMPOTENCY_KEY_LEN_MAX as i128,
        ),
        ("POINTS_MAX", tessera_domain::points::POINTS_MAX as i128),
        ("HELD_MAX", tessera_domain::points::HELD_MAX as i128),
        (
            "MULTIPLIER_PERCENT_MAX",
            tessera_domain::points::MULTIPLIER_PERCENT_MAX as i128,
        ),
        ("LABEL_LEN_MAX", tessera_engine::keys::LABEL_LEN_MAX as i128),
        ("SEARCH_ATTRIBUTES_MAX", l::SEARCH_ATTRIBUTES_MAX as i128),
        (
            "SEARCH_ATTRIBUTE_KEY_LEN_MAX",
            l::SEARCH_ATTRIBUTE_KEY_LEN_MAX as i128,
        ),
        (
            "BODY_BYTES_MAX",
            tessera_api::limits::BODY_BYTES_MAX as i128,
        ),
        (
            "BATCH_BODY_BYTES_MAX",
            tessera_api::limits::BATCH_BODY_BYTES_MAX as i128,
        ),
        ("URI_BYTES_MAX", tessera_api::limits::URI_BYTES_MAX as i128),
        (
            "HEADER_BYTES_MAX",
            tessera_api::limits::HEADER_BYTES_MAX as i128,
        ),
        ("HEADERS_MAX", tessera_api::limits::HEADERS_MAX as i128),
    ])
}

/// The ways the table writes a number: `10,000`, `10^12`, `16 KiB`, `8 MiB`.
fn spellings(n: i128) -> Vec<String> {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let mut out = vec![grouped];
    let zeros = digits.trim_start_matches('1');
    if digits.starts_with('1') && zeros.len() + 1 == digits.len() && zeros.chars().all(|c| c == '0')
    {
        out.push(format!("10^{}", zeros.len()));
    }
    for (unit, size) in [("MiB", 1024 * 1024), ("KiB", 1024)] {
        if n >= size && n % size == 0 {
            out.push(format!("{} {unit}", n / size));
        }
    }
    out
}

#[test]
fn the_limits_page_states_the_code_s_limits() {
    let page = include_str!("../../../../docs/LIMITS.md");
    let known = constants();
    let mut stated = BTreeMap::new();
    for row in page
        .lines()
        .filter(|l| l.starts_with("| ") && l.ends_with(" |"))
    {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        if cells.len() != 4 {
            panic!("a row of the table without four cells: {row}");
        }
        if cells[0] == "what" {
            continue;
        }
        let limit = cells[1];
        for name in cells[3]
            .split(',')
            .map(|c| c.trim().trim_matches('`'))
            .filter(|c| !c.is_empty())
        {
            let value = *known
                .get(name)
                .unwrap_or_else(|| panic!("`{name}` is no constant the test knows: {row}"));
            let ways = spellings(value);
            assert!(
                ways.iter().any(|w| limit.contains(w.as_str())),
                "{name} is {value} in the code, but the row says `{limit}` (expected one of {ways:?})"
            );
            stated.insert(name, row);
        }
    }
    for name in known.keys() {
        assert!(
            stated.contains_key(name),
            "docs/LIMITS.md states no row for {name}"
        );
    }
    // Every constant of the limits module is one the test knows (and so is on the page).
    let source = include_str!("../../../domain/src/limits.rs");
    for line in source.lines().filter(|l| l.starts_with("pub const ")) {
        let name = line["pub const ".len()..].split(':').next().unwrap();
        assert!(
            known.contains_key(name),
            "{name} of limits.rs is not on docs/LIMITS.md"
        );
    }
}
