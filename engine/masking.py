"""Secrets out of text: every DSN form, webhook URLs and the secret values resolved at run time.

`mask` is the one function every message, log line and ledger error passes through before it
leaves the process. It knows the shapes secrets come in (a URL's password, a key=value
password with or without quotes, a `?password=` query parameter, the path and query of an
http(s) URL, which is where webhook tokens live) and, besides, the exact values read from
`${ENV}` references, so a secret quoted by some library in an unexpected shape is masked too.
"""

from __future__ import annotations

import re
import threading

MASK = "***"

_KEYS = r"(?:password|sslpassword|pass|pwd|token|secret|api_key|apikey|access_token)"
# scheme://user:password@host — the password runs to the last '@' of the authority.
_URL_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*://[^\s:/?#@]*):([^\s/?#]*)@", re.IGNORECASE)
# ?password=...&  (query parameters: the value ends at '&', '#', a quote or whitespace).
_QUERY = re.compile(rf"([?&]{_KEYS}=)[^&#\s'\"]*", re.IGNORECASE)
# password='a b' or password=abc (libpq key=value: quoted values may hold spaces and \').
_KEY_VALUE = re.compile(rf"(?<![\w?&])({_KEYS}\s*=\s*)('(?:[^'\\]|\\.)*(?:'|$)|\S+)",
                        re.IGNORECASE)
# http(s)://host/path?query: webhook tokens sit in the path and the query.
_HTTP_PATH = re.compile(r"(https?://[^\s/?#'\"]+)[/?#][^\s'\"<>)]*", re.IGNORECASE)
# A DSN holding a literal password, in any form libpq reads.
_LITERAL = (
    (re.compile(r"^[a-z][a-z0-9+.-]*://[^\s/?#@]*:[^\s/?#]*@", re.IGNORECASE),
     "a password in the URL (user:password@)"),
    (re.compile(r"[?&](?:password|sslpassword)=", re.IGNORECASE), "a password= query parameter"),
    (re.compile(r"(?:^|\s)(?:password|sslpassword)\s*=", re.IGNORECASE), "a password= setting"),
)

_known: set[str] = set()
_lock = threading.Lock()
# Shorter values would mask ordinary words; such secrets are weak anyway.
_MIN_KNOWN = 6


_DSN_SHAPE = re.compile(r"^(?:postgres(?:ql)?://|\S+=)", re.IGNORECASE)


def remember(value: str) -> str:
    """Note `value` as a secret (read from the environment), so `mask` hides it; returns it.

    A DSN is not itself secret (its host and database are what an error needs to say): only
    its password is remembered, which the shape-based masking hides anyway."""
    secret = value
    if _DSN_SHAPE.match(value):
        secret = _dsn_password(value) or ""
    if len(secret) >= _MIN_KNOWN:
        with _lock:
            _known.add(secret)
    return value


def _dsn_password(dsn: str) -> str | None:
    userinfo = _URL_USERINFO.match(dsn)
    if userinfo:
        return userinfo.group(2)
    for match in _KEY_VALUE.finditer(dsn):
        quoted = match.group(2)
        if quoted.startswith("'"):
            return quoted.strip("'").replace("\\'", "'")
        return quoted
    return None


def mask(text: str) -> str:
    """`text` with every password, token and remembered secret replaced by ***."""
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        text = text.replace(value, MASK)
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    text = _HTTP_PATH.sub(lambda m: f"{m.group(1)}/{MASK}", text)
    text = _QUERY.sub(lambda m: f"{m.group(1)}{MASK}", text)
    return _KEY_VALUE.sub(lambda m: f"{m.group(1)}{MASK}", text)


def mask_dsn(dsn: str) -> str:
    """A DSN safe to print (the same masking as any other text)."""
    return mask(dsn)


def literal_password(dsn: str) -> str | None:
    """How `dsn` spells out a password, if it does (it belongs in ${ENV} or a passfile)."""
    for pattern, form in _LITERAL:
        if pattern.search(dsn):
            return form
    return None


def describe_error(exc: BaseException) -> str:
    """An unexpected exception as its type and masked message, never its repr."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {mask(message)}" if message else type(exc).__name__
