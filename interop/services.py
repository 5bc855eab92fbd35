"""Every write about partner systems: registering one and changing its scope,
issuing and revoking its tokens, adding and revoking its keys.

Only ministry staff do these. Each is one transaction that also writes the
admin's history (who, when, what), so Admin → Log entries answers "who gave
this system access to Lunga, and when?".

A partner acts through its own service user, made and kept in step here:
its districts are the partner's districts (what `spf.scope` reads), its role
is a programme officer of the partner's agency (an agency's system) or a
read-only committee member (any other system). It has no usable password: it
cannot sign in anywhere, only act through the DCI endpoints.
"""

import base64
import hashlib
import secrets
import urllib.parse
from collections.abc import Iterable

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from programmes.models import Agency, Programme
from registry.models import Location, LocationLevel
from spf.models import Role, User

from .dci.signatures import decode_public_key
from .models import Partner, PartnerKey, PartnerToken

# A token is "dci_" and 43 URL-safe characters: 256 random bits, recognisable
# in a leaked log or a repository by its prefix.
TOKEN_PREFIX = "dci_"
TOKEN_RANDOM_BYTES = 32
# The characters of a token kept to recognise it in the list (never enough to use it).
TOKEN_SHOWN_CHARACTERS = 10
SERVICE_USER_PREFIX = "dci-"

PARTNER_FIELDS = (
    "name",
    "agency",
    "districts",
    "programmes",
    "can_search_registry",
    "can_read_enrolments",
    "can_update_enrolments",
    "callback_url",
    "callback_token",
    "pay_point",
    "active",
    "notes",
)


def _require_ministry(user) -> None:
    if not (user is not None and user.is_active and user.sees_every_district):
        raise PermissionDenied("Only ministry staff manage partner systems.")


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.strip().encode("utf-8")).hexdigest()


def _log(acting_user, obj, flag: int, message: str) -> None:
    LogEntry.objects.create(
        user=acting_user,
        content_type=ContentType.objects.get_for_model(type(obj)),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action_flag=flag,
        change_message=message,
    )


# --- partners ------------------------------------------------------------------------------


