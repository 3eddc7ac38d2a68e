"""Run localstripe on loopback: memory-only or persisted once per request, with a short webhook
delay and the app's webhook registered at start-up.

    python -m patrons.fakestripe --port 8420 --persist instance/localstripe.pickle \
        --webhook-url http://127.0.0.1:5000/stripe/webhook --webhook-secret whsec_demo

It patches localstripe internals, so localstripe is pinned (1.15.10) in pyproject.toml.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import pickle
import signal
import sys
from typing import Any


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m patrons.fakestripe")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--persist", metavar="PATH", help="keep the store here (default: memory)")
    parser.add_argument("--webhook-delay", type=float, default=0.2, help="seconds (upstream: 1)")
    parser.add_argument("--webhook-url", help="register this endpoint for every event")
    parser.add_argument("--webhook-secret", default="whsec_localstripe")
    args = parser.parse_args(argv)
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        parser.error("--host must be a loopback address such as 127.0.0.1")
    return args


def _persist_to(path: str) -> None:
    from localstripe import resources

    def dump(store: dict[str, object], _path: str = path) -> None:
        tmp = f"{_path}.tmp"
        with open(tmp, "wb") as fh:
            pickle.dump(dict(store), fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, _path)

    # upstream pickles to /tmp/localstripe.pickle on every item write; keep only the dump
    # localstripe's middleware makes once per mutating request, to our own file
    resources.Store.__setitem__ = dict.__setitem__
    resources.Store.__delitem__ = dict.__delitem__
    resources.Store.dump_to_disk = dump
    try:
        with open(path, "rb") as fh:
            resources.store.update(pickle.load(fh))  # noqa: S301 - our own file under instance/
    except FileNotFoundError:
        pass
    except (pickle.UnpicklingError, EOFError, AttributeError) as exc:
        print(f"fakestripe: ignoring unreadable {path}: {exc}", file=sys.stderr, flush=True)


def _memory_only() -> None:
    from localstripe import resources

    resources.Store.dump_to_disk = lambda self: None  # never touch /tmp/localstripe.pickle


def _webhook_delay(seconds: float) -> None:
    from localstripe import webhooks

    real_sleep = asyncio.sleep

    class _Asyncio:
        def __getattr__(self, name: str) -> object:
            return getattr(asyncio, name)

        @staticmethod
        def sleep(_delay: float, *args: object, **kwargs: object) -> Any:  # a coroutine
            return real_sleep(seconds)

    webhooks.asyncio = _Asyncio()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from aiohttp import web
    from localstripe import server, webhooks

    if args.persist:
        _persist_to(args.persist)
    else:
        _memory_only()
    _webhook_delay(args.webhook_delay)
    if args.webhook_url:
        webhooks.register_webhook("patrons", args.webhook_url, args.webhook_secret, None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    web.run_app(
        server.app,
        host=args.host,
        port=args.port,
        access_log=None,
        print=lambda *parts: print(*parts, flush=True),
    )


if __name__ == "__main__":
    main()
