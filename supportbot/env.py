"""Read settings from the environment; nonsense raises ImproperlyConfigured naming the variable."""

import os
import re
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false (1/0, yes/no, on/off), not {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise ImproperlyConfigured(f"{name} must be at least {minimum}{upper}, not {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, schemes: tuple[str, ...], default: str = "") -> str:
    """An absolute URL with one of `schemes`, or "" when unset. Trailing slashes are removed."""
    raw = env_str(name, default)
    if not raw:
        return ""
    parsed = urlparse(raw)
    if parsed.scheme not in schemes or not (parsed.hostname or parsed.path):
        wanted = ", ".join(f"{scheme}://" for scheme in schemes)
        raise ImproperlyConfigured(f"{name} must be a URL starting with {wanted}, not {raw!r}")
    if parsed.scheme in ("http", "https") and not parsed.hostname:
        raise ImproperlyConfigured(f"{name} must name a host, not {raw!r}")
    return raw.rstrip("/")


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    raw = env_str(name, default).lower() or default
    if raw not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


def env_path(name: str, default: str) -> str:
    """A URL path prefix such as `staff-7f3a/`: letters, digits, - _ . and /; ends with /."""
    raw = env_str(name, default).strip("/")
    if not raw or not re.fullmatch(r"[A-Za-z0-9._~/-]+", raw) or "//" in raw or ".." in raw:
        raise ImproperlyConfigured(
            f"{name} must be a path such as staff-7f3a/ (letters, digits, - _ . /), not {raw!r}"
        )
    return raw + "/"


def env_header(name: str) -> tuple[str, str] | None:
    """`Header-Name: value` (e.g. `X-Forwarded-Proto: https`) as Django's META pair, or None."""
    raw = env_str(name)
    if not raw:
        return None
    header, _, value = raw.partition(":")
    header, value = header.strip(), value.strip()
    if not re.fullmatch(r"[A-Za-z0-9-]+", header) or not value:
        raise ImproperlyConfigured(f"{name} must look like 'X-Forwarded-Proto: https', not {raw!r}")
    return "HTTP_" + header.upper().replace("-", "_"), value


def env_origins(name: str) -> list[str]:
    """Comma-separated origins, each scheme://host[:port] (e.g. https://bot.example)."""
    origins = env_list(name, [])
    for origin in origins:
        parsed = urlparse(origin)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path:
            raise ImproperlyConfigured(
                f"{name} must list origins such as https://bot.example, not {origin!r}"
            )
    return origins
