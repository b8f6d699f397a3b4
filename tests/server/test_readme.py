"""README.md's "Try it" commands, run with bash and curl against a live server, so they cannot rot.

The ```sh blocks of the section are split into complete shell commands (continuation lines
and multi-line ``$(...)`` joined, as bash itself decides) and run in order in one bash
process, with ``pipefail``, against ``python -m server`` loaded with the sample data. The
README's own base URL, ``http://127.0.0.1:8000``, is pointed at the live server (both by
rewriting it and through ``BASE``). Every command must exit 0; every bare ``curl`` must print a
success envelope; every ``NAME=$(...)`` must capture something. Every page the README names on
that address (``http://127.0.0.1:8000/…``) must answer ``200`` with no token, the index ``/``
among them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import httpx
import pytest

from tests.utils.server import ROOT, running_server

README = ROOT / "README.md"
README_BASE = "http://127.0.0.1:8000"
MARKER = "@@memdb-readme-step"
STEP_END = re.compile(rf"\n?{MARKER} (\d+) (\d+)@@\n")
ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=")
RUN_TIMEOUT_SECONDS = 60


def _tools() -> tuple[str, str]:
    bash, curl = shutil.which("bash"), shutil.which("curl")
    if bash is None or curl is None:
        missing = " and ".join(name for name, path in (("bash", bash), ("curl", curl)) if path is None)
        pytest.fail(
            f"the README test needs {missing} on PATH, as the README's own commands do; install it", pytrace=False
        )
    return bash, curl


def _try_it_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Try it\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section is not None, "README.md has no '## Try it' section"
    blocks = re.findall(r"^```sh\n(.*?)^```", section.group(1), re.S | re.M)
    assert blocks, "README.md's 'Try it' section has no ```sh blocks"
    return blocks


def _commands(blocks: list[str], bash: str) -> list[str]:
    """Each complete command, in order; bash -n says when the lines gathered so far make one."""
    commands: list[str] = []
    pending: list[str] = []
    for block in blocks:
        for line in block.splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending.append(line)
            chunk = "\n".join(pending)
            if chunk.endswith("\\"):
                continue
            if subprocess.run([bash, "-n", "-c", chunk], capture_output=True, check=False).returncode == 0:
                commands.append(chunk)
                pending = []
        assert not pending, "an incomplete command ends a ```sh block of README.md:\n" + "\n".join(pending)
    return commands


def _script(commands: list[str]) -> str:
    """Run the commands in order, each followed by a marker with its exit status; stop at the first failure."""
    lines = ["set -o pipefail"]
    for number, command in enumerate(commands):
        lines.append(command)
        lines.append("status=$?")
        name = ASSIGNMENT.match(command)
        if name and "$(" in command:
            lines.append(f'printf "%s" "${name.group(1)}"')  # show what was captured
        lines.append(f'printf "\\n{MARKER} {number} %d@@\\n" "$status"')
        lines.append('[ "$status" -eq 0 ] || exit "$status"')
    return "\n".join(lines) + "\n"


def _run(script: str, bash: str, base: str) -> tuple[dict[int, tuple[int, str]], str]:
    """Run the script; answer {step: (exit status, output)} and bash's stderr."""
    bin_dir = os.path.dirname(sys.executable)  # python3 there is the project's interpreter
    env = {
        **os.environ,
        "BASE": base,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    result = subprocess.run(
        [bash, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    steps: dict[int, tuple[int, str]] = {}
    position = 0
    for match in STEP_END.finditer(result.stdout):
        steps[int(match.group(1))] = (int(match.group(2)), result.stdout[position : match.start()].strip())
        position = match.end()
    return steps, result.stderr


def _success_envelope(output: str, command: str) -> object:
    try:
        document = json.loads(output)
    except json.JSONDecodeError:
        pytest.fail(f"README command did not print JSON:\n{command}\n--- output:\n{output}")
    assert isinstance(document, dict), f"README command printed {document!r}:\n{command}"
    assert document.get("status") == "success", f"README command did not succeed:\n{command}\n--- output:\n{output}"
    return document.get("data")


def test_readme_try_it_commands_work_against_a_live_server() -> None:
    bash, _ = _tools()
    commands = _commands(_try_it_blocks(), bash)
    joined = "\n".join(commands)
    for route in ("/auth/token", "/users", "/orders"):
        assert route in joined, f"the README's 'Try it' no longer shows {route}"
    user_orders = re.compile(r"/users/\$\{?\w+\}?/orders")
    order_user = re.compile(r"/orders/\$\{?\w+\}?/user\b")
    assert user_orders.search(joined), "the README's 'Try it' no longer shows GET /users/{id}/orders"
    assert order_user.search(joined), "the README's 'Try it' no longer shows GET /orders/{id}/user"

    pages = sorted(set(re.findall(rf"{re.escape(README_BASE)}(/[^\s>)`]*)", README.read_text(encoding="utf-8"))))
    assert "/" in pages, "the README no longer points at the index, http://127.0.0.1:8000/"
    with running_server({"MEMDB_SEED_FILE": "data/sample.json"}) as base:
        script = _script([command.replace(README_BASE, base) for command in commands])
        steps, stderr = _run(script, bash, base)
        answers = {page: httpx.get(f"{base}{page}", timeout=10).status_code for page in pages}

    assert answers == dict.fromkeys(pages, 200), "every page the README names must answer without a token"

    joins = 0
    for number, command in enumerate(commands):
        assert number in steps, f"README command never ran (an earlier one stopped the shell?):\n{command}\n{stderr}"
        status, output = steps[number]
        assert status == 0, f"README command exited {status}:\n{command}\n--- output:\n{output}\n--- stderr:\n{stderr}"
        name = ASSIGNMENT.match(command)
        if name and "$(" in command:
            assert output, f"README command left ${name.group(1)} empty:\n{command}\n--- stderr:\n{stderr}"
        elif command.lstrip().startswith("curl"):
            data = _success_envelope(output, command)
            if user_orders.search(command) or order_user.search(command):
                assert data, f"the README's join printed no data:\n{command}\n--- output:\n{output}"
                joins += 1
    assert joins >= 2
