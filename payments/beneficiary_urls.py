from django.urls import path

from . import beneficiary_views as views

app_name = "beneficiary_lists"

urlpatterns = [
    path("", views.lists, name="lists"),
    path("new/", views.upload, name="upload"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/mapping/", views.mapping, name="mapping"),
    path("<int:pk>/progress/", views.progress, name="progress"),
    path("<int:pk>/rows/", views.rows, name="rows"),
    path("<int:pk>/review/", views.review, name="review"),
    path("<int:pk>/rows/<int:row_pk>/resolve/", views.resolve, name="resolve"),
    path("<int:pk>/report.csv", views.report, name="report"),
]
