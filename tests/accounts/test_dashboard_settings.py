"""Configuración: the account (name, company RUT), members and invitations, API keys and the audit log.
Owners and admins manage; viewers read without buttons and are refused on POST; another account's member,
invitation or key is a 404 on every action."""
import re

import pytest
from django.core import mail

from accounts.models import ApiKey, AuditLog, Invitation, Membership, Role, hash_api_key
from accounts.services import Actor, api_key_create, audit_log_record, invitation_create
from tests.accounts.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer_client(client, account):
    viewer = UserFactory(email="solo.lectura@ejemplo.cl")
    MembershipFactory(user=viewer, account=account, role=Role.VIEWER)
    client.force_login(viewer)
    return client


@pytest.fixture
def other_invitation(other_account):
    owner = other_account.memberships.get().user
    return invitation_create(account=other_account, email="x@ejemplo.cl", role=Role.VIEWER,
                             actor=Actor(user=owner, role=Role.OWNER), accept_url="http://testserver/invitaciones/{token}/")


# --- Account ------------------------------------------------------------------------------------------


def test_the_settings_area_is_reachable_from_the_navigation(session_client):
    page = session_client.get("/configuracion/miembros/").content.decode()
    assert '<a class="mr-3" href="/configuracion/">Configuración</a>' in page
    answer = session_client.get("/configuracion/", follow=True)
    assert answer.redirect_chain[-1][0] == "/configuracion/cuenta/"
    html = answer.content.decode()
    for tab in ("/configuracion/miembros/", "/configuracion/claves-api/", "/configuracion/webhooks/", "/configuracion/auditoria/"):
        assert f'href="{tab}"' in html


def test_owner_changes_the_name_and_rut(session_client, account):
    answer = session_client.post("/configuracion/cuenta/", {"name": "Comercial Los Andes Ltda", "rut": "76.192.083-9"})
    assert answer.status_code == 302
    account.refresh_from_db()
    assert (account.name, account.rut) == ("Comercial Los Andes Ltda", "76192083-9")
    assert AuditLog.objects.filter(account=account, action="account.update").exists()
    # Shown back the way the rest of the dashboard writes RUTs.
    assert 'value="76.192.083-9"' in session_client.get("/configuracion/cuenta/").content.decode()


def test_an_invalid_rut_is_refused_on_its_field(session_client, account):
    answer = session_client.post("/configuracion/cuenta/", {"name": account.name, "rut": "76.192.083-0"})
    assert answer.status_code == 400
    assert answer.context["form"].errors["rut"] == ["'76.192.083-0' no es un RUT válido."]
    assert 'aria-invalid="true"' in answer.content.decode()
    account.refresh_from_db()
    assert account.rut == "76086428-5"


def test_a_viewer_reads_the_account_and_cannot_change_it(viewer_client, account):
    page = viewer_client.get("/configuracion/cuenta/").content.decode()
    assert "76.086.428-5" in page and "<form method=\"post\" novalidate>" not in page
    answer = viewer_client.post("/configuracion/cuenta/", {"name": "Hackeada", "rut": ""})
    assert answer.status_code == 403
    account.refresh_from_db()
    assert account.name == "Comercial Los Andes SpA"


# --- Members and invitations ----------------------------------------------------------------------------


