"""The ministry's catalogue in the Django admin: agencies (and how each receives
referrals), programmes, where they run, their versioned rules, bulk
re-assessments, and (read-only) the stored eligibility.

A rule or formula is never written here: the rule editor hands the draft to
`programme_set_rules` / `rule_version_restore`, which validate it, keep every
version and re-assess the programme; the version list's "Restore" and the
runs' "Run again" call the same services. Eligibility results and their change
events are the engine's output, browse-only and scoped to the user's districts
like the registry's households; so are where programmes run and the runs.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from registry.admin import (
    FRONT_DESK_HOUSEHOLD_PATH,
    DistrictFilter,
    DistrictScopedAdmin,
    HouseholdDistrictFilter,
    ReadOnlyAdminMixin,
)
from registry.countries import current_country
from spf.admin import MinistryRoleAccess, NotFoundOutsideScope
from spf.outbox import job_queue
from spf.scope import scope_to_user

from . import tasks
from .forms import ProgrammeAdminForm, RuleEditorForm, rule_error_pointers, show_rule_errors
from .models import (
    Agency,
    EligibilityChange,
    EligibilityResult,
    Programme,
    ProgrammeDistrict,
    ProgrammeStatus,
    RecomputeRun,
    RecomputeStatus,
    ReferralDelivery,
    RuleVersion,
)
from .selectors import programme_recent_runs, programme_versions, rule_preview
from .services import programme_set_rules, recompute_run_create, rule_version_restore

# The rule editor lists this many versions; older ones stay in the
# rule-version list, filtered to the programme.
VERSIONS_SHOWN = 20


class MinistryManagedAdmin(MinistryRoleAccess, admin.ModelAdmin):
    """Ministry staff manage the catalogue by their role; other staff need Django's model permissions.

    The catalogue (agencies, programmes, their rules) is public and has no
    district: it is not scoped. What has a district (coverage, runs) is.
    """

    ministry_may = ("view", "add", "change")

    def has_delete_permission(self, request, obj=None):
        # A programme or agency that ever assessed anyone is closed or retired,
        # not deleted: its results, referrals and history point at it.
        return False


@transaction.atomic
def queue_recompute(*, acting_user, programme: Programme, reason: str) -> RecomputeRun:
    """A bulk re-assessment of one programme, queued once the run row is committed."""
    run = recompute_run_create(acting_user=acting_user, programme=programme, reason=reason)
    job_queue(task=tasks.recompute_run_execute, args=[run.pk])
    return run


# --- agencies ------------------------------------------------------------------------


class AgencyAdminForm(forms.ModelForm):
    # An address typed without its scheme is the agency's HTTPS endpoint.
    webhook_url = forms.URLField(
        label="Webhook URL",
        required=False,
        assume_scheme="https",
        max_length=200,
        widget=forms.URLInput(attrs={"class": "vURLField", "style": "width: 36em"}),
        help_text="For push delivery: where each referral is POSTed (HTTPS).",
    )
    webhook_secret = forms.CharField(
        label="Shared secret",
        required=False,
        max_length=128,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="For push delivery: the long random string agreed with the agency; it signs each request "
        "(HMAC-SHA256). Never shown again once saved.",
    )

    class Meta:
        model = Agency
        fields = [
            "code",
            "name",
            "kind",
            "active",
            "focal_point_name",
            "focal_point_title",
            "email",
            "phone",
            "address",
            "referral_delivery",
            "webhook_url",
            "webhook_secret",
        ]
        # An agency's full name is long ("Ministry of Community Development and Social Services").
        widgets = {"name": forms.TextInput(attrs={"class": "vTextField", "style": "width: 36em"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.webhook_secret:
            self.fields[
                "webhook_secret"
            ].help_text = (
                "A secret is set. Leave this empty to keep it; type a new one to replace it (tell the agency first)."
            )

    def clean_webhook_secret(self) -> str:
        # The secret is write-only: an empty box keeps the one already set.
        typed = self.cleaned_data.get("webhook_secret", "")
        return typed or (self.instance.webhook_secret if self.instance.pk else "")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("referral_delivery") == ReferralDelivery.WEBHOOK:
            if not cleaned.get("webhook_url") and "webhook_url" not in self.errors:
                self.add_error("webhook_url", "Push delivery needs the URL each referral is POSTed to.")
            if not cleaned.get("webhook_secret"):
                self.add_error("webhook_secret", "Push delivery needs the shared secret that signs each request.")
        return cleaned


@admin.register(Agency)
class AgencyAdmin(MinistryManagedAdmin):
    form = AgencyAdminForm
    list_display = [
        "code",
        "name",
        "kind",
        "focal_point_name",
        "email",
        "phone",
        "referral_delivery",
        "programme_count",
        "active",
    ]
    list_filter = ["kind", "referral_delivery", "active"]
    search_fields = ["code", "name", "focal_point_name", "email"]
    search_help_text = "A code, a name, the focal point or an e-mail address."
    readonly_fields = ["elsewhere"]
    fieldsets = (
        (None, {"fields": ("code", "name", "kind", "active")}),
        ("Focal point and contact", {"fields": ("focal_point_name", "focal_point_title", "email", "phone", "address")}),
        (
            "How it receives referrals",
            {
                "fields": ("referral_delivery", "webhook_url", "webhook_secret"),
                "description": "Queue: its officers work a list here. Pull: its system reads the API with a token. "
                "Push: each referral is POSTed to its URL, signed with the shared secret (docs/delivery.md).",
            },
        ),
        ("Elsewhere", {"fields": ("elsewhere",)}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(programme_total=Count("programmes"))

    def get_fieldsets(self, request, obj=None):
        # A new agency has no programmes or deliveries to link to yet.
        return self.fieldsets if obj is not None else self.fieldsets[:-1]

    @admin.display(description="programmes", ordering="programme_total")
    def programme_count(self, obj: Agency) -> int:
        return obj.programme_total

    @admin.display(description="see")
    def elsewhere(self, obj: Agency) -> str:
        return format_html(
            '<a href="{}?agency__id__exact={}">its programmes</a> · '
            '<a href="{}?agency__id__exact={}">its referrals</a> · '
            '<a href="{}?agency__id__exact={}&amp;status__exact=failed">its failed deliveries</a> · '
            '<a href="{}?agency__id__exact={}">its officers</a>',
            reverse("admin:programmes_programme_changelist"),
            obj.pk,
            reverse("admin:referrals_referral_changelist"),
            obj.pk,
            reverse("admin:referrals_delivery_changelist"),
            obj.pk,
            reverse("admin:spf_user_changelist"),
            obj.pk,
        )


# --- programmes ----------------------------------------------------------------------------


class ProgrammeDistrictInline(MinistryRoleAccess, admin.TabularInline):
    model = ProgrammeDistrict
    # Leaving a district is allowed: the next run removes its results there.
    ministry_may = ("view", "add", "change", "delete")
    fields = ["district", "capacity", "budget"]
    extra = 0
    verbose_name = "district where it runs"
    verbose_name_plural = "districts where it runs (capacity and yearly budget in each)"


@admin.action(description="Recompute the selected programmes now")
def recompute_now(modeladmin, request, queryset):
    count = 0
    for programme in queryset.filter(status=ProgrammeStatus.ACTIVE, current_version__isnull=False).order_by("pk"):
        queue_recompute(acting_user=request.user, programme=programme, reason="requested in the admin")
        count += 1
    skipped = queryset.count() - count
    if count:
        modeladmin.message_user(request, f"Re-assessing {count} programme(s) in the background.", messages.SUCCESS)
    if skipped:
        modeladmin.message_user(
            request,
            f"{skipped} programme(s) skipped: only active programmes with a rule are assessed.",
            messages.WARNING,
        )


@admin.register(Programme)
class ProgrammeAdmin(MinistryManagedAdmin):
    form = ProgrammeAdminForm
    change_form_template = "programmes/admin/programme_change_form.html"
    list_display = ["code", "name", "agency", "kind", "status", "enrolment_mode", "rule_version", "district_names"]
    list_filter = ["status", "kind", "enrolment_mode", "agency"]
    list_select_related = ["agency", "current_version"]
    search_fields = ["code", "name", "agency__name", "agency__code"]
    inlines = [ProgrammeDistrictInline]
    actions = [recompute_now]
    readonly_fields = ["rules_summary"]
    fieldsets = (
        (None, {"fields": ("code", "name", "agency", "status")}),
        (
            "For citizens",
            {"fields": ("description", "kind", "target_unit", "frequency", "currency", "enrolment_mode", "documents")},
        ),
        ("Eligibility rule and benefit formula", {"fields": ("rules_summary",)}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("coverage__district")

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("currency", current_country().currency)
        return initial

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            # A new programme gets its rule in the rule editor, once it exists.
            return self.fieldsets[:2]
        return self.fieldsets

    @admin.display(description="rules")
    def rule_version(self, obj: Programme) -> str:
        if not obj.current_version_id:
            return format_html('<a href="{}">write the rule</a>', self.rules_url(obj))
        return format_html('<a href="{}">v{}</a>', self.rules_url(obj), obj.current_version.number)

    @admin.display(description="districts")
    def district_names(self, obj: Programme) -> str:
        return ", ".join(coverage.district.name for coverage in obj.coverage.all()) or "—"

    @admin.display(description="current rules")
    def rules_summary(self, obj: Programme) -> str:
        version = obj.current_version
        if version is None:
            body = format_html('<p class="rule-missing">{}</p>', "No rule yet: nobody is assessed for this programme.")
        else:
            body = format_html(
                '<p class="rule-meta">Version {} by {}, {}</p>'
                '<p class="rule-label">Eligibility rule</p><pre class="rule-text">{}</pre>'
                '<p class="rule-label">Benefit formula</p><pre class="rule-text">{}</pre>',
                version.number,
                _who(version),
                timezone.localtime(version.created_at).strftime("%d %b %Y %H:%M"),
                version.eligibility_rule,
                version.benefit_formula or "(no amount)",
            )
        return format_html(
            '{}<p><a class="button" href="{}">Edit the rule and formula, preview, history</a></p>',
            body,
            self.rules_url(obj),
        )

    def rules_url(self, obj: Programme) -> str:
        return reverse("admin:programmes_programme_rules", args=[obj.pk])

    def response_add(self, request, obj, post_url_continue=None):
        if "_addanother" not in request.POST and "_continue" not in request.POST:
            self.message_user(request, "Now write who is eligible and how much they receive.", messages.INFO)
            return HttpResponseRedirect(self.rules_url(obj))
        return super().response_add(request, obj, post_url_continue)

    # --- the rule editor --------------------------------------------------------------

    def get_urls(self):
        own = [
            path(
                "<int:object_id>/rules/", self.admin_site.admin_view(self.rules_view), name="programmes_programme_rules"
            ),
            path(
                "<int:object_id>/rules/v<int:number>/",
                self.admin_site.admin_view(self.version_view),
                name="programmes_programme_version",
            ),
            path(
                "<int:object_id>/rules/v<int:number>/restore/",
                self.admin_site.admin_view(self.restore_view),
                name="programmes_programme_restore",
            ),
            path(
                "<int:object_id>/recompute/",
                self.admin_site.admin_view(self.recompute_view),
                name="programmes_programme_recompute",
            ),
        ]
        return own + super().get_urls()

    def _programme_for(self, request: HttpRequest, object_id: int, *, change: bool) -> Programme:
        programme = get_object_or_404(Programme.objects.select_related("agency", "current_version"), pk=object_id)
        allowed = (
            self.has_change_permission(request, programme) if change else self.has_view_permission(request, programme)
        )
        if not allowed:
            raise PermissionDenied
        return programme

    def _editor_context(self, request: HttpRequest, programme: Programme, **extra) -> dict:
        from .rules.schema import current_schema

        schema = current_schema()
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "programme": programme,
            "original": programme,
            "title": f"Rules of {programme.name}",
            "versions": list(programme_versions(programme=programme)[:VERSIONS_SHOWN]),
            "runs": programme_recent_runs(programme=programme),
            "household_fields": sorted(schema.household.values(), key=lambda spec: spec.name),
            "member_fields": sorted(schema.member.values(), key=lambda spec: spec.name),
            "can_change": self.has_change_permission(request, programme),
            "currency": programme.currency,
            **extra,
        }

    def rules_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        programme = self._programme_for(request, object_id, change=request.method == "POST")
        current = programme.current_version
        preview = None
        if request.method == "POST":
            form = RuleEditorForm(request.POST)
            if form.is_valid():
                draft = form.cleaned_data
                try:
                    if "_save" in request.POST:
                        version = programme_set_rules(
                            acting_user=request.user,
                            programme=programme,
                            eligibility_rule=draft["eligibility_rule"],
                            benefit_formula=draft["benefit_formula"],
                            note=draft["note"],
                        )
                        if current is not None and version.pk == current.pk:
                            self.message_user(
                                request, "Nothing changed: the draft is the current version.", messages.INFO
                            )
                        else:
                            self.message_user(
                                request,
                                f"Saved as version {version.number}. Every household is being re-assessed "
                                "in the background; progress is under “Recompute runs”.",
                                messages.SUCCESS,
                            )
                        return HttpResponseRedirect(self.rules_url(programme))
                    preview = rule_preview(
                        programme=programme,
                        eligibility_rule=draft["eligibility_rule"],
                        benefit_formula=draft["benefit_formula"],
                    )
                except ValidationError as problem:
                    show_rule_errors(problem, form)
        else:
            form = RuleEditorForm(
                initial={
                    "eligibility_rule": current.eligibility_rule if current else "",
                    "benefit_formula": current.benefit_formula if current else "",
                }
            )
        totals = None
        if preview is not None:
            totals = {
                key: sum(getattr(row, key) for row in preview)
                for key in ("households", "eligible_now", "eligible_draft", "needs_information_draft", "would_change")
            }
        context = self._editor_context(
            request,
            programme,
            form=form,
            preview=preview,
            totals=totals,
            preview_failed="_preview" in request.POST and bool(form.errors),
            rule_pointers=rule_error_pointers(form, "eligibility_rule"),
            formula_pointers=rule_error_pointers(form, "benefit_formula"),
        )
        return TemplateResponse(
            request, "programmes/admin/rule_editor.html", context, status=400 if form.errors else 200
        )

    def version_view(self, request: HttpRequest, object_id: int, number: int) -> HttpResponse:
        programme = self._programme_for(request, object_id, change=False)
        version = get_object_or_404(
            RuleVersion.objects.select_related("created_by", "restored_from"), programme=programme, number=number
        )
        context = self._editor_context(
            request, programme, version=version, title=f"{programme.name}: version {version.number}"
        )
        return TemplateResponse(request, "programmes/admin/rule_version.html", context)

    def restore_view(self, request: HttpRequest, object_id: int, number: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        programme = self._programme_for(request, object_id, change=True)
        version = get_object_or_404(RuleVersion, programme=programme, number=number)
        in_force = programme.current_version_id
        try:
            restored = rule_version_restore(acting_user=request.user, version=version)
        except ValidationError as problem:
            # An old rule can name a field that has since been retired.
            self.message_user(
                request, f"Version {number} cannot be restored: {'; '.join(problem.messages)}", messages.ERROR
            )
            return HttpResponseRedirect(reverse("admin:programmes_programme_version", args=[programme.pk, number]))
        if restored.pk == in_force:
            self.message_user(request, f"Version {number} is already the rule in force.", messages.INFO)
        else:
            self.message_user(
                request,
                f"Version {number} restored as version {restored.number}; households are being re-assessed.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(self.rules_url(programme))

    def recompute_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        programme = self._programme_for(request, object_id, change=True)
        if programme.status != ProgrammeStatus.ACTIVE or programme.current_version_id is None:
            self.message_user(
                request, "Only an active programme with a rule is assessed; nothing was queued.", messages.WARNING
            )
        else:
            queue_recompute(acting_user=request.user, programme=programme, reason="requested in the admin")
            self.message_user(request, f"Re-assessing {programme.code} everywhere in the background.", messages.SUCCESS)
        return HttpResponseRedirect(self.rules_url(programme))


def _who(version: RuleVersion) -> str:
    user = version.created_by
    if user is None:
        return "the system"
    return user.get_full_name() or user.username


# --- coverage, rule versions and recompute runs -------------------------------------------------


@admin.register(ProgrammeDistrict)
class ProgrammeDistrictAdmin(NotFoundOutsideScope, ReadOnlyAdminMixin, MinistryRoleAccess, admin.ModelAdmin):
    """Every programme in every district at a glance, with its ceilings there. Edited on the programme's
    page (its "districts where it runs"); scoped to the user's districts."""

    list_display = ["programme", "agency", "district_name", "capacity_text", "budget_text", "edit_link"]
    list_filter = [DistrictFilter, "programme__agency", "programme__status", "programme"]
    list_select_related = ["programme__agency", "district"]
    search_fields = ["programme__code", "programme__name", "district__name"]
    search_help_text = "A programme's code or name, or a district's name."
    ordering = ["programme__name", "district__name"]
    fields = ["programme", "district", "capacity_text", "budget_text", "edit_link"]
    readonly_fields = fields

    def get_queryset(self, request):
        return scope_to_user(super().get_queryset(request), request.user)

    @admin.display(description="agency", ordering="programme__agency__code")
    def agency(self, obj: ProgrammeDistrict) -> str:
        return obj.programme.agency.code

    @admin.display(description="district", ordering="district__name")
    def district_name(self, obj: ProgrammeDistrict) -> str:
        return obj.district.name

    @admin.display(description="capacity", ordering="capacity")
    def capacity_text(self, obj: ProgrammeDistrict) -> str:
        return "no limit" if obj.capacity is None else f"{obj.capacity:,}"

    @admin.display(description="yearly budget", ordering="budget")
    def budget_text(self, obj: ProgrammeDistrict) -> str:
        if obj.budget is None:
            return "no limit"
        return f"{obj.programme.currency}\u00a0{obj.budget:,.2f}"

    @admin.display(description="")
    def edit_link(self, obj: ProgrammeDistrict) -> str:
        return format_html(
            '<a href="{}">change on the programme\'s page</a>',
            reverse("admin:programmes_programme_change", args=[obj.programme_id]),
        )


