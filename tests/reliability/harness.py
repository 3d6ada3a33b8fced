"""Prove portalloc loses nothing: run every reliability part and print the figures.

    python -m tests.reliability.harness                # the published run: P=16, M=50, 200 kills
    python -m tests.reliability.harness -p 4 -m 5 -k 10 --lock-trials 3   # a quick one

Parts: (a) contention through the real CLI, the API, and both at once; (b) crash
injection by SIGKILL; (c) death of a process holding the lock; (d) the bad-input
matrix; (e) scaffolders racing ``cleanup``; (f) storage under git and hostile paths:
writers during a ``git checkout`` loop, the lock deleted by ``git clean -fdX`` while
held, a symlink swapped in under a writer; (g) a local process attacking ``portalloc
serve`` (half-open connections, a writer stopped holding the lock, idle event streams,
chunked bodies) and how long a read took meanwhile. Exit status 0 only when every part reports
zero lost, zero duplicates, zero
corrupt ledgers, zero errors and a clean failure for every hostile input.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from tests.reliability.bad_input import Outcome, run_matrix
from tests.reliability.cleanup_race import CleanupRaceResult, run_cleanup_race
from tests.reliability.contention import ContentionResult, run_contention
from tests.reliability.crash import CrashResult, LockDeathResult, run_crash_injection, run_lock_holder_death
from tests.reliability.processes import own_state_dir
from tests.reliability.server_attacks import AttackResult, run_server_attacks, spread
from tests.reliability.storage import (
    GitRewriteResult,
    LockDeletionResult,
    PathSwapResult,
    run_git_rewrites,
    run_lock_deletion,
    run_path_swaps,
)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, numbers right-aligned, as a Markdown-compatible pipe table."""
    cells = [[str(c) for c in header], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [all(_is_number(row[i]) for row in cells[1:]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric, strict=True)]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "|".join(
        ("-" * (w + 1) + ":") if num else ("-" * (w + 2)) for w, num in zip(widths, numeric, strict=True)
    )
    return "\n".join([line(cells[0]), rule + "|", *(line(row) for row in cells[1:])])


def _cell(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def contention_table(results: Sequence[ContentionResult]) -> str:
    """Part (a)."""
    header = ("front end", "processes", "requested", "present", "duplicates", "lost", "errors", "wall s")
    rows = [
        (r.front_end, r.processes, r.requested, r.present, r.duplicates, r.lost, r.errors, r.wall_seconds)
        for r in results
    ]
    return table(header, rows)


def crash_table(result: CrashResult) -> str:
    """Part (b)."""
    header: tuple[str, ...] = ("trials", "calls returned", "corrupt", "conflicted", "lost", "unexpected")
    header += ("writer errors", "kills leaving a temp file", "temp files after next write")
    row = (
        result.trials,
        result.calls_returned,
        result.corrupt,
        result.conflicted,
        result.lost,
        result.unexpected,
        result.writer_errors,
        result.kills_leaving_temp,
        result.temps_after_next_write,
    )
    return table(header, [row])


def lock_death_table(result: LockDeathResult) -> str:
    """Part (c)."""
    header: tuple[str, ...] = ("trials", "timed out while held", "error named the lock file", "next writer ok")
    header += ("ms to lock after death (median / max)", "ms to lock, uncontended (median / max)")
    row = (
        result.trials,
        result.timed_out_while_held,
        result.named_lock_file,
        min(result.acquired_after_death, result.cli_ok_after_death),
        _spread(result.wait_after_death_ms),
        _spread(result.wait_uncontended_ms),
    )
    return table(header, [row])


def storage_table(git: GitRewriteResult, deletion: LockDeletionResult, swaps: PathSwapResult) -> str:
    """Part (e): one row per hostile event; what must be zero is zero."""
    header = ("event", "trials", "answers", "held port handed out", "lost", "duplicates", "unclean", "refused")
    rows = [
        (
            f"git checkout -f loop ({git.checkouts} checkouts)",
            git.answers + git.clean_refusals + git.unclean_failures,
            git.answers,
            git.reused_held,
            0,
            0,
            git.unclean_failures,
            git.clean_refusals,
        ),
        (
            "git clean -fdX deletes the held lock",
            deletion.trials,
            2 * deletion.both_present,
            0,
            deletion.lost,
            deletion.duplicates,
            deletion.errors,
            0,
        ),
        ("symlink to a victim swapped in", swaps.trials, 0, 0, 0, 0, swaps.victim_changed, swaps.refused),
    ]
    return table(header, rows)


def _spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.2f} / {max(values):.2f}" if values else "-"


def matrix_table(outcomes: Sequence[Outcome]) -> str:
    """Part (d): one line per hostile input, one column per command; a cell is the exit code(s), ✗ a failure."""
    commands = sorted({o.case.command for o in outcomes if o.case.front_end == "cli"})
    grid: dict[str, dict[str, list[Outcome]]] = defaultdict(lambda: defaultdict(list))
    for outcome in outcomes:
        column = outcome.case.command if outcome.case.front_end == "cli" else "API"
        grid[outcome.case.hostile][column].append(outcome)
    rows = []
    for hostile, by_column in grid.items():
        row: list[object] = [hostile]
        for column in [*commands, "API"]:
            cell = by_column.get(column, [])
            if not cell:
                row.append("")
            elif not all(o.passed for o in cell):
                row.append("✗")
            elif column == "API":
                row.append(f"ok×{len(cell)}")
            else:
                row.append("/".join(sorted({str(o.exit_code) for o in cell})))
        rows.append(row)
    return table(("hostile input", *commands, "API"), rows)


def cleanup_race_table(results: Sequence[CleanupRaceResult]) -> str:
    """Part (e)."""
    header = ("order", "scaffolders", "apps made", "cleanup runs", "live apps released", "pairs reissued")
    header += ("ports held twice", "errors", "wall s")
    rows = [
        (r.order, r.scaffolders, r.apps, r.cleanup_runs, r.released_live, r.reissued, r.duplicates, r.errors, r.wall_s)
        for r in results
    ]
    return table(header, rows)


def attack_table(results: Sequence[AttackResult]) -> str:
    """Part (g): one row per attack, the reads during it, and what became of it."""
    header = ("attack", "reads ok", "read ms (median / max)", "PUT ms (median / max)", "the attack")
    header += ("log bytes", "peak RSS MiB")
    rows = [
        (
            r.attack,
            f"{len(r.read_ms)} of {len(r.read_ms) + r.failed_reads}",
            spread(r.read_ms),
            spread(r.write_ms),
            r.outcome,
            r.log_bytes,
            r.peak_rss_mib,
        )
        for r in results
    ]
    return table(header, rows)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.harness", description=__doc__.split("\n")[0])
    parser.add_argument("-p", "--processes", type=int, default=16, help="contention: processes (default 16)")
    parser.add_argument("-m", "--allocations", type=int, default=50, help="contention: new keys each (default 50)")
    parser.add_argument("-k", "--kills", type=int, default=200, help="crash injection: SIGKILLs (default 200)")
    parser.add_argument("--lock-trials", type=int, default=20, help="lock-holder deaths (default 20)")
    parser.add_argument("--seed", type=int, default=3, help="random seed of the kill moments (default 3)")
    parser.add_argument("--git-writers", type=int, default=4, help="storage: writers during checkouts (default 4)")
    parser.add_argument("--git-gets", type=int, default=50, help="storage: gets per writer (default 50)")
    parser.add_argument("--storage-trials", type=int, default=20, help="storage: lock deletions, swaps (default 20)")
    parser.add_argument(
        "--parts",
        default="abcdefg",
        help="which parts to run: a contention, b crash, c lock death, d bad input, e cleanup races, f storage, "
        "g server attacks",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected parts, print their tables, and return 0 if nothing was lost or mishandled."""
    args = _parse(argv)
    own_state_dir()  # the children's host lease store is the run's own, never the user's
    failures: list[str] = []
    print(f"portalloc reliability harness: {platform.python_implementation()} {platform.python_version()}, ", end="")
    print(f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs, seed {args.seed}")
    with tempfile.TemporaryDirectory(prefix="portalloc-reliability-") as scratch:
        root = Path(scratch)
        if "a" in args.parts:
            p, m = args.processes, args.allocations
            results = [
                run_contention(root / "cli.json", cli_workers=p, api_workers=0, per_worker=m, label="cli"),
                run_contention(root / "api.json", cli_workers=0, api_workers=p, per_worker=m, label="api"),
                run_contention(
                    root / "mixed.json", cli_workers=p // 2, api_workers=p - p // 2, per_worker=m, label="cli+api"
                ),
            ]
            _section(f"(a) contention: P={p} processes x M={m} new allocations each, one ledger per row")
            print(contention_table(results))
            for r in results:
                if r.duplicates or r.lost or r.errors or r.present != r.requested:
                    failures.append(f"contention {r.front_end}: {r} {list(r.error_samples)}")
        if "b" in args.parts:
            started = time.perf_counter()
            crash = run_crash_injection(root / "crash.json", kills=args.kills, seed=args.seed)
            _section(f"(b) crash injection: {args.kills} SIGKILLs of a writer ({time.perf_counter() - started:.0f} s)")
            print(crash_table(crash))
            if crash.corrupt or crash.conflicted or crash.lost or crash.unexpected or crash.writer_errors:
                failures.append(f"crash injection: {crash.samples[:5]}")
            if crash.temps_after_next_write:
                failures.append(f"crash injection: {crash.temps_after_next_write} temp files were not swept")
        if "c" in args.parts:
            death = run_lock_holder_death(root / "lock.json", trials=args.lock_trials)
            _section(f"(c) lock-holder death: {args.lock_trials} writers SIGKILLed while holding the lock")
            print(lock_death_table(death))
            ok = death.trials == death.timed_out_while_held == death.named_lock_file
            if not ok or not death.trials == death.acquired_after_death == death.cli_ok_after_death:
                failures.append(f"lock-holder death: {death.samples[:5]}")
        if "d" in args.parts:
            started = time.perf_counter()
            outcomes = run_matrix()
            passed = sum(o.passed for o in outcomes)
            _section(
                f"(d) bad input: {len(outcomes)} cases, {passed} refused cleanly with every file unchanged "
                f"({time.perf_counter() - started:.0f} s)"
            )
            print(matrix_table(outcomes))
            failures += [
                f"bad input: {o.case.label}: {o.problem}: {list(o.error_lines[:3])}" for o in outcomes if not o.passed
            ]
        if "e" in args.parts:
            p, m = max(2, args.processes // 4), args.allocations
            races = [
                run_cleanup_race(root / f"race-{order}", scaffolders=p, apps_each=m, order=order)
                for order in ("allocate-first", "dir-first")
            ]
            _section(
                f"(e) cleanup races: {p} scaffolders x {m} apps against a looping cleanup; "
                "'allocate-first' is the old way, shown for contrast"
            )
            print(cleanup_race_table(races))
            safe = races[1]
            if safe.released_live or safe.duplicates or safe.errors or races[0].errors:
                failures.append(f"cleanup race: {safe}")
        if "f" in args.parts:
            started = time.perf_counter()
            git = run_git_rewrites(root, writers=args.git_writers, gets_each=args.git_gets)
            deletion = run_lock_deletion(root, trials=args.storage_trials)
            swaps = run_path_swaps(trials=args.storage_trials)
            _section(f"(f) storage: git rewrites, lock deletion, path swaps ({time.perf_counter() - started:.0f} s)")
            print(storage_table(git, deletion, swaps))
            for refusal in sorted(set(git.refusals)):
                print(f"\nrefused during the checkout loop ({git.refusals.count(refusal)}x): {refusal}")
            if git.reused_held or git.unclean_failures:
                failures.append(f"git rewrites: {git.samples[:5]}")
            if deletion.lost or deletion.duplicates or deletion.errors or deletion.both_present != deletion.trials:
                failures.append(f"lock deletion: {deletion.samples[:5]}")
            if swaps.victim_changed or swaps.refused != swaps.trials or swaps.samples:
                failures.append(f"path swaps: {swaps.samples[:5]}")
        if "g" in args.parts:
            attacks = run_server_attacks()
            _section("(g) a local process attacks portalloc serve (each attack on a fresh server)")
            print(attack_table(attacks))
            failures += [f"server attack: {r.attack}: {r.failed_reads} reads failed" for r in attacks if r.failed_reads]
    if failures:
        _section(f"FAILED ({len(failures)})")
        for failure in failures:
            print(f"- {failure}")
        return 1
    print("\nAll parts passed: nothing lost, nothing duplicated, no corrupt ledger, every bad input refused.")
    return 0


def _section(title: str) -> None:
    print(f"\n{title}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
