"""What an install from a built wheel gets (not the source tree), and what
pyproject.toml declares against what the code imports."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
THEMES = sorted(p.stem for p in (ROOT / "themes").glob("*.toml"))


def requirements(extra: str | None = None) -> dict[str, Requirement]:
    project = PYPROJECT["project"]
    listed = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return {canonicalize_name(r.name): r for r in map(Requirement, listed)}


def imported_top_level_modules() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "monitor").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"monitor", "__future__"}


def test_every_package_the_code_imports_is_declared_and_nothing_else():
    providers = packages_distributions()
    imported = {}
    for module in imported_top_level_modules():
        assert module in providers, f"{module} is imported but no installed package provides it"
        imported[module] = {canonicalize_name(d) for d in providers[module]}
    declared = set(requirements())
    missing = {m: d for m, d in imported.items() if not d & declared}
    assert not missing, f"imported but not declared in [project] dependencies: {missing}"
    used = set().union(*imported.values())
    assert declared <= used, f"declared but never imported: {declared - used}"


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "test-constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_the_test_pins_sit_inside_the_declared_ranges():
    pins = constraints()
    assert pins["textual"] == "8.2.8"   # the release the snapshots were drawn with
    textual = requirements()["textual"]
    assert textual.specifier.contains("8.2.8") and not textual.specifier.contains("9.0.0"), \
        "runtime textual must be a range (other Textual apps share environments)"
    assert "==" not in str(textual.specifier)
    for extra in (None, "test"):
        for name, requirement in requirements(extra).items():
            if name in pins:
                assert requirement.specifier.contains(pins[name]), (name, pins[name])


def readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^python3 -m venv .*pytest$", readme, flags=re.M)
    assert len(commands) == 1, commands
    return commands[0]


def test_ci_runs_the_readme_test_command_with_the_pins():
    command = readme_test_command()
    assert "-c test-constraints.txt" in command
    ci = [line for line in (ROOT / ".ci/run").read_text().splitlines()
          if line and not line.startswith(("#", "set ", "cd "))]
    assert ci == [command]


def build_wheel(out: Path) -> Path:
    """Built from a copy of what git would ship, so the test never writes into
    the checkout and cannot pass on a file that only exists here."""
    source = out / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for folder in ("monitor", "themes"):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--wheel-dir", str(out), str(source)],
                   check=True, capture_output=True, timeout=120)
    wheels = list(out.glob("monitor-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (and no source tree in sight);
    the dependencies come from the test venv's site-packages by a .pth line,
    since the test cannot download them."""
    work = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(work)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True,
                   timeout=120)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "test-venv-deps.pth").write_text("\n".join(sorted(ours)) + "\n")
    return venv


def run_installed(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MONITOR_CONFIG")}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_the_wheel_ships_every_theme(installed: Path, tmp_path: Path):
    script = ("import monitor, json; from monitor.ui import themes; "
              "loaded, problems = themes.load_themes(); "
              "print(json.dumps([monitor.__file__, str(themes.builtin_theme_dir()), "
              "sorted(t.name for t in loaded), problems]))")
    done = run_installed(installed, str(installed / "bin" / "python"), "-c", script, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    module, theme_dir, names, problems = json.loads(done.stdout)
    assert Path(module).is_relative_to(installed), "imported the source tree, not the wheel"
    assert Path(theme_dir) == Path(module).parent / "themes"
    assert names == THEMES and problems == []


def test_the_installed_command_validates_the_sample(installed: Path, tmp_path: Path):
    monitor = str(installed / "bin" / "monitor")
    done = run_installed(installed, monitor, "validate", str(ROOT / "sample-config.toml"),
                         cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r".*sample-config\.toml: ok \(\d+ targets\)\n", done.stdout)
    init = run_installed(installed, monitor, "init", "new.toml", cwd=tmp_path)   # package data
    assert init.returncode == 0, init.stderr
    again = run_installed(installed, monitor, "validate", "--config", "new.toml", cwd=tmp_path)
    assert again.returncode == 0, again.stderr


def test_the_installed_requirements_are_met(installed: Path):
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(installed / "bin" / "python"),
                           "check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
