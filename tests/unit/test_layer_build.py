"""layers/build.py: what a layer leaves out."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "layers"))
import build  # noqa: E402
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


def test_the_core_layer_leaves_the_aws_sdk_to_the_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """boto3 and botocore are on Lambda's Python runtime: in the layer they put the api
    function and the embed worker over 250 MB unzipped. pip's install is faked: it lays out
    what it would have installed."""

    def pip(command: list[str], check: bool) -> None:
        site = Path(command[command.index("--target") + 1])
        for name in ("boto3", "botocore", "s3transfer", "jmespath", "pydantic", "uvicorn"):
            (site / name).mkdir()
            (site / f"{name}-1.0.dist-info").mkdir()

    monkeypatch.setattr(build.subprocess, "run", pip)
    layer = build.build_layer(tmp_path, "3.12", "arm64")

    left = sorted(p.name for p in (layer / "python").iterdir())
    assert left == [
        "kontex", "pydantic", "pydantic-1.0.dist-info", "uvicorn", "uvicorn-1.0.dist-info"
    ]  # fmt: skip
