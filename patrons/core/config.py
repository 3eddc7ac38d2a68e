"""Settings from the environment, typed, failing fast in production."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from email.utils import getaddresses
from pathlib import Path
from urllib.parse import urlsplit

from patrons.core.money import (
    DEFAULT_PLEDGE_AMOUNTS,
    CurrencyOption,
    PledgeOptionsError,
    parse_pledge_amounts,
)
from patrons.core.resources import default_instance

# the checkout's instance/, or instance/ in the working directory of an installed package
DEFAULT_INSTANCE = default_instance()


class ConfigError(RuntimeError):
    """A setting is missing or malformed."""


def _int(environ: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _flag(environ: dict[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw in ("true", "1", "yes")


def _dev_secret_key(instance: Path) -> str:
    """A random key kept under instance/ so development sessions survive restarts."""
    path = instance / "secret_key"
    left_empty = path.exists()  # and empty, if we get past the next line: a crash's leftover
    existing = path.read_text().strip() if left_empty else ""
    if existing:
        return existing
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Written whole to a private temporary file, then linked into place: a process starting
    # at the same moment sees no key or the whole key, and both agree on the first one linked.
    tmp = instance / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    try:
        if left_empty:
            path.unlink(missing_ok=True)  # an empty file left by a crash is no key
        os.link(tmp, path)
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        tmp.unlink()
    return key


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    secret_key: str = ""
    database_url: str = ""
    instance_path: Path = DEFAULT_INSTANCE
    site_name: str = "The Steppe Courier"
    site_url: str = "http://127.0.0.1:5000"
    accent_color: str = "#0057b7"
    redis_url: str | None = None
    mail_url: str | None = None
    # MAIL_FROM: the From header of every message, e.g. "The Steppe Courier <news@example.org>"
    mail_from: str = '"The Steppe Courier" <newsroom@localhost>'
    ad_hosts: tuple[str, ...] = ()
    proxy_hops: int = 0
    article_cache_seconds: int = 300  # anonymous pages and articles' shared parts; 0: off
    stripe_secret_key: str | None = None
    stripe_publishable_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    # seconds to wait for Stripe's answer (connecting: at most 3), and the SDK's retries of a
    # call that got none (None: 1 with real Stripe, 0 with the offline one)
    stripe_timeout: float = 10.0
    stripe_network_retries: int | None = None
    # what readers may pledge (patrons/core/money.py) and how long a failed renewal
    # keeps a patron's rights
    pledge_options: tuple[CurrencyOption, ...] = parse_pledge_amounts(DEFAULT_PLEDGE_AMOUNTS)
    pledge_grace_days: int = 7
    # Argon2id cost (argon2-cffi's defaults, RFC 9106 low-memory profile); memory in KiB.
    password_hash_time_cost: int = 3
    password_hash_memory_cost: int = 65536
    password_hash_parallelism: int = 4
    # staff must have two-factor on before any staff page (default: on in production)
    staff_two_factor_required: bool = False
    audit_keep_days: int = 365  # `flask prune-audit` deletes older audit events
    # hashes run at once in one process (each holds PASSWORD_HASH_MEMORY_COST while it runs)
    password_hash_concurrency: int = min(os.cpu_count() or 1, 4)
    # SIGN_IN_LINK_SAME_BROWSER: an emailed sign-in link opens only in the browser that asked
    sign_in_link_same_browser: bool = True
    # SECRET_KEY_FALLBACKS: older keys still accepted (sessions, CSRF tokens, emailed codes)
    # while a rotated SECRET_KEY takes over; new things are signed with SECRET_KEY only
    secret_key_fallbacks: tuple[str, ...] = ()
    # the worker (patrons/worker/): days a sent message keeps its body, days an applied
    # Stripe event keeps its row (the inbox's idempotency: at least Stripe's 30 days)
    mail_keep_days: int = 30
    stripe_events_keep_days: int = 90
    # logs (core/logs.py): LOG_LEVEL, LOG_FORMAT=text|json|none (json in production, text in
    # development, none in tests)
    log_level: str = "INFO"
    log_format: str = "text"
    # /metrics (patrons/metrics.py): METRICS_TOKEN as a bearer token, or from loopback only
    metrics_token: str | None = None
    # SENTRY_DSN: errors reported to Sentry, personal data scrubbed (core/error_reporting.py)
    sentry_dsn: str | None = None

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_testing(self) -> bool:
        return self.env == "testing"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        env = dict(os.environ if environ is None else environ)
        mode = env.get("PATRONS_ENV", "development").strip().lower()
        if mode not in {"development", "production", "testing"}:
            raise ConfigError(
                f"PATRONS_ENV must be development, production or testing, not {mode!r}"
            )
        instance = Path(env.get("PATRONS_INSTANCE", str(DEFAULT_INSTANCE))).resolve()
        secret = env.get("SECRET_KEY", "").strip()
        if not secret:
            if mode == "production":
                raise ConfigError("SECRET_KEY must be set in production (PATRONS_ENV=production)")
            secret = _dev_secret_key(instance)
        elif mode == "production" and len(secret) < 32:
            raise ConfigError("SECRET_KEY must be at least 32 characters in production")
        database_url = env.get("DATABASE_URL", "").strip()
        if not database_url:
            if mode == "production":
                raise ConfigError("DATABASE_URL must be set in production")
            instance.mkdir(parents=True, exist_ok=True)
            database_url = f"sqlite:///{instance / 'patrons.db'}"
        accent = env.get("ACCENT_COLOR", "#0057b7").strip()
        if not _is_hex_colour(accent):
            raise ConfigError(f"ACCENT_COLOR must be a hex colour like #0057b7, not {accent!r}")
        site_name = env.get("SITE_NAME", cls.site_name)
        values: dict[str, object] = dict(
            env=mode,
            secret_key=secret,
            database_url=database_url,
            instance_path=instance,
            site_name=site_name,
            site_url=env.get("SITE_URL", cls.site_url).rstrip("/"),
            accent_color=accent,
            redis_url=env.get("REDIS_URL") or None,
            mail_url=env.get("MAIL_URL") or None,
            mail_from=_mail_from(env.get("MAIL_FROM", "").strip(), site_name),
            ad_hosts=tuple(_ad_hosts(env.get("AD_HOSTS", ""))),
            proxy_hops=_int(env, "PROXY_HOPS", 0),
            article_cache_seconds=_int(env, "ARTICLE_CACHE_SECONDS", 300),
            stripe_secret_key=env.get("STRIPE_SECRET_KEY") or None,
            stripe_publishable_key=env.get("STRIPE_PUBLISHABLE_KEY") or None,
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
            stripe_api_base=env.get("STRIPE_API_BASE") or None,
            stripe_timeout=_stripe_timeout(env.get("STRIPE_TIMEOUT", "").strip()),
            stripe_network_retries=_network_retries(env.get("STRIPE_NETWORK_RETRIES", "").strip()),
            pledge_options=_pledge_options(env.get("PLEDGE_AMOUNTS", "")),
            pledge_grace_days=_int(env, "PLEDGE_GRACE_DAYS", 7),
            password_hash_time_cost=_int(env, "PASSWORD_HASH_TIME_COST", 3, minimum=1),
            password_hash_memory_cost=_int(env, "PASSWORD_HASH_MEMORY_COST", 65536, minimum=8),
            password_hash_parallelism=_int(env, "PASSWORD_HASH_PARALLELISM", 4, minimum=1),
            staff_two_factor_required=_flag(env, "STAFF_TWO_FACTOR_REQUIRED", mode == "production"),
            audit_keep_days=_int(env, "AUDIT_KEEP_DAYS", 365, minimum=1),
            password_hash_concurrency=_int(
                env, "PASSWORD_HASH_CONCURRENCY", cls.password_hash_concurrency, minimum=1
            ),
            sign_in_link_same_browser=env.get("SIGN_IN_LINK_SAME_BROWSER", "true").strip().lower()
            not in {"0", "false", "no", "off"},
            secret_key_fallbacks=_fallback_keys(env.get("SECRET_KEY_FALLBACKS", ""), mode),
            mail_keep_days=_int(env, "MAIL_KEEP_DAYS", 30, minimum=1),
            stripe_events_keep_days=_int(
                env, "STRIPE_EVENTS_KEEP_DAYS", 90, minimum=STRIPE_EVENTS_MIN_KEEP_DAYS
            ),
            **_observability(env, mode),
        )
        values.update(overrides)
        if mode == "production":
            _check_production_mail(values.get("mail_url"))  # type: ignore[arg-type]  # str or None, from the line above
        settings = cls(**values)  # type: ignore[arg-type]  # each value parsed to its field's type above
        _check_password_hash_cost(settings)
        return settings


# Stripe redelivers an event for up to three days and lets staff resend one for 30: an applied
# event's row (its id, the inbox's idempotency key) is kept at least that long.
STRIPE_EVENTS_MIN_KEEP_DAYS = 30


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MIN_METRICS_TOKEN = 16


def _observability(env: dict[str, str], mode: str) -> dict[str, object]:
    """LOG_LEVEL, LOG_FORMAT, METRICS_TOKEN and SENTRY_DSN, checked."""
    level = env.get("LOG_LEVEL", "").strip().upper() or "INFO"
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    # none: no handler of ours (the tests' default: pytest captures the records)
    default_format = {"production": "json", "testing": "none"}.get(mode, "text")
    fmt = env.get("LOG_FORMAT", "").strip().lower() or default_format
    if fmt not in ("text", "json", "none"):
        raise ConfigError(f"LOG_FORMAT must be text, json or none, not {fmt!r}")
    token = env.get("METRICS_TOKEN", "").strip() or None
    if token is not None and (len(token) < MIN_METRICS_TOKEN or not token.isascii()):
        raise ConfigError(f"METRICS_TOKEN must be at least {MIN_METRICS_TOKEN} ASCII characters")
    dsn = env.get("SENTRY_DSN", "").strip() or None
    if dsn is not None:
        parts = urlsplit(dsn)
        if parts.scheme not in ("http", "https") or not parts.hostname or not parts.username:
            raise ConfigError("SENTRY_DSN must look like https://key@host/project-id")
    return {"log_level": level, "log_format": fmt, "metrics_token": token, "sentry_dsn": dsn}


def _fallback_keys(raw: str, mode: str) -> tuple[str, ...]:
    """SECRET_KEY_FALLBACKS: comma-separated older keys, tried after SECRET_KEY."""
    keys = tuple(key.strip() for key in raw.split(",") if key.strip())
    if mode == "production" and any(len(key) < 32 for key in keys):
        raise ConfigError("each SECRET_KEY_FALLBACKS key must be at least 32 characters")
    return keys


def _check_production_mail(mail_url: str | None) -> None:
    """Production sends mail (receipts, reset links): MAIL_URL names the server, or the
    operator chooses a folder on purpose with MAIL_URL=file:///absolute/folder."""
    if not mail_url:
        raise ConfigError(
            "MAIL_URL must be set in production: smtp://user:password@host:587?starttls=1 "
            "(or smtps://…) to send mail, or file:///absolute/folder to only write each message "
            "to that folder (nothing is sent)"
        )
    parts = urlsplit(mail_url)
    if parts.scheme == "file" and (parts.netloc or not parts.path.startswith("/")):
        raise ConfigError("MAIL_URL=file:// takes an absolute folder: file:///srv/outbox")


