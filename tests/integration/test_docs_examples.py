"""Every Python example in the README, ARCHITECTURE.md, DEVELOPERS.md and docs/ runs, as written,
against a real broker and PostgreSQL (named by KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL, as a
reader's would be), from the repository root."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.docs import DOCS, FENCED
from tests.fixtures.pipeline import migrated
from tests.fixtures.services import ROOT

pytestmark = pytest.mark.integration

EXAMPLES = [
    (f"{path.relative_to(ROOT)}#{number}", body)
    for path in DOCS
    for number, (language, body) in enumerate(FENCED.findall(path.read_text()), start=1)
    if language == "python"
]


def test_the_docs_have_examples() -> None:
    assert {where.split("#")[0] for where, _ in EXAMPLES} >= {"ARCHITECTURE.md", "docs/model.md"}


@pytest.mark.parametrize(("where", "code"), EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_an_example_runs(
    where: str,
    code: str,
    kafka_bootstrap: str,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("DATABASE_URL", migrated(database_url))
    monkeypatch.chdir(ROOT)
    exec(compile(code, where, "exec"), {"__name__": f"example_{Path(where).stem}"})
