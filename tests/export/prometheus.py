"""A real Prometheus (Debian's package) for the tests: on loopback, scraping
every second into a temporary storage directory, queried over its HTTP API.
Nothing is installed here: without the binary the tests skip and say so."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.export.helpers import free_port

BINARY = shutil.which("prometheus")
MISSING = ("prometheus is not installed (Debian: apt-get install prometheus); these tests "
           "scrape a running monitor with a real one")


class Prometheus:
    def __init__(self, workdir: Path, scrape: list[int], rule_files: list[Path] = ()) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.log = workdir / "prometheus.log"
        targets = ", ".join(f'"127.0.0.1:{port}"' for port in scrape)
        rules = "".join(f"  - {path}\n" for path in rule_files)
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            + (f"rule_files:\n{rules}" if rules else "")
            + f"scrape_configs:\n  - job_name: monitor\n    static_configs:\n"
              f"      - targets: [{targets}]\n")
        assert BINARY is not None
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [BINARY, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def api(self, path: str, **params: str) -> dict:
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        return answer["data"]

    def wait_ready(self, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"prometheus exited: {self.log.read_text()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        raise AssertionError(f"prometheus not ready in {seconds}s: {self.log.read_text()}")

    def query(self, expr: str) -> list[dict]:
        return self.api("/api/v1/query", query=expr)["result"]

    def query_until(self, expr: str, predicate, seconds: float = 30.0) -> list[dict]:
        """Query until `predicate(result)` holds (each scrape is 1 s apart)."""
        deadline = time.monotonic() + seconds
        result: list[dict] = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if predicate(result):
                return result
            time.sleep(0.25)
        targets = self.api("/api/v1/targets")["activeTargets"]
        raise AssertionError(f"{expr}: {result} after {seconds}s; scrape targets: "
                             f"{[(t['scrapeUrl'], t['health'], t['lastError']) for t in targets]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def values(result: list[dict], label: str) -> dict[str, float]:
    """{the label's value: the sample's value} of an instant vector."""
    return {series["metric"].get(label, ""): float(series["value"][1]) for series in result}
