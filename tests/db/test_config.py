from pathlib import Path

import pytest

from maosic.config import ConfigError, load_settings


def test_layers_defaults_file_environment(tmp_path: Path):
    (tmp_path / "maosic.toml").write_text('web_port = 5050\nhardware_url = "http://lab:8888/"\n')
    env = {"MAOSIC_INSTANCE_PATH": str(tmp_path), "MAOSIC_HARDWARE_URL": "http://other:8888/"}
    settings = load_settings(environ=env)
    assert settings.web_port == 5050  # from the file
    assert settings.hardware_url == "http://other:8888/"  # environment beats the file
    assert settings.core_port == 9999  # default
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'maosic.sqlite3'}"


def test_database_url_from_environment(tmp_path: Path):
    env = {"MAOSIC_INSTANCE_PATH": str(tmp_path), "MAOSIC_DATABASE_URL": "mysql+pymysql://u:p@h/db"}
    assert load_settings(environ=env).resolved_database_url == "mysql+pymysql://u:p@h/db"


def test_bad_value_names_the_setting_and_source(tmp_path: Path):
    env = {"MAOSIC_INSTANCE_PATH": str(tmp_path), "MAOSIC_WEB_PORT": "fivethousand"}
    with pytest.raises(ConfigError, match="web_port.*MAOSIC_WEB_PORT.*fivethousand"):
        load_settings(environ=env)


def test_unknown_key_in_file_is_refused(tmp_path: Path):
    (tmp_path / "maosic.toml").write_text("databse_url = 'sqlite://'\n")
    with pytest.raises(ConfigError, match="unknown setting 'databse_url'"):
        load_settings(environ={"MAOSIC_INSTANCE_PATH": str(tmp_path)})
