"""Signing up, in and out (django-allauth): the confirmation link, the first account right after, the
last-used account after signing in again, invitations for signed-in and brand-new users, the lockout
after repeated failures (django-axes), and support mode's mandatory reason."""
import re

import pytest
from allauth.account.models import EmailAddress
from axes.models import AccessAttempt
from django.core import mail
from django.core.exceptions import ValidationError

from accounts.models import Account, AuditLog, Invitation, Membership, Role, User
from accounts.services import Actor, invitation_create, support_access_open
from tests.accounts.factories import AccountFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "secret-pass-123"
NEW_PASSWORD = "Clave-Segura-2026"


def sign_in(client, email, password=PASSWORD, **extra):
    return client.post("/login/", {"username": email, "password": password}, **extra)


def link_in(message) -> str:
    return re.search(r"https?://\S+", message.body).group(0)


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


# --- Sign-up, confirmation, first account --------------------------------------------------------------


def test_sign_up_confirm_then_create_the_first_account(client):
    answer = client.post("/auth/signup/", {"full_name": "Ana Pérez", "email": "Ana@Tienda.cl", "password1": NEW_PASSWORD,
                                           "password2": NEW_PASSWORD})
    assert answer.status_code == 302 and answer["Location"] == "/auth/confirm-email/"
    user = User.objects.get(email="ana@tienda.cl")
    assert user.full_name == "Ana Pérez" and not Membership.objects.filter(user=user).exists()
    [message] = mail.outbox
    assert message.to == ["ana@tienda.cl"] and message.subject == "[BillMySales] Confirme su correo"
    assert "/auth/confirm-email/" in message.body and "Para confirmarlo, abra este enlace" in message.body

    # Not signed in until the address is confirmed.
    assert client.get("/")["Location"].startswith("/login/")
    confirm = path_of(link_in(message))
    assert "Confirme que ana@tienda.cl es su correo" in client.get(confirm).content.decode()
    answer = client.post(confirm, follow=True)
    assert answer.redirect_chain[-1][0] == "/cuentas/nueva/"
    assert "Cree su cuenta" in answer.content.decode()
    assert EmailAddress.objects.get(user=user).verified

    answer = client.post("/cuentas/nueva/", {"name": "Tienda de Ana SpA", "rut": "76.086.428-5"})
    assert answer.status_code == 302 and answer["Location"] == "/"
    membership = Membership.objects.select_related("account").get(user=user)
    assert membership.role == Role.OWNER and membership.account.rut == "76086428-5" and membership.last_used_at is not None
    assert AuditLog.objects.filter(account=membership.account, action="account.create", actor=user).exists()
    assert "Tienda de Ana SpA" in client.get("/configuracion/cuenta/").content.decode()


