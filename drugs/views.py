"""Drug-design pages for researchers and model admins (no patient data in them)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from drugs import charts
from drugs.forms import (
    DatasetUploadForm,
    DesignRunForm,
    MoleculeFilterForm,
    PredictorTrainingForm,
    SampleForm,
    ShortlistForm,
)
from drugs.models import DesignRun, GeneratedMolecule, MoleculeDataset
from drugs.selectors import (
    active_predictors,
    dataset_get,
    dataset_list,
    dataset_preview,
    dataset_ready_list,
    dataset_runs,
    endpoint_of,
    generator_active,
    generator_versions,
    model_versions_by_pk,
    molecule_filter,
    molecule_get,
    predictor_summary,
    predictor_training_jobs,
    predictor_versions,
    run_get,
    run_list,
    run_top_molecules,
    shortlist_entry,
    shortlist_for,
    shortlisted_ids,
    training_neighbours,
)
from drugs.services import (
    DatasetRejected,
    dataset_upload,
    design_run_sample_start,
    design_run_start,
    predictor_train_start,
    run_export,
    shortlist_remove,
    shortlist_save,
)
from medai_site.core.charts import TRAINING_NOT_STARTED, chart_card, chart_cards, live_figure
from medai_site.core.pagination import page_of
from medai_site.core.query_params import BadParameter, bad_request, int_param
from medai_site.core.roles import Role, has_role, role_required

RESEARCH_ROLES = (Role.RESEARCHER, Role.MODEL_ADMIN)
PAGE_SIZE = 48
#: The drug-design home page's lists: newest design runs first, data sets by name.
PAGE_SIZE_RUNS = 25
PAGE_SIZE_DATASETS = 20
PAGE_SIZE_VERSIONS = 25
NEIGHBOURS = 5
# Training molecules searched for a molecule's nearest neighbours (a seeded subset of bigger
# sets keeps the page fast).
NEIGHBOUR_SEARCH = 10_000
# Generated molecules drawn on the chemical-space map (an SVG scatter stays responsive).
MAP_POINTS = 5000


def _run_or_404(pk: int) -> DesignRun:
    try:
        return run_get(pk=pk)
    except DesignRun.DoesNotExist:
        raise Http404("No such design run.") from None


def _molecule_or_404(pk: int) -> GeneratedMolecule:
    try:
        return molecule_get(pk=pk)
    except GeneratedMolecule.DoesNotExist:
        raise Http404("No such molecule.") from None


def _can_activate(request: HttpRequest) -> bool:
    return has_role(request.user, Role.MODEL_ADMIN)


def _activity_endpoints() -> list[str]:
    """Endpoints with a predictor in service (each can score the activity objective)."""
    return [endpoint_of(v) for v in active_predictors()]


@require_GET
@role_required(*RESEARCH_ROLES)
def home_view(request: HttpRequest) -> HttpResponse:
    runs = page_of(request, run_list(), per_page=PAGE_SIZE_RUNS, noun="design run", param="runs")
    datasets = page_of(
        request, dataset_list(), per_page=PAGE_SIZE_DATASETS, noun="data set", param="datasets"
    )
    return render(
        request,
        "drugs/home.html",
        {
            "runs": runs.object_list,
            "runs_pager": runs,
            "datasets": datasets.object_list,
            "datasets_pager": datasets,
            "predictors": [
                (v, endpoint_of(v), predictor_summary(v.metrics or {})) for v in active_predictors()
            ],
            "generators": list(generator_versions()[:10]),
        },
    )


@require_http_methods(["GET", "POST"])
@role_required(*RESEARCH_ROLES)
def dataset_create_view(request: HttpRequest) -> HttpResponse:
    form = DatasetUploadForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                dataset = dataset_upload(
                    name=form.cleaned_data["name"],
                    data=upload.read(),
                    filename=upload.name,
                    smiles_column=form.cleaned_data["smiles_column"],
                    description=form.cleaned_data["description"],
                    user=request.user,
                )
            except DatasetRejected as exc:
                form.add_error(exc.field, str(exc))
            else:
                messages.success(request, f"“{dataset.name}” is being imported.")
                return redirect("drugs:dataset_detail", dataset.pk)
        status = 400
    return render(request, "drugs/dataset_form.html", {"form": form}, status=status)


@require_GET
@role_required(*RESEARCH_ROLES)
def dataset_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        dataset = dataset_get(pk=pk)
    except MoleculeDataset.DoesNotExist:
        raise Http404("No such data set.") from None
    runs = page_of(
        request, dataset_runs(dataset=dataset), per_page=PAGE_SIZE_RUNS, noun="design run"
    )
    return render(
        request,
        "drugs/dataset_detail.html",
        {
            "dataset": dataset,
            "preview": _preview(dataset),
            "runs": runs.object_list,
            "runs_pager": runs,
        },
    )


def _preview(dataset: MoleculeDataset) -> list[str]:
    if not dataset.is_ready:
        return []
    try:
        return dataset_preview(dataset)
    except (OSError, ValueError):
        return []


@require_http_methods(["GET", "POST"])
@role_required(*RESEARCH_ROLES)
def run_create_view(request: HttpRequest) -> HttpResponse:
    datasets = dataset_ready_list()
    initial: dict[str, Any] = {}
    try:
        for param, key in (("dataset", "dataset"), ("base", "base_version")):
            if (value := int_param(request.GET, param)) is not None:
                initial[key] = value
    except BadParameter as exc:
        return bad_request(str(exc))
    if "base_version" not in initial and (active := generator_active()) is not None:
        initial["base_version"] = active.pk  # fine-tune the generator in service by default
    form = DesignRunForm(
        request.POST or None,
        initial=initial,
        datasets=datasets,
        generators=generator_versions(),
        endpoints=_activity_endpoints(),
        can_activate=_can_activate(request),
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                run = design_run_start(
                    dataset=data["dataset"],
                    name=data["name"],
                    config=form.gan_config(),
                    n_samples=data["n_samples"],
                    train_limit=data["train_limit"],
                    activity_endpoint=data["activity_endpoint"],
                    activate=bool(data.get("activate")),
                    base_version=data.get("base_version"),
                    from_scratch=data.get("base_version") is None,
                    user=request.user,
                )
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                return redirect("drugs:run_detail", run.pk)
        status = 400
    return render(
        request,
        "drugs/run_form.html",
        {"form": form, "has_datasets": datasets.exists()},
        status=status,
    )


def _metric_rows(run: DesignRun) -> tuple[list[str], list[dict[str, Any]]]:
    """The MOSES table: this run, the training set, then the published models."""
    from drugs.ml.metrics import METRIC_KEYS, MOSES_PUBLISHED

    rows = [{"name": f"This run ({run.n_sampled:,} samples)", "values": run.metrics, "ours": 1}]
    reference = run.dataset.reference_metrics or {}
    if reference.get("metrics"):
        rows.append(
            {
                "name": f"Training set ({reference.get('n', 0):,} of {run.dataset.name})",
                "values": reference["metrics"],
                "ours": 1,
            }
        )
    rows += [
        {"name": name, "values": values, "ours": 0} for name, values in MOSES_PUBLISHED.items()
    ]
    keys = list(METRIC_KEYS)
    for row in rows:
        row["cells"] = [row["values"].get(k) for k in keys]
    return keys, rows


def _result_charts(run: DesignRun) -> list[dict[str, Any]]:
    found: list[tuple[str, str, dict[str, Any] | None]] = []
    training = (run.dataset.reference_metrics or {}).get("properties", {})
    values = {key: [] for key, _ in charts.PROPERTIES}
    points = []
    for row in run.molecules.values("pk", "smiles", "x", "y", *values):
        for key in values:
            if row[key] is not None:
                values[key].append(row[key])
        if row["x"] is not None and len(points) < MAP_POINTS:
            points.append((row["x"], row["y"], row["smiles"], row["pk"]))
    space = run.result.get("space", {})
    found.append(
        (
            "chemical-space",
            "Chemical space: training and generated molecules",
            charts.chemical_space_figure(
                space.get("train", []),
                points,
                space.get("method", ""),
                space.get("explained") or None,
            ),
        )
    )
    for key, label in charts.PROPERTIES:
        found.append(
            (
                f"dist-{key}",
                f"{label}: generated vs training set",
                charts.distribution_figure(key, label, values[key], training.get(key, [])),
            )
        )
    return chart_cards(found)


# How the goal-directed section names the objective terms.
_OBJECTIVE_NAMES = {
    "qed": "QED",
    "sa": "synthesisability (SA score mapped to 0–1)",
    "lipinski": "Lipinski's rule of five",
    "pains": "no PAINS alert",
    "activity": "predicted activity",
}


def _goal_labels(goal: dict[str, Any]) -> dict[str, str]:
    rows, k = goal.get("rows", {}), goal.get("k", 100)
    train = rows.get("train", {})
    source = train.get("source", "the training set")
    return {
        "run": f"This run ({rows.get('run', {}).get('sampled', 0):,} sampled)",
        "train": f"Best {k} of {train.get('sampled', 0):,} from {source}",
        "prior": f"Prior without optimisation ({rows.get('prior', {}).get('generator', '')})",
    }


def _goal_verdicts(goal: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """One plain sentence per baseline: whether the run's top-k mean beat it."""
    k, rows = goal.get("k", 100), goal.get("rows", {})
    ours = rows.get("run", {}).get("top_k_mean")
    out = []
    beats = goal.get("beats", {})
    for key in (k for k in charts.GOAL_ROWS if k in beats):  # stored JSON reorders keys
        beaten = beats[key]
        theirs = rows.get(key, {}).get("top_k_mean")
        verb = "beats" if beaten else "does not beat"
        out.append(
            f"The run's top-{k} mean ({ours:.3f}) {verb} “{labels.get(key, key)}” ({theirs:.3f})."
        )
    return out


