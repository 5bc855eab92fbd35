from django.urls import path

from . import import_views

app_name = "imports"

urlpatterns = [
    path("", import_views.import_list, name="list"),
    path("new/", import_views.import_new, name="new"),
    path("template/", import_views.import_template, name="template"),
    path("<int:pk>/", import_views.import_detail, name="detail"),
    path("<int:pk>/progress/", import_views.import_progress, name="progress"),
    path("<int:pk>/report/<str:kind>.csv", import_views.import_report, name="report"),
]
