"""monitor.config.save on real files: validated, atomic, one backup, mode and
owner kept, and every refusal a clear error with nothing written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from monitor.config.edit import add_target, replace_target
from monitor.config.save import (
    Conflict, InvalidEdit, ReadOnly, SaveError, read_snapshot, save)

CRLF_BOM = ("\ufeff# mine\r\n[settings]\r\ninterval = \"30s\"\r\n\r\n[[targets]]\r\nname = \"a\"\r\n"
            "kind = \"http\"\r\nurl = \"http://127.0.0.1:1/\"\r\nheaders = { T = \"${TOKEN}\" }\r\n")
NEW = {"name": "b", "kind": "tcp", "host": "127.0.0.1", "port": 2}


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TOKEN", "very-secret-value")
    path = tmp_path / "conf" / "monitor.toml"
    path.parent.mkdir()
    path.write_bytes(CRLF_BOM.encode("utf-8"))
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_save_writes_the_exact_bytes_and_keeps_one_backup(config: Path):
    snap = read_snapshot(config)
    assert snap.text == CRLF_BOM   # no newline translation, BOM kept
    new = add_target(snap.text, NEW)
    after = save(config, new, snap)
    assert config.read_bytes() == new.encode("utf-8")
    backup = config.with_name("monitor.toml~")
    assert backup.read_bytes() == CRLF_BOM.encode("utf-8")
    assert after.text == new and after.digest != snap.digest
    # a second save replaces the backup: one only
    newer = replace_target(new, "b", dict(NEW, port=3))
    save(config, newer, after)
    assert backup.read_bytes() == new.encode("utf-8")
    assert sorted(p.name for p in config.parent.iterdir()) == ["monitor.toml", "monitor.toml~"]


def test_mode_and_owner_are_kept(config: Path):
    os.chmod(config, 0o640)
    if os.geteuid() == 0:
        os.chown(config, 4321, 4322)
    snap = read_snapshot(config)
    save(config, add_target(snap.text, NEW), snap)
    info = config.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640
    assert stat.S_IMODE(config.with_name("monitor.toml~").stat().st_mode) == 0o640
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (4321, 4322)


def test_a_change_on_disk_since_the_form_opened_is_a_conflict(config: Path):
    snap = read_snapshot(config)
    theirs = CRLF_BOM + "\r\n# edited in vim meanwhile\r\n"
    config.write_bytes(theirs.encode("utf-8"))
    with pytest.raises(Conflict, match="changed on disk since the form opened; reload"):
        save(config, add_target(snap.text, NEW), snap)
    assert config.read_bytes() == theirs.encode("utf-8")   # theirs is kept
    assert not config.with_name("monitor.toml~").exists()


def test_a_removed_file_is_a_conflict(config: Path):
    snap = read_snapshot(config)
    config.unlink()
    with pytest.raises(Conflict, match="was removed"):
        save(config, add_target(snap.text, NEW), snap)
    assert not config.exists()


def test_an_invalid_result_is_refused_with_the_loaders_problems(config: Path):
    snap = read_snapshot(config)
    bad = add_target(snap.text, dict(NEW, port=70000, kind="tcp"))
    with pytest.raises(InvalidEdit) as info:
        save(config, bad, snap)
    assert [str(p) for p in info.value.problems] == [
        f"{config}:15: targets[b].port: must be at most 65535, got 70000"]
    assert config.read_bytes() == CRLF_BOM.encode("utf-8")


def test_a_secret_never_shows_in_a_refusal(config: Path):
    snap = read_snapshot(config)
    bad = replace_target(snap.text, "a", {"name": "a", "kind": "http", "url": "${TOKEN}"})
    with pytest.raises(InvalidEdit) as info:
        save(config, bad, snap)
    assert "very-secret-value" not in str(info.value)
    assert "${TOKEN}" in str(info.value)


def test_a_read_only_file_is_reported_and_left_alone(config: Path):
    snap = read_snapshot(config)
    os.chmod(config, 0o444)
    with pytest.raises(ReadOnly, match=r"monitor.toml is read-only \(-r--r--r--\): not saved"):
        save(config, add_target(snap.text, NEW), snap)
    assert config.read_bytes() == CRLF_BOM.encode("utf-8")
    assert leftovers(config.parent) == []


def test_a_read_only_directory_is_reported(config: Path):
    snap = read_snapshot(config)
    os.chmod(config.parent, 0o555)
    try:
        with pytest.raises(ReadOnly, match=r"conf is read-only \(dr-xr-xr-x\): cannot write the "
                                           r"new monitor.toml beside it"):
            save(config, add_target(snap.text, NEW), snap)
        assert config.read_bytes() == CRLF_BOM.encode("utf-8")
        assert leftovers(config.parent) == []
    finally:
        os.chmod(config.parent, 0o755)


def test_a_symlinked_config_is_written_where_it_points(config: Path, tmp_path: Path):
    link = tmp_path / "link.toml"
    link.symlink_to(config)
    snap = read_snapshot(link)
    new = add_target(snap.text, NEW)
    save(link, new, snap)
    assert link.is_symlink()
    assert config.read_bytes() == new.encode("utf-8")
    assert config.with_name("monitor.toml~").exists()


def test_a_file_that_is_not_utf8_cannot_be_opened_for_editing(tmp_path: Path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[[targets]]\nname = "caf\xe9"\n')
    with pytest.raises(SaveError, match="not UTF-8"):
        read_snapshot(path)


def test_an_unwritable_backup_stops_the_save_before_the_file_changes(config: Path):
    config.with_name("monitor.toml~").mkdir()   # something in the way
    snap = read_snapshot(config)
    with pytest.raises(SaveError, match="cannot write"):
        save(config, add_target(snap.text, NEW), snap)
    assert config.read_bytes() == CRLF_BOM.encode("utf-8")
    assert leftovers(config.parent) == []