def test_owner_invites_by_email_and_the_email_carries_the_accept_link(session_client, account, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        answer = session_client.post("/configuracion/miembros/", {"email": "Nueva@Ejemplo.cl", "role": Role.ADMIN})
    assert answer.status_code == 302
    invitation = Invitation.objects.get(account=account)
    assert (invitation.email, invitation.role) == ("nueva@ejemplo.cl", Role.ADMIN)
    [message] = mail.outbox
    assert re.search(r"http://testserver/invitaciones/[\w-]+/", message.body)
    page = session_client.get("/configuracion/miembros/").content.decode()
    assert "nueva@ejemplo.cl" in page and f"/configuracion/invitaciones/{invitation.pk}/revocar/" in page


def test_inviting_an_existing_member_is_refused_on_the_email_field(session_client, user):
    answer = session_client.post("/configuracion/miembros/", {"email": user.email, "role": Role.VIEWER})
    assert answer.status_code == 400
    assert answer.context["invite_form"].errors["email"] == [f"{user.email} ya es miembro de la cuenta."]


def test_owner_changes_a_role_removes_a_member_and_revokes_an_invitation(session_client, account, actor):
    member = MembershipFactory(account=account, role=Role.VIEWER)
    assert session_client.post(f"/configuracion/miembros/{member.pk}/rol/", {"role": Role.SUPPORT}).status_code == 302
    member.refresh_from_db()
    assert member.role == Role.SUPPORT

    invitation = invitation_create(account=account, email="tarde@ejemplo.cl", role=Role.VIEWER, actor=actor,
                                   accept_url="http://testserver/invitaciones/{token}/")
    assert session_client.post(f"/configuracion/invitaciones/{invitation.pk}/revocar/").status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None

    assert session_client.post(f"/configuracion/miembros/{member.pk}/quitar/").status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()
    actions = set(AuditLog.objects.filter(account=account).values_list("action", flat=True))
    assert {"membership.role", "invitation.revoke", "membership.remove"} <= actions


def test_the_last_owner_cannot_step_down(session_client, account, user):
    own = Membership.objects.get(user=user, account=account)
    answer = session_client.post(f"/configuracion/miembros/{own.pk}/rol/", {"role": Role.VIEWER}, follow=True)
    assert "La cuenta debe conservar al menos un dueño." in answer.content.decode()
    own.refresh_from_db()
    assert own.role == Role.OWNER


def test_an_admin_cannot_make_owners(client, account):
    admin = MembershipFactory(account=account, role=Role.ADMIN)
    member = MembershipFactory(account=account, role=Role.VIEWER)
    client.force_login(admin.user)
    assert (Role.OWNER, Role.OWNER.label) not in client.get("/configuracion/miembros/").context["invite_form"].fields["role"].choices
    client.post(f"/configuracion/miembros/{member.pk}/rol/", {"role": Role.OWNER})
    member.refresh_from_db()
    assert member.role == Role.VIEWER


def test_a_viewer_sees_members_read_only_and_every_post_is_refused(viewer_client, account, user, actor):
    owner = Membership.objects.get(user=user)
    page = viewer_client.get("/configuracion/miembros/").content.decode()
    assert user.email in page and "Dueño" in page
    assert "Quitar" not in page and "Enviar invitación" not in page and "Invitaciones pendientes" not in page
    invitation = invitation_create(account=account, email="x@ejemplo.cl", role=Role.VIEWER, actor=actor,
                                   accept_url="http://testserver/invitaciones/{token}/")
    assert viewer_client.post("/configuracion/miembros/", {"email": "y@ejemplo.cl", "role": Role.VIEWER}).status_code == 403
    assert viewer_client.post(f"/configuracion/miembros/{owner.pk}/rol/", {"role": Role.VIEWER}).status_code == 403
    assert viewer_client.post(f"/configuracion/miembros/{owner.pk}/quitar/").status_code == 403
    assert viewer_client.post(f"/configuracion/invitaciones/{invitation.pk}/revocar/").status_code == 403
    owner.refresh_from_db()
    invitation.refresh_from_db()
    assert owner.role == Role.OWNER and invitation.revoked_at is None
    assert Invitation.objects.filter(account=account).count() == 1


def test_another_accounts_member_and_invitation_are_404(session_client, other_account, other_invitation):
    stranger = other_account.memberships.get()
    assert session_client.post(f"/configuracion/miembros/{stranger.pk}/rol/", {"role": Role.VIEWER}).status_code == 404
    assert session_client.post(f"/configuracion/miembros/{stranger.pk}/quitar/").status_code == 404
    assert session_client.post(f"/configuracion/invitaciones/{other_invitation.pk}/revocar/").status_code == 404
    stranger.refresh_from_db()
    other_invitation.refresh_from_db()
    assert stranger.role == Role.OWNER and other_invitation.revoked_at is None
    assert stranger.user.email not in session_client.get("/configuracion/miembros/").content.decode()


# --- API keys -------------------------------------------------------------------------------------------


def test_a_new_key_is_shown_once_and_works(session_client, account, client):
    answer = session_client.post("/configuracion/claves-api/", {"name": "ERP", "scope": "write"})
    assert answer.status_code == 200 and answer["Cache-Control"].startswith("max-age=0")
    raw = re.search(r'value="(bms_[^"]+)"', answer.content.decode()).group(1)
    key = ApiKey.objects.get(account=account)
    assert key.key_hash == hash_api_key(raw) and raw.startswith(f"bms_{key.prefix}_")

    listing = session_client.get("/configuracion/claves-api/").content.decode()
    assert raw not in listing and f"bms_{key.prefix}_…" in listing and "Lectura y escritura" in listing and "Nunca" in listing

    assert client.get("/api/v1/gateways/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert "Nunca" not in session_client.get("/configuracion/claves-api/").content.decode()


def test_revoking_a_key_stops_it(session_client, account, actor, client):
    key, raw = api_key_create(account=account, name="vieja", scope="read", actor=actor)
    assert session_client.post(f"/configuracion/claves-api/{key.pk}/revocar/").status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert "Revocada el" in session_client.get("/configuracion/claves-api/").content.decode()
    assert client.get("/api/v1/gateways/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


def test_keys_are_for_owners_and_admins_only(viewer_client, account, actor):
    key, _raw = api_key_create(account=account, name="ERP", scope="read", actor=actor)
    assert viewer_client.get("/configuracion/claves-api/").status_code == 403
    assert viewer_client.post("/configuracion/claves-api/", {"name": "x", "scope": "write"}).status_code == 403
    assert viewer_client.post(f"/configuracion/claves-api/{key.pk}/revocar/").status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None and ApiKey.objects.count() == 1


def test_another_accounts_key_is_404(session_client, other_account):
    owner = other_account.memberships.get().user
    key, _raw = api_key_create(account=other_account, name="ajena", scope="write", actor=Actor(user=owner, role=Role.OWNER))
    assert session_client.post(f"/configuracion/claves-api/{key.pk}/revocar/").status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None
    assert "ajena" not in session_client.get("/configuracion/claves-api/").content.decode()


# --- Audit log ------------------------------------------------------------------------------------------


def test_the_audit_log_pages_newest_first_with_spanish_labels(session_client, account, other_account, actor):
    for number in range(55):
        audit_log_record(account=account, actor=actor, action="order.skip", data={"reason": f"motivo {number}"})
    api_key_create(account=account, name="ERP", scope="read", actor=actor)
    audit_log_record(account=other_account, actor=Actor(), action="api_key.revoke")

    first = session_client.get("/configuracion/auditoria/")
    entries = list(first.context["entries"])
    assert len(entries) == 50 and entries[0].action == "api_key.create"
    assert [e.pk for e in entries] == sorted((e.pk for e in entries), reverse=True)
    html = first.content.decode()
    assert "Clave de API creada" in html and "Orden omitida" in html and "motivo:</span> motivo 54" in html
    assert "Página 1 de 2" in html and "api_key.create" not in html

    second = session_client.get("/configuracion/auditoria/?page=2")
    assert len(second.context["entries"]) == 6  # 55 + 1 of this account; the other account's entry is not here
    assert "motivo:</span> motivo 0<" in second.content.decode()


def test_an_unknown_action_is_labelled_as_such(session_client, account, actor):
    audit_log_record(account=account, actor=actor, action="algo.nuevo")
    assert "Otra acción" in session_client.get("/configuracion/auditoria/").content.decode()


def test_viewers_do_not_read_the_audit_log_but_support_mode_does(viewer_client, client, account):
    assert viewer_client.get("/configuracion/auditoria/").status_code == 403
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    client.post(f"/support/{account.pk}/open/", {"reason": "Ticket 77"})
    page = client.get("/configuracion/auditoria/")
    assert page.status_code == 200
    assert "Acceso de soporte" in page.content.decode() and "modo soporte" in page.content.decode()


def test_active_keys_come_before_revoked_ones(session_client, account, actor):
    old, _raw = api_key_create(account=account, name="vieja", scope="read", actor=actor)
    session_client.post(f"/configuracion/claves-api/{old.pk}/revocar/")
    new, _raw = api_key_create(account=account, name="nueva", scope="read", actor=actor)
    assert [key.pk for key in session_client.get("/configuracion/claves-api/").context["keys"]] == [new.pk, old.pk]


def test_a_change_of_the_account_names_its_fields_in_spanish(session_client, account):
    session_client.post("/configuracion/cuenta/", {"name": "Otro Nombre SpA", "rut": "76.086.428-5"})
    html = session_client.get("/configuracion/auditoria/").content.decode()
    assert "Datos de la cuenta cambiados" in html and "campos:</span> nombre, RUT<" in html


def test_an_admin_sees_owners_without_a_role_form_or_remove_button(client, account, user):
    admin = MembershipFactory(account=account, role=Role.ADMIN)
    client.force_login(admin.user)
    page = client.get("/configuracion/miembros/")
    forms = {membership.user_id: form for membership, form in page.context["members"]}
    assert forms[user.pk] is None and forms[admin.user_id] is not None
    owner = Membership.objects.get(user=user)
    assert f"/configuracion/miembros/{owner.pk}/quitar/" not in page.content.decode()
