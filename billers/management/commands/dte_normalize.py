"""``manage.py dte_normalize FILE``: print a LibreDTE/SII-shaped document (JSON or YAML) normalised."""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError

from billers.dte import InvalidDocument, document_from_libredte_json, document_to_libredte_json, normalize


class Command(BaseCommand):
    help = "Normalise a DTE given as LibreDTE JSON or YAML (a 'Test' block is ignored) and print it as JSON with its Totales."

    def add_arguments(self, parser):
        parser.add_argument("file", help="path to a .json, .yaml or .yml document")

    def handle(self, *args, **options):
        path = Path(options["file"])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        try:
            # YAML is a superset of JSON, so one parser reads both formats.
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CommandError(f"{path} is not valid JSON or YAML: {exc}") from None
        if not isinstance(data, dict):
            raise CommandError(f"{path} does not hold a document object")
        try:
            document = normalize(document_from_libredte_json(data))
        except InvalidDocument as exc:
            raise CommandError(f"{path}: invalid document: {exc}") from None
        self.stdout.write(json.dumps(document_to_libredte_json(document), ensure_ascii=False, indent=2))
