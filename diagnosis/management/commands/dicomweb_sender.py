"""Senders allowed to store studies over DICOMweb STOW-RS (/dicomweb/studies).

    python manage.py dicomweb_sender issue "Radiology PACS"   # prints the token, once
    python manage.py dicomweb_sender list
    python manage.py dicomweb_sender revoke "Radiology PACS"

Hospital IT may do the same in the admin (DICOMweb senders). Only a hash of a token is kept.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from diagnosis.pacs.selectors import dicomweb_sender_named, dicomweb_senders
from diagnosis.pacs.services import SenderRefused, dicomweb_sender_issue, dicomweb_sender_revoke


class Command(BaseCommand):
    help = "Issue, list or revoke DICOMweb (STOW-RS) sender tokens."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("issue", help="register a sender and print its token once").add_argument(
            "name"
        )
        sub.add_parser("revoke", help="revoke a sender's token").add_argument("name")
        sub.add_parser("list", help="list the senders")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "issue":
            try:
                issued = dicomweb_sender_issue(name=options["name"])
            except SenderRefused as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"Sender: {issued.sender.name}")
            self.stdout.write(f"Token (shown once, keep it in the PACS only): {issued.token}")
        elif action == "revoke":
            sender = dicomweb_sender_named(options["name"])
            if sender is None:
                raise CommandError(f"No sender is named {options['name']!r}.")
            dicomweb_sender_revoke(sender=sender)
            self.stdout.write(f"Revoked: {sender.name}")
        else:
            for sender in dicomweb_senders():
                state = "active" if sender.active else f"revoked {sender.revoked_at:%Y-%m-%d}"
                used = f"{sender.last_used_at:%Y-%m-%d %H:%M}" if sender.last_used_at else "never"
                self.stdout.write(
                    f"{sender.name}\t{sender.token_prefix}\t{state}\tlast used {used}"
                )
