"""Downloading a registered dataset with ``kagglehub`` (where it is installed, as on Colab) or the Kaggle CLI:
verified archive or checked tree, safe extraction, a marker written last (part of :mod:`inpaint_utils.data`)."""
from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable


from .. import config
from ..fileio import atomic_open, sha256_file
from .registry import COURSE_FILE, MARKER, DatasetSpec, get_dataset_spec


_DOWNLOAD_DIR = ".download"
DEFAULT_TIMEOUT_S = 3600.0
#: ``download(backend=...)``: ``auto`` is kagglehub when it can be imported, else the kaggle CLI.
BACKENDS = ("auto", "kagglehub", "kaggle")


class DownloadError(RuntimeError):
    """A download step failed; the message says which and what to do. It never holds a key."""


class ChecksumMismatch(DownloadError):
    """A complete, undamaged archive whose sha256 is not the registry's (the Kaggle dataset changed):
    downloading it again gives the same file, so it is kept and refused until ``--force``."""


#: suffix of the record of a refused archive, beside it in ``dest/.download``
_REFUSED_SUFFIX = ".refused.json"


_CREDENTIALS_HELP = (
    "Create a token once: sign in at https://www.kaggle.com -> Settings -> API -> 'Create New Token' "
    "(this downloads kaggle.json); put it at ~/.kaggle/kaggle.json (or in the folder named by "
    "$KAGGLE_CONFIG_DIR) and run `chmod 600 ~/.kaggle/kaggle.json`. Or export KAGGLE_USERNAME and "
    "KAGGLE_KEY (or KAGGLE_API_TOKEN) in your shell."
)


def _kaggle_json_candidates() -> list[Path]:
    config_dir = os.environ.get("KAGGLE_CONFIG_DIR", "").strip()
    if config_dir:
        return [Path(config_dir).expanduser() / "kaggle.json"]
    home = Path.home()
    xdg = os.environ.get("XDG_CONFIG_HOME", "").strip() or str(home / ".config")
    return [home / ".kaggle" / "kaggle.json", Path(xdg) / "kaggle" / "kaggle.json"]


def kaggle_credentials() -> str:
    """Where the Kaggle API credentials come from (a description, never the key itself).

    Accepted, as the kaggle CLI does: ``KAGGLE_USERNAME`` + ``KAGGLE_KEY``, ``KAGGLE_API_TOKEN``,
    ``$KAGGLE_CONFIG_DIR/kaggle.json`` or ``~/.kaggle/kaggle.json`` (with ``username`` and ``key``),
    ``~/.kaggle/access_token``. Raises :class:`DownloadError` saying how to create them.
    """
    user, key = os.environ.get("KAGGLE_USERNAME", "").strip(), os.environ.get("KAGGLE_KEY", "").strip()
    if user and key:
        return "environment variables KAGGLE_USERNAME and KAGGLE_KEY"
    if os.environ.get("KAGGLE_API_TOKEN", "").strip():
        return "environment variable KAGGLE_API_TOKEN"
    partial = ""
    if bool(user) != bool(key):
        have, missing = ("KAGGLE_USERNAME", "KAGGLE_KEY") if user else ("KAGGLE_KEY", "KAGGLE_USERNAME")
        partial = f" ({have} is set but {missing} is not.)"
    candidates = _kaggle_json_candidates()
    for path in candidates:
        if not path.is_file():
            continue
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise DownloadError(f"{path} exists but is not a readable JSON file; replace it with a fresh token. "
                                + _CREDENTIALS_HELP) from None
        if not (isinstance(content, dict) and content.get("username") and content.get("key")):
            raise DownloadError(f"{path} lacks a 'username' and a 'key' entry; replace it with a fresh token. "
                                + _CREDENTIALS_HELP)
        if os.name == "posix" and path.stat().st_mode & 0o077:
            print(f"warning: {path} can be read by other users; run: chmod 600 {path}", file=sys.stderr)
        return str(path)
    token_file = Path.home() / ".kaggle" / "access_token"
    if token_file.is_file() and token_file.stat().st_size > 0:
        return str(token_file)
    looked = ", ".join(str(p) for p in candidates)
    raise DownloadError(f"no Kaggle API credentials found (looked for KAGGLE_USERNAME/KAGGLE_KEY, "
                        f"KAGGLE_API_TOKEN and {looked}).{partial} " + _CREDENTIALS_HELP)


