"""The task outbox in the admin: what waits for the broker, what was sent, and "publish now".

Read only: rows are written by the services that queue jobs and stamped by the sweep. A row names a task
and record ids, never personal data, and has no district: ministry staff read it by their role (other
staff need Django's view permission), and may publish waiting jobs at once rather than wait for the
minute's sweep, after Redis is back (docs/operations.md).
"""

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from .admin import MinistryRoleAccess, is_ministry_staff
from .models import OutboxJob
from .outbox import jobs_publish

# Characters of the arguments and of the last error shown in the list (the whole text is on the row's page).
LIST_TEXT_KEPT = 80


def _jobs(count: int) -> str:
    return f"{count:,} job" + ("" if count == 1 else "s")


class OutboxStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("waiting", "waiting for the broker"), ("sent", "sent")]

    def queryset(self, request, queryset):
        if self.value() == "waiting":
            return queryset.filter(sent_at__isnull=True)
        if self.value() == "sent":
            return queryset.filter(sent_at__isnull=False)
        return queryset


@admin.register(OutboxJob)
class OutboxJobAdmin(MinistryRoleAccess, admin.ModelAdmin):
    list_display = ["id", "task", "arguments", "state", "age", "attempts", "last_attempt_at", "error_text"]
    list_filter = [OutboxStateFilter, "task"]
    search_fields = ["task"]
    search_help_text = "A task's name, or part of it (programmes.tasks.recompute_run_execute)."
    date_hierarchy = "created_at"
    ordering = ["-id"]
    fields = ["task", "args", "kwargs", "state", "created_at", "sent_at", "attempts", "last_attempt_at", "last_error"]
    readonly_fields = fields
    actions = ["publish_now"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_publish_permission(self, request) -> bool:
        return is_ministry_staff(request.user) or request.user.has_perm("spf.change_outboxjob")

    @admin.display(description="arguments")
    def arguments(self, job: OutboxJob) -> str:
        text = ", ".join(str(value) for value in job.args)
        if job.kwargs:
            text += (", " if text else "") + ", ".join(f"{key}={value}" for key, value in job.kwargs.items())
        return text[:LIST_TEXT_KEPT] or "—"

    @admin.display(description="state", ordering="sent_at")
    def state(self, job: OutboxJob) -> str:
        if job.sent_at is None:
            return format_html('<strong class="spf-alert">{}</strong>', "waiting")
        return "sent"

    @admin.display(description="age", ordering="created_at")
    def age(self, job: OutboxJob) -> str:
        return timesince(job.created_at, timezone.now())

    @admin.display(description="last error")
    def error_text(self, job: OutboxJob) -> str:
        return job.last_error[:LIST_TEXT_KEPT] or "—"

    @admin.action(description="Publish the selected waiting jobs now", permissions=["publish"])
    def publish_now(self, request, queryset):
        waiting = list(queryset.filter(sent_at__isnull=True).order_by("pk").values_list("pk", flat=True))
        if not waiting:
            self.message_user(request, "None of the selected jobs is waiting: nothing to publish.", messages.INFO)
            return
        report = jobs_publish(job_ids=waiting)
        if report.sent:
            self.message_user(request, f"Published to the workers: {_jobs(report.sent)}.", messages.SUCCESS)
        if report.error:
            self.message_user(
                request,
                f"The broker did not take them ({report.error}); they wait for the next sweep.",
                messages.ERROR,
            )
        elif report.sent < len(waiting):
            self.message_user(
                request,
                f"Not published: {_jobs(len(waiting) - report.sent)} (being sent by the sweep, or see the error).",
                messages.WARNING,
            )
