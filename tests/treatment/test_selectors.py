"""Pre-filling the assessment form from a patient record (no database)."""

from __future__ import annotations

from treatment.ml.trials import TRIALS
from treatment.selectors import prefill_from_facts


def test_prefill_matches_levels_whatever_the_record_stored():
    facts = {"age": 44, "hemo": 1.0, "gender": "0", "race": None, "str2": "yes", "other": 3}
    initial = prefill_from_facts(TRIALS["actg175"], facts)
    # 1.0 and "0" select the 1/0 choices; blanks and unmatched values are left for the clinician.
    assert initial == {"age": 44, "hemo": "1", "gender": "0"}


def test_prefill_gbsg2_categories_from_a_demo_record():
    facts = {"dataset": "GBSG2", "menostat": "Post", "tgrade": "III", "horTh": "yes"}
    assert prefill_from_facts(TRIALS["gbsg2"], facts) == {"menostat": "Post", "tgrade": "III"}
