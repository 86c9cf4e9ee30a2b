"""The `--store` argument every hub command shares, and running a store call from the CLI."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from cloud_hub.errors import HubError
from cloud_hub.store.base import HubStore
from cloud_hub.store.locator import is_store_url, open_store

T = TypeVar("T")
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def uuid_arg(what: str, where: str) -> Callable[[str], uuid.UUID]:
    """An argparse type for the id of `what` (a UUID); `where` tells where to find one."""
    def parse(text: str) -> uuid.UUID:
        try:
            return uuid.UUID(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {what} id (a UUID; "
                                             f"{where})") from None
    return parse


def add_store_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, metavar="URL",
                        help="sqlite:PATH or postgresql://USER@HOST/DB")


def with_store(url: str, action: Callable[[HubStore], Awaitable[T]]) -> tuple[int, T | None]:
    """Open the store at `url`, run `action`, close; (exit code, result). Errors go to stderr."""
    if not is_store_url(url):
        print(f"--store: {url!r} is not a store URL (example: sqlite:hub.db)", file=sys.stderr)
        return EXIT_USAGE, None

    async def run() -> T:
        async with open_store(url, pool_size=2) as store:
            return await action(store)

    try:
        return EXIT_OK, asyncio.run(run())
    except HubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"next step: {exc.hint}", file=sys.stderr)
        return EXIT_FAILURE, None
