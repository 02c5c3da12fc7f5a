"""threatstop.conf: validation messages, atomic 0600 writes that keep comments, the example file."""

import os
import stat
from pathlib import Path

import pytest

from tests.support.users import NOBODY
from ts_isr.config import CISCO_KEYS, CISCO_TITLE, load_config, read_values, render_example, save_config
from ts_isr.configvalues import without_password
from ts_isr.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
GOOD = "device=192.0.2.1\nblock_list=demo.threatstop.local\nusername=tsadmin\npassword=s3cret\n"


def write(tmp_path, text, mode=0o600):
    path = tmp_path / "threatstop.conf"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_example_file_is_generated_from_the_schema():
    assert (ROOT / "threatstop.conf.example").read_text() == render_example(CISCO_KEYS, CISCO_TITLE)


def test_defaults_and_types(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.port == 53 and config.ssh_port == 22 and config.max_policy_size == 30000
    assert [str(a) for a in config.dns_server] == ["192.124.129.42"]
    assert config.known_hosts == tmp_path / "known_hosts"
    assert config.personality == "ios" and config.write_memory is False


def test_one_message_per_problem_naming_the_key(tmp_path):
    path = write(tmp_path, "device=192.0.2.300\nblock_list=bad name\nport=99999\npassword=x\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    lines = str(err.value).splitlines()
    assert len(lines) == 4
    assert any("device: '192.0.2.300' must be an IP address" in line for line in lines)
    assert any("block_list:" in line for line in lines)
    assert any("port: '99999' must be a whole number from 1 to 65535" in line for line in lines)
    assert any("username: is required and missing" in line for line in lines)


def test_secret_values_are_not_shown_in_messages(tmp_path):
    path = write(tmp_path, GOOD.replace("password=s3cret", 'password="s3cret\x01"'))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "s3cret" not in str(err.value) and "password: ******" in str(err.value)


@pytest.mark.parametrize(
    "url", ["https://[::1", "https://logs.example:http/upload", "https://logs.example:0/"]
)
def test_a_broken_url_is_one_line_naming_the_key(tmp_path, url):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, GOOD + f"url={url}\n"))
    assert str(err.value).count("\n") == 0 and "url: " in str(err.value) and "must be a URL" in str(err.value)


def test_a_password_in_a_proxy_url_is_masked_in_messages_and_in_the_run(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, GOOD + "proxy=socks5://netops:Pr0xyS3cret@proxy.example:1080\n"))
    assert "Pr0xyS3cret" not in str(err.value) and "netops:******@" in str(err.value)
    for odd in ("http://netops:Pr0/xyS3cret@proxy.example:3128", "socks5://netops:Pr0xyS3cret@x@p:1"):
        with pytest.raises(ConfigError) as err:
            load_config(write(tmp_path, GOOD + f"proxy={odd}\n"))
        assert "xyS3cret" not in str(err.value) and "netops:******@" in str(err.value)
    assert without_password("http://netops:P@ssW0rd@proxy:3128") == "http://netops:******@proxy:3128"
    config = load_config(write(tmp_path, GOOD + "proxy=http://netops:Pr0xyS3cret@proxy.example:3128\n"))
    assert "Pr0xyS3cret" in config.secrets(CISCO_KEYS), "masked in every log line, as a password"


def test_unquoted_comma_in_a_password_is_explained(tmp_path):
    with pytest.raises(ConfigError, match="put the value in double quotes"):
        load_config(write(tmp_path, GOOD.replace("s3cret", "a,b")))


def test_unknown_keys_and_loose_modes_warn(tmp_path, caplog):
    from ts_isr.log import log

    log.propagate = True
    config = load_config(write(tmp_path, GOOD + "colour=blue\n", mode=0o644))
    assert config.device is not None
    assert "unknown key 'colour'" in caplog.text
    assert "chmod 600" in caplog.text


def test_save_keeps_comments_and_unknown_keys_and_is_0600(tmp_path):
    path = write(tmp_path, "# my note\n" + GOOD + "colour=blue  # mine\n", mode=0o644)
    save_config(path, {"port": 5353, "password": "p#ss,word"})
    text = path.read_text()
    assert "# my note" in text and "colour = blue" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = load_config(path)
    assert config.port == 5353 and config.password == "p#ss,word"


def test_new_config_is_commented_from_the_schema(tmp_path):
    path = tmp_path / "new.conf"
    save_config(path, {"device": "192.0.2.1", "block_list": "a.threatstop.local", "username": "u"})
    assert "# Internal IP address of the ISR" in path.read_text()
    assert load_config(path).object_group_block == "threatstop-block"
    assert not list(tmp_path.glob(".new.conf.*"))


@pytest.mark.parametrize(
    ("loose", "reason"),
    [
        ("file owned by nobody", "is refused: it is owned by uid 65534, not by root"),
        ("file writable by all", "is refused: every user can write it; chmod o-w"),
        ("folder owned by nobody", "on its way can be changed by other users (it is owned by uid 65534"),
        ("folder writable by all", "on its way can be changed by other users (every user can write it"),
    ],
)
def test_a_config_another_user_could_change_is_refused_with_one_line(tmp_path, loose, reason):
    """It names commands root runs (log_reopen_command): whoever can change it would be root."""
    folder = tmp_path / "conf"
    folder.mkdir()
    path = write(folder, GOOD)
    if loose == "file owned by nobody":
        os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    elif loose == "file writable by all":
        path.chmod(0o666)
    elif loose == "folder owned by nobody":
        os.chown(folder, NOBODY.pw_uid, NOBODY.pw_gid)
    else:
        folder.chmod(0o777)
    for read in (load_config, read_values):
        with pytest.raises(ConfigError) as refused:
            read(path)
        [line] = str(refused.value).splitlines()
        assert line.startswith(f"config {path} ") and reason in line, line
    with pytest.raises(ConfigError, match="refused"):
        save_config(path, {"port": 5353})
    assert path.read_text() == GOOD, "nothing written"


def test_a_root_config_in_a_sticky_folder_and_a_link_through_root_folders_are_read(tmp_path):
    folder = tmp_path / "tmp"
    folder.mkdir(mode=0o1777)
    folder.chmod(0o1777)  # as /tmp: nobody can rename root's file there
    path = write(folder, GOOD)
    assert load_config(path).device is not None
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "threatstop.conf").symlink_to(path)
    assert load_config(etc / "threatstop.conf").username == "tsadmin"


def test_a_new_config_is_never_written_into_a_folder_others_can_change(tmp_path):
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(0o777)
    with pytest.raises(ConfigError, match="on its way can be changed by other users"):
        save_config(folder / "threatstop.conf", {"password": "s3cret"})
    assert list(folder.iterdir()) == []
