"""Settings from the environment, typed, failing fast in production."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = PROJECT_ROOT / "instance"


class ConfigError(RuntimeError):
    """A setting is missing or malformed."""


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(environ: dict[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _dev_secret_key(instance: Path) -> str:
    """A random key kept under instance/ so development sessions survive restarts."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting at once agree on one key
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
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
    ad_hosts: tuple[str, ...] = ()
    proxy_hops: int = 0
    article_cache_seconds: int = 300
    stripe_secret_key: str | None = None
    stripe_publishable_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None

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
            raise ConfigError(f"PATRONS_ENV must be development, production or testing, not {mode!r}")
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
        values: dict[str, object] = dict(
            env=mode,
            secret_key=secret,
            database_url=database_url,
            instance_path=instance,
            site_name=env.get("SITE_NAME", cls.site_name),
            site_url=env.get("SITE_URL", cls.site_url).rstrip("/"),
            accent_color=accent,
            redis_url=env.get("REDIS_URL") or None,
            mail_url=env.get("MAIL_URL") or None,
            ad_hosts=tuple(_ad_hosts(env.get("AD_HOSTS", ""))),
            proxy_hops=_int(env, "PROXY_HOPS", 0),
            article_cache_seconds=_int(env, "ARTICLE_CACHE_SECONDS", 300),
            stripe_secret_key=env.get("STRIPE_SECRET_KEY") or None,
            stripe_publishable_key=env.get("STRIPE_PUBLISHABLE_KEY") or None,
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
            stripe_api_base=env.get("STRIPE_API_BASE") or None,
        )
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _is_hex_colour(value: str) -> bool:
    return (
        len(value) in (4, 7)
        and value.startswith("#")
        and all(c in "0123456789abcdefABCDEF" for c in value[1:])
    )


def _ad_hosts(raw: str) -> list[str]:
    """AD_HOSTS is a space-separated list of origins (https://ads.example.net) allowed by the CSP."""
    hosts = []
    for item in raw.split():
        if not item.startswith("https://") or any(c in item for c in ";,'\" "):
            raise ConfigError(f"AD_HOSTS entries must be https:// origins, not {item!r}")
        hosts.append(item.rstrip("/"))
    return hosts
