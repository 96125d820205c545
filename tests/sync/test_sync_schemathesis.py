"""Schemathesis against `menwei server run --api-docs` (a real uvicorn on 127.0.0.1): valid and
invalid requests for every operation of the OpenAPI description, bounded in examples and time.
No answer may be a 5xx, every answer carries the server's time, the log holds no traceback."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from menwei.sync.protocol import SERVER_TIME_HEADER
from tests.sync.helpers import free_port, make_committee

schemathesis = pytest.importorskip("schemathesis")

MAX_EXAMPLES = 30  # per operation, mode and auth
TIME_BUDGET = 180.0  # seconds for the whole run


def test_no_server_error_for_anything_the_schema_allows_or_not(tmp_path: Path) -> None:
    home, _ = make_committee(tmp_path / "committee")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    env = {**os.environ, "MENWEI_HOME": str(home.root)}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "menwei",
                "server",
                "run",
                "--port",
                str(port),
                "--api-docs",
                "--auth-failures-per-minute",
                "1000000",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(url + "/v1/health", timeout=1)
                    break
                except httpx.HTTPError:
                    assert proc.poll() is None and time.monotonic() < deadline, "no server"
                    time.sleep(0.1)
            token = subprocess.run(
                [sys.executable, "-m", "menwei", "server", "gate", "add", "东门", "--json"],
                env=env,
                capture_output=True,
                check=True,
                text=True,
            )
            enrollment = json.loads(token.stdout)["token"]
            api_token = "k" * 43
            enrolled = httpx.post(
                url + "/v1/enroll",
                json={"token": enrollment, "api_token": api_token, "public_key": "ab" * 32},
            )
            assert enrolled.status_code == 200, enrolled.text
            run_schemathesis(url, api_token)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    text = log_path.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    assert '" 500' not in text and "Exception in ASGI" not in text


class Run:
    def __init__(self, url: str, api_token: str) -> None:
        self.url = url
        self.api_token = api_token
        self.started = time.monotonic()
        self.calls = 0
        self.failures: list[str] = []

    def check(self, operation: Any, mode: Any, auth: bool) -> None:
        """Up to MAX_EXAMPLES cases of one operation in one generation mode."""

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def one(case: Any) -> None:
            if time.monotonic() - self.started > TIME_BUDGET:
                return
            headers = {"Authorization": f"Bearer {self.api_token}"} if auth else None
            response = case.call(base_url=self.url, headers=headers)
            self.calls += 1
            label = f"{case.method} {case.formatted_path} ({mode.value}, auth={auth})"
            if response.status_code >= 500:
                self.failures.append(f"{label}: {response.status_code} {response.text[:200]}")
            if SERVER_TIME_HEADER.lower() not in {k.lower() for k in response.headers}:
                self.failures.append(f"{label}: no {SERVER_TIME_HEADER}")

        # An operation without parameters has no invalid form (Unsatisfiable).
        with contextlib.suppress(schemathesis.errors.SerializationNotPossible, Unsatisfiable):
            one()


def run_schemathesis(url: str, api_token: str) -> None:
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    run = Run(url, api_token)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 10  # 8 for gates, 2 for committee read tokens
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            for auth in (True, False):
                run.check(operation, mode, auth)
    assert run.calls > 200, run.calls
    assert run.failures == [], run.failures[:10]