def test_signing_in_before_confirming_sends_the_link_again_and_does_not_sign_in(client):
    client.post("/auth/signup/", {"email": "luis@tienda.cl", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    client.logout()
    mail.outbox.clear()
    answer = sign_in(client, "luis@tienda.cl", NEW_PASSWORD)
    assert answer.status_code == 302 and answer["Location"] == "/auth/confirm-email/"
    assert len(mail.outbox) == 1
    assert client.get("/")["Location"].startswith("/login/")


def test_first_account_refuses_an_invalid_rut_on_its_field(client, user):
    client.force_login(user)
    answer = client.post("/cuentas/nueva/", {"name": "Mala SpA", "rut": "76.086.428-4"})
    assert answer.status_code == 200
    form = answer.context["form"]
    assert form.errors["rut"] == ["'76.086.428-4' no es un RUT válido."]
    assert not Account.objects.filter(name="Mala SpA").exists()


def test_users_created_by_an_operator_sign_in_without_a_confirmation_link(client, account, user):
    answer = sign_in(client, user.email)
    assert answer.status_code == 302 and answer["Location"] == "/"
    assert not mail.outbox
    assert account.name in client.get("/configuracion/cuenta/").content.decode()


def test_the_login_page_posts_the_email_as_username_and_wrong_passwords_are_told_in_spanish(client, user):
    page = client.get("/login/").content.decode()
    assert 'name="username"' in page and 'name="password"' in page and "Ingresar" in page
    answer = sign_in(client, user.email, "mala-clave")
    assert answer.status_code == 200
    assert "no son correctas" in answer.content.decode()


def test_logout_is_a_post_and_ends_the_session(client, account, user):
    sign_in(client, user.email)
    answer = client.post("/logout/")
    assert answer.status_code == 302 and answer["Location"] == "/login/"
    assert client.get("/")["Location"].startswith("/login/")


def test_password_reset_by_email(client, user):
    answer = client.post("/auth/password/reset/", {"email": user.email})
    assert answer.status_code == 302
    [message] = mail.outbox
    assert message.subject == "[BillMySales] Recuperar su contraseña"
    reset = client.get(path_of(link_in(message)), follow=True)
    form_url = reset.redirect_chain[-1][0]
    answer = client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert answer.status_code == 302
    assert sign_in(client, user.email, NEW_PASSWORD)["Location"] == "/"


# --- Accounts: another one, switching, the last used one remembered ------------------------------------


def test_the_last_used_account_is_remembered_across_logins(client, user):
    alfa, beta = AccountFactory(name="Alfa SpA"), AccountFactory(name="Zeta SpA")
    MembershipFactory(user=user, account=alfa, role=Role.OWNER)
    MembershipFactory(user=user, account=beta, role=Role.VIEWER)
    sign_in(client, user.email)
    assert client.get("/configuracion/cuenta/").context["current_account"] == alfa  # by name while never chosen

    assert client.post(f"/accounts/{beta.pk}/switch/")["Location"] == "/"
    client.post("/logout/")
    sign_in(client, user.email)
    page = client.get("/configuracion/cuenta/")
    assert page.context["current_account"] == beta
    assert page.context["current_role"] == Role.VIEWER


def test_switching_to_an_account_that_is_not_yours_is_404(client, user, account, other_account):
    client.force_login(user)
    assert client.post(f"/accounts/{other_account.pk}/switch/").status_code == 404


def test_creating_another_account_makes_it_current_and_the_menu_lists_both(client, user, account):
    client.force_login(user)
    answer = client.post("/cuentas/nueva/", {"name": "Segunda Empresa Ltda", "rut": ""})
    assert answer["Location"] == "/"
    page = client.get("/configuracion/cuenta/")
    assert page.context["current_account"].name == "Segunda Empresa Ltda"
    html = page.content.decode()
    assert f'action="/accounts/{account.pk}/switch/"' in html and "Crear otra cuenta" in html


# --- Invitations ----------------------------------------------------------------------------------------


def invite(account, email, capture, role=Role.VIEWER) -> str:
    """Invites ``email`` as the account's owner would and returns the path of the emailed link."""
    owner = account.memberships.get(role=Role.OWNER).user
    mail.outbox.clear()
    with capture(execute=True):
        invitation_create(account=account, email=email, role=role, actor=Actor(user=owner, role=Role.OWNER),
                          accept_url="http://testserver/invitaciones/{token}/")
    return path_of(link_in(mail.outbox[-1]))


def test_a_signed_in_user_accepts_an_invitation(client, account, django_capture_on_commit_callbacks):
    bea = UserFactory(email="bea@ejemplo.cl")
    link = invite(account, "bea@ejemplo.cl", django_capture_on_commit_callbacks, Role.ADMIN)
    client.force_login(bea)
    page = client.get(link).content.decode()
    assert account.name in page and "Administrador" in page and 'id="accept-invitation"' in page
    answer = client.post(link)
    assert answer["Location"] == "/"
    assert Membership.objects.get(user=bea, account=account).role == Role.ADMIN
    assert client.get("/configuracion/cuenta/").context["current_account"] == account
    assert Invitation.objects.get().accepted_at is not None


def test_a_new_user_signs_up_from_the_invitation_without_a_second_email(client, account, django_capture_on_commit_callbacks):
    link = invite(account, "nuevo@ejemplo.cl", django_capture_on_commit_callbacks, Role.SUPPORT)
    mail.outbox.clear()
    page = client.get(link)
    signup_url = page.context["signup_url"]
    assert "email=nuevo%40ejemplo.cl" in signup_url
    assert client.get(signup_url).context["form"].initial["email"] == "nuevo@ejemplo.cl"

    answer = client.post(signup_url, {"email": "nuevo@ejemplo.cl", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert answer.status_code == 302 and answer["Location"] == link
    assert not mail.outbox  # the invitation proved the address: no confirmation email
    assert client.post(link)["Location"] == "/"
    user = User.objects.get(email="nuevo@ejemplo.cl")
    assert Membership.objects.get(user=user).account == account
    # Joined an account: no first-account page.
    assert client.get("/configuracion/cuenta/").status_code == 200


def test_an_invitation_for_someone_else_is_refused(client, user, account, other_account, django_capture_on_commit_callbacks):
    link = invite(other_account, "otra.persona@ejemplo.cl", django_capture_on_commit_callbacks)
    client.force_login(user)
    assert "Esta invitación es para otra.persona@ejemplo.cl" in client.get(link).content.decode()
    answer = client.post(link, follow=True)
    assert "La invitación es para otra.persona@ejemplo.cl" in answer.content.decode()
    assert not Membership.objects.filter(user=user, account=other_account).exists()


def test_a_revoked_or_unknown_invitation_is_not_valid(client, account, django_capture_on_commit_callbacks):
    link = invite(account, "tarde@ejemplo.cl", django_capture_on_commit_callbacks)
    Invitation.objects.update(revoked_at="2026-01-01T00:00:00Z")
    answer = client.get(link)
    assert answer.status_code == 404 and "Invitación no válida" in answer.content.decode()
    assert client.get("/invitaciones/no-existe/").status_code == 404


# --- Lockout (django-axes) ------------------------------------------------------------------------------


def test_repeated_failures_lock_the_email_out_from_that_address_with_a_spanish_page(client, user, account, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, user.email, "mala-clave").status_code == 200
    locked = sign_in(client, user.email, "mala-clave")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Ingreso bloqueado" in page and "5 intentos fallidos" in page and "15 minutos" in page
    # Even the right password is refused now, from this address...
    assert sign_in(client, user.email).status_code == 429
    assert client.get("/")["Location"].startswith("/login/")
    assert AccessAttempt.objects.get(username=user.email).failures_since_start >= settings.AXES_FAILURE_LIMIT
    # ...but not from another one, so a stranger cannot lock a merchant out everywhere.
    assert sign_in(client, user.email, REMOTE_ADDR="203.0.113.9")["Location"] == "/"


def test_a_success_resets_the_failure_count(client, user, account, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, user.email, "mala-clave")
    assert sign_in(client, user.email)["Location"] == "/"
    client.post("/logout/")
    assert sign_in(client, user.email, "mala-clave").status_code == 200


# --- Support mode ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   "])
def test_support_mode_without_a_reason_is_refused_on_its_field(client, other_account, reason):
    client.force_login(UserFactory(is_staff=True))
    answer = client.post(f"/support/{other_account.pk}/open/", {"reason": reason})
    assert answer.status_code == 400
    assert "Indique el motivo del acceso" in answer.content.decode()
    assert not AuditLog.objects.filter(action="support.open").exists()
    assert client.get("/")["Location"] == "/support/"  # not in the account


def test_support_mode_with_a_reason_opens_the_account_and_audits_it(client, other_account):
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    answer = client.post(f"/support/{other_account.pk}/open/", {"reason": "Ticket #4521"})
    assert answer["Location"] == "/"
    entry = AuditLog.objects.get(action="support.open")
    assert entry.account == other_account and entry.actor == staff and entry.support_mode and entry.data == {"reason": "Ticket #4521"}
    assert "Modo soporte" in client.get("/configuracion/cuenta/").content.decode()


def test_the_support_service_itself_refuses_a_blank_reason(other_account):
    with pytest.raises(ValidationError) as error:
        support_access_open(staff_user=UserFactory(is_staff=True), account=other_account, reason=" ")
    assert "reason" in error.value.message_dict


def test_behind_the_proxy_the_lockout_counts_the_forwarded_client(client, user, account, settings):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    for _ in range(settings.AXES_FAILURE_LIMIT):
        last = sign_in(client, user.email, "mala-clave", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert last.status_code == 429
    assert AccessAttempt.objects.get().ip_address == "198.51.100.7"
    # Another client behind the same proxy (same REMOTE_ADDR) still signs in.
    assert sign_in(client, user.email, HTTP_X_FORWARDED_FOR="198.51.100.8")["Location"] == "/"
