"""Pages for bulk import: the list of jobs, the upload form, the progress page
with its small JSON endpoint, the template and the two reports.

Rules live in `registry.imports`; these views turn requests into calls. Only a
user who may change the registry reaches them (403 otherwise), and a job that
is not the user's own (ministry staff see all) is a 404.
"""

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from spf.models import ExportKind
from spf.services import personal_data_export_record

from .imports import (
    FINISHED_STATUSES,
    import_duplicate_report_csv,
    import_error_report_csv,
    import_jobs_for,
    import_submit,
    import_template_columns,
    import_template_csv,
    import_template_xlsx,
)
from .models import ImportJob, ImportMode

# The list page shows the recent jobs; older ones stay in the admin.
JOB_LIST_LIMIT = 50
# Problems shown on the page; the full report is the CSV download.
REPORT_PREVIEW_ROWS = 200


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="Filled template", help_text="The CSV or Excel (.xlsx) template with one row per member."
    )
    mode = forms.ChoiceField(
        label="If some rows have problems",
        choices=ImportMode.choices,
        initial=ImportMode.ALL_OR_NOTHING,
        widget=forms.RadioSelect,
    )


def _editor_required(request: HttpRequest) -> None:
    if not request.user.can_edit_registry:
        raise PermissionDenied("Your role cannot change the registry.")


def _job_for(request: HttpRequest, pk: int) -> ImportJob:
    _editor_required(request)
    return get_object_or_404(import_jobs_for(request.user), pk=pk)


@login_required
@require_GET
def import_list(request: HttpRequest) -> HttpResponse:
    _editor_required(request)
    jobs = import_jobs_for(request.user)[:JOB_LIST_LIMIT]
    return render(request, "registry/imports/list.html", {"jobs": jobs})


@login_required
@require_http_methods(["GET", "POST"])
def import_new(request: HttpRequest) -> HttpResponse:
    _editor_required(request)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = import_submit(
                acting_user=request.user, upload=form.cleaned_data["file"], mode=form.cleaned_data["mode"]
            )
        except ValidationError as problem:
            for field, messages in problem.message_dict.items():
                for message in messages:
                    form.add_error(field if field in form.fields else None, message)
        else:
            return redirect("imports:detail", pk=job.pk)
    return render(request, "registry/imports/new.html", {"form": form, "columns": import_template_columns()})


@login_required
@require_GET
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job_for(request, pk)
    return render(
        request,
        "registry/imports/detail.html",
        {
            "job": job,
            "finished": job.status in FINISHED_STATUSES,
            "errors_preview": job.errors[:REPORT_PREVIEW_ROWS],
            "duplicates_preview": job.duplicates[:REPORT_PREVIEW_ROWS],
            "preview_rows": REPORT_PREVIEW_ROWS,
            "errors_kept": len(job.errors),
            "duplicates_kept": len(job.duplicates),
        },
    )


@login_required
@require_GET
def import_progress(request: HttpRequest, pk: int) -> JsonResponse:
    job = _job_for(request, pk)
    return JsonResponse(
        {
            "status": job.status,
            "status_label": job.get_status_display(),
            "finished": job.status in FINISHED_STATUSES,
            "total_rows": job.total_rows,
            "processed_rows": job.processed_rows,
            "percent": job.progress_percent,
            "households_created": job.households_created,
            "members_created": job.members_created,
            "error_count": job.error_count,
            "duplicate_count": job.duplicate_count,
            "message": job.message,
        }
    )


@login_required
@require_GET
def import_template(request: HttpRequest) -> HttpResponse:
    _editor_required(request)
    if request.GET.get("format") == "csv":
        response = HttpResponse(import_template_csv(acting_user=request.user), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="household-import-template.csv"'
        return response
    response = HttpResponse(
        import_template_xlsx(acting_user=request.user),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = 'attachment; filename="household-import-template.xlsx"'
    return response


@login_required
@require_GET
def import_report(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    job = _job_for(request, pk)
    builders = {"errors": import_error_report_csv, "duplicates": import_duplicate_report_csv}
    if kind not in builders:
        raise Http404("No such report.")
    response = HttpResponse(builders[kind](job=job), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-{kind}.csv"'
    personal_data_export_record(
        user=request.user,
        kind=ExportKind.IMPORT_REPORT,
        what=f"Import {job.pk} ({job.original_name}): the {'problems' if kind == 'errors' else 'possible duplicates'}",
        file_name=f"import-{job.pk}-{kind}.csv",
        rows=len(job.errors) if kind == "errors" else len(job.duplicates),
        address=request.get_full_path(),
    )
    return response
