"""Every route of Tessera's API, called through a Python client generated from the
server's own /openapi.json by openapi-python-client.

Run by scripts/client-test, which generates the client, starts a server (demo programme,
manual clock, SQLite) and passes: BASE_URL ADMIN_KEY CLIENT_DIR OPENAPI_JSON.

Each call states the status it must answer and, for a success, that the generated client
parsed the answer into its model (so the document describes what the server says). At the
end every operation of the document must have been called and answered below 500.
"""

import json
import re
import sys

base_url, admin_key, client_dir, openapi_path = sys.argv[1:5]
sys.path.insert(0, client_dir)

from tessera_client import AuthenticatedClient, Client  # noqa: E402
from tessera_client import api, models  # noqa: E402
from tessera_client.types import File  # noqa: E402
import tessera_client.api.admin.create_key  # noqa: E402,F401
import importlib  # noqa: E402
import pkgutil  # noqa: E402

for group in pkgutil.iter_modules(api.__path__):
    package = importlib.import_module(f"tessera_client.api.{group.name}")
    for op in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"tessera_client.api.{group.name}.{op.name}")

A = api
M = models
document = json.load(open(openapi_path))

# Operations answered, as (METHOD, path template), from every response the clients saw.
templates = []
for path, methods in document["paths"].items():
    pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"
    for method in methods:
        templates.append((method.upper(), path, re.compile(pattern)))
answered = {}


def record(response):
    request = response.request
    path = request.url.path
    for method, template, pattern in templates:
        if method == request.method and pattern.match(path):
            answered.setdefault((method, template), []).append(response.status_code)
            return
    raise AssertionError(f"{request.method} {path} is no operation of the document")


def client(key=None):
    hooks = {"event_hooks": {"response": [record]}}
    if key is None:
        return Client(base_url=base_url, httpx_args=hooks)
    return AuthenticatedClient(base_url=base_url, token=key, httpx_args=hooks)


admin = client(admin_key)
failures = []


def call(what, status, operation, *args, model=None, **kwargs):
    """Calls `operation.sync_detailed`, checks the status and the parsed model."""
    response = operation.sync_detailed(*args, **kwargs)
    if response.status_code != status:
        failures.append(f"{what}: {response.status_code} (wanted {status}): {response.content[:400]!r}")
        return response
    if model is not None and not isinstance(response.parsed, model):
        failures.append(f"{what}: answered {type(response.parsed).__name__}, not {model.__name__}")
    return response


def body(model, value):
    return model.from_dict(value)


demo = open("programmes/demo.toml", "rb").read()
# The demo with referral and conversion offers, saved as version 2.
second = demo.replace(b"Tessera demo shop", b"Second") + b'''
[referral]
identity = ["phone"]

[[referral.rewards]]
id = "join_points"
on = "join"
to = "referrer"
points = 100

[[offers]]
id = "plus_half"
plan = "plus"
starts_at = "2020-01-01T00:00:00Z"
ends_at = "2100-01-01T00:00:00Z"
first_term_price_minor = 7400

[[offers]]
id = "coupon_gift"
plan = "plus"
starts_at = "2020-01-01T00:00:00Z"
ends_at = "2100-01-01T00:00:00Z"
coupon = "ten_off_99"
'''
line = {"sku": "TEA-500G", "category": "grocery", "quantity": 2, "unit_price_minor": 3000, "tags": ["promo"]}

# System.
anonymous = client()
call("health", 200, A.system.healthz, client=anonymous, model=M.Health)
call("metrics", 200, A.system.metrics, client=anonymous)
call("openapi", 200, A.system.openapi, client=anonymous)

# The programme: read, dry run, save, versions.
call("programme", 200, A.programme.get_programme, client=admin, model=M.ProgrammeView)
call("dry run", 200, A.programme.dry_run, client=admin, body=File(payload=demo.replace(b"Tessera demo shop", b"Second")), model=M.ProgrammeChangeView)
call("save", 200, A.programme.put_programme, client=admin, body=File(payload=second), model=M.ProgrammeView)
call("versions", 200, A.programme.list_versions, client=admin, model=M.VersionList)
call("version 2", 200, A.programme.get_version, 2, client=admin, model=M.VersionSourceView)

# Keys: one for the storefront, partners, a rotation and a revocation.
storefront_key = call("storefront key", 201, A.admin.create_key, client=admin, body=body(M.KeyIn, {"role": "storefront", "label": "shop"}), model=M.NewKeyOut).parsed.key
iqiyi = client(call("iqiyi key", 201, A.admin.create_key, client=admin, body=body(M.KeyIn, {"role": "partner", "partner": "iqiyi"}), model=M.NewKeyOut).parsed.key)
youku = client(call("youku key", 201, A.admin.create_key, client=admin, body=body(M.KeyIn, {"role": "partner", "partner": "youku"}), model=M.NewKeyOut).parsed.key)
spare = call("spare key", 201, A.admin.create_key, client=admin, body=body(M.KeyIn, {"role": "admin", "label": "spare"}), model=M.NewKeyOut).parsed
rotated = call("rotate", 201, A.admin.rotate_key, spare.id, client=admin, model=M.NewKeyOut).parsed
call("revoke", 200, A.admin.revoke_key, rotated.id, client=admin, model=M.KeyOut)
call("keys", 200, A.admin.list_keys, client=admin, model=M.KeyList)
shop = client(storefront_key)

