"""Export errors a user can cause are ModelExportError with advice, not stack traces."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.export import ModelExportError, export_model


def test_missing_local_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelExportError, match="does not exist"):
        export_model(str(tmp_path / "no-such-checkpoint"), tmp_path / "out")


def test_unknown_hub_id_offline_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelExportError, match=r"HF_HUB_OFFLINE.*local checkpoint folder"):
        export_model("nobody-here/not-a-model", tmp_path / "out")


def test_local_folder_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(ModelExportError, match="sequence-classification checkpoint"):
        export_model(str(folder), tmp_path / "out")
