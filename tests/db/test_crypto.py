import pytest

from maosic.db.crypto import LogCipher, LogKeyError


def test_round_trip_and_ciphertext_hides_content(tmp_path):
    cipher = LogCipher.from_file(tmp_path / "log.key")
    token = cipher.encrypt_json({"method": "heater.set", "setpoint_C": 130})
    assert b"setpoint" not in token and b"130" not in token
    assert cipher.decrypt_json(token) == {"method": "heater.set", "setpoint_C": 130}
    assert (tmp_path / "log.key").stat().st_mode & 0o077 == 0  # only the owner may read the key


def test_wrong_key_is_refused(tmp_path):
    token = LogCipher.from_file(tmp_path / "a.key").encrypt_json([1, 2])
    with pytest.raises(LogKeyError, match="wrong key or tampered"):
        LogCipher.from_file(tmp_path / "b.key").decrypt_json(token)


def test_rotation_keeps_old_rows_readable(tmp_path):
    from cryptography.fernet import Fernet

    key_file = tmp_path / "log.key"
    old = LogCipher.from_file(key_file)
    token = old.encrypt_json("spectrum")
    key_file.write_bytes(Fernet.generate_key() + b"\n" + key_file.read_bytes())  # new key first
    new = LogCipher.from_file(key_file)
    rotated = new.rotate(token)
    assert new.decrypt_json(rotated) == "spectrum"
    newest_only = LogCipher([key_file.read_bytes().splitlines()[0]])
    assert newest_only.decrypt_json(rotated) == "spectrum"
    with pytest.raises(LogKeyError):
        newest_only.decrypt_json(token)
