"""docs/plugins/ says what the code does: the tutorial's code is the example's files, and the
references list exactly the hooks, adapter members and contract scenarios there are."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

import omnibatch.plugin as api
from omnibatch import hookspecs
from omnibatch.adapter import Capabilities, CreateSpec, ProviderAdapter, ProviderLimits
from omnibatch.flows import HttpRequest
from omnibatch.testing import ProviderContract

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "plugins"
EXAMPLE = REPO / "examples" / "omnibatch-gateway"

# ``fmt: off`` keeps ruff's Markdown formatter from reflowing the blocks (they are the files).
_BLOCK = re.compile(
    r"<!-- example: (?P<path>\S+) -->\n<!-- fmt: off -->\n(?P<fence>`{3,})[a-z]*\n"
    r"(?P<code>.*?)\n(?P=fence)\n<!-- fmt: on -->\n",
    re.DOTALL,
)


def read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def tutorial_blocks() -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    for match in _BLOCK.finditer(read("tutorial.md")):
        blocks.setdefault(match["path"], []).append(match["code"] + "\n")
    return blocks


def example_files() -> set[str]:
    skip = {"py.typed"}
    return {
        str(path.relative_to(REPO))
        for path in EXAMPLE.rglob("*")
        if path.is_file()
        and path.name not in skip
        and not any(p in {"__pycache__", ".mypy_cache", ".ruff_cache"} for p in path.parts)
        and ".egg-info" not in str(path)
    }


def test_every_marked_block_is_followed_by_code() -> None:
    markers = read("tutorial.md").count("<!-- example: ")
    assert markers == sum(len(parts) for parts in tutorial_blocks().values())


@pytest.mark.parametrize("path", sorted(example_files()))
def test_the_tutorial_shows_each_example_file_exactly(path: str) -> None:
    parts = tutorial_blocks().get(path)
    assert parts, f"docs/plugins/tutorial.md does not show {path}"
    text = (REPO / path).read_text(encoding="utf-8")
    position = 0
    for number, part in enumerate(parts, start=1):
        while text.startswith("\n", position):  # blank lines where the tutorial cuts a file
            position += 1
        assert text.startswith(part, position), (
            f"block {number} of {path} in the tutorial differs from the file (at character "
            f"{position}); copy the file's current text into the tutorial"
        )
        position += len(part)
    assert text[position:].strip() == "", f"the tutorial stops before the end of {path}"


def test_the_tutorial_shows_nothing_but_example_files() -> None:
    assert set(tutorial_blocks()) <= example_files()
    assert "py.typed" in read("tutorial.md")


def _annotation(value: Any) -> str:
    return value if isinstance(value, str) else inspect.formatannotation(value)


def signature_line(name: str, func: Any) -> str:
    """``def name(args) -> ret`` with annotations as written in the source."""
    sig = inspect.signature(func)
    params = []
    star = False
    for param in sig.parameters.values():
        if param.kind is inspect.Parameter.KEYWORD_ONLY and not star:
            params.append("*")
            star = True
        text = param.name
        if param.annotation is not inspect.Parameter.empty:
            text += f": {_annotation(param.annotation)}"
        if param.default is not inspect.Parameter.empty:
            text += f" = {param.default!r}"
        params.append(text)
    ret = sig.return_annotation
    tail = "" if ret is inspect.Signature.empty else f" -> {_annotation(ret)}"
    return f"def {name}({', '.join(params)}){tail}"


def hookspec_functions() -> dict[str, Any]:
    return {
        name: func
        for name, func in vars(hookspecs).items()
        if inspect.isfunction(func) and name.startswith("register_")
    }


def test_the_hooks_page_documents_every_hook_with_its_signature() -> None:
    text = read("hooks.md")
    documented = set(re.findall(r"^### (register_\w+)$", text, re.MULTILINE))
    assert documented == set(hookspec_functions())
    for name, func in hookspec_functions().items():
        assert f"@hookimpl\n{signature_line(name, func)}:\n" in text, name


def adapter_members() -> dict[str, Any]:
    members: dict[str, Any] = {name: None for name in ProviderAdapter.__annotations__}
    for name, value in vars(ProviderAdapter).items():
        if name.startswith("_") and name != "__init__":
            continue
        if inspect.isfunction(value) or isinstance(value, property):
            members[name] = value
        elif not callable(value):
            members[name] = None
    return members


def test_the_adapter_reference_documents_every_member() -> None:
    text = read("adapter-reference.md")
    table = text[text.index("## Class attributes") : text.index("## Construction")]
    attributes = set(re.findall(r"^\| `(\w+)` \| `", table, re.MULTILINE))
    headings = set(re.findall(r"^### `(\w+)`$", text, re.MULTILINE))
    members = adapter_members()
    assert {n for n, v in members.items() if v is None} == attributes
    methods = {n for n, v in members.items() if v is not None}
    assert methods <= headings, f"undocumented: {sorted(methods - headings)}"
    value_types = {"Capabilities", "ProviderLimits", "CreateSpec", "ResultSource"}
    value_types |= {"HttpRequest", "HttpResponse"}
    assert not headings - methods - value_types, "headings of members that do not exist"
    for name, value in members.items():
        if inspect.isfunction(value):
            assert f"```python\n{signature_line(name, value)}\n```" in text, name


@pytest.mark.parametrize("cls", [Capabilities, ProviderLimits, CreateSpec, HttpRequest])
def test_the_adapter_reference_lists_every_field(cls: type) -> None:
    text = read("adapter-reference.md")
    section = text[text.index(f"### `{cls.__name__}`") :]
    section = section[: section.index("\n### ", 1)]
    listed = re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE)
    assert listed == [f.name for f in dataclasses.fields(cls)]


def contract_knobs() -> set[str]:
    attributes = {n for n in vars(ProviderContract) if not n.startswith(("_", "test_"))}
    return attributes - {"harness", "resolve_adapter_cls", "resolve_dialect_cls"}


def test_the_testing_guide_lists_every_scenario_and_knob() -> None:
    text = read("testing.md")
    scenarios = {n for n in dir(ProviderContract) if n.startswith("test_")}
    listed = set(re.findall(r"^\| `(test_\w+)` \|", text, re.MULTILINE))
    assert listed == scenarios
    knobs = {m.split("(")[0] for m in re.findall(r"^\| `([\w(), ]+)` \|", text, re.MULTILINE)}
    assert contract_knobs() <= knobs, sorted(contract_knobs() - knobs)


def test_the_testing_guide_names_only_what_the_plugin_api_exports() -> None:
    text = read("testing.md")
    table = text[text.index("What a dialect uses") :]
    table = table[: table.index("\n\n", table.index("| --- |"))]
    names = re.findall(r"^\| ([^|]+) \|", table, re.MULTILINE)[2:]
    exported = set(api.__all__)
    for cell in names:
        for name in re.findall(r"`(\w+)`", cell):
            assert name in exported, f"testing.md names {name}, not in omnibatch.plugin"


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_relative_links_resolve(page: str) -> None:
    prose = re.sub(r"^(`{3,}).*?^\1$", "", read(page), flags=re.MULTILINE | re.DOTALL)
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", prose):
        assert (DOCS / target).exists(), f"{page} links to missing {target}"
