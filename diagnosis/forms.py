from __future__ import annotations

import re
from typing import Any

from django import forms

from diagnosis.models import ImageDataset
from diagnosis.selectors import OUT_OF_SCOPE_STATUS, WorklistFilters
from medai_site.core.query_params import BoundedDateField, BoundedIntegerField
from medai_site.registry.models import ModelVersion
from medai_site.registry.services import ACTIVATE_HELP


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data: Any, initial: Any = None) -> list:
        files = data if isinstance(data, list | tuple) else [data]
        files = [f for f in files if f]
        if not files:
            raise forms.ValidationError("Choose or drop at least one file.")
        return files


class TaskSelect(forms.Select):
    """A select whose options carry what each model's contract checks of a PNG/JPEG
    (data-channels, data-min-rows, data-min-cols; contract_file_terms), so the page offers
    only the models that can take the chosen files (static/js/scan_upload.js)."""

    def __init__(self, *args: Any, terms: dict[str, dict[str, Any]] | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self.terms = terms or {}

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        for key, term in self.terms.get(str(value), {}).items():
            option["attrs"][f"data-{key.replace('_', '-')}"] = "" if term is None else str(term)
        return option


class ScanUploadForm(forms.Form):
    files = MultipleFileField(
        label="Scans",
        help_text="PNG, JPEG or DICOM (any transfer syntax); several at once.",
        widget=MultipleFileInput(
            attrs={"accept": ".png,.jpg,.jpeg,.dcm,application/dicom,image/*"}
        ),
    )
    task = forms.ChoiceField(label="Classify with")

    def __init__(
        self,
        *args: Any,
        tasks: list[tuple[str, str]],
        terms: dict[str, dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["task"].widget = TaskSelect(terms=terms, attrs={"data-task-choice": ""})
        self.fields["task"].choices = tasks
        if not tasks:
            # No imaging model in service yet: the scans are still stored (de-identified) and
            # wait for the first model put into service.
            self.fields["task"].required = False
            self.fields["task"].choices = [("", "The first model put into service")]


class ScanHoldForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[
            ("confirm", "No identifying text is visible: classify it"),
            ("discard", "Identifying text is visible: discard it"),
        ],
        widget=forms.RadioSelect,
    )
    looked = forms.BooleanField(
        required=False,
        label="I have looked at every frame shown, including its edges and corners.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("decision") == "confirm" and not cleaned.get("looked"):
            raise forms.ValidationError(
                "Tick that you have looked at every frame before confirming that no "
                "identifying text is visible."
            )
        return cleaned


class ReviewForm(forms.Form):
    label = forms.ChoiceField(label="Your reading")
    note = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )

    def __init__(self, *args: Any, class_names: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["label"].choices = [(n, n) for n in class_names]


class ScopeOverrideForm(forms.Form):
    reason = forms.CharField(
        label="Why score it anyway?",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded with the result and in the audit trail.",
        error_messages={
            "required": "Say why the scan should be scored outside the model's scope.",
        },
    )


class WorklistForm(forms.Form):
    q = forms.CharField(required=False, label="Patient", max_length=100)
    date_from = BoundedDateField(
        required=False, label="Uploaded from", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = BoundedDateField(
        required=False, label="until", widget=forms.DateInput(attrs={"type": "date"})
    )
    status = forms.ChoiceField(
        required=False,
        initial="awaiting",
        choices=[
            ("awaiting", "Awaiting review"),
            ("reviewed", "Reviewed"),
            (OUT_OF_SCOPE_STATUS, "Outside the model's scope"),
            ("all", "All"),
        ],
    )
    model_version = forms.ModelChoiceField(
        required=False, queryset=ModelVersion.objects.none(), empty_label="Any model version"
    )

    def __init__(self, *args: Any, versions: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model_version"].queryset = versions

    def filters(self) -> WorklistFilters:
        data = self.cleaned_data if self.is_valid() else {}
        version = data.get("model_version")
        return WorklistFilters(
            query=data.get("q") or "",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            status=data.get("status") or "awaiting",
            model_version=version.pk if version else None,
        )


class MonitoringForm(forms.Form):
    period = forms.ChoiceField(
        required=False,
        choices=[("week", "Per week"), ("day", "Per day")],
        error_messages={"invalid_choice": "Choose a period of day or week."},
    )

    def period_value(self) -> str:
        return (self.cleaned_data.get("period") if self.is_valid() else "") or "week"


class _DatasetDetailsForm(forms.Form):
    """Name, task, classes and provenance: the same for a server path and an upload."""

    name = forms.CharField(max_length=100)
    task = forms.RegexField(
        regex=r"^diagnosis\.[a-z0-9_]+$",
        max_length=80,
        initial="diagnosis.",
        help_text="Registry task the models trained on it serve, e.g. diagnosis.pneumonia.",
        error_messages={"invalid": "Use diagnosis.<name> with lowercase letters, digits, _."},
    )
    class_names = forms.CharField(
        required=False,
        max_length=2000,
        help_text="For .npz files: class names in label order, comma-separated.",
    )
    description = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )
    attribution = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )

    # The input contract (diagnosis.imaging.contract): what models trained on it read.
    reads = forms.CharField(
        required=False,
        max_length=200,
        label="The model reads",
        help_text="In a clinician's words, e.g. chest radiographs. Leave every field of the "
        "input contract blank to use the MedMNIST collection's default when the name or file "
        "is one (e.g. PneumoniaMNIST); otherwise a blank field means any.",
    )
    modalities = forms.CharField(
        required=False,
        max_length=200,
        help_text="DICOM modality codes, comma-separated, e.g. CR, DX.",
    )
    body_parts = forms.CharField(
        required=False,
        max_length=400,
        label="Body parts",
        help_text="DICOM BodyPartExamined terms, e.g. CHEST.",
    )
    views = forms.CharField(
        required=False, max_length=200, help_text="DICOM ViewPosition terms, e.g. PA, AP."
    )
    photometric = forms.CharField(
        required=False,
        max_length=200,
        label="Photometric interpretation",
        help_text="e.g. MONOCHROME1, MONOCHROME2.",
    )
    channels = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "As the training images"), ("1", "1 (greyscale)"), ("3", "3 (colour)")],
    )
    min_size = forms.RegexField(
        required=False,
        regex=r"^\s*[1-9]\d{0,4}\s*[xX×]\s*[1-9]\d{0,4}\s*$",
        max_length=20,
        label="Minimum size",
        help_text="Rows x columns in pixels, e.g. 224x224; blank: the training images' size.",
        error_messages={"invalid": "Write the minimum size as rows x columns, e.g. 224x224."},
    )
    contract_fields = ("modalities", "body_parts", "views", "photometric")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if ImageDataset.objects.filter(name=name).exists():
            raise forms.ValidationError("A data set with this name is already registered.")
        return name

    def clean_class_names(self) -> list[str]:
        raw = self.cleaned_data.get("class_names") or ""
        names = [c.strip() for c in raw.split(",") if c.strip()]
        if len(set(names)) != len(names):
            raise forms.ValidationError("Each class name may appear only once.")
        return names

    def _clean_terms(self, attribute: str) -> tuple[str, ...]:
        from diagnosis.imaging.contract import contract_terms

        try:
            return contract_terms(self.cleaned_data.get(attribute) or "", attribute=attribute)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_modalities(self) -> tuple[str, ...]:
        return self._clean_terms("modalities")

    def clean_body_parts(self) -> tuple[str, ...]:
        return self._clean_terms("body_parts")

    def clean_views(self) -> tuple[str, ...]:
        return self._clean_terms("views")

    def clean_photometric(self) -> tuple[str, ...]:
        return self._clean_terms("photometric")

    def clean_min_size(self) -> tuple[int, int] | None:
        raw = (self.cleaned_data.get("min_size") or "").strip()
        if not raw:
            return None
        rows, cols = re.split(r"\s*[xX×]\s*", raw)
        return int(rows), int(cols)

    def clean(self) -> dict[str, Any]:
        """Turn the contract fields into the one `contract` the services take."""
        from diagnosis.imaging.contract import contract_declare

        cleaned = super().clean()
        stated = {
            "description": (cleaned.pop("reads", "") or "").strip(),
            **{a: cleaned.pop(a, ()) for a in self.contract_fields},
            "channels": cleaned.pop("channels", None),
            "min_size": cleaned.pop("min_size", None),
        }
        if self.errors:
            return cleaned
        upload = cleaned.get("file")
        names = [cleaned.get("name") or "", cleaned.get("path") or "", getattr(upload, "name", "")]
        try:
            cleaned["contract"] = contract_declare(stated, names=names)
        except ValueError as exc:
            field = "reads" if not stated["description"] else "channels"
            self.add_error(field, str(exc))
        return cleaned


