"""/dci/…: the Social Registry at the root, the Integrated Beneficiary Registry under ibr/
(its enrolled and enrolment-update paths at the root too). See docs/interoperability.md."""

from django.urls import re_path

from .views import dci_endpoint

app_name = "dci"

urlpatterns = [
    # Every path is matched here and looked up in the list of endpoints, so an
    # unknown one answers in DCI's error shape rather than the site's 404 page.
    re_path(r"^(?P<path>.*?)/?$", dci_endpoint, name="endpoint"),
]
