"""The live host leases with a port in one span, indexed by port: what a new pair must avoid.

``LeaseStore`` builds one from the store's covering port indexes and keeps it while no
other process has committed to the store (SQLite's ``PRAGMA data_version``), applying
its own connection's changes as it makes them. So a long-lived service reads the
machine's leases once, and each new pair costs a set copy, not a scan of every lease.

A command-line write reads every lease in its span once (1,000 for a ledger of 1,000
rows) and asks one question, most often about no lease in particular: the first reading
keeps the pairs and the set of leased ports only; who holds each port (``holders``) is
worked out from the pairs when a question needs it (a lease that moves or ends, a port
in doubt), then kept up to date.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from operator import itemgetter

#: A live lease's ``(ledger_id, model, app_num)``.
LeaseKey = tuple[int, str, int]


class PortIndex:
    """Live leases whose backend or frontend lies in ``span``: their pairs, the ports they lease, their ledgers."""

    def __init__(self, span: tuple[int, int], version: int, rows: Iterable[tuple[int, str, int, int, int]]) -> None:
        self.span = span
        #: ``PRAGMA data_version`` when it was read: another process's commit changes it.
        self.version = version
        low, high = span
        self.pairs: dict[LeaseKey, tuple[int, int]] = {
            (ledger_id, model, app_num): (backend, frontend)
            for ledger_id, model, app_num, backend, frontend in rows
            if low <= backend <= high or low <= frontend <= high
        }
        #: The ports of the pairs in the span, kept as a set: copying a set costs a quarter of building one.
        self.leased: set[int] = {port for pair in self.pairs.values() for port in pair if low <= port <= high}
        #: How many of the pairs each ledger holds.
        self.counts: Counter[int] = Counter(map(itemgetter(0), self.pairs))
        self._holders: dict[int, set[LeaseKey]] | None = None

    @property
    def holders(self) -> dict[int, set[LeaseKey]]:
        """The leases of each leased port (worked out on first use, then kept)."""
        if self._holders is None:
            low, high = self.span
            holders: dict[int, set[LeaseKey]] = {}
            for key, pair in self.pairs.items():
                for port in pair:
                    if low <= port <= high:
                        holders.setdefault(port, set()).add(key)
            self._holders = holders
        return self._holders

    def put(self, key: LeaseKey, pair: tuple[int, int] | None) -> None:
        """Record that ``key`` is leased on ``pair`` now (``None``: its lease ended)."""
        low, high = self.span  # compared inline: a batch of 1,000 new rows puts 1,000 pairs
        old = self.pairs.get(key)
        if old is not None:
            holders = self.holders  # whether another lease holds the old ports too (worked out with this one)
            del self.pairs[key]
            for port in old:
                if low <= port <= high:
                    owners = holders[port]
                    owners.discard(key)
                    if not owners:
                        del holders[port]
                        self.leased.discard(port)
            self.counts[key[0]] -= 1
        if pair is None:
            return
        inside = [port for port in pair if low <= port <= high]
        if not inside:
            return
        self.pairs[key] = pair
        for port in inside:
            if self._holders is not None:
                self._holders.setdefault(port, set()).add(key)
            self.leased.add(port)
        self.counts[key[0]] += 1

    def ledgers(self) -> set[int]:
        """The ledgers that hold a live lease here."""
        return {ledger_id for ledger_id, count in self.counts.items() if count}

    def ports(self, skip: set[LeaseKey], gone: set[int]) -> set[int]:
        """The leased ports, but those whose every holder is in ``skip`` or belongs to a ``gone`` ledger."""
        taken = self.leased.copy()
        doubtful = [key for key in skip if key in self.pairs]
        if gone:
            doubtful += [key for key in self.pairs if key[0] in gone]
        if not doubtful:
            return taken
        low, high = self.span
        holders = self.holders
        for key in doubtful:
            for port in self.pairs[key]:
                if low <= port <= high and all(owner in skip or owner[0] in gone for owner in holders[port]):
                    taken.discard(port)
        return taken
