"""Pages for programmes' beneficiary lists: the lists, the upload, the column
mapping, a list's progress and result, its rows by state, the review queue
where an officer decides each waiting row, and the report.

Rules live in `payments.beneficiaries`; these views turn requests into calls.
A list of a programme the user may not work on is a 404, like one that does
not exist; its rows are shown only within the user's districts.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from programmes.models import ProgrammeDistrict
from registry.selectors import villages_for
from spf.models import ExportKind
from spf.services import personal_data_export_record

from .beneficiaries import (
    beneficiary_list_report_csv,
    beneficiary_list_start,
    beneficiary_list_upload,
    beneficiary_lists_for,
    beneficiary_row_resolve,
    beneficiary_rows_for,
    list_fields,
    may_manage_beneficiary_lists,
    programmes_for_beneficiary_lists,
)
from .beneficiary_forms import (
    STATE_FILTERS,
    BeneficiaryListUploadForm,
    BeneficiaryMappingForm,
    BeneficiaryRowDecisionForm,
)
from .models import (
    BENEFICIARY_LIST_RUNNING,
    BENEFICIARY_REVIEW_STATES,
    BeneficiaryList,
    BeneficiaryListStatus,
    BeneficiaryRowState,
)

# The recent lists; older ones stay in the admin.
LIST_PAGE_SIZE = 50
# Rows on a page of a list: a screen or two of the table.
ROWS_PAGE_SIZE = 50
# Rows decided on one review page: each is a card with its candidates.
REVIEW_PAGE_SIZE = 10
# The states in the order the result shows them: the good news first, then what needs a person.
STATE_ORDER = (
    BeneficiaryRowState.ENROLLED,
    BeneficiaryRowState.NEW_HOUSEHOLD,
    BeneficiaryRowState.ALREADY_ENROLLED,
    BeneficiaryRowState.AMBIGUOUS,
    BeneficiaryRowState.NEEDS_REVIEW,
    BeneficiaryRowState.INVALID,
    BeneficiaryRowState.REJECTED,
)
# The row tabs' short names, in the result's order.
TAB_LABELS = (
    ("", "Every row"),
    (BeneficiaryRowState.ENROLLED, "Enrolled"),
    (BeneficiaryRowState.NEW_HOUSEHOLD, "New households"),
    (BeneficiaryRowState.ALREADY_ENROLLED, "Already enrolled"),
    (BeneficiaryRowState.AMBIGUOUS, "Uncertain match"),
    (BeneficiaryRowState.NEEDS_REVIEW, "Details missing"),
    (BeneficiaryRowState.INVALID, "Invalid"),
    (BeneficiaryRowState.REJECTED, "Rejected"),
)
STATE_BADGE = {
    BeneficiaryRowState.ENROLLED: "badge-ok",
    BeneficiaryRowState.NEW_HOUSEHOLD: "badge-ok",
    BeneficiaryRowState.ALREADY_ENROLLED: "badge-grey",
    BeneficiaryRowState.AMBIGUOUS: "badge-warning",
    BeneficiaryRowState.NEEDS_REVIEW: "badge-warning",
    BeneficiaryRowState.INVALID: "badge-error",
    BeneficiaryRowState.REJECTED: "badge-grey",
    BeneficiaryRowState.PENDING: "badge-grey",
}


def _list_or_404(request: HttpRequest, pk: int) -> BeneficiaryList:
    return get_object_or_404(
        beneficiary_lists_for(request.user).select_related(
            "mapped_by", "registry_import", "programme__current_version"
        ),
        pk=pk,
    )


def _errors_on_form(problem: ValidationError, form, rename: dict | None = None) -> None:
    """Each message of a service's ValidationError beside the field it names (or on top)."""
    by_field = problem.message_dict if hasattr(problem, "error_dict") else {"__all__": problem.messages}
    for key, texts in by_field.items():
        key = (rename or {}).get(key, key)
        field = key if key in form.fields else None
        for text in texts:
            form.add_error(field, text)


@login_required
@require_GET
def lists(request: HttpRequest) -> HttpResponse:
    programmes = programmes_for_beneficiary_lists(request.user)
    if not programmes.exists():
        raise PermissionDenied("Your role does not work on programmes' beneficiary lists.")
    beneficiary_lists = beneficiary_lists_for(request.user)[:LIST_PAGE_SIZE]
    return render(
        request,
        "payments/beneficiaries/lists.html",
        {"beneficiary_lists": beneficiary_lists, "badge": STATE_BADGE, "running": BENEFICIARY_LIST_RUNNING},
    )


