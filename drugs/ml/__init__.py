"""Pure RDKit / PyTorch / scikit-learn code for the drugs app (never imports Django).

Modules by role: `datasets` (where the MOSES and MoleculeNet files are), `chem` (SMILES checks,
molecule-file parsing, properties, drawings, similarity search), `metrics` (MOSES metrics and the
published rows), `gan` (SMILES generator pre-trained by maximum likelihood, then trained against a
discriminator with policy gradients, ORGAN-style), `predictors` (property models on Morgan
fingerprints), `space` (2-D chemical-space projection).
"""
