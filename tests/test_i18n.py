"""The English catalogue and the language switcher.

Spanish (es-CL) is the source language: every string a person reads is a msgid, and
``locale/en/LC_MESSAGES/django.po`` translates each one. The compiled ``django.mo`` is committed (CI
machines may lack msgfmt), so these tests check that it says exactly what the .po says. Then the
dashboard and the API are read in both languages.
"""
import ast
import gettext
import re
import struct
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import translation

from billers.dte.types import DOCUMENT_TYPES, SALE_TYPES
from tests.gateways.factories import DocumentFactory, EmissionFactory, GatewayFactory, OrderFactory

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "en" / "LC_MESSAGES"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
TAG = re.compile(r"</?(strong|code|em|small|span|a|b|i|br)\b")


def read_po(path: Path) -> list[dict]:
    """The entries of a .po file: flags, msgctxt, msgid, msgid_plural and msgstr (a dict index → text)."""
    entries, entry, field = [], None, None
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if entry is not None and entry["msgid"] is not None:
                entries.append(entry)
            entry, field = None, None
            continue
        if entry is None:
            entry = {"flags": [], "msgctxt": None, "msgid": None, "msgid_plural": None, "msgstr": {}}
        if line.startswith("#~"):
            raise AssertionError(f"obsolete entry left in the catalogue: {line}")
        if line.startswith("#,"):
            entry["flags"] += [flag.strip() for flag in line[2:].split(",")]
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            value = ast.literal_eval(line)
            if isinstance(field, int):
                entry["msgstr"][field] += value
            else:
                entry[field] += value
        else:
            keyword, _, rest = line.partition(" ")
            value = ast.literal_eval(rest)
            if keyword.startswith("msgstr"):
                field = int(keyword[7:-1]) if "[" in keyword else 0
                entry["msgstr"][field] = value
            else:
                field = keyword
                entry[field] = value
    return entries


@pytest.fixture(scope="module")
def entries():
    return read_po(CATALOGUE / "django.po")





def test_every_msgid_has_an_english_translation_and_none_is_fuzzy(entries):
    header, messages = entries[0], entries[1:]
    assert header["msgid"] == "" and "Language: en" in header["msgstr"][0]
    assert len(messages) > 1000
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e["flags"]]
    empty = [e["msgid"] for e in messages if not all(e["msgstr"].values()) or len(e["msgstr"]) != (2 if e["msgid_plural"] else 1)]
    assert fuzzy == [] and empty == []


def test_translations_keep_the_placeholders_and_the_markup(entries):
    for e in entries[1:]:
        for index, text in e["msgstr"].items():
            source = e["msgid_plural"] if index and e["msgid_plural"] else e["msgid"]
            assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(source)), (e["msgid"], text)
            assert sorted(TAG.findall(text)) == sorted(TAG.findall(source)), (e["msgid"], text)
            assert text.count("%%") == source.count("%%"), (e["msgid"], text)
            assert text.endswith("\n") == source.endswith("\n"), (e["msgid"], text)


def test_the_committed_mo_says_what_the_po_says(entries):
    mo_path = CATALOGUE / "django.mo"
    with mo_path.open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    # A .mo starts with magic, revision and the number of strings: one per .po entry, header included.
    magic, _revision, count = struct.unpack("<3I", mo_path.read_bytes()[:12])
    assert magic == 0x950412DE and count == len(entries)
    for e in entries[1:]:
        if e["msgid_plural"] is not None:
            assert compiled.ngettext(e["msgid"], e["msgid_plural"], 1) == e["msgstr"][0]
            assert compiled.ngettext(e["msgid"], e["msgid_plural"], 2) == e["msgstr"][1]
        elif e["msgctxt"] is not None:
            assert compiled.pgettext(e["msgctxt"], e["msgid"]) == e["msgstr"][0]
        else:
            assert compiled.gettext(e["msgid"]) == e["msgstr"][0], e["msgid"]


def test_the_sale_types_named_by_the_dte_core_are_translated():
    """rules.models translates the DTE core's short names at run time: each needs its msgid."""
    with translation.override("en"):
        labels = {code: translation.gettext(DOCUMENT_TYPES[code].short_name) for code in SALE_TYPES}
        from rules.models import RuleSet

        choices = dict(RuleSet._meta.get_field("default_document_type").choices)
        assert str(choices[39]) == "Taxable boleta (39)"
    assert all(label != DOCUMENT_TYPES[code].short_name for code, label in labels.items())


@pytest.fixture
def order(account):
    gateway = GatewayFactory(account=account, name="Tienda Shopify Chile")
    order = OrderFactory(account=account, gateway=gateway)
    DocumentFactory(account=account, emission=EmissionFactory(account=account, order=order))
    return order