def _goal_context(run: DesignRun) -> dict[str, Any]:
    """What the run page's goal-directed section shows: a state (missing, sample_run,
    no_objective, failed, done) and, when done, the table rows, verdicts and chart."""
    goal = run.result.get("goal")
    if not goal:
        return {"state": "missing"}
    if goal.get("status") != "done":
        return {"state": goal.get("status", "missing"), "reason": goal.get("reason", "")}
    labels = _goal_labels(goal)
    rows = [
        {"key": key, "label": labels[key], **goal["rows"][key]}
        for key in charts.GOAL_ROWS
        if key in goal.get("rows", {})
    ]
    weights = goal.get("objective", {})
    objective = ", ".join(
        name
        + (f" ({goal.get('predictor')})" if term == "activity" and goal.get("predictor") else "")
        + f" {weights[term]:g}"
        for term, name in _OBJECTIVE_NAMES.items()  # in the form's order, not the JSON's
        if term in weights
    )
    return {
        "state": "done",
        "k": goal.get("k", 100),
        "rows": rows,
        "objective": objective,
        "verdicts": _goal_verdicts(goal, labels),
        "goal": goal,
        "chart": chart_card(
            "goal-comparison",
            "Goal-directed comparison: objective score of the best molecules",
            charts.goal_figure(rows, goal.get("k", 100)),
        ),
    }


