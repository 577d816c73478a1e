"""The form that starts a disease-progression analysis."""

from __future__ import annotations

from django import forms

from remote_care.models import ProgressionAnalysis


class ProgressionForm(forms.Form):
    dataset = forms.ChoiceField(choices=ProgressionAnalysis.Dataset.choices)
    level = forms.TypedChoiceField(
        label="Prediction interval",
        choices=[("0.8", "80 %"), ("0.9", "90 %"), ("0.95", "95 %")],
        initial="0.9",
        coerce=float,
    )
    folds = forms.IntegerField(label="Cross-validation folds", min_value=3, max_value=10, initial=5)
