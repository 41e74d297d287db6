"""Keyset pagination on the primary key for every list: the first page costs the same with 1 M rows,
and no list ever counts its rows."""
from rest_framework.pagination import CursorPagination


class KeysetPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
