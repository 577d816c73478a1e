"""Forms of the governance page: every action needs a written reason."""

from __future__ import annotations

from django import forms

from medai_site.registry.services import REASON_MAX


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept in the version's record and the audit trail.",
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Give a reason.")
        return reason


class ApproveForm(ReasonForm):
    override = forms.BooleanField(
        required=False,
        label="Override: approve although its validation failed or has not finished",
        help_text="Recorded as an override with your reason.",
    )


class ValidateForm(forms.Form):
    """Validating again needs no input; the form is the CSRF-protected POST."""
