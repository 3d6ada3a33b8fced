"""Every command of ``portalloc``: where it lives, its one-line summary, and the section of ``--help`` it is listed in.

A table rather than imports: ``portalloc get`` imports its own module and no other, and
``portalloc --help`` lists every command from here without importing any (``cli.lazy``, and
``cli.roothelp`` without click).
"""

from __future__ import annotations


class LazyCommand:
    """Where a command lives (``"module:attribute"``) and its one-line summary, as ``--help`` lists it.

    A plain class, not a ``NamedTuple``: ``portalloc --help`` reads this table without importing ``typing``.
    """

    __slots__ = ("path", "summary")

    def __init__(self, path: str, summary: str) -> None:
        self.path = path
        self.summary = summary


#: ``portalloc --help`` lists the commands in these sections, in this order; a command in
#: none of them is listed under "Other commands". Names of commands that are not
#: installed are skipped, so a section may name a command another branch adds.
COMMAND_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Daily use", ("get", "run", "env", "dotenv", "list", "status", "release", "cleanup", "get-many")),
    ("The ledger", ("check", "stats", "repair", "fmt", "compose-check", "import", "export", "history", "diff")),
    ("Git", ("git-setup", "merge-driver")),
    ("This machine", ("host",)),
    ("The platform", ("init", "policy", "reserve", "pool")),
    ("HTTP API", ("serve",)),
)


#: Every command: its name, where it lives (``module:function``) and its summary (the first
#: sentence of its docstring, as ``--help`` lists it). A command's module is imported only
#: when that command runs (``LazyGroup``), so ``portalloc get`` pays for itself alone and
#: ``portalloc --help`` for none. To add a command, add its entry here;
#: ``tests/cli/test_cli_imports.py`` checks each summary against the command's docstring.
COMMANDS = {
    "get": LazyCommand(
        "portalloc.cli.commands.get:get",
        "Print the port pair of MODEL's app APP_NUM, allocating the lowest free pair if it has none.",
    ),
    "list": LazyCommand(
        "portalloc.cli.commands.list:list_allocations",
        "List allocations sorted by model and app number, with the pairs this work tree uses.",
    ),
    "check": LazyCommand(
        "portalloc.cli.commands.check:check",
        "Validate the ledger (or each LEDGER given) and report every port or key used twice (exit 1 if any).",
    ),
    "stats": LazyCommand(
        "portalloc.cli.commands.stats:stats",
        "Show allocations, capacity and free pairs: overall, per range (each pool, the shared range) and per model.",
    ),
    "release": LazyCommand(
        "portalloc.cli.commands.release:release",
        "Release the pair of MODEL's app APP_NUM, or of every app of --model (exit 1 if there is none).",
    ),
    "cleanup": LazyCommand(
        "portalloc.cli.commands.cleanup:cleanup",
        "Release allocations whose app directory APPS_DIR/<model dir>/app<N> no longer exists.",
    ),
    "merge-driver": LazyCommand(
        "portalloc.cli.commands.merge_driver:merge_driver",
        "Merge three versions of a ledger into OURS (git calls it as `portalloc merge-driver %O %A %B`).",
    ),
    "git-setup": LazyCommand(
        "portalloc.cli.commands.git_setup:git_setup",
        "Use portalloc's merge driver for the ledger in this repository (safe to run again).",
    ),
    "repair": LazyCommand(
        "portalloc.cli.commands.repair:repair",
        "Rewrite a ledger that has conflicts (after a plain textual merge, say) so that it has none.",
    ),
    "fmt": LazyCommand(
        "portalloc.cli.commands.fmt:fmt",
        "Rewrite the ledger (or each LEDGER given) in canonical form: sorted, one allocation per line.",
    ),
    "env": LazyCommand(
        "portalloc.cli.commands.env:env",
        "Print BACKEND_PORT and FRONTEND_PORT of MODEL's app APP_NUM, allocating the pair if it has none.",
    ),
    "run": LazyCommand(
        "portalloc.cli.commands.run:run",
        "Run COMMAND with BACKEND_PORT, FRONTEND_PORT and PORT of MODEL's app APP_NUM in its environment.",
    ),
    "dotenv": LazyCommand(
        "portalloc.cli.commands.dotenv:dotenv",
        "Write BACKEND_PORT and FRONTEND_PORT of MODEL's app APP_NUM into PATH (a .env file).",
    ),
    "status": LazyCommand(
        "portalloc.cli.commands.status:status",
        "Show, for each allocation, whether its ports are listening and flag ports held by something else.",
    ),
    "compose-check": LazyCommand(
        "portalloc.cli.commands.compose_check:compose_check",
        "Report host ports the compose project publishes that another app holds, or that are not MODEL/APP's pair.",
    ),
    "get-many": LazyCommand(
        "portalloc.cli.commands.get_many:get_many",
        "Print the pair of every key in FILE (default: standard input), allocating the new ones.",
    ),
    "release-many": LazyCommand(
        "portalloc.cli.commands.release_many:release_many",
        "Release every key in FILE (default: standard input), in the formats get-many reads.",
    ),
    "import": LazyCommand(
        "portalloc.cli.commands.import_:import_allocations",
        "Import allocations from FILE, each keeping its own ports when they are free and valid.",
    ),
    "export": LazyCommand(
        "portalloc.cli.commands.export:export",
        "Write every allocation out, sorted by model and app number.",
    ),
    "history": LazyCommand(
        "portalloc.cli.commands.history:history",
        "Allocations and releases over the ledger's git history, the growth rate, and when the range runs out.",
    ),
    "diff": LazyCommand(
        "portalloc.cli.commands.diff:diff",
        "Say what a change does to the ledger: allocations added, released, moved, policy changes, conflicts.",
    ),
    "init": LazyCommand(
        "portalloc.cli.commands.init:init",
        "Create the ledger (PATH, else --ledger or the default) with no allocations and this policy.",
    ),
    "policy": LazyCommand(
        "portalloc.cli.commands.policy:policy",
        "Show the ledger's policy: its ranges, pairs, usable pairs, reserved ports, pools, and what is skipped.",
    ),
    "reserve": LazyCommand(
        "portalloc.cli.commands.reserve:reserve",
        "Never hand out these ports (a team's Redis on 6379, say).",
    ),
    "unreserve": LazyCommand(
        "portalloc.cli.commands.reserve:unreserve",
        "Hand these ports out again (ports that were not reserved are ignored).",
    ),
    "pool": LazyCommand(
        "portalloc.cli.commands.pool:pool",
        "Give a model its own pairs: its new apps take them first, and no other model ever does.",
    ),
    "serve": LazyCommand(
        "portalloc.cli.commands.serve:serve",
        "Serve the ledger over HTTP until SIGTERM or Ctrl-C.",
    ),
    "host": LazyCommand(
        "portalloc.cli.commands.host:host",
        "List this machine's ledgers and live leases, and the ports two ledgers both claim.",
    ),
}
