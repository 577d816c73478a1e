"""Pure code shared by every app's ``ml/`` package and pure package: no Django, nothing from
``medai_site`` (whose ``__init__`` starts the Celery app), no clinical app.

It is the one home for what the pure layers of several apps need alike (JSON-safe numbers),
so ``diagnosis/ml``, ``treatment/ml``, ``drugs/ml`` and ``remote_care/ml`` need not import each
other or the platform; ``tests/test_architecture.py`` keeps it pure.
"""
