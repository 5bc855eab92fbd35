from django.urls import path

from . import views

app_name = "grievances"

urlpatterns = [
    path("", views.worklist, name="worklist"),
    path("new/", views.record, name="record"),
    path("open/", views.open_by_number, name="open"),
    path("households/<int:pk>/new/", views.record_for_household, name="record-household"),
    path("<str:number>/", views.grievance_page, name="grievance"),
    path("<str:number>/move/", views.grievance_move, name="move"),
    path("<str:number>/slip/", views.slip, name="slip"),
    path("<str:number>/attachments/", views.attachment_add, name="attachment-add"),
    path("<str:number>/attachments/<int:attachment_id>/", views.attachment_download, name="attachment"),
]
