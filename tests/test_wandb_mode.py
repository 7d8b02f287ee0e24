"""W&B obeys the user: WANDB_MODE in the environment wins over the default logger.mode, an
explicit logger.mode wins over both, and the run says which it used. A local HTTP server stands in
for W&B: no request reaches it under WANDB_MODE=offline or disabled."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.config import LoggerConfig, LoggerMode
from tests.helpers import fresh_cache, run_train, tiny_overrides


@pytest.mark.parametrize(
    ("mode", "env", "want"),
    [
        ("auto", {}, LoggerMode.online),
        ("auto", {"WANDB_MODE": "offline"}, LoggerMode.offline),
        ("auto", {"WANDB_MODE": "dryrun"}, LoggerMode.offline),
        ("auto", {"WANDB_MODE": "disabled"}, LoggerMode.disabled),
        ("online", {"WANDB_MODE": "offline"}, LoggerMode.online),  # the command line wins
        ("disabled", {"WANDB_MODE": "online"}, LoggerMode.disabled),
    ],
)
def test_the_mode_and_why(mode: str, env: dict, want: LoggerMode) -> None:
    got, why = LoggerConfig(mode=LoggerMode(mode)).resolved_mode(env)
    assert got == want
    assert ("in the environment" in why) == (mode == "auto" and bool(env))


def test_a_bad_wandb_mode_is_one_line_exit_2_and_nothing_left(token_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "bogus")
    with pytest.raises(ValueError, match="WANDB_MODE=bogus in the environment is not a W&B mode"):
        LoggerConfig().check_environment()
    LoggerConfig(mode=LoggerMode.disabled).check_environment()  # nothing reads it then
    args = [*tiny_overrides(fresh_cache(token_cache, tmp_path / "c"), steps=2)]
    proc = run_train([*args, "logger.mode=auto", f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "WANDB_MODE" in ln]
    assert len(lines) == 1 and lines[0].startswith("error: WANDB_MODE=bogus")
    assert not (tmp_path / "run").exists()


class StandIn(BaseHTTPRequestHandler):
    hits: list[str] = []

    def _record(self) -> None:
        StandIn.hits.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_PUT = do_HEAD = _record

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def stand_in():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    StandIn.hits = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("wandb_mode", ["offline", "disabled"])
def test_no_request_reaches_the_server_under_wandb_mode(
    wandb_mode: str, stand_in: str, token_cache: Path, tmp_path: Path
) -> None:
    overrides = [
        o
        for o in tiny_overrides(fresh_cache(token_cache, tmp_path / "cache"), steps=2)
        if not o.startswith("logger.mode=")
    ]
    env = {"WANDB_MODE": wandb_mode, "WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": stand_in}
    run = tmp_path / "run"
    proc = run_train([*overrides, f"hydra.run.dir={run}"], env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"W&B: {wandb_mode} (WANDB_MODE={wandb_mode} in the environment)" in proc.stdout
    assert StandIn.hits == []
    assert (run / "wandb").is_dir() == (wandb_mode == "offline")