@login_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    programmes = programmes_for_beneficiary_lists(request.user).filter(status="active")
    if not programmes_for_beneficiary_lists(request.user).exists():
        raise PermissionDenied("Your role does not work on programmes' beneficiary lists.")
    form = BeneficiaryListUploadForm(
        request.POST or None,
        request.FILES or None,
        programmes=programmes,
        initial={"programme": request.GET.get("programme")},
    )
    if request.method == "POST" and form.is_valid():
        try:
            beneficiary_list, created = beneficiary_list_upload(
                acting_user=request.user, programme=form.cleaned_data["programme"], upload=form.cleaned_data["file"]
            )
        except ValidationError as problem:
            _errors_on_form(problem, form)
        else:
            if not created:
                who = beneficiary_list.uploaded_by.get_full_name() or beneficiary_list.uploaded_by.username
                messages.info(
                    request,
                    f"This file was already uploaded for {beneficiary_list.programme.name} on "
                    f"{beneficiary_list.uploaded_at:%d %b %Y} by {who}: nothing was changed.",
                )
                if beneficiary_list.status == BeneficiaryListStatus.UPLOADED and _may_map(request, beneficiary_list):
                    return redirect("beneficiary_lists:mapping", pk=beneficiary_list.pk)
                return redirect("beneficiary_lists:detail", pk=beneficiary_list.pk)
            return redirect("beneficiary_lists:mapping", pk=beneficiary_list.pk)
    return render(
        request,
        "payments/beneficiaries/upload.html",
        {"form": form, "fields": list_fields()},
        status=400 if request.method == "POST" else 200,
    )


def _may_map(request: HttpRequest, beneficiary_list: BeneficiaryList) -> bool:
    """The mapping page shows the file's first rows before any row is placed in a district: they may name
    people of any district, so only whoever brought the file (or sees every district) maps it."""
    return request.user.sees_every_district or beneficiary_list.uploaded_by_id == request.user.pk


@login_required
@require_http_methods(["GET", "POST"])
def mapping(request: HttpRequest, pk: int) -> HttpResponse:
    beneficiary_list = _list_or_404(request, pk)
    if not may_manage_beneficiary_lists(request.user, beneficiary_list.programme):
        raise PermissionDenied("You cannot work on this programme's lists.")
    if beneficiary_list.status not in (BeneficiaryListStatus.UPLOADED, BeneficiaryListStatus.FAILED):
        return redirect("beneficiary_lists:detail", pk=pk)
    if not _may_map(request, beneficiary_list):
        raise PermissionDenied("Only whoever uploaded this list, or ministry staff, can map its columns.")
    form = BeneficiaryMappingForm(request.POST or None, beneficiary_list=beneficiary_list)
    if request.method == "POST" and form.is_valid():
        try:
            beneficiary_list = beneficiary_list_start(
                acting_user=request.user,
                beneficiary_list=beneficiary_list,
                mapping=form.mapping(),
                payment_defaults=form.payment_defaults(),
            )
        except ValidationError as problem:
            _errors_on_form(problem, form)
        else:
            return redirect("beneficiary_lists:detail", pk=beneficiary_list.pk)
    width = len(beneficiary_list.columns)
    return render(
        request,
        "payments/beneficiaries/mapping.html",
        {
            "beneficiary_list": beneficiary_list,
            "form": form,
            "columns": [name or f"Column {index + 1}" for index, name in enumerate(beneficiary_list.columns)],
            "sample": [(list(row) + [""] * width)[:width] for row in beneficiary_list.sample],
        },
        status=400 if request.method == "POST" else 200,
    )


def _state_rows(beneficiary_list: BeneficiaryList) -> list[dict]:
    counts = beneficiary_list.counts or {}
    return [
        {
            "state": state,
            "label": BeneficiaryRowState(state).label,
            "count": counts.get(state, 0),
            "badge": STATE_BADGE[state],
        }
        for state in STATE_ORDER
    ]


@login_required
@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    beneficiary_list = _list_or_404(request, pk)
    counts = beneficiary_list.counts or {}
    waiting = sum(counts.get(state, 0) for state in BENEFICIARY_REVIEW_STATES)
    return render(
        request,
        "payments/beneficiaries/detail.html",
        {
            "beneficiary_list": beneficiary_list,
            "running": beneficiary_list.status in BENEFICIARY_LIST_RUNNING,
            "done": beneficiary_list.status == BeneficiaryListStatus.DONE,
            "states": _state_rows(beneficiary_list),
            "waiting": waiting,
            "can_manage": may_manage_beneficiary_lists(request.user, beneficiary_list.programme),
            "can_map": _may_map(request, beneficiary_list),
            "mapped": [
                (list_field.label, beneficiary_list.columns[beneficiary_list.mapping[list_field.key]])
                for list_field in list_fields()
                if list_field.key in (beneficiary_list.mapping or {})
                and beneficiary_list.mapping[list_field.key] < len(beneficiary_list.columns)
            ],
        },
    )


