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
    the common clean result costs no copies. Runs for every result: clean
    strings are recognised without a call, containers only are recursed into."""
    kind = type(value)
    if kind is str:
        return shown(value, secrets)
    if kind is dict:
        copy: dict[Any, Any] | None = None
        for key, item in value.items():
            new_key, new_item = key, item
            if type(key) is str and not _clean(key, secrets):
                new_key = shown(key, secrets)
            item_kind = type(item)
            if item_kind is str:
                if not _clean(item, secrets):
                    new_item = shown(item, secrets)
            elif item_kind is dict or item_kind is list or item_kind is tuple:
                new_item = shown_value(item, secrets)
            if copy is None and (new_key is not key or new_item is not item):
                copy = {}
                for done_key, done_item in value.items():   # the clean ones before this
                    if done_key is key:
                        break
                    copy[done_key] = done_item
            if copy is not None:
                copy[new_key] = new_item
        return value if copy is None else copy
    if kind is list or kind is tuple:
        items = [shown_value(item, secrets) for item in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        return tuple(items) if kind is tuple else items
    return value


def _clean(text: str, secrets: dict[str, str]) -> bool:
    """True when `shown` would return `text` unchanged, cheaply for the usual case."""
    return text.isprintable() and not secrets and "@" not in text


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
