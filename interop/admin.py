"""Partner systems in the Django admin: ministry staff register a partner and its scope, issue
and revoke its tokens, register and revoke its signing keys, and read every message it sent.

Every change goes through `interop.services` (which checks the role and writes the admin's
history); the forms here only collect and show. Tokens are shown once, on the page that issues
them. Transactions are browse-only; the one thing staff do to one, retrying a callback that
gave up, goes through `interop.dci.callbacks.callback_retry`.
"""

from __future__ import annotations

import datetime
import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminDateWidget, FilteredSelectMultiple
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Max, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from payments.models import enrolment_number
from referrals.models import referral_number
from registry.models import Location, LocationLevel
from spf.admin import is_ministry_staff

from .dci.callbacks import callback_retry
from .dci.config import identity
from .dci.exchange import ENDPOINTS
from .models import (
    CallbackAttempt,
    CallbackStatus,
    Partner,
    PartnerKey,
    PartnerToken,
    Status,
    Transaction,
    TransactionItem,
)
from .services import (
    partner_districts,
    partner_errors,
    partner_key_add,
    partner_key_revoke,
    partner_register,
    partner_token_issue,
    partner_token_revoke,
    partner_update,
)


class MinistryOnly:
    """Partners cross districts and hold the keys to the registry: ministry staff (and superusers) only."""

    def has_module_permission(self, request):
        return is_ministry_staff(request.user)

    def has_view_permission(self, request, obj=None):
        return is_ministry_staff(request.user)


# --- partners ------------------------------------------------------------------------------------


class DistrictChoice(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Location) -> str:
        return obj.name


class WrappedFilteredSelectMultiple(FilteredSelectMultiple):
    """The two-box selector laid out as the admin lays out a model's own (its label on the left)."""

    def render(self, name, value, attrs=None, renderer=None):
        return format_html('<div class="related-widget-wrapper">{}</div>', super().render(name, value, attrs, renderer))


