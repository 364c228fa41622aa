"""Generate ``kontex_client/_restore.py``: a copy of the server's restore module
(``layers/core/kontex/services/restore.py``, standard library only), so the client and the
server restore a bundle by one implementation.

    python clients/python/scripts/gen_restore.py [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _generated import finish

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "layers" / "core" / "kontex" / "services" / "restore.py"
TARGET = ROOT / "clients" / "python" / "kontex_client" / "_restore.py"
HEADER = (
    "# Generated from layers/core/kontex/services/restore.py\n"
    "# by clients/python/scripts/gen_restore.py: do not edit by hand.\n"
)


def generate() -> str:
    text = SOURCE.read_text()
    if "import kontex" in text or "from kontex" in text:
        raise SystemExit(f"{SOURCE} must import only the standard library (the client copies it)")
    return HEADER + text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the copy is stale")
    args = parser.parse_args()
    return finish({TARGET: generate()}, check=args.check, script=__file__)


if __name__ == "__main__":
    sys.exit(main())
