"""Connection settings: defaults < config file < environment < flags; bad values exit 2."""

from __future__ import annotations

import pytest

from tests.user_control.helpers import run
from user_control.errors import UsageError
from user_control.settings import load_client_settings
from user_control.units import duration, field, split_unit


def test_layers_override_in_order(tmp_path):
    config = tmp_path / "client.toml"
    config.write_text(
        'hardware_url = "http://file:8888/"\ncore_url = "http://file:9999/"\n'
        'user = "from-file"\nretries = 5\n'
    )
    env = {"MAOSIC_CORE_URL": "http://env:9999/", "MAOSIC_USER": "from-env"}
    settings = load_client_settings({"user": "from-flag"}, env, str(config))
    assert settings.hardware_url == "http://file:8888/"
    assert settings.core_url == "http://env:9999/"
    assert settings.user == "from-flag"
    assert settings.retries == 5


def test_default_config_file_is_read_from_the_config_home(tmp_path):
    folder = tmp_path / "maosic"
    folder.mkdir()
    (folder / "client.toml").write_text('hardware_token = "secret"\n')
    env = {"XDG_CONFIG_HOME": str(tmp_path), "MAOSIC_INSTANCE_PATH": str(tmp_path / "none")}
    settings = load_client_settings({}, env)
    assert settings.endpoint("hardware")["token"] == "secret"
    assert settings.endpoint("core")["token"] == ""


def test_the_installation_token_is_read_only_for_a_core_on_this_machine(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "core.token").write_text("installation-token-0123456789\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path), "MAOSIC_INSTANCE_PATH": str(instance)}
    local = load_client_settings({"user": "demo"}, env)
    assert local.core_token == "installation-token-0123456789"
    assert local.core_headers(lambda prompt: "unused") == {
        "Authorization": "Bearer installation-token-0123456789",
        "X-MAOSIC-User": "demo",
    }
    for url in ("http://cloud.example:9999/", "https://10.1.2.3:9999/"):
        remote = load_client_settings({"core_url": url, "user": "demo"}, env)
        assert remote.core_token == ""  # never sent off this machine
        asked: list[str] = []

        def ask(prompt: str, asked: list[str] = asked) -> str:
            asked.append(prompt)
            return "pw-of-demo"

        headers = remote.core_headers(ask)
        assert headers == {"Authorization": "Basic ZGVtbzpwdy1vZi1kZW1v"}  # demo:pw-of-demo
        assert asked == [f"password of demo at {url}: "]


def test_shared_tls_files_apply_to_both_endpoints_unless_overridden(tmp_path):
    ca, core_ca = tmp_path / "ca.pem", tmp_path / "core-ca.pem"
    ca.write_text("x")
    core_ca.write_text("y")
    settings = load_client_settings(
        {"ca_file": str(ca), "core_ca_file": str(core_ca)}, {"HOME": str(tmp_path)}
    )
    assert settings.endpoint("hardware")["ca_file"] == str(ca)
    assert settings.endpoint("core")["ca_file"] == str(core_ca)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('colour = "blue"\n', "unknown setting 'colour'"),
        ('hardware_url = "lab-pc:8888"\n', "is not an http(s):// URL"),
        ("retries = [1]\n", "cannot read [1] as int"),
        ("hardware_url = \n", "not valid TOML"),
    ],
)
def test_bad_config_file_names_the_file_and_setting(tmp_path, text, needle):
    config = tmp_path / "client.toml"
    config.write_text(text)
    with pytest.raises(UsageError) as caught:
        load_client_settings({}, {"HOME": str(tmp_path)}, str(config))
    assert needle in caught.value.message
    assert str(config) in caught.value.message


def test_cli_reports_settings_errors_with_exit_2(tmp_path):
    missing = run(["--config", str(tmp_path / "nope.toml"), "status"], tmp_path)
    assert missing.status == 2
    assert missing.err == f"error: config file {tmp_path / 'nope.toml'} does not exist\n"
    env_bad = run(["status"], tmp_path, MAOSIC_HARDWARE_URL="ftp://lab")
    assert env_bad.status == 2
    assert "environment variable MAOSIC_HARDWARE_URL" in env_bad.err
    no_ca = run(["--ca-file", str(tmp_path / "ca.pem"), "status"], tmp_path)
    assert no_ca.status == 2 and "setting 'ca_file' from option --ca-file: no file" in no_ca.err


def test_token_flag_is_sent_to_the_daemon(tmp_path):
    from hardware_interface.server import start_daemon

    handle = start_daemon(
        sim=True, auth=lambda headers: headers.get("Authorization") == "Bearer s3cret"
    )
    try:
        refused = run(["--hardware-url", handle.url, "status"], tmp_path)
        assert refused.status == 1
        assert "not authorised" in refused.err
        allowed = run(["--hardware-url", handle.url, "--token", "s3cret", "status"], tmp_path)
        assert allowed.status == 0, allowed.err
        assert "lab clock" in allowed.out
    finally:
        handle.stop()


def test_units_come_from_field_names():
    assert split_unit("rate_mL_min") == ("rate", "mL/min", 3)
    assert split_unit("setpoint_C") == ("setpoint", "°C", 1)
    assert split_unit("C") == ("C", "", 3)
    assert field("volume_mL", 0.4) == "volume 0.400 mL"
    assert field("stable", True) == "stable yes"
    assert field("setpoint_C", None) == "setpoint -"
    assert duration(95) == "1 min 35 s"
    assert duration(7300) == "2 h 01 min"
