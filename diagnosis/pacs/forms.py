"""Forms of studies from and results to the PACS: assigning an unmatched study to a patient
of the clinician's care teams, and a PACS destination (hospital IT, in the admin)."""

from __future__ import annotations

from typing import Any

from django import forms

from diagnosis.models import DicomDestination
from diagnosis.pacs.selectors import assignable_patients


class UnmatchedAssignForm(forms.Form):
    patient = forms.ModelChoiceField(
        queryset=None,
        label="Patient",
        empty_label="Choose a patient of your care teams",
        error_messages={"invalid_choice": "Choose a patient of your care teams."},
    )
    confirm = forms.BooleanField(
        label="I have checked that this study shows this patient.",
        error_messages={"required": "Confirm that the study shows this patient."},
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["patient"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = assignable_patients(user=user)


class DicomDestinationForm(forms.ModelForm):
    """Hospital IT's form for a PACS destination: the fields its kind needs, and a secret
    that is written but never shown back (left blank, the stored one is kept)."""

    secret = forms.CharField(
        label="Token or password",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="The bearer token, or the basic-auth password. Never shown; leave blank to "
        "keep the stored one.",
    )

    stow_url = forms.URLField(
        label="STOW-RS URL",
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="e.g. https://pacs/dicom-web/studies",
    )

    class Meta:
        model = DicomDestination
        fields = [
            "name",
            "enabled",
            "kind",
            "called_ae_title",
            "host",
            "port",
            "calling_ae_title",
            "stow_url",
            "auth",
            "username",
            "secret",
            "send_after_classification",
            "send_after_review",
            "source_ae_title",
        ]

    def clean_secret(self) -> str:
        secret = self.cleaned_data.get("secret") or ""
        return secret or (self.instance.secret if self.instance.pk else "")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("kind") == DicomDestination.Kind.CSTORE:
            for name, label in (("called_ae_title", "called AE title"), ("host", "host")):
                if not (data.get(name) or "").strip():
                    self.add_error(name, f"A C-STORE destination needs its {label}.")
            if not data.get("port"):
                self.add_error("port", "A C-STORE destination needs its port.")
            elif not 1 <= int(data["port"]) <= 65535:
                self.add_error("port", "A port is between 1 and 65535.")
        elif data.get("kind") == DicomDestination.Kind.STOW:
            if not data.get("stow_url"):
                self.add_error("stow_url", "A STOW-RS destination needs its URL.")
            if data.get("auth") == DicomDestination.Auth.BEARER and not data.get("secret"):
                self.add_error("secret", "Bearer authentication needs its token.")
            if data.get("auth") == DicomDestination.Auth.BASIC and not data.get("username"):
                self.add_error("username", "Basic authentication needs a user name.")
        return data
