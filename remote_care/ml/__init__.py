"""Remote-care machine learning (pure PyTorch / scikit-learn; never imports Django).

Deterioration risk from vital-sign sequences (PhysioNet/CinC 2012 set A, in-hospital death):

* ``physionet``: ``load_set_a(tar, outcomes, cache_dir=)`` -> ``list[Stay]``;
  ``stay_from_vitals(readings, start=, age=, sex=)`` turns MedAI ``VitalSigns`` rows into a
  ``Stay``; ``stratified_split(labels, seed=2012)``.
* ``features``: hourly masked inputs; specs ``ALL`` (37 variables) and ``VITALS`` (what a MedAI
  device sends; the deployed one).
* ``train.train_risk_model(train, val, TrainConfig(spec=...), on_epoch=...)`` -> ``RiskModel``.
* ``model``: ``RiskModel.predict_proba(stays)``, ``.risk_trajectory(stay)``;
  ``risk_from_vitals(model, readings, end=, age=, sex=)`` -> ``RiskTrajectory`` for a live
  patient; ``save_artifact`` / ``load_artifact`` (``torch.load(weights_only=True)``);
  ``predict(model_or_path, stays)``.
* ``baselines``: NEWS2 from PhysioNet vitals (``news2_series``, ``worst_news2``), SAPS-I,
  summary-feature GBM and logistic models.
* ``evaluate``: AUROC/AUPRC/Brier/ECE, reliability bins, operating points at an alert rate.
* ``report.compare_on_test``: every score on the same held-out patients.

Disease progression (``progression``): diabetes and pbcseq comparisons with conformal
intervals; ``forecast_next`` / ``forecast_trajectory`` for one patient.

Command line: ``python -m remote_care.ml {train-physionet,evaluate,progression}``.
"""
