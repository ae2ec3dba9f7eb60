"""Configuration: arguments > environment > config file; switching provider changes no code."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnibatch import ConfigurationError, UnknownProviderError
from omnibatch.client import make_adapter
from omnibatch.config import load_config


def test_config_file_chooses_provider_and_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMNIBATCH_PROVIDER", raising=False)
    monkeypatch.delenv("MISTRAL_BASE_URL", raising=False)
    monkeypatch.setenv("MY_MISTRAL_KEY", "secret-1")
    (tmp_path / "omnibatch.toml").write_text(
        'provider = "mistral"\n[providers.mistral]\nbase_url = "https://mistral.test"\n'
        'api_key_env = "MY_MISTRAL_KEY"\ntimeout_hours = 48\n'
    )
    monkeypatch.chdir(tmp_path)
    adapter, settings = make_adapter()
    assert adapter.name == "mistral"
    assert adapter.base_url == "https://mistral.test"
    assert adapter.options == {"timeout_hours": 48}
    assert adapter.auth_headers() == {"Authorization": "Bearer secret-1"}
    assert "secret-1" not in repr(settings)


def test_environment_beats_file_and_argument_beats_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "omnibatch.toml").write_text('provider = "mistral"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMNIBATCH_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://env.test/v1")
    adapter, settings = make_adapter()
    assert adapter.name == "openai" and adapter.base_url == "https://env.test/v1"
    assert settings.sources["base_url"] == "$OPENAI_BASE_URL"
    adapter, _ = make_adapter("openai", base_url="https://arg.test/v1")
    assert adapter.base_url == "https://arg.test/v1"


def test_pyproject_tool_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMNIBATCH_PROVIDER", raising=False)
    (tmp_path / "pyproject.toml").write_text('[tool.omnibatch]\nprovider = "openai"\n')
    assert load_config(cwd=tmp_path).provider == "openai"


def test_emulator_url_points_every_provider_at_the_emulator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    monkeypatch.delenv("MISTRAL_BASE_URL", raising=False)
    monkeypatch.setenv("OMNIBATCH_EMULATOR_URL", "http://127.0.0.1:9999/")
    adapter, settings = make_adapter("mistral")
    assert adapter.base_url == "http://127.0.0.1:9999/mistral"
    assert settings.emulated


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OMNIBATCH_EMULATOR_URL", raising=False)
    with pytest.raises(ConfigurationError, match=r"\$OPENAI_API_KEY"):
        make_adapter("openai", config=load_config(cwd=Path("/")))


def test_no_provider_and_unknown_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMNIBATCH_PROVIDER", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match="no provider configured"):
        make_adapter()
    with pytest.raises(UnknownProviderError, match=r"installed providers: .*openai"):
        make_adapter("nosuch", api_key="k")


def test_keys_are_refused_in_config_files(tmp_path: Path) -> None:
    (tmp_path / "omnibatch.toml").write_text('[providers.openai]\napi_key = "sk-1"\n')
    cfg = load_config(cwd=tmp_path)
    with pytest.raises(ConfigurationError, match="api_key_env"):
        make_adapter("openai", config=cfg)


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ('provdier = "mistral"\n', "provdier", "did you mean 'provider'?"),
        ("timeout_hour = 48\n", "timeout_hour", "[providers.<name>]"),
    ],
)
def test_an_unknown_setting_names_the_file_the_key_and_the_nearest(
    tmp_path: Path, text: str, key: str, hint: str
) -> None:
    (tmp_path / "omnibatch.toml").write_text(text)
    with pytest.raises(ConfigurationError) as caught:
        load_config(cwd=tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "omnibatch.toml") in message and repr(key) in message and hint in message
    (tmp_path / "omnibatch.toml").unlink()
    (tmp_path / "pyproject.toml").write_text(f"[tool.omnibatch]\n{text}")
    with pytest.raises(ConfigurationError, match=r"pyproject\.toml: unknown setting"):
        load_config(cwd=tmp_path)


def test_an_unset_api_key_env_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MY_MISTRAL", raising=False)
    monkeypatch.delenv("OMNIBATCH_EMULATOR_URL", raising=False)
    monkeypatch.delenv("MISTRAL_BASE_URL", raising=False)
    (tmp_path / "omnibatch.toml").write_text('[providers.mistral]\napi_key_env = "MY_MISTRAL"\n')
    with pytest.raises(ConfigurationError) as caught:
        make_adapter("mistral", config=load_config(cwd=tmp_path))
    assert "$MY_MISTRAL" in str(caught.value) and "MISTRAL_API_KEY" not in str(caught.value)


def test_an_unknown_provider_says_where_its_name_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMNIBATCH_PROVIDER", raising=False)
    with pytest.raises(UnknownProviderError, match=r"--provider.*did you mean 'mistral'"):
        make_adapter("mistrall", api_key="k")
    monkeypatch.setenv("OMNIBATCH_PROVIDER", "opneai")
    with pytest.raises(UnknownProviderError, match=r"\$OMNIBATCH_PROVIDER.*did you mean 'openai'"):
        make_adapter(api_key="k", config=load_config(cwd=tmp_path))
    monkeypatch.delenv("OMNIBATCH_PROVIDER")
    (tmp_path / "omnibatch.toml").write_text('provider = "gemni"\n')
    with pytest.raises(UnknownProviderError, match=r"omnibatch.toml.*did you mean 'gemini'"):
        make_adapter(api_key="k", config=load_config(cwd=tmp_path))
