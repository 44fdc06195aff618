"""Service settings: YAML loading, validation, the token kept across starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurolesion.errors import InputError
from neurolesion.service.settings import ServiceSettings, ensure_token, load_settings


def test_yaml_settings_with_overrides(tmp_path: Path) -> None:
    file = tmp_path / "serve.yaml"
    file.write_text(f"data_dir: {tmp_path}\nconcurrency: 3\ndatabase_url: postgresql+psycopg://u@h/db\n")
    settings = load_settings(file, concurrency=None, port=9000)
    assert settings.concurrency == 3 and settings.port == 9000 and settings.host == "127.0.0.1"
    assert settings.resolved_database_url.startswith("postgresql")


@pytest.mark.parametrize("text", ["concurency: 2\n", "port: 0\n", "- a list\n", "pipeline: nocolon\n"])
def test_bad_settings_are_refused(tmp_path: Path, text: str) -> None:
    file = tmp_path / "serve.yaml"
    file.write_text(text)
    with pytest.raises(InputError, match="serve"):
        load_settings(file)


def test_token_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    first, generated = ensure_token(ServiceSettings(data_dir=tmp_path))
    again, regenerated = ensure_token(ServiceSettings(data_dir=tmp_path))
    assert generated and not regenerated and first.token == again.token and len(first.token) > 30
    assert (tmp_path / "token").stat().st_mode & 0o077 == 0
    assert ensure_token(ServiceSettings(data_dir=tmp_path, token="given"))[0].token == "given"


def test_serve_command_refuses_bad_settings_with_exit_code_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from neurolesion.cli import app

    file = tmp_path / "serve.yaml"
    file.write_text("concurrency: 0\n")
    result = CliRunner().invoke(app, ["serve", "--config", str(file)])
    assert result.exit_code == 2 and "concurrency" in result.output
