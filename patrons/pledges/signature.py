"""Reading a Stripe webhook strictly: the `Stripe-Signature` header, its HMAC, then the body.

Every check refuses with SignatureError (the signature) or BadEvent (a signed body we will not
read), each with a reason for the log; the view answers 400 to both (docs/security.md,
section 5: threats 1, 2, 9 and 15). The order is the defence: the header is checked as text
before anything else touches it, the HMAC before the body is parsed, and the body is parsed
with bounds on what a number may be.

The header is `t=<unix seconds>,v1=<hex>[,v1=<hex>][,v0=...]`:
- printable ASCII only and at most 1 KiB (a non-ASCII byte used to reach the SDK: a 500);
- `t` exactly once, an integer of at most 12 digits;
- one or two `v1`, each 64 lower-case hex digits. Stripe sends two only while an endpoint's
  secret is being rolled (the old and the new secret each sign); a third is never sent, so
  it is refused rather than tried;
- other schemes (`v0`, a test scheme) are ignored, as Stripe asks; an item without `=` is not.
The timestamp must be within `TOLERANCE` seconds of now, in the past (a replay) or in the
future (a signature made to outlive its window).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from patrons.pledges.stripe_objects import BadEvent, Event, SignatureError

TOLERANCE = 300  # seconds either side of now
MAX_HEADER_LENGTH = 1024
MAX_SIGNATURES = 2  # the old and the new secret while one is rolled
MAX_JSON_INT = 2**53  # what every JSON reader (and Stripe's own) represents exactly

_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class SignatureHeader:
    timestamp: int
    signatures: tuple[str, ...]  # the v1 values


def parse_header(header: str | bytes | None) -> SignatureHeader:
    """The header's timestamp and v1 signatures; SignatureError for anything malformed."""
    if not header:
        raise SignatureError("missing Stripe-Signature header")
    if len(header) > MAX_HEADER_LENGTH:
        raise SignatureError(f"Stripe-Signature header longer than {MAX_HEADER_LENGTH}")
    if isinstance(header, bytes):
        try:
            header = header.decode("ascii")
        except UnicodeDecodeError:
            raise SignatureError("Stripe-Signature header is not ASCII") from None
    if not _PRINTABLE.fullmatch(header):
        raise SignatureError("Stripe-Signature header is not printable ASCII")
    stamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        scheme, equals, value = item.partition("=")
        if not equals:
            raise SignatureError("Stripe-Signature item without '='")
        if scheme == "t":
            stamps.append(value)
        elif scheme == "v1":
            signatures.append(value)
    return SignatureHeader(_timestamp(stamps), _signatures(signatures))


def _timestamp(stamps: list[str]) -> int:
    if len(stamps) != 1:
        raise SignatureError(f"Stripe-Signature has {len(stamps)} timestamps, not one")
    if not _TIMESTAMP.fullmatch(stamps[0]):
        raise SignatureError("Stripe-Signature timestamp is not an integer")
    return int(stamps[0])


def _signatures(signatures: list[str]) -> tuple[str, ...]:
    if not signatures:
        raise SignatureError("Stripe-Signature has no v1 signature")
    if len(signatures) > MAX_SIGNATURES:
        raise SignatureError(f"Stripe-Signature has {len(signatures)} v1 signatures")
    if not all(_HEX64.fullmatch(s) for s in signatures):
        raise SignatureError("a v1 signature is not 64 lower-case hex digits")
    return tuple(signatures)


def verify(
    payload: bytes, header: str | bytes | None, secret: str, *, now: float | None = None
) -> int:
    """Check the header, then the HMAC-SHA256 of `<t>.<body>`, then the timestamp; the
    timestamp, or SignatureError."""
    parsed = parse_header(header)
    expected = hmac.new(
        secret.encode(), str(parsed.timestamp).encode() + b"." + payload, hashlib.sha256
    ).hexdigest()
    if not any(hmac.compare_digest(expected, s) for s in parsed.signatures):
        raise SignatureError("no v1 signature matches")
    skew = (time.time() if now is None else now) - parsed.timestamp
    if abs(skew) > TOLERANCE:
        raise SignatureError(f"timestamp {skew:+.0f} s from now, outside {TOLERANCE} s")
    return parsed.timestamp


# -- the body ----------------------------------------------------------------------------------


def _bounded_int(text: str) -> int:
    value = int(text) if len(text) <= 20 else MAX_JSON_INT + 1
    if abs(value) > MAX_JSON_INT:
        raise BadEvent(f"integer out of range: {text[:24]}")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadEvent(f"number out of range: {text[:24]}")
    return value


def _no_constant(text: str) -> Any:
    raise BadEvent(f"not JSON: {text}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise BadEvent("an object repeats a key")
    return obj


def load_json(payload: bytes) -> Any:
    """The body as JSON, strictly: UTF-8, integers within ±2**53, finite numbers, no NaN or
    Infinity, no repeated keys (two readers could take different ones); BadEvent otherwise."""
    try:
        return json.loads(
            payload.decode("utf-8"),
            parse_int=_bounded_int,
            parse_float=_finite_float,
            parse_constant=_no_constant,
            object_pairs_hook=_no_duplicates,
        )
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise BadEvent(f"not JSON: {exc}") from None
    except RecursionError:
        raise BadEvent("JSON nested too deeply") from None


def read_event(
    payload: bytes, header: str | bytes | None, secret: str | None, *, now: float | None = None
) -> Event:
    """A webhook's event once its signature holds: SignatureError, else BadEvent, else it."""
    if not secret:
        raise SignatureError("no webhook secret is configured")
    verify(payload, header, secret, now=now)
    return Event.from_payload(load_json(payload))
