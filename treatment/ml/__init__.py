"""Personalised treatment-effect estimation from randomised-trial data (pure Python, no Django).

trials: declarative trial definitions and the generic loader; models: survival and outcome
models with treatment as an input, bootstrap refits and byte bundles; effects: one patient's
(or many patients') effect of each arm; explain: Shapley explanations and model facts;
evaluate: held-out metrics, policy values, heterogeneity and Qini; genomics: gene-expression
prognosis on scikit-survival's breast-cancer cohort.
"""
