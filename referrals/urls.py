from django.urls import path

from . import views

app_name = "referrals"

urlpatterns = [
    path("", views.worklist, name="worklist"),
    # The agency's queue is the worklist scoped to the agency; its own address for the nav and bookmarks.
    path("queue/", views.worklist, name="queue"),
    path("open/", views.open_by_number, name="open"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications-read"),
    path("households/<int:pk>/refer/", views.refer, name="refer"),
    path("households/<int:pk>/slip/", views.household_slip, name="household-slip"),
    path("<str:number>/", views.referral_page, name="referral"),
    path("<str:number>/move/", views.referral_move, name="move"),
    path("<str:number>/slip/", views.slip, name="slip"),
    path("<str:number>/attachments/<int:attachment_id>/", views.attachment_download, name="attachment"),
]
