"""schemathesis hooks for scripts/schemathesis (loaded through .ci/schemathesis.toml).

The run acts as one admin (``MEMDB_FUZZ_USER_ID``), logged in through the API. Two things no schema
can promise are arranged here, and nothing else is touched:

* An order's ``user_id`` must name a user that exists when the request arrives (the contract answers
  422 otherwise, naming ``body.user_id``). Schema-valid order bodies are sent for the run's admin,
  who always exists; negative cases are left as generated.
* The run must not lock itself out: schemathesis reuses ids it has seen in answers, and a ``PATCH``
  of its own admin (a new password ends every session and the next login fails) or a ``DELETE``
  would turn every later request into a 401. Those two are aimed at an id that names nobody (404).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import schemathesis

ORDER_WRITES = frozenset({"create_order", "update_order"})
SELF_HARM = frozenset({"update_user", "delete_user"})


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    admin = os.environ["MEMDB_FUZZ_USER_ID"]
    operation = case.operation.definition.raw.get("operationId")
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if operation in ORDER_WRITES and positive and isinstance(case.body, dict) and "user_id" in case.body:
        case.body["user_id"] = admin
    if operation in SELF_HARM and str(case.path_parameters.get("user_id")) == admin:
        case.path_parameters["user_id"] = str(uuid.uuid4())
