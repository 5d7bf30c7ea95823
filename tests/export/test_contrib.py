"""contrib/prometheus: the example Prometheus config and alert rules pass
promtool (and their unit tests), and the rules and the Grafana dashboard
use only names the monitor serves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from monitor.config import parse_config
from monitor.engine.host import EngineHost
from monitor.export import MetricsSink

CONTRIB = Path(__file__).resolve().parents[2] / "contrib" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install prometheus)")
OURS = re.compile(r"\b(?:probe|monitor)_[a-z_]+\b")


def served_names() -> set[str]:
    """Every series name /metrics can carry, from the real exposition's TYPE lines."""
    config = parse_config('[settings]\nmetrics = "127.0.0.1:9"\n')
    text = b"".join(MetricsSink(EngineHost(config, stop_on=())).exposition()).decode()
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            suffixes = {"histogram": ("_bucket", "_sum", "_count"),
                        "summary": ("_sum", "_count")}.get(kind, ())
            names.update(name + suffix for suffix in suffixes)
    return names


def promtool(*args: str) -> str:
    proc = subprocess.run([PROMTOOL, *args], cwd=CONTRIB, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@needs_promtool
def test_the_example_config_and_rules_are_valid_and_the_rules_unit_tests_pass():
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")
    assert "SUCCESS: 7 rules found" in promtool("check", "rules", "alerts.yml")
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yml")


def test_rules_and_dashboard_use_only_names_the_monitor_serves():
    served = served_names()
    assert {"probe_success", "probe_http_duration_seconds", "monitor_state",
            "monitor_phase_duration_seconds_bucket", "monitor_engine_lag_seconds"} <= served
    rules = set(OURS.findall((CONTRIB / "alerts.yml").read_text()))
    dashboard = json.loads((CONTRIB / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    exprs += [var["query"]["query"] for var in dashboard["templating"]["list"]
              if isinstance(var.get("query"), dict)]
    used = set(OURS.findall(" ".join(exprs)))
    assert rules - served == set()
    assert used - served == set()
    assert len(used) >= 12   # the dashboard shows most of what is served


def test_dashboard_panels_have_unique_ids_and_sane_layout():
    dashboard = json.loads((CONTRIB / "grafana-dashboard.json").read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and panel["targets"]
