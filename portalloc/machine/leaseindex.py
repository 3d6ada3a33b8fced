"""The live host leases with a port in one span, indexed by port: what a new pair must avoid.

``LeaseStore`` builds one from the store's covering port indexes and keeps it while no
other process has committed to the store (SQLite's ``PRAGMA data_version``), applying
its own connection's changes as it makes them. So a long-lived service reads the
machine's leases once, and each new pair costs a set copy, not a scan of every lease.
"""

from __future__ import annotations

from collections.abc import Iterable

#: A live lease's ``(ledger_id, model, app_num)``.
LeaseKey = tuple[int, str, int]


class PortIndex:
    """Live leases whose backend or frontend lies in ``span``, by port and by ledger."""

    def __init__(self, span: tuple[int, int], version: int, rows: Iterable[tuple[int, str, int, int, int]]) -> None:
        self.span = span
        #: ``PRAGMA data_version`` when it was read: another process's commit changes it.
        self.version = version
        self.pairs: dict[LeaseKey, tuple[int, int]] = {}
        self.holders: dict[int, set[LeaseKey]] = {}
        #: The ports of ``holders``, kept as a set: copying a set costs a quarter of building one from a dict.
        self.leased: set[int] = set()
        self.by_ledger: dict[int, set[LeaseKey]] = {}
        # ``put`` inlined for the first reading (each live lease once): a command-line write reads every lease
        # of the machine in its span once, 1,000 of them for a ledger of 1,000 rows.
        low, high = span
        pairs, holders, by_ledger = self.pairs, self.holders, self.by_ledger
        for ledger_id, model, app_num, backend, frontend in rows:
            key = (ledger_id, model, app_num)
            inside = low <= backend <= high
            if inside:
                holders.setdefault(backend, set()).add(key)
            if low <= frontend <= high:
                holders.setdefault(frontend, set()).add(key)
            elif not inside:
                continue
            pairs[key] = (backend, frontend)
            by_ledger.setdefault(ledger_id, set()).add(key)
        self.leased.update(holders)

    def put(self, key: LeaseKey, pair: tuple[int, int] | None) -> None:
        """Record that ``key`` is leased on ``pair`` now (``None``: its lease ended)."""
        low, high = self.span  # compared inline: a batch of 1,000 new rows puts 1,000 pairs
        old = self.pairs.pop(key, None)
        if old is not None:
            for port in old:
                if low <= port <= high:
                    owners = self.holders[port]
                    owners.discard(key)
                    if not owners:
                        del self.holders[port]
                        self.leased.discard(port)
            self.by_ledger[key[0]].discard(key)
        if pair is None:
            return
        inside = [port for port in pair if low <= port <= high]
        if not inside:
            return
        self.pairs[key] = pair
        for port in inside:
            self.holders.setdefault(port, set()).add(key)
            self.leased.add(port)
        self.by_ledger.setdefault(key[0], set()).add(key)

    def ledgers(self) -> set[int]:
        """The ledgers that hold a live lease here."""
        return {ledger_id for ledger_id, keys in self.by_ledger.items() if keys}

    def ports(self, skip: set[LeaseKey], gone: set[int]) -> set[int]:
        """The leased ports, but those whose every holder is in ``skip`` or belongs to a ``gone`` ledger."""
        taken = self.leased.copy()
        doubtful = [key for key in skip if key in self.pairs]
        doubtful += [key for ledger_id in gone for key in self.by_ledger.get(ledger_id, ())]
        low, high = self.span
        for key in doubtful:
            for port in self.pairs[key]:
                if low <= port <= high and all(owner in skip or owner[0] in gone for owner in self.holders[port]):
                    taken.discard(port)
        return taken
