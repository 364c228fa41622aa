"""The ``kontex`` command: ``dev``, ``migrate`` and ``keys``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from kontex import __version__
from kontex.bootstrap import Container
from kontex.domain.errors import KontexError
from kontex.settings import Settings


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
    config = Settings.from_env(kontex_data_dir=args.data_dir, kontex_database_url=args.database_url)
    return Container(config)


def cmd_dev(args: argparse.Namespace) -> int:
    from kontex.local.server import serve

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    serve(_container(args), args.host, args.port)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    applied = _container(args).migrate()
    print(f"applied: {', '.join(applied)}" if applied else "database is up to date")
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from kontex.services import keys

    container = _container(args)
    container.migrate()
    key, plaintext = keys.create_key(container.deps, args.label, args.account)
    if args.json:
        print(
            json.dumps(
                {"id": key.id, "key": plaintext, "label": key.label, "account_id": key.account_id}
            )
        )
    else:
        print(f"Created key {key.id} ({key.label}) for account {key.account_id}")
        print(f"  {plaintext}")
        print("Store it now: it is shown only once.")
    return 0


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


def build_parser() -> argparse.ArgumentParser:
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KontexError as error:
        print(f"kontex: {error.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
