"""The command line: help everywhere, one readable line for bad input."""

from __future__ import annotations

import os
import time

import pytest

from conftest import ROOT, run_cli

COMMANDS = ["broker", "simulate", "ingest", "run", "verify", "publish", "query", "demo", "deadletter", "webhook",
            "audit", "subject", "alerts"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    proc = run_cli(command, "--help")
    assert proc.returncode == 0
    assert "usage: omnivue" in proc.stdout and len(proc.stdout.splitlines()) > 3


@pytest.mark.parametrize("args, words", [
    (["simulate", "--people", "many"], "--people"),
    (["simulate", "--people", "0"], "at least 1"),
    (["simulate"], "--people"),
    (["broker", "restart"], "invalid choice"),
    (["frobnicate"], "invalid choice"),
    (["ingest", "--batch-size", "-5"], "--batch-size"),
    (["simulate", "--people", "2", "--bad-rate", "inf"], "finite"),
    (["simulate", "--people", "2", "--bad-rate", "2"], "between 0 and 1"),
    (["simulate", "--people", "2", "--dup-rate", "nan"], "finite"),
    (["ingest", "--max-seconds", "nan"], "finite"),
])
def test_bad_arguments_give_one_readable_line(args, words):
    proc = run_cli(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("omnivue") and words in lines[0]
    assert "Traceback" not in proc.stderr


def test_query_before_anything_was_published(omnivue_env):
    proc = run_cli("query", "select 1", env=omnivue_env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("omnivue: error:")
    assert "does not exist yet" in proc.stderr and "Traceback" not in proc.stderr


def test_broker_lifecycle(omnivue_env):
    assert run_cli("broker", "status", env=omnivue_env).returncode == 3
    started = run_cli("broker", "start", env=omnivue_env)
    try:
        assert started.returncode == 0, started.stderr
        again = run_cli("broker", "start", env=omnivue_env)  # idempotent
        assert again.returncode == 0
        status = run_cli("broker", "status", env=omnivue_env)
        assert status.returncode == 0
        for topic in ("interactions.social[4]", "interactions.email[4]", "interactions.mobile[4]", "consent[4]",
                      "identity[4]", "alerts[1]"):
            assert topic in status.stdout
    finally:
        assert run_cli("broker", "stop", env=omnivue_env).returncode == 0
    assert run_cli("broker", "status", env=omnivue_env).returncode == 3


def test_broker_refuses_a_remote_address(omnivue_env):
    proc = run_cli("broker", "start", env={**omnivue_env, "OMNIVUE_KAFKA_BOOTSTRAP": "kafka.internal:9092"})
    assert proc.returncode == 1
    assert "not a loopback address" in proc.stderr and "Traceback" not in proc.stderr


def test_run_without_a_broker_is_one_clear_error(omnivue_env):
    proc = run_cli("run", env=omnivue_env)
    assert proc.returncode == 1
    assert "no Kafka broker answers" in proc.stderr and "Traceback" not in proc.stderr


def test_simulate_without_a_broker_says_so_at_once(omnivue_env):
    # kafka-python alone waits 30 s in silence before it gives up on the bootstrap servers
    started = time.monotonic()
    proc = run_cli("simulate", "--people", "3", "-q", env=omnivue_env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("omnivue: error: no Kafka broker answers")
    assert time.monotonic() - started < 15


def _write_to_a_full_disk(kind: str) -> None:
    """A real 'disk full' from the library itself: on Linux every write to /dev/full fails with ENOSPC."""
    if kind == "duckdb":
        import duckdb

        duckdb.connect().execute("copy (select range from range(100000)) to '/dev/full' (format csv)")
    else:  # what Airflow's SQLite metadata database raises (a demo on a full disk met it)
        import sqlite3

        con = sqlite3.connect("/dev/full")
        con.execute("create table t (x)")
        con.commit()


@pytest.mark.parametrize("kind", ["duckdb", "sqlite"])
def test_a_full_disk_is_one_readable_line(kind, monkeypatch, capsys):
    from omnivue import cli

    def command(args):
        try:
            _write_to_a_full_disk(kind)
        except Exception as exc:  # wrapped, as SQLAlchemy or dbt wrap it
            raise RuntimeError("the step failed") from exc
        return 0

    monkeypatch.setattr(cli, "cmd_simulate", command)
    assert cli.main(["simulate", "--people", "1"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("omnivue: error: the disk is full")
    assert ("No space left on device" if kind == "duckdb" else "database or disk is full") in lines[0]


def test_any_other_failure_keeps_its_traceback(monkeypatch):
    from omnivue import cli

    def command(args):
        raise ValueError("a bug")

    monkeypatch.setattr(cli, "cmd_simulate", command)
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["simulate", "--people", "1"])


def test_verify_before_the_first_run_says_so_in_one_line(omnivue_env):
    proc = run_cli("verify", env=omnivue_env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr
    assert "nothing to verify yet" in proc.stderr and "omnivue run" in proc.stderr
    assert "Traceback" not in proc.stderr and "Catalog Error" not in proc.stderr + proc.stdout


def test_publish_follows_the_latest_verification(omnivue_env):
    # write, audit, publish: `omnivue publish` alone must not publish marts the latest verification rejected
    from datetime import datetime, timezone
    from pathlib import Path

    from omnivue.config import load_settings
    from omnivue.contract_checks import CheckResult, record_results

    proc = run_cli("publish", env=omnivue_env)
    assert proc.returncode == 1 and "nothing to publish yet" in proc.stderr and "Traceback" not in proc.stderr
    settings = load_settings()
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    failed = CheckResult("customer_360", "customer_360", "n_channels: No invalid values", "invalid", "n_channels",
                         "failed", 2.0, True)
    record_results(settings, "manual__t1", datetime.now(timezone.utc), [failed])
    proc = run_cli("publish", env=omnivue_env)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert "publish blocked" in proc.stderr and "customer_360 / n_channels: No invalid values" in proc.stderr
    assert not Path(settings.published).exists()


def test_one_pipeline_run_at_a_time(omnivue_env):
    # two runs would share the consumer group's partitions and neither ingest would ever be caught up
    from omnivue.config import load_settings
    from omnivue.pipeline import RunInProgress, single_run

    settings = load_settings()
    with single_run(settings):
        with pytest.raises(RunInProgress, match="another pipeline run .* in progress"):
            with single_run(settings):
                pass
    with single_run(settings):  # released with the first run
        pass


@pytest.mark.parametrize("command", [["simulate", "--people", "2"], ["ingest", "--until-caught-up"]])
def test_an_unknown_default_phone_region_is_one_line_before_anything_runs(omnivue_env, command):
    # a region phonenumbers does not know dead-lettered every national phone number (consent events too)
    proc = run_cli(*command, env={**omnivue_env, "OMNIVUE_DEFAULT_PHONE_REGION": "France"})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["omnivue: error: OMNIVUE_DEFAULT_PHONE_REGION='France' is not an ISO "
                                                "3166 region code phonenumbers knows (e.g. FR, US, GB)"]


def test_empty_settings_mean_the_defaults(monkeypatch):
    from omnivue.config import DEFAULT_BOOTSTRAP, load_settings
    from omnivue.identifiers import check_default_region

    monkeypatch.setenv("OMNIVUE_KAFKA_BOOTSTRAP", "")
    monkeypatch.setenv("OMNIVUE_DEFAULT_PHONE_REGION", "")
    assert load_settings().bootstrap == DEFAULT_BOOTSTRAP
    assert check_default_region() == "FR"


def test_sigterm_stops_a_command_in_one_line(omnivue_env):
    """SIGTERM killed any command but `run` silently (Python's default: no message, no `finally`)."""
    import signal
    import subprocess
    import sys
    import time

    code = ("import sys, time; from omnivue import cli; "
            "cli.cmd_simulate = lambda args: (print('ready', flush=True), time.sleep(60)); "
            "sys.exit(cli.main(['simulate', '--people', '1']))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **omnivue_env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert err.strip().splitlines() == ["omnivue: interrupted (SIGTERM)"]
