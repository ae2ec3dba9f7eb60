"""``omnibatch config`` explains every setting in effect and where it came from; the user's
config file sits below the project's."""

from __future__ import annotations

import json
from pathlib import Path

from omnibatch.config import load_config

from .conftest import clean_env, run_cli

KEY = "mistral-secret-value-123"


def _files(tmp_path: Path) -> tuple[Path, Path]:
    user = tmp_path / "xdg" / "omnibatch" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text(
        'provider = "mistral"\n[providers.mistral]\ntimeout_hours = 48\n'
        'base_url = "https://user.example"\n',
        encoding="utf-8",
    )
    project = tmp_path / "proj" / "omnibatch.toml"
    project.parent.mkdir()
    project.write_text('[providers.mistral]\nbase_url = "https://proj.example"\n', "utf-8")
    return user, project


def test_config_says_where_every_value_came_from(tmp_path: Path, home: Path) -> None:
    user, project = _files(tmp_path)
    env = clean_env(home, XDG_CONFIG_HOME=str(tmp_path / "xdg"), MISTRAL_API_KEY=KEY)
    proc = run_cli("--json", "config", env=env, cwd=project.parent)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["provider"] == {"value": "mistral", "source": str(user)}
    # The project's file wins over the user's, value by value.
    assert data["base_url"] == {"value": "https://proj.example", "source": str(project)}
    assert data["options"]["timeout_hours"] == {"value": 48, "source": str(user)}
    assert data["api_key"]["variable"] == "MISTRAL_API_KEY" and data["api_key"]["set"] is True
    assert data["api_key"]["source"] == "$MISTRAL_API_KEY"
    assert data["ledger"] == {"value": str(home / "ledger.sqlite3"), "source": "$OMNIBATCH_HOME"}
    assert data["emulator"]["value"] is None
    assert [(f["kind"], f["path"], f["read"]) for f in data["config_files"]] == [
        ("user", str(user), True),
        ("project", str(project), True),
    ]
    human = run_cli("config", env=env, cwd=project.parent)
    assert "$MISTRAL_API_KEY (set)" in human.stdout and f"({project})" in human.stdout
    for out in (proc.stdout, proc.stderr, human.stdout, human.stderr):
        assert KEY not in out  # the key's name, never its value


def test_config_flags_and_emulator(tmp_path: Path, home: Path) -> None:
    env = clean_env(
        home,
        XDG_CONFIG_HOME=str(tmp_path / "none"),
        OMNIBATCH_EMULATOR_URL="http://127.0.0.1:9",
        OMNIBATCH_PROVIDER="anthropic",
    )
    data = json.loads(run_cli("--json", "config", env=env, cwd=tmp_path).stdout)
    assert data["provider"] == {"value": "anthropic", "source": "$OMNIBATCH_PROVIDER"}
    assert data["base_url"]["value"] == "http://127.0.0.1:9/anthropic"
    assert data["emulator"] == {"value": "http://127.0.0.1:9", "source": "$OMNIBATCH_EMULATOR_URL"}
    assert not any(f["read"] for f in data["config_files"])
    flag = json.loads(run_cli("--json", "config", "-p", "gemini", env=env, cwd=tmp_path).stdout)
    assert flag["provider"] == {"value": "gemini", "source": "--provider"}
    bare = clean_env(home, XDG_CONFIG_HOME=str(tmp_path / "none"))
    nothing = json.loads(run_cli("--json", "config", env=bare, cwd=tmp_path).stdout)
    assert nothing["provider"]["value"] is None and nothing["emulator"]["value"] == "embedded"
    typo = run_cli("config", "-p", "mistrall", env=bare, cwd=tmp_path)
    assert typo.returncode == 3 and "did you mean 'mistral'" in typo.stderr


def test_user_config_is_below_the_project_config(tmp_path: Path) -> None:
    user, project = _files(tmp_path)
    merged = load_config(cwd=project.parent, user_file=user)
    assert merged.provider == "mistral" and merged.path == project
    assert merged.providers["mistral"] == {"timeout_hours": 48, "base_url": "https://proj.example"}
    assert merged.files == (user, project)
    assert merged.origin("providers.mistral.timeout_hours") == user
    alone = load_config(cwd=tmp_path, user_file=user)
    assert alone.path == user and alone.providers["mistral"]["base_url"] == "https://user.example"
    # An explicit file is read alone.
    only = load_config(project, user_file=user)
    assert only.provider is None and only.files == (project,)
