"""Pure PyTorch / numpy image classification for the diagnosis app (never imports Django).

Modules by role: `data` (npz / folder loading, input preparation), `models` (architectures),
`train` (training with validation-only selection and calibration), `metrics` (AUC, calibration,
`Evaluation`), `artifact` (single-file save/load with sha256), `predict` (calibrated predictions,
uncertainty, Grad-CAM, series). `python -m diagnosis.ml` trains from the command line.
"""
