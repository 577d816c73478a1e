"""Messaging between patients and care teams: threads, photos and the patient portal."""
