"""Locust users for bench/load.py (run by it; not on its own).

Clinicians and researchers hold sessions bench/load.py created and open the main pages with
a think time between pages; devices post one observation set every few seconds with their
bearer token (12/min each, well under the API's 120/min per-device limit). Every request
carries X-Forwarded-Proto: https, as the hospital's TLS load balancer sets it, so the
production settings' secure cookies and HTTPS redirect behave as deployed.

Input (environment): MEDAI_LOAD_PLAN, a JSON file written by bench/load.py with the users'
session keys, the patients and the device tokens. Output: MEDAI_LOAD_SENT, a JSON file with
the observation sets the devices sent, written when the run stops.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from datetime import UTC, datetime

from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser

PLAN = json.loads(open(os.environ["MEDAI_LOAD_PLAN"]).read())  # noqa: SIM115
_clinicians = itertools.cycle(PLAN["clinicians"])
_researchers = itertools.cycle(PLAN["researchers"])
_devices = itertools.cycle(PLAN["devices"])
SENT = {"sets": 0, "requests": 0}
PROXY = {"X-Forwarded-Proto": "https"}


@events.test_stop.add_listener
def _write_sent(**_: object) -> None:
    with open(os.environ["MEDAI_LOAD_SENT"], "w") as handle:
        json.dump(SENT, handle)


class _Person(FastHttpUser):
    abstract = True
    wait_time = between(2, 8)
    pool: itertools.cycle

    def on_start(self) -> None:
        account = next(self.pool)
        self.patients = account.get("patients", [])
        self.headers = {**PROXY, "Cookie": f"{PLAN['session_cookie']}={account['session']}"}

    def page(self, url: str, name: str) -> None:
        with self.client.get(url, name=name, headers=self.headers, catch_response=True) as r:
            # A redirect (to the sign-in page, say) or a 4xx/5xx is an error for the bench.
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")


class Clinician(_Person):
    fixed_count = PLAN["counts"]["clinicians"]
    pool = _clinicians

    @task(2)
    def home(self) -> None:
        self.page("/", "home")

    @task(3)
    def patient_list(self) -> None:
        self.page("/patients/", "patient list")

    @task(4)
    def patient_page(self) -> None:
        self.page(f"/patients/{random.choice(self.patients)}/", "patient page")

    @task(2)
    def worklist(self) -> None:
        self.page("/diagnosis/worklist/", "worklist")

    @task(2)
    def board(self) -> None:
        self.page("/remote-care/board/", "board")
        # The board refreshes its rows itself every 10 s while it is open.
        self.page("/remote-care/board/rows/", "board rows")

    @task(3)
    def vitals(self) -> None:
        patient = random.choice(self.patients)
        self.page(f"/remote-care/patients/{patient}/", "patient monitoring")
        self.page(
            f"/remote-care/patients/{patient}/vitals/data/?range=24h", "vitals chart data 24h"
        )

    @task(1)
    def population(self) -> None:
        self.page("/remote-care/analytics/", "population")


class Researcher(_Person):
    fixed_count = PLAN["counts"]["researchers"]
    pool = _researchers

    @task(1)
    def home(self) -> None:
        self.page("/", "home")

    @task(3)
    def population(self) -> None:
        self.page("/remote-care/analytics/", "population")

    @task(2)
    def drugs(self) -> None:
        self.page("/drugs/", "drug design")

    @task(1)
    def predictors(self) -> None:
        self.page("/drugs/predictors/", "drug predictors")


class Device(FastHttpUser):
    fixed_count = PLAN["counts"]["devices"]
    wait_time = between(4, 6)

    def on_start(self) -> None:
        self.headers = {**PROXY, "Authorization": f"Bearer {next(_devices)}"}

    @task
    def post_reading(self) -> None:
        if time.time() > PLAN["devices_stop_at"]:
            return  # the run is ending: nothing may be cut off in flight
        body = {
            "observations": [
                {
                    "taken_at": datetime.now(UTC).isoformat(),
                    "heart_rate": random.randint(55, 110),
                    "spo2": random.randint(92, 100),
                    "respiratory_rate": random.randint(12, 24),
                    "temperature": round(random.uniform(36.0, 38.4), 1),
                    "systolic_bp": random.randint(95, 160),
                    "diastolic_bp": random.randint(55, 95),
                    "consciousness": "A",
                    "on_oxygen": False,
                }
            ]
        }
        # Counted before sending: a reading the server never answered is still one sent.
        SENT["sets"] += 1
        SENT["requests"] += 1
        with self.client.post(
            "/remote-care/api/v1/observations/",
            json=body,
            name="device POST observations",
            headers=self.headers,
            catch_response=True,
        ) as r:
            if r.status_code != 201:
                r.failure(f"HTTP {r.status_code}: {(r.text or '')[:120]}")
