from django.urls import path

from . import views

app_name = "payments"

urlpatterns = [
    path("", views.work, name="work"),
    path("households/<int:pk>/enrol/", views.enrol, name="enrol"),
    path("enrolments/<str:number>/", views.enrolment_page, name="enrolment"),
    path("enrolments/<str:number>/move/", views.enrolment_move, name="enrolment-move"),
    path("enrolments/<str:number>/details/", views.enrolment_details, name="enrolment-details"),
    path("enrolments/<str:number>/review/", views.enrolment_review, name="enrolment-review"),
    path("cycles/", views.cycles, name="cycles"),
    path("cycles/new/", views.cycle_create, name="cycle-create"),
    path("cycles/<int:pk>/", views.cycle_page, name="cycle"),
    path("cycles/<int:pk>/generate/", views.cycle_generate, name="cycle-generate"),
    path("cycles/<int:pk>/approve/", views.cycle_approve, name="cycle-approve"),
    path("cycles/<int:pk>/reissue/", views.cycle_reissue, name="cycle-reissue"),
    path("cycles/<int:pk>/export/", views.cycle_export, name="cycle-export"),
    path("cycles/<int:pk>/reconcile/", views.cycle_reconcile, name="cycle-reconcile"),
    path("reconciliations/<int:pk>/report/", views.reconciliation_report, name="reconciliation-report"),
]
