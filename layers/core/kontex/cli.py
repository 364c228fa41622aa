"""The ``kontex`` command: ``dev``, ``migrate``, ``keys``, ``prune``, ``reindex``,
``dead-letters`` and ``tail``, and the client's commands over the API (``sessions``,
``snapshots``, ``show``, ``export``, ``import``: ``kontex_client.cli``, found through the
``kontex.commands`` entry-point group)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kontex import __version__
from kontex.domain.errors import KontexError

if TYPE_CHECKING:
    from kontex.bootstrap import Container

COMMANDS = "kontex.commands"  # entry-point group: register(subparsers) of another package
# The commands of this package: for these the other packages' commands are not loaded, and the
# heavy modules are imported by the command itself (`kontex dev` checks its port first).
OWN_COMMANDS = {"dev", "migrate", "keys", "prune", "reindex", "dead-letters", "tail"}


def _storage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="embedded data folder (default .kontex)"
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="postgresql://... (default: KONTEX_DATABASE_URL, else SQLite in the data dir)",
    )


def _container(args: argparse.Namespace) -> Container:
    from kontex.bootstrap import Container
    from kontex.settings import Settings

    config = Settings.from_env(kontex_data_dir=args.data_dir, kontex_database_url=args.database_url)
    return Container(config)


def cmd_dev(args: argparse.Namespace) -> int:
    from kontex.local import listen

    sock = listen.bind(args.host, args.port)  # first: a busy port is one line, at once

    from kontex.local.server import serve

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    serve(_container(args), args.host, args.port, sock, notes=_path_notes())
    return 0


def _path_notes() -> list[str]:
    """How to put this ``kontex`` on PATH, when a shell would not find it there (``make dev``
    runs ``.venv/bin/kontex``; the README's commands say ``kontex``)."""
    import shutil

    here = Path(sys.executable).parent
    command = here / "kontex"
    if not command.exists():
        return []
    found = shutil.which("kontex")
    if found is not None and Path(found).resolve() == command.resolve():
        return []
    export = f"`export PATH={here}:$PATH`"
    if (here / "activate").exists():
        shown = here.relative_to(Path.cwd()) if here.is_relative_to(Path.cwd()) else here
        how = f"`source {shown / 'activate'}` (or {export})"
    else:
        how = export
    what = "is not on PATH" if found is None else f"on PATH is {found}, not {command}"
    return [f"`kontex` {what}: for the kontex commands, in another shell, {how} first"]


def cmd_migrate(args: argparse.Namespace) -> int:
    applied = _container(args).migrate()
    print(f"applied: {', '.join(applied)}" if applied else "database is up to date")
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from kontex.services import keys

    container = _container(args)
    container.migrate()
    key, plaintext = keys.create_key(container.deps, args.label, args.account)
    secret, database = container.api_key_secret_source, _database_shown(container)
    if args.json:
        made = {"id": key.id, "key": plaintext, "label": key.label, "account_id": key.account_id}
        print(json.dumps({**made, "secret": secret, "database": database}))
    else:
        print(f"Created key {key.id} ({key.label}) for account {key.account_id}")
        print(f"  {plaintext}")
        print("Store it now: it is shown only once.")
        bound = (
            f"the {secret} it was hashed with"
            if secret in (keys.FROM_ENV, keys.FROM_SECRETS_MANAGER)
            else f"the secret of the data dir {secret}"
        )
        print(
            f"It works on a server with {bound} and the database {database}"
            " (`kontex dev --data-dir ...`, `--database-url ...`); others refuse it."
        )
    return 0


def _database_shown(container: Container) -> str:
    """The database keys are stored in, as a person recognises it (no password)."""
    from urllib.parse import urlsplit, urlunsplit

    url = container.settings.kontex_database_url
    if url is None:
        return str((container.settings.kontex_data_dir / "kontex.db").resolve())
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    return urlunsplit(parts)


def cmd_keys_list(args: argparse.Namespace) -> int:
    from kontex.services import keys

    container = _container(args)
    rows = keys.list_keys(container.deps, args.account)
    if args.json:
        print(json.dumps([k.model_dump(mode="json") for k in rows]))
        return 0
    for k in rows:
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        print(f"{k.id}  {k.prefix}...  {k.label}  {state}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from kontex.services import keys

    keys.revoke_key(_container(args).deps, args.account, args.key_id)
    print(f"revoked {args.key_id}")
    return 0


def _duration(text: str) -> timedelta:
    from kontex.services.retention import parse_duration

    try:
        return parse_duration(text)
    except KontexError as error:
        raise argparse.ArgumentTypeError(error.message) from None


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def cmd_prune(args: argparse.Namespace) -> int:
    from kontex.services import retention

    container = _container(args)
    container.store.migrate()
    deps = container.deps
    cutoff = deps.clock() - args.older_than
    result = retention.prune(deps, cutoff, args.account, dry_run=args.dry_run, limit=args.limit)
    if args.json:
        print(json.dumps(result.as_json()))
        return 0
    since = f"{cutoff:%Y-%m-%d %H:%M} UTC"
    if not result.sessions:
        print(f"No session idle since {since}: nothing to prune.")
    else:
        verb = "Would remove" if result.dry_run else "Removed"
        print(f"{verb} {len(result.sessions)} session(s) idle since {since}:")
        header = ["ACCOUNT", "SESSION", "NAME", "LAST ACTIVITY (UTC)", "SNAPSHOTS"]
        rows = [header if result.dry_run else [*header, "BLOBS"]]
        for s in result.sessions:
            name = s.name if len(s.name) <= 30 else s.name[:29] + "…"
            row = [
                s.account_id,
                s.session_id,
                name,
                f"{s.last_activity:%Y-%m-%d %H:%M}",
                str(s.snapshots),
            ]
            rows.append(row if result.dry_run else [*row, str(s.blobs)])
        print("\n".join("  " + line for line in _table(rows)))
        if result.dry_run:
            print(
                f"Dry run: {len(result.sessions)} session(s), {result.snapshots} snapshot(s)"
                " would be removed; nothing was deleted."
            )
        else:
            print(
                f"Removed {len(result.sessions)} session(s), {result.snapshots} snapshot(s),"
                f" {result.blobs} blob(s)."
            )
    if result.skipped:
        print(f"Skipped (written to or purged meanwhile): {', '.join(result.skipped)}")
    if result.more:
        print(f"More idle sessions remain past the limit of {args.limit}: run again.")
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from kontex.services import search

    container = _container(args)
    container.store.migrate()
    deps = container.deps
    total = search.count_snapshots(deps, args.account, args.session)
    done = 0

    def progress(_: Any) -> None:
        nonlocal done
        done += 1
        _bar(done, total)

    try:
        seen, written = search.reindex(
            deps, account_id=args.account, session_id=args.session, progress=progress
        )
    finally:
        close = getattr(container.index, "close", None)
        if close is not None:
            close()  # Qdrant's local folder is free again for `kontex dev`
    if total:
        print(file=sys.stderr)
    print(f"Reindexed {seen} snapshot(s): {written} new point(s) in the vector index.")
    return 0


def _bar(done: int, total: int, width: int = 30) -> None:
    """A progress bar on stderr, redrawn in place."""
    filled = width * done // max(total, 1)
    percent = 100 * done // max(total, 1)
    line = f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} snapshots {percent:3d}%"
    print(line, end="", file=sys.stderr, flush=True)


def _local_queue(args: argparse.Namespace) -> Any:
    from kontex.adapters.local_queue import QUEUE_FILE, LocalQueue
    from kontex.settings import Settings

    config = Settings.from_env(kontex_data_dir=args.data_dir)
    path = config.kontex_data_dir / QUEUE_FILE
    if not path.exists():
        raise KontexError(f"no local queue at {path} (has `kontex dev` run with this data dir?)")
    return LocalQueue(path)


def cmd_dead_letters_list(args: argparse.Namespace) -> int:
    queue = _local_queue(args)
    letters = queue.dead_letters(args.queue)
    queue.close()
    if args.json:
        print(json.dumps([d.as_json() for d in letters]))
        return 0
    if not letters:
        print("No dead letters.")
        return 0
    rows = [["ID", "QUEUE", "RECEIVES", "FAILED (UTC)", "REASON"]]
    for d in letters:
        reason = d.reason if len(d.reason) <= 80 else d.reason[:79] + "…"
        row = [d.id, d.queue, str(d.receives), d.as_json()["failed_at"], reason]
        rows.append(row)
    print("\n".join(_table(rows)))
    return 0


def cmd_dead_letters_replay(args: argparse.Namespace) -> int:
    if not args.ids and not args.all:
        raise KontexError("give the ids of the dead letters to replay, or --all")
    queue = _local_queue(args)
    known = {d.id for d in queue.dead_letters()}
    unknown = [i for i in args.ids if i not in known]
    if unknown:
        queue.close()
        raise KontexError(f"no such dead letter: {', '.join(unknown)}")
    replayed = queue.replay(None if args.all else args.ids)
    queue.close()
    if args.json:
        print(json.dumps({"replayed": replayed}))
    else:
        print(f"Replayed {len(replayed)} message(s); `kontex dev` delivers them again.")
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    import os

    from kontex.tail import run

    key = args.api_key or os.environ.get("KONTEX_API_KEY")
    if not key:
        raise KontexError("give an API key with --api-key or KONTEX_API_KEY")
    return run(args.url, key, args.session_id, as_json=args.json)


def build_parser(commands: bool = True) -> argparse.ArgumentParser:
    """The ``kontex`` parser; with ``commands``, also other packages' commands (the client's)."""
    parser = argparse.ArgumentParser(prog="kontex", description=__doc__)
    parser.add_argument("--version", action="version", version=f"kontex {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run the local stack")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8787)
    _storage_options(dev)
    dev.set_defaults(func=cmd_dev)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    _storage_options(migrate)
    migrate.set_defaults(func=cmd_migrate)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True
    )
    create = keys.add_parser("create", help="create a key (and an account, without --account)")
    create.add_argument("--label", required=True)
    create.add_argument("--account", default=None, help="add the key to this account")
    create.add_argument("--json", action="store_true", help="print {id, key, label, account_id}")
    _storage_options(create)
    create.set_defaults(func=cmd_keys_create)

    listing = keys.add_parser("list", help="list an account's keys (no secrets)")
    listing.add_argument("--account", required=True)
    listing.add_argument("--json", action="store_true")
    _storage_options(listing)
    listing.set_defaults(func=cmd_keys_list)

    revoke = keys.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id")
    revoke.add_argument("--account", required=True)
    _storage_options(revoke)
    revoke.set_defaults(func=cmd_keys_revoke)

    prune = sub.add_parser(
        "prune",
        help="purge whole sessions idle for longer than a duration (rows and blobs)",
        description="Purge every session with no activity (session, task, snapshot or "
        "enrichment) for longer than --older-than, as DELETE /v1/sessions/{id}?purge=true does.",
    )
    prune.add_argument(
        "--older-than", required=True, type=_duration, metavar="DURATION", help="30d, 12h or 90m"
    )
    prune.add_argument("--account", default=None, help="only this account's sessions")
    prune.add_argument("--dry-run", action="store_true", help="list them, delete nothing")
    prune.add_argument(
        "--limit", type=int, default=1000, help="at most this many sessions per run (1000)"
    )
    prune.add_argument("--json", action="store_true", help="print the result as JSON")
    _storage_options(prune)
    prune.set_defaults(func=cmd_prune)

    reindex = sub.add_parser(
        "reindex",
        help="embed existing snapshots into the search index (what is there is skipped)",
        description="Re-embed stored snapshots (all, one account's or one session's) with the"
        " configured embedder; run it after turning on Voyage AI or a Qdrant server. Stop"
        " `kontex dev` first: Qdrant's local folder has one writer.",
    )
    reindex.add_argument("--session", default=None, help="only this session")
    reindex.add_argument("--account", default=None, help="only this account")
    _storage_options(reindex)
    reindex.set_defaults(func=cmd_reindex)

    dead = sub.add_parser(
        "dead-letters",
        help="list or replay the local queue's dead letters (on AWS: the DLQ redrive)",
    ).add_subparsers(dest="dead_letters_command", required=True)
    dead_list = dead.add_parser("list", help="messages that failed every delivery, and why")
    dead_list.add_argument("--queue", default=None, help="only this queue (spans, capture)")
    dead_list.add_argument("--json", action="store_true")
    dead_list.add_argument("--data-dir", type=Path, default=None)
    dead_list.set_defaults(func=cmd_dead_letters_list)
    replay = dead.add_parser("replay", help="send dead letters to their queue again")
    replay.add_argument("ids", nargs="*", metavar="ID")
    replay.add_argument("--all", action="store_true", help="every dead letter")
    replay.add_argument("--json", action="store_true")
    replay.add_argument("--data-dir", type=Path, default=None)
    replay.set_defaults(func=cmd_dead_letters_replay)

    tail = sub.add_parser(
        "tail",
        help="follow a session's live feed: one line per event",
        description="Connect to the live feed, subscribe to SESSION and print one line per "
        "event as it arrives; reconnects with backoff; Ctrl-C stops.",
    )
    tail.add_argument("session_id", metavar="SESSION")
    tail.add_argument("--api-key", default=None, help="default: KONTEX_API_KEY")
    tail.add_argument(
        "--url", default="ws://127.0.0.1:8787/ws", help="the live feed (default %(default)s)"
    )
    tail.add_argument("--json", action="store_true", help="print each event as raw JSON")
    tail.set_defaults(func=cmd_tail)

    # commands other packages add: the client's (sessions, snapshots, show, export, import over
    # the API) register themselves in this entry-point group, so neither package imports the other
    if commands:
        from importlib.metadata import entry_points

        for registered in entry_points(group=COMMANDS):
            registered.load()(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    own = bool(given) and given[0] in OWN_COMMANDS
    args = build_parser(commands=not own).parse_args(given)
    try:
        return int(args.func(args))
    except KontexError as error:
        print(f"kontex: {error.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
