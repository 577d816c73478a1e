"""drugs rows for tests, made directly (no data set file imported, no generator trained)."""

from __future__ import annotations

import factory

from drugs.models import DesignRun, GeneratedMolecule, MoleculeDataset
from tests.platform.factories import UserFactory


class MoleculeDatasetFactory(factory.django.DjangoModelFactory):
    """A data set row marked ready (no molecule file unless a test stores one)."""

    class Meta:
        model = MoleculeDataset

    name = factory.Sequence(lambda n: f"molecules {n}")
    status = MoleculeDataset.Status.READY


class DesignRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DesignRun

    name = factory.Sequence(lambda n: f"run {n}")
    dataset = factory.SubFactory(MoleculeDatasetFactory)
    created_by = factory.SubFactory(UserFactory)


class GeneratedMoleculeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GeneratedMolecule

    run = factory.SubFactory(DesignRunFactory)
    smiles = "CCO"
