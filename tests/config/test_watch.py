"""The config watcher against real files in temporary directories, saved the
ways editors save them."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
import trustme

from monitor.cli import main
from monitor.config import load_config
from monitor.config.watch import ConfigWatcher, files_named_by, reload_config

QUIET = 0.15        # the tests' burst end: shorter than the default, same code path
SETTLE = 1.0        # how long "nothing more came" is watched for
WAIT = 5.0          # longest wait for an expected change (the housekeeping look is 5 s)

GOOD = """\
[[targets]]
name = "web"
kind = "tcp"
host = "127.0.0.1"
port = 9
"""


def with_target(name: str, extra: str = "") -> str:
    return GOOD + f'\n[[targets]]\nname = "{name}"\nkind = "tcp"\nhost = "127.0.0.1"\nport = 9\n{extra}'


async def next_change(watcher: ConfigWatcher, timeout: float = WAIT):
    return await asyncio.wait_for(anext(watcher), timeout)


async def quiet_for(watcher: ConfigWatcher, seconds: float = SETTLE) -> bool:
    """True when no change comes within `seconds`."""
    try:
        change = await asyncio.wait_for(anext(watcher), seconds)
    except TimeoutError:
        return True
    raise AssertionError(f"unexpected change: {change}")


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "monitor.toml"
    path.write_text(GOOD)
    return path


async def started(watcher: ConfigWatcher) -> ConfigWatcher:
    watcher.start()
    # let the watching thread arm before the test writes
    for _ in range(100):
        if watcher.watched_dirs:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    return watcher


async def test_a_plain_write_is_one_change(config_file):
    async with ConfigWatcher(config_file, quiet=QUIET) as watcher:
        await started(watcher)
        config_file.write_text(with_target("api"))
        change = await next_change(watcher)
        assert change.paths == (config_file,)
        assert await quiet_for(watcher)


async def test_vim_style_backup_then_rename_is_followed(config_file):
    """vim (backupcopy=no): the file is renamed to a backup and a new one is
    written under the old name; a watch on the old inode would see nothing."""
    async with ConfigWatcher(config_file, quiet=QUIET) as watcher:
        await started(watcher)
        for round_ in range(3):   # and keeps following: every save is a new inode
            backup = config_file.with_name(config_file.name + "~")
            os.replace(config_file, backup)
            config_file.write_text(with_target(f"api{round_}"))
            backup.unlink()
            assert (await next_change(watcher)).paths == (config_file,)
        assert reload_config(config_file).config.targets[-1].name == "api2"


async def test_atomic_replace_is_followed(config_file):
    async with ConfigWatcher(config_file, quiet=QUIET) as watcher:
        await started(watcher)
        temp = config_file.with_name(".monitor.toml.tmp")
        temp.write_text(with_target("api"))
        os.replace(temp, config_file)
        assert (await next_change(watcher)).paths == (config_file,)


async def test_delete_then_create_is_one_change(config_file):
    async with ConfigWatcher(config_file, quiet=QUIET) as watcher:
        await started(watcher)
        config_file.unlink()
        config_file.write_text(with_target("api"))
        assert (await next_change(watcher)).paths == (config_file,)
        assert await quiet_for(watcher)


async def test_a_burst_of_writes_is_one_change(config_file):
    async with ConfigWatcher(config_file) as watcher:   # the default quiet time
        await started(watcher)
        for index in range(12):   # an editor or a script writing in pieces, 20 ms apart
            with config_file.open("a") as handle:
                handle.write(f"# line {index}\n")
            await asyncio.sleep(0.02)
        assert (await next_change(watcher)).paths == (config_file,)
        assert await quiet_for(watcher)


async def test_a_touch_or_another_file_is_no_change(config_file):
    async with ConfigWatcher(config_file, quiet=QUIET) as watcher:
        await started(watcher)
        os.utime(config_file)                                     # same content
        config_file.write_text(config_file.read_text())           # saved unchanged
        (config_file.parent / ".monitor.toml.swp").write_bytes(b"\0" * 100)   # swap file
        (config_file.parent / "notes.txt").write_text("x")
        assert await quiet_for(watcher)


async def test_a_file_missing_for_a_while_is_waited_for(config_file):
    async with ConfigWatcher(config_file, quiet=QUIET) as watcher:
        await started(watcher)
        config_file.unlink()
        assert (await next_change(watcher)).paths == (config_file,)   # it went
        outcome = reload_config(config_file)
        assert not outcome.ok and outcome.problems == [f"{config_file}: config file not found"]
        await asyncio.sleep(0.3)
        config_file.write_text(with_target("back"))
        assert (await next_change(watcher)).paths == (config_file,)   # and came back
        assert reload_config(config_file).ok


async def test_a_directory_that_does_not_exist_yet_is_waited_for(tmp_path):
    path = tmp_path / "later" / "deeper" / "monitor.toml"
    async with ConfigWatcher(path, quiet=QUIET) as watcher:
        await started(watcher)
        assert watcher.watched_dirs == {tmp_path}
        path.parent.mkdir(parents=True)
        await asyncio.sleep(0.3)
        path.write_text(GOOD)
        assert (await next_change(watcher)).paths == (path,)
        assert path.parent in watcher.watched_dirs


async def test_a_directory_removed_and_made_again_is_followed(tmp_path):
    folder = tmp_path / "conf"
    folder.mkdir()
    path = folder / "monitor.toml"
    path.write_text(GOOD)
    async with ConfigWatcher(path, quiet=QUIET) as watcher:
        await started(watcher)
        path.unlink()
        folder.rmdir()
        assert (await next_change(watcher)).paths == (path,)
        folder.mkdir()
        await asyncio.sleep(0.3)
        path.write_text(with_target("api"))
        assert (await next_change(watcher)).paths == (path,)


async def test_a_file_the_config_names_is_watched(tmp_path):
    ca = trustme.CA()
    ca_file = tmp_path / "certs" / "ca.pem"
    ca_file.parent.mkdir()
    ca.cert_pem.write_to_path(str(ca_file))
    path = tmp_path / "monitor.toml"
    path.write_text('[[targets]]\nname = "tls"\nkind = "tls"\nhost = "127.0.0.1"\nport = 9\n'
                    'ca_file = "certs/ca.pem"\n')
    config = load_config(path)
    assert files_named_by(config) == [ca_file]
    async with ConfigWatcher(path, config, quiet=QUIET) as watcher:
        await started(watcher)
        assert ca_file.parent in watcher.watched_dirs
        trustme.CA().cert_pem.write_to_path(str(ca_file))   # the private CA rotated
        assert (await next_change(watcher)).paths == (ca_file,)
        # an edit that stops naming it: the old file is no longer watched
        path.write_text(GOOD)
        assert (await next_change(watcher)).paths == (path,)
        watcher.follow(reload_config(path).config)
        assert ca_file not in watcher.paths
        ca.cert_pem.write_to_path(str(ca_file))
        assert await quiet_for(watcher)


async def test_extra_paths_files_and_directories(config_file, tmp_path):
    themes = tmp_path / "themes"
    themes.mkdir()
    (themes / "dark.toml").write_text("name = 'dark'\n")
    async with ConfigWatcher(config_file, extra=[themes], quiet=QUIET) as watcher:
        await started(watcher)
        (themes / "light.toml").write_text("name = 'light'\n")   # a theme added
        assert (await next_change(watcher)).paths == (themes,)
        (themes / "dark.toml").unlink()
        assert (await next_change(watcher)).paths == (themes,)


async def test_a_symlink_swapped_to_a_new_target_is_a_change(tmp_path):
    """A Kubernetes ConfigMap: the file is a link through `..data`, which is
    swapped to a new directory in one rename."""
    for version, text in (("v1", GOOD), ("v2", with_target("api"))):
        (tmp_path / version).mkdir()
        (tmp_path / version / "monitor.toml").write_text(text)
    (tmp_path / "..data").symlink_to("v1")
    path = tmp_path / "monitor.toml"
    path.symlink_to("..data/monitor.toml")
    async with ConfigWatcher(path, quiet=QUIET) as watcher:
        await started(watcher)
        (tmp_path / "..data_tmp").symlink_to("v2")
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
        assert (await next_change(watcher)).paths == (path,)
        assert [t.name for t in reload_config(path).config.targets] == ["web", "api"]


async def test_changes_while_the_consumer_is_busy_merge_into_one(config_file, tmp_path):
    other = tmp_path / "extra.toml"
    other.write_text("a")
    async with ConfigWatcher(config_file, extra=[other], quiet=QUIET) as watcher:
        await started(watcher)
        config_file.write_text(with_target("api"))
        await asyncio.sleep(QUIET * 4)
        other.write_text("b")
        await asyncio.sleep(QUIET * 4)
        config_file.write_text(with_target("api2"))
        await asyncio.sleep(QUIET * 4)
        change = await next_change(watcher, 0.01)   # already there: nothing queued behind it
        assert set(change.paths) == {config_file, other}
        assert await quiet_for(watcher, 0.5)


async def test_close_stops_the_thread_and_leaves_no_task(config_file):
    threads_before = threading.active_count()
    watcher = await started(ConfigWatcher(config_file, quiet=QUIET))
    consumer = asyncio.create_task(anext(watcher, None))
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await watcher.close()
    assert loop.time() - began < 2 * QUIET + 0.5   # the thread noticed at its next step
    assert await asyncio.wait_for(consumer, 1) is None   # the iteration ended
    assert {t for t in asyncio.all_tasks() if t.get_name() == "config-watch"} == set()
    for _ in range(100):   # anyio's worker thread idles on; ours (the Rust one) is gone
        if threading.active_count() <= threads_before + 1:
            break
        await asyncio.sleep(0.02)
    assert threading.active_count() <= threads_before + 1


def test_reload_gives_the_problems_as_validate_prints_them(tmp_path, capsys, monkeypatch):
    path = tmp_path / "monitor.toml"
    path.write_text('[settings]\ninterval = "soon"\n\n[[targets]]\nname = "api"\nkind = "htp"\n'
                    'url = "http://user:${PASSWORD}@127.0.0.1/"\n')
    monkeypatch.setenv("PASSWORD", "hunter2-secret")
    outcome = reload_config(path)
    assert not outcome.ok and outcome.config is None
    assert main(["validate", "--config", str(path)]) == 2
    printed = capsys.readouterr().err.splitlines()
    assert outcome.problems == printed[:len(outcome.problems)] and len(outcome.problems) == 2
    assert outcome.problems[0].startswith(f"{path}:2: settings.interval: ")
    assert outcome.problems[1].startswith(f"{path}:6: targets[api].kind: unknown kind 'htp'")
    assert "hunter2" not in "\n".join(outcome.problems)


def test_reload_of_a_good_file_gives_its_config(config_file):
    outcome = reload_config(config_file)
    assert outcome.ok and outcome.problems == [] and outcome.config.targets[0].name == "web"
