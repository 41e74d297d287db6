"""How django-allauth signs people up and in here (settings: ``ACCOUNT_ADAPTER``).

- Email confirmation is for self-service sign-ups: a user created through the sign-up form is marked
  ``signed_up`` and must confirm the address before the first sign-in. People an operator created
  (``createsuperuser``, the demo seed, the admin) sign in without a confirmation link.
- A visitor who opens an invitation link has proved the invited address (the link was emailed to it):
  ``accounts.views.invitation_accept`` marks that address as verified in the session, so signing up with it
  from the link needs no second email.
- django-axes counts failed sign-ins per email and client address; ``client_ip`` gives it the address
  allauth uses for its own limits, so both honour ``ALLAUTH_TRUSTED_PROXY_COUNT``; ``lockout_response`` is
  the Spanish page a locked-out sign-in gets (HTTP 429).
"""
from allauth.account.adapter import DefaultAccountAdapter, get_adapter
from axes.helpers import get_cool_off, get_failure_limit
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

_ALLAUTH_EMAIL_STAGE = "allauth.account.stages.EmailVerificationStage"


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request, user, form, commit=True):
        user.signed_up = True
        user.full_name = form.cleaned_data.get("full_name", "").strip()
        return super().save_user(request, user, form, commit)

    def get_login_stages(self) -> list[str]:
        return [
            "accounts.stages.SignUpEmailVerificationStage" if stage == _ALLAUTH_EMAIL_STAGE else stage
            for stage in super().get_login_stages()
        ]


def client_ip(request) -> str | None:
    try:
        return get_adapter(request).get_client_ip(request)
    except PermissionDenied:  # a request with no address at all (built in code, e.g. a test client's logout)
        return None


def lockout_response(request, original_response, credentials):
    """What axes answers once a sign-in is locked out: the sign-in page's layout, in Spanish, with how long."""
    cool_off = get_cool_off(request)
    return render(request, "account/lockout.html", {
        "failure_limit": get_failure_limit(request, credentials),
        "cooloff_minutes": int(cool_off.total_seconds() // 60) if cool_off else None,
    }, status=429)