class PartnerForm(forms.ModelForm):
    districts = DistrictChoice(
        queryset=Location.objects.filter(level=LocationLevel.DISTRICT).order_by("name"),
        widget=WrappedFilteredSelectMultiple("districts", is_stacked=False),
        # Required, but the service says so in its own words.
        required=False,
        help_text="The districts whose households and enrolments it may see. Nothing outside them exists for it.",
    )
    callback_url = forms.URLField(
        required=False,
        assume_scheme="https",
        max_length=200,
        widget=forms.URLInput(attrs={"class": "vURLField"}),
        help_text=Partner._meta.get_field("callback_url").help_text,
    )

    class Meta:
        model = Partner
        fields = [
            "code",
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
        ]
        widgets = {"callback_token": forms.PasswordInput(render_value=True, attrs={"autocomplete": "off"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["districts"].initial = partner_districts(self.instance)
            self.fields["code"].disabled = True
            self.fields["code"].help_text = "Never changed: it is in every message its system sends."

    def clean(self):
        data = super().clean()
        errors = partner_errors(
            code=None if self.instance.pk else (data.get("code") or "").strip(),
            name=data.get("name") or "",
            agency=data.get("agency"),
            districts=data.get("districts") or [],
            programmes=data.get("programmes") or [],
            can_search_registry=data.get("can_search_registry", False),
            can_read_enrolments=data.get("can_read_enrolments", False),
            can_update_enrolments=data.get("can_update_enrolments", False),
            callback_url=(data.get("callback_url") or "").strip(),
            pay_point=data.get("pay_point") or "",
            partner=self.instance if self.instance.pk else None,
        )
        for field, problems in errors.items():
            if field in self.errors:
                continue  # the field's own error says it already
            for problem in problems:
                self.add_error(field if field in self.fields else None, problem)
        return data


@admin.register(Partner)
class PartnerAdmin(MinistryOnly, admin.ModelAdmin):
    form = PartnerForm
    change_form_template = "admin/interop/partner/change_form.html"
    list_display = [
        "name",
        "code",
        "agency",
        "district_names",
        "allowed",
        "active_tokens",
        "signs",
        "last_message",
        "active",
    ]
    list_filter = ["active", "agency", "can_search_registry", "can_read_enrolments", "can_update_enrolments"]
    search_fields = ["name", "code", "notes"]
    search_help_text = "A partner's name or code (its sender_id)."
    list_select_related = ["agency", "service_user"]
    filter_horizontal = ["programmes"]
    readonly_fields = ["registry_identity", "tokens_table", "keys_table", "service_user_link", "created"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ["code", "name", "agency", "active"]}),
            (
                "What it may see and do",
                {
                    "fields": [
                        "districts",
                        "programmes",
                        "can_search_registry",
                        "can_read_enrolments",
                        "can_update_enrolments",
                    ],
                    "description": "A partner sees households and enrolments of its districts only, and enrolments "
                    "of its programmes only. An agency's system is given its agency's programmes; its enrolment "
                    "updates become enrolments. Any other system's updates become referrals for the window to send.",
                },
            ),
            (
                "Answers to its system",
                {
                    "fields": ["callback_url", "callback_token", "pay_point"],
                    "description": "Asynchronous searches are answered by a POST to its callback address; nothing is "
                    "ever posted anywhere else.",
                },
            ),
            ("Notes", {"fields": ["notes"]}),
        ]
        if obj is not None:
            fieldsets[1:1] = [
                (
                    "Access",
                    {
                        "fields": ["tokens_table", "keys_table", "service_user_link", "created"],
                        "description": "It sends a token as 'Authorization: Bearer …'. With a signing key registered, "
                        "every message it sends must also be signed (Ed25519).",
                    },
                ),
            ]
            fieldsets.append(("This registry, for the partner's configuration", {"fields": ["registry_identity"]}))
        return fieldsets

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                token_count=Count("tokens", filter=Q(tokens__revoked_at__isnull=True), distinct=True),
                key_count=Count("keys", filter=Q(keys__revoked_at__isnull=True), distinct=True),
                last_received=Max("transactions__received_at"),
            )
            .prefetch_related("service_user__districts")
        )

    def has_add_permission(self, request):
        return is_ministry_staff(request.user)

    def has_change_permission(self, request, obj=None):
        return is_ministry_staff(request.user)

    def has_delete_permission(self, request, obj=None):
        # A partner that has sent messages is history; suspend it instead (active: off).
        return False

    # --- the list --------------------------------------------------------------------------------

    @admin.display(description="districts")
    def district_names(self, obj: Partner) -> str:
        return ", ".join(sorted(d.name for d in obj.service_user.districts.all())) or "—"

    @admin.display(description="may")
    def allowed(self, obj: Partner) -> str:
        words = [
            word
            for flag, word in (
                (obj.can_search_registry, "search the registry"),
                (obj.can_read_enrolments, "read enrolments"),
                (obj.can_update_enrolments, "update enrolments"),
            )
            if flag
        ]
        return "; ".join(words) or "—"

    @admin.display(description="tokens in use", ordering="token_count")
    def active_tokens(self, obj: Partner) -> int:
        return obj.token_count

    @admin.display(description="signs", boolean=True, ordering="key_count")
    def signs(self, obj: Partner) -> bool:
        return obj.key_count > 0

    @admin.display(description="last message", ordering="last_received")
    def last_message(self, obj: Partner) -> str:
        if obj.last_received is None:
            return "—"
        url = reverse("admin:interop_transaction_changelist") + f"?partner__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, timezone.localtime(obj.last_received).strftime("%Y-%m-%d %H:%M"))

    # --- the change page -------------------------------------------------------------------------

    @admin.display(description="tokens")
    def tokens_table(self, obj: Partner) -> str:
        rows = format_html_join(
            "",
            "<tr><td><code>{}…</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    token.prefix,
                    token.label,
                    _when(token.created_at),
                    _when(token.expires_at) if token.expires_at else "never",
                    _when(token.last_used_at) if token.last_used_at else "never used",
                    _token_state(obj, token),
                )
                for token in obj.tokens.order_by("-created_at")
            ),
        )
        issue = reverse("admin:interop_partner_issue_token", args=[obj.pk])
        return format_html(
            '<table class="dci-access"><thead><tr><th>token</th><th>for</th><th>issued</th><th>expires</th>'
            "<th>last used</th><th></th></tr></thead><tbody>{}</tbody></table>"
            '<p><a class="button" href="{}">Issue a token</a></p>',
            rows or mark_safe('<tr><td colspan="6">No token yet: it cannot send anything.</td></tr>'),
            issue,
        )

    @admin.display(description="signing keys")
    def keys_table(self, obj: Partner) -> str:
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            (
                (key.key_id, key.public_key, _when(key.created_at), _key_state(obj, key))
                for key in obj.keys.order_by("-created_at")
            ),
        )
        add = reverse("admin:interop_partner_add_key", args=[obj.pk])
        return format_html(
            '<table class="dci-access"><thead><tr><th>key id</th><th>public key (Ed25519)</th><th>added</th><th></th>'
            "</tr></thead><tbody>{}</tbody></table>"
            '<p><a class="button" href="{}">Add a signing key</a></p>',
            rows or mark_safe('<tr><td colspan="4">No key: its messages are not checked for a signature.</td></tr>'),
            add,
        )

    @admin.display(description="acts as")
    def service_user_link(self, obj: Partner) -> str:
        user = obj.service_user
        url = reverse("admin:spf_user_change", args=[user.pk])
        return format_html(
            '<a href="{}">{}</a> ({}; no password: it cannot sign in, only act through the DCI endpoints)',
            url,
            user.username,
            user.get_role_display().lower(),
        )

    @admin.display(description="registered")
    def created(self, obj: Partner) -> str:
        return f"{_when(obj.created_at)} by {obj.created_by}"

    @admin.display(description="give these to the partner")
    def registry_identity(self, obj: Partner | None = None) -> str:
        me = identity()
        base = "/dci/"
        return format_html(
            '<dl class="dci-identity"><dt>our sender_id (its messages\' receiver_id)</dt><dd><code>{}</code></dd>'
            "<dt>our signing key id</dt><dd><code>{}</code></dd>"
            "<dt>our public key (Ed25519, base64): it checks our answers with it</dt><dd><code>{}</code></dd>"
            '<dt>endpoints (POST, under this site\'s address)</dt><dd><table class="dci-access"><tbody>{}</tbody>'
            "</table></dd></dl>",
            me.sender_id,
            me.key_id,
            me.public_key_base64,
            format_html_join(
                "",
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                ((base + e.path, _endpoint_words(e)) for e in ENDPOINTS),
            ),
        )

    # --- saving through the services -------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {
            "name": data["name"],
            "agency": data.get("agency"),
            "districts": data["districts"],
            "programmes": data.get("programmes") or [],
            "can_search_registry": data.get("can_search_registry", False),
            "can_read_enrolments": data.get("can_read_enrolments", False),
            "can_update_enrolments": data.get("can_update_enrolments", False),
            "callback_url": data.get("callback_url") or "",
            "callback_token": data.get("callback_token") or "",
            "pay_point": data.get("pay_point") or "",
            "active": data.get("active", True),
            "notes": data.get("notes") or "",
        }
        if change:
            saved = partner_update(acting_user=request.user, partner=obj, **fields)
        else:
            saved = partner_register(acting_user=request.user, code=data["code"], **fields)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change):
        # Programmes and districts were saved by the service, with the history.
        pass

    def log_addition(self, request, obj, message):
        # The service wrote the history, in words.
        return None

    def log_change(self, request, obj, message):
        return None

    # --- tokens and keys -------------------------------------------------------------------------

    def get_urls(self):
        own = [
            path(
                "<int:object_id>/tokens/issue/",
                self.admin_site.admin_view(self.issue_token_view),
                name="interop_partner_issue_token",
            ),
            path(
                "<int:object_id>/tokens/<int:token_id>/revoke/",
                self.admin_site.admin_view(self.revoke_token_view),
                name="interop_partner_revoke_token",
            ),
            path(
                "<int:object_id>/keys/add/",
                self.admin_site.admin_view(self.add_key_view),
                name="interop_partner_add_key",
            ),
            path(
                "<int:object_id>/keys/<int:key_id>/revoke/",
                self.admin_site.admin_view(self.revoke_key_view),
                name="interop_partner_revoke_key",
            ),
        ]
        return own + super().get_urls()

    def _partner(self, request: HttpRequest, object_id: int) -> Partner:
        if not self.has_change_permission(request):
            raise PermissionDenied
        return get_object_or_404(Partner.objects.select_related("agency"), pk=object_id)

    def _context(self, request: HttpRequest, partner: Partner, title: str, **more) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "partner": partner,
            "title": title,
            "change_url": reverse("admin:interop_partner_change", args=[partner.pk]),
            **more,
        }

    def issue_token_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        partner = self._partner(request, object_id)
        form = IssueTokenForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            expires = form.cleaned_data.get("expires_on")
            expires_at = (
                timezone.make_aware(datetime.datetime.combine(expires, datetime.time(23, 59, 59))) if expires else None
            )
            try:
                token, raw = partner_token_issue(
                    acting_user=request.user, partner=partner, label=form.cleaned_data["label"], expires_at=expires_at
                )
            except ValidationError as problem:
                for field, errors in problem.message_dict.items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
            else:
                response = TemplateResponse(
                    request,
                    "admin/interop/partner/token_issued.html",
                    self._context(request, partner, f"Token for {partner.name}", token=token, raw=raw),
                )
                # The one page that shows the token: no cache, no browser history copy.
                response["Cache-Control"] = "no-store"
                return response
        return TemplateResponse(
            request,
            "admin/interop/partner/issue_token.html",
            self._context(request, partner, f"Issue a token for {partner.name}", form=form),
            status=400 if form.errors else 200,
        )

    def revoke_token_view(self, request: HttpRequest, object_id: int, token_id: int) -> HttpResponse:
        partner = self._partner(request, object_id)
        token = get_object_or_404(PartnerToken, pk=token_id, partner=partner)
        if request.method == "POST":
            partner_token_revoke(acting_user=request.user, token=token)
            messages.success(request, f"Token {token.prefix}… ({token.label}) is revoked: it is refused from now on.")
            return HttpResponseRedirect(reverse("admin:interop_partner_change", args=[partner.pk]))
        what = f"token {token.prefix}… ({token.label})"
        return TemplateResponse(
            request,
            "admin/interop/partner/confirm_revoke.html",
            self._context(
                request,
                partner,
                f"Revoke {what}?",
                what=what,
                consequence=f"{partner.name}'s requests with this token will be refused at once (401).",
            ),
        )

    def add_key_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        partner = self._partner(request, object_id)
        form = AddKeyForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                key = partner_key_add(
                    acting_user=request.user,
                    partner=partner,
                    key_id=form.cleaned_data["key_id"],
                    public_key=form.cleaned_data["public_key"],
                )
            except ValidationError as problem:
                for field, errors in problem.message_dict.items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
            else:
                messages.success(
                    request, f"Key {key.key_id} added: every message from {partner.name} must now be signed."
                )
                return HttpResponseRedirect(reverse("admin:interop_partner_change", args=[partner.pk]))
        return TemplateResponse(
            request,
            "admin/interop/partner/add_key.html",
            self._context(request, partner, f"Add a signing key for {partner.name}", form=form),
            status=400 if form.errors else 200,
        )

    def revoke_key_view(self, request: HttpRequest, object_id: int, key_id: int) -> HttpResponse:
        partner = self._partner(request, object_id)
        key = get_object_or_404(PartnerKey, pk=key_id, partner=partner)
        if request.method == "POST":
            partner_key_revoke(acting_user=request.user, key=key)
            messages.success(request, f"Key {key.key_id} is revoked.")
            return HttpResponseRedirect(reverse("admin:interop_partner_change", args=[partner.pk]))
        last = not partner.keys.filter(revoked_at__isnull=True).exclude(pk=key.pk).exists()
        consequence = "Messages signed with it will be refused (401)."
        if last:
            consequence += " It is the partner's last key: its messages will no longer be checked for a signature."
        return TemplateResponse(
            request,
            "admin/interop/partner/confirm_revoke.html",
            self._context(
                request, partner, f"Revoke key {key.key_id}?", what=f"key {key.key_id}", consequence=consequence
            ),
        )


