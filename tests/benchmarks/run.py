"""Benchmark portalloc against port-for and an SQLite baseline, on this machine, in one run.

    pip install --group bench            # port-for (and matplotlib via --group bench-plot for a PNG)
    python tests/benchmarks/run.py       # the full run, a few minutes
    python tests/benchmarks/run.py --quick

Every operation is measured on every contender once per round, and the rounds repeat, so
the contenders take turns (interleaved) and a burst of load from elsewhere on the
machine lands on all of them. The table shows the median and the min–max of the rounds,
and ratios of medians from this same run. ``python -c pass`` is the floor of any
command-line figure: starting an interpreter. The write floor is the bare atomic replace
(temp file, write, fsync, rename, directory fsync) of the n=1,000 ledger's bytes, timed
among the allocation rows; every write row is also given per durable write as a ratio to
it, in the last column. Beside it, the lease floor (the host lease store's commit of one
lease) and the lock floor (the ledger's lock taken and released, as a write takes it):
an API allocation's target is a multiple of the two disk floors, and the lock is the
first thing it pays for out of what that leaves. Rows marked "probe off" repeat a
portalloc figure with ``probe=False`` (the OS bind tests off, as SQLite never probes)
and take their ratios from the peers of the row above. Two rows time whole batches
through the CLI: ``get-many`` of 1,000 new keys against the SQLite baseline inserting
them in one transaction (``sqlite_cli.py --many``), and ``import`` of the original
10,000-row ``port_configurations`` table. After the table comes each target, met or not.
The stores live in a temporary directory (``--keep`` keeps it); the contenders are in
``stores.py`` and ``clis.py``. Every command-line contender starts the way a user's
does: portalloc and port-for from one regular install, the peers' scripts under that
install's interpreter and byte-compiled beforehand (``clis.compile_scripts``: under
``PYTHONDONTWRITEBYTECODE=1`` they would otherwise compile ``stores.py`` on every call),
so no contender pays a start-up cost the others do not.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portalloc.machine.leases import LeaseStore
    from portalloc.storage.files import FileDirectory
    from portalloc.storage.locking import HeldLock

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import http_api  # noqa: E402
from clis import (  # noqa: E402
    compile_scripts,
    console_script,
    environment,
    floor_command,
    get_command,
    get_many_command,
    help_command,
    parse_output,
)
from install import REPOSITORY, use_regular  # noqa: E402
from stores import STORES, Key, Store, create_original_table, keys_for, open_store, state_dir, store_file  # noqa: E402

CONTENDERS = ("portalloc", "sqlite", "port-for")
TITLES = {"portalloc": "portalloc", "sqlite": "SQLite baseline", "port-for": "port-for", "floor": "floor"}
#: The write floor's contender: the bare atomic replace of the n=1,000 ledger's bytes.
WRITE_FLOOR = "atomic-replace"
WRITE_FLOOR_LABEL = "atomic replace of the n=1,000 ledger's bytes (write floor)"
#: The lease store's own commit, alone: one lease written in one ``BEGIN IMMEDIATE`` transaction.
LEASE_FLOOR = "lease-commit"
LEASE_FLOOR_LABEL = "the lease store's commit of one lease (lease floor)"
#: The ledger's lock, alone: taken and released as a write takes it (filelock and the inode checks).
LOCK_FLOOR = "lock-cycle"
LOCK_FLOOR_LABEL = "the ledger lock taken and released (lock floor)"
#: The floors' contenders: rows of one figure each, shown without ratios and kept by ``--only``.
FLOORS = ("floor", WRITE_FLOOR, LEASE_FLOOR, LOCK_FLOOR)
#: The API allocation's target: at most this many times the two disk floors together.
API_DISK_LIMIT = 1.6


@dataclass
class Row:
    """One line of the table: an operation, its samples per contender, and lost/duplicate counts."""

    label: str
    contenders: tuple[str, ...]
    samples: dict[str, list[float]] = field(default_factory=dict)
    lost: dict[str, list[int]] = field(default_factory=dict)
    duplicates: dict[str, list[int]] = field(default_factory=dict)
    max_samples: dict[str, int] = field(default_factory=dict)
    cli: bool = False
    #: Durable ledger writes per sample (0: not a write row): the ratio to the write floor is per write.
    writes: int = 0
    #: A variant row: this contender fills the portalloc column, and ratios use ``versus``'s peers.
    stand_in: str | None = None
    versus: Row | None = None

    def add(self, contender: str, seconds: float) -> None:
        self.samples.setdefault(contender, []).append(seconds)

    def wants(self, contender: str) -> bool:
        limit = self.max_samples.get(contender)
        return limit is None or len(self.samples.get(contender, [])) < limit

    def median(self, contender: str) -> float | None:
        values = self.samples.get(contender)
        return statistics.median(values) if values else None


# --- timing --------------------------------------------------------------------------------


def run_timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall time of one command, and its stdout; a failure stops the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"benchmark command failed ({done.returncode}): {' '.join(argv)}\n{done.stderr}")
    return elapsed, done.stdout


def per_call(function: Callable[[], object], budget: float) -> Callable[[], float]:
    """A sampler that runs ``function`` enough times to fill ``budget`` seconds; one sample is the mean."""
    start = time.perf_counter()
    function()
    calls = max(1, int(budget / max(time.perf_counter() - start, 1e-7)))

    def sample() -> float:
        gc.collect()
        begin = time.perf_counter()
        for _ in range(calls):
            function()
        return (time.perf_counter() - begin) / calls

    # Calibrate once more on a warm path (the first call may have paid for a parse).
    warm = sample()
    calls = max(1, min(200_000, int(budget / max(warm, 1e-7))))
    return sample


class Counter:
    """Fresh key numbers, so every "new key" really is new."""

    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        self.value += 1
        return self.value


# --- the benchmark ---------------------------------------------------------------------------


class Benchmark:
    """Builds the stores, runs the rounds, prints the table."""

    def __init__(self, workdir: Path, quick: bool, rounds: int, concurrent_rounds: int) -> None:
        self.workdir = workdir
        self.quick = quick
        self.rounds = rounds
        self.concurrent_rounds = concurrent_rounds
        self.sizes = (100, 1000, 10000)
        self.budget = 0.01 if quick else 0.03
        self.allocations_per_sample = 3 if quick else 5
        self.processes, self.per_process = 8, 25
        self.counter = Counter()
        self.stores: dict[tuple[str, str], Store] = {}
        self.rows: list[Row] = []
        self.floor = Row("`python -c pass` (floor)", ("floor",), cli=True)
        self.write_floor = Row(WRITE_FLOOR_LABEL, (WRITE_FLOOR,), stand_in=WRITE_FLOOR)
        self.lease_floor = Row(LEASE_FLOOR_LABEL, (LEASE_FLOOR,), stand_in=LEASE_FLOOR)
        #: The lease floor's own store (``lease_commit``) and its ledger's id there.
        self.leases: LeaseStore | None = None
        self.lease_ledger = 0
        self.lock_floor = Row(LOCK_FLOOR_LABEL, (LOCK_FLOOR,), stand_in=LOCK_FLOOR)
        #: The lock floor's ledger directory and the lock it takes again (``lock_cycle``).
        self.lock_directory: FileDirectory | None = None
        self.spare_lock: HeldLock | None = None
        #: The ``portalloc serve`` rows' server, started by ``plan`` when the 'serve' extra is installed.
        self.http: http_api.HttpBench | None = None

    # setup ------------------------------------------------------------------------------------

    def store(self, contender: str, label: str, n: int) -> Store:
        """The driver's own (warm, long-lived) store object for a scenario, created on first use."""
        if (contender, label) not in self.stores:
            path = store_file(self.workdir, contender, label)
            STORES[contender].create(path, n)
            self.stores[(contender, label)] = open_store(contender, path)
        return self.stores[(contender, label)]

    def path(self, contender: str, label: str) -> Path:
        return store_file(self.workdir, contender, label)

    # samplers ---------------------------------------------------------------------------------

    def cli_help(self, contender: str) -> float:
        return run_timed(help_command(contender), environment())[0]

    def cli_get_existing(self, contender: str, label: str = "cli") -> float:
        """``get`` of an existing key; ``label`` "cli-reserved" for the ledger with reserved ports and a pool."""
        self.store(contender, label, 1000)
        argv, env = get_command(contender, self.path(contender, label), ("model_3", 42))
        elapsed, output = run_timed(argv, env)
        assert parse_output(contender, output), output
        return elapsed

    def cli_get_new(self, contender: str) -> float:
        store = self.store(contender, "cli", 1000)
        key = ("cli_new", self.counter.next())
        argv, env = get_command(contender, self.path(contender, "cli"), key)
        elapsed, _ = run_timed(argv, env)
        store.release([key])
        return elapsed

    def api_lookup(self, contender: str, n: int, samplers: dict[tuple[str, int], Callable[[], float]]) -> float:
        if (contender, n) not in samplers:
            store = self.store(contender, f"n{n}", n)
            keys = random.Random(n).sample(keys_for(n), min(n, 64))
            position = [0]

            def lookup() -> object:
                position[0] = (position[0] + 1) % len(keys)
                return store.lookup(keys[position[0]])

            samplers[(contender, n)] = per_call(lookup, self.budget)
        return samplers[(contender, n)]()

    def atomic_replace(self, _contender: str) -> float:
        """The write floor: temp file, write, fsync, rename, directory fsync of the n=1,000 ledger's bytes.

        Nothing else: no lock, no read, no parse, no check. A portalloc allocation makes
        exactly one such write, so its ratio to this is what portalloc adds to the disk.
        """
        self.store("portalloc", "n1000", 1000)
        data = self.path("portalloc", "n1000").read_bytes()
        directory = self.workdir / "floor"
        directory.mkdir(exist_ok=True)
        total = 0.0
        for _ in range(self.allocations_per_sample):
            start = time.perf_counter()
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            fd = os.open(directory / ".ledger.json.tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            os.replace(directory / ".ledger.json.tmp", directory / "ledger.json")
            os.fsync(dir_fd)
            os.close(dir_fd)
            total += time.perf_counter() - start
        return total / self.allocations_per_sample

    def lease_commit(self, _contender: str) -> float:
        """The lease floor: one lease recorded and committed in the host lease store, and nothing else.

        An allocation with host leases on makes exactly one such commit beside its ledger
        write, so the two floors together are what the disk asks of it.
        """
        from portalloc.machine.leases import open_store as open_leases

        if self.leases is None:
            self.leases = open_leases(self.workdir / "lease-floor")
            with self.leases.transaction():
                self.lease_ledger = self.leases.ledger_id(f"path:{self.workdir / 'lease-floor.json'}", None, None)
        total = 0.0
        for _ in range(self.allocations_per_sample):
            key, port = ("lease", self.counter.next()), 1024 + self.counter.value % 60_000
            start = time.perf_counter()
            with self.leases.transaction():
                self.leases.lease(self.lease_ledger, key, (port, port + 1))
            total += time.perf_counter() - start
        return total / self.allocations_per_sample

    def lock_cycle(self, _contender: str) -> float:
        """The lock floor: the ledger's lock taken and released as a write takes it, and nothing else.

        Not a disk cost: it is the first thing an allocation pays for out of what its
        target leaves beyond the two disk floors (``targets`` says how much of it).
        """
        from portalloc.storage import locking
        from portalloc.storage.files import FileDirectory

        if self.lock_directory is None:
            self.lock_directory = FileDirectory(self.workdir / "lock-floor.json")
        total = 0.0
        for _ in range(self.allocations_per_sample):
            start = time.perf_counter()
            held = locking.acquire(self.lock_directory, 5.0, reuse=self.spare_lock)
            held.release()
            total += time.perf_counter() - start
            self.spare_lock = held
        return total / self.allocations_per_sample

    def api_allocate(self, contender: str, n: int) -> float:
        store = self.store(contender, f"n{n}", n)
        total = 0.0
        for _ in range(self.allocations_per_sample):
            key = ("api_new", self.counter.next())
            start = time.perf_counter()
            store.allocate(key)
            total += time.perf_counter() - start
            store.release([key])  # back to n rows, untimed
        return total / self.allocations_per_sample

    def cli_host(self, *args: str) -> float:
        """``portalloc host ARGS`` over the store with 30,000 live and 70,000 ended leases."""
        self.store("portalloc-host-100k", "n1000", 1000)
        state = state_dir(self.path("portalloc-host-100k", "n1000"))
        return run_timed([console_script("portalloc"), "host", *args], environment(PORTALLOC_STATE_DIR=str(state)))[0]

    def allocate_many(self, contender: str) -> float:
        store = self.store(contender, "many", 1000)
        keys = [(f"batch_{self.counter.next()}", j) for j in range(1, 1001)]
        gc.collect()
        start = time.perf_counter()
        pairs = store.allocate_many(keys)
        elapsed = time.perf_counter() - start
        assert len(pairs) == len(keys)
        store.release(keys)
        return elapsed

    def cli_get_many(self, contender: str) -> float:
        """One process allocating 1,000 new keys: ``portalloc get-many`` against one SQLite transaction."""
        store = self.store(contender, "cli-many", 1000)
        keys = [(f"cli_batch_{self.counter.next()}", j) for j in range(1, 1001)]
        batch = self.workdir / f"batch-{contender}.txt"
        batch.write_text("".join(f"{model} {app_num}\n" for model, app_num in keys))
        path = self.path(contender, "cli-many")
        env = environment(PORTALLOC_STATE_DIR=str(state_dir(path)))
        elapsed, output = run_timed(get_many_command(contender, path, batch), env)
        printed = json.loads(output) if contender == "portalloc" else output.splitlines()
        assert len(printed) == len(keys), output[-200:]
        store.release(keys)  # back to 1,000 rows, untimed
        return elapsed

    def cli_import(self, contender: str) -> float:
        """``portalloc import`` of the old 10,000-row table into a fresh ledger with room for it."""
        database = self.workdir / "original-10000.db"
        if not database.exists():
            create_original_table(database, 10_000)
        ledger = self.path(contender, f"import-{self.counter.next()}")
        STORES[contender].create(ledger, 0)  # an empty ledger with the wide policy the rows fit
        argv = [console_script("portalloc"), "--ledger", str(ledger), "import", "--json", str(database)]
        elapsed, output = run_timed(argv, environment(PORTALLOC_STATE_DIR=str(state_dir(ledger))))
        report = json.loads(output)
        # The old table, like the old allocator, put one row on 10080 (a browsers' bad port): import refuses it.
        assert (report["imported"], report["skipped_by_reason"]) == (9_999, {"refused by the policy": 1}), output[:300]
        ledger.unlink()
        return elapsed

    def concurrent(self, row: Row, mode: str, contender: str) -> float:
        """P processes × K new keys at once; records lost and duplicated allocations on ``row``."""
        label = f"conc-{mode}-{self.counter.next()}"
        path = self.path(contender, label)
        STORES[contender].create(path, 0)
        workers = [
            subprocess.Popen(
                [sys.executable, str(HERE / "worker.py"), mode, contender, str(path), str(i), str(self.per_process)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=HERE,
                env=environment(),
            )
            for i in range(self.processes)
        ]
        for worker in workers:
            if worker.stdout is None or worker.stdout.readline().strip() != "ready":
                raise SystemExit(f"a {contender} worker failed to start")
        start = time.perf_counter()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        reports = []
        for worker in workers:
            assert worker.stdout is not None
            reports.append(json.loads(worker.stdout.readline()))
            worker.wait()
        elapsed = max(report["end"] for report in reports) - start
        final = open_store(contender, path).snapshot()
        lost = sum(len(report["errors"]) for report in reports)
        holders: dict[int, set[Key]] = {}
        for report in reports:
            for model, app_num, ports in report["results"]:
                stored = final.get((model, app_num))
                stored_ports = list(stored) if isinstance(stored, tuple) else [stored]
                if stored is None or stored_ports != ports:
                    lost += 1
                for port in ports:
                    holders.setdefault(port, set()).add((model, app_num))
        row.lost.setdefault(contender, []).append(lost)
        row.duplicates.setdefault(contender, []).append(sum(1 for keys in holders.values() if len(keys) > 1))
        return elapsed

    # rounds -----------------------------------------------------------------------------------

    def plan(self) -> list[tuple[Row, Callable[[str], float], int]]:
        """Every row with its sampler and how many rounds it takes part in."""
        lookups: dict[tuple[str, int], Callable[[], float]] = {}
        rounds, few = self.rounds, self.concurrent_rounds
        existing = Row("CLI `get`, existing key (n=1,000)", CONTENDERS, cli=True)
        plan: list[tuple[Row, Callable[[str], float], int]] = [
            (self.floor, lambda _c: run_timed(floor_command(), environment())[0], rounds),
            (Row("CLI `--help`", ("portalloc", "port-for"), cli=True), self.cli_help, rounds),
            (existing, self.cli_get_existing, rounds),
            (
                Row(
                    "… CLI `get`, existing key, reserved ports and a pool",
                    ("portalloc-reserved",),
                    cli=True,
                    stand_in="portalloc-reserved",
                    versus=existing,
                ),
                lambda c: self.cli_get_existing(c, "cli-reserved"),
                rounds,
            ),
            (Row("CLI `get`, new key (n=1,000)", CONTENDERS, cli=True), self.cli_get_new, rounds),
        ]
        for n in self.sizes:
            plan.append(
                (
                    Row(f"API lookup, existing key (n={n:,})", CONTENDERS),
                    lambda c, n=n: self.api_lookup(c, n, lookups),
                    rounds,
                )
            )
        # The write floor sits among the allocation rows, so the same moments of load land on both.
        plan.append((self.write_floor, self.atomic_replace, rounds))
        plan.append((self.lease_floor, self.lease_commit, rounds))
        plan.append((self.lock_floor, self.lock_cycle, rounds))
        allocation_rows = {}
        for n in self.sizes:
            allocation_rows[n] = Row(f"API new allocation (n={n:,})", CONTENDERS, writes=1)
            plan.append((allocation_rows[n], lambda c, n=n: self.api_allocate(c, n), rounds))
        # port-for has no batch call: 1,000 binds of ~10 ms each, so it gets fewer rounds.
        many = Row("API `allocate_many`, 1,000 new keys (n=1,000)", CONTENDERS, max_samples={"port-for": few}, writes=1)
        plan.append((many, self.allocate_many, rounds))
        # What the OS probe costs: the same calls with probe=False (SQLite never probes).
        off = ("portalloc-noprobe",)
        plan.append(
            (
                Row(
                    "… new allocation (n=1,000), probe off",
                    off,
                    stand_in=off[0],
                    versus=allocation_rows[1000],
                    writes=1,
                ),
                lambda c: self.api_allocate(c, 1000),
                rounds,
            )
        )
        # What host leases cost a write: the same call with leases off, and on a machine with many leases.
        for stand_in, label in (
            ("portalloc-noleases", "… new allocation (n=1,000), leases off"),
            ("portalloc-host-100", "… new allocation (n=1,000), 100 leases on the machine"),
            ("portalloc-host-100k", "… new allocation (n=1,000), 30,000 live + 70,000 ended leases"),
        ):
            row = Row(label, (stand_in,), stand_in=stand_in, versus=allocation_rows[1000], writes=1)
            plan.append((row, lambda c: self.api_allocate(c, 1000), rounds))
        host_rows = (
            ("CLI `host` (first 100 by port), 100,000 leases", ()),
            ("CLI `host --json`, 100,000 leases", ("--json",)),
        )
        for label, args in host_rows:
            plan.append((Row(label, ("portalloc",), cli=True), lambda _c, args=args: self.cli_host(*args), rounds))
        many_off = Row("… `allocate_many`, probe off", off, stand_in=off[0], versus=many, writes=1)
        plan.append((many_off, self.allocate_many, rounds))
        cli_many = Row("CLI `get-many`, 1,000 new keys (n=1,000)", ("portalloc", "sqlite"), cli=True)
        plan.append((cli_many, self.cli_get_many, rounds))
        plan.append((Row("CLI `import`, 10,000-row SQLite table", ("portalloc",), cli=True), self.cli_import, rounds))
        writes = self.processes * self.per_process
        conc_api = Row(f"{self.processes} processes × {self.per_process} new keys, API", CONTENDERS, writes=writes)
        conc_cli = Row(f"{self.processes} processes × {self.per_process} new keys, CLI", CONTENDERS)
        plan.append((conc_api, lambda c, r=conc_api: self.concurrent(r, "api", c), few))
        conc_off = Row("… API, probe off", off, stand_in=off[0], versus=conc_api, writes=writes)
        plan.append((conc_off, lambda c, r=conc_off: self.concurrent(r, "api", c), few))
        plan.append((conc_cli, lambda c, r=conc_cli: self.concurrent(r, "cli", c), few))
        missing = http_api.available()
        if missing:
            print(missing, file=sys.stderr)
        else:
            self.http = http_api.HttpBench(self.workdir, self.quick)
            plan += self.http.plan(Row, rounds, few)
        return plan

    def run(self, only: Sequence[str] = ()) -> list[Row]:
        plan = self.plan()
        if only:
            # Iterating on a few figures: keep the floors and the rows whose label mentions one of ``only``.
            wanted = [text.lower() for text in only]
            plan = [
                entry
                for entry in plan
                if entry[0].contenders[0] in FLOORS or any(w in entry[0].label.lower() for w in wanted)
            ]
        self.rows = [row for row, _, _ in plan]
        total = max(rounds for _, _, rounds in plan)
        for round_number in range(total):
            started = time.perf_counter()
            for row, sampler, rounds in plan:
                if round_number >= rounds:
                    continue
                # Rotate who goes first, so no contender always follows the same neighbour.
                shift = round_number % len(row.contenders)
                for contender in row.contenders[shift:] + row.contenders[:shift]:
                    if row.wants(contender):
                        row.add(contender, sampler(contender))
            print(
                f"round {round_number + 1}/{total} done in {time.perf_counter() - started:.1f} s "
                f"(load {os.getloadavg()[0]:.2f})",
                file=sys.stderr,
                flush=True,
            )
        return self.rows


# --- reporting -------------------------------------------------------------------------------


def _unit(seconds: float) -> tuple[float, str]:
    # 999.6 µs prints as "1e+03 µs" with three significant digits: it goes to ms instead.
    if seconds < 0.9995e-3:
        return 1e6, "µs"
    if seconds < 0.9995:
        return 1e3, "ms"
    return 1.0, "s"


def _number(value: float) -> str:
    return f"{value:.3g}" if value < 999.5 else f"{value:.0f}"


def fmt_cell(row: Row, contender: str) -> str:
    """``median (min–max)`` in the median's unit, and lost/duplicate counts for P-process rows."""
    values = row.samples.get(contender)
    if not values:
        return "–"
    median, low, high = statistics.median(values), min(values), max(values)
    scale, unit = _unit(median)
    text = f"{_number(median * scale)} {unit} ({_number(low * scale)}–{_number(high * scale)})"
    if contender in row.lost:
        lost, dup = row.lost[contender], row.duplicates[contender]
        text += f", lost {_span(lost)}, dup {_span(dup)}"
    if len(values) != max(len(v) for v in row.samples.values()):
        text += f" [{len(values)} runs]"
    return text


def _span(values: list[int]) -> str:
    return str(values[0]) if min(values) == max(values) else f"{min(values)}–{max(values)}"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a is not None and b else "–"


def per_write_ratio(row: Row, ours: float | None, write_floor: float | None) -> str:
    """A write row's median per durable write, as a ratio to the write floor; empty for other rows."""
    if not row.writes or ours is None:
        return ""
    return ratio(ours / row.writes, write_floor)


def table(rows: list[Row], floor: Row, write_floor: Row) -> str:
    """The Markdown table: medians (min–max) per contender and same-run ratios of medians.

    A CLI row's last ratio is to ``python -c pass``; a write row's is per durable write,
    to the bare atomic replace of the same bytes.
    """
    floor_median = floor.median("floor")
    write_floor_median = write_floor.median(WRITE_FLOOR)
    header = [
        "operation",
        "portalloc",
        "SQLite baseline",
        "port-for",
        "portalloc ÷ SQLite",
        "portalloc ÷ port-for",
        "portalloc ÷ floor",
    ]
    lines = [header]
    for row in rows:
        if row.contenders[0] in FLOORS:
            lines.append([row.label, fmt_cell(row, row.stand_in or "floor"), "", "", "", "", ""])
            continue
        ours = row.median(row.stand_in or "portalloc")
        peers = row.versus or row
        lines.append(
            [
                row.label,
                fmt_cell(row, row.stand_in or "portalloc"),
                fmt_cell(row, "sqlite") if "sqlite" in row.contenders else "–",
                fmt_cell(row, "port-for"),
                ratio(ours, peers.median("sqlite")),
                ratio(ours, peers.median("port-for")),
                ratio(ours, floor_median) if row.cli else per_write_ratio(row, ours, write_floor_median),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append("| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) + " |")
        if index == 0:
            out.append("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(out)


def find(rows: list[Row], prefix: str) -> Row:
    return next(row for row in rows if row.label.startswith(prefix))


def targets(rows: list[Row], imports: dict[str, list[str]]) -> list[tuple[str, str, bool]]:
    """Each target: what it asks, what this run measured, and whether it is met."""

    def med(prefix: str, contender: str) -> float:
        value = find(rows, prefix).median(contender)
        assert value is not None
        return value

    results: list[tuple[str, str, bool]] = []

    def check(what: str, value: float, limit: float, note: str = "", sound: bool = True) -> None:
        results.append((what, f"{value:.2f}× (limit {limit:g}×){note}", sound and value <= limit))

    check(
        "API lookup, existing key, n=1,000 vs SQLite indexed lookup",
        med("API lookup, existing key (n=1,000)", "portalloc") / med("API lookup, existing key (n=1,000)", "sqlite"),
        1.0,
    )
    sqlite_new = med("API new allocation (n=1,000)", "sqlite")
    new_on = med("API new allocation (n=1,000)", "portalloc")
    new_off = med("… new allocation (n=1,000), probe off", "portalloc-noprobe")
    disk = med(WRITE_FLOOR_LABEL, WRITE_FLOOR) + med(LEASE_FLOOR_LABEL, LEASE_FLOOR)
    check(
        "API new allocation, n=1,000 vs the atomic replace of the same bytes plus the lease store's commit",
        new_on / disk,
        API_DISK_LIMIT,
        note=f"; probe off {new_off / disk:.2f}×",
    )
    room, lock = (API_DISK_LIMIT - 1) * disk, med(LOCK_FLOOR_LABEL, LOCK_FLOOR)
    results.append(
        (
            f"API new allocation, n=1,000, beyond the two disk floors (reported, no target; {API_DISK_LIMIT:g}× leaves "
            f"{_number(room * 1e3)} ms)",
            f"{_number((new_on - disk) * 1e3)} ms; the lock floor alone {_number(lock * 1e3)} ms, {lock / room:.0%} "
            "of what the target leaves",
            True,
        )
    )
    check(
        "API new allocation, n=1,000 vs SQLite",
        new_on / sqlite_new,
        1.25,
        note=f"; probe off {new_off / sqlite_new:.2f}×",
    )
    leases_off = med("… new allocation (n=1,000), leases off", "portalloc-noleases")
    check("API new allocation, n=1,000, host leases on vs off", new_on / leases_off, 1.25)
    check(
        "API new allocation, n=1,000, 30,000 live + 70,000 ended leases vs 100 leases",
        med("… new allocation (n=1,000), 30,000 live", "portalloc-host-100k")
        / med("… new allocation (n=1,000), 100 leases", "portalloc-host-100"),
        2.0,
    )
    for prefix in ("CLI `host` (first 100 by port)", "CLI `host --json`"):
        results.append(
            (f"{prefix} with 100,000 leases (reported, no target)", f"{med(prefix, 'portalloc'):.2f} s", True)
        )
    check(
        "growth: new allocation at n=10,000 vs n=1,000",
        med("API new allocation (n=10,000)", "portalloc") / new_on,
        4.0,
    )
    many_off = med("… `allocate_many`, probe off", "portalloc-noprobe")
    check(
        "allocate_many(1,000) vs one new allocation (n=1,000)",
        med("API `allocate_many`", "portalloc") / new_on,
        10.0,
        note=f"; with probe=False {many_off / new_off:.2f}×",
    )
    conc, conc_off = find(rows, "8 processes × 25 new keys, API"), find(rows, "… API, probe off")
    faults = [
        max(row.lost[name]) + max(row.duplicates[name])
        for row, name in ((conc, "portalloc"), (conc_off, "portalloc-noprobe"))
    ]
    sqlite_conc = med("8 processes × 25 new keys, API", "sqlite")
    check(
        f"8 × 25 concurrent API allocations vs SQLite, 0 lost and 0 duplicates in {len(conc.lost['portalloc'])} rounds",
        med("8 processes × 25 new keys, API", "portalloc") / sqlite_conc,
        0.9,
        sound=not any(faults),
        note=f"; lost {max(conc.lost['portalloc'])}, dup {max(conc.duplicates['portalloc'])}; "
        f"with probe=False {med('… API, probe off', 'portalloc-noprobe') / sqlite_conc:.2f}× "
        f"(lost {max(conc_off.lost['portalloc-noprobe'])}, dup {max(conc_off.duplicates['portalloc-noprobe'])})",
    )
    port_for_lookup = med("CLI `get`, existing key", "port-for")
    check(
        "CLI get existing key vs port-for's lookup of an existing name",
        med("CLI `get`, existing key", "portalloc") / port_for_lookup,
        1.2,
    )
    check(
        "CLI get existing key, reserved ports and a pool in the policy, vs port-for's lookup",
        med("… CLI `get`, existing key, reserved", "portalloc-reserved") / port_for_lookup,
        1.2,
    )
    check(
        "CLI get new key vs port-for's binding of a new name",
        med("CLI `get`, new key", "portalloc") / med("CLI `get`, new key", "port-for"),
        1.5,
    )
    check("CLI --help vs port-for's --help", med("CLI `--help`", "portalloc") / med("CLI `--help`", "port-for"), 1.2)
    conc_cli = find(rows, "8 processes × 25 new keys, CLI")
    check(
        f"8 × 25 concurrent CLI gets vs SQLite as scripts, 0 lost, 0 dup in {len(conc_cli.lost['portalloc'])} rounds",
        med("8 processes × 25 new keys, CLI", "portalloc") / med("8 processes × 25 new keys, CLI", "sqlite"),
        3.0,
        sound=not (max(conc_cli.lost["portalloc"]) or max(conc_cli.duplicates["portalloc"])),
        note=f"; lost {max(conc_cli.lost['portalloc'])}, dup {max(conc_cli.duplicates['portalloc'])}",
    )
    check(
        "CLI get-many of 1,000 new keys vs SQLite inserting them in one transaction",
        med("CLI `get-many`", "portalloc") / med("CLI `get-many`", "sqlite"),
        1.0,
    )
    results.append(
        (
            "CLI import of a 10,000-row SQLite table (reported, no target)",
            f"{med('CLI `import`', 'portalloc'):.2f} s",
            True,
        )
    )
    if any(row.label.startswith(http_api.PREFIX) for row in rows):
        results += http_api.targets(rows)
    for command, heavy in imports.items():
        what = f"`{command}` imports none of click, pydantic, filelock"
        results.append((what, ", ".join(heavy) or "none", not heavy))
    return results


def heavy_imports(argv: list[str], ledger: Path | None = None) -> list[str]:
    """Top-level packages among {click, pydantic, filelock} that ``python -X importtime`` shows ``argv`` importing.

    ``ledger``: the scenario's ledger ``argv`` reads, whose own host lease store the timed rows used (another
    store has not leased its rows yet, and the first read there leases them: the full path, once).
    """
    # The environment variable, not -X: the console script runs under its own install's interpreter.
    extra = {} if ledger is None else {"PORTALLOC_STATE_DIR": str(state_dir(ledger))}
    done = subprocess.run(argv, capture_output=True, text=True, env=environment(PYTHONPROFILEIMPORTTIME="1", **extra))
    found = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            module = line.rsplit("|", 1)[1].strip()
            top = module.split(".")[0]
            if top in ("click", "pydantic", "pydantic_core", "filelock"):
                found.add(top)
    return sorted(found)


def write_png(rows: list[Row], path: Path) -> bool:
    """Per-operation time against ledger size, if matplotlib is installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, prefix, title in (
        (axes[0], "API lookup, existing key", "lookup of an existing key"),
        (axes[1], "API new allocation", "allocation of a new key"),
    ):
        for contender in CONTENDERS:
            sizes, medians = [], []
            for row in rows:
                if row.label.startswith(prefix) and row.median(contender) is not None:
                    sizes.append(int(row.label.rsplit("n=", 1)[1].rstrip(")").replace(",", "")))
                    medians.append(row.median(contender) * 1e3)  # type: ignore[operator]
            axis.plot(sizes, medians, marker="o", label=TITLES[contender])
        axis.set(xscale="log", yscale="log", xlabel="allocations in the store", ylabel="ms per call (median)")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and shorter samples, for iterating")
    parser.add_argument("--rounds", type=int, help="rounds of every single-process operation (default 9, quick 3)")
    parser.add_argument("--concurrent-rounds", type=int, help="rounds of the P-process runs (default 5, quick 1)")
    parser.add_argument("--png", type=Path, help="also draw time against ledger size here (needs matplotlib)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores for inspection")
    parser.add_argument(
        "--only",
        metavar="TEXT",
        action="append",
        help="run only the rows whose label contains TEXT (no target check); give it again for more rows",
    )
    parser.add_argument(
        "--editable",
        action="store_true",
        help="time the portalloc beside this interpreter (an editable install) instead of a regular install",
    )
    parser.add_argument(
        "--checkout",
        type=Path,
        default=REPOSITORY,
        help="install and time the portalloc of this work tree (default: this one), e.g. main's for an A/B",
    )
    args = parser.parse_args(argv)
    try:
        import port_for  # noqa: F401
    except ImportError:
        print("port-for is not installed: pip install --group bench", file=sys.stderr)
        return 2
    rounds = args.rounds or (3 if args.quick else 9)
    concurrent_rounds = args.concurrent_rounds or (1 if args.quick else 5)
    workdir = Path(tempfile.mkdtemp(prefix="portalloc-bench-"))
    os.environ["PORTALLOC_STATE_DIR"] = str(workdir / "state")  # host leases of the run's own (kept out of $HOME)
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}; "
        f"{rounds} rounds (P-process rows: {concurrent_rounds}); stores in {workdir}",
        file=sys.stderr,
    )
    if args.editable:
        print("portalloc: the install beside this interpreter (--editable)", file=sys.stderr)
    else:
        print(
            f"portalloc: a regular install of this checkout in {use_regular(workdir, args.checkout.resolve())}",
            file=sys.stderr,
        )
    compile_scripts(workdir)  # after the install: compiled by the interpreter that runs them
    bench = Benchmark(workdir, args.quick, rounds, concurrent_rounds)
    try:
        rows = bench.run(args.only or ())
        ledger = store_file(workdir, "portalloc", "cli")
        reserved = store_file(workdir, "portalloc-reserved", "cli-reserved")
        imports = {
            "portalloc --help": heavy_imports([console_script("portalloc"), "--help"]),
            "portalloc get (existing key)": heavy_imports(
                [console_script("portalloc"), "--ledger", str(ledger), "get", "model_3", "42"], ledger
            ),
            "portalloc get (existing key, reserved ports and a pool)": heavy_imports(
                [console_script("portalloc"), "--ledger", str(reserved), "get", "model_3", "42"], reserved
            ),
        }
    finally:
        if bench.http is not None:
            bench.http.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(table(rows, bench.floor, bench.write_floor))
    print()
    if args.png:
        if write_png(rows, args.png):
            print(f"wrote {args.png}")
        else:
            print("matplotlib is not installed; no PNG (pip install --group bench-plot)")
    if args.only:
        return 0
    print("÷ floor: a CLI row against `python -c pass`; a write row per durable write against the write floor.")
    print()
    print("Targets, as ratios of medians from this run:")
    all_met = True
    for what, value, met in targets(rows, imports):
        all_met &= met
        print(f"  [{'met' if met else 'NOT met'}] {what}: {value}")
    print(f"\n(load average at the end: {os.getloadavg()[0]:.2f})")
    if not all_met:
        print("some targets are not met in this run (see above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