# The floor for production (OWASP: Argon2id with m >= 19 MiB and t >= 2); cheaper costs are
# for tests only (the fuzz test hashes thousands of passwords).
PRODUCTION_MIN_HASH_MEMORY = 19 * 1024
PRODUCTION_MIN_HASH_TIME = 2


def _check_password_hash_cost(settings: Settings) -> None:
    memory, parallelism = settings.password_hash_memory_cost, settings.password_hash_parallelism
    if memory < 8 * parallelism:
        raise ConfigError(
            f"PASSWORD_HASH_MEMORY_COST must be at least 8 KiB per lane "
            f"(PASSWORD_HASH_PARALLELISM={parallelism}), got {memory}"
        )
    if settings.is_production and (
        memory < PRODUCTION_MIN_HASH_MEMORY
        or settings.password_hash_time_cost < PRODUCTION_MIN_HASH_TIME
    ):
        raise ConfigError(
            "in production PASSWORD_HASH_MEMORY_COST must be at least "
            f"{PRODUCTION_MIN_HASH_MEMORY} (KiB) and PASSWORD_HASH_TIME_COST at least "
            f"{PRODUCTION_MIN_HASH_TIME}"
        )


def _pledge_options(raw: str) -> tuple[CurrencyOption, ...]:
    try:
        return parse_pledge_amounts(raw.strip() or DEFAULT_PLEDGE_AMOUNTS)
    except PledgeOptionsError as exc:
        raise ConfigError(str(exc)) from None