def _endpoint_words(endpoint) -> str:
    what = {
        "search": "search",
        "enrolled": "is this person enrolled?",
        "notify": "enrolment updates",
        "txn-status": "status of an earlier message",
    }[endpoint.action]
    api = "Social Registry" if endpoint.api == "social" else "Beneficiary Registry"
    how = "answered at once" if endpoint.mode == "sync" else "acknowledged, answered at its callback address"
    return f"{api}: {what}, {how}"


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else "—"


def _token_state(partner: Partner, token: PartnerToken) -> str:
    if token.revoked_at:
        return format_html("<span class='dci-revoked'>revoked {}</span>", _when(token.revoked_at))
    if not token.is_usable():
        return mark_safe("<span class='dci-revoked'>expired</span>")
    url = reverse("admin:interop_partner_revoke_token", args=[partner.pk, token.pk])
    return format_html('<a href="{}">Revoke…</a>', url)


def _key_state(partner: Partner, key: PartnerKey) -> str:
    if key.revoked_at:
        return format_html("<span class='dci-revoked'>revoked {}</span>", _when(key.revoked_at))
    url = reverse("admin:interop_partner_revoke_key", args=[partner.pk, key.pk])
    return format_html('<a href="{}">Revoke…</a>', url)


class IssueTokenForm(forms.Form):
    label = forms.CharField(
        max_length=120, help_text="Which server or environment will use it, e.g. 'production gateway'."
    )
    expires_on = forms.DateField(
        required=False,
        widget=AdminDateWidget,
        help_text="Optional: the last day it is accepted. Tokens can be revoked at any time.",
    )

    def clean_expires_on(self):
        day = self.cleaned_data.get("expires_on")
        if day is not None and day < timezone.localdate():
            raise ValidationError("The last day must be today or later.")
        return day


