"""The form that registers a device to a patient."""

from __future__ import annotations

from django import forms


class DeviceForm(forms.Form):
    label = forms.CharField(max_length=100, help_text="e.g. 'Home kit: oximeter + BP cuff'.")
