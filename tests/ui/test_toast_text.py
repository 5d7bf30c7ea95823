"""Every toast the dashboard shows is drawn as written. Textual reads a toast's
message as markup unless told not to: a reason phrase, a target name or a path
holding "[/x]" ended the app with MarkupError, and "[b]" vanished. So each
`notify` in monitor/ui passes `markup=False`, or its text is fixed (no "[")
or escaped (`escape_markup`). Checked on the source, so a new toast cannot
forget it; tests/alerts/test_alerts_ui.py draws the real ones."""

from __future__ import annotations

import ast
from pathlib import Path

import monitor.ui

UI = Path(monitor.ui.__file__).parent


def _drawn_as_written(text: ast.expr) -> bool:
    if isinstance(text, ast.Constant):
        return isinstance(text.value, str) and "[" not in text.value
    if isinstance(text, ast.Call):
        return getattr(text.func, "id", None) == "escape_markup"
    if isinstance(text, ast.JoinedStr):
        return all(_drawn_as_written(part.value if isinstance(part, ast.FormattedValue) else part)
                   for part in text.values)
    if isinstance(text, ast.IfExp):
        return _drawn_as_written(text.body) and _drawn_as_written(text.orelse)
    return False


def _toasts_read_as_markup(source: str) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "notify"):
            continue
        markup = next((k.value for k in node.keywords if k.arg == "markup"), None)
        if isinstance(markup, ast.Constant) and markup.value is False:
            continue
        if node.args and _drawn_as_written(node.args[0]):
            continue
        lines.append(node.lineno)
    return lines


def test_every_toast_is_drawn_as_written():
    found = {str(path.relative_to(UI)): lines for path in sorted(UI.rglob("*.py"))
             if (lines := _toasts_read_as_markup(path.read_text(encoding="utf-8")))}
    assert found == {}


def test_the_check_sees_a_toast_that_would_read_markup():
    assert _toasts_read_as_markup("app.notify(reason)\napp.notify(f'saved {name}')\n") == [1, 2]
    assert _toasts_read_as_markup("app.notify(reason, markup=False)\napp.notify('done')\n"
                                  "app.notify(escape_markup(reason))\n") == []
