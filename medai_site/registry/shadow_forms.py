"""Forms of the model registry's own pages (shadow mode)."""

from __future__ import annotations

from django import forms


class ShadowStartForm(forms.Form):
    reason = forms.CharField(
        max_length=200,
        help_text="Why this version should score live traffic in shadow (kept in the audit trail).",
    )


class ShadowStopForm(forms.Form):
    reason = forms.CharField(max_length=200, required=False)
