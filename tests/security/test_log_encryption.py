"""Encryption at rest of the hardware audit log: ciphertext in the database, key outside it,
rotation on SQLite and MariaDB, decryption only with the key."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from maosic.db.crypto import LogCipher, LogKeyError
from maosic.db.models import HardwareCommand, Reaction, Request, RequestStatus
from maosic.db.session import transaction
from tests.core.rpc_helpers import cspbbr3_config, rpc, wait_for
from tests.security.helpers import load_script

rotate_log_key = load_script("rotate_log_key")
decrypt_log = load_script("decrypt_log")

SECRET_PARAMS = {"pump": "SP1", "reagent": "Cs-oleate", "volume_mL": 0.123}
SECRET_RESULT = {"wavelength_nm": [450.0], "cd_mdeg": [0.987654]}


def _raw_rows(url: str) -> list[tuple]:
    """What a reader with database access but no key sees (plain SQL, no ORM, no cipher)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, method, params_enc, result_enc FROM hardware_commands ORDER BY id")
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def _seed_rows(sessions, cipher: LogCipher, n: int) -> int:
    with transaction(sessions) as session:
        reaction = Reaction(name="audit-test", config={}, config_sha256="0" * 64)
        session.add(reaction)
        session.flush()
        req = Request(
            seq=1,
            reaction_id=reaction.id,
            target={},
            status=RequestStatus.DONE,
            budget=1,
            optimizer="random",
        )
        session.add(req)
        session.flush()
        for i in range(n):
            session.add(
                HardwareCommand(
                    request_id=req.id,
                    method="pump.fill",
                    ok=True,
                    params_enc=cipher.encrypt_json({**SECRET_PARAMS, "i": i}),
                    result_enc=cipher.encrypt_json(SECRET_RESULT),
                    duration_ms=1.5,
                )
            )
        return req.id


def _assert_ciphertext(rows: list[tuple]) -> None:
    assert rows
    for _, _method, params_enc, result_enc in rows:
        for blob in (params_enc, result_enc):
            data = bytes(blob)
            # Only long probes: a Fernet token is ~200 random base64 characters, so a short one
            # such as "SP1" turns up by chance (64^-3 per position: in a few per cent of the logs
            # of a whole campaign).
            assert b"Cs-oleate" not in data and b"0.987654" not in data
            assert data.startswith(b"gAAAAA")  # a Fernet token, version byte 0x80


def test_rotation_reencrypts_every_row_and_retires_the_old_key(db_url, sessions, tmp_path):
    key_file = tmp_path / "log.key"
    old_cipher = LogCipher.from_file(key_file)
    old_key = key_file.read_bytes().strip()
    request_id = _seed_rows(sessions, old_cipher, 7)
    before = _raw_rows(db_url)
    _assert_ciphertext(before)

    count = rotate_log_key.rotate(key_file, db_url, retire_old=True, batch=3)
    assert count == 7
    after = _raw_rows(db_url)
    _assert_ciphertext(after)
    assert [bytes(r[2]) for r in after] != [bytes(r[2]) for r in before]
    keys = key_file.read_bytes().split()
    assert len(keys) == 1 and keys[0] != old_key
    assert key_file.stat().st_mode & 0o077 == 0
    # the old key alone opens nothing any more; the new file opens everything
    with pytest.raises(LogKeyError):
        LogCipher([old_key]).decrypt_json(bytes(after[0][2]))
    entries = decrypt_log.audit_log(db_url, key_file, request_id)
    assert [e["params"]["i"] for e in entries] == list(range(7))
    assert all(e["result"] == SECRET_RESULT for e in entries)


def test_rotation_keeps_old_keys_unless_told(db_url, sessions, tmp_path):
    key_file = tmp_path / "log.key"
    cipher = LogCipher.from_file(key_file)
    _seed_rows(sessions, cipher, 2)
    assert rotate_log_key.rotate(key_file, db_url) == 2
    assert len(key_file.read_bytes().split()) == 2
    # a core that started before the rotation still writes under the old key: still readable
    late = cipher.encrypt_json({"late": True})
    assert LogCipher.from_file(key_file, create=False).decrypt_json(late) == {"late": True}


def test_no_key_or_wrong_key_reads_nothing(db_url, sessions, tmp_path, capsys):
    key_file = tmp_path / "log.key"
    request_id = _seed_rows(sessions, LogCipher.from_file(key_file), 1)
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(Fernet.generate_key() + b"\n")
    args = [str(request_id), "--database-url", db_url]
    assert decrypt_log.main([*args, "--key-file", str(wrong)]) == 1
    assert "wrong key or tampered row" in capsys.readouterr().err
    assert decrypt_log.main([*args, "--key-file", str(tmp_path / "absent.key")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "absent.key").exists()  # the reader never makes up a key
    assert rotate_log_key.main(["--key-file", str(wrong), "--database-url", db_url]) == 1
    assert "cannot rotate" in capsys.readouterr().err
    assert decrypt_log.main([*args, "--key-file", str(key_file), "--json"]) == 0
    line = json.loads(capsys.readouterr().out.splitlines()[0])
    assert line["params"]["reagent"] == "Cs-oleate"


def test_tampered_row_is_detected(db_url, sessions, tmp_path):
    key_file = tmp_path / "log.key"
    request_id = _seed_rows(sessions, LogCipher.from_file(key_file), 1)
    row_id, _, params_enc, _ = _raw_rows(db_url)[0]
    forged = bytearray(bytes(params_enc))
    forged[40] ^= 0x01
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE hardware_commands SET params_enc = :b WHERE id = :i"),
            {"b": bytes(forged), "i": row_id},
        )
    engine.dispose()
    with pytest.raises(LogKeyError, match=f"row {row_id}"):
        decrypt_log.audit_log(db_url, key_file, request_id)


def test_a_real_campaign_logs_only_ciphertext(stack, capsys):
    sub = rpc(stack.core_url, "request.submit", config=cspbbr3_config(), budget=2, seed=1)
    final = wait_for(stack.core_url, sub["id"], {"done", "failed"}, timeout_s=120)
    assert final["status"] == "done", final
    rows = _raw_rows(stack.db_url)
    methods = {r[1] for r in rows}
    assert {"pump.fill", "heater.set", "spectrometer.cd"} <= methods
    _assert_ciphertext([r for r in rows if r[1] == "pump.fill"])
    for _, _, params_enc, result_enc in rows:
        assert b"reagent" not in bytes(params_enc) and b"wavelength" not in bytes(result_enc)
    key = str(stack.settings.resolved_log_key_file)
    argv = [str(sub["id"]), "--database-url", stack.db_url, "--key-file", key]
    assert decrypt_log.main(argv) == 0
    out = capsys.readouterr().out
    assert "pump.fill" in out and "Cs-oleate" in out
