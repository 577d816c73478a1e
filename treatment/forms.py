from __future__ import annotations

from typing import Any

from django import forms

from medai_site.registry.services import ACTIVATE_HELP
from treatment.ml.trials import TRIALS, TrialDefinition
from treatment.services import MODEL_KINDS


def horizon_field(definition: TrialDefinition, *, when: str) -> forms.FloatField:
    """The optional time horizon in the trial's unit, the trial's default filled in."""
    unit = definition.survival.time_unit
    return forms.FloatField(
        label=f"Horizon ({unit})",
        required=False,
        min_value=1,
        initial=round(definition.default_horizon, 2),
        help_text=f"{when}; default {definition.default_horizon:g} {unit}.",
    )


class TrialChoiceForm(forms.Form):
    """Picks which trial's model to use (a GET form: it only changes the fields shown)."""

    trial = forms.ChoiceField(label="Trial model")

    def __init__(self, *args: Any, in_service: list[tuple[TrialDefinition, Any]], **kw: Any):
        super().__init__(*args, **kw)
        self.fields["trial"].choices = [
            (d.key, f"{d.key.upper()}: {d.title}") for d, _ in in_service
        ]


class AssessmentForm(forms.Form):
    """One field per covariate of the trial, plus the horizon. Ranges and levels are checked by
    the trial's own validate_patient, so the form and the model never disagree."""

    def __init__(self, *args: Any, definition: TrialDefinition, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.definition = definition
        for cov in definition.covariates:
            label = f"{cov.label} ({cov.unit})" if cov.unit else cov.label
            if cov.kind == "numeric":
                attrs: dict[str, Any] = {"step": "any"}
                help_text = ""
                if cov.range:
                    attrs.update(min=f"{cov.range[0]:g}", max=f"{cov.range[1]:g}")
                    help_text = f"Trial range {cov.range[0]:g}–{cov.range[1]:g}."
                field: forms.Field = forms.FloatField(
                    label=label,
                    required=False,
                    help_text=help_text,
                    widget=forms.NumberInput(attrs=attrs),
                )
            elif cov.kind == "categorical":
                names = cov.level_labels or tuple(str(level) for level in cov.levels)
                field = forms.ChoiceField(
                    label=label,
                    required=False,
                    choices=[("", "—"), *((str(lv), n) for lv, n in zip(cov.levels, names))],
                )
            else:
                field = forms.ChoiceField(
                    label=label,
                    required=False,
                    choices=[("", "—"), ("0", cov.binary_labels[0]), ("1", cov.binary_labels[1])],
                )
            self.fields[cov.name] = field
        self.fields["horizon"] = horizon_field(definition, when="When outcomes are compared")

    def inputs(self) -> dict[str, Any]:
        """The covariate values as entered (blank ones left out, so the validator names them)."""
        return {
            cov.name: self.cleaned_data.get(cov.name)
            for cov in self.definition.covariates
            if self.cleaned_data.get(cov.name) not in (None, "")
        }


class PlanForm(forms.Form):
    arm = forms.TypedChoiceField(label="Chosen treatment", coerce=int)
    note = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why, in a sentence or two (shared decision, contraindications…).",
    )

    def __init__(self, *args: Any, arm_labels: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["arm"].choices = list(enumerate(arm_labels))


class TrainingForm(forms.Form):
    trial = forms.ChoiceField(choices=[(k, f"{k}: {d.title}") for k, d in TRIALS.items()])
    kind = forms.ChoiceField(
        label="Model",
        choices=[
            ("cox", "Cox proportional hazards (with arm interactions)"),
            ("rsf", "Random survival forest"),
            ("svm", "Survival SVM"),
        ],
    )
    n_bootstrap = forms.IntegerField(
        label="Bootstrap refits",
        min_value=0,
        max_value=200,
        initial=30,
        help_text="They give the intervals; more is slower.",
    )
    activate = forms.BooleanField(
        required=False, initial=True, label="Put into service when done", help_text=ACTIVATE_HELP
    )

    def clean_kind(self) -> str:
        kind = self.cleaned_data["kind"]
        if kind not in MODEL_KINDS:
            raise forms.ValidationError("Unknown model kind.")
        return kind


class CohortForm(forms.Form):
    """One of the trial's covariates and the horizon (the trial is chosen with TrialChoiceForm
    and posted alongside)."""

    covariate = forms.ChoiceField(label="Covariate")

    def __init__(self, *args: Any, definition: TrialDefinition, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.definition = definition
        self.fields["covariate"].choices = [
            (c.name, f"{c.label} ({c.unit})" if c.unit else c.label) for c in definition.covariates
        ]
        self.fields["horizon"] = horizon_field(definition, when="When benefit is measured")