class AddKeyForm(forms.Form):
    key_id = forms.CharField(
        max_length=64, help_text='As its signatures name it: kidId="{sender_id}|{key_id}|ed25519".'
    )
    public_key = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="The Ed25519 public key: base64 of the 32 bytes (44 characters), hex, or a PEM/DER public key's base64.",
    )


# --- transactions --------------------------------------------------------------------------------


class TransactionItemInline(admin.TabularInline):
    model = TransactionItem
    extra = 0
    can_delete = False
    fields = ["position", "reference_id", "status", "status_reason_code", "status_reason_message", "found", "made"]
    readonly_fields = fields
    verbose_name = "request"
    verbose_name_plural = "requests in the message"

    def has_view_permission(self, request, obj=None):
        return is_ministry_staff(request.user)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="matched / returned")
    def found(self, item: TransactionItem) -> str:
        if item.total_count is None:
            return "—"
        return f"{item.total_count} / {item.returned_count} (page {item.page_number} of size {item.page_size})"

    @admin.display(description="made here")
    def made(self, item: TransactionItem) -> str:
        if item.enrolment_id:
            number = enrolment_number(item.enrolment_id)
            return format_html('enrolment <a href="{}">{}</a>', reverse("payments:enrolment", args=[number]), number)
        if item.referral_id:
            number = referral_number(item.referral_id)
            return format_html('referral <a href="{}">{}</a>', reverse("referrals:referral", args=[number]), number)
        return "—"