# Members.
for member_id, attributes in [("u1", {"city": "Beijing"}), ("u2", {}), ("u3", {"phone": "138"})]:
    call(f"member {member_id}", 201, A.members.create_member, client=shop, body=body(M.MemberCreate, {"member_id": member_id, "attributes": attributes}), model=M.MemberView)
call("member", 200, A.members.get_member, "u1", client=shop, model=M.MemberView)
call("patch", 200, A.members.patch_member, "u1", client=admin, body=body(M.MemberPatchBody, {"attributes": {"vip": True}}), model=M.MemberView)
found = call("search", 200, A.members.list_members, client=admin, attribute=["city:Beijing"], model=M.MemberList).parsed
if [m.member_id for m in found.items] != ["u1"]:
    failures.append(f"search: found {[m.member_id for m in found.items]}")

# Referral: u1's code, a member who joins with it, a code given too late, the figures.
code = call("referrals", 200, A.members.get_referrals, "u1", client=shop, model=M.ReferralsView).parsed.code
call("join with a code", 201, A.members.create_member, client=shop, body=body(M.MemberCreate, {"member_id": "u4", "attributes": {"phone": "139"}, "referral_code": code}), model=M.MemberView)
# u2 joined at the same instant as u1 (the manual clock): not after the code's owner.
call("code given later", 422, A.members.post_referrer, "u2", client=shop, body=body(M.ReferrerIn, {"code": code}))
figures = call("referral figures", 200, A.members.get_referral_figures, client=admin, model=M.ReferralFiguresView).parsed
if figures.referred_members != 1:
    failures.append(f"referral figures: {figures.to_dict()}")

# Conversion offers: what u2 may take, an exposure, a coupon offer taken, the counts.
call("member offers", 200, A.plans.member_offers, "u2", client=shop, model=M.MemberOffers)
call("exposure", 200, A.plans.post_exposure, "plus_half", client=shop, body=body(M.OfferMemberIn, {"member_id": "u2"}), model=M.OfferTerms)
call("acceptance", 201, A.plans.post_acceptance, "coupon_gift", client=shop, body=body(M.OfferMemberIn, {"member_id": "u2"}), model=M.AcceptanceOut)
report = call("offer", 200, A.plans.get_offer, "plus_half", client=admin, model=M.OfferReportView).parsed
if report.exposed_members != 1:
    failures.append(f"offer: {report.to_dict()}")

# Events and orders.
paid = {"type": "order.paid", "id": "e1", "member_id": "u1", "occurred_at": "2026-11-22T10:00:00+08:00",
        "order_id": "o1", "lines": [line], "shipping_minor": 600, "total_minor": 6600}
call("order.paid", 201, A.events.post_event, client=shop, body=body(M.OrderPaidIn, paid), model=M.EventView)
review = {"type": "activity", "id": "e2", "member_id": "u1", "occurred_at": "2026-11-22T11:00:00+08:00", "activity": "review"}
batch = call("batch", 200, A.events.post_batch, client=shop, body=body(M.BatchIn, {"events": [review]}), model=M.BatchResult).parsed
if batch.accepted != 1:
    failures.append(f"batch: {batch.to_dict()}")
call("event", 200, A.events.get_event, "e1", client=shop, model=M.EventView)
call("events", 200, A.events.list_events, "u1", client=shop, model=M.EventList)
call("order", 200, A.quotes.get_order, "o1", client=shop, model=M.OrderView)

# Points and tiers.
call("points", 200, A.points.get_points, "u1", client=shop, model=M.PointsView)
call("adjustment", 201, A.points.post_adjustment, "u1", client=admin, body=body(M.AdjustmentIn, {"id": "a1", "points": 500, "reason": "welcome"}), model=M.OperationView)
call("redemption", 201, A.points.post_redemption, "u1", client=shop, body=body(M.RedemptionIn, {"id": "r1", "points": 100}), model=M.OperationView)
call("ledger", 200, A.points.get_ledger, "u1", client=shop, model=M.LedgerList)
call("expiring", 200, A.points.list_expiring, client=admin, within_days=400, model=M.ExpiringList)
call("tier", 200, A.tiers.get_tier, "u1", client=shop, model=M.TierView)
call("tier history", 200, A.tiers.get_tier_history, "u1", client=shop, model=M.TierHistoryList)

