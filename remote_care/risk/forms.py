"""The form that starts a training run of the deterioration model."""

from __future__ import annotations

from django import forms

from medai_site.registry.services import ACTIVATE_HELP


class RiskTrainingForm(forms.Form):
    spec = forms.ChoiceField(
        label="Inputs",
        choices=[
            ("vitals", "Vital signs, age and sex (what home devices send; deployable)"),
            ("all", "All 37 ICU variables (reference: labs are not available at home)"),
        ],
        initial="vitals",
    )
    members = forms.IntegerField(
        label="Ensemble members",
        min_value=1,
        max_value=5,
        initial=3,
        help_text="Each member is a GRU trained from another seed (about 1-2 min each on CPU).",
    )
    max_epochs = forms.IntegerField(
        min_value=3, max_value=80, initial=40, help_text="Early stopping on validation AUROC."
    )
    activate = forms.BooleanField(
        required=False,
        initial=True,
        label="Put the new version in service when done",
        help_text=ACTIVATE_HELP,
    )
