"""The build of the ``kontex`` distribution: metadata and packages are in pyproject.toml; this
adds what ``kontex dev`` needs from outside the package folder to a wheel.

``kontex dev`` serves the built dashboard (``web/dist``) at ``/`` and runs the Lambda handlers
(``functions/``). An editable install reads both from the source tree; a wheel (``pip install
.``, or one built from the sdist, which carries both: MANIFEST.in) gets copies in the package,
``kontex/local/dashboard`` and ``kontex/local/functions`` (``kontex/local/static.py`` and
``kontex/functions.py`` look there first). When ``web/dist`` is not built yet it is built here,
as ``make web`` does (npm ci + vite build: Node.js is needed then).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
WEB = ROOT / "web"
# source folder -> where a wheel carries it (under the build's package root)
BUNDLED = {"web/dist": "kontex/local/dashboard", "functions": "kontex/local/functions"}
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


def ensure_dashboard() -> None:
    """``web/dist``, built when it is missing and the sources are here."""
    if (WEB / "dist" / "index.html").is_file():
        return
    if not (WEB / "package.json").is_file():
        raise SystemExit("kontex: web/dist is missing and web/ has no sources to build it from")
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(
            "kontex: the dashboard (web/dist) is not built and npm is not on PATH: install"
            " Node.js, or run `make web` where it is, then build again"
        )
    print("kontex: building the dashboard (npm ci + vite build in web/)", flush=True)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=WEB, check=True)
    npx = shutil.which("npx") or "npx"
    vite = [npx, "--no-install", "vite", "build", "--logLevel", "warn"]
    subprocess.run(vite, cwd=WEB, check=True)


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # the source tree's web/dist and functions/ are used as they are
            return
        ensure_dashboard()
        for source, target in BUNDLED.items():
            copy = Path(self.build_lib, target)
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(ROOT / source, copy, ignore=SKIPPED)


class Sdist(sdist):
    def run(self) -> None:
        ensure_dashboard()  # before the file list is made: MANIFEST.in grafts web/dist
        super().run()


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
