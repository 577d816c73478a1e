"""Devices: the token API, FHIR, waveforms and the ingest of their readings."""
