"""Starting with a bad setting or on a busy port: one plain line, its own exit status, nothing loaded first.

``python -m server`` is run as a real process for the two a newcomer meets
first (``MEMDB_PORT=abc``, a second server on a taken port); the wording of
every other setting and address problem is checked in-process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
import uvicorn
from pydantic import ValidationError

from server import __main__ as entry
from server import setting_errors
from server.listen import listen_problem
from server.settings import Settings
from tests.utils.server import ROOT

UNROUTABLE_HOST = "192.0.2.1"  # TEST-NET-1 (RFC 5737): never an address of this machine
START_TIMEOUT = 60


def _memdb(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if not name.upper().startswith("MEMDB_")}
    return subprocess.run(
        [sys.executable, "-m", "server"],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_a_busy_port_is_named_with_how_to_pick_another_before_the_seed_is_read(taken_port: int) -> None:
    # A seed file that does not exist would fail start-up with status 3, had it been read first.
    result = _memdb({"MEMDB_PORT": str(taken_port), "MEMDB_SEED_FILE": "no/such/seed.json"})

    assert result.returncode == entry.EXIT_CANNOT_LISTEN == 4
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"memdb: 127.0.0.1 port {taken_port} is already in use")
    assert "MEMDB_PORT" in line
    assert "--port" in line


def test_an_invalid_port_setting_is_one_line_naming_it_and_what_it_takes() -> None:
    result = _memdb({"MEMDB_PORT": "abc"})

    assert result.returncode == entry.EXIT_USAGE == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == ["memdb: MEMDB_PORT must be a whole number from 0 to 65535"]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """``main`` in-process, with a clean ``MEMDB_*`` environment and Uvicorn replaced by a recorder."""
    for name in list(os.environ):
        if name.upper().startswith("MEMDB_"):
            monkeypatch.delenv(name)
    apps: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: apps.append(app))
    return apps


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"MEMDB_PORT": "70000"}, ["MEMDB_PORT must be a whole number from 0 to 65535"]),
        ({"MEMDB_BCRYPT_ROUNDS": "3"}, ["MEMDB_BCRYPT_ROUNDS must be a whole number from 4 to 31"]),
        ({"MEMDB_QUEUE_SIZE": "0"}, ["MEMDB_QUEUE_SIZE must be a whole number >= 1"]),
        ({"MEMDB_QUEUE_WAIT_SECONDS": "soon"}, ["MEMDB_QUEUE_WAIT_SECONDS must be a number > 0"]),
        ({"MEMDB_LOG_FORMAT": "xml"}, ["MEMDB_LOG_FORMAT must be one of json, text"]),
        ({"memdb_env": "prod"}, ["MEMDB_ENV must be one of development, production"]),
        (
            {"MEMDB_ADMIN_EMAIL": "root", "MEMDB_ADMIN_PASSWORD": "a long passphrase"},
            [
                "MEMDB_ADMIN_EMAIL must be an email address, or unset "
                "(value is not a valid email address: An email address must have an @-sign.)"
            ],
        ),
        (
            {"MEMDB_PORT": "-1", "MEMDB_LOG_LEVEL": "loud"},
            [
                "MEMDB_PORT must be a whole number from 0 to 65535",
                "MEMDB_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
            ],
        ),
        ({"MEMDB_ENV": "production"}, ["MEMDB_JWT_SECRET is required when MEMDB_ENV=production"]),
        ({"MEMDB_ADMIN_EMAIL": "ops@example.com"}, ["set both MEMDB_ADMIN_EMAIL and MEMDB_ADMIN_PASSWORD, or neither"]),
        (
            {"MEMDB_STORE_URL": "redis://127.0.0.1:6379/0", "MEMDB_DATA_DIR": "data"},
            [
                "MEMDB_DATA_DIR cannot be used with MEMDB_STORE_URL: Redis keeps the data and its own persistence"
                " (AOF/RDB); unset one of them"
            ],
        ),
        (
            {"MEMDB_STORE_URL": "redis://127.0.0.1:6379/0", "MEMDB_SNAPSHOT_ON_START": "clean"},
            ["MEMDB_SNAPSHOT_ON_START cannot be used with MEMDB_STORE_URL: Redis has no named snapshots"],
        ),
        (
            {"MEMDB_STORE_URL": "redis://127.0.0.1:6379/0"},
            ["MEMDB_JWT_SECRET is required with MEMDB_STORE_URL: every node must sign tokens alike"],
        ),
    ],
)
def test_every_invalid_setting_is_one_line_naming_the_variable(
    started: list[object],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    expected: list[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(SystemExit) as refused:
        entry.main([])

    assert refused.value.code == entry.EXIT_USAGE
    assert started == []
    assert capsys.readouterr().err.splitlines() == [f"memdb: {line}" for line in expected]


def test_a_rejected_secret_is_never_repeated(
    started: list[object], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEMDB_ENV", "production")
    monkeypatch.setenv("MEMDB_JWT_SECRET", "too-short-but-still-secret")

    with pytest.raises(SystemExit) as refused:
        entry.main([])

    assert refused.value.code == entry.EXIT_USAGE
    error = capsys.readouterr().err
    assert error == "memdb: MEMDB_JWT_SECRET must be at least 32 bytes\n"
    assert "too-short-but-still-secret" not in error


@pytest.mark.parametrize("port", ["70000", "-1", "eighty"])
def test_a_port_option_out_of_range_is_refused_by_the_parser(
    started: list[object], capsys: pytest.CaptureFixture[str], port: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        entry.main(["--port", port])

    assert exit_info.value.code == entry.EXIT_USAGE
    assert started == []
    assert f"argument --port: {port!r} is not a port: a whole number from 0 to 65535" in capsys.readouterr().err


def test_a_busy_port_stops_main_before_the_app_is_served(
    started: list[object], taken_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert entry.main(["--port", str(taken_port)]) == entry.EXIT_CANNOT_LISTEN

    assert started == []
    assert f"port {taken_port} is already in use" in capsys.readouterr().err


def test_a_free_port_is_no_problem(taken_port: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = int(probe.getsockname()[1])

    assert listen_problem("127.0.0.1", free) is None
    assert listen_problem("127.0.0.1", 0) is None


def test_an_address_this_machine_does_not_have_is_named() -> None:
    problem = listen_problem(UNROUTABLE_HOST, 8000)

    assert problem is not None
    assert problem.startswith(f"cannot listen on {UNROUTABLE_HOST} port 8000: ")
    assert "MEMDB_HOST" in problem


def test_a_host_name_that_does_not_resolve_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_name(*_: object, **__: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)

    problem = listen_problem("db.invalid", 8000)

    assert problem == (
        "cannot listen on db.invalid: the address does not resolve (Name or service not known); "
        "set MEMDB_HOST or --host"
    )


@pytest.mark.parametrize(
    ("field", "accepted"),
    [
        ("port", "a whole number from 0 to 65535"),
        ("seed_file", "a file path, or unset"),
        ("jwt_secret", "a secret string, or unset"),
        ("forwarded_allow_ips", "a string, or unset"),
        ("memory_check_seconds", "a number > 0"),
        ("cors_origins", "a comma-separated list"),
    ],
)
def test_what_a_setting_accepts_is_read_from_its_declaration(field: str, accepted: str) -> None:
    assert setting_errors.accepted(Settings.model_fields[field]) == accepted


def test_an_error_with_no_setting_to_name_keeps_its_own_message() -> None:
    with pytest.raises(ValidationError) as error:
        Settings(admin_password="only half of the pair")

    assert setting_errors.describe(error.value, Settings, "MEMDB_") == [
        "set both MEMDB_ADMIN_EMAIL and MEMDB_ADMIN_PASSWORD, or neither"
    ]