@require_GET
@role_required(*RESEARCH_ROLES)
def run_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run_or_404(pk)
    context: dict[str, Any] = {
        "run": run,
        "owner": run.created_by_id == request.user.pk,
        "curves": [
            chart_card(
                "curve-losses",
                "Generator and discriminator losses",
                charts.losses_figure(run.history),
                empty=TRAINING_NOT_STARTED,
            ),
            chart_card(
                "curve-quality",
                "Validity, uniqueness, novelty and mean reward",
                charts.quality_figure(run.history),
                empty=TRAINING_NOT_STARTED,
            ),
        ]
        if run.kind != DesignRun.Kind.SAMPLE
        else [],
    }
    live = run.job.live if run.job and not run.is_done else {}
    context["live_sample"] = (live or {}).get("sample", [])
    if run.is_done:
        keys, rows = _metric_rows(run)
        context.update(
            {
                "metric_keys": keys,
                "metric_rows": rows,
                "charts": _result_charts(run),
                "top": run_top_molecules(run=run),
                "sample_form": SampleForm(),
                "predictors": run.result.get("predictors", {}),
                "goal": _goal_context(run),
            }
        )
    return render(request, "drugs/run_detail.html", context)


@require_GET
@role_required(*RESEARCH_ROLES)
def run_live_view(request: HttpRequest, pk: int) -> JsonResponse:
    """The run page's live data while it trains: the curves of the epochs so far and the
    latest epoch's valid molecules."""
    run = _run_or_404(pk)
    live = (run.job.live if run.job else None) or {}
    response = JsonResponse(
        {
            "epochs": len(run.history),
            "figures": {
                # With their summary sentence and data table (charts.js shows both).
                "curve-losses": live_figure(
                    charts.losses_figure(run.history), label="Generator and discriminator losses"
                ),
                "curve-quality": live_figure(
                    charts.quality_figure(run.history),
                    label="Validity, uniqueness, novelty and mean reward",
                ),
            },
            "sample": live.get("sample", []),
            "collapse": bool(live.get("collapse") or run.collapse),
            "done": run.is_done,
        }
    )
    response["Cache-Control"] = "no-store"
    return response


