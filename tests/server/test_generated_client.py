"""A client generated from the served OpenAPI document works against the real server.

openapi-python-client (pinned in the dev extra) builds a package from
``/openapi.json`` of a running ``python -m server``; the test imports it and
uses only its generated functions and models to sign up, log in (with the JSON
body and with the OAuth2 form), create an order and find it by a filter, so the
document is proven usable by the tools people point at it.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.utils.server import running_server

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PACKAGE = "memdb_client"


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    with running_server({"MEMDB_RATE_LIMIT_PER_MINUTE": "0"}) as base:
        yield base


@pytest.fixture(scope="module")
def client_package(served: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModuleType]]:
    where = tmp_path_factory.mktemp("generated")
    document = where / "openapi.json"
    document.write_bytes(httpx.get(f"{served}/openapi.json").content)
    environment = {**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run(
        [str(GENERATOR), "generate", "--path", str(document), "--meta", "none", "--output-path", str(where / PACKAGE)],
        check=True,
        capture_output=True,
        env=environment,
        timeout=120,
    )
    sys.path.insert(0, str(where))
    try:
        names = [
            "client",
            "api.users.create_user",
            "api.auth.login",
            "api.auth.me",
            "api.orders.create_order",
            "api.orders.list_orders",
            "models",
        ]
        yield {name: importlib.import_module(f"{PACKAGE}.{name}") for name in names}
    finally:
        sys.path.remove(str(where))
        for module in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[module]


def test_the_generated_client_signs_up_logs_in_creates_and_lists_orders(
    served: str, client_package: dict[str, Any]
) -> None:
    models = client_package["models"]
    with client_package["client"].Client(base_url=served) as anonymous:
        token = _sign_up_and_log_in(client_package, models, anonymous)
    with client_package["client"].AuthenticatedClient(base_url=served, token=token) as session:
        _create_and_list(client_package, models, session)


def _sign_up_and_log_in(client_package: dict[str, Any], models: Any, anonymous: Any) -> str:
    signed_up = client_package["api.users.create_user"].sync_detailed(
        client=anonymous,
        body=models.UserCreate(email="grace@example.com", full_name="Grace Hopper", password="cobol-1959-rocks"),
    )
    assert signed_up.status_code == 201
    user = signed_up.parsed.data
    assert signed_up.headers["location"].endswith(f"/users/{user.id}")

    login = client_package["api.auth.login"]
    as_json = login.sync(client=anonymous, body=models.LoginJsonLoginRequest("grace@example.com", "cobol-1959-rocks"))
    as_form = login.sync(client=anonymous, body=models.LoginDataLoginForm("grace@example.com", "cobol-1959-rocks"))
    assert as_json.data.token_type == as_form.data.token_type == "bearer"
    return str(as_json.data.access_token)


def _create_and_list(client_package: dict[str, Any], models: Any, session: Any) -> None:
    user = client_package["api.auth.me"].sync(client=session).data

    created = client_package["api.orders.create_order"].sync(
        client=session,
        body=models.OrderCreate(user_id=user.id, product_name="Compiler manual", quantity=2, total_price="24.50"),
    )
    assert created.data.user.email == "grace@example.com"
    assert created.data.total_price == "24.50"

    listed = client_package["api.orders.list_orders"].sync(
        client=session, total_price_gte=20, product_name_contains="MANUAL"
    )
    assert [order.id for order in listed.data] == [created.data.id]
    assert listed.meta.total == 1
    nothing = client_package["api.orders.list_orders"].sync(client=session, total_price_gt=24.5)
    assert nothing.data == []


def test_the_generated_client_reads_errors_as_the_envelope(served: str, client_package: dict[str, Any]) -> None:
    with client_package["client"].Client(base_url=served) as anonymous:
        refused = client_package["api.auth.login"].sync(
            client=anonymous,
            body=client_package["models"].LoginJsonLoginRequest("nobody@example.com", "wrong-password"),
        )

    assert refused.status == "error"
    assert refused.error.code == "INVALID_CREDENTIALS"
