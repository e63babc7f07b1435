"""The language section of the settings: how posts' languages are identified, and which model
reads which language (``consumer.routing`` loads them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from language.identify import language_code
from stream_core.settings import SettingsSection

DetectionMode = Literal["missing", "check", "off"]


class LanguageSettings(SettingsSection):
    language_detection: DetectionMode = Field(
        "missing",
        description="missing: identify posts whose message gives no lang; check: identify "
        "every post and trust a confident guess over the message's lang; off: identify none "
        "(posts without lang go to the default model).",
    )
    language_min_confidence: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="A guess less sure than this leaves the language undetermined (und).",
    )
    language_models: Annotated[dict[str, Path], NoDecode] = Field(
        default_factory=dict,
        description="Model per language, e.g. es=models/es,de=models/de (each folder's "
        "metadata must declare the language); the default model reads what its metadata "
        "declares (en).",
    )
    fallback_model: Path | None = Field(
        None,
        description="A multilingual model for every language no other model reads "
        "(unscored when unset).",
    )

    @field_validator("language_models", mode="before")
    @classmethod
    def _parse_pairs(cls, value: Any) -> Any:
        """``es=path,de=path`` (env or flag) as well as a mapping or JSON."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                return json.loads(text)
            pairs = [pair.partition("=") for pair in text.split(",") if pair.strip()]
            bad = [lang for lang, sep, path in pairs if not sep or not lang.strip() or not path]
            if bad:
                raise ValueError(f"expected lang=folder pairs separated by commas, got {text!r}")
            return {lang: path.strip() for lang, _, path in pairs}
        return value

    @field_validator("language_models", mode="after")
    @classmethod
    def _codes(cls, value: dict[str, Path]) -> dict[str, Path]:
        return {language_code(lang): path for lang, path in value.items()}