def _programme_admin(admin_site) -> "ProgrammeAdmin":
    return admin_site._registry[Programme]


@admin.register(RuleVersion)
class RuleVersionAdmin(ReadOnlyAdminMixin, MinistryManagedAdmin):
    list_display = ["programme", "number", "created_by", "created_at", "note", "restored_from", "open_link"]
    list_filter = ["programme"]
    list_select_related = ["programme", "created_by", "restored_from"]
    search_fields = ["programme__code", "programme__name", "note"]
    search_help_text = "A programme's code or name, or words of the note."
    date_hierarchy = "created_at"
    actions = ["restore_selected"]
    fields = [
        "programme",
        "number",
        "eligibility_rule",
        "benefit_formula",
        "note",
        "restored_from",
        "created_by",
        "created_at",
        "open_link",
    ]
    readonly_fields = fields

    @admin.display(description="")
    def open_link(self, obj: RuleVersion) -> str:
        return format_html(
            '<a href="{}">view / restore</a>',
            reverse("admin:programmes_programme_version", args=[obj.programme_id, obj.number]),
        )

    def has_restore_permission(self, request) -> bool:
        # Restoring writes the programme's rules: whoever may change programmes.
        return _programme_admin(self.admin_site).has_change_permission(request)

    @admin.action(
        description="Restore the selected version (as a new version; households are re-assessed)",
        permissions=["restore"],
    )
    def restore_selected(self, request, queryset):
        versions = list(queryset.select_related("programme").order_by("programme__code", "-number"))
        by_programme: dict[int, list[RuleVersion]] = {}
        for version in versions:
            by_programme.setdefault(version.programme_id, []).append(version)
        for chosen in by_programme.values():
            version = chosen[0]
            code = version.programme.code
            if len(chosen) > 1:
                numbers = ", ".join(f"v{v.number}" for v in chosen)
                self.message_user(
                    request, f"{code}: choose one version to restore, not several ({numbers}).", messages.ERROR
                )
                continue
            in_force = version.programme.current_version_id
            try:
                restored = rule_version_restore(acting_user=request.user, version=version)
            except ValidationError as problem:
                # An old rule can name a field that has since been retired.
                self.message_user(
                    request,
                    f"{code} v{version.number} cannot be restored: {'; '.join(problem.messages)}",
                    messages.ERROR,
                )
                continue
            if restored.pk == in_force:
                self.message_user(request, f"{code} v{version.number} is already the rule in force.", messages.INFO)
            else:
                self.message_user(
                    request,
                    f"{code} v{version.number} restored as v{restored.number}; households are being re-assessed.",
                    messages.SUCCESS,
                )


