"""The practice's sites as this site last saw them at the hub (`practice_sites`).

A rebuilt hub needs the public keys of a site lost with the old one: the sync loop
keeps the registry it reads (`SaveSites`), `edge sites` lists it (`practice_sites`).
Public keys only; never a secret.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PracticeSite:
    site_id: str
    name: str
    status: str
    verify_key: bytes
    box_key: bytes
    seen_ms: int


@dataclass(frozen=True, slots=True)
class SaveSites:
    """Keep the registry the hub answered, every site seen at `seen_ms`."""

    sites: tuple[PracticeSite, ...]

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT INTO practice_sites (site_id, name, status, verify_key, box_key, seen_ms) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (site_id) DO UPDATE SET name = excluded.name, "
            "status = excluded.status, verify_key = excluded.verify_key, "
            "box_key = excluded.box_key, seen_ms = excluded.seen_ms",
            [(s.site_id, s.name, s.status, s.verify_key, s.box_key, s.seen_ms)
             for s in self.sites])


def practice_sites(conn: sqlite3.Connection) -> list[PracticeSite]:
    """Every site seen, by name then id."""
    return [PracticeSite(r[0], r[1], r[2], bytes(r[3]), bytes(r[4]), int(r[5]))
            for r in conn.execute("SELECT site_id, name, status, verify_key, box_key, seen_ms "
                                  "FROM practice_sites ORDER BY name, site_id")]


__all__ = ["PracticeSite", "SaveSites", "practice_sites"]
