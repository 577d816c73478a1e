from __future__ import annotations

from datetime import date
from typing import Any, cast

from django import forms
from django.utils import timezone

from medai_site.core.query_params import BoundedDateField
from medai_site.core.uploads import upload_size_problem
from medai_site.patients.models import Patient
from medai_site.patients.sources import BUILTIN_SOURCES, MAX_IMPORT_BYTES


class PatientSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search by MRN or name")


class PatientForm(forms.Form):
    mrn = forms.CharField(label="MRN", max_length=32)
    given_name = forms.CharField(max_length=100)
    family_name = forms.CharField(max_length=100)
    # The form says "in the future" itself; the field keeps year 1 out.
    birth_date = BoundedDateField(latest=date.max, widget=forms.DateInput(attrs={"type": "date"}))
    sex = forms.ChoiceField(choices=Patient.Sex.choices)

    def clean_birth_date(self) -> object:
        value = self.cleaned_data["birth_date"]
        today = timezone.localdate()
        if value > today:
            raise forms.ValidationError("The birth date is in the future.")
        if value.year < today.year - 130:
            raise forms.ValidationError("The birth date is more than 130 years ago.")
        return value


class PatientImportForm(forms.Form):
    source = forms.ChoiceField(
        choices=[(key, source.label) for key, source in BUILTIN_SOURCES.items()]
        + [("csv", "Upload a CSV file")],
        widget=forms.RadioSelect,
        initial="gbsg2",
    )
    file = forms.FileField(
        required=False,
        help_text="Columns: mrn, given_name, family_name, birth_date (YYYY-MM-DD), sex; any "
        "other columns are kept as clinical facts.",
    )
    limit = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=20_000,
        help_text="Import at most this many patients (blank: all).",
    )

    def clean(self) -> dict:
        data = cast("dict[str, Any]", super().clean())  # Form.clean returns cleaned_data
        upload = data.get("file")
        if data.get("source") == "csv" and not upload:
            self.add_error("file", "Choose a CSV file to upload.")
        if upload is not None and (
            problem := upload_size_problem(upload.size, cap=MAX_IMPORT_BYTES)
        ):
            self.add_error("file", problem)
        return data
