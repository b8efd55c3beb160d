"""Dataset downloads (inpaint_utils.data.download and data_download.sh) against a fake ``kaggle`` CLI.

The fake is a small Python script put first on PATH: it records its arguments and copies a zip built
by the test into the ``-p`` folder (or fails / sleeps when told to). Nothing touches the network.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaint_utils import data

ROOT = Path(__file__).resolve().parents[1]
SECRET = "k3y-7f1c9a-do-not-print"
KAGGLE_ID = "badasstechie/celebahq-resized-256x256"

FAKE_KAGGLE = """#!{python}
import json, os, shutil, sys, time
args = sys.argv[1:]
with open(os.environ["FAKE_KAGGLE_LOG"], "a") as f:
    f.write(json.dumps(args) + "\\n")
if os.environ.get("FAKE_KAGGLE_SLEEP"):
    time.sleep(float(os.environ["FAKE_KAGGLE_SLEEP"]))
code = int(os.environ.get("FAKE_KAGGLE_RC", "0"))
if code:
    print("403 - Forbidden - Permission 'datasets.get' was denied", file=sys.stderr)
    sys.exit(code)
assert args[:3] == ["datasets", "download", "-d"], args
dest = args[args.index("-p") + 1]
os.makedirs(dest, exist_ok=True)
shutil.copy(os.environ["FAKE_KAGGLE_ZIP"], os.path.join(dest, args[3].split("/")[-1] + ".zip"))
print("Downloading " + args[3].split("/")[-1] + ".zip to " + dest)
"""


def _png_bytes(color) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.broadcast_to(np.array(color, np.uint8), (8, 8, 3)).copy()).save(buf, "PNG")
    return buf.getvalue()


def _zip(path: Path, members: dict[str, bytes], infos: list[tuple[zipfile.ZipInfo, bytes]] = ()) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
        for info, payload in infos:
            zf.writestr(info, payload)
    return path


GOOD = {
    "celeba_hq_256/00000.jpg": _png_bytes((255, 0, 0)),  # png bytes under .jpg: Pillow reads by content
    "celeba_hq_256/00001.jpg": _png_bytes((0, 255, 0)),
    "celeba_hq_256/00002.jpg": _png_bytes((0, 0, 255)),
}


@pytest.fixture()
def env(tmp_path, monkeypatch):
    """A clean world: no credentials, data root in tmp, fake kaggle first on PATH."""
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR", "XDG_CONFIG_HOME",
                "INPAINT_DOWNLOAD_TIMEOUT", "FAKE_KAGGLE_RC", "FAKE_KAGGLE_SLEEP"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("INPAINT_DATA", str(tmp_path / "data"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "kaggle"
    fake.write_text(FAKE_KAGGLE.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_KAGGLE_LOG", str(tmp_path / "kaggle_calls.log"))
    monkeypatch.setenv("FAKE_KAGGLE_ZIP", str(_zip(tmp_path / "good.zip", GOOD)))
    monkeypatch.setitem(sys.modules, "kagglehub", None)  # backend "auto" is the kaggle CLI unless a test stubs it
    return tmp_path


def _login(monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "student")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)


def _calls(tmp_path: Path) -> list[list[str]]:
    log = tmp_path / "kaggle_calls.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _tree(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*")) if path.exists() else []


# --- success, re-run, resume -------------------------------------------------------------------------

def test_download_extracts_checks_and_marks(env, monkeypatch, capfd):
    _login(monkeypatch)
    dest = data.download("celeba-hq")
    assert dest == (env / "data" / "celeba-hq").resolve()
    assert _calls(env) == [["datasets", "download", "-d", KAGGLE_ID, "-p", str(dest / ".download")]]
    assert sorted(p.name for p in (dest / "celeba_hq_256").iterdir()) == ["00000.jpg", "00001.jpg", "00002.jpg"]
    marker = json.loads((dest / data.MARKER).read_text())
    assert marker["sha256"] == hashlib.sha256((env / "good.zip").read_bytes()).hexdigest()
    assert marker["kaggle_id"] == KAGGLE_ID and marker["files"] == 3
    assert not (dest / ".download").exists()  # archive removed after a complete extraction
    assert not [p for p in dest.iterdir() if p.name.startswith(".extract-")]
    out = capfd.readouterr()
    assert SECRET not in out.out + out.err
    source = data.find_source("celeba-hq", verbose=False)  # the notebooks now find it
    assert source.kind == "dataset" and len(source) == 3


def test_rerun_with_marker_skips_everything(env, monkeypatch, capfd):
    _login(monkeypatch)
    data.download("celeba-hq")
    capfd.readouterr()
    monkeypatch.delenv("KAGGLE_KEY")  # not even credentials are needed now
    assert data.main(["download", "celeba-hq"]) == 0
    assert "already complete" in capfd.readouterr().out
    assert len(_calls(env)) == 1
    data.download("celeba-hq", force=False)
    assert len(_calls(env)) == 1
    _login(monkeypatch)
    data.download("celeba-hq", force=True)
    assert len(_calls(env)) == 2


def test_archive_already_downloaded_is_not_fetched_again(env, monkeypatch, capfd):
    dest = env / "data" / "celeba-hq"
    (dest / ".download").mkdir(parents=True)
    (dest / ".download" / "celebahq-resized-256x256.zip").write_bytes((env / "good.zip").read_bytes())
    monkeypatch.setenv("PATH", str(env / "empty-path"))  # no kaggle, no credentials: not needed
    assert data.main(["download", "celeba-hq", "--keep-archive"]) == 0
    assert "skipping the download" in capfd.readouterr().out
    assert _calls(env) == [] and (dest / data.MARKER).is_file()
    assert (dest / ".download" / "celebahq-resized-256x256.zip").is_file()


def test_partial_archive_is_replaced(env, monkeypatch, capfd):
    _login(monkeypatch)
    dest = env / "data" / "celeba-hq"
    (dest / ".download").mkdir(parents=True)
    good = (env / "good.zip").read_bytes()
    (dest / ".download" / "celebahq-resized-256x256.zip").write_bytes(good[: len(good) // 2])
    data.download("celeba-hq", dest=dest)
    assert "not usable" in capfd.readouterr().out
    assert len(_calls(env)) == 1 and (dest / data.MARKER).is_file()


def test_dest_option_and_sha256_from_registry(env, monkeypatch):
    _login(monkeypatch)
    digest = hashlib.sha256((env / "good.zip").read_bytes()).hexdigest()
    spec = data.DATASETS["celeba-hq"]
    monkeypatch.setitem(data.DATASETS, "celeba-hq", dataclasses.replace(spec, sha256=digest))
    assert data.main(["download", "celeba-hq", "--dest", str(env / "elsewhere")]) == 0
    assert json.loads((env / "elsewhere" / data.MARKER).read_text())["sha256"] == digest


def test_sha256_mismatch_is_refused_once_and_force_fetches_a_fresh_archive(env, monkeypatch, capfd):
    _login(monkeypatch)
    spec = data.DATASETS["celeba-hq"]
    monkeypatch.setitem(data.DATASETS, "celeba-hq", dataclasses.replace(spec, sha256="0" * 64))
    assert data.main(["download", "celeba-hq"]) == 1
    err = capfd.readouterr().err
    assert "registry expects 0000" in err and "--force" in err and len(err.splitlines()) == 1
    dest = env / "data" / "celeba-hq"
    assert not (dest / data.MARKER).exists() and not (dest / "celeba_hq_256").exists()
    archive = dest / ".download" / "celebahq-resized-256x256.zip"
    assert archive.is_file()                                                  # kept: the same file would come again
    with monkeypatch.context() as m:
        m.setattr("inpaint_utils.data.downloads.sha256_file",
                  lambda path: pytest.fail("the refused archive was hashed again"))
        assert data.main(["download", "celeba-hq"]) == 1                      # the re-run says so at once
    err = capfd.readouterr().err
    assert "refused by an earlier run" in err and "--force" in err and len(_calls(env)) == 1
    monkeypatch.setitem(data.DATASETS, "celeba-hq", spec)
    assert data.main(["download", "celeba-hq", "--force"]) == 0               # registry restored: a fresh one
    assert len(_calls(env)) == 2 and (dest / data.MARKER).is_file() and not (dest / ".download").exists()


def test_a_damaged_archive_is_removed_not_refused(env, monkeypatch, capfd):
    _login(monkeypatch)
    good = (env / "good.zip").read_bytes()
    (env / "cut.zip").write_bytes(good[: len(good) // 2])
    monkeypatch.setenv("FAKE_KAGGLE_ZIP", str(env / "cut.zip"))
    assert data.main(["download", "celeba-hq"]) == 1
    assert "removed; run again" in capfd.readouterr().err
    assert _tree(env / "data" / "celeba-hq" / ".download") == []


# --- credentials ---------------------------------------------------------------------------------------

def test_missing_credentials_explain_how_to_create_them(env, capfd):
    assert data.main(["download", "celeba-hq"]) == 1
    err = capfd.readouterr().err
    assert "no Kaggle API credentials found" in err
    for hint in ("Settings -> API", "Create New Token", "~/.kaggle/kaggle.json", "chmod 600", "KAGGLE_KEY"):
        assert hint in err
    assert _calls(env) == []


def test_only_half_of_the_env_pair(env, monkeypatch, capfd):
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    assert data.main(["download", "celeba-hq"]) == 1
    err = capfd.readouterr().err
    assert "KAGGLE_KEY is set but KAGGLE_USERNAME is not" in err and SECRET not in err


def test_kaggle_json_in_config_dir(env, monkeypatch, capfd):
    config_dir = env / "kcfg"
    config_dir.mkdir()
    token = config_dir / "kaggle.json"
    token.write_text(json.dumps({"username": "student", "key": SECRET}))
    token.chmod(0o644)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config_dir))
    assert data.kaggle_credentials() == str(token)
    assert "chmod 600" in capfd.readouterr().err  # readable by others: warned
    token.chmod(0o600)
    assert data.main(["download", "celeba-hq"]) == 0
    out = capfd.readouterr()
    assert SECRET not in out.out + out.err and "chmod" not in out.err


@pytest.mark.parametrize("content", [f'{{"username": "student", "key": "{SECRET}"', json.dumps({"key": SECRET})])
def test_broken_kaggle_json_never_shows_the_key(env, capfd, content):
    (env / "home" / ".kaggle").mkdir()
    (env / "home" / ".kaggle" / "kaggle.json").write_text(content)
    assert data.main(["download", "celeba-hq"]) == 1
    out = capfd.readouterr()
    assert "kaggle.json" in out.err and "fresh token" in out.err
    assert SECRET not in out.out + out.err


# --- the kaggle CLI ------------------------------------------------------------------------------------

def test_kaggle_cli_failing(env, monkeypatch, capfd):
    _login(monkeypatch)
    monkeypatch.setenv("FAKE_KAGGLE_RC", "1")
    assert data.main(["download", "celeba-hq"]) == 1
    out = capfd.readouterr()
    assert "kaggle exited with status 1" in out.err and "403" in out.err  # ours and kaggle's own message
    assert SECRET not in out.out + out.err
    assert not (env / "data" / "celeba-hq" / data.MARKER).exists()


def test_kaggle_cli_missing(env, monkeypatch, capfd):
    _login(monkeypatch)
    monkeypatch.setenv("PATH", str(env / "empty-path"))
    monkeypatch.setattr(data.downloads, "_python_bin_dir", lambda: env / "no-venv")
    assert data.main(["download", "celeba-hq"]) == 1
    err = capfd.readouterr().err
    assert "kaggle command-line tool is not installed" in err and "pip install kaggle" in err


def test_kaggle_cli_timeout(env, monkeypatch, capfd):
    _login(monkeypatch)
    monkeypatch.setenv("FAKE_KAGGLE_SLEEP", "20")
    monkeypatch.setenv("INPAINT_DOWNLOAD_TIMEOUT", "1")
    assert data.main(["download", "celeba-hq"]) == 1
    assert "did not finish downloading" in capfd.readouterr().err
    monkeypatch.setenv("INPAINT_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(data.DownloadError, match="INPAINT_DOWNLOAD_TIMEOUT must be a number"):
        data.download("celeba-hq")


def test_unknown_dataset(env, capfd):
    assert data.main(["download", "celebahq"]) == 1
    assert "known datasets: animals-90, celeba-hq" in capfd.readouterr().err


# --- damaged and malicious archives -------------------------------------------------------------------

def test_corrupted_zip(env, monkeypatch, capfd):
    _login(monkeypatch)
    (env / "noise.zip").write_bytes(os.urandom(2048))
    monkeypatch.setenv("FAKE_KAGGLE_ZIP", str(env / "noise.zip"))
    assert data.main(["download", "celeba-hq"]) == 1
    assert "is not a valid zip archive" in capfd.readouterr().err
    dest = env / "data" / "celeba-hq"
    assert _tree(dest) == [".download"]  # the bad archive is removed, nothing extracted


def test_member_with_bad_crc(env, monkeypatch, capfd):
    _login(monkeypatch)
    payload = b"A" * 5000
    raw = bytearray(_zip(env / "stored.zip", {}, [(_stored("celeba_hq_256/x.jpg"), payload)]).read_bytes())
    at = raw.find(payload)
    raw[at + 100] ^= 0xFF  # flip a byte of the stored member
    (env / "stored.zip").write_bytes(bytes(raw))
    monkeypatch.setenv("FAKE_KAGGLE_ZIP", str(env / "stored.zip"))
    assert data.main(["download", "celeba-hq"]) == 1
    assert "fails its CRC check" in capfd.readouterr().err
    assert not (env / "data" / "celeba-hq" / "celeba_hq_256").exists()


def _stored(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_STORED
    return info


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("member,reason", [
    ("../evil.txt", "'..' component"),
    ("celeba_hq_256/../../evil.txt", "'..' component"),
    ("..\\evil.txt", "'..' component"),
    ("/tmp/inpaint_evil_abs.txt", "absolute path"),
    ("C:/evil.txt", "drive letter"),
    ("link", "symbolic link"),
])
def test_unsafe_members_refused_and_nothing_written(env, monkeypatch, capfd, member, reason):
    _login(monkeypatch)
    info = _symlink(member) if member == "link" else zipfile.ZipInfo(member)
    payload = b"../../../../etc/passwd" if member == "link" else b"pwned"
    bad = _zip(env / "bad.zip", GOOD, [(info, payload)])
    with zipfile.ZipFile(bad) as zf:
        assert member in zf.namelist()  # the archive really holds the raw name
    monkeypatch.setenv("FAKE_KAGGLE_ZIP", str(bad))
    assert data.main(["download", "celeba-hq"]) == 1
    err = capfd.readouterr().err
    assert "refusing to extract" in err and reason in err and "Nothing was extracted" in err
    dest = env / "data" / "celeba-hq"
    assert _tree(dest) == [".download", ".download/celebahq-resized-256x256.zip"]
    assert not (env / "data" / "evil.txt").exists() and not (env / "evil.txt").exists()
    assert not Path("/tmp/inpaint_evil_abs.txt").exists()


def test_failed_extraction_leaves_no_half_tree(env, monkeypatch):
    import shutil

    calls = {"n": 0}
    real = shutil.copyfileobj

    def flaky(src, dst, length=0):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real(src, dst, length)

    monkeypatch.setattr(shutil, "copyfileobj", flaky)
    dest = env / "out"
    with pytest.raises(data.DownloadError, match="No space left on device.*nothing was left half-extracted"):
        data.safe_extract(env / "good.zip", dest)
    assert _tree(dest) == []
    monkeypatch.setattr(shutil, "copyfileobj", real)
    assert data.safe_extract(env / "good.zip", dest) == 3
    assert _tree(dest) == ["celeba_hq_256"] + [f"celeba_hq_256/0000{k}.jpg" for k in range(3)]


# --- the shell script, end to end ----------------------------------------------------------------------

def test_data_download_sh_end_to_end(env):
    script = ROOT / "data_download.sh"
    assert os.access(script, os.X_OK)
    run_env = {**os.environ, "KAGGLE_USERNAME": "student", "KAGGLE_KEY": SECRET}
    proc = subprocess.run(["bash", str(script), "celeba-hq"], env=run_env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    dest = env / "data" / "celeba-hq"
    assert (dest / data.MARKER).is_file() and len(list((dest / "celeba_hq_256").glob("*.jpg"))) == 3
    assert SECRET not in proc.stdout + proc.stderr
    again = subprocess.run([str(script), "celeba-hq"], env=run_env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already complete" in again.stdout
    assert len(_calls(env)) == 1
    listed = subprocess.run(["bash", str(script), "list"], env=run_env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and KAGGLE_ID in listed.stdout
    usage = subprocess.run(["bash", str(script)], env=run_env, capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "usage: bash data_download.sh NAME" in usage.stderr
    helped = subprocess.run(["bash", str(script), "-h"], env=run_env, capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "Create New Token" in helped.stdout
    no_login = {k: v for k, v in run_env.items() if k not in ("KAGGLE_USERNAME", "KAGGLE_KEY")}
    failed = subprocess.run(["bash", str(script), "cityscapes"], env=no_login, capture_output=True, text=True,
                            timeout=120)
    assert failed.returncode == 1 and "Create New Token" in failed.stderr


# --- kagglehub (a stub module: Colab ships the real one) ---------------------------------------------

class StubKagglehub(types.ModuleType):
    """``kagglehub.dataset_download(handle)`` as the real one behaves: it extracts the dataset into
    ``$KAGGLEHUB_CACHE/datasets/<owner>/<name>/versions/1`` (skipping a tree already there) and returns
    that folder. ``members`` are written as files; ``links`` as symbolic links; ``error`` is raised."""

    def __init__(self, members=GOOD, links=(), error=None):
        super().__init__("kagglehub")
        self.members, self.links, self.error, self.calls, self.fetched = members, dict(links), error, [], 0

    def dataset_download(self, handle, path=None, *, force_download=False):
        cache = os.environ.get("KAGGLEHUB_CACHE") or str(Path.home() / ".cache" / "kagglehub")
        self.calls.append((handle, cache))
        if self.error is not None:
            raise self.error
        root = Path(cache, "datasets", *handle.split("/"), "versions", "1")
        done = root.with_name("1.complete")                            # kagglehub's own marker, beside the tree
        if force_download or not done.exists():
            self.fetched += 1
            for name, payload in self.members.items():
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(payload)
            for name, target in self.links.items():
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).symlink_to(target)
            done.write_text("")
        return str(root)


def test_kagglehub_when_installed_downloads_into_the_destination_only(env, monkeypatch, capfd):
    hub = StubKagglehub()
    monkeypatch.setitem(sys.modules, "kagglehub", hub)
    monkeypatch.delenv("KAGGLEHUB_CACHE", raising=False)
    home_before = _tree(env / "home")
    dest = data.download("celeba-hq")                                  # no credentials needed (public dataset)
    assert hub.calls == [(KAGGLE_ID, str(dest / ".download"))]         # its cache pointed inside dest
    assert _calls(env) == []                                           # the kaggle CLI was not used
    assert "KAGGLEHUB_CACHE" not in os.environ                         # restored
    assert sorted(p.name for p in (dest / "celeba_hq_256").iterdir()) == ["00000.jpg", "00001.jpg", "00002.jpg"]
    marker = json.loads((dest / data.MARKER).read_text())
    assert marker["backend"] == "kagglehub" and marker["files"] == 3 and len(marker["tree_sha256"]) == 64
    assert not (dest / ".download").exists()
    assert _tree(env / "home") == home_before                          # nothing written outside dest
    assert sorted(p.name for p in env.iterdir()) == sorted(["bin", "home", "data", "good.zip"])
    assert data.find_source("celeba-hq", verbose=False).kind == "dataset"
    capfd.readouterr()
    data.download("celeba-hq")                                         # a re-run skips everything
    assert len(hub.calls) == 1 and "already complete" in capfd.readouterr().out
    data.download("celeba-hq", force=True)
    assert len(hub.calls) == 2 and hub.fetched == 2


def test_kagglehub_tree_already_in_its_cache_is_not_fetched_again(env, monkeypatch):
    hub = StubKagglehub()
    monkeypatch.setitem(sys.modules, "kagglehub", hub)
    dest = env / "data" / "celeba-hq"
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(dest / ".download"))   # a run stopped after kagglehub finished
    hub.dataset_download(KAGGLE_ID)
    monkeypatch.delenv("KAGGLEHUB_CACHE")
    data.download("celeba-hq")
    assert len(hub.calls) == 2 and hub.fetched == 1
    assert (dest / "celeba_hq_256" / "00002.jpg").is_file()


def test_kagglehub_empty_cache_left_by_a_stopped_run_is_fetched_again(env, monkeypatch, capfd):
    hub = StubKagglehub()
    monkeypatch.setitem(sys.modules, "kagglehub", hub)
    dest = env / "data" / "celeba-hq"
    version = dest / ".download" / "datasets" / Path(KAGGLE_ID) / "versions" / "1"
    version.mkdir(parents=True)                  # the tree moved out, the marker never written:
    version.with_name("1.complete").write_text("")  # kagglehub's cache says complete but is empty
    data.download("celeba-hq")
    assert hub.fetched == 1 and "is empty" in capfd.readouterr().out
    assert (dest / data.MARKER).is_file()
    assert sorted(p.name for p in (dest / "celeba_hq_256").iterdir()) == ["00000.jpg", "00001.jpg", "00002.jpg"]


@pytest.mark.parametrize("case", ["link", "not an image", "no image"])
def test_kagglehub_bad_tree_is_refused_and_nothing_moved(env, monkeypatch, case):
    if case == "link":
        hub = StubKagglehub(links={"celeba_hq_256/00003.jpg": "/etc/passwd"})
        match = "symbolic link"
    elif case == "not an image":
        hub = StubKagglehub(members={**GOOD, "celeba_hq_256/00003.jpg": b"<html>rate limited</html>"})
        match = "not a readable image"
    else:
        hub = StubKagglehub(members={"readme.txt": b"hello"})
        match = "no image"
    monkeypatch.setitem(sys.modules, "kagglehub", hub)
    dest = env / "data" / "celeba-hq"
    with pytest.raises(data.DownloadError, match=match):
        data.download("celeba-hq")
    assert not (dest / data.MARKER).exists() and not (dest / "celeba_hq_256").exists()


def test_kagglehub_failure_and_backend_choice(env, monkeypatch, capfd):
    hub = StubKagglehub(error=ConnectionError("Max retries exceeded"))
    monkeypatch.setitem(sys.modules, "kagglehub", hub)
    with pytest.raises(data.DownloadError, match=r"kagglehub could not download .*ConnectionError.*signed in"):
        data.download("celeba-hq")
    _login(monkeypatch)
    dest = data.download("celeba-hq", backend="kaggle")                # the CLI even with kagglehub present
    assert len(_calls(env)) == 1 and len(hub.calls) == 1
    assert json.loads((dest / data.MARKER).read_text())["sha256"]
    monkeypatch.setitem(sys.modules, "kagglehub", None)
    with pytest.raises(data.DownloadError, match="kagglehub is not installed: pip install kagglehub"):
        data.download("cityscapes", backend="kagglehub")
    with pytest.raises(data.DownloadError, match="backend must be one of"):
        data.download("cityscapes", backend="hub")
    assert data.main(["download", "cityscapes", "--backend", "kagglehub"]) == 1
    assert "kagglehub is not installed" in capfd.readouterr().err


# --- the course's dataset: one setting for every notebook ----------------------------------------------

STUBS = Path(__file__).resolve().parent / "stubs"


@pytest.fixture()
def stub_kagglehub(env, monkeypatch):
    """The file-based stub of tests/stubs/kagglehub.py, imported from sys.path, serving a zip of GOOD."""
    monkeypatch.delitem(sys.modules, "kagglehub")
    monkeypatch.syspath_prepend(str(STUBS))
    monkeypatch.setenv("STUB_KAGGLEHUB_SOURCE", str(env / "good.zip"))
    monkeypatch.setenv("STUB_KAGGLEHUB_LOG", str(env / "stub_calls.log"))
    monkeypatch.delenv("KAGGLEHUB_CACHE", raising=False)
    monkeypatch.delenv(data.COURSE_ENV, raising=False)
    import kagglehub

    assert kagglehub.__version__ == "0.0-stub" and Path(kagglehub.__file__).parent == STUBS
    yield kagglehub
    sys.modules.pop("kagglehub", None)


def test_a_download_becomes_the_course_dataset_of_every_later_notebook(stub_kagglehub, env, capfd):
    assert data.course_dataset() is None                              # nothing downloaded: the fallbacks
    assert data.find_source(data.course_dataset(), "faces", verbose=False).kind != "dataset"
    dest = data.download(data.DEFAULT_COURSE_DATASET)                 # what notebook 00 calls when online
    out = capfd.readouterr().out
    assert "the course's dataset from now on" in out
    assert (env / "stub_calls.log").read_text().split("\t")[0] == KAGGLE_ID   # through kagglehub, no token
    record = json.loads((env / "data" / data.COURSE_FILE).read_text())
    assert record["dataset"] == "celeba-hq" and record["kaggle_id"] == KAGGLE_ID
    # a later notebook (its DATASET = None) asks for the course's dataset and gets the downloaded images
    assert data.course_dataset() == "celeba-hq" and data.course_dataset(None) == "celeba-hq"
    source = data.find_source(data.course_dataset(), "faces")
    assert source.kind == "dataset" and source.root == dest and len(source) == 3
    assert capfd.readouterr().out.startswith("data source: dataset 'celeba-hq'") and "(3 images)" in out + source.summary()
    # an explicit parameter still wins; the environment variable overrides the record
    assert data.course_dataset("cityscapes") == "cityscapes"


def test_the_environment_names_the_course_dataset(env, monkeypatch):
    monkeypatch.setenv(data.COURSE_ENV, "celeba-hq")
    assert data.course_dataset() == "celeba-hq"                        # named, even before its download ...
    assert data.find_source(data.course_dataset(), verbose=False).kind != "dataset"   # ... which falls back
    monkeypatch.setenv(data.COURSE_ENV, "lsun")
    with pytest.raises(KeyError, match="unknown dataset 'lsun'"):
        data.course_dataset()


def test_a_course_record_without_its_images_falls_back(env, monkeypatch):
    monkeypatch.delenv(data.COURSE_ENV, raising=False)
    (env / "data").mkdir()
    for text in ('{"dataset": "celeba-hq"}', "not json", '{"dataset": "lsun"}', "[]"):
        (env / "data" / data.COURSE_FILE).write_text(text)
        assert data.course_dataset() is None, text                      # no images, broken or unknown: fallback


def test_a_download_elsewhere_does_not_change_the_course_dataset(stub_kagglehub, env):
    data.download("celeba-hq", dest=env / "elsewhere")
    assert not (env / "data" / data.COURSE_FILE).exists() and data.course_dataset() is None


def test_verify_download_checks_the_listing_stored_at_the_first_download(stub_kagglehub, env):
    dest = data.download("celeba-hq")
    assert data.verify_download("celeba-hq") is True
    (dest / "celeba_hq_256" / "00001.jpg").write_bytes(b"changed")
    assert data.verify_download("celeba-hq") is False
    with pytest.raises(data.DownloadError, match="nothing to verify against"):
        data.verify_download("cityscapes")


def test_registry_records_the_course_dataset_as_stated_not_verified():
    spec = data.get_dataset_spec(data.DEFAULT_COURSE_DATASET)
    assert spec.kaggle_id == "badasstechie/celebahq-resized-256x256" and spec.num_files == 30000
    assert spec.size and "not verified here" in spec.stated
    assert spec.sha256 is None                                         # never invented: see .complete instead


# --- hostile inputs: what a download must never delete -----------------------------------------------

class _ReturnsGiven(StubKagglehub):
    """A kagglehub that returns ``value(cache)`` instead of the folder it extracted."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def dataset_download(self, handle, path=None, *, force_download=False):
        super().dataset_download(handle, path, force_download=force_download)
        return self.value(Path(os.environ["KAGGLEHUB_CACHE"]))