def partner_errors(
    *,
    code: str | None = None,
    name: str,
    agency: Agency | None,
    districts: Iterable[Location],
    programmes: Iterable[Programme],
    can_search_registry: bool,
    can_read_enrolments: bool,
    can_update_enrolments: bool,
    callback_url: str,
    pay_point: str,
    partner: Partner | None = None,
) -> dict[str, list[str]]:
    """What is wrong with these settings for a partner, by field (empty when nothing is).

    The admin's form shows these next to its fields; the services refuse the same things."""
    errors: dict[str, list[str]] = {}
    districts, programmes = list(districts), list(programmes)
    if code is not None:
        if not code:
            errors["code"] = ["Give the code its messages carry as header.sender_id."]
        elif Partner.objects.filter(code=code).exclude(pk=getattr(partner, "pk", None)).exists():
            errors["code"] = [f"Another partner already has the code {code}."]
        elif User.objects.filter(username=SERVICE_USER_PREFIX + code.lower()).exists():
            errors["code"] = [f"A user named {SERVICE_USER_PREFIX + code.lower()} already exists; choose another code."]
    if not name.strip():
        errors["name"] = ["Give the system's name, e.g. 'National Social Registry'."]
    if not districts:
        errors["districts"] = ["Choose the districts whose households it may see."]
    elif any(d.level != LocationLevel.DISTRICT for d in districts):
        errors["districts"] = ["Choose districts only (not provinces, wards or villages)."]
    if agency is not None:
        others = sorted(p.code for p in programmes if p.agency_id != agency.pk)
        if others:
            errors["programmes"] = [
                f"An agency's system sees only its agency's programmes; {', '.join(others)} "
                f"{'is' if len(others) == 1 else 'are'} not {agency.code}'s."
            ]
    if (can_read_enrolments or can_update_enrolments) and not programmes and "programmes" not in errors:
        errors["programmes"] = ["Choose the programmes whose enrolments it may read or update."]
    if not (can_search_registry or can_read_enrolments or can_update_enrolments):
        errors["can_search_registry"] = ["Allow at least one kind of exchange, or it can do nothing."]
    if callback_url:
        parts = urllib.parse.urlsplit(callback_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            errors["callback_url"] = ["Give an http(s) address, e.g. https://nsr.example.gov/dci."]
        elif parts.query or parts.fragment:
            errors["callback_url"] = ["Give the base address only, without ?query or #fragment."]
    if agency is not None and can_update_enrolments and not pay_point.strip():
        errors["pay_point"] = [
            "An agency's system that sends enrolment updates creates enrolments: give the pay point they are paid "
            "at (in cash) until an officer records each household's own payment details."
        ]
    return errors


def _sync_service_user(partner: Partner, districts: list[Location]) -> None:
    user = partner.service_user
    user.role = Role.PROGRAMME_OFFICER if partner.agency_id else Role.COMMITTEE
    user.agency = partner.agency
    user.is_active = partner.active
    user.is_staff = False
    user.first_name = partner.name[:150]
    user.last_name = "(DCI partner system)"
    user.save()
    user.districts.set(districts)


@transaction.atomic
def partner_register(
    *,
    acting_user,
    code: str,
    name: str,
    districts: Iterable[Location],
    agency: Agency | None = None,
    programmes: Iterable[Programme] = (),
    can_search_registry: bool = False,
    can_read_enrolments: bool = False,
    can_update_enrolments: bool = False,
    callback_url: str = "",
    callback_token: str = "",
    pay_point: str = "",
    active: bool = True,
    notes: str = "",
) -> Partner:
    """Register a partner system with its scope; it can do nothing until a token is issued."""
    _require_ministry(acting_user)
    code, districts, programmes = code.strip(), list(districts), list(programmes)
    errors = partner_errors(
        code=code,
        name=name,
        agency=agency,
        districts=districts,
        programmes=programmes,
        can_search_registry=can_search_registry,
        can_read_enrolments=can_read_enrolments,
        can_update_enrolments=can_update_enrolments,
        callback_url=callback_url.strip(),
        pay_point=pay_point,
    )
    if errors:
        raise ValidationError(errors)
    user = User(username=SERVICE_USER_PREFIX + code.lower())
    user.set_unusable_password()
    user.save()
    partner = Partner.objects.create(
        code=code,
        name=name.strip(),
        agency=agency,
        service_user=user,
        can_search_registry=can_search_registry,
        can_read_enrolments=can_read_enrolments,
        can_update_enrolments=can_update_enrolments,
        callback_url=callback_url.strip(),
        callback_token=callback_token.strip(),
        pay_point=pay_point.strip(),
        active=active,
        notes=notes.strip(),
        created_by=acting_user,
    )
    partner.programmes.set(programmes)
    _sync_service_user(partner, districts)
    _log(
        acting_user,
        partner,
        ADDITION,
        f"Registered partner system {code}: districts {', '.join(sorted(d.code for d in districts))}; "
        f"programmes {', '.join(sorted(p.code for p in programmes)) or 'none'}.",
    )
    return partner


def partner_districts(partner: Partner) -> list[Location]:
    return list(partner.service_user.districts.order_by("name"))


@transaction.atomic
def partner_update(*, acting_user, partner: Partner, **changes) -> Partner:
    """Change a partner's name, scope, permissions, callback or state; the code never changes."""
    _require_ministry(acting_user)
    unknown = set(changes) - set(PARTNER_FIELDS)
    if unknown:
        raise TypeError(f"partner_update() cannot change {', '.join(sorted(unknown))}")
    partner = Partner.objects.select_for_update().select_related("service_user").get(pk=partner.pk)
    before = {
        **{field: getattr(partner, field) for field in PARTNER_FIELDS if field not in ("districts", "programmes")},
        "districts": partner_districts(partner),
        "programmes": list(partner.programmes.order_by("code")),
    }
    after = {**before, **changes}
    after["districts"], after["programmes"] = list(after["districts"]), list(after["programmes"])
    for text in ("name", "callback_url", "callback_token", "pay_point", "notes"):
        after[text] = (after[text] or "").strip()
    errors = partner_errors(
        name=after["name"],
        agency=after["agency"],
        districts=after["districts"],
        programmes=after["programmes"],
        can_search_registry=after["can_search_registry"],
        can_read_enrolments=after["can_read_enrolments"],
        can_update_enrolments=after["can_update_enrolments"],
        callback_url=after["callback_url"],
        pay_point=after["pay_point"],
        partner=partner,
    )
    if errors:
        raise ValidationError(errors)
    described = []
    for field in PARTNER_FIELDS:
        old, new = before[field], after[field]
        if field in ("districts", "programmes"):
            old_codes, new_codes = sorted(x.code for x in old), sorted(x.code for x in new)
            if old_codes != new_codes:
                described.append(f"{field}: {', '.join(old_codes) or 'none'} → {', '.join(new_codes) or 'none'}")
        elif old != new:
            shown = (lambda v: "(set)" if v else "(none)") if field == "callback_token" else str
            described.append(f"{field}: {shown(old) or '—'} → {shown(new) or '—'}")
    if not described:
        return partner
    for field in PARTNER_FIELDS:
        if field not in ("districts", "programmes"):
            setattr(partner, field, after[field])
    partner.save()
    partner.programmes.set(after["programmes"])
    _sync_service_user(partner, after["districts"])
    _log(acting_user, partner, CHANGE, "Changed " + "; ".join(described) + ".")
    return partner


# --- tokens ------------------------------------------------------------------------------


@transaction.atomic
def partner_token_issue(*, acting_user, partner: Partner, label: str, expires_at=None) -> tuple[PartnerToken, str]:
    """A new bearer token for the partner: returns the row and the token itself, which is never shown again."""
    _require_ministry(acting_user)
    if not label.strip():
        raise ValidationError({"label": ["Say which server or environment will use the token."]})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": ["The expiry must be in the future."]})
    raw = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_RANDOM_BYTES)
    token = PartnerToken.objects.create(
        partner=partner,
        label=label.strip()[:120],
        token_hash=token_hash(raw),
        prefix=raw[:TOKEN_SHOWN_CHARACTERS],
        expires_at=expires_at,
        created_by=acting_user,
    )
    _log(
        acting_user,
        partner,
        CHANGE,
        f"Issued token {token.prefix}… ({token.label})"
        + (f", expiring {expires_at:%Y-%m-%d %H:%M}" if expires_at else "")
        + ".",
    )
    return token, raw