def _filter_form(request: HttpRequest, run: DesignRun) -> MoleculeFilterForm:
    endpoints = sorted(run.result.get("predictors", {}))
    return MoleculeFilterForm(request.GET or None, endpoints=endpoints)


@require_GET
@role_required(*RESEARCH_ROLES)
def run_molecules_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run_or_404(pk)
    if not run.is_done:
        return redirect("drugs:run_detail", run.pk)
    form = _filter_form(request, run)
    if form.is_bound and not form.is_valid():
        return render(
            request,
            "drugs/run_molecules.html",
            {"run": run, "form": form, "page": None},
            status=400,
        )
    molecules = molecule_filter(run=run, filters=form.filters(request.user))
    pager = page_of(request, molecules, per_page=PAGE_SIZE, noun="molecule")
    page = pager.page
    shortlisted = shortlisted_ids(user=request.user, molecules=page)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "drugs/run_molecules.html",
        {
            "run": run,
            "form": form,
            "page": page,
            "pager": pager,
            "shortlisted": shortlisted,
            "endpoints": sorted(run.result.get("predictors", {})),
            "query": query.urlencode(),
            "export_csv": "?" + urlencode({**query.dict(), "format": "csv"}),
            "export_sdf": "?" + urlencode({**query.dict(), "format": "sdf"}),
        },
    )


