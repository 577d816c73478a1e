from __future__ import annotations

import csv
import html
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from drugs.models import DesignRun, MoleculeDataset
from drugs.services import shortlist_save
from tests.drugs.factories import DesignRunFactory, GeneratedMoleculeFactory
from tests.platform.factories import JobFactory
from tests.support.clients import login


@pytest.fixture
def done_run(users, moses_dataset):
    """A finished run with a few real molecules and their RDKit properties."""
    from drugs.ml.chem import mol_properties

    run = DesignRunFactory(
        name="done",
        dataset=moses_dataset,
        status=DesignRun.Status.DONE,
        created_by=users.researcher,
        n_sampled=5,
        n_valid=5,
        n_unique=4,
        metrics={"valid": 1.0, "fcd": 2.5},
        result={"space": {"method": "pca", "train": [[0, 0], [1, 1]]}},
    )
    for i, smiles in enumerate(
        ["CCO", "CC(=O)Oc1ccccc1C(=O)O", "c1ccc2ccccc2c1", "CN1CCC[C@H]1c1cccnc1"]
    ):
        props = mol_properties(smiles).to_dict()
        props.pop("lipinski_violations")
        GeneratedMoleculeFactory(run=run, smiles=smiles, novel=i % 2 == 0, x=i, y=i, **props)
    return run


@pytest.mark.django_db
def test_malformed_upload_is_refused_on_the_form_with_the_reason(users):
    client = login(users.researcher)
    response = client.post(
        reverse("drugs:dataset_create"),
        {"name": "png", "file": SimpleUploadedFile("x.smi", b"\x89PNG\x00\x00binary")},
    )
    assert response.status_code == 400
    assert "binary file" in response.content.decode()
    response = client.post(
        reverse("drugs:dataset_create"),
        {"name": "words", "file": SimpleUploadedFile("x.smi", b"hello there\nnope\n")},
    )
    assert response.status_code == 400
    assert "No valid molecule" in response.content.decode()
    assert not MoleculeDataset.objects.exists()


@pytest.mark.django_db
def test_upload_then_dataset_page_lists_invalid_lines(users, run_job):
    client = login(users.researcher)
    response = client.post(
        reverse("drugs:dataset_create"),
        {"name": "mine", "file": SimpleUploadedFile("m.smi", b"CCO a\nC1CC( b\nCCN c\n")},
    )
    dataset = MoleculeDataset.objects.get(name="mine")
    assert response.status_code == 302 and response["Location"].endswith(f"/{dataset.pk}/")
    run_job(dataset.job)
    page = client.get(response["Location"]).content.decode()
    assert 'data-count="molecules">2<' in page
    assert 'data-count="invalid">1<' in page
    assert "<td>2</td>" in page and "C1CC(" in page


@pytest.mark.django_db
def test_run_form_shows_defaults_and_refuses_bad_settings(users, moses_dataset):
    client = login(users.researcher)
    page = client.get(reverse("drugs:run_create")).content.decode()
    assert 'name="pretrain_epochs"' in page and 'name="w_qed"' in page
    assert 'name="activate"' not in page  # model admins only
    response = client.post(
        reverse("drugs:run_create"),
        {
            "dataset": moses_dataset.pk,
            "train_limit": 1000,
            "n_samples": 500,
            "pretrain_epochs": 0,
            "adversarial_epochs": 0,
            "temperature": 1.0,
            "w_realism": 1,
            "w_qed": 0,
            "w_sa": 0,
            "w_lipinski": 0,
            "w_pains": 0,
            "w_activity": 0,
            **{k: v for k, v in _advanced_defaults().items()},
        },
    )
    assert response.status_code == 400
    assert "at least one epoch" in response.content.decode()
    assert not DesignRun.objects.exists()


def _advanced_defaults() -> dict:
    from drugs.forms import ADVANCED
    from drugs.ml.gan import GanConfig

    defaults = GanConfig().to_dict()
    return {k: defaults[k] for k in ADVANCED if k in defaults}


@pytest.mark.django_db
def test_grid_filters_sorts_and_paginates_on_the_server(users, done_run):
    client = login(users.researcher)
    url = reverse("drugs:run_molecules", args=[done_run.pk])
    page = client.get(url, {"mw_min": 100, "sort": "mw"}).content.decode()
    assert page.index("c1ccc2ccccc2c1") < page.index("CC(=O)Oc1ccccc1C(=O)O")
    assert ">CCO<" not in page  # 46 Da
    assert "3 molecules match" in page
    page = client.get(url, {"novel_only": "on"}).content.decode()
    assert "2 molecules match" in page and "CN1CCC" not in page
    assert client.get(url, {"qed_min": "lots"}).status_code == 400


