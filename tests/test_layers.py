"""The core never imports textual or the command line (import-linter contract)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contract_holds():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    proc = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


def test_core_imports_without_textual():
    code = ("import sys; import monitor.engine.scheduler, monitor.engine.client, "
            "monitor.config, monitor.output, monitor.demo; "
            "assert 'textual' not in sys.modules, 'core pulled in textual'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)