@admin.register(RecomputeRun)
class RecomputeRunAdmin(NotFoundOutsideScope, MinistryManagedAdmin):
    list_display = [
        "created_at",
        "scope",
        "reason",
        "status",
        "progress",
        "households_assessed",
        "outcomes_changed",
        "started_by",
        "finished_at",
    ]
    list_filter = ["status", "programme", DistrictFilter]
    list_select_related = ["programme", "district", "started_by"]
    search_fields = ["reason", "message"]
    search_help_text = "Words of the reason or of the message (an error, for a failed run)."
    date_hierarchy = "created_at"
    actions = ["run_again"]
    fields = [
        "programme",
        "district",
        "reason",
        "status",
        "progress",
        "total_steps",
        "done_steps",
        "households_assessed",
        "outcomes_changed",
        "started_by",
        "created_at",
        "started_at",
        "finished_at",
        "message",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        # A run's counts are of its district; a district's staff see their districts' runs.
        return scope_to_user(super().get_queryset(request), request.user)

    def has_add_permission(self, request):
        # A run is started from a programme (its rule editor or the list's action).
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_rerun_permission(self, request) -> bool:
        # Re-assessing is what "Recompute now" does on a programme: whoever may change programmes.
        return _programme_admin(self.admin_site).has_change_permission(request)

    @admin.display(description="what")
    def scope(self, obj: RecomputeRun) -> str:
        what = obj.programme.code if obj.programme_id else "all programmes"
        return f"{what} in {obj.district.name}" if obj.district_id else what

    @admin.display(description="progress")
    def progress(self, obj: RecomputeRun) -> str:
        percent = obj.progress_percent
        return format_html(
            '<progress max="100" value="{}" aria-label="{}%"></progress> {}% <span class="quiet">({}/{} steps)</span>',
            percent,
            percent,
            percent,
            obj.done_steps,
            obj.total_steps,
        )

    @admin.action(description="Run the selected runs again (a failed one, or to catch up)", permissions=["rerun"])
    def run_again(self, request, queryset):
        queued, refused = [], []
        for run in queryset.select_related("programme", "district").order_by("pk"):
            what = self.scope(run)
            if run.status in (RecomputeStatus.PENDING, RecomputeStatus.RUNNING):
                refused.append(f"{what}: still {run.get_status_display().lower()}; wait for it to end")
                continue
            programme = run.programme
            if programme is not None and (
                programme.status != ProgrammeStatus.ACTIVE or programme.current_version_id is None
            ):
                refused.append(f"{what}: only an active programme with a rule is assessed")
                continue
            with transaction.atomic():
                again = recompute_run_create(
                    acting_user=request.user,
                    programme=programme,
                    district=run.district,
                    reason=f"again, requested in the admin (was: {run.reason or 'no reason given'})"[:255],
                )
                job_queue(task=tasks.recompute_run_execute, args=[again.pk])
            queued.append(what)
        if queued:
            self.message_user(request, f"Queued again: {', '.join(queued)}.", messages.SUCCESS)
        for line in refused:
            self.message_user(request, f"Not queued: {line}.", messages.WARNING)


# --- eligibility (the engine's output, read-only, scoped) ----------------------------------------


def _household_link(household_id: int, number: str) -> str:
    return format_html('<a href="{}">{}</a>', FRONT_DESK_HOUSEHOLD_PATH.format(pk=household_id), number)


def _reasons_html(reasons: list) -> str:
    rows = [r for r in reasons or [] if isinstance(r, dict)]
    if not rows:
        return "—"
    return format_html_join(
        "\n",
        '<div class="mono">{} {}</div>',
        ((_marker(r.get("status")), r.get("text", "")) for r in rows),
    )


def _marker(status) -> str:
    if status in (True, "true"):
        return "✓"
    if status in (False, "false"):
        return "✗"
    return "?"


@admin.register(EligibilityResult)
class EligibilityResultAdmin(DistrictScopedAdmin):
    district_field = "household__district"
    list_display = ["household_link", "programme", "outcome", "amount", "version", "evaluated_at", "outcome_since"]
    list_filter = ["outcome", "programme", HouseholdDistrictFilter]
    list_select_related = ["household", "programme", "rule_version"]
    search_fields = ["household__number"]
    search_help_text = "A household number (or its start)."
    fields = [
        "household_link",
        "programme",
        "outcome",
        "amount",
        "version",
        "reasons_text",
        "missing",
        "eligible_members",
        "evaluated_at",
        "outcome_since",
    ]
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="household", ordering="household__number")
    def household_link(self, obj: EligibilityResult) -> str:
        return _household_link(obj.household_id, obj.household.number)

    @admin.display(description="rule version")
    def version(self, obj: EligibilityResult) -> str:
        return f"v{obj.rule_version.number}"

    @admin.display(description="reasons")
    def reasons_text(self, obj: EligibilityResult) -> str:
        return _reasons_html(obj.reasons)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().upper()
        if not term:
            return queryset, False
        return queryset.filter(household__number__startswith=term), False


@admin.register(EligibilityChange)
class EligibilityChangeAdmin(DistrictScopedAdmin):
    district_field = "household__district"
    list_display = [
        "at",
        "household_link",
        "programme",
        "previous_outcome",
        "outcome",
        "rule_version",
        "run",
    ]
    list_filter = ["outcome", "programme", HouseholdDistrictFilter]
    list_select_related = ["household", "programme", "rule_version", "run"]
    search_fields = ["household__number"]
    search_help_text = "A household number (or its start)."
    date_hierarchy = "at"
    fields = ["at", "household_link", "programme", "previous_outcome", "outcome", "rule_version", "run"]
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="household", ordering="household__number")
    def household_link(self, obj: EligibilityChange) -> str:
        return _household_link(obj.household_id, obj.household.number)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().upper()
        if not term:
            return queryset, False
        return queryset.filter(household__number__startswith=term), False
