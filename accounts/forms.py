"""Forms of the accounts dashboard: sign-in and sign-up (allauth's, in Spanish and Bootstrap), the account
(name, company RUT), members and invitations, API keys, and the support-mode reason.

The forms only shape input; rules (a valid RUT, the last owner, who may invite an owner) live in
``accounts.services`` and their ``ValidationError`` lands on the form's fields (``apply_service_error``).
"""
from allauth.account import forms as allauth_forms
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .models import ApiKeyScope, Role

_CONTROL_CLASS = {"checkbox": "form-check-input", "checkboxselectmultiple": "form-check-input", "select": "custom-select"}


class BootstrapFormMixin:
    """Bootstrap 4 classes on every widget, and ``is-invalid`` on the fields that have errors."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget_type = type(field.widget).__name__.lower().removesuffix("input")
            css = _CONTROL_CLASS.get(widget_type, "form-control")
            field.widget.attrs["class"] = f"{field.widget.attrs.get('class', '')} {css}".strip()

    def full_clean(self):
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()

    def apply_service_error(self, error: ValidationError) -> None:
        """A service's refusal on the form: per field when it names one of the form's fields, else for the form."""
        if hasattr(error, "error_dict"):
            for field, errors in error.error_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        else:
            self.add_error(None, error)


class LoginForm(BootstrapFormMixin, allauth_forms.LoginForm):
    """allauth's sign-in by email. The email is posted as ``username``, the name this page has always used,
    so saved password-manager entries and scripts that sign in keep working."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["login"].label = _("Correo")
        self.fields["login"].widget.attrs.update(autocomplete="email", autofocus=True)
        self.fields["login"].widget.attrs.pop("placeholder", None)
        self.fields["password"].widget.attrs.pop("placeholder", None)

    def add_prefix(self, field_name):
        return "username" if field_name == "login" else super().add_prefix(field_name)


class SignupForm(BootstrapFormMixin, allauth_forms.SignupForm):
    """allauth's sign-up (email, password twice) plus the person's name (saved by ``accounts.adapter``). The
    account (the company) is created right after, once the address is confirmed (``accounts.views.AccountCreateView``)."""

    full_name = forms.CharField(label=_("Nombre y apellido"), max_length=150, required=False,
                                widget=forms.TextInput(attrs={"autocomplete": "name"}))
    field_order = ["full_name", "email", "password1", "password2"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.widget.attrs.pop("placeholder", None)


class ResetPasswordForm(BootstrapFormMixin, allauth_forms.ResetPasswordForm):
    pass


class ResetPasswordKeyForm(BootstrapFormMixin, allauth_forms.ResetPasswordKeyForm):
    pass


class ChangePasswordForm(BootstrapFormMixin, allauth_forms.ChangePasswordForm):
    pass


class SetPasswordForm(BootstrapFormMixin, allauth_forms.SetPasswordForm):
    pass


class AccountForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=_("Nombre de la cuenta"), max_length=200,
                           help_text=_("Normalmente, el nombre de su empresa o tienda."))
    rut = forms.CharField(label=_("RUT de la empresa"), max_length=12, required=False,
                          help_text=_("Con guion y dígito verificador, por ejemplo 76.086.428-5. Puede completarlo después."))


class InviteForm(BootstrapFormMixin, forms.Form):
    email = forms.EmailField(label=_("Correo de la persona invitada"))
    role = forms.ChoiceField(label=_("Rol"), choices=())

    def __init__(self, *args, roles, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = roles
        self.fields["role"].initial = Role.VIEWER


class RoleForm(BootstrapFormMixin, forms.Form):
    """One member's role, in a row of the members table (the select names the member for screen readers)."""

    role = forms.ChoiceField(label=_("Rol"), choices=())

    def __init__(self, *args, roles, email: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = roles
        if email:
            self.fields["role"].widget.attrs["aria-label"] = _("Rol de %(email)s") % {"email": email}


class ApiKeyForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=_("Nombre"), max_length=100,
                           help_text=_("Para reconocerla después, por ejemplo «ERP» o «Integración bodega»."))
    scope = forms.ChoiceField(label=_("Permiso"), choices=ApiKeyScope.choices, initial=ApiKeyScope.READ)


class SupportOpenForm(BootstrapFormMixin, forms.Form):
    reason = forms.CharField(label=_("Motivo"), max_length=300,
                             help_text=_("Queda en la auditoría de la cuenta, por ejemplo el número de ticket."),
                             error_messages={"required": _("Indique el motivo del acceso (por ejemplo, el número de ticket).")})
