//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use crate::error::{ErrorBody, ErrorDetail, ProgrammeIssueBody};
use crate::routes::{
    admin, events, keys, members, offers, points, programme, quotes, referrals, subscriptions,
    system, tiers,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tessera", description = "Membership engine for commerce: members, events, programme, points ledger, score and tiers, paid plans.",
        license(name = "Apache-2.0")),
    paths(
        system::healthz, system::metrics, system::openapi,
        programme::get_programme, programme::put_programme, programme::list_versions,
        programme::dry_run,
        members::create_member, members::get_member, members::patch_member, members::close_member,
        members::erase_member, members::export_member, members::list_members,
        events::get_event, programme::get_version, quotes::get_order,
        events::post_event, events::post_batch, events::list_events,
        points::get_points, points::get_ledger, points::post_redemption, points::post_adjustment, points::list_expiring,
        tiers::get_tier, tiers::get_tier_history,
        subscriptions::create_subscription, subscriptions::get_subscription, subscriptions::post_payment,
        subscriptions::post_cancel, subscriptions::post_refund, subscriptions::member_subscriptions,
        subscriptions::member_plans, subscriptions::member_entitlements, subscriptions::list_renewals,
        subscriptions::get_pool, subscriptions::post_codes,
        subscriptions::partner_member, subscriptions::partner_redemption,
        quotes::post_quote, quotes::post_order, quotes::post_order_refund,
        quotes::get_stored_value, quotes::post_top_up, quotes::post_stored_value_refund, quotes::list_coupons, quotes::issue_coupons,
        admin::get_clock, admin::set_clock,
        keys::list_keys, keys::create_key, keys::revoke_key, keys::rotate_key,
        referrals::get_referrals, referrals::post_referrer, referrals::get_referral_figures,
        offers::get_offer, offers::post_exposure, offers::post_acceptance, offers::member_offers,
    ),
    components(schemas(ErrorBody, ErrorDetail, ProgrammeIssueBody, crate::schema::IdText, crate::schema::NameText)),
    modifiers(&ApiKeyAuth),
    tags(
        (name = "programme", description = "The programme file and its versions"),
        (name = "members", description = "Members"),
        (name = "events", description = "Orders and activities in"),
        (name = "tiers", description = "Score and tiers"),
        (name = "points", description = "The points ledger: balances, lots, journal, redemptions, adjustments"),
        (name = "plans", description = "Paid plans: offers, subscriptions, renewals, refunds, entitlements, code pools"),
        (name = "quotes", description = "Checkout quotes with member benefits and the upsell; coupons"),
        (name = "partner", description = "For partners: membership checks and partner redemptions"),
        (name = "admin", description = "Operations"),
        (name = "system", description = "Health, metrics, this document"),
    )
)]
pub struct ApiDoc;

struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tsk_...")
                    .build(),
            ),
        );
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// A small programme file, the example of the programme routes' bodies.
const PROGRAMME_EXAMPLE: &str = "name = \"My shop\"\ncurrency = \"CNY\"\ntimezone = \"Asia/Shanghai\"\n\n[points]\nearn_points = 1\nearn_per_minor = 100\n";

/// The document as served: what the annotations give, completed with what they cannot
/// say: the discriminator of the event types, the error codes as an enum, the programme
/// file also as `application/octet-stream` (for clients that send files as bytes), and a
/// `servers` entry (this server, whatever its address).
pub fn document_json() -> serde_json::Value {
    use serde_json::{json, Value};
    let mut doc = serde_json::to_value(document()).expect("the document serializes");
    doc["servers"] = json!([{"url": "/", "description": "This Tessera server"}]);
    let schemas = &mut doc["components"]["schemas"];
    let mapping: serde_json::Map<String, Value> = [
        ("order.paid", "OrderPaidIn"),
        ("order.completed", "OrderCompletedIn"),
        ("order.refunded", "OrderRefundedIn"),
        ("activity", "ActivityIn"),
    ]
    .into_iter()
    .map(|(wire, schema)| {
        (
            wire.to_owned(),
            json!(format!("#/components/schemas/{schema}")),
        )
    })
    .collect();
    schemas["EventIn"]["discriminator"] = json!({"propertyName": "type", "mapping": mapping});
    // A request of the union is a request of one of its types: the first one's example.
    schemas["EventIn"]["example"] = schemas["OrderPaidIn"]["example"].clone();
    let codes: Vec<&str> = crate::error::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    schemas["ErrorDetail"]["properties"]["code"]["enum"] = json!(codes);
    for (path, method) in [("/v1/programme", "put"), ("/v1/programme/dry-run", "post")] {
        if let Some(content) = doc["paths"][path][method]["requestBody"]["content"].as_object_mut()
        {
            content.insert(
                "application/octet-stream".to_owned(),
                json!({"schema": {"type": "string", "format": "binary"}}),
            );
            for media in content.values_mut() {
                media["example"] = json!(PROGRAMME_EXAMPLE);
            }
        }
    }
    doc
}
