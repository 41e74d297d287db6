from billers.dte.sanitize import clean_rut, fit, to_latin1


def test_latin1_keeps_spanish_text_and_replaces_only_what_it_cannot_hold():
    assert to_latin1("Añejo «Ñandú» café") == "Añejo «Ñandú» café"
    assert to_latin1("Taza ☕ “rica” – 50€ …") == 'Taza ? "rica" - 50EUR ...'
    assert to_latin1("茶 ﬁn ś") == "? fin s"
    assert to_latin1("a\x00b\x85c") == "a b c"
    assert to_latin1("😀").encode("iso-8859-1") == b"?"


def test_fit_truncates_to_the_schema_limit_after_replacing():
    assert fit("x" * 100, 80) == "x" * 80
    assert fit("  ab  ", 80) == "ab"
    assert fit("   ", 80) is None
    assert len(fit("😀" * 50, 40)) == 40


def test_rut_is_validated_and_canonical():
    assert clean_rut("76.086.428-5") == "76086428-5"
    assert clean_rut("60803000-k") == "60803000-K"
    assert clean_rut("12345678-9") is None  # wrong check digit
    assert clean_rut("76086428") is None
    assert clean_rut("") is None
