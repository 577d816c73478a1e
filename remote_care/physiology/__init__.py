"""Vital-sign physiology, pure (no Django): NEWS2 scoring and alert policy, beat detection and
heart-rate variability, down-sampling."""
