"""Forms of messaging: a message (text and an optional photo), a new thread, a portal invitation."""

from __future__ import annotations

from django import forms

from medai_site.core.uploads import upload_size_problem
from remote_care.messaging.photos import MAX_PHOTO_BYTES
from remote_care.messaging.services import MAX_MESSAGE_CHARS


class MessageForm(forms.Form):
    body = forms.CharField(
        label="Message",
        required=False,
        max_length=MAX_MESSAGE_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    photo = forms.FileField(
        required=False, help_text="Optional: a JPEG or PNG photo (at most 15 MB)."
    )

    def clean_photo(self):
        photo = self.cleaned_data.get("photo")
        if photo and (
            problem := upload_size_problem(photo.size, cap=MAX_PHOTO_BYTES, noun="photo")
        ):
            raise forms.ValidationError(problem)
        return photo

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not cleaned.get("body", "").strip() and not cleaned.get("photo"):
            raise forms.ValidationError("Write a message or attach a photo.")
        return cleaned

    def photo_bytes(self) -> tuple[bytes | None, str]:
        photo = self.cleaned_data.get("photo")
        if not photo:
            return None, ""
        return photo.read(MAX_PHOTO_BYTES + 1), photo.name or "photo"


class ThreadForm(MessageForm):
    subject = forms.CharField(max_length=200)

    field_order = ["subject", "body", "photo"]


class PortalInviteForm(forms.Form):
    username = forms.SlugField(
        max_length=150, help_text="The patient signs in with this (letters, digits, - and _)."
    )
    email = forms.EmailField(
        required=False, help_text="Optional: the sign-in link is also e-mailed here."
    )
