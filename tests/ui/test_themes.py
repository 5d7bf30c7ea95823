"""Theme files: validated with a clear message, and a fallback."""

from __future__ import annotations

from pathlib import Path

from monitor.ui.themes import DEFAULT_THEME, load_themes, parse_theme

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_themes_are_all_valid():
    themes, problems = load_themes([ROOT / "themes"])
    assert problems == []
    names = {t.name for t in themes}
    assert {"monitor-dark", "monitor-light", "high-contrast", "terminal-16"} <= names
    assert next(t for t in themes if t.name == "terminal-16").ansi


def test_broken_theme_files_are_named_and_skipped(tmp_path: Path):
    (tmp_path / "typo.toml").write_text('name = "x"\nprimary = "#123456"\nbakground = "#000"\n')
    (tmp_path / "colour.toml").write_text('name = "y"\nprimary = "not-a-colour"\n')
    (tmp_path / "syntax.toml").write_text('name = "z\n')
    (tmp_path / "good.toml").write_text('name = "mine"\nprimary = "#336699"\ndark = false\n')
    themes, problems = load_themes([tmp_path])
    joined = "\n".join(problems)
    assert f"{tmp_path / 'typo.toml'}: bakground: unknown key (did you mean 'background'?)" in joined
    assert f"{tmp_path / 'colour.toml'}: primary: not a colour: 'not-a-colour'" in joined
    assert f"{tmp_path / 'syntax.toml'}: cannot read" in joined
    names = {t.name for t in themes}
    assert "mine" in names and "x" not in names and "y" not in names
    assert DEFAULT_THEME in names   # the built-in fallback is always there


def test_no_theme_dirs_still_gives_the_fallback(tmp_path: Path):
    themes, problems = load_themes([tmp_path / "missing"])
    assert [t.name for t in themes] == [DEFAULT_THEME] and problems == []


def test_required_keys():
    theme, problems = parse_theme({"dark": "yes"}, "t.toml")
    assert theme is None
    assert "t.toml: name: required, a string" in problems
    assert "t.toml: primary: required" in problems
    assert "t.toml: dark: expected true or false" in problems
