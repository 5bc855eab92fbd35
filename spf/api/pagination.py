from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    # A partner system may pull big pages; more than this and a page stops
    # being a page and becomes an export.
    max_page_size = 500