def switch_language(client, language: str, next_url: str = "/"):
    response = client.post(reverse("set_language"), {"language": language, "next": next_url})
    assert response.status_code == 302 and response["Location"] == next_url
    return response


DASHBOARD_PAGES = {
    "dashboard": ((), ["Home", "Latest orders", "Sign out", "Language"], ["Últimas órdenes", "Salir"]),
    "order-list": ((), ["Filter orders", "Orders, most recent first", "Buyer"], ["Filtrar órdenes", "Comprador"]),
    "gateway-list": ((), ["Billing gateways", "New gateway", "Data sources"], ["Nueva pasarela", "Orígenes de datos"]),
    "settings-account": ((), ["Account details", "Company RUT", "Members"], ["Datos de la cuenta", "Miembros"]),
}


def test_the_dashboard_follows_the_language_chosen_in_the_switcher(session_client, order):
    home = session_client.get("/").content.decode()
    assert "Últimas órdenes" in home and 'action="/i18n/setlang/"' in home and "<script>" not in home
    switch_language(session_client, "en", "/orders/")
    assert session_client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    for name, (args, english, spanish) in DASHBOARD_PAGES.items():
        response = session_client.get(reverse(name, args=args))
        html = response.content.decode()
        assert response.status_code == 200 and response["Content-Language"] == "en", name
        assert all(text in html for text in english), (name, [t for t in english if t not in html])
        assert not any(text in html for text in spanish), (name, [t for t in spanish if t in html])
    page = session_client.get(reverse("order-detail", args=[order.pk])).content.decode()
    assert f"Order {order.number}" in page and "Order documents" in page and "Issued" in page
    assert "Documentos de la orden" not in page
    # The choice is kept for a year, and back in Spanish only when switched back.
    assert session_client.cookies[settings.LANGUAGE_COOKIE_NAME]["max-age"] == 365 * 24 * 60 * 60
    switch_language(session_client, "es")
    assert "Últimas órdenes" in session_client.get("/").content.decode()


def test_the_dashboard_is_in_spanish_by_default(session_client, order):
    for name, (args, english, spanish) in DASHBOARD_PAGES.items():
        response = session_client.get(reverse(name, args=args))
        html = response.content.decode()
        assert response["Content-Language"] == "es", name
        assert all(text in html for text in spanish), (name, [t for t in spanish if t not in html])
        assert not any(text in html for text in english), (name, [t for t in english if t in html])
    page = session_client.get(reverse("order-detail", args=[order.pk])).content.decode()
    assert "Documentos de la orden" in page and "Order documents" not in page


def test_the_sign_in_page_has_the_switcher_and_follows_it(db):
    client = Client()
    login = client.get(reverse("login")).content.decode()
    assert "Ingresar" in login and 'name="language" value="en"' in login and "csrfmiddlewaretoken" in login
    switch_language(client, "en", reverse("login"))
    english = client.get(reverse("login")).content.decode()
    assert "Sign in" in english and "Electronic invoicing gateway for stores in Chile." in english
    assert '<html lang="en">' in english


def test_the_switcher_refuses_a_post_without_csrf(db):
    client = Client(enforce_csrf_checks=True)
    assert client.post(reverse("set_language"), {"language": "en", "next": "/"}).status_code == 403


def test_api_errors_follow_accept_language(db):
    client = Client()
    spanish = client.get("/api/v1/orders/", HTTP_AUTHORIZATION="Bearer bms_nope_nope")
    english = client.get("/api/v1/orders/", HTTP_AUTHORIZATION="Bearer bms_nope_nope", HTTP_ACCEPT_LANGUAGE="en")
    assert spanish.json()["error"]["message"] == "Clave de API inválida o revocada."
    assert english.json()["error"]["message"] == "Invalid or revoked API key."
    assert spanish.json()["error"]["code"] == english.json()["error"]["code"]


def test_a_store_webhook_is_answered_in_the_product_language_whatever_it_asks(db):
    answer = Client().post("/hooks/nobody-has-this-token/", b"{}", content_type="application/json", HTTP_ACCEPT_LANGUAGE="en")
    assert answer.status_code == 404 and answer.json() == {"error": "Dirección de webhook desconocida."}


def test_the_api_reference_follows_accept_language(db):
    spanish = Client().get("/api/schema/?format=json").content.decode()
    english = Client().get("/api/schema/?format=json", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Demasiadas solicitudes; vea Retry-After." in spanish and "Too many requests" not in spanish
    assert "Too many requests; see Retry-After." in english and "Demasiadas solicitudes" not in english
    assert "Billing gateway: data sources" in english and "Pasarela de facturación: orígenes" in spanish