@require_GET
@role_required(*RESEARCH_ROLES)
def run_export_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run_or_404(pk)
    if not run.is_done:
        return bad_request("This run has no molecules yet.")
    form = _filter_form(request, run)
    if form.is_bound and not form.is_valid():
        return bad_request("The filters are not valid.")
    try:
        content, filename, content_type = run_export(
            run=run,
            molecules=molecule_filter(run=run, filters=form.filters(request.user)),
            fmt=request.GET.get("format", "csv"),
            user=request.user,
            request=request,
        )
    except ValueError as exc:
        return bad_request(str(exc))
    response = HttpResponse(content, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_POST
@role_required(*RESEARCH_ROLES)
def run_sample_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run_or_404(pk)
    form = SampleForm(request.POST)
    if run.generator is None or not form.is_valid():
        messages.error(request, "Choose 100–30,000 molecules and a temperature of 0.2–3.")
        return redirect("drugs:run_detail", run.pk)
    try:
        new = design_run_sample_start(
            version=run.generator,
            n_samples=form.cleaned_data["n_samples"],
            temperature=form.cleaned_data["temperature"],
            dataset=run.dataset,
            user=request.user,
        )
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("drugs:run_detail", run.pk)
    return redirect("drugs:run_detail", new.pk)


@require_GET
@role_required(*RESEARCH_ROLES)
def molecule_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    from drugs.ml.chem import mol_properties
    from drugs.ml.domain import domain_text

    molecule = _molecule_or_404(pk)
    run = molecule.run
    used = run.result.get("predictors", {})
    versions = model_versions_by_pk(pks=[u["version_id"] for u in used.values()])
    predictions = []
    for endpoint, info in sorted(used.items()):
        version = versions.get(info["version_id"])
        domain = (molecule.applicability or {}).get(endpoint) or {}
        predictions.append(
            {
                "endpoint": endpoint,
                "value": (molecule.predictions or {}).get(endpoint),
                "domain_status": domain.get("status", "unknown"),
                "domain": domain_text(domain),
                "version": version,
                "summary": predictor_summary(version.metrics or {}) if version else "",
            }
        )
    props = mol_properties(molecule.smiles)
    entry = shortlist_entry(molecule=molecule, user=request.user)
    return render(
        request,
        "drugs/molecule_detail.html",
        {
            "molecule": molecule,
            "run": run,
            "props": props,
            "predictions": predictions,
            "neighbours": _neighbours(molecule),
            "entry": entry,
            "form": ShortlistForm(initial={"note": entry.note if entry else ""}),
        },
    )


def _neighbours(molecule: GeneratedMolecule) -> list[tuple[str, float]] | None:
    """Nearest training molecules, or None when the training data can no longer be read (a
    built-in set whose package was removed)."""
    try:
        return training_neighbours(
            dataset=molecule.run.dataset,
            smiles=molecule.smiles,
            k=NEIGHBOURS,
            limit=NEIGHBOUR_SEARCH,
        )
    except (OSError, ValueError):
        return None


@require_POST
@role_required(*RESEARCH_ROLES)
def shortlist_save_view(request: HttpRequest, pk: int) -> HttpResponse:
    molecule = _molecule_or_404(pk)
    form = ShortlistForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The note is too long (4,000 characters at most).")
    else:
        shortlist_save(molecule=molecule, user=request.user, note=form.cleaned_data["note"])
        messages.success(request, "Saved to your shortlist.")
    return redirect(_back(request, "drugs:molecule_detail", molecule.pk))


@require_POST
@role_required(*RESEARCH_ROLES)
def shortlist_remove_view(request: HttpRequest, pk: int) -> HttpResponse:
    molecule = _molecule_or_404(pk)
    if shortlist_remove(molecule=molecule, user=request.user):
        messages.success(request, "Removed from your shortlist.")
    return redirect(_back(request, "drugs:molecule_detail", molecule.pk))


def _back(request: HttpRequest, name: str, pk: int) -> str:
    """Where to go after a shortlist change: a same-site "next" path, else the molecule."""
    from django.urls import reverse

    from medai_site.core.query_params import next_path

    return next_path(request, default=reverse(name, args=[pk]))


@require_GET
@role_required(*RESEARCH_ROLES)
def shortlist_view(request: HttpRequest) -> HttpResponse:
    return render(
        request, "drugs/shortlist.html", {"entries": list(shortlist_for(user=request.user))}
    )


@require_http_methods(["GET", "POST"])
@role_required(*RESEARCH_ROLES)
def predictors_view(request: HttpRequest) -> HttpResponse:
    from drugs.ml.predictors import ENDPOINTS

    choices = [(name, _endpoint_label(name, spec)) for name, spec in ENDPOINTS.items()]
    form = PredictorTrainingForm(
        request.POST or None, endpoints=choices, can_activate=_can_activate(request)
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                job = predictor_train_start(
                    endpoint=data["endpoint"],
                    kind=data["kind"],
                    cv_folds=data["cv_folds"],
                    activate=bool(data.get("activate")),
                    user=request.user,
                )
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Queued: {job.title}.")
                return redirect("drugs:predictors")
        status = 400
    jobs = predictor_training_jobs(user=request.user)
    versions = page_of(
        request, predictor_versions(), per_page=PAGE_SIZE_VERSIONS, noun="version", param="versions"
    )
    return render(
        request,
        "drugs/predictors.html",
        {
            "form": form,
            "versions": [
                (v, endpoint_of(v), predictor_summary(v.metrics or {}))
                for v in versions.object_list
            ],
            "versions_pager": versions,
            "endpoints": [(name, spec) for name, spec in ENDPOINTS.items()],
            "jobs": list(jobs),
        },
        status=status,
    )


def _endpoint_label(name: str, spec: Any) -> str:
    description = getattr(spec, "description", "") or getattr(spec, "title", "")
    return f"{name}: {description}" if description else name


@require_GET
@role_required(*RESEARCH_ROLES)
@cache_control(private=True, max_age=86400)
def structure_view(request: HttpRequest) -> HttpResponse:
    """A molecule drawn by RDKit as SVG, for <img> tags (an image cannot run script)."""
    from drugs.ml.chem import draw_svg

    smiles = request.GET.get("smiles", "")
    try:
        width = int_param(request.GET, "w", default=240, min_value=1, max_value=100_000)
        height = int_param(request.GET, "h", default=180, min_value=1, max_value=100_000)
    except BadParameter as exc:
        return bad_request(str(exc))
    if not smiles or len(smiles) > 500:
        return bad_request("Give a SMILES of up to 500 characters.")
    try:
        svg = draw_svg(smiles, width=width, height=height)
    except ValueError as exc:
        # Plain text: RDKit's message may quote the SMILES from the query string.
        return bad_request(str(exc))
    response = HttpResponse(svg, content_type="image/svg+xml")
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response
