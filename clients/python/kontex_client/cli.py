"""``kontex`` commands that talk to a server over the API: ``sessions ls``, ``snapshots ls``,
``show``, ``export`` and ``import``.

One ``kontex`` command for users: when the server package (``kontex``) is installed too, its
``kontex`` command carries these subcommands (``register``) and this entry point hands over
to it, so ``dev``, ``keys``, ``migrate``... work whichever of the two installed the script.
The server names its command in the ``kontex.cli`` entry-point group (``main``): the client
knows that group, not the server.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from kontex_client._base import DEFAULT_URL
from kontex_client._errors import KontexError
from kontex_client._sync_client import Kontex

COMMANDS = ("sessions", "snapshots", "show", "export", "import")


class Bar:
    """A progress bar on stderr, drawn only on a terminal."""

    def __init__(self, label: str, stream: Any = None, enabled: bool | None = None) -> None:
        self.label, self.stream = label, stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        width = 30
        filled = width * done // total
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        self.stream.flush()
        self.drawn = True

    def end(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _short(text: Any, width: int = 70) -> str:
    if not isinstance(text, str):
        text = json.dumps(text, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _client(args: argparse.Namespace) -> Kontex:
    return Kontex(args.url, args.api_key)


def cmd_sessions_ls(args: argparse.Namespace) -> int:
    with _client(args) as client:
        sessions = []
        for session in client.sessions.iter(status=args.status):
            sessions.append(session)
            if args.limit and len(sessions) >= args.limit:
                break
    if args.json:
        _print_json([s.model_dump(mode="json") for s in sessions])
        return 0
    if not sessions:
        print("No sessions.")
        return 0
    rows = [[s.id, _short(s.name, 40), s.status, _when(s.updated_at)] for s in sessions]
    print(table(["ID", "NAME", "STATUS", "UPDATED (UTC)"], rows))
    return 0


def cmd_snapshots_ls(args: argparse.Namespace) -> int:
    with _client(args) as client:
        entries = client.sessions.timeline(args.session)
    if args.json:
        _print_json([e.model_dump(mode="json") for e in entries])
        return 0
    if not entries:
        print("No snapshots.")
        return 0
    rows = [
        [
            e.id,
            _short(e.task_name or e.task_id, 24),
            _short(e.label, 40),
            e.source,
            e.token_total,
            _when(e.created_at),
        ]
        for e in entries
    ]
    print(table(["ID", "TASK", "LABEL", "SOURCE", "TOKENS", "CREATED (UTC)"], rows))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with _client(args) as client:
        snapshot = client.snapshots.get(args.snapshot)
    if args.json:
        _print_json(snapshot.model_dump(mode="json"))
        return 0
    b = snapshot.bundle
    print(f"{snapshot.id}  {snapshot.label}")
    print(
        table(
            ["", ""],
            [
                ["session", snapshot.session_id],
                ["task", snapshot.task_id],
                ["source", snapshot.source],
                ["model", snapshot.model or ""],
                ["tokens", snapshot.token_total],
                ["parent", snapshot.parent_snapshot_id or ""],
                ["rollback of", snapshot.rollback_of or ""],
                ["forked from", snapshot.forked_from or ""],
                ["created (UTC)", _when(snapshot.created_at)],
            ],
        ).split("\n", 1)[1]
    )
    print(f"\nMessages ({len(b.messages)}):")
    rows = [[i, m.get("role", ""), _short(m.get("content", ""))] for i, m in enumerate(b.messages)]
    if rows:
        print(table(["#", "ROLE", "CONTENT"], rows))
    if b.tool_calls:
        print(f"\nTool calls ({len(b.tool_calls)}):")
        rows = [[c.get("tool"), c.get("status"), _short(c.get("input"), 50)] for c in b.tool_calls]
        print(table(["TOOL", "STATUS", "INPUT"], rows))
    if b.files:
        print(f"\nFiles ({len(b.files)}):")
        rows = [[f.get("path"), f.get("token_count")] for f in b.files]
        print(table(["PATH", "TOKENS"], rows))
    if b.reasoning:
        print(f"\nReasoning: {_short(b.reasoning, 200)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from kontex_client import archive

    target = Path(args.output or f"{args.session}.kontex")
    bar = Bar("exporting", enabled=False if args.json else None)
    with _client(args) as client:
        summary = archive.export_session(client, args.session, target, progress=bar)
    bar.end()
    if args.json:
        _print_json(summary)
    else:
        print(
            f"Exported session {summary['session_id']}: {summary['tasks']} task(s), "
            f"{summary['snapshots']} snapshot(s), {summary['items']} item(s) "
            f"-> {summary['path']} ({summary['bytes']} bytes)"
        )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from kontex_client import archive

    verified = archive.read(Path(args.archive))
    bar = Bar("importing", enabled=False if args.json else None)
    with _client(args) as client:
        summary = archive.import_session(client, verified, progress=bar, keep_ids=args.keep_ids)
    bar.end()
    if args.json:
        _print_json(summary)  # with "ids": each archived id and its id here
    else:
        print(
            f"Imported session {summary['from_session_id']} as {summary['session_id']}: "
            f"{summary['tasks']} task(s), {summary['snapshots']} snapshot(s) (hashes verified)"
        )
    return 0


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """API errors as one line on stderr and exit status 1 (a usage error is 2: no key given)."""

    def run(args: argparse.Namespace) -> int:
        if not args.api_key:  # the server would refuse with the HTTP headers as the fix
            print(
                "kontex: no API key: give --api-key or set KONTEX_API_KEY (`kontex keys create`"
                " makes one)",
                file=sys.stderr,
            )
            return 2
        try:
            return command(args)
        except KontexError as error:
            print(f"kontex: {error}", file=sys.stderr)
            return 1
        except OSError as error:
            print(f"kontex: {error}", file=sys.stderr)
            return 1

    return run


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=os.environ.get("KONTEX_URL") or DEFAULT_URL,
        help=f"the server (KONTEX_URL, default {DEFAULT_URL})",
    )
    common.add_argument(
        "--api-key", default=os.environ.get("KONTEX_API_KEY"), help="the key (KONTEX_API_KEY)"
    )
    common.add_argument("--json", action="store_true", help="print JSON for machines")
    return common


def register(sub: Any) -> None:
    """Add the client's commands to a ``kontex`` parser's subparsers."""
    common = _common()
    sessions = sub.add_parser("sessions", help="sessions on the server").add_subparsers(
        dest="sessions_command", required=True
    )
    ls = sessions.add_parser("ls", parents=[common], help="list sessions, newest first")
    ls.add_argument("--status", choices=["active", "paused", "completed"], default=None)
    ls.add_argument("--limit", type=int, default=0, help="at most this many (default: all)")
    ls.set_defaults(func=_guarded(cmd_sessions_ls))

    snapshots = sub.add_parser("snapshots", help="snapshots of a session").add_subparsers(
        dest="snapshots_command", required=True
    )
    snap_ls = snapshots.add_parser("ls", parents=[common], help="a session's snapshots")
    snap_ls.add_argument("session", metavar="SESSION")
    snap_ls.set_defaults(func=_guarded(cmd_snapshots_ls))

    show = sub.add_parser("show", parents=[common], help="a snapshot and its content")
    show.add_argument("snapshot", metavar="SNAPSHOT")
    show.set_defaults(func=_guarded(cmd_show))

    export = sub.add_parser("export", parents=[common], help="write a session to a .kontex archive")
    export.add_argument("session", metavar="SESSION")
    export.add_argument("-o", "--output", default=None, help="the archive (SESSION.kontex)")
    export.set_defaults(func=_guarded(cmd_export))

    imp = sub.add_parser(
        "import", parents=[common], help="verify a .kontex archive and write it as a new session"
    )
    imp.add_argument("archive", metavar="ARCHIVE")
    imp.add_argument(
        "--keep-ids",
        action="store_true",
        help="keep the archive's ids (refused where any exists); --json lists the id map",
    )
    imp.set_defaults(func=_guarded(cmd_import))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kontex", description=__doc__)
    register(parser.add_subparsers(dest="command", required=True))
    return parser


FULLER_COMMAND = "kontex.cli"  # entry-point group: a `kontex` command that carries this one


def main(argv: list[str] | None = None) -> int:
    for fuller in entry_points(group=FULLER_COMMAND, name="main"):  # the server's: one for all
        return int(fuller.load()(argv))
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
