"""Settings, resolved as: defaults < genai.toml (and its [profiles.NAME]) < GENAI_* environment < keyword arguments."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ._errors import ConfigError
from ._limits import RateLimit, parse_rate_limits

DEFAULT_CONFIG_FILE = "genai.toml"
MAX_TIMEOUT = 7 * 24 * 3600.0  # a week: longer than any call, short enough for every clock and socket to hold


# A model setting names one model, or several: the fallbacks, tried in order.
Models = str | tuple[str, ...]
MODEL_KEYS = ("image", "video", "speech_to_text", "text_to_speech", "image_scoring")


@dataclass(frozen=True)
class Settings:
    image: Models | None = None  # None: the catalog's recommended OpenAI image model
    video: Models | None = None
    speech_to_text: Models = "whisper:tiny.en"
    text_to_speech: Models = "piper:en_US-joe-medium"
    image_scoring: Models | None = None  # an image-text model (CLIP): images.score, classify, generate(best_of=...)
    ledger: str | None = None  # None: a SQLite file in the user's data folder
    reservation_ttl: float | None = None  # None: the timeout (or an hour) plus a minute
    account: str = "default"
    policy: str = "standard"  # off, standard, strict, monitor, or a rules file extending one
    policy_moderator: str | None = None  # e.g. "openai:omni-moderation-latest": a hosted second opinion
    policy_moderator_outage: str = "warn"  # or "refuse": what a moderator that cannot be reached means
    max_retries: int = 2
    timeout: float | None = 600.0
    credits_per_usd: Decimal = Decimal(100)  # one credit is one US cent unless configured otherwise
    plan: str = "usd"  # or "dalle": one credit a prompt, free monthly credits
    local_usd_per_second: Decimal | None = None  # price of a compute-second of a local model; unpriced if None
    # Hosts whose private addresses result files may be fetched from (a private mirror): names, "*.domain", networks
    trusted_hosts: tuple[str, ...] = ()
    # A model whose calls fail (unavailable or rate-limited, after retries) this many times in a row is not sent to
    # for circuit_breaker_cooldown seconds; then one call tries it again.
    circuit_breaker_failures: int = 5
    circuit_breaker_cooldown: float = 30.0
    otel: bool = False  # an OpenTelemetry span for every call (the 'otel' extra)
    rate_limits: tuple[RateLimit, ...] = ()  # per provider or model: requests per window, requests in flight

    def __repr__(self) -> str:  # a ledger URL may hold a database password
        from ._errors import redact

        return redact(f"Settings({', '.join(f'{f.name}={getattr(self, f.name)!r}' for f in fields(self))})")

    def ledger_ttl(self) -> float:
        """How long a reservation outlives its call before it is taken for abandoned and its credits return."""
        if self.reservation_ttl is not None:
            return self.reservation_ttl
        return (self.timeout or 3600.0) + 60.0


KEYS = tuple(f.name for f in fields(Settings))


def _hosts(value: object, origin: str) -> tuple[str, ...]:
    """Host names, "*.domain" patterns, addresses and networks, from a list or a comma-separated string."""
    import ipaddress
    import re

    items = re.split(r"[,\s]+", value) if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise ConfigError(f"{origin}: trusted_hosts must be a list of host names or networks, not {value!r}")
    hosts = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            if not re.fullmatch(r"(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?", item):
                raise ConfigError(
                    f"{origin}: trusted_hosts entry {item!r} is not a host name, '*.domain', an address or a network"
                ) from None
        hosts.append(item)
    return tuple(hosts)


def _models(key: str, value: object, origin: str) -> Models | None:
    """One model, or a list of them (a comma-separated string in the environment): the fallbacks, in order."""
    import re

    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) and origin.startswith("environment") else value
    items = [items] if isinstance(items, str) else items
    if not isinstance(items, list | tuple) or not items or not all(isinstance(item, str) for item in items):
        raise ConfigError(f"{origin}: {key} must name a model ('provider:model') or a list of them, not {value!r}")
    names = tuple(item.strip() for item in items)
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9_]+:.+", name):
            raise ConfigError(
                f"{origin}: {key} holds a malformed model name {name!r}: write it as 'provider:model', for example "
                "'openai:gpt-image-1.5' or 'whisper:tiny.en'"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"{origin}: {key} names a model twice: {list(names)!r}")
    return names[0] if len(names) == 1 else names


def _coerce(key: str, value: object, origin: str) -> object:
    if key == "trusted_hosts":
        return _hosts(value, origin)
    if key in MODEL_KEYS:
        return _models(key, value, origin)
    if key == "rate_limits":
        return value if isinstance(value, tuple) else parse_rate_limits(value, origin)
    if key == "otel":
        flag = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in flag:
            return flag[value.strip().lower()]
        raise ConfigError(f"{origin}: otel must be true or false, not {value!r}")
    try:
        if key == "circuit_breaker_cooldown":
            seconds = float(str(value)) if not isinstance(value, bool) else math.nan
            if not math.isfinite(seconds) or not 0 <= seconds <= MAX_TIMEOUT:
                raise ValueError
            return seconds
        if key in ("max_retries", "circuit_breaker_failures"):
            if isinstance(value, bool | float):
                raise ValueError
            number = int(str(value))
            if not 0 <= number <= 100:
                raise ValueError
            return number
        if key in ("timeout", "reservation_ttl"):
            if value is None or str(value).lower() in ("", "none"):
                return None
            if isinstance(value, bool):
                raise ValueError
            seconds = float(str(value))
            if not math.isfinite(seconds) or seconds <= 0 or seconds > MAX_TIMEOUT:
                raise ValueError
            return seconds
        if key == "credits_per_usd":
            rate = Decimal(str(value))
            if not rate.is_finite() or rate <= 0 or rate > 10**9:
                raise ValueError
            return rate
        if key == "policy_moderator" and (value is None or str(value).lower() in ("", "none", "off")):
            return None
        if key == "policy_moderator_outage" and str(value) not in ("warn", "refuse"):
            raise ConfigError(f"{origin}: policy_moderator_outage must be 'warn' or 'refuse', not {value!r}")
        if key == "local_usd_per_second":
            if value is None or str(value).lower() in ("", "none"):
                return None
            price = Decimal(str(value))
            if not price.is_finite() or price < 0:
                raise ValueError
            return price
    except (ValueError, InvalidOperation):
        kind = {
            "max_retries": "a whole number from 0 to 100",
            "circuit_breaker_failures": "a whole number from 0 (never open) to 100",
            "circuit_breaker_cooldown": f"a finite number of seconds from 0 to {MAX_TIMEOUT:g}",
            "timeout": f"a finite number of seconds > 0 and at most {MAX_TIMEOUT:g}",
            "reservation_ttl": f"a finite number of seconds > 0 and at most {MAX_TIMEOUT:g}",
            "credits_per_usd": "a finite number > 0",
            "local_usd_per_second": "a finite number >= 0",
        }[key]
        raise ConfigError(f"{origin}: {key} must be {kind}, not {value!r}") from None
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{origin}: {key} must be a string, not {type(value).__name__}")
    return value


def _check_keys(table: Mapping[str, object], origin: str) -> None:
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise ConfigError(f"{origin}: unknown setting(s) {', '.join(unknown)}; known settings: {', '.join(KEYS)}")


def _read_toml(path: Path, profile: str | None) -> dict[str, object]:
    import tomllib

    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder, not a TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML (in UTF-8): {exc}") from exc
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from exc
    profiles = document.pop("profiles", {})
    table: dict[str, object] = dict(document)
    _check_keys(table, str(path))
    if not isinstance(profiles, dict) or not all(isinstance(p, dict) for p in profiles.values()):
        raise ConfigError(f"{path}: [profiles] must hold tables, one per profile ([profiles.NAME])")
    if profile is not None:
        if profile not in profiles:
            known = ", ".join(sorted(profiles)) if profiles else "none"
            raise ConfigError(f"{path} has no [profiles.{profile}] table (profiles there: {known})")
        chosen = profiles[profile]
        _check_keys(chosen, f"{path} [profiles.{profile}]")
        table.update(chosen)
    return {k: _coerce(k, v, str(path)) for k, v in table.items()}


def resolve_settings(
    config: str | os.PathLike[str] | None = None,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: object,
) -> Settings:
    env = os.environ if environ is None else environ
    _check_keys({k: v for k, v in overrides.items()}, "Client()")
    values: dict[str, object] = {}

    profile = profile if profile is not None else env.get("GENAI_PROFILE") or None
    config_path = config if config is not None else env.get("GENAI_CONFIG")
    if config_path is not None:
        values.update(_read_toml(Path(config_path), profile))
    elif Path(DEFAULT_CONFIG_FILE).exists():
        values.update(_read_toml(Path(DEFAULT_CONFIG_FILE), profile))
    elif profile is not None:
        raise ConfigError(f"profile {profile!r} asked for, but there is no {DEFAULT_CONFIG_FILE} here and no config= given")

    for key in KEYS:
        name = f"GENAI_{key.upper()}"
        if name in env:
            values[key] = _coerce(key, env[name], f"environment variable {name}")

    for key, value in overrides.items():
        if value is not None:
            values[key] = _coerce(key, value, f"Client({key}=...)")
    return replace(Settings(), **values)  # type: ignore[arg-type]
