"""The API's JSON parser: a body nested too deep to read is a 400, not a crash."""
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class JSONBodyParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(_("El cuerpo JSON está anidado a demasiada profundidad.")) from None
