"""The interactive API docs (/api/docs/, /api/redoc/) under the Content-Security-Policy.

drf-spectacular's Swagger page starts Swagger UI with an inline script and both
pages carry an inline style element; the policy refuses inline code. The split
view serves the start-up script from its own address (`?script`), and our
templates link a stylesheet instead of the inline one (and no web fonts: offices
may have no internet, and the policy loads nothing from elsewhere).

ReDoc styles itself by writing style elements at run time (styled-components),
which a policy without 'unsafe-inline' refuses and ReDoc then fails to start. Its
page alone gets a nonce for styles, which ReDoc puts on the elements it writes
(its `nonce` option); scripts stay 'self' only, and no other page has a nonce.
Its search would run in a worker made from a blob: address, which script-src
'self' refuses: search is off (the sidebar lists every operation). Its footer's
Redocly logo comes from their server, which img-src refuses; ReDoc drops the
image then, and the refusal is the policy doing its job.
"""

from csp.constants import NONCE
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

# ReDoc's bundle adds two style elements while it loads, before it is given the
# nonce: an empty one, then perfect-scrollbar's stylesheet (the sidebar's scroll
# bars). Allowed by the hashes of their text, for ReDoc 2.5.4 as
# drf-spectacular-sidecar ships it; tests/test_browser_security.py tells when an
# upgrade changes them (Chromium's console names the new hash).
REDOC_LOAD_TIME_STYLE_HASHES = [
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
]


class SwaggerDocsView(SpectacularSwaggerSplitView):
    template_name = "api_docs/swagger_ui.html"


class RedocDocsView(SpectacularRedocView):
    template_name = "api_docs/redoc.html"

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # What django-csp's csp_update decorator sets: the page's nonce joins style-src.
        response._csp_update = {"style-src": [NONCE, *REDOC_LOAD_TIME_STYLE_HASHES]}
        return response