def _python_bin_dir() -> Path:
    return Path(sys.executable).parent


def _find_kaggle_cli() -> str:
    """The ``kaggle`` executable: on ``PATH``, else beside the running Python (an unactivated venv)."""
    found = shutil.which("kaggle")
    if found:
        return found
    found = shutil.which("kaggle", path=str(_python_bin_dir()))
    if found:
        return found
    raise DownloadError("the kaggle command-line tool is not installed (not on PATH nor in "
                        f"{_python_bin_dir()}). Install it with: pip install kaggle "
                        "(or: pip install -e '.[data]' in this project)")


def _download_timeout(timeout: float | None) -> float:
    try:
        if timeout is None:
            return config.env_seconds("INPAINT_DOWNLOAD_TIMEOUT", DEFAULT_TIMEOUT_S)
        return config.seconds(timeout, "the download timeout")
    except ValueError as e:
        raise DownloadError(str(e)) from None


def _verify_archive(archive: Path, spec: DatasetSpec) -> str:
    """sha256 of ``archive`` after checking every member's CRC (``zipfile.testzip``) and then the
    registry's sha256 (when known). Raises :class:`DownloadError` for a damaged or incomplete archive
    and :class:`ChecksumMismatch` for a sound one of another sha256."""
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as e:
        raise DownloadError(f"{archive} is not a valid zip archive ({type(e).__name__}: {e})") from None
    except Exception as e:  # zlib.error and friends on a damaged member
        raise DownloadError(f"{archive} is damaged ({type(e).__name__}: {e})") from None
    if bad is not None:
        raise DownloadError(f"{archive} is damaged: member {bad!r} fails its CRC check")
    digest = sha256_file(archive)
    if spec.sha256 is not None and digest != spec.sha256.lower():
        raise ChecksumMismatch(f"{archive} has sha256 {digest}, but the registry expects {spec.sha256} for "
                               f"{spec.name} (the Kaggle dataset changed, or this is another file)")
    return digest


def _refused_record(archive: Path) -> Path:
    return archive.with_name(archive.name + _REFUSED_SUFFIX)


def _file_identity(archive: Path) -> dict[str, int]:
    st = archive.stat()
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _refuse(archive: Path, spec: DatasetSpec, error: ChecksumMismatch) -> DownloadError:
    """Record that ``archive`` was refused (so a re-run says so at once instead of hashing it again) and
    return the error to raise, which says how to get a fresh archive."""
    with atomic_open(_refused_record(archive), "w", encoding="utf-8") as f:
        json.dump({"reason": str(error), **_file_identity(archive)}, f, indent=1)
    return ChecksumMismatch(f"{error}. The archive is kept and refused, so a re-run does not download the same "
                            f"file again; to remove it and download a fresh one, run with --force "
                            f"(bash data_download.sh {spec.name} --force)")


