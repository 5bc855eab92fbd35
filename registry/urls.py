from django.urls import path

from . import views

app_name = "frontdesk"

urlpatterns = [
    path("", views.search, name="search"),
    path("households/new/", views.household_new, name="household-new"),
    path("households/duplicates/", views.duplicate_check, name="duplicate-check"),
    path("households/<int:pk>/", views.household_page, name="household"),
    path("households/<int:pk>/edit/", views.household_edit, name="household-edit"),
    path("households/<int:pk>/move/", views.household_move, name="household-move"),
    path("households/<int:pk>/head/", views.household_head, name="household-head"),
    path("households/<int:pk>/status/", views.household_status, name="household-status"),
    path("households/<int:pk>/members/add/", views.member_add, name="member-add"),
    path("households/<int:pk>/members/move-in/", views.member_move_in, name="member-move-in"),
    path("households/<int:pk>/members/<int:member_pk>/edit/", views.member_edit, name="member-edit"),
    path("households/<int:pk>/members/<int:member_pk>/death/", views.member_death, name="member-death"),
    path("households/<int:pk>/members/<int:member_pk>/move-out/", views.member_move_out, name="member-move-out"),
]