@transaction.atomic
def partner_token_revoke(*, acting_user, token: PartnerToken) -> PartnerToken:
    """Refuse this token from now on (the next request with it gets 401)."""
    _require_ministry(acting_user)
    token = PartnerToken.objects.select_for_update().select_related("partner").get(pk=token.pk)
    if token.revoked_at is not None:
        return token
    token.revoked_at, token.revoked_by = timezone.now(), acting_user
    token.save(update_fields=["revoked_at", "revoked_by"])
    _log(acting_user, token.partner, CHANGE, f"Revoked token {token.prefix}… ({token.label}).")
    return token


# --- keys --------------------------------------------------------------------------------


@transaction.atomic
def partner_key_add(*, acting_user, partner: Partner, key_id: str, public_key: str) -> PartnerKey:
    """Register a public key: from now on every message of the partner must be signed (by any active key)."""
    _require_ministry(acting_user)
    key_id = (key_id or "").strip()
    errors: dict[str, list[str]] = {}
    if not key_id or "|" in key_id or len(key_id) > 64:
        errors["key_id"] = ["Give the key's id as its signatures name it (up to 64 characters, no '|')."]
    elif partner.keys.filter(key_id=key_id).exists():
        errors["key_id"] = [f"{partner.code} already has a key {key_id}; give the new key another id."]
    try:
        raw = decode_public_key(public_key)
    except ValueError as problem:
        errors["public_key"] = [str(problem)]
    if errors:
        raise ValidationError(errors)
    key = PartnerKey.objects.create(
        partner=partner, key_id=key_id, public_key=base64.b64encode(raw).decode("ascii"), created_by=acting_user
    )
    _log(acting_user, partner, CHANGE, f"Added signing key {key_id}: its messages must now be signed.")
    return key


@transaction.atomic
def partner_key_revoke(*, acting_user, key: PartnerKey) -> PartnerKey:
    """Refuse signatures made with this key from now on."""
    _require_ministry(acting_user)
    key = PartnerKey.objects.select_for_update().select_related("partner").get(pk=key.pk)
    if key.revoked_at is not None:
        return key
    key.revoked_at, key.revoked_by = timezone.now(), acting_user
    key.save(update_fields=["revoked_at", "revoked_by"])
    still = key.partner.keys.filter(revoked_at__isnull=True).count()
    _log(
        acting_user,
        key.partner,
        CHANGE,
        f"Revoked signing key {key.key_id}."
        + ("" if still else " It has no key left: its messages are no longer checked for a signature."),
    )
    return key


__all__ = [
    "partner_errors",
    "partner_key_add",
    "partner_key_revoke",
    "partner_register",
    "partner_token_issue",
    "partner_token_revoke",
    "partner_update",
    "token_hash",
]