@pytest.mark.django_db
def test_csv_export_defuses_formulas_and_sdf_has_every_molecule(users, done_run):
    client = login(users.researcher)
    molecule = done_run.molecules.get(smiles="CCO")
    shortlist_save(molecule=molecule, user=users.researcher, note='=HYPERLINK("http://x")')
    url = reverse("drugs:run_export", args=[done_run.pk])
    response = client.get(url, {"format": "csv", "sort": "smiles"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 4
    ethanol = next(r for r in rows if r["smiles"] == "CCO")
    assert ethanol["note"] == '\'=HYPERLINK("http://x")'
    sdf = client.get(url, {"format": "sdf", "novel_only": "on"}).content.decode()
    assert sdf.count("$$$$") == 2 and ">  <qed>" in sdf
    assert client.get(url, {"format": "xlsx"}).status_code == 400


@pytest.mark.django_db
def test_structure_drawing_is_svg_without_script_and_refuses_bad_smiles(users):
    client = login(users.researcher)
    response = client.get(reverse("drugs:structure"), {"smiles": "c1ccccc1O"})
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    assert b"<svg" in response.content and b"script" not in response.content.lower()
    response = client.get(reverse("drugs:structure"), {"smiles": "C1CC("})
    assert response.status_code == 400


@pytest.mark.django_db
def test_molecule_page_shows_properties_neighbours_and_saves_a_note(users, done_run):
    client = login(users.researcher)
    molecule = done_run.molecules.get(smiles="CC(=O)Oc1ccccc1C(=O)O")
    page = client.get(reverse("drugs:molecule_detail", args=[molecule.pk])).content.decode()
    assert "Nearest training molecules" in page and "Tanimoto" in page
    assert page.count('class="mol-card"') == 5
    response = client.post(
        reverse("drugs:shortlist_save", args=[molecule.pk]), {"note": "aspirin-like"}
    )
    assert response.status_code == 302
    page = client.get(reverse("drugs:shortlist")).content.decode()
    assert "aspirin-like" in page
    # Another researcher's shortlist is their own.
    other = login(users.model_admin)
    assert "aspirin-like" not in other.get(reverse("drugs:shortlist")).content.decode()


@pytest.mark.django_db
def test_run_page_shows_moses_table_with_training_and_published_rows(users, done_run):
    done_run.dataset.reference_metrics = {"metrics": {"valid": 1.0, "fcd": 0.5}, "n": 100}
    done_run.dataset.save()
    client = login(users.researcher)
    page = client.get(reverse("drugs:run_detail", args=[done_run.pk])).content.decode()
    assert "Training set (100 of" in page
    assert "CharRNN" in page and "This run" in page
    assert 'data-figure="chemical-space"' in page


@pytest.mark.django_db
def test_live_endpoint_draws_the_epochs_so_far_and_the_latest_sample(users, done_run):

    done_run.status = DesignRun.Status.PENDING
    done_run.history = [
        {"phase": "pretrain", "epoch": 1, "g_loss": 2.5, "d_loss": None, "validity": 0.4},
        {"phase": "adversarial", "epoch": 1, "g_loss": 1.5, "d_loss": 0.6, "validity": 0.7},
    ]
    done_run.job = JobFactory(
        kind="drugs.design", title="t", owner=users.researcher, live={"sample": ["CCO"]}
    )
    done_run.save()
    data = login(users.researcher).get(reverse("drugs:run_live", args=[done_run.pk])).json()
    assert data["epochs"] == 2 and data["sample"] == ["CCO"] and not data["done"]
    losses = data["figures"]["curve-losses"]["data"]
    assert losses[0]["y"] == [2.5, 1.5] and losses[1]["y"] == [None, 0.6]
    assert data["figures"]["curve-quality"]["data"][0]["y"] == [0.4, 0.7]


@pytest.mark.django_db
def test_predictions_outside_the_domain_are_marked_in_grid_page_and_exports(users, done_run):
    outside = {"status": "outside", "max_similarity": 0.23, "threshold": 0.35}
    outside["text"] = "outside the applicability domain (max similarity 0.23 < 0.35)"
    done_run.result = {**done_run.result, "predictors": {"BBBP": {"version_id": 0, "label": "v"}}}
    done_run.save(update_fields=["result"])
    done_run.molecules.filter(smiles="CCO").update(
        predictions={"BBBP": 0.91}, applicability={"BBBP": outside}
    )
    # Scored by a predictor trained before domains were recorded: no verdict stored.
    done_run.molecules.filter(smiles="c1ccc2ccccc2c1").update(predictions={"BBBP": 0.4})
    client = login(users.researcher)
    grid = client.get(reverse("drugs:run_molecules", args=[done_run.pk])).content.decode()
    grid = html.unescape(grid)
    assert grid.count('data-domain="outside"') == 1 and outside["text"] in grid
    assert grid.count('data-domain="unknown"') == 1 and "applicability domain unknown" in grid

    ethanol = done_run.molecules.get(smiles="CCO")
    page = client.get(reverse("drugs:molecule_detail", args=[ethanol.pk])).content.decode()
    page = html.unescape(page)
    assert 'data-domain="outside"' in page and outside["text"] in page

    url = reverse("drugs:run_export", args=[done_run.pk])
    rows = list(csv.DictReader(io.StringIO(client.get(url, {"format": "csv"}).content.decode())))
    by_smiles = {r["smiles"]: r for r in rows}
    assert by_smiles["CCO"]["domain_BBBP"] == outside["text"]
    assert by_smiles["c1ccc2ccccc2c1"]["domain_BBBP"] == "applicability domain unknown"
    sdf = client.get(url, {"format": "sdf"}).content.decode()
    assert ">  <domain_BBBP>" in sdf and outside["text"] in sdf


def _goal_result(*, beats_train: bool) -> dict:
    row = {"top_10_mean": 0.9, "top_1": 0.95, "intdiv": 0.85, "best": [["CCO", 0.95]]}
    return {
        "status": "done",
        "k": 100,
        "objective": {"qed": 0.5, "sa": 0.25},
        "activity_endpoint": "",
        "predictor": "",
        "temperature": 1.0,
        "seed": 0,
        "rows": {
            "run": {**row, "top_k_mean": 0.812, "n_scored": 1900, "sampled": 2000},
            "train": {
                **row,
                "top_k_mean": 0.8 if beats_train else 0.9,
                "n_scored": 100000,
                "sampled": 100000,
                "source": "MOSES train (1.58M)",
                "seed": 0,
                "cached": False,
            },
            "prior": {
                **row,
                "top_k_mean": 0.7,
                "n_scored": 1500,
                "sampled": 2000,
                "generator": "drugs.generator v1",
            },
        },
        "beats": {"train": beats_train, "prior": True},
        "seconds": 12.0,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("beats_train", [True, False])
def test_run_page_shows_the_goal_directed_comparison(users, done_run, beats_train):
    done_run.result = {**done_run.result, "goal": _goal_result(beats_train=beats_train)}
    done_run.save(update_fields=["result"])
    client = login(users.researcher)
    page = html.unescape(
        client.get(reverse("drugs:run_detail", args=[done_run.pk])).content.decode()
    )
    assert "Goal-directed comparison" in page
    assert "Objective: QED 0.5, synthesisability (SA score mapped to 0–1) 0.25" in page
    for label in (
        "This run (2,000 sampled)",
        "Best 100 of 100,000 from MOSES train (1.58M)",
        "Prior without optimisation (drugs.generator v1)",
    ):
        assert label in page
    assert 'data-goal-row="run"' in page and "0.812" in page and "1,900" in page
    verb = "beats" if beats_train else "does not beat"
    assert (
        f"The run's top-100 mean (0.812) {verb} “Best 100 of 100,000 from MOSES train (1.58M)”"
        in page
    )
    assert "The run's top-100 mean (0.812) beats “Prior without optimisation" in page
    # The chart, with its sentence and data table (chart partial).
    assert 'id="goal-comparison"' in page and "Top-100 mean objective score" in page
    assert 'aria-label="Data table: Goal-directed comparison' in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("goal", "says"),
    [
        ({"status": "no_objective"}, "rewards realism only"),
        ({"status": "sample_run"}, "optimises nothing"),
        (None, "Not computed for this run"),
        ({"status": "failed", "reason": "file gone"}, "could not be computed: file gone"),
    ],
)
def test_run_page_without_an_objective_explains_instead_of_an_empty_table(
    users, done_run, goal, says
):
    if goal is not None:
        done_run.result = {**done_run.result, "goal": goal}
        done_run.save(update_fields=["result"])
    client = login(users.researcher)
    page = client.get(reverse("drugs:run_detail", args=[done_run.pk])).content.decode()
    assert "Goal-directed comparison" in page and says in page
    assert "data-goal-row" not in page and 'id="goal-comparison"' not in page