class CallbackAttemptInline(admin.TabularInline):
    model = CallbackAttempt
    extra = 0
    can_delete = False
    fields = ["at", "url", "status_code", "latency_ms", "error"]
    readonly_fields = fields
    verbose_name_plural = "callback attempts"

    def has_view_permission(self, request, obj=None):
        return is_ministry_staff(request.user)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Transaction)
class TransactionAdmin(MinistryOnly, admin.ModelAdmin):
    change_form_template = "admin/interop/transaction/change_form.html"
    list_display = [
        "received",
        "partner_code",
        "exchange",
        "message_id",
        "status_badge",
        "record_count",
        "callback",
        "duration",
    ]
    list_filter = ["partner", "api", "action", "mode", "status", "callback_status", "received_at"]
    list_select_related = ["partner"]
    search_fields = ["message_id", "transaction_id", "correlation_id", "items__reference_id"]
    search_help_text = "A message_id, the partner's transaction_id, our correlation_id, or a reference_id."
    date_hierarchy = "received_at"
    ordering = ["-received_at", "-id"]
    show_full_result_count = False
    inlines = [TransactionItemInline, CallbackAttemptInline]
    actions = ["retry_callback"]
    fieldsets = [
        (None, {"fields": ["partner", "exchange", "endpoint", "received_at", "completed_at", "duration"]}),
        (
            "Identifiers",
            {"fields": ["message_id", "transaction_id", "correlation_id"]},
        ),
        (
            "Outcome",
            {
                "fields": [
                    "status",
                    "status_reason_code",
                    "status_reason_message",
                    "item_count",
                    "completed_count",
                    "record_count",
                ]
            },
        ),
        (
            "Callback",
            {
                "fields": [
                    "callback_url",
                    "callback_status",
                    "callback_attempts",
                    "callback_next_at",
                    "callback_delivered_at",
                    "callback_last_error",
                ]
            },
        ),
        ("The message as received", {"fields": ["header_text", "request_note"]}),
    ]
    readonly_fields = [
        "partner",
        "exchange",
        "endpoint",
        "received_at",
        "completed_at",
        "duration",
        "message_id",
        "transaction_id",
        "correlation_id",
        "status",
        "status_reason_code",
        "status_reason_message",
        "item_count",
        "completed_count",
        "record_count",
        "callback_url",
        "callback_status",
        "callback_attempts",
        "callback_next_at",
        "callback_delivered_at",
        "callback_last_error",
        "header_text",
        "request_note",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_retry_permission(self, request) -> bool:
        return is_ministry_staff(request.user)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                refused_items=Count("items", filter=Q(items__status=Status.REJECTED)),
                waiting_items=Count("items", filter=Q(items__status=Status.PENDING)),
            )
        )

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and not obj.callback_status and not obj.callback_url:
            fieldsets = [f for f in fieldsets if f[0] != "Callback"]
        return fieldsets

    def get_inlines(self, request, obj):
        if obj is not None and not obj.callback_attempts:
            return [TransactionItemInline]
        return self.inlines

    @admin.display(description="received", ordering="received_at")
    def received(self, obj: Transaction) -> str:
        return timezone.localtime(obj.received_at).strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description="partner", ordering="partner__code")
    def partner_code(self, obj: Transaction) -> str:
        return obj.partner.code

    @admin.display(description="exchange", ordering="action")
    def exchange(self, obj: Transaction) -> str:
        return f"{obj.get_api_display()}: {obj.get_action_display().lower()} ({obj.mode})"

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Transaction) -> str:
        label = obj.get_status_display()
        if obj.status == Status.REJECTED:
            reason = obj.status_reason_code or "see the requests"
            return format_html('<strong class="spf-alert">{}</strong><br><small>{}</small>', label, reason)
        # The message was processed; its requests each have their own outcome.
        parts = []
        refused, waiting = getattr(obj, "refused_items", 0), getattr(obj, "waiting_items", 0)
        if refused:
            parts.append(format_html('<span class="spf-alert">{} of {} refused</span>', refused, obj.item_count))
        if waiting:
            parts.append(format_html("{} of {} waiting", waiting, obj.item_count))
        if not parts:
            return label
        return format_html("{}<br><small>{}</small>", label, format_html_join("; ", "{}", ((p,) for p in parts)))

    @admin.display(description="callback", ordering="callback_status")
    def callback(self, obj: Transaction) -> str:
        if not obj.callback_status:
            return "—"
        label = obj.get_callback_status_display()
        if obj.callback_status == CallbackStatus.FAILED:
            return format_html('<strong class="spf-alert">{}</strong>', label)
        return f"{label} ({obj.callback_attempts} tr{'y' if obj.callback_attempts == 1 else 'ies'})"

    @admin.display(description="took")
    def duration(self, obj: Transaction) -> str:
        return f"{obj.duration_ms} ms" if obj.duration_ms is not None else "—"

    @admin.display(description="header")
    def header_text(self, obj: Transaction) -> str:
        return format_html('<pre class="spf-pre-wrap">{}</pre>', json.dumps(obj.header, indent=2, ensure_ascii=False))

    @admin.display(description="message")
    def request_note(self, obj: Transaction) -> str:
        if obj.request is None:
            return "Not kept: it may name people, and is cleared once answered (or after the retention period)."
        return "Kept until it is answered (asynchronous, not processed yet)."

    @admin.action(description="Retry the callback", permissions=["retry"])
    def retry_callback(self, request: HttpRequest, queryset: QuerySet) -> None:
        retried = 0
        for row in queryset:
            try:
                callback_retry(transaction_pk=row.pk, acting_user=request.user)
            except (ValidationError, PermissionDenied) as problem:
                text = " ".join(problem.messages) if isinstance(problem, ValidationError) else str(problem)
                self.message_user(request, f"{row.message_id}: {text}", messages.WARNING)
            else:
                retried += 1
        if retried:
            self.message_user(request, f"{retried} callback{'s' if retried != 1 else ''} will be sent again now.")