def _refused_before(archive: Path) -> str | None:
    """The reason ``archive`` was refused by an earlier run, when it is still the same file."""
    try:
        record = json.loads(_refused_record(archive).read_text(encoding="utf-8"))
        if {k: record[k] for k in ("bytes", "mtime_ns")} == _file_identity(archive):
            return str(record["reason"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


_DRIVE = re.compile(r"^[A-Za-z]:")


def _member_parts(name: str) -> list[str]:
    return [p for p in re.split(r"[\\/]+", name) if p not in ("", ".")]


def _unsafe_reason(info: zipfile.ZipInfo, base: Path, reserved: tuple[str, ...] = ()) -> str | None:
    name = info.filename
    if not name or "\x00" in name:
        return "empty name or NUL character"
    if name.startswith(("/", "\\")):
        return "absolute path"
    if _DRIVE.match(name):
        return "drive letter"
    parts = _member_parts(name)
    if ".." in parts:
        return "'..' component"
    if parts and parts[0] in reserved:
        return f"the name {parts[0]!r} is the download's own (its archive folder or marker)"
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return "symbolic link"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "special file (device, fifo or socket)"
    target = base.joinpath(*parts).resolve() if parts else base
    if target != base and base not in target.parents:
        return "resolves outside the destination"
    return None


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike, reserved: tuple[str, ...] = ()) -> int:
    """Extract zip ``archive`` into folder ``dest`` and return the number of files written.

    Every member is checked first; members with an absolute path, a drive letter, a ``..``
    component, a symbolic link (or other special file) or a path resolving outside ``dest`` make
    the whole archive refused with :class:`DownloadError`, and nothing is written. Members are
    extracted into a temporary folder inside ``dest`` and moved into place only when all of them are
    out, so a failure leaves no half-extracted tree; top-level entries of the same name already in
    ``dest`` are replaced. ``reserved``: top-level names a member may not have (the download's own
    ``.download`` folder and ``.complete`` marker), refused like the unsafe ones.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    base = dest.resolve()
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        bad = [(i.filename, why) for i in infos if (why := _unsafe_reason(i, base, reserved)) is not None]
        if bad:
            listed = "; ".join(f"{name!r} ({why})" for name, why in bad[:5]) + ("; ..." if len(bad) > 5 else "")
            raise DownloadError(f"refusing to extract {archive}: {len(bad)} unsafe member(s): {listed}. "
                                "Nothing was extracted.")
        needed = sum(i.file_size for i in infos)
        free = shutil.disk_usage(base).free
        if needed > free:
            raise DownloadError(f"extracting {archive} needs {needed / 1e9:.1f} GB but only {free / 1e9:.1f} GB "
                                f"are free under {base}")
        tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=base))
        try:
            count = 0
            for info in infos:
                parts = _member_parts(info.filename)
                if not parts:
                    continue
                target = tmp.joinpath(*parts)
                if info.is_dir() or stat.S_ISDIR(info.external_attr >> 16):
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                count += 1
            _move_into(tmp, base)
        except Exception as e:
            raise DownloadError(f"extracting {archive} into {dest} failed ({type(e).__name__}: {e}); "
                                "nothing was left half-extracted") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return count


def _find_archive(download_dir: Path, spec: DatasetSpec) -> Path | None:
    expected = download_dir / f"{spec.kaggle_id.split('/')[-1]}.zip"
    if expected.is_file():
        return expected
    zips = sorted(download_dir.glob("*.zip"), key=lambda p: p.stat().st_mtime) if download_dir.is_dir() else []
    return zips[-1] if zips else None


def _write_marker(dest: Path, info: dict[str, Any]) -> None:
    with atomic_open(dest / MARKER, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
        f.write("\n")


def set_course_dataset(name: str, log: Callable[[str], None] = print) -> Path:
    """Record ``name`` as the course's dataset in ``data_root()/course_dataset.json`` (atomically), so that
    every notebook's :func:`~inpaint_utils.data.course_dataset` uses it with no edit. Returns the file."""
    spec = get_dataset_spec(name)
    path = config.data_root() / COURSE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump({"dataset": spec.name, "kaggle_id": spec.kaggle_id,
                   "set": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}, f, indent=1)
        f.write("\n")
    log(f"{spec.name}: the course's dataset from now on (recorded in {path}; $INPAINT_DATASET overrides it)")
    return path


def verify_download(name: str, dest: str | os.PathLike | None = None) -> bool:
    """Check a kagglehub download against the listing sha256 its first download stored in ``.complete``:
    ``True`` when every file (relative path and size) is as it was then, ``False`` otherwise. Raises
    :class:`DownloadError` when the folder is not a complete kagglehub download (no marker, or a kaggle-CLI
    one, whose archive sha256 was checked at download time instead)."""
    spec = get_dataset_spec(name)
    root = (Path(dest) if dest is not None else config.data_root() / spec.name).expanduser().resolve()
    try:
        done = json.loads((root / MARKER).read_text(encoding="utf-8"))
        expected = done["tree_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        raise DownloadError(f"{root}: no kagglehub download recorded ({MARKER} absent or without a listing "
                            "sha256); nothing to verify against") from None
    listing = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel == MARKER or rel.split("/")[0] == _DOWNLOAD_DIR or not path.is_file():
            continue
        listing.update(f"{rel}\t{path.stat().st_size}\n".encode())
    return listing.hexdigest() == expected


def _import_kagglehub() -> Any | None:
    """The ``kagglehub`` module, or ``None`` when it is not installed (Colab ships it; ``pip install kagglehub``)."""
    try:
        return importlib.import_module("kagglehub")
    except ImportError:
        return None


def _choose_backend(backend: str) -> tuple[str, Any | None]:
    if backend not in BACKENDS:
        raise DownloadError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    module = _import_kagglehub() if backend in ("auto", "kagglehub") else None
    if backend == "kagglehub" and module is None:
        raise DownloadError("backend='kagglehub' but kagglehub is not installed: pip install kagglehub "
                            "(or use backend='kaggle', the kaggle CLI)")
    return ("kagglehub", module) if module is not None else ("kaggle", None)


def _check_tree(root: Path, base: Path) -> tuple[int, str]:
    """What can be checked of a tree kagglehub extracted itself (it keeps no archive to verify): ``root``
    lies inside ``base``; no entry is a symbolic link or a special file; there is at least one image;
    every image file is non-empty and Pillow recognises its header; an image whose header declares more
    pixels than Pillow decodes safely (a decompression bomb) is named in one warning, not decoded. Returns (number of files, sha256 of
    the sorted listing of relative paths and sizes). Raises :class:`DownloadError`."""
    from PIL import Image, UnidentifiedImageError

    from .reading import IMAGE_SUFFIXES

    real = root.resolve()
    if real != base and base not in real.parents:
        raise DownloadError(f"kagglehub returned {root}, outside the destination {base}; nothing was moved")
    listing, bad, bombs, images = hashlib.sha256(), [], [], 0
    clash = sorted(p.name for p in root.iterdir() if p.name in (_DOWNLOAD_DIR, MARKER))
    if clash:
        raise DownloadError(f"refusing the tree kagglehub extracted in {root}: its top-level {', '.join(clash)} "
                            f"would replace the download's own; nothing was moved")
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            bad.append(f"{rel!r} (symbolic link)")
            continue
        if path.is_dir():
            continue
        if not path.is_file():
            bad.append(f"{rel!r} (special file)")
            continue
        size = path.stat().st_size
        listing.update(f"{rel}\t{size}\n".encode())
        if path.suffix.lower() in IMAGE_SUFFIXES:
            images += 1
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    with Image.open(path):
                        pass
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
                bombs.append(f"{rel!r} ({' '.join(str(e).split())})")
            except (UnidentifiedImageError, OSError) as e:
                bad.append(f"{rel!r} (not a readable image: {type(e).__name__})")
    if bad:
        listed = "; ".join(bad[:5]) + ("; ..." if len(bad) > 5 else "")
        raise DownloadError(f"refusing the tree kagglehub extracted in {root}: {len(bad)} bad entries: {listed}. "
                            "Nothing was moved into place; run again with force=True to download it afresh.")
    if bombs:
        listed = "; ".join(bombs[:5]) + ("; ..." if len(bombs) > 5 else "")
        warnings.warn(f"kagglehub's tree in {root}: {len(bombs)} image(s) declare more pixels than Pillow decodes "
                      f"safely (a decompression bomb); moved with the rest but not decoded here (reading one fails "
                      f"or warns, naming it): {listed}",
                      stacklevel=3)
    if images == 0:
        raise DownloadError(f"kagglehub extracted no image (.jpg, .jpeg, .png) into {root}; "
                            "run again with force=True to download it afresh")
    return sum(1 for p in root.rglob("*") if p.is_file()), listing.hexdigest()


def _move_into(root: Path, dest: Path) -> None:
    """Move the entries of ``root`` into ``dest`` (same file system: renames), replacing same-named ones."""
    for entry in sorted(root.iterdir()):
        final = dest / entry.name
        if final.is_symlink() or final.is_file():
            final.unlink()
        elif final.is_dir():
            shutil.rmtree(final)
        os.replace(entry, final)


def _download_with_kagglehub(kagglehub: Any, spec: DatasetSpec, dest: Path, log: Callable[[str], None]) -> Path:
    """kagglehub's ``dataset_download`` with its cache (``$KAGGLEHUB_CACHE``) pointed into
    ``dest/.download``, so that nothing is written outside ``dest``; a tree already in that cache (a run
    stopped before the move) is not fetched again (kagglehub's own check). Then :func:`_check_tree`, the
    move into ``dest``, the marker last, and the emptied cache removed."""
    download_dir = dest / _DOWNLOAD_DIR
    download_dir.mkdir(parents=True, exist_ok=True)
    log(f"{spec.name}: downloading {spec.url} with kagglehub into {download_dir} (its cache, KAGGLEHUB_CACHE)")
    root = _kagglehub_fetch(kagglehub, spec, download_dir)
    if not any(root.iterdir()):
        # kagglehub's cache says complete but is empty: an earlier run moved the tree out and stopped
        # before writing the marker. Fetch it again rather than trust a half-known destination.
        log(f"{spec.name}: kagglehub's cache in {download_dir} is empty (an earlier run stopped before the "
            "marker); downloading again")
        root = _kagglehub_fetch(kagglehub, spec, download_dir, force_download=True)
    log(f"{spec.name}: checking the tree kagglehub extracted (inside {dest}, no links or special files, "
        "every image readable)")
    count, digest = _check_tree(root, dest)
    _move_into(root, dest)
    _write_marker(dest, {
        "dataset": spec.name,
        "kaggle_id": spec.kaggle_id,
        "backend": "kagglehub",
        "tree_sha256": digest,
        "files": count,
        "completed": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    })
    shutil.rmtree(download_dir, ignore_errors=True)       # kagglehub's cache, empty now that the tree moved
    log(f"{spec.name}: done, {count} files in {dest} (listing sha256 {digest[:16]}... recorded in {dest / MARKER})")
    return dest


def _kagglehub_fetch(kagglehub: Any, spec: DatasetSpec, download_dir: Path, **kwargs: Any) -> Path:
    """``kagglehub.dataset_download(kaggle_id)`` with ``$KAGGLEHUB_CACHE`` set to ``download_dir`` for the
    call (restored after); its failures as one :class:`DownloadError` saying what to check."""
    saved = os.environ.get("KAGGLEHUB_CACHE")
    os.environ["KAGGLEHUB_CACHE"] = str(download_dir)
    try:
        got = kagglehub.dataset_download(spec.kaggle_id, **kwargs)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # kagglehub raises requests / its own HTTP errors; say what to do in one line
        raise DownloadError(f"kagglehub could not download {spec.kaggle_id} ({type(e).__name__}: {e}). Check your "
                            f"network and that {spec.url} opens when you are signed in; a dataset that needs a "
                            "login needs kagglehub.login() or KAGGLE_USERNAME / KAGGLE_KEY.") from None
    finally:
        if saved is None:
            os.environ.pop("KAGGLEHUB_CACHE", None)
        else:
            os.environ["KAGGLEHUB_CACHE"] = saved
    if got is None or not str(got):
        raise DownloadError(f"kagglehub returned {got!r} instead of the folder of {spec.kaggle_id}; nothing was "
                            "moved (update kagglehub, or use backend='kaggle')")
    root = Path(got)
    if not root.is_dir():
        raise DownloadError(f"kagglehub returned {got!r}, which is not a folder")
    real, cache = root.resolve(), download_dir.resolve()
    if cache not in real.parents:     # the destination itself, or its cache folder: moving it would delete files
        raise DownloadError(f"kagglehub returned {root}, which is not a folder inside its cache {download_dir}; "
                            "nothing was moved (update kagglehub, or use backend='kaggle')")
    return root


def download(name: str, dest: str | os.PathLike | None = None, *, force: bool = False, keep_archive: bool = False,
             timeout: float | None = None, backend: str = "auto", log: Callable[[str], None] = print) -> Path:
    """Download dataset ``name`` (:func:`_download`, whose docstring has every step); when it lands in the
    default folder (``dest`` not given), also make it the course's dataset (:func:`set_course_dataset`),
    so that the notebooks after this one use it with no edit. Both backends show their own progress
    bars (kagglehub's and the kaggle CLI's)."""
    got = _download(name, dest, force=force, keep_archive=keep_archive, timeout=timeout, backend=backend, log=log)
    if dest is None:
        set_course_dataset(name, log)
    return got


def _download(name: str, dest: str | os.PathLike | None = None, *, force: bool = False, keep_archive: bool = False,
              timeout: float | None = None, backend: str = "auto", log: Callable[[str], None] = print) -> Path:
    """Download dataset ``name`` into ``dest`` (default ``data_root()/name``) with ``kagglehub`` when it
    is installed (``backend="auto"``, as on Colab, or ``"kagglehub"``), else with the kaggle CLI
    (``backend="kaggle"``, what ``data_download.sh`` uses).

    kagglehub extracts the dataset itself, so there is no archive to verify: its cache is pointed into
    ``dest/.download`` (nothing is written outside ``dest``), then the tree is checked as far as it can
    be (inside ``dest``, no symbolic links or special files, at least one image, every image's header
    readable: :func:`_check_tree`), moved into ``dest``, and ``dest/.complete`` written last with the
    sha256 of its file listing. ``timeout`` and ``keep_archive`` do not apply (kagglehub has no timeout
    and keeps no archive).

    Kaggle CLI steps, each reported through ``log``: (1) ``dest/.complete`` present -> nothing to do
    (``force`` redoes everything, for both backends); (2) an archive already in ``dest/.download`` that
    checks out -> no download;
    (3) else check the Kaggle credentials and run ``kaggle datasets download -d <id> -p
    dest/.download`` with a timeout (``timeout`` or ``$INPAINT_DOWNLOAD_TIMEOUT``, default 3600 s);
    (4) verify the archive (always every member's CRC, then the sha256 when the registry has one): a
    damaged or incomplete one is removed (run again to download it afresh); a sound one of another
    sha256 is kept and refused (:class:`ChecksumMismatch`; the refusal is recorded beside it, so a
    re-run fails at once instead of downloading or hashing the same file again) until ``force``; (5)
    :func:`safe_extract` into ``dest``; (6) write ``dest/.complete`` (JSON with the archive's sha256)
    last; the archive is then deleted unless ``keep_archive``. Returns ``dest``; failures raise
    :class:`DownloadError` (an unknown ``name`` raises ``KeyError``).
    """
    spec = get_dataset_spec(name)
    dest = (Path(dest) if dest is not None else config.data_root() / spec.name).expanduser().resolve()
    marker = dest / MARKER
    download_dir = dest / _DOWNLOAD_DIR
    if marker.is_file() and not force:
        try:
            done = json.loads(marker.read_text(encoding="utf-8"))
            digest = done.get("sha256") or done.get("tree_sha256", "?")
        except (OSError, json.JSONDecodeError, AttributeError):
            digest = "?"
        log(f"{spec.name}: already complete in {dest} ({MARKER} present, sha256 {str(digest)[:16]}...); "
            "skipping download and extraction (use --force to redo)")
        return dest
    if force:
        marker.unlink(missing_ok=True)
        shutil.rmtree(download_dir, ignore_errors=True)
    chosen, kagglehub = _choose_backend(backend)
    if chosen == "kagglehub":
        return _download_with_kagglehub(kagglehub, spec, dest, log)

    digest = None
    archive = _find_archive(download_dir, spec)
    if archive is not None:
        refused = _refused_before(archive)
        if refused is not None:
            raise ChecksumMismatch(f"{archive} was refused by an earlier run ({refused}); it is not checked or "
                                   f"downloaded again: run with --force (bash data_download.sh {spec.name} "
                                   "--force) to remove it and download a fresh one")
        log(f"{spec.name}: found {archive}; checking it")
        try:
            digest = _verify_archive(archive, spec)
            log(f"{spec.name}: the archive checks out (sha256 {digest[:16]}...); skipping the download")
        except ChecksumMismatch as e:
            raise _refuse(archive, spec, e) from None
        except DownloadError as e:
            log(f"{spec.name}: the archive already there is not usable ({e}); downloading it again")
            archive.unlink(missing_ok=True)
            archive = None

    if digest is None:
        where = kaggle_credentials()
        cli = _find_kaggle_cli()
        limit = _download_timeout(timeout)
        download_dir.mkdir(parents=True, exist_ok=True)
        log(f"{spec.name}: downloading {spec.url} with kaggle credentials from {where} "
            f"(timeout {limit:g} s; INPAINT_DOWNLOAD_TIMEOUT changes it)")
        cmd = [cli, "datasets", "download", "-d", spec.kaggle_id, "-p", str(download_dir)]
        try:
            proc = subprocess.run(cmd, timeout=limit, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DownloadError(f"kaggle did not finish downloading {spec.kaggle_id} within {limit:g} s; run again "
                                "to retry, or raise INPAINT_DOWNLOAD_TIMEOUT") from None
        except OSError as e:
            raise DownloadError(f"cannot run the kaggle CLI {cli}: {e.strerror or e}") from None
        if proc.returncode != 0:
            raise DownloadError(f"kaggle exited with status {proc.returncode} while downloading {spec.kaggle_id} "
                                f"(see its message above). Check your network, your token, and that the dataset "
                                f"page {spec.url} opens when you are signed in.")
        archive = _find_archive(download_dir, spec)
        if archive is None:
            raise DownloadError(f"kaggle reported success but left no .zip archive in {download_dir}")
        log(f"{spec.name}: checking {archive.name} (every member's CRC"
            f"{' and the registry sha256' if spec.sha256 else ''})")
        try:
            digest = _verify_archive(archive, spec)
        except ChecksumMismatch as e:
            raise _refuse(archive, spec, e) from None
        except DownloadError as e:
            archive.unlink(missing_ok=True)
            raise DownloadError(f"{e}. The archive was removed; run again to download it afresh.") from None

    _refused_record(archive).unlink(missing_ok=True)        # a stale record of an earlier file of that name
    log(f"{spec.name}: extracting into {dest}")
    count = safe_extract(archive, dest, reserved=(_DOWNLOAD_DIR, MARKER))
    _write_marker(dest, {
        "dataset": spec.name,
        "kaggle_id": spec.kaggle_id,
        "archive": archive.name,
        "sha256": digest,
        "files": count,
        "completed": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    })
    if not keep_archive:
        archive.unlink(missing_ok=True)
        try:
            download_dir.rmdir()
        except OSError:
            pass
    log(f"{spec.name}: done, {count} files in {dest} (sha256 {digest[:16]}... recorded in {marker})")
    return dest
