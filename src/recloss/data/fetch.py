"""Fetching named data sets once: MovieLens-100K from GroupLens, else from the copy inside
RecBole's wheel on PyPI; the others (`recloss.data.wheelsets`) from the wheels that ship them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from recloss.data.tempfolders import OwnedFolder
from recloss.errors import DataError

log = logging.getLogger("recloss.data")

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
GROUPLENS_MD5 = "0e33842e24a9c977be4e0107933c0723"  # published for ml-100k.zip
GROUPLENS_FILES = ("u.data", "u.user", "u.item")
ML100K_RATINGS = 100_000
RECBOLE_REQUIREMENT = "recbole==1.2.1"
RECBOLE_FOLDER = "recbole/dataset_example/ml-100k"
RECBOLE_SHA256 = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
}
DONE_FILE = "SOURCE.json"  # written last: its presence marks a complete download


class Source(Protocol):
    """A place to get ml-100k from."""

    name: str

    @property
    def where(self) -> str:
        """Where it fetches from, for the message a fetch prints."""

    def fetch(self, dest: Path, timeout: float) -> None:
        """Put the data set's files into the empty folder `dest`, verified."""


def _open_url(location: str, timeout: float):
    url = location if "://" in location else Path(location).resolve().as_uri()
    return urllib.request.urlopen(url, timeout=timeout)


@dataclass(frozen=True)
class GroupLensZip:
    """`ml-100k.zip` in GroupLens's layout, from a URL or a local path."""

    location: str = GROUPLENS_URL
    md5: str | None = GROUPLENS_MD5
    ratings: int = ML100K_RATINGS
    name: str = "GroupLens"

    @property
    def where(self) -> str:
        return self.location

    def fetch(self, dest: Path, timeout: float) -> None:
        archive = dest / "ml-100k.zip"
        with _open_url(self.location, timeout) as response, open(archive, "wb") as out:
            shutil.copyfileobj(response, out)
        if self.md5 is not None and _digest(archive.read_bytes(), "md5") != self.md5:
            raise DataError(f"{self.location}: MD5 checksum does not match ml-100k.zip")
        with zipfile.ZipFile(archive) as zf:
            for name in GROUPLENS_FILES:
                (dest / name).write_bytes(zf.read(f"ml-100k/{name}"))
        archive.unlink()
        lines = (dest / "u.data").read_bytes().splitlines()
        if len(lines) != self.ratings or any(len(line.split(b"\t")) != 4 for line in lines[:10]):
            raise DataError(f"{self.location}: u.data is not {self.ratings} tab-separated ratings")


@dataclass(frozen=True)
class WheelFiles:
    """Data files inside a wheel on PyPI (`pip download`ed) or a local wheel, verified."""

    requirement: str
    folder: str  # inside the wheel
    sha256: Mapping[str, str]  # path under `folder` -> its checksum; extracted to that path
    name: str
    wheel: Path | None = None

    @property
    def where(self) -> str:
        return str(self.wheel) if self.wheel else f"PyPI, pip download {self.requirement}"

    def fetch(self, dest: Path, timeout: float) -> None:
        wheel = self.wheel or _pip_download(self.requirement, dest)
        with zipfile.ZipFile(wheel) as zf:
            for name, expected in self.sha256.items():
                data = zf.read(f"{self.folder}/{name}")
                if _digest(data, "sha256") != expected:
                    raise DataError(f"{wheel}: SHA-256 checksum of {name} does not match")
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                (dest / name).write_bytes(data)
        if self.wheel is None:
            Path(wheel).unlink()


@dataclass(frozen=True)
class RecBoleWheel(WheelFiles):
    """RecBole's atomic copy of ml-100k inside its wheel: `pip download`ed, or a local wheel."""

    requirement: str = RECBOLE_REQUIREMENT
    folder: str = RECBOLE_FOLDER
    sha256: Mapping[str, str] = field(default_factory=lambda: dict(RECBOLE_SHA256))
    name: str = "RecBole wheel"


def _pip_download(requirement: str, dest: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-cache-dir",
        "--only-binary=:all:",
        "--quiet",
        requirement,
        "-d",
        str(dest),
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    except subprocess.CalledProcessError as err:
        last = (err.stderr or err.stdout or "").strip().splitlines()[-1:] or ["failed"]
        raise DataError(f"pip download {requirement}: {last[0]}") from None
    except subprocess.TimeoutExpired:
        raise DataError(f"pip download {requirement}: timed out") from None
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise DataError(f"pip download {requirement}: no wheel downloaded")
    return wheels[0]


def _digest(data: bytes, algorithm: str) -> str:
    return hashlib.new(algorithm, data).hexdigest()


DEFAULT_SOURCES: tuple[Source, ...] = (GroupLensZip(), RecBoleWheel())


def notice(message: str) -> None:
    """Tell the user of a slow step: logged at INFO, or on stderr where logging is not set up.

    The data layer logs at INFO ("prepared N rows"), which Python shows nowhere until the
    application configures logging, and the command line does not. A download is slow and
    writes to the user's home, so it is said on stderr then.
    """
    if log.hasHandlers():
        log.info(message)
    else:
        print(f"recloss: {message}", file=sys.stderr, flush=True)


def fetch_ml100k(
    home: Path, sources: Sequence[Source] = DEFAULT_SOURCES, timeout: float = 5.0
) -> Path:
    """Folder with ml-100k under `home/datasets`, fetched from the first source that works."""
    return fetch_folder(
        home / "datasets" / "ml-100k",
        "movielens-100k",
        "MovieLens-100K",
        sources,
        timeout,
        "download ml-100k.zip yourself and pass its folder as the data path",
    )


def fetch_folder(
    target: Path, dataset: str, title: str, sources: Sequence[Source], timeout: float, hint: str
) -> Path:
    """`target`, once complete: fetched into it from the first of `sources` that works."""
    if (target / DONE_FILE).is_file():
        return target
    failures = []
    for source in sources:
        where = getattr(source, "where", source.name)
        if not failures:
            notice(f"fetching {title} from {source.name} ({where}) into {target}")
        else:
            notice(f"{failures[-1]}; fetching from {source.name} ({where}) instead")
        # A folder of our own (mkdir: the umask's mode, not mkdtemp's 0700); a killed fetch's
        # folder is removed by the next fetch (see `tempfolders`).
        with OwnedFolder(target) as tmp:
            try:
                source.fetch(tmp, timeout)
                (tmp / DONE_FILE).write_text(json.dumps({"source": source.name}))
                if (target / DONE_FILE).is_file():
                    return target  # a concurrent fetch finished first
                if target.exists():
                    shutil.rmtree(target)
                os.replace(tmp, target)
                return target
            except (OSError, DataError, zipfile.BadZipFile, KeyError) as err:
                failures.append(f"{source.name}: {err}")
                log.info("could not fetch %s from %s: %s", dataset, source.name, err)
    raise DataError(
        f"{dataset}: could not fetch the data set (" + "; ".join(failures) + f"); {hint}"
    )