@pytest.mark.parametrize("returned", ["the destination", "its cache", "None"])
def test_kagglehub_returning_the_destination_or_none_deletes_nothing(env, monkeypatch, returned):
    dest = env / "data" / "celeba-hq"
    dest.mkdir(parents=True)
    (dest / "!notes.txt").write_text("mine")                  # sorts before .download
    (dest / "-photos").mkdir()
    (dest / "-photos" / "a.png").write_bytes(_png_bytes((1, 2, 3)))
    value = {"the destination": lambda cache: str(cache.parent), "its cache": lambda cache: str(cache),
             "None": lambda cache: None}[returned]
    monkeypatch.setitem(sys.modules, "kagglehub", _ReturnsGiven(value))
    with pytest.raises(data.DownloadError, match="nothing was moved"):
        data.download("celeba-hq")
    assert (dest / "!notes.txt").read_text() == "mine" and (dest / "-photos" / "a.png").is_file()
    assert not (dest / data.MARKER).exists()


def test_kagglehub_tree_with_a_download_folder_of_its_own_is_refused(env, monkeypatch):
    hub = StubKagglehub(members={**GOOD, ".download/x.txt": b"mine"})
    monkeypatch.setitem(sys.modules, "kagglehub", hub)
    with pytest.raises(data.DownloadError, match=r"\.download would replace the download's own"):
        data.download("celeba-hq")
    assert not (env / "data" / "celeba-hq" / data.MARKER).exists()