MAX_STRIPE_TIMEOUT = 60.0
MAX_STRIPE_NETWORK_RETRIES = 5


def _stripe_timeout(raw: str) -> float:
    """STRIPE_TIMEOUT: seconds, more than 0 and at most 60 (default 10)."""
    if not raw:
        return Settings.stripe_timeout
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"STRIPE_TIMEOUT must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= MAX_STRIPE_TIMEOUT:  # also refuses nan
        raise ConfigError(
            f"STRIPE_TIMEOUT must be more than 0 and at most {MAX_STRIPE_TIMEOUT:g}, got {raw!r}"
        )
    return value


def _network_retries(raw: str) -> int | None:
    """STRIPE_NETWORK_RETRIES: 0 to 5; unset, the gateway's default for its mode."""
    if not raw:
        return None
    value = _int({"STRIPE_NETWORK_RETRIES": raw}, "STRIPE_NETWORK_RETRIES", 0)
    if value > MAX_STRIPE_NETWORK_RETRIES:
        raise ConfigError(
            f"STRIPE_NETWORK_RETRIES must be at most {MAX_STRIPE_NETWORK_RETRIES}, got {value}"
        )
    return value


def _is_hex_colour(value: str) -> bool:
    return (
        len(value) in (4, 7)
        and value.startswith("#")
        and all(c in "0123456789abcdefABCDEF" for c in value[1:])
    )


def _mail_from(raw: str, site_name: str) -> str:
    """MAIL_FROM as given (one address, optionally with a name), or the site's name at localhost."""
    if not raw:
        quoted = " ".join(site_name.split()).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <newsroom@localhost>'
    addresses = getaddresses([raw])
    if (
        len(addresses) != 1
        or "@" not in addresses[0][1]
        or any(c in raw for c in "\r\n")
        or any(c.isspace() for c in addresses[0][1])
    ):
        raise ConfigError(
            f"MAIL_FROM must be one address like News <news@example.org>, not {raw!r}"
        )
    return raw


def _ad_hosts(raw: str) -> list[str]:
    """AD_HOSTS: space-separated origins (https://ads.example.net) that the CSP allows."""
    hosts = []
    for item in raw.split():
        parts = urlsplit(item)
        host = parts.hostname or ""
        if (
            parts.scheme != "https"
            or not host
            or "." not in host
            or any(c in item for c in "*;,'\"")
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
        ):
            raise ConfigError(
                f"AD_HOSTS entries must be origins like https://ads.example.net, not {item!r}"
            )
        hosts.append(f"https://{parts.netloc}")
    return hosts
