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