@login_required
@require_GET
def progress(request: HttpRequest, pk: int) -> JsonResponse:
    beneficiary_list = _list_or_404(request, pk)
    return JsonResponse(
        {
            "status": beneficiary_list.status,
            "status_label": beneficiary_list.get_status_display(),
            "finished": beneficiary_list.status not in BENEFICIARY_LIST_RUNNING,
            "total_rows": beneficiary_list.total_rows,
            "processed_rows": beneficiary_list.processed_rows,
            "percent": beneficiary_list.progress_percent,
            "message": beneficiary_list.message,
        }
    )


@login_required
@require_GET
def rows(request: HttpRequest, pk: int) -> HttpResponse:
    beneficiary_list = _list_or_404(request, pk)
    state = request.GET.get("state", "")
    if state not in dict(STATE_FILTERS):
        raise Http404("No such state.")
    queryset = (
        beneficiary_rows_for(request.user, beneficiary_list)
        .select_related("village", "household", "enrolment", "resolved_by")
        .order_by("line")
    )
    if state:
        queryset = queryset.filter(state=state)
    page = Paginator(queryset, ROWS_PAGE_SIZE).get_page(request.GET.get("page"))
    counts = beneficiary_list.counts or {}
    for row in page.object_list:
        row.badge = STATE_BADGE[row.state]
    return render(
        request,
        "payments/beneficiaries/rows.html",
        {
            "beneficiary_list": beneficiary_list,
            "page": page,
            "state": state,
            "state_label": dict(STATE_FILTERS)[state],
            "tabs": [
                {"state": value, "label": label, "count": counts.get(value) if value else sum(counts.values())}
                for value, label in TAB_LABELS
            ],
        },
    )


def _decision_villages(request: HttpRequest, beneficiary_list: BeneficiaryList):
    coverage = ProgrammeDistrict.objects.filter(programme=beneficiary_list.programme).values("district_id")
    return villages_for(request.user).filter(district_id__in=coverage)


def _review_page(
    request: HttpRequest, beneficiary_list: BeneficiaryList, bound: BeneficiaryRowDecisionForm | None = None
):
    waiting = (
        beneficiary_rows_for(request.user, beneficiary_list)
        .filter(state__in=BENEFICIARY_REVIEW_STATES)
        .select_related("village")
        .order_by("line")
    )
    page = Paginator(waiting, REVIEW_PAGE_SIZE).get_page(request.GET.get("page"))
    villages = _decision_villages(request, beneficiary_list)
    forms = []
    for row in page.object_list:
        if bound is not None and bound.row.pk == row.pk:
            forms.append(bound)
        else:
            forms.append(BeneficiaryRowDecisionForm(row=row, villages=villages))
    return render(
        request,
        "payments/beneficiaries/review.html",
        {
            "beneficiary_list": beneficiary_list,
            "page": page,
            "forms": forms,
            "can_manage": may_manage_beneficiary_lists(request.user, beneficiary_list.programme),
        },
        status=400 if bound is not None else 200,
    )


@login_required
@require_GET
def review(request: HttpRequest, pk: int) -> HttpResponse:
    return _review_page(request, _list_or_404(request, pk))


@login_required
@require_POST
def resolve(request: HttpRequest, pk: int, row_pk: int) -> HttpResponse:
    beneficiary_list = _list_or_404(request, pk)
    row = get_object_or_404(beneficiary_rows_for(request.user, beneficiary_list).select_related("village"), pk=row_pk)
    form = BeneficiaryRowDecisionForm(request.POST, row=row, villages=_decision_villages(request, beneficiary_list))
    if form.is_valid():
        try:
            row = beneficiary_row_resolve(acting_user=request.user, row=row, **form.decision())
        except ValidationError as problem:
            _errors_on_form(problem, form, rename={"member": "choice", "decision": "choice"})
        else:
            messages.success(request, f"Row {row.line}: {row.get_state_display().lower()}.")
            page = request.POST.get("page", "")
            return redirect(
                reverse("beneficiary_lists:review", args=[pk]) + (f"?page={page}" if page.isdigit() else "")
            )
    return _review_page(request, beneficiary_list, bound=form)


@login_required
@require_GET
def report(request: HttpRequest, pk: int) -> HttpResponse:
    beneficiary_list = _list_or_404(request, pk)
    response = HttpResponse(
        beneficiary_list_report_csv(user=request.user, beneficiary_list=beneficiary_list),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="beneficiary-list-{beneficiary_list.pk}-report.csv"'
    personal_data_export_record(
        user=request.user,
        kind=ExportKind.BENEFICIARY_LIST_REPORT,
        what=f"Beneficiary list {beneficiary_list.pk} of {beneficiary_list.programme}: every row and what it became",
        file_name=f"beneficiary-list-{beneficiary_list.pk}-report.csv",
        address=request.get_full_path(),
    )
    return response
