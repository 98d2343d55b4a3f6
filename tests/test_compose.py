"""docker-compose.yml cannot run here (no Docker engine); it must stay valid
and name what the code expects."""

from __future__ import annotations

import re

import yaml

from conftest import ROOT
from omnivue.envelope import ALL_TOPICS


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _env(service: dict) -> dict:
    env = service.get("environment") or {}
    return env if isinstance(env, dict) else dict(item.split("=", 1) for item in env)


def test_services_of_the_production_shape():
    services = _compose()["services"]
    assert {"kafka", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "simulator"} <= set(services)
    kafka = _env(services["kafka"])
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"] and "broker" in kafka["KAFKA_PROCESS_ROLES"]  # KRaft
    assert services["simulator"].get("restart") == "no"
    assert services["simulator"]["command"][:2] == ["omnivue", "simulate"]


def test_omnivue_containers_use_the_same_settings_as_the_local_run():
    services = _compose()["services"]
    advertised = _env(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "simulator", "topics"):
        env = _env(services[name])
        assert env["OMNIVUE_KAFKA_BOOTSTRAP"] in advertised, name
        assert env["OMNIVUE_HOME"].startswith("/"), name
        assert env["SODA_CORE_TELEMETRY_ENABLED"] == "false"
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor"):
        env = _env(services[name])
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/omnivue/dags"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
        assert services[name]["command"][:2] == ["airflow", {"airflow-apiserver": "api-server",
                                                             "airflow-scheduler": "scheduler",
                                                             "airflow-dag-processor": "dag-processor"}[name]]


def test_the_code_and_compose_agree_on_variable_names():
    from omnivue import config

    source = (ROOT / "ingest" / "omnivue" / "config.py").read_text()
    text = (ROOT / "docker-compose.yml").read_text()
    for var in set(re.findall(r"OMNIVUE_[A-Z_]+", text)):
        assert var in source or var in (ROOT / "ingest" / "omnivue" / "kafka_io.py").read_text(), var
    assert config.DEFAULT_HOME and ALL_TOPICS
