"""Every read in diagnosis, scoped through the patient selector: a clinician reaches only
scans of patients in their care teams."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from PIL import Image

from diagnosis.models import ImageDataset, Prediction, Review, Scan, ScanUpload
from medai_site.jobs.models import Job
from medai_site.patients.selectors import patient_list
from medai_site.registry.models import ModelVersion

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def scan_list(*, user: User, patient: Any = None) -> QuerySet[Scan]:
    """Scans the user may see (their patients'), newest first, with predictions prefetched."""
    # Held scans (possible burned-in text) are shown only on their confirmation screen.
    scans = Scan.objects.filter(patient__in=patient_list(user=user), held=False)
    if patient is not None:
        scans = scans.filter(patient=patient)
    return scans.select_related("patient").prefetch_related(
        Prefetch(
            "predictions",
            queryset=Prediction.objects.select_related(
                "model_version", "review__reviewer"
            ).order_by("-created_at"),
        )
    )


def scan_get(*, user: User, pk: int) -> Scan:
    """One scan of the user's patients; Scan.DoesNotExist otherwise (no existence leak)."""
    return scan_list(user=user).get(pk=pk)


def scan_held_list(*, user: User, patient: Any = None) -> QuerySet[Scan]:
    """Scans held for burned-in-text confirmation, of the user's patients (or one of them)."""
    scans = Scan.objects.filter(patient__in=patient_list(user=user), held=True)
    if patient is not None:
        scans = scans.filter(patient=patient)
    return scans.select_related("patient", "upload")


def scan_held_get(*, user: User, pk: int) -> Scan:
    """One held scan of the user's patients; Scan.DoesNotExist otherwise."""
    return (
        Scan.objects.filter(patient__in=patient_list(user=user), held=True)
        .select_related("patient", "upload")
        .get(pk=pk)
    )


# The confirmation screen shows at most this many frames (first, middle, last): burned-in
# text sits at the same place on every frame of a cine loop.
# The task of the shipped pneumonia model: the demo trains it and bin/run imports it.
SHIPPED_TASK = "diagnosis.pneumonia"
HOLD_PREVIEW_FRAMES = 3


def scan_hold_previews(*, scan: Scan) -> list[dict[str, Any]]:
    """PNG data URLs of frames of a held scan, windowed as the viewer would show them."""
    previews = []
    with scan.display.open("rb") as handle, np.load(handle) as npz:
        count = len(npz["windows"])
        indices = sorted({0, count // 2, count - 1})[:HOLD_PREVIEW_FRAMES]
        for index in indices:
            values = npz[f"values_{index}"].astype(np.float32)
            if scan.is_color:
                pixels = np.clip(values, 0, 255)
            else:
                center, width = (float(v) for v in npz["windows"][index])
                low = center - width / 2
                pixels = np.clip((values - low) / max(width, 1e-6), 0, 1) * 255
                if bool(npz["inverts"][index]):
                    pixels = 255 - pixels
            buffer = io.BytesIO()
            Image.fromarray(pixels.round().astype(np.uint8)).save(buffer, format="PNG")
            previews.append(
                {
                    "index": index,
                    "src": "data:image/png;base64,"
                    + base64.b64encode(buffer.getvalue()).decode("ascii"),
                }
            )
    return previews


def latest_prediction(scan: Scan) -> Prediction | None:
    """The newest prediction of a scan (from the prefetch)."""
    predictions = list(scan.predictions.all())
    return predictions[0] if predictions else None


def scan_jobs_in_flight(*, scan: Scan, prediction: Prediction | None) -> QuerySet[Job]:
    """The queued or running jobs working on a scan: its upload's classification and a
    score-anyway of its answer, oldest first."""
    from django.contrib.contenttypes.models import ContentType
    from django.db.models import Q

    mine = Q(
        kind="diagnosis.inference",
        target_type__model="scanupload",
        target_id=scan.upload_id,
    )
    if prediction is not None:
        mine |= Q(
            kind="diagnosis.override",
            target_type=ContentType.objects.get_for_model(Prediction),
            target_id=prediction.pk,
        )
    return Job.objects.filter(mine, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).order_by(
        "pk"
    )


# The worklist filter that lists only answers outside the model's scope.
OUT_OF_SCOPE_STATUS = "out_of_scope"


@dataclass
class WorklistFilters:
    query: str = ""
    date_from: date | None = None
    date_to: date | None = None
    status: str = "awaiting"
    model_version: int | None = None


def _latest_predictions(*, user: User, filters: WorklistFilters) -> QuerySet[Prediction]:
    newer = Prediction.objects.filter(scan=OuterRef("scan"), created_at__gt=OuterRef("created_at"))
    items = (
        Prediction.objects.filter(scan__patient__in=patient_list(user=user, query=filters.query))
        .exclude(Exists(newer))
        .select_related("scan__patient", "model_version", "review", "override_by")
    )
    if filters.date_from:
        items = items.filter(scan__created_at__date__gte=filters.date_from)
    if filters.date_to:
        items = items.filter(scan__created_at__date__lte=filters.date_to)
    if filters.model_version:
        items = items.filter(model_version_id=filters.model_version)
    return items


def _review_state(items: QuerySet[Prediction], status: str) -> QuerySet[Prediction]:
    if status == "awaiting":
        return items.filter(review__isnull=True)
    if status == "reviewed":
        return items.filter(review__isnull=False)
    return items


def worklist(*, user: User, filters: WorklistFilters) -> QuerySet[Prediction]:
    """The radiologist's triage list: latest predictions on the user's patients' scans that
    the model found within its scope (or did not check), by predicted risk (highest first).
    Answers outside the model's scope are never sorted by risk: see worklist_out_of_scope."""
    if filters.status == OUT_OF_SCOPE_STATUS:
        return Prediction.objects.none()
    items = _latest_predictions(user=user, filters=filters).exclude(
        scope=Prediction.Scope.OUT_OF_SCOPE
    )
    return _review_state(items, filters.status).order_by("-risk", "scan__created_at")


def worklist_out_of_scope(*, user: User, filters: WorklistFilters) -> QuerySet[Prediction]:
    """Latest answers on the user's patients' scans that were outside the model's scope
    (scored anyway or not), newest scan first: listed apart from the risk-sorted list."""
    items = _latest_predictions(user=user, filters=filters).filter(
        scope=Prediction.Scope.OUT_OF_SCOPE
    )
    if filters.status != OUT_OF_SCOPE_STATUS:
        items = _review_state(items, filters.status)
    return items.order_by("-scan__created_at", "-pk")


def frame_payload(*, scan: Scan, index: int, prediction: Prediction | None) -> dict[str, Any]:
    """The viewer's data for one frame: values, default window, and the heat-map if any."""
    with scan.display.open("rb") as handle, np.load(handle) as npz:
        count = len(npz["windows"])
        if not 0 <= index < count:
            raise IndexError(index)
        values = npz[f"values_{index}"].astype(np.float32)
        center, width = (float(v) for v in npz["windows"][index])
        invert = bool(npz["inverts"][index])
    payload: dict[str, Any] = {
        "index": index,
        "frames": count,
        "is_color": scan.is_color,
        "invert": invert,
        "window": {"center": center, "width": width},
        "shape": list(values.shape[:2]),
        "values": np.round(values, 2).tolist(),
        "heatmap": None,
    }
    # An answer outside the model's scope has no heat-map until a clinician scores it anyway.
    if prediction is not None and prediction.scored and prediction.heatmaps:
        with prediction.heatmaps.open("rb") as handle, np.load(handle) as maps:
            key = f"heatmap_{index}"
            if key in maps:
                payload["heatmap"] = (
                    _resize(maps[key].astype(np.float32), values.shape[:2]).round(3).tolist()
                )
    return payload


def _resize(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if array.shape == tuple(shape):
        return array
    rows = np.linspace(0, array.shape[0] - 1, shape[0]).round().astype(int)
    cols = np.linspace(0, array.shape[1] - 1, shape[1]).round().astype(int)
    return array[np.ix_(rows, cols)]


def diagnosis_tasks() -> list[str]:
    """Tasks that have a registered data set (what a model can be trained and used for)."""
    return sorted(set(ImageDataset.objects.values_list("task", flat=True)))


def active_versions() -> QuerySet[ModelVersion]:
    """Diagnosis model versions in service."""
    return ModelVersion.objects.filter(task__in=diagnosis_tasks(), status="active")


_contracts: dict[tuple[int, str], Any] = {}


def version_contract(version: ModelVersion) -> Any:
    """A model version's input contract (InputContract, or None when it states none): from
    the version's recorded metrics when training put it there, else from its artifact
    (read once per process)."""
    from diagnosis.imaging.contract import InputContract

    recorded = (version.metrics or {}).get("contract")
    if recorded:
        return InputContract.from_dict(recorded)
    key = (version.pk, version.sha256)
    if key not in _contracts:
        from diagnosis.ml.artifact import load_artifact

        try:
            with version.artifact.open("rb") as handle:
                data = load_artifact(handle.read()).contract
        except (OSError, ValueError):
            data = None
        _contracts[key] = InputContract.from_dict(data) if data else None
    return _contracts[key]


def active_version_contracts() -> list[tuple[ModelVersion, Any]]:
    """Every imaging model version in service with its input contract, by task."""
    versions = ModelVersion.objects.filter(
        task__in=imaging_model_tasks(), status="active"
    ).order_by("task")
    return [(v, version_contract(v)) for v in versions]


@dataclass
class Agreement:
    """How a version's in-scope answers compare with clinicians' readings; reviews of answers
    scored outside its scope (a clinician's override) are counted apart, never in the matrix."""

    version: ModelVersion
    reviewed: int
    accepted: int
    class_names: list[str]
    confusion: list[list[int]]
    sensitivity: float | None
    specificity: float | None
    overridden_reviewed: int = 0
    overridden_accepted: int = 0


def monitoring_scope(*, user: User) -> QuerySet[Prediction]:
    """Predictions whose aggregates the user may see: all of them for a model admin (the
    monitoring page shows counts and rates, never a patient), else the user's patients'."""
    from medai_site.core.roles import Role, has_role

    predictions = Prediction.objects.all()
    if not has_role(user, Role.MODEL_ADMIN):
        predictions = predictions.filter(scan__patient__in=patient_list(user=user))
    return predictions


def agreement_by_version(*, predictions: QuerySet[Prediction]) -> list[Agreement]:
    """Per model version, how its predictions compare with clinicians' verdicts. Reviews of
    scans scored outside the model's scope (at a clinician's request) are counted apart, not in
    the agreement: they say nothing about how the model does on what it was trained to read."""
    reviews = Review.objects.filter(prediction__in=predictions).select_related(
        "prediction__model_version"
    )
    grouped: dict[int, list[Review]] = {}
    for review in reviews:
        grouped.setdefault(review.prediction.model_version_id, []).append(review)
    out = []
    for all_reviews in grouped.values():
        version = all_reviews[0].prediction.model_version
        names = list(all_reviews[0].prediction.class_names)
        overridden = [r for r in all_reviews if r.prediction.override_at is not None]
        version_reviews = [
            r
            for r in all_reviews
            if r.prediction.override_at is None and r.prediction.predicted_index is not None
        ]
        matrix = [[0] * len(names) for _ in names]
        for review in version_reviews:
            if review.label in names and review.prediction.predicted_index is not None:
                matrix[names.index(review.label)][review.prediction.predicted_index] += 1
        sens = spec = None
        if len(names) == 2:
            tp, fn = matrix[1][1], matrix[1][0]
            tn, fp = matrix[0][0], matrix[0][1]
            sens = tp / (tp + fn) if tp + fn else None
            spec = tn / (tn + fp) if tn + fp else None
        out.append(
            Agreement(
                version=version,
                reviewed=len(version_reviews),
                accepted=sum(r.verdict == Review.Verdict.ACCEPTED for r in version_reviews),
                class_names=names,
                confusion=matrix,
                sensitivity=sens,
                specificity=spec,
                overridden_reviewed=len(overridden),
                overridden_accepted=sum(r.verdict == Review.Verdict.ACCEPTED for r in overridden),
            )
        )
    return sorted(out, key=lambda a: (a.version.task, -a.version.version))


def prediction_history(*, predictions: QuerySet[Prediction]) -> QuerySet[Prediction]:
    """Scored predictions (with a risk) oldest first, for drift charts."""
    return (
        predictions.filter(risk__isnull=False)
        .select_related("model_version")
        .order_by("created_at")
    )


@dataclass(frozen=True)
class ScopePeriod:
    """One day or week of a version's answers: how many, how many its checks put outside its
    scope (`flagged`, overridden ones included), how many of those a clinician had scored
    anyway (`overridden`), and how many were not checked (no detector)."""

    start: Any
    scans: int
    flagged: int
    overridden: int
    unchecked: int

    @property
    def checked(self) -> int:
        return self.scans - self.unchecked

    @property
    def flagged_share(self) -> float | None:
        """Flagged among the checked answers; None when none was checked."""
        return self.flagged / self.checked if self.checked else None

    @property
    def overridden_share(self) -> float | None:
        return self.overridden / self.checked if self.checked else None


@dataclass(frozen=True)
class ScopeTrend:
    """A version's out-of-scope share over time and its totals."""

    version: ModelVersion
    periods: list[ScopePeriod]

    @property
    def total(self) -> ScopePeriod:
        return ScopePeriod(
            start=None,
            scans=sum(p.scans for p in self.periods),
            flagged=sum(p.flagged for p in self.periods),
            overridden=sum(p.overridden for p in self.periods),
            unchecked=sum(p.unchecked for p in self.periods),
        )


SCOPE_PERIODS = ("day", "week")


def scope_trends(*, predictions: QuerySet[Prediction], period: str) -> list[ScopeTrend]:
    """Per model version, its answers per `period` ("day" or "week", by the answer's time in
    the site's time zone) counted by scope: the drift signal beside agreement. Counts only,
    never a patient or scan. ValueError for another period."""
    from django.db.models import Count, Q
    from django.db.models.functions import TruncDay, TruncWeek

    if period not in SCOPE_PERIODS:
        raise ValueError(f"period must be one of {', '.join(SCOPE_PERIODS)}")
    trunc = TruncDay("created_at") if period == "day" else TruncWeek("created_at")
    out_of_scope = Q(scope=Prediction.Scope.OUT_OF_SCOPE)
    # The stubs take the count `overridden` for the model's property; it is a values() key.
    rows = (
        predictions.annotate(start=trunc)  # type: ignore[no-redef]
        .values("model_version", "start")
        .annotate(
            scans=Count("pk"),
            flagged=Count("pk", filter=out_of_scope),
            overridden=Count("pk", filter=out_of_scope & Q(override_at__isnull=False)),
            unchecked=Count("pk", filter=Q(scope=Prediction.Scope.UNCHECKED)),
        )
        .order_by("model_version", "start")
    )
    periods: dict[int, list[ScopePeriod]] = {}
    for row in rows:
        periods.setdefault(row["model_version"], []).append(
            ScopePeriod(
                start=row["start"].date(),
                scans=row["scans"],
                flagged=row["flagged"],
                overridden=row["overridden"],
                unchecked=row["unchecked"],
            )
        )
    versions = ModelVersion.objects.in_bulk(list(periods))
    trends = [ScopeTrend(version=versions[pk], periods=p) for pk, p in periods.items()]
    return sorted(trends, key=lambda t: (t.version.task, -t.version.version))


@dataclass(frozen=True)
class FileRejection:
    name: str
    message: str
    # The intake's RejectCode value ("" when no single check refused it).
    code: str = ""


@dataclass
class UploadOutcome:
    # None when no file was accepted: nothing was stored, only the rejections are reported.
    upload: ScanUpload | None
    scans: list[Scan] = field(default_factory=list)
    rejected: list[FileRejection] = field(default_factory=list)
    job: Job | None = None
    # One inference job per model the accepted scans were routed to (job is the first).
    jobs: list[Job] = field(default_factory=list)
    # Stored de-identified but held until a clinician confirms no identifying text shows.
    held: list[Scan] = field(default_factory=list)
    # Stored while no model that could classify them was in service: queued when one is.
    awaiting: list[Scan] = field(default_factory=list)
    # Once classified: how many answers have probabilities, and those outside the scope.
    scored: int = 0
    out_of_scope: list[Prediction] = field(default_factory=list)


def upload_outcome(*, patient: Any, pk: int) -> UploadOutcome | None:
    """What happened to one upload of this (already access-checked) patient, or None."""
    upload = ScanUpload.objects.filter(patient=patient, pk=pk).first()
    if upload is None:
        return None
    scans = list(
        upload.scans.prefetch_related(
            Prefetch("predictions", queryset=Prediction.objects.select_related("scan"))
        )
    )
    answers = [p for s in scans for p in s.predictions.all()]
    jobs = list(
        Job.objects.filter(
            kind="diagnosis.inference", target_id=upload.pk, target_type__model="scanupload"
        ).order_by("pk")
    )
    return UploadOutcome(
        upload=upload,
        scans=[s for s in scans if not s.held],
        held=[s for s in scans if s.held],
        awaiting=[s for s in scans if s.awaiting_model_since is not None and not s.held],
        rejected=[FileRejection(r["name"], r["message"]) for r in upload.rejected],
        job=jobs[0] if jobs else None,
        jobs=jobs,
        scored=sum(p.scored and not p.overridden for p in answers),
        out_of_scope=sorted(
            (p for p in answers if p.scope == Prediction.Scope.OUT_OF_SCOPE),
            key=lambda p: p.scan_id,
        ),
    )


def reviews_per_task() -> list[tuple[str, int]]:
    """(task, number of reviewed scans) for every diagnosis task with a model in service."""
    from django.db.models import Count

    counts = dict(
        Review.objects.values_list("prediction__model_version__task")
        .annotate(n=Count("pk"))
        .values_list("prediction__model_version__task", "n")
    )
    return [(v.task, counts.get(v.task, 0)) for v in active_versions()]


def dataset_list() -> list[tuple[ImageDataset, Job | None]]:
    """Every image data set with the latest job that checked it (None when none did, e.g.
    reviewed-scan sets), newest data sets first."""
    datasets = list(ImageDataset.objects.select_related("created_by").order_by("-created_at"))
    jobs: dict[int | None, Job] = {}
    for job in Job.objects.filter(
        kind="diagnosis.dataset_check",
        target_type__model="imagedataset",
        target_id__in=[d.pk for d in datasets],
    ).order_by("pk"):
        jobs[job.target_id] = job
    return [(dataset, jobs.get(dataset.pk)) for dataset in datasets]


def imaging_model_tasks() -> set[str]:
    """The imaging tasks this deployment knows: the shipped demo's, those data sets train
    and those model versions already serve."""
    return (
        {SHIPPED_TASK}
        | set(ImageDataset.objects.values_list("task", flat=True))
        | set(
            ModelVersion.objects.filter(task__startswith="diagnosis.").values_list(
                "task", flat=True
            )
        )
    )


def scan_held_visible(*, user: Any, pk: int) -> bool:
    """Whether ``pk`` is a held scan of one of the user's patients."""
    return scan_held_list(user=user, patient=None).filter(pk=pk).exists()


def diagnosis_versions() -> QuerySet[ModelVersion]:
    """Every imaging model version, for filters that name one."""
    return ModelVersion.objects.filter(task__startswith="diagnosis.")


def training_jobs(*, limit: int = 20) -> QuerySet[Job]:
    """Recent imaging-model training runs, newest first."""
    return Job.objects.filter(kind="diagnosis.training").select_related("owner")[:limit]


def training_job_get(*, pk: int) -> Job | None:
    """One imaging-model training run, or None."""
    return Job.objects.filter(pk=pk, kind="diagnosis.training").first()
