//! API tests: one binary, each test on a fresh database, the router called without a socket.

mod helpers;

mod auth;
mod bad_requests;
mod clock;
mod events;
mod idempotency;
mod keys;
mod limits;
mod members;
mod offers;
mod openapi;
mod orders;
mod plans;
mod points;
mod points_props;
mod presets;
mod programme;
mod programme_changes;
mod quotes;
mod referrals;
mod refunds;
mod schema;
mod server;
mod tiers;
