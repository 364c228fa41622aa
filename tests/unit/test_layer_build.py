"""layers/build.py: what a layer leaves out."""

from __future__ import annotations

import platform
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


HOST = {"x86_64": "x86_64", "aarch64": "arm64"}[platform.machine()]
THIS = f"{sys.version_info[0]}.{sys.version_info[1]}"


def test_bytecode_is_made_by_an_interpreter_of_the_target_version_and_platform() -> None:
    python, said = build.bytecode_python(THIS, HOST)
    assert python == sys.executable
    assert said.startswith(f"bytecode: compiled by {sys.executable} (Python {THIS}")


def test_without_an_interpreter_of_the_target_version_the_build_says_so() -> None:
    """No ``python3.99`` anywhere: the layers are built without bytecode (no failure), and the
    build's one line says so and how to get it."""
    python, said = build.bytecode_python("3.99", HOST)
    assert python is None
    assert said.startswith("bytecode: none, the layers ship sources only")
    assert f"{sys.executable} is {THIS}" in said
    assert "put python3.99 on PATH or pass --python" in said
    assert "\n" not in said


def test_an_interpreter_of_another_architecture_makes_no_bytecode() -> None:
    """The probe imports the layers' compiled wheels: it cannot run arm64 ones on x86_64."""
    other = "arm64" if HOST == "x86_64" else "x86_64"
    python, said = build.bytecode_python(THIS, other)
    assert python is None
    assert said.startswith("bytecode: none") and f"build on {other} Linux" in said


def test_an_explicit_python_of_another_version_is_refused() -> None:
    with pytest.raises(SystemExit, match="not a Python 3.99"):
        build.bytecode_python("3.99", HOST, sys.executable)


def test_a_layers_size_counts_its_bytecode_a_functions_folder_does_not(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_bytes(b"x" * 100)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "mod.cpython-312.pyc").write_bytes(b"y" * 50)
    assert build.tree_size(tmp_path) == 150
    assert build.bytecode_size(tmp_path) == 50
    assert build.tree_size(tmp_path, bytecode=False) == 100
