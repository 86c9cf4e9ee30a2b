"""The load the edge suite drives: its Patient bodies and its concurrent client loop.

`bench.edge_bench` measures the edge with them and `bench.machine_reference`
measures this machine's ceilings with the very same, so the two compare.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


def patient(i: int) -> dict[str, Any]:
    """Patient number `i` as the edge suite creates it (~300 bytes of FHIR JSON)."""
    return {"resourceType": "Patient", "name": [{"family": f"山田{i % 97}", "given": ["太郎"]}],
            "birthDate": f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}", "gender": "male",
            "identifier": [{"system": "urn:oid:1.2.392.100495.20.3.51", "value": str(i)}]}


async def run_concurrent(n: int, clients: int, call: Callable[[int], Awaitable[None]]
                         ) -> tuple[float, list[float]]:
    """Run call(0..n-1) on `clients` workers; return (ops/s, latencies in ms)."""
    latencies: list[float] = []
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            await call(i)
            latencies.append((time.perf_counter() - t0) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return n / (time.perf_counter() - start), latencies
