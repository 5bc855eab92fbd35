from django.urls import path

from . import views

app_name = "programmes"

urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("households/<int:pk>/recheck/", views.household_recheck, name="household-recheck"),
    path("<str:code>/", views.programme_page, name="programme"),
]