class DatasetForm(_DatasetDetailsForm):
    kind = forms.ChoiceField(
        choices=[
            (ImageDataset.Kind.NPZ, "MedMNIST-style .npz file"),
            (ImageDataset.Kind.FOLDER, "Folder of labelled images"),
        ]
    )
    path = forms.CharField(
        max_length=500,
        help_text="Absolute path on the server, inside one of the data-set folders it is "
        "configured with (MEDAI_DATASET_ROOTS).",
    )
    field_order = ["name", "task", "kind", "path", "class_names", "description", "attribution"]
    field_order += ["reads", *_DatasetDetailsForm.contract_fields, "channels", "min_size"]


class DatasetUploadForm(_DatasetDetailsForm):
    file = forms.FileField(
        label="Data set file",
        help_text="A MedMNIST-style .npz, or a .zip with one folder of PNG/JPEG images per "
        "class (optionally inside train/ val/ test/).",
        widget=forms.ClearableFileInput(attrs={"accept": ".npz,.zip"}),
    )
    field_order = ["name", "task", "file", "class_names", "description", "attribution"]
    field_order += ["reads", *_DatasetDetailsForm.contract_fields, "channels", "min_size"]


class TrainingForm(forms.Form):
    dataset = forms.ModelChoiceField(
        label="Data set",
        # Only data sets that passed their check can be trained on.
        queryset=ImageDataset.objects.filter(status=ImageDataset.Status.READY),
        empty_label=None,
    )
    arch = forms.ChoiceField(
        label="Architecture",
        choices=[("small_cnn", "Small CNN (fast)"), ("resnet18", "ResNet-18 (CIFAR-style)")],
    )
    epochs = forms.IntegerField(min_value=1, max_value=200, initial=20)
    batch_size = forms.IntegerField(min_value=8, max_value=1024, initial=128)
    lr = forms.FloatField(label="Learning rate", min_value=1e-6, max_value=1.0, initial=3e-3)
    # NumPy and torch seeds are 32-bit: a bigger one failed in the worker, not on the form.
    seed = BoundedIntegerField(min_value=0, max_value=2**32 - 1, initial=0)
    activate = forms.BooleanField(
        required=False,
        label="Put into service when training finishes",
        help_text=ACTIVATE_HELP,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from diagnosis.ml.train import TrainConfig

        # The trainer's own defaults (the configuration the product was tuned with).
        defaults = TrainConfig()
        for name in ("arch", "epochs", "batch_size", "lr", "seed"):
            self.fields[name].initial = getattr(defaults, name)
