from __future__ import annotations

from typing import Any

from django import forms

from drugs.selectors import RANGE_FIELDS, SORTS, MoleculeFilters
from drugs.services import MAX_SAMPLES, MIN_SAMPLES, MOSES_10K_NAME, PREDICTOR_KINDS
from medai_site.core.query_params import BoundedIntegerField
from medai_site.registry.services import ACTIVATE_HELP


class DatasetUploadForm(forms.Form):
    name = forms.CharField(max_length=100)
    file = forms.FileField(
        help_text="SMILES (.smi/.txt: one per line, optional name after a space), CSV/TSV "
        "with a SMILES column (other numeric columns are kept as values), or SDF; optionally "
        "gzipped (.gz). Invalid lines are reported by line number and left out."
    )
    smiles_column = forms.CharField(
        max_length=100,
        required=False,
        label="SMILES column (CSV)",
        help_text="Leave empty to find it by name (smiles, mol, …) or by content.",
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


# (field, label, help) of the generator settings the form shows first; the rest are under
# "Advanced". Defaults come from GanConfig itself, so the form and the model never disagree.
OBJECTIVES = (
    ("w_qed", "Weight: drug-likeness (QED)", "Rewards molecules with a high QED."),
    ("w_sa", "Weight: synthesisability", "Rewards a low SA score (easy to make)."),
    ("w_lipinski", "Weight: Lipinski's rule of five", "Rewards passing the rule of five."),
    ("w_pains", "Weight: no PAINS alerts", "Rewards molecules without PAINS substructures."),
    (
        "w_activity",
        "Weight: predicted activity",
        "Rewards the prediction of the activity endpoint chosen below (its predictor must be in "
        "service).",
    ),
    (
        "w_realism",
        "Weight: realism (discriminator)",
        "How much the discriminator's verdict counts.",
    ),
)
BASIC = (
    ("pretrain_epochs", "Pre-training epochs", "Maximum-likelihood epochs on the data set."),
    ("adversarial_epochs", "Adversarial epochs", "Epochs of generator vs discriminator."),
    ("temperature", "Sampling temperature", "Above 1: more diverse; below 1: safer."),
    (
        "stop_on_collapse",
        "Stop training on mode collapse",
        "Collapse: the samples' uniqueness falls (the generator repeats a few molecules). "
        "Unticked, the run goes on and is flagged.",
    ),
)
ADVANCED = (
    "batch_size",
    "samples_per_epoch",
    "embed_dim",
    "hidden_dim",
    "layers",
    "dropout",
    "lr",
    "adversarial_lr",
    "discriminator_lr",
    "pg_steps_per_epoch",
    "discriminator_steps_per_epoch",
    "discriminator_pretrain_steps",
    "mle_weight",
    "max_length",
    "seed",
)


DESIGN_DEFAULTS = {"w_qed": 0.5, "w_sa": 0.25}


def _field_for(value: Any, label: str, help_text: str = "") -> forms.Field:
    if isinstance(value, bool):
        return forms.BooleanField(label=label, required=False, initial=value, help_text=help_text)
    if isinstance(value, int):
        return BoundedIntegerField(label=label, initial=value, min_value=0, help_text=help_text)
    return forms.FloatField(
        label=label,
        initial=value,
        min_value=0.0,
        help_text=help_text,
        widget=forms.NumberInput(attrs={"step": "any"}),
    )


class DesignRunForm(forms.Form):
    """A new design run: data set, objectives, sample size, and the generator's settings."""

    name = forms.CharField(max_length=120, required=False, help_text="Optional; for your list.")
    dataset = forms.ModelChoiceField(queryset=None, label="Training data set", empty_label=None)
    base_version = forms.ModelChoiceField(
        queryset=None,
        required=False,
        label="Fine-tune from generator",
        empty_label="— from scratch (ORGAN-style, no prior) —",
        help_text="Start from a trained generator (by default the one in service: the "
        "pre-trained prior on a fresh install) and steer it with these objectives. From "
        "scratch suits molecules the prior cannot write (atoms or charges outside its "
        "alphabet, which fine-tuning skips).",
    )
    train_limit = forms.IntegerField(
        min_value=100,
        initial=10_000,
        label="Training molecules",
        help_text="A seeded random subset of the data set (the 1.58M MOSES set trains on a "
        "subset).",
    )
    n_samples = forms.IntegerField(
        min_value=MIN_SAMPLES,
        max_value=MAX_SAMPLES,
        initial=2000,
        label="Molecules to sample and evaluate",
        help_text="The MOSES paper scores 30,000; 2,000 evaluate in about a minute on a CPU.",
    )
    activity_endpoint = forms.ChoiceField(
        required=False,
        label="Activity endpoint",
        help_text="A predictor in service; its prediction scaled to 0–1 is the reward (for "
        "toxicity, lipophilicity and hydration energy, lower scores higher).",
    )
    activate = forms.BooleanField(
        required=False,
        label="Put the generator into service when done",
        help_text="Model admins only; the registry's active generator is the default for "
        "“Generate more”. " + ACTIVATE_HELP,
    )

    def __init__(
        self,
        *args: Any,
        datasets: Any,
        generators: Any,
        endpoints: list[str],
        can_activate: bool,
        **kwargs: Any,
    ) -> None:
        from drugs.ml.gan import GanConfig

        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = datasets
        self.fields["base_version"].queryset = generators
        self.fields["activity_endpoint"].choices = [("", "—"), *((e, e) for e in endpoints)]
        if not can_activate:
            del self.fields["activate"]
        defaults = GanConfig().to_dict()
        self.gan_fields: list[str] = []
        self.advanced_fields: list[str] = []
        for name, label, help_text in (*BASIC, *OBJECTIVES):
            if name in defaults:
                self.fields[name] = _field_for(defaults[name], label, help_text)
                self.gan_fields.append(name)
        for name in ADVANCED:
            if name in defaults:
                self.fields[name] = _field_for(defaults[name], name.replace("_", " ").capitalize())
                self.gan_fields.append(name)
                self.advanced_fields.append(name)
        # A design run steers towards drug-like, makeable molecules unless told otherwise
        # (GanConfig itself rewards realism only).
        for name, value in DESIGN_DEFAULTS.items():
            if name in self.fields:
                self.fields[name].initial = value
        if "dataset" not in self.initial:
            preferred = datasets.filter(name=MOSES_10K_NAME).first()
            if preferred is not None:
                self.initial["dataset"] = preferred.pk
        after = [n for n in ("activity_endpoint", "activate") if n in self.fields]
        self.order_fields([n for n in self.fields if n not in after] + after)

    def basic(self) -> list[Any]:
        return [self[name] for name in self.fields if name not in self.advanced_fields]

    def advanced(self) -> list[Any]:
        return [self[name] for name in self.advanced_fields]

    def clean_lr(self) -> float:
        return self._positive("lr")

    def _positive(self, name: str) -> float:
        value = self.cleaned_data[name]
        if value is not None and value <= 0:
            raise forms.ValidationError("Must be greater than 0.")
        return value

    def gan_config(self) -> dict[str, Any]:
        from drugs.ml.gan import GanConfig

        config = GanConfig().to_dict()
        config.update({name: self.cleaned_data[name] for name in self.gan_fields})
        return config


class SampleForm(forms.Form):
    n_samples = forms.IntegerField(
        min_value=MIN_SAMPLES, max_value=MAX_SAMPLES, initial=2000, label="Molecules"
    )
    temperature = forms.FloatField(
        min_value=0.2,
        max_value=3.0,
        initial=1.0,
        label="Temperature",
        widget=forms.NumberInput(attrs={"step": "0.1"}),
    )


class MoleculeFilterForm(forms.Form):
    """The results grid's GET form: property ranges, filters passed, novelty, a predicted
    endpoint's range, and the sort."""

    lipinski = forms.BooleanField(required=False, label="Passes Lipinski")
    pains = forms.BooleanField(required=False, label="No PAINS alert")
    moses_filters = forms.BooleanField(required=False, label="Passes MOSES filters")
    novel_only = forms.BooleanField(required=False, label="Novel only")
    shortlisted = forms.BooleanField(required=False, label="On my shortlist")
    endpoint = forms.ChoiceField(required=False, label="Predicted")
    endpoint_min = forms.FloatField(required=False, label="from")
    endpoint_max = forms.FloatField(required=False, label="to")
    sort = forms.ChoiceField(required=False)

    def __init__(self, *args: Any, endpoints: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in RANGE_FIELDS:
            label = SORTS.get(name, name)
            self.fields[f"{name}_min"] = forms.FloatField(required=False, label=f"{label} from")
            self.fields[f"{name}_max"] = forms.FloatField(required=False, label="to")
        self.fields["endpoint"].choices = [("", "—"), *((e, e) for e in endpoints)]
        sorts = [(key, label) for key, label in SORTS.items()]
        sorts += [(f"pred:{e}", f"Predicted {e}") for e in endpoints]
        self.fields["sort"].choices = [
            choice
            for key, label in sorts
            for choice in ((f"-{key}", f"{label} ↓"), (key, f"{label} ↑"))
        ]
        self.endpoints = endpoints

    def range_pairs(self) -> list[tuple[Any, Any]]:
        return [(self[f"{n}_min"], self[f"{n}_max"]) for n in RANGE_FIELDS]

    def filters(self, user: Any) -> MoleculeFilters:
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return MoleculeFilters(
            ranges={n: (data.get(f"{n}_min"), data.get(f"{n}_max")) for n in RANGE_FIELDS},
            lipinski=bool(data.get("lipinski")),
            pains=bool(data.get("pains")),
            moses_filters=bool(data.get("moses_filters")),
            novel_only=bool(data.get("novel_only")),
            shortlisted_by=user if data.get("shortlisted") else None,
            endpoint=data.get("endpoint") or "",
            endpoint_min=data.get("endpoint_min"),
            endpoint_max=data.get("endpoint_max"),
            sort=data.get("sort") or "-qed",
        )


class ShortlistForm(forms.Form):
    note = forms.CharField(
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Why this molecule?"}),
    )


class PredictorTrainingForm(forms.Form):
    endpoint = forms.ChoiceField(label="Endpoint")
    kind = forms.ChoiceField(
        choices=list(PREDICTOR_KINDS.items()), initial="random_forest", label="Model"
    )
    cv_folds = forms.IntegerField(min_value=2, max_value=10, initial=5, label="CV folds")
    activate = forms.BooleanField(
        required=False,
        label="Put into service when done",
        help_text="The first version of an endpoint goes into service in any case (it is the "
        "bootstrap). " + ACTIVATE_HELP,
    )

    def __init__(self, *args: Any, endpoints: list[tuple[str, str]], can_activate: bool, **kw: Any):
        super().__init__(*args, **kw)
        self.fields["endpoint"].choices = endpoints
        if not can_activate:
            del self.fields["activate"]
