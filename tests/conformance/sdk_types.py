"""Checking an answer against a vendor SDK's pydantic models, field by field."""

from __future__ import annotations

from typing import Any

import pydantic


def known(model: Any, raw: Any, where: str) -> None:
    """Every key of ``raw`` is a field of the SDK model it parsed into (recursively)."""
    if isinstance(model, pydantic.BaseModel):
        assert isinstance(raw, dict), where
        fields = {f.alias or n: n for n, f in type(model).model_fields.items()}
        unknown = sorted(set(raw) - set(fields))
        assert not unknown, f"{where}: fields unknown to the SDK: {unknown}"
        for key, value in raw.items():
            known(getattr(model, fields[key]), value, f"{where}.{key}")
    elif isinstance(model, list) and isinstance(raw, list):
        for i, (item, value) in enumerate(zip(model, raw, strict=True)):
            known(item, value, f"{where}[{i}]")


def strict(model_type: type[pydantic.BaseModel], raw: Any) -> Any:
    """``raw`` validated as ``model_type``, refusing any field the SDK does not know."""
    model = model_type.model_validate(raw)
    known(model, raw, model_type.__name__)
    return model
