from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("export/<slug:table>.<str:fmt>", views.export, name="export"),
    path("households/", views.households, name="households"),
    path("households/export.<str:fmt>", views.households_export, name="households-export"),
]
