"""The model map: the same input runs on another provider by changing the provider line and the
map in ``omnibatch.toml`` alone; a model that does not look like the provider's is a warning
naming the line and the map to add, refused under ``--strict``; a changed map is a new job."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson

from omnibatch.adapter import ProviderAdapter
from omnibatch.config import ProviderSettings
from omnibatch.jobs import JobOptions, job_key
from omnibatch.pipeline import prepare_input
from omnibatch_anthropic.adapter import AnthropicAdapter
from tests.cli.conftest import EmulatorProcess, clean_env, read_jsonl, run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "requests.jsonl"
MAP = '[providers.anthropic.models]\n"gpt-4o-mini" = "claude-haiku-4-5"\n'


def sent_models(adapter: ProviderAdapter, tmp: Path) -> list[str]:
    prepared = prepare_input(EXAMPLE, adapter, tmp / "parts")
    lines = prepared.parts[0].path.read_bytes().splitlines()
    return [orjson.loads(line)["params"]["model"] for line in lines]


def test_the_map_translates_every_model_before_upload(tmp_path: Path) -> None:
    mapped = AnthropicAdapter(options={"models": {"gpt-4o-mini": "claude-haiku-4-5"}})
    assert set(sent_models(mapped, tmp_path / "a")) == {"claude-haiku-4-5"}
    plain = prepare_input(EXAMPLE, AnthropicAdapter(), tmp_path / "b")
    assert set(sent_models(AnthropicAdapter(), tmp_path / "c")) == {"gpt-4o-mini"}
    # Unmapped, the model is a warning on its first line, naming the map to add.
    assert [(w.line, w.field) for w in plain.warnings] == [(1, "body.model")]
    assert '[providers.anthropic.models] "gpt-4o-mini"' in str(plain.warnings[0].fix)
    assert not prepare_input(EXAMPLE, mapped, tmp_path / "d").warnings


def test_a_changed_map_is_a_new_job() -> None:
    def key(options: dict[str, object]) -> str:
        target = ProviderSettings("anthropic", "http://e/anthropic", None, options=options)
        return job_key("0" * 64, target, JobOptions())

    one = key({"models": {"gpt-4o-mini": "claude-haiku-4-5"}})
    assert one == key({"models": {"gpt-4o-mini": "claude-haiku-4-5"}})
    assert one != key({"models": {"gpt-4o-mini": "claude-sonnet-4-5"}})
    assert one != key({})


def test_validate_warns_and_strict_refuses(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    warned = run_cli("--provider", "anthropic", "validate", str(EXAMPLE), env=env, cwd=tmp_path)
    assert warned.returncode == 0, warned.stderr
    assert f"{EXAMPLE}:1: body.model: model 'gpt-4o-mini'" in warned.stderr
    assert "[providers.anthropic.models]" in warned.stderr
    strict = run_cli(
        "--provider", "anthropic", "validate", "--strict", str(EXAMPLE), env=env, cwd=tmp_path
    )
    assert strict.returncode == 1
    (tmp_path / "omnibatch.toml").write_text(MAP)
    mapped = run_cli(
        "--provider", "anthropic", "validate", "--strict", str(EXAMPLE), env=env, cwd=tmp_path
    )
    assert mapped.returncode == 0, mapped.stdout + mapped.stderr
    assert "body.model" not in mapped.stderr


def test_the_example_runs_on_anthropic_with_the_map_alone(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    env = clean_env(tmp_path / "home", OMNIBATCH_EMULATOR_URL=emulator.root)
    shutil.copy(EXAMPLE, tmp_path / "requests.jsonl")
    refused = run_cli(
        "--provider",
        "anthropic",
        "run",
        "requests.jsonl",
        "-o",
        "out.jsonl",
        "--strict",
        env=env,
        cwd=tmp_path,
    )
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "gpt-4o-mini" in refused.stderr and not (tmp_path / "out.jsonl").exists()
    (tmp_path / "omnibatch.toml").write_text('provider = "anthropic"\n' + MAP)
    done = run_cli("run", "requests.jsonl", "-o", "out.jsonl", "--strict", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = read_jsonl(tmp_path / "out.jsonl")
    assert len(lines) == len(EXAMPLE.read_bytes().splitlines())
    assert {line["model"] for line in lines} == {"claude-haiku-4-5"}
    assert all(isinstance(line["text"], str) and line["text"] for line in lines)
    # The same job again, written as OpenAI's batch output file: the job resumes, nothing is
    # submitted twice, and every line reads as OpenAI's own.
    from openai.types.chat import ChatCompletion

    again = run_cli(
        "run", "requests.jsonl", "-o", "openai.jsonl", "--format", "openai", env=env, cwd=tmp_path
    )
    assert again.returncode == 0, again.stdout + again.stderr
    converted = read_jsonl(tmp_path / "openai.jsonl")
    assert [line["custom_id"] for line in converted] == [line["custom_id"] for line in lines]
    for line in converted:
        body = ChatCompletion.model_validate(line["response"]["body"])
        assert body.model == "claude-haiku-4-5" and body.choices[0].message.content
