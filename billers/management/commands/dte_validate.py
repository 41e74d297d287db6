"""``manage.py dte_validate FILE.xml``: validate a DTE, EnvioDTE or EnvioBOLETA against the SII XSD."""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billers.dte import SchemaUnavailable, validate_dte_xml


class Command(BaseCommand):
    help = "Validate a DTE (or an EnvioDTE / EnvioBOLETA envelope) against the SII schemas; exit 1 when invalid."

    def add_arguments(self, parser):
        parser.add_argument("file", help="path to the XML file")

    def handle(self, *args, **options):
        path = Path(options["file"])
        try:
            xml_bytes = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        schema_dir = Path(settings.BMS_SHARED_DIR) / "sii" / "xsd"
        try:
            errors = validate_dte_xml(xml_bytes, schema_dir=schema_dir if schema_dir.is_dir() else None)
        except SchemaUnavailable as exc:
            raise CommandError(str(exc)) from None
        if errors:
            for error in errors:
                self.stdout.write(f"{path}:{error.line}: {error.message}")
            raise CommandError(f"{path} is NOT valid against the SII schema ({len(errors)} error(s))", returncode=1)
        self.stdout.write(f"{path} is valid against the SII schema")
