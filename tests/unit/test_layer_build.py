"""layers/build.py: what a layer leaves out."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "layers"))
from build import LOCAL_ONLY, dependencies, drop_packages  # noqa: E402

sys.path.pop(0)


def test_drop_packages_removes_folders_and_dist_info_only_of_those_named(tmp_path: Path) -> None:
    for name in ("hf_xet", "hf_xet-1.2.0.dist-info", "huggingface_hub", "tokenizers"):
        (tmp_path / name).mkdir()
    (tmp_path / "tokenizers-0.23.3.dist-info").mkdir()
    (tmp_path / "hf_xet.py").write_text("")

    gone = drop_packages(tmp_path, ("hf_xet", "huggingface_hub"))

    assert gone == ["hf_xet", "hf_xet-1.2.0.dist-info", "huggingface_hub"]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["hf_xet.py", "tokenizers", "tokenizers-0.23.3.dist-info"]


def test_local_only_dependencies_stay_out_of_the_core_layer() -> None:
    core = {d.split(">")[0].split("=")[0].split("<")[0] for d in dependencies()}
    assert LOCAL_ONLY and not (LOCAL_ONLY & core)


def test_the_proxy_functions_server_is_in_the_core_layer() -> None:
    """functions/proxy/server.py runs uvicorn (httptools and uvloop under it) in Lambda: the
    core layer carries them, or the function cannot start."""
    core = {d.split(">")[0].split("=")[0].split("<")[0].split(";")[0] for d in dependencies()}
    assert {"uvicorn", "httptools", "uvloop"} <= core
