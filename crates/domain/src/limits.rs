//! Every limit of Tessera in one place. A limit exceeded is a client error with its own
//! code, never a crash and never a silent truncation.

/// Longest identifier the shop may give (member, event, order ids, SKUs, categories).
pub const ID_LEN_MAX: usize = 128;
/// Longest free-text name (custom activity name, tag).
pub const NAME_LEN_MAX: usize = 64;
/// Serialized size of a member's attributes.
pub const ATTRIBUTES_BYTES_MAX: usize = 16 * 1024;
/// Nesting depth of a member's attributes.
pub const ATTRIBUTES_DEPTH_MAX: usize = 8;
/// Lines in one order.
pub const ORDER_LINES_MAX: usize = 500;
/// Tags on one order line.
pub const LINE_TAGS_MAX: usize = 32;
/// Quantity of one order line.
pub const LINE_QUANTITY_MAX: u32 = 10_000;
/// Largest single amount (a unit price, a shipping fee, a total, a refund), in minor units.
/// With at most 500 lines of at most 10,000 units, no order's sum can overflow 64 bits.
pub const AMOUNT_MINOR_MAX: i64 = 1_000_000_000_000;
/// How far before the engine's clock an event may have occurred: late events are normal
/// (an order that reaches Tessera days later), ten years is a mistake.
pub const OCCURRED_AT_PAST_DAYS_MAX: i64 = 3 * 366;
/// How far after the engine's clock an event may have occurred: the shop's and Tessera's
/// clocks may differ a little, never by hours.
pub const OCCURRED_AT_FUTURE_SECONDS_MAX: i64 = 300;
/// A member's stored value (principal and bonus together), in minor units: sums of balances
/// over many members stay far from overflowing.
pub const STORED_VALUE_MAX_MINOR: i64 = 1_000_000_000_000_000;
/// What one point may be worth at checkout, in minor units: the value of the largest
/// balance (10^15 points) then fits a 64-bit amount.
pub const POINT_VALUE_MINOR_MAX: i64 = 1_000;
/// Items in one batch of events.
pub const BATCH_ITEMS_MAX: usize = 1_000;
/// Page size of every listing.
pub const PAGE_SIZE_MAX: u32 = 200;
/// Page size when the client does not say.
pub const PAGE_SIZE_DEFAULT: u32 = 50;
/// Size of a programme file.
pub const PROGRAMME_BYTES_MAX: usize = 1024 * 1024;
/// Length of a CEL expression in a programme.
pub const EXPRESSION_LEN_MAX: usize = 4 * 1024;
/// Length of an `Idempotency-Key` header.
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 255;
/// Attribute filters in one member search (`GET /v1/members?attribute=...`).
pub const SEARCH_ATTRIBUTES_MAX: usize = 8;
/// Length of an attribute key a member search filters by (letters, digits, `_`, `-`).
pub const SEARCH_ATTRIBUTE_KEY_LEN_MAX: usize = 64;
