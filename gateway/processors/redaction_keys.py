"""Which attributes the ``redaction`` processor keeps, drops or masks whole, by key.

Key lists (``allowed_keys``, ``blocked_keys``, ``masked_keys``, ``ignored_keys``) are globs:
``*`` matches any run of characters (dots too), ``?`` one character, anything else itself;
a glob matches the whole key, ignoring case. The first rule that applies wins: ignored,
blocked, not allowed, masked, named like a secret (:func:`is_secret_key`), else scanned.
A key's action is decided once and remembered (bounded: a client sending endless new keys
makes the cache start over, never grow).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gateway.processors.redaction_patterns import is_secret_key

# What to do with an attribute.
SCAN, IGNORE, BLOCK, DISALLOW, MASK_KEY, SECRET_KEY = range(6)
_KEY_CACHE = 8192


def glob_match(glob: str, key: str) -> bool:
    """Whether ``key`` matches ``glob`` whole (``*`` any run of characters, ``?`` one); both
    lower-cased by the caller. Linear backtracking to the last ``*`` only: O(len(glob) *
    len(key)) at worst, whatever the key a client sends."""
    g = k = 0
    star, mark = -1, 0
    while k < len(key):
        if g < len(glob) and glob[g] in ("?", key[k]):
            g += 1
            k += 1
        elif g < len(glob) and glob[g] == "*":
            star, mark = g, k
            g += 1
        elif star >= 0:
            g, mark = star + 1, mark + 1
            k = mark
        else:
            return False
    return all(c == "*" for c in glob[g:])


class Globs:
    """A key list: exact names (a set lookup) and globs, matched ignoring case."""

    def __init__(self, globs: Iterable[str]) -> None:
        lowered = [g.lower() for g in globs]
        self.exact = frozenset(g for g in lowered if "*" not in g and "?" not in g)
        self.patterns = tuple(g for g in lowered if "*" in g or "?" in g)

    def __bool__(self) -> bool:
        return bool(self.exact or self.patterns)

    def match(self, key: str) -> bool:
        """Whether ``key`` is in the list."""
        key = key.lower()
        return key in self.exact or any(glob_match(g, key) for g in self.patterns)


class KeyRules:
    """The action for each attribute key (see the module docstring), cached per key."""

    def __init__(
        self,
        *,
        allowed: Sequence[str] | None = None,
        blocked: Sequence[str] = (),
        masked: Sequence[str] = (),
        ignored: Sequence[str] = (),
        secret_names: bool = True,
    ) -> None:
        self._allowed = Globs(allowed or ())
        self._restricted = allowed is not None
        self._blocked = Globs(blocked)
        self._masked = Globs(masked)
        self._ignored = Globs(ignored)
        self._secret_names = secret_names
        #: Decided actions by key, for top-level attributes and for keys of maps inside
        #: values (where ``allowed_keys`` does not apply); read directly by the processor.
        self.cache: dict[str, int] = {}
        self.nested: dict[str, int] = {}

    def _decide(self, key: str, nested: bool) -> int:
        if self._ignored.match(key):
            return IGNORE
        if self._blocked.match(key):
            return BLOCK
        if self._restricted and not nested and not self._allowed.match(key):
            return DISALLOW
        if self._masked.match(key):
            return MASK_KEY
        if self._secret_names and is_secret_key(key):
            return SECRET_KEY
        return SCAN

    def action(self, key: str, nested: bool = False) -> int:
        """What happens to an attribute (``nested``: a map entry inside a value) named ``key``."""
        cache = self.nested if nested else self.cache
        found = cache.get(key)
        if found is None:
            if len(cache) >= _KEY_CACHE:
                cache.clear()
            found = cache[key] = self._decide(key, nested)
        return found
