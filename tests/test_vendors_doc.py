"""docs/vendors.md against the code: one section per registered adapter, every declared credential and
config field in its tables with its real requiredness and default, no field the adapter does not
declare, and every file and ``BMS_*`` setting the page names exists."""
import re
from pathlib import Path

import pytest

from billers.registry import BILLER_ADAPTERS
from sources.registry import SOURCE_ADAPTERS

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "vendors.md"
# Registered type → the heading of its section.
SECTIONS = {
    "libredte": "LibreDTE", "bhexpress": "BHEXPRESS", "webfactura": "webFactura", "sandbox": "Sandbox biller",
    "shopify": "Shopify", "woocommerce": "WooCommerce", "multivende": "Multivende", "demo": "Demo store",
}
ADAPTERS = {**BILLER_ADAPTERS, **SOURCE_ADAPTERS}


def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def section(heading: str) -> str:
    text = doc()
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"docs/vendors.md has no section '## {heading}'"
    return match.group(1)


def table(text: str, first_column: str) -> dict[str, list[str]]:
    """Rows of the table whose header starts with ``| <first_column> |``: field name → the other cells."""
    match = re.search(rf"^\| {first_column} \|.*\n\|[-| ]+\|\n((?:\|.*\n)*)", text, re.M)
    if not match:
        return {}
    rows = {}
    for line in match.group(1).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def shown_default(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def test_every_registered_adapter_has_its_section():
    assert set(ADAPTERS) <= set(SECTIONS), f"add a docs/vendors.md section for {sorted(set(ADAPTERS) - set(SECTIONS))}"
    for name in ADAPTERS:
        section(SECTIONS[name])


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_credentials_table_matches_the_declared_spec(name):
    spec = ADAPTERS[name].credentials_spec
    rows = table(section(SECTIONS[name]), "credential")
    assert set(rows) == {field.name for field in spec}, f"{name}: credentials shown {sorted(rows)}"
    for field in spec:
        required = rows[field.name][0]
        expected = "yes" if field.required else ("no (generated)" if field.generated else "no")
        assert required == expected, f"{name}.{field.name}: the page says {required!r}, the spec {expected!r}"


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_config_table_matches_the_declared_spec_and_defaults(name):
    spec = ADAPTERS[name].config_spec
    rows = table(section(SECTIONS[name]), "config")
    assert set(rows) == {field.name for field in spec}, f"{name}: config shown {sorted(rows)}"
    for field in spec:
        assert rows[field.name][0] == shown_default(field.default), (
            f"{name}.{field.name}: the page shows default {rows[field.name][0]}, the spec {shown_default(field.default)}")


def test_every_file_named_exists():
    paths = set(re.findall(r"`((?:billers|sources|tests|simulators|billmysales)/[\w/]+(?:\.py)?/?)`", doc()))
    assert len(paths) > 20
    missing = sorted(path for path in paths if "<" not in path and not (ROOT / path).exists())
    assert not missing, f"docs/vendors.md names files that do not exist: {missing}"


def test_every_setting_named_is_read_by_the_settings():
    settings_text = "".join(path.read_text(encoding="utf-8") for path in (ROOT / "billmysales" / "settings").glob("*.py"))
    named = set(re.findall(r"\bBMS_[A-Z0-9_]+", doc()))
    assert {"BMS_PUBLIC_URL", "BMS_SHOPIFY_CLIENT_SECRET", "BMS_MULTIVENDE_BASE_URL"} <= named
    unknown = sorted(name for name in named if f'"{name}"' not in settings_text)
    assert not unknown, f"docs/vendors.md names settings nothing reads: {unknown}"
