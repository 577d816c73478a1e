"""The DICOM C-STORE receiver: the hospital's PACS and modalities send studies here.

    python manage.py dicom_listen --ae-title MEDAI --port 11112 --allow ORTHANC --allow CT1
    python manage.py dicom_listen --tls-cert medai.crt --tls-key medai.key --tls-ca hospital-ca.crt

Verification (C-ECHO) and storage of image SOP classes. Each study is matched to a patient
before de-identification and filed through the browser upload's intake, or put in the
unmatched-studies inbox. Defaults come from MEDAI_DICOM_AE_TITLE, MEDAI_DICOM_PORT,
MEDAI_DICOM_BIND and MEDAI_DICOM_ALLOW (comma-separated).

With --tls-cert and --tls-key (MEDAI_DICOM_TLS_CERT, MEDAI_DICOM_TLS_KEY; PEM files) the port
speaks DICOM over TLS only; with --tls-ca (MEDAI_DICOM_TLS_CA) every sender must also present
a client certificate that CA signed.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Receive DICOM studies (C-STORE) and verification (C-ECHO) on a TCP port."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--ae-title", default=settings.MEDAI_DICOM_AE_TITLE)
        parser.add_argument("--port", type=int, default=settings.MEDAI_DICOM_PORT)
        parser.add_argument(
            "--bind",
            default=os.environ.get("MEDAI_DICOM_BIND", "127.0.0.1"),
            help="address to listen on (default 127.0.0.1; 0.0.0.0 for the hospital network)",
        )
        parser.add_argument(
            "--allow",
            action="append",
            metavar="CALLING_AE",
            help="a calling AE title to accept (repeat; default MEDAI_DICOM_ALLOW, else any)",
        )

        parser.add_argument(
            "--tls-cert",
            default=settings.MEDAI_DICOM_TLS_CERT,
            help="PEM certificate: listen with TLS only (default MEDAI_DICOM_TLS_CERT)",
        )
        parser.add_argument(
            "--tls-key",
            default=settings.MEDAI_DICOM_TLS_KEY,
            help="PEM private key of --tls-cert (default MEDAI_DICOM_TLS_KEY)",
        )
        parser.add_argument(
            "--tls-ca",
            default=settings.MEDAI_DICOM_TLS_CA,
            help="PEM CA: require client certificates it signed (default MEDAI_DICOM_TLS_CA)",
        )

    def _ssl_context(self, options: dict[str, Any]) -> Any:
        from diagnosis.pacs.receiver import TlsConfigError, tls_server_context

        cert, key, ca = (options[k] or "" for k in ("tls_cert", "tls_key", "tls_ca"))
        if not (cert or key or ca):
            return None
        if not (cert and key):
            raise CommandError("--tls-cert and --tls-key go together (and --tls-ca needs both).")
        try:
            return tls_server_context(cert=cert, key=key, ca=ca)
        except TlsConfigError as exc:
            raise CommandError(str(exc)) from None

    def handle(self, *args: Any, **options: Any) -> None:
        from diagnosis.pacs.receiver import Receiver

        title = options["ae_title"].strip()
        if not title or len(title) > 16 or not title.isascii() or "\\" in title:
            raise CommandError("--ae-title must be 1 to 16 ASCII characters, without '\\'.")
        if not 0 < options["port"] < 65536:
            raise CommandError("--port must be between 1 and 65535.")
        allow = options["allow"] if options["allow"] is not None else settings.MEDAI_DICOM_ALLOW
        context = self._ssl_context(options)
        receiver = Receiver(ae_title=title, allow=allow, ssl_context=context)
        who = ", ".join(allow) if allow else "any calling AE title"
        tls = ""
        if context is not None:
            tls = ", TLS" + (" with client certificates" if options["tls_ca"] else "")
        self.stdout.write(
            f"DICOM receiver {title} on {options['bind']}:{options['port']} (accepting {who}{tls})"
        )
        try:
            receiver.start(host=options["bind"], port=options["port"], block=True)
        except OSError as exc:
            raise CommandError(f"Cannot listen on port {options['port']}: {exc}") from exc
        except KeyboardInterrupt:
            receiver.stop()
