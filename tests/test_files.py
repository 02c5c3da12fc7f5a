"""ts_isr.files: what the tool may trust, against a real second user (nobody) and the real kernel."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from tests.support.users import NOBODY, PRECIOUS, nobodys, precious, public_tmp
from ts_isr.errors import ConfigError
from ts_isr.files import (
    UnsafePath,
    check_dir,
    check_trusted,
    open_nofollow,
    read_trusted,
    trusted_dir,
    trusted_path,
    untrusted_because,
    write_atomic,
)


def test_who_may_change_a_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("")
    path.chmod(0o644)
    assert untrusted_because(os.lstat(path)) is None
    path.chmod(0o664)  # root's group may write: only root is in it
    assert untrusted_because(os.lstat(path)) is None
    os.chown(path, 0, NOBODY.pw_gid)
    assert untrusted_because(os.lstat(path)) == f"group {NOBODY.pw_gid} can write it"
    path.chmod(0o646)
    assert untrusted_because(os.lstat(path)) == "every user can write it"
    nobodys(path)
    assert untrusted_because(os.lstat(path)).startswith(f"it is owned by uid {NOBODY.pw_uid}")


def test_check_trusted_refuses_a_link_and_names_the_fix(tmp_path: Path) -> None:
    target = precious(tmp_path)
    os.symlink(target, tmp_path / "link")
    with pytest.raises(UnsafePath, match="is a symbolic link; refused"):
        check_trusted(tmp_path / "link", "state_dir")
    nobodys(target)
    with pytest.raises(ConfigError) as refused:
        check_trusted(target, "config", kind=ConfigError)
    assert f"check it, then: chown root {target}" in str(refused.value)
    os.chown(target, 0, 0)
    target.chmod(0o666)
    with pytest.raises(UnsafePath, match=f"every user can write it; chmod o-w {target}"):
        check_trusted(target, "config")
    with pytest.raises(FileNotFoundError):
        check_trusted(tmp_path / "missing", "config")


def test_trusted_dir_creates_a_private_folder_and_refuses_loose_ones(tmp_path: Path) -> None:
    made = trusted_dir(tmp_path / "a" / "state", "state_dir")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    assert trusted_dir(made, "state_dir") == made, "an existing trusted folder is fine"
    made.chmod(0o777)
    with pytest.raises(UnsafePath, match=f"state_dir {made} is refused: every user can write it"):
        trusted_dir(made, "state_dir")
    made.chmod(0o700)
    nobodys(made)
    with pytest.raises(UnsafePath, match=f"owned by uid {NOBODY.pw_uid}"):
        trusted_dir(made, "state_dir")
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError):  # not a matter of trust: the caller says what failed
        trusted_dir(tmp_path / "file", "state_dir")
    with pytest.raises(NotADirectoryError):
        check_dir(tmp_path / "file", "state_dir")
    with pytest.raises(NotADirectoryError):
        trusted_dir(tmp_path / "file" / "sub", "state_dir")


@pytest.mark.parametrize("how", ["parent writable by all", "grandparent owned by nobody"])
def test_a_folder_above_that_another_user_can_change_is_refused(tmp_path: Path, how: str) -> None:
    """Whoever can rename entries in any folder above can swap the folder for theirs."""
    grandparent = tmp_path / "g"
    folder = grandparent / "p" / "state"
    folder.mkdir(parents=True, mode=0o700)
    loose = folder.parent if how.startswith("parent") else grandparent
    if how.startswith("parent"):
        loose.chmod(0o777)
    else:
        nobodys(loose)
    with pytest.raises(UnsafePath) as refused:
        trusted_dir(folder, "state_dir")
    assert str(refused.value).startswith(
        f"state_dir {folder} is refused: the folder {loose} on its way can be changed by other users"
    )
    loose.chmod(0o1777)  # sticky, as /tmp: nobody can rename root's folder in it
    if how.startswith("parent"):
        assert trusted_dir(folder, "state_dir") == folder


def test_a_link_is_followed_only_through_folders_no_other_user_can_change(tmp_path: Path) -> None:
    real = tmp_path / "etc" / "threatstop"
    real.mkdir(parents=True)
    precious(real)
    (tmp_path / "alias").symlink_to("etc/threatstop")  # relative, as admins write them
    assert trusted_path(tmp_path / "alias" / "precious", "config") == real / "precious"
    # as the kernel does it: ".." after a link is the parent of where the link led
    assert trusted_path(tmp_path / "alias" / ".." / "threatstop" / "new", "config") == real / "new"
    assert read_trusted(tmp_path / "alias" / "precious", "config") == PRECIOUS

    theirs = tmp_path / "home"
    theirs.mkdir()
    nobodys(theirs)
    os.symlink(real / "precious", theirs / "link")  # to a good file, but they can repoint it
    with pytest.raises(UnsafePath, match=f"the folder {theirs} on its way"):
        read_trusted(theirs / "link", "config")
    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(UnsafePath, match="too many symbolic links"):
        trusted_path(tmp_path / "loop", "config")
    with pytest.raises(FileNotFoundError):
        trusted_path(tmp_path / "missing" / "x", "config")


def test_read_trusted_refuses_a_file_another_user_can_change(tmp_path: Path) -> None:
    path = precious(tmp_path)
    path.chmod(0o646)
    with pytest.raises(ConfigError, match=f"config {path} is refused: every user can write it"):
        read_trusted(path, "config", kind=ConfigError)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UnsafePath, match="it is not a regular file"):
        read_trusted(tmp_path / "fifo", "config")  # refused at once: no writer is waited for
    with pytest.raises(FileNotFoundError):
        read_trusted(tmp_path / "missing", "config")


def test_open_nofollow_never_writes_through_a_link_or_into_a_fifo(tmp_path: Path) -> None:
    target = precious(tmp_path)
    os.symlink(target, tmp_path / "link")
    for flags in (os.O_WRONLY | os.O_CREAT | os.O_APPEND, os.O_RDWR | os.O_CREAT | os.O_TRUNC):
        with pytest.raises(UnsafePath, match="is a symbolic link; refused"):
            open_nofollow(tmp_path / "link", flags)
    assert target.read_bytes() == PRECIOUS
    os.mkfifo(tmp_path / "fifo")
    outcome: list[BaseException] = []

    def opening() -> None:
        try:
            open_nofollow(tmp_path / "fifo", os.O_WRONLY | os.O_CREAT)
        except BaseException as exc:
            outcome.append(exc)

    opener = threading.Thread(target=opening, daemon=True)
    opener.start()
    opener.join(10)  # bound: without O_NONBLOCK, opening a FIFO waits for a reader forever
    assert outcome and isinstance(outcome[0], UnsafePath), "a FIFO is refused at once"
    assert "it is not a regular file" in str(outcome[0])
    (tmp_path / "sub").mkdir()
    theirs = nobodys(precious(tmp_path / "sub"))
    with pytest.raises(UnsafePath, match=f"owned by uid {NOBODY.pw_uid}"):
        open_nofollow(theirs, os.O_WRONLY | os.O_APPEND)
    fd = open_nofollow(tmp_path / "new.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        assert os.get_blocking(fd) and stat.S_IMODE(os.fstat(fd).st_mode) == 0o600
    finally:
        os.close(fd)


def test_check_dir_does_not_create(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        check_dir(tmp_path / "state", "state_dir")
    assert not (tmp_path / "state").exists()


def test_write_atomic_replaces_a_planted_link_instead_of_writing_through_it() -> None:
    with public_tmp() as public:
        target = precious(public)
        folder = public / "conf"
        folder.mkdir()
        os.symlink(target, folder / "known_hosts")
        write_atomic(folder / "known_hosts", "mine\n")
        assert target.read_bytes() == PRECIOUS
        assert not (folder / "known_hosts").is_symlink()
        assert (folder / "known_hosts").read_text() == "mine\n"
