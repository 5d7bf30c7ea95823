"""Text that came from the network or holds a secret, made safe to show.

Every string a peer chose (a reason phrase, a TXT answer, a certificate's
subject, a banner) passes through `printable` where it enters a result, so no
output path (dashboard, `check` table, headless log, record file) can write a
peer's control bytes to the operator's terminal. URLs pass through
`redact_url` wherever they are shown, so a password in userinfo never is.
"""

from __future__ import annotations

import re
from typing import Any

# Characters a terminal may act on: C0 and C1 controls, DEL, and the Unicode
# format/separator characters that reorder or hide text (bidi overrides, zero
# width, line/paragraph separators). str.isprintable() is False for all of
# them (and for every other non-printing character), which makes the common
# case, a clean string, one C-speed call.
_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\x1b": "\\e"}

# scheme://user:password@  (the password part is what we hide)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s/?#@:]*):"
                       r"(?P<password>[^\s/?#@]*)@")


def printable(text: str) -> str:
    """`text` with every non-printing character escaped (ESC as \\e, others as
    \\xNN / \\uNNNN), so it shows as visible characters and does nothing."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(char: str) -> str:
    known = _ESCAPES.get(char)
    if known is not None:
        return known
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def shown(text: str, secrets: dict[str, str]) -> str:
    """`text` as it may be shown: secrets redacted, then made printable."""
    return printable(redact_secrets(text, secrets) if secrets or "@" in text else text)


def shown_value(value: Any, secrets: dict[str, str]) -> Any:
    """`value` with `shown` applied to every string in it (dict keys too), for
    a result's details; returns the very same object when nothing changes, so
    the common clean result costs no copies."""
    if isinstance(value, str):
        return shown(value, secrets)
    if isinstance(value, dict):
        pairs = [(shown_value(k, secrets), shown_value(v, secrets)) for k, v in value.items()]
        if all(a is k and b is v for (a, b), (k, v) in zip(pairs, value.items())):
            return value
        return dict(pairs)
    if isinstance(value, (list, tuple)):
        items = [shown_value(v, secrets) for v in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        return tuple(items) if isinstance(value, tuple) else items
    return value


def redact_url(url: str) -> str:
    """`scheme://user:password@host/...` as `scheme://user:***@host/...`."""
    if "@" not in url:
        return url
    return _USERINFO.sub(_hide_password, url)


def _hide_password(match: re.Match[str]) -> str:
    return f"{match['scheme']}{match['user']}:***@"


def redact_secrets(text: str, secrets: dict[str, str]) -> str:
    """`text` with URL passwords hidden and every known secret value replaced
    by the name of the variable it came from (`${VAR}`). `secrets` maps value
    to variable name; longer values first, so one that contains another is
    replaced whole."""
    text = redact_url(text)
    for value in sorted(secrets, key=len, reverse=True):
        if value in text:
            text = text.replace(value, f"${{{secrets[value]}}}")
    return text
