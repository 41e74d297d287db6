"""How the dashboard writes money, RUTs and document names: the same way on every page."""
from cl_sii.rut import Rut
from django import template

from billers.dte.display import document_name, format_clp

register = template.Library()


@register.filter
def clp(amount):
    """``36970`` → ``$36.970``; empty stays empty."""
    if amount in (None, ""):
        return ""
    return format_clp(int(amount))


@register.filter
def rut(value):
    """``76192083-9`` → ``76.192.083-9``; a value that is not a RUT is shown as given."""
    if not value:
        return ""
    try:
        return Rut(str(value)).verbose
    except (ValueError, TypeError):
        return value


@register.filter
def dte_name(tipo_dte):
    """``39`` → ``Boleta electrónica``."""
    if tipo_dte in (None, ""):
        return ""
    return document_name(int(tipo_dte))
