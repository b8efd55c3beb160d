import hashlib

import pytest

from inpaint_utils.fileio import atomic_open, sha256_file


def test_atomic_open_replaces_whole_file_and_keeps_old_on_error(tmp_path):
    path = tmp_path / "out.json"
    with atomic_open(path) as f:
        f.write("old")
    assert path.read_text() == "old" and path.stat().st_mode & 0o777 == 0o644
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_open(path) as f:
            f.write("half of the new")
            raise RuntimeError("boom")
    assert path.read_text() == "old"                      # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary file left
    with atomic_open(path, "wb") as f:
        f.write(b"new")
    assert path.read_bytes() == b"new"
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(path, "a"):
            pass


def test_sha256_file_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 5000
    (tmp_path / "x.bin").write_bytes(data)
    assert sha256_file(tmp_path / "x.bin", chunk=1000) == hashlib.sha256(data).hexdigest()


def test_check_writable_and_atomic_open_name_the_target_not_the_temporary_file(tmp_path, monkeypatch):
    import errno
    import tempfile

    from inpaint_utils.fileio import check_writable

    target = tmp_path / "out.json"
    check_writable(target)
    assert list(tmp_path.iterdir()) == []                                   # the trial file is gone
    with pytest.raises(FileNotFoundError, match=r"cannot write .*out\.json: folder .*nowhere does not exist"):
        check_writable(tmp_path / "nowhere" / "out.json")
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        check_writable(tmp_path)

    def read_only(prefix="", suffix="", dir=None):
        raise PermissionError(errno.EACCES, "Permission denied", f"{dir}/{prefix}abc{suffix}")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    for attempt in (lambda: check_writable(target), lambda: atomic_open(target).__enter__()):
        with pytest.raises(PermissionError) as caught:
            attempt()
        assert f"cannot write {target}: Permission denied" in str(caught.value) and ".tmp" not in str(caught.value)


def test_same_file_follows_symbolic_and_hard_links(tmp_path):
    import os

    from inpaint_utils.fileio import same_file

    a = tmp_path / "a.png"
    a.write_bytes(b"x")
    (tmp_path / "sym.png").symlink_to(a)
    os.link(a, tmp_path / "hard.png")
    (tmp_path / "b.png").write_bytes(b"x")
    assert same_file(a, tmp_path / "sym.png") and same_file(tmp_path / "hard.png", tmp_path / "sym.png")
    assert not same_file(a, tmp_path / "b.png") and not same_file(a, tmp_path / "missing.png")


def test_atomic_open_on_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    import errno
    import os

    path = tmp_path / "results.json"
    path.write_text("old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=f"cannot write {path}: No space left on device") as caught:
        with atomic_open(path) as f:
            f.write("new")
    assert caught.value.errno == errno.ENOSPC
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