# Plans: a code pool, a purchase, a renewal, partners, cancel, refund.
call("codes", 200, A.plans.post_codes, "iqiyi_vip", client=admin, body=body(M.CodesIn, {"codes": ["IQ-1", "IQ-2"]}), model=M.PoolView)
call("pool", 200, A.plans.get_pool, "iqiyi_vip", client=admin, model=M.PoolView)
call("offers", 200, A.plans.member_plans, "u1", client=shop, model=M.PlanOffers)
plus = call("purchase", 201, A.plans.create_subscription, client=shop, body=body(M.SubscriptionIn, {"member_id": "u1", "plan": "plus", "payment_ref": "pay-1"}), model=M.SubscriptionOut).parsed
call("subscription", 200, A.plans.get_subscription, plus.id, client=shop, model=M.SubscriptionOut)
call("renewal", 201, A.plans.post_payment, plus.id, client=shop, body=body(M.PaymentIn, {"payment_ref": "pay-2"}), model=M.SubscriptionOut)
call("subscriptions", 200, A.plans.member_subscriptions, "u1", client=shop, model=M.SubscriptionList)
call("entitlements", 200, A.plans.member_entitlements, "u1", client=shop, model=M.Entitlements)
call("renewals", 200, A.plans.list_renewals, client=admin, model=M.RenewalList)
held = call("partner check", 200, A.partner.partner_member, "u1", client=iqiyi, model=M.PartnerMemberView).parsed
if not held.holds:
    failures.append("partner check: u1 holds PLUS with iQIYI's right")
call("vip88", 201, A.plans.create_subscription, client=shop, body=body(M.SubscriptionIn, {"member_id": "u2", "plan": "vip88", "payment_ref": "pay-3"}), model=M.SubscriptionOut)
call("partner use", 201, A.partner.partner_redemption, client=youku, body=body(M.PartnerRedemptionIn, {"id": "yk-1", "member_id": "u2", "right": "video_bundle"}), model=M.PartnerRedemptionOut)
call("cancel", 200, A.plans.post_cancel, plus.id, client=shop, body=body(M.CancelIn, {"at_period_end": True}), model=M.SubscriptionOut)
call("refund", 200, A.plans.post_refund, plus.id, client=admin, model=M.RefundOut)

# Checkout: coupons, stored value, a quote, a commit, its refund.
call("coupon", 201, A.quotes.issue_coupons, "u1", client=admin, body=body(M.CouponIssueIn, {"id": "c1", "template": "ten_off_99"}), model=M.CouponList)
call("coupons", 200, A.quotes.list_coupons, "u1", client=shop, model=M.CouponPageOut)
call("top-up", 201, A.quotes.post_top_up, "u1", client=shop, body=body(M.TopUpIn, {"offer": "pay_500_get_520", "payment_ref": "tp-1"}), model=M.TopUpOut)
call("stored value", 200, A.quotes.get_stored_value, "u1", client=shop, model=M.StoredValueView)
cart = {"member_id": "u1", "lines": [line, {**line, "sku": "RICE-5KG", "quantity": 1, "unit_price_minor": 6000}], "shipping_minor": 600}
call("quote", 200, A.quotes.post_quote, client=shop, body=body(M.QuoteIn, cart), model=M.QuoteOut)
call("commit", 201, A.quotes.post_order, client=shop, body=body(M.OrderIn, {**cart, "order_id": "SO-2", "stored_value_minor": 1000}), model=M.OrderOut)
call("order refund", 201, A.quotes.post_order_refund, "SO-2", client=shop, body=body(M.OrderRefundIn, {"id": "rf-1", "member_id": "u1", "refund": {"amount_minor": 1000}}), model=M.OrderRefundOut)
call("stored value refund", 200, A.quotes.post_stored_value_refund, "u1", client=admin, body=body(M.StoredValueRefundIn, {"id": "svr-1"}), model=M.StoredValueRefundOut)

# Admin: the clock.
call("clock", 200, A.admin.get_clock, client=admin, model=M.ClockView)
call("set clock", 200, A.admin.set_clock, client=admin, body=body(M.ClockSet, {"now": "2026-12-01T00:00:00Z"}), model=M.ClockView)

# A member's whole life: export, close, erase.
call("export", 200, A.members.export_member, "u3", client=admin, model=M.MemberExport)
call("close", 200, A.members.close_member, "u3", client=admin, model=M.ClosedMemberView)
erased = call("erase", 200, A.members.erase_member, "u3", client=admin, model=M.MemberView).parsed
if not erased.member_id.startswith("erased-"):
    failures.append(f"erase: {erased.member_id}")

missing = sorted(
    f"{method} {template}"
    for method, template, _ in templates
    if not any(code < 500 for code in answered.get((method, template), []))
)
print(f"{len(answered)} of {len(templates)} operations called through the generated client")
for m in missing:
    print(f"  NOT CALLED: {m}")
for f in failures:
    print(f"  FAILED {f}")
server_errors = sorted(f"{m} {t}: {codes}" for (m, t), codes in answered.items() if any(c >= 500 for c in codes))
for e in server_errors:
    print(f"  5xx {e}")
sys.exit(1 if missing or failures or server_errors else 0)
