"""The population dashboard's filter (GET): dates, period, cohort dimension and filters."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from medai_site.core.query_params import BoundedDateField
from medai_site.core.roles import Role
from medai_site.patients.models import Patient
from remote_care.analytics.filters import (
    AGE_BANDS,
    DIMENSION_LABELS,
    MAX_RANGE_DAYS,
    MEASURE_CHOICES,
    MODEL_RISK_KEY,
    Dimension,
    NoModelRisk,
    PopulationFilter,
    model_risk_measure,
)

DEFAULT_DAYS = 30


def _default_range(today: date) -> tuple[date, date]:
    return today - timedelta(days=DEFAULT_DAYS - 1), today


class PopulationFilterForm(forms.Form):
    start = BoundedDateField(
        label="From", widget=forms.DateInput(attrs={"type": "date"}), help_text="Inclusive."
    )
    end = BoundedDateField(
        label="To", widget=forms.DateInput(attrs={"type": "date"}), help_text="Inclusive."
    )
    period = forms.ChoiceField(label="Per", choices=[("day", "Day"), ("week", "Week")])
    measure = forms.ChoiceField(label="Risk over time", choices=MEASURE_CHOICES)
    by = forms.ChoiceField(
        label="Compare cohorts by", choices=[(d.value, DIMENSION_LABELS[d]) for d in Dimension]
    )
    sex = forms.ChoiceField(
        label="Sex", required=False, choices=[("", "Any"), *Patient.Sex.choices]
    )
    age_band = forms.ChoiceField(
        label="Age band",
        required=False,
        choices=[("", "Any"), *((name, name) for name, _, _ in AGE_BANDS)],
    )
    team = forms.TypedChoiceField(
        label="Care team of", required=False, coerce=int, empty_value=None
    )
    spo2_scale = forms.TypedChoiceField(
        label="SpO2 scale",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "Any"), ("1", "Scale 1"), ("2", "Scale 2")],
    )
    complete_only = forms.BooleanField(
        label="Complete NEWS2 sets only",
        required=False,
        help_text="Leave out partial sets (a parameter missing, so the total is a lower bound).",
    )

    def __init__(self, data: Any = None, **kwargs: Any) -> None:
        today = timezone.localdate()
        start, end = _default_range(today)
        defaults = {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "period": "day",
            "measure": MEASURE_CHOICES[0][0],
            "by": Dimension.ALL.value,
        }
        merged = dict(defaults)
        if data is not None:
            merged.update({k: v for k, v in data.items() if v != "" or k not in defaults})
        super().__init__(merged, **kwargs)
        clinicians = (
            get_user_model()
            .objects.filter(groups__name=str(Role.CLINICIAN), is_active=True)
            .order_by("last_name", "first_name", "username")
        )
        self.fields["team"].choices = [
            ("", "Any clinician"),
            *((str(u.pk), u.get_full_name() or u.get_username()) for u in clinicians),
        ]

    def clean_measure(self) -> str:
        value = self.cleaned_data["measure"]
        if value == MODEL_RISK_KEY:
            try:
                model_risk_measure()
            except NoModelRisk as exc:
                raise forms.ValidationError(str(exc)) from None
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if start > end:
                raise forms.ValidationError("The start date must be on or before the end date.")
            if (end - start).days + 1 > MAX_RANGE_DAYS:
                raise forms.ValidationError(
                    f"The range may span at most {MAX_RANGE_DAYS} days; it spans "
                    f"{(end - start).days + 1}."
                )
        return data

    def population_filter(self) -> PopulationFilter:
        """The validated filter; call after is_valid()."""
        d = self.cleaned_data
        return PopulationFilter(
            start=d["start"],
            end=d["end"],
            period=d["period"],
            by=Dimension(d["by"]),
            sex=d.get("sex") or "",
            age_band=d.get("age_band") or "",
            team=d.get("team"),
            spo2_scale=d.get("spo2_scale"),
            complete_only=bool(d.get("complete_only")),
            measure=d["measure"],
        )

    def error_text(self) -> str:
        """Every error in one sentence per field, for a 400 answer outside the page."""
        parts = []
        for name, errors in self.errors.items():
            label = self.fields[name].label if name in self.fields else ""
            text = " ".join(str(e) for e in errors)
            parts.append(f"{label}: {text}" if label else text)
        return " ".join(parts)
