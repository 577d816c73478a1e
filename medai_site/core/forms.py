from __future__ import annotations

from django import forms


class SecondFactorForm(forms.Form):
    code = forms.CharField(
        max_length=64,
        label="Code",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}
        ),
    )
