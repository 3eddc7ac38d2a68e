from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from patrons.core.db import Base


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(80))
    is_staff: Mapped[bool] = mapped_column(default=False)
    email_verified_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # changes on sign-out, password change or reset, email change and two-factor changes:
    # every emailed link made before then is dead (EmailToken.stamp)
    security_stamp: Mapped[str] = mapped_column(String(32), default="", server_default="")
    # per-account backoff against guessing (accounts/throttle.py), held in the database so
    # it counts across workers and machines
    failed_sign_ins: Mapped[int] = mapped_column(default=0, server_default="0")
    sign_in_blocked_until: Mapped[datetime | None]
    # two-factor (TOTP): the base32 secret once enrolment is confirmed
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    two_factor_enabled_at: Mapped[datetime | None]
    # the article and prompt (banner, notice) that brought the reader (patrons/reports)
    source_article_id: Mapped[int | None] = mapped_column(
        ForeignKey("articles.id", ondelete="SET NULL")
    )
    source_prompt: Mapped[str | None] = mapped_column(String(16))

    # Flask-Login protocol
    is_active = True
    is_anonymous = False

    @property
    def is_authenticated(self) -> bool:
        return True

    def get_id(self) -> str:
        return str(self.id)


class UserSession(Base):
    """One sign-in: the cookie carries the token, this row says whether it still counts."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the token
    remember: Mapped[bool] = mapped_column(default=False)
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)  # the worker deletes the expired
    revoked_at: Mapped[datetime | None]
    ip: Mapped[str] = mapped_column(String(45), default="", server_default="")
    # when this session last gave the second factor (staff actions on money or people ask
    # for it again after a while)
    two_factor_at: Mapped[datetime | None]


class EmailToken(Base):
    """One emailed link or code (verify, reset, email change, sign-in link, sign-up code).

    Only hashes are stored; each is single-use (used_at), short-lived (expires_at) and
    bound to the account's security stamp when it was made (docs/security.md).
    """

    __tablename__ = "email_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    code_hash: Mapped[str | None] = mapped_column(String(64))  # a six-digit code, keyed hash
    code_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    stamp: Mapped[str] = mapped_column(String(32))
    browser_hash: Mapped[str | None] = mapped_column(String(64))  # same-browser binding
    data: Mapped[str | None] = mapped_column(Text)  # JSON: a new address, where to go next
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)  # the worker deletes the expired
    used_at: Mapped[datetime | None]


class KnownDevice(Base):
    """A browser the owner signed in from (a long-lived random cookie, stored hashed).

    Its sign-ins are not slowed by someone else's guessing, and it may skip the second
    factor until `two_factor_until`."""

    __tablename__ = "known_devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime]
    two_factor_until: Mapped[datetime | None]


class RecoveryCode(Base):
    """A one-time two-factor recovery code, stored hashed; shown to its owner once."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class AuditEvent(Base):
    """A security event or a staff action: who, whose account, what, from where, when."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    ip: Mapped[str] = mapped_column(String(45), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[str | None] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(index=True)
