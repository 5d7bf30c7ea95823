"""What a reload changes, from two real configs."""

from __future__ import annotations

import trustme

from monitor.config import load_config, parse_config
from monitor.config.diff import diff_configs


def block(name: str, port: int = 9, extra: str = "") -> str:
    return f'[[targets]]\nname = "{name}"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {port}\n{extra}\n'


def config(*blocks: str, settings: str = "", rest: str = "", env: dict[str, str] | None = None):
    return parse_config(f"[settings]\n{settings}\n{rest}\n" + "".join(blocks), "m.toml",
                        environ=env or {})


def test_added_removed_changed_and_unchanged():
    old = config(block("a"), block("b"), block("c"), block("d"))
    new = config(block("a"), block("b", port=10), block("d"), block("e"), block("f"))
    diff = diff_configs(old, new)
    assert diff.added == ("e", "f")
    assert diff.removed == ("c",)
    assert diff.changed == ("b",) and diff.restarted == ("b",)
    assert diff.unchanged == ("a", "d")
    assert diff.settings == () and diff.other == ()
    assert diff.summary() == "config reloaded: +2 \u22121 ~1"
    assert diff.details() == "added: e, f; removed: c; changed: b"


def test_a_renamed_target_is_a_removal_and_an_addition():
    diff = diff_configs(config(block("old-name")), config(block("new-name")))
    assert (diff.added, diff.removed, diff.changed) == (("new-name",), ("old-name",), ())
    assert diff.summary() == "config reloaded: +1 \u22121 ~0"


def test_a_block_that_moved_in_the_file_is_unchanged():
    old = config(block("a"), block("b"))
    new = config("# a comment\n\n" + block("x"), block("b"), block("a"))
    assert new.target("a").line != old.target("a").line
    diff = diff_configs(old, new)
    assert diff.unchanged == ("b", "a") and diff.changed == () and diff.added == ("x",)


def test_labels_alone_change_a_target_without_a_restart():
    old = config(block("a"), block("b"), block("c"))
    new = config(block("a", extra='group = "prod"'), block("b", extra='tags = ["edge"]'),
                 block("c", extra='description = "the db"\ntimeout = "2s"'))
    diff = diff_configs(old, new)
    assert diff.changed == ("a", "b", "c")
    assert diff.relabelled == ("a", "b") and diff.restarted == ("c",)


def test_settings_are_named_and_targets_inheriting_them_change():
    old = config(block("inherits"), block("own", extra='interval = "10s"'),
                 settings='interval = "30s"\nconcurrency = 10')
    new = config(block("inherits"), block("own", extra='interval = "10s"'),
                 settings='interval = "1m"\ntimeout = "4s"\nconcurrency = 20\n'
                          'user_agent = "probe/2"')
    diff = diff_configs(old, new)
    assert diff.settings == ("interval", "timeout", "concurrency", "user_agent")
    # the timeout default reaches both; the interval default only the one without its own
    assert diff.changed == ("inherits", "own")
    assert old.target("own").interval == new.target("own").interval
    assert diff.summary() == ("config reloaded: +0 \u22120 ~2, "
                              "settings: interval, timeout, concurrency, user_agent")


def test_settings_only_and_other_sections():
    old = config(block("a"), settings="history = 100")
    new = config(block("a"), settings="history = 200",
                 rest='[demo]\nenabled = true\nport = 9000\n[keys]\nquit = "ctrl+q"\n')
    diff = diff_configs(old, new)
    assert diff.unchanged == ("a",) and diff.settings == ("history",)
    assert diff.other == ("demo.enabled", "demo.port", "keys")
    assert diff.summary() == ("config reloaded: +0 \u22120 ~0, settings: history, "
                              "also: demo.enabled, demo.port, keys")


def test_nothing_changed():
    text = block("a") + block("b")
    diff = diff_configs(config(text), config(text))
    assert diff.empty and diff.unchanged == ("a", "b")
    assert diff.summary() == "config reloaded: no changes" and diff.details() == ""


def test_a_changed_environment_value_changes_the_target_and_stays_secret():
    text = block("api", extra='description = "x"').replace(
        'host = "127.0.0.1"', 'host = "127.0.0.1"\nsend = "${TOKEN}"')
    old = config(text, env={"TOKEN": "first-secret"})
    new = config(text, env={"TOKEN": "second-secret"})
    diff = diff_configs(old, new)
    assert diff.changed == ("api",) and diff.restarted == ("api",)
    assert "secret" not in diff.summary() + diff.details()


def test_a_target_whose_ca_file_changed_on_disk_is_changed(tmp_path):
    ca_file = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    path = tmp_path / "m.toml"
    path.write_text(block("private", extra='ca_file = "ca.pem"\ntls = true') + block("plain"))
    cfg = load_config(path)
    assert diff_configs(cfg, cfg).changed == ()
    diff = diff_configs(cfg, cfg, files_changed=[ca_file])
    assert diff.changed == ("private",) and diff.restarted == ("private",)
    assert diff.unchanged == ("plain",)
    assert diff_configs(cfg, cfg, files_changed=[tmp_path / "m.toml"]).changed == ()


def test_details_name_a_few_of_many():
    old = config(*(block(f"t{i}") for i in range(3)))
    new = config(*(block(f"t{i}") for i in range(12)))
    assert diff_configs(old, new).details(limit=3) == "added: t3, t4, t5 (+6 more)"
