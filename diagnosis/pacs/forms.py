"""The form that assigns an unmatched study to a patient of the clinician's care teams."""

from __future__ import annotations

from typing import Any

from django import forms

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
