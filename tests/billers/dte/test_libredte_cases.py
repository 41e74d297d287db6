"""Every LibreDTE case in ../shared/sii/libredte-cases/ goes through ``manage.py dte_normalize``."""
import io
import json

import pytest
import yaml
from django.core.management import CommandError, call_command

from .conftest import NO_SHARED_REASON, SHARED

AMOUNTS = ("MntNeto", "MntExe", "IVA", "MntTotal", "MontoNF")


def _cases(kind):
    if SHARED is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_SHARED_REASON))]
    paths = sorted((SHARED / "sii" / "libredte-cases" / kind).glob("*.y*ml"))
    return [pytest.param(p, id=p.name) for p in paths]


def _normalize(path):
    out = io.StringIO()
    call_command("dte_normalize", str(path), stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.parametrize("path", _cases("ok"))
def test_ok_case_gives_exactly_the_expected_values(path):
    expected = yaml.safe_load(path.read_text(encoding="utf-8"))["Test"]["ExpectedValues"]
    result = _normalize(path)
    totales = result["Encabezado"]["Totales"]
    for key, value in expected["Encabezado"]["Totales"].items():
        assert totales.get(key) == value, key
    # "Exactly": no amount appears that the case does not expect.
    extra = {k: totales[k] for k in AMOUNTS if k in totales and k not in expected["Encabezado"]["Totales"]}
    assert extra == {}
    assert "Test" not in result


@pytest.mark.parametrize("path", _cases("error"))
def test_error_case_is_refused_clearly(path):
    with pytest.raises(CommandError) as exc_info:
        _normalize(path)
    assert "invalid document" in str(exc_info.value)
    assert "IndMntNeto" in str(exc_info.value)


def test_034_002_global_discount_without_indexedr_is_ignored_like_libredte(tmp_path):
    case = {
        "Encabezado": {"IdDoc": {"TipoDTE": 34, "Folio": 1}, "Emisor": {"RUTEmisor": "76192083-9"}, "Receptor": {"RUTRecep": "60803000-K"}},
        "Detalle": [{"IndExe": 1, "NmbItem": "Horas", "QtyItem": 5, "PrcItem": 25000}],
        "DscRcgGlobal": {"TpoMov": "D", "TpoValor": "%", "ValorDR": 10},
    }
    path = tmp_path / "034_002.json"
    path.write_text(json.dumps(case))
    assert _normalize(path)["Encabezado"]["Totales"] == {"MntExe": 125000, "MntTotal": 125000}
    case["DscRcgGlobal"]["IndExeDR"] = 1
    path.write_text(json.dumps(case))
    assert _normalize(path)["Encabezado"]["Totales"] == {"MntExe": 112500, "MntTotal": 112500}


@pytest.mark.parametrize(
    "content, message",
    [
        ("Encabezado: [unclosed", "not valid JSON or YAML"),
        ("- just\n- a list\n", "does not hold a document object"),
        ('{"Encabezado": {"IdDoc": {"TipoDTE": 110}}, "Detalle": [{"NmbItem": "x"}]}', "TipoDTE 110 is not supported"),
        ('{"Encabezado": {"IdDoc": {"TipoDTE": 33}}, "Detalle": [{"NmbItem": "x", "PrcItem": "abc"}]}', "$.Detalle[0].PrcItem"),
        ('{"Encabezado": {"IdDoc": {"TipoDTE": 33}}}', "no lines"),
    ],
)
def test_invalid_input_exits_non_zero_with_a_clear_error(tmp_path, content, message):
    path = tmp_path / "doc.yaml"
    path.write_text(content)
    with pytest.raises(CommandError) as exc_info:
        _normalize(path)
    assert message in str(exc_info.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        _normalize(tmp_path / "nope.yaml")