@pytest.mark.parametrize("member", [".download/celebahq-resized-256x256.zip", ".download/x.txt", ".complete"])
def test_archive_members_under_the_download_folder_are_refused(env, monkeypatch, capfd, member):
    _login(monkeypatch)
    bad = _zip(env / "bad.zip", {**GOOD, member: b"pwned"})
    monkeypatch.setenv("FAKE_KAGGLE_ZIP", str(bad))
    assert data.main(["download", "celeba-hq", "--keep-archive"]) == 1
    err = capfd.readouterr().err
    assert "refusing to extract" in err and "the download's own" in err and member in err
    archive = env / "data" / "celeba-hq" / ".download" / "celebahq-resized-256x256.zip"
    assert archive.read_bytes() == bad.read_bytes()            # the archive --keep-archive keeps is still there
    assert not (env / "data" / "celeba-hq" / data.MARKER).exists()


def test_a_decompression_bomb_in_a_kagglehub_tree_is_named_not_decoded(env, monkeypatch):
    from _bad_files import write_bomb_png

    bomb = write_bomb_png(env / "bomb.png").read_bytes()
    hub = StubKagglehub(members={**GOOD, "celeba_hq_256/00003.png": bomb})
    monkeypatch.setitem(sys.modules, "kagglehub", hub)
    with pytest.warns(UserWarning, match=r"decompression bomb.*00003\.png"):
        dest = data.download("celeba-hq")
    assert (dest / data.MARKER).is_file()
    assert len(list((dest / "celeba_hq_256").iterdir())) == 4           # nothing lost
    with pytest.raises(data.ImageReadError, match="00003.png"):
        data.load_image(dest / "celeba_hq_256" / "00003.png")


def test_the_download_command_shows_a_warning_in_one_line(env, monkeypatch, capfd):
    from _bad_files import write_bomb_png

    bomb = write_bomb_png(env / "bomb.png").read_bytes()
    monkeypatch.setitem(sys.modules, "kagglehub", StubKagglehub(members={**GOOD, "celeba_hq_256/00009.png": bomb}))
    assert data.main(["download", "celeba-hq"]) == 0
    err = capfd.readouterr().err
    warned = [line for line in err.splitlines() if "decompression bomb" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: ") and "00009.png" in warned[0]
    assert "warnings.warn" not in err and "UserWarning" not in err
