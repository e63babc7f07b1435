"""Where a retrain's record goes: always into the registry row (the candidate's metadata), and
to MLflow too when ``MLFLOW_TRACKING_URI`` is set (extra ``tracking``: mlflow-skinny).

The record is the same either way: parameters, both figures, the losses, the time of each
stage; MLflow also gets the model folder as artifacts, and its run id goes into the record.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)

EXPERIMENT = "sentiment-stream-retrain"


class TrackingError(RuntimeError):
    """MLFLOW_TRACKING_URI is set but MLflow cannot be used (not installed)."""


class Run(Protocol):
    run_id: str | None

    def log_params(self, params: dict[str, Any]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...

    def log_folder(self, folder: Path, name: str) -> None: ...


class NoRun:
    """No tracker: the registry row is the record."""

    run_id: str | None = None

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def log_folder(self, folder: Path, name: str) -> None:
        pass


class MlflowRun:
    def __init__(self, run_id: str) -> None:
        self.run_id: str | None = run_id

    def log_params(self, params: dict[str, Any]) -> None:
        import mlflow

        mlflow.log_params({key: str(value)[:500] for key, value in params.items()})

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        import mlflow

        mlflow.log_metrics(metrics, step=step)

    def log_folder(self, folder: Path, name: str) -> None:
        import mlflow

        mlflow.log_artifacts(str(folder), artifact_path=name)


@contextmanager
def tracked_run(run_name: str) -> Iterator[Run]:
    """An MLflow run when ``MLFLOW_TRACKING_URI`` is set (ended as failed if the body
    raises), else :class:`NoRun`."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        yield NoRun()
        return
    try:
        import mlflow
    except ImportError:
        raise TrackingError(
            "MLFLOW_TRACKING_URI is set but mlflow is not installed:"
            ' pip install "sentiment-stream[tracking]" (or unset MLFLOW_TRACKING_URI)'
        ) from None
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name=run_name) as active:
        log.info("mlflow run started", run_id=active.info.run_id, experiment=EXPERIMENT)
        yield MlflowRun(active.info.run_id)
