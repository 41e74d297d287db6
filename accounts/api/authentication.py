from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions

from ..selectors import api_key_authenticate
from ..services import api_key_touch


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer bms_<prefix>_<secret>``; the account is the key's, never the body's."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _space, raw_key = header.partition(" ")
        if keyword != self.keyword or not raw_key.startswith("bms_"):
            return None
        api_key = api_key_authenticate(raw_key=raw_key.strip())
        if api_key is None:
            raise exceptions.AuthenticationFailed(_("Clave de API inválida o revocada."))
        api_key_touch(api_key=api_key)
        return (ApiKeyUser(api_key), api_key)

    def authenticate_header(self, request):
        return self.keyword


class ApiKeyUser:
    """The request.user of an API-key request: authenticated, not a person."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_active = True
    pk = None
    id = None

    def __init__(self, api_key):
        self.api_key = api_key

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"
