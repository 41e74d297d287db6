"""Dashboard form fields from a connection's declared spec (``spec.py``), for the store and biller forms.

Credentials become fields named ``credentials__<name>`` and settings ``config__<name>``, labelled and
explained as the adapter declares them. What the dashboard does with them:

- Secrets are write-only: rendered as empty password inputs, never given the stored value, and an
  empty secret keeps the stored one (a secret is re-entered to change it).
- Non-secret credentials that are not required (token expiries, granted scopes, a merchant id) are
  written by the connect flows (Shopify install, Multivende authorization): shown as details of the
  connection, not edited by hand.
- What the service refuses comes back as Django's ``ValidationError`` keyed ``credentials.<name>``,
  ``config.<name>`` or a model field; ``add_service_errors`` puts each message on the field it names.

Forms using ``SpecFieldsMixin`` get Bootstrap's classes on their widgets; labels, help texts and errors
are tied to the inputs by Django (``aria-describedby``, ``aria-invalid``) and the apps' ``_field.html``.
"""
from __future__ import annotations

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from .spec import BOOL, CHOICE, DECIMAL, INT, URL, Field

CREDENTIALS, CONFIG = "credentials", "config"


def spec_field_name(part: str, name: str) -> str:
    return f"{part}__{name}"


def editable_credentials(spec: tuple[Field, ...]) -> tuple[Field, ...]:
    """The credentials a person types: every secret, and the plain ones the vendor requires (a client id)."""
    return tuple(field for field in spec if field.secret or field.required)


def _form_field(field: Field, *, stored: bool) -> forms.Field:
    help_text = str(field.help_text or "")
    if field.secret:
        extra = _("Guardado: déjelo vacío para conservarlo o escriba uno nuevo para cambiarlo.") if stored else (
            _("Si lo deja vacío se genera solo.") if field.generated is not None else "")
        help_text = " ".join(part for part in (help_text, str(extra)) if part)
    required = field.required and not (field.secret and stored) and field.generated is None
    common = {"label": field.label, "help_text": help_text, "required": required}
    if field.kind == BOOL:
        return forms.BooleanField(**{**common, "required": False})
    if field.kind == INT:
        return forms.IntegerField(min_value=field.minimum, max_value=field.maximum, **common)
    if field.kind == DECIMAL:
        return forms.DecimalField(min_value=field.minimum, max_value=field.maximum, **common)
    if field.kind == CHOICE:
        choices = list(field.choices) if field.required else [("", _("— (sin valor)")), *field.choices]
        return forms.ChoiceField(choices=choices, **common)
    if field.secret:
        widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
        return forms.CharField(widget=widget, strip=True, **common)
    if field.kind == URL:
        # A text field: the spec's own check says what is wrong with the address, in Spanish.
        return forms.CharField(widget=forms.URLInput, **common)
    return forms.CharField(**common)


def style_widgets(form: forms.BaseForm) -> None:
    """Bootstrap 4 classes on every widget."""
    for field in form.fields.values():
        widget = field.widget
        if isinstance(widget, forms.CheckboxInput):
            css = "form-check-input"
        elif isinstance(widget, forms.RadioSelect | forms.CheckboxSelectMultiple | forms.HiddenInput):
            continue
        else:
            css = "form-control"
        classes = widget.attrs.get("class", "").split()
        widget.attrs["class"] = " ".join(classes if css in classes else [*classes, css])


class SpecFieldsMixin:
    """A form with an adapter's credential and setting fields; ``instance`` is the stored connection (or None)."""

    adapter = None
    instance = None

    def add_spec_fields(self, adapter, instance=None) -> None:
        self.adapter, self.instance = adapter, instance
        stored_credentials = (instance.credentials or {}) if instance is not None else {}
        stored_config = (instance.config or {}) if instance is not None else {}
        for field in editable_credentials(adapter.credentials_spec):
            name = spec_field_name(CREDENTIALS, field.name)
            self.fields[name] = _form_field(field, stored=bool(stored_credentials.get(field.name)))
            if not field.secret:
                self.initial.setdefault(name, stored_credentials.get(field.name, field.default or ""))
        for field in adapter.config_spec:
            name = spec_field_name(CONFIG, field.name)
            self.fields[name] = _form_field(field, stored=False)
            value = stored_config.get(field.name, field.default)
            self.initial.setdefault(name, "" if value is None else value)

    def _spec_bound_fields(self, *, required: bool) -> list:
        parts = ((CREDENTIALS, editable_credentials(self.adapter.credentials_spec)), (CONFIG, self.adapter.config_spec))
        return [self[spec_field_name(part, field.name)] for part, spec in parts for field in spec if field.required == required]

    @property
    def required_spec_fields(self) -> list:
        """The credentials and settings the adapter requires, shown first."""
        return self._spec_bound_fields(required=True)

    @property
    def optional_spec_fields(self) -> list:
        """The optional ones, shown under "Más opciones"."""
        return self._spec_bound_fields(required=False)

    @property
    def optional_spec_errors(self) -> bool:
        return any(field.errors for field in self.optional_spec_fields)

    def typed_secrets(self) -> list[str]:
        """Names of the secret credentials the person typed in this submission."""
        return [field.name for field in self.adapter.credentials_spec
                if field.secret and self.cleaned_data.get(spec_field_name(CREDENTIALS, field.name))]

    def spec_values(self) -> tuple[dict, dict]:
        """(credentials, config) to hand to the service: secrets only when typed (empty keeps the stored one),
        numbers and choices only when given, texts as typed (empty removes an optional one), booleans always."""
        values: dict[str, dict] = {CREDENTIALS: {}, CONFIG: {}}
        for part, spec in ((CREDENTIALS, editable_credentials(self.adapter.credentials_spec)), (CONFIG, self.adapter.config_spec)):
            for field in spec:
                value = self.cleaned_data.get(spec_field_name(part, field.name))
                if field.secret or field.kind in (INT, DECIMAL, CHOICE):
                    # The spec cannot take "" for these: left empty, what is stored stays.
                    if value not in (None, ""):
                        values[part][field.name] = value
                elif field.kind == BOOL:
                    values[part][field.name] = bool(value)
                else:
                    values[part][field.name] = value or ""
        return values[CREDENTIALS], values[CONFIG]

    def stored_details(self) -> list[dict]:
        return stored_details(self.adapter.credentials_spec, self.instance)


def stored_details(spec: tuple[Field, ...], instance) -> list[dict]:
    """What a stored connection holds, for its page: secrets only as "guardado" (an optional one only when set),
    the connect flows' values as they are (instants as dates)."""
    if instance is None:
        return []
    stored = instance.credentials or {}
    details = []
    for field in spec:
        value = stored.get(field.name)
        if field.secret and (value or field.required):
            details.append({"label": field.label, "value": _("guardado") if value else _("no configurado"), "secret": True})
        elif not field.secret and not field.required and value:
            moment = parse_datetime(value) if isinstance(value, str) else None
            details.append({"label": field.label, "value": moment or value, "secret": False})
    return details


def add_service_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    """Puts a service's ``ValidationError`` on the form: ``credentials.x`` / ``config.x`` and model fields on
    their inputs, the rest at the top of the form."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for key, errors in exc.error_dict.items():
        name = key.replace(".", "__", 1) if key.startswith((CREDENTIALS + ".", CONFIG + ".")) else key
        target = name if name in form.fields and name != NON_FIELD_ERRORS else None
        for error in errors:
            form.add_error(target, error)
