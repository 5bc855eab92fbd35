from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from spf.api.auth import ObtainToken
from spf.api.docs import RedocDocsView, SwaggerDocsView
from spf.api.errors import not_found
from spf.views import health

handler400 = "spf.api.errors.bad_request"
handler404 = "spf.api.errors.not_found"
handler500 = "spf.api.errors.server_error"

api_v1 = [
    path("auth/token/", ObtainToken.as_view(), name="api-token"),
    path("", include("programmes.api.urls")),
    path("", include("referrals.api.urls")),
    path("", include("payments.api.urls")),
    path("", include("dashboard.api.urls")),
    path("", include("grievances.api.urls")),
    path("", include("registry.api.urls")),
]

urlpatterns = [
    path("healthz", health, name="health"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # CSP-friendly views: no inline script or style (spf/api/docs.py).
    path("api/docs/", SwaggerDocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", RedocDocsView.as_view(url_name="api-schema"), name="api-redoc"),
    # An unknown API address gets the API's JSON 404 even with DEBUG on.
    re_path(r"^api/", not_found),
    path("imports/", include("registry.import_urls")),
    path("programmes/", include("programmes.urls")),
    path("referrals/", include("referrals.urls")),
    path("payments/", include("payments.urls")),
    path("beneficiary-lists/", include("payments.beneficiary_urls")),
    path("grievances/", include("grievances.urls")),
    path("dashboard/", include("dashboard.urls")),
    path("dci/", include("interop.urls")),
    path("", include("registry.urls")),
]
