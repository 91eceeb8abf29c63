"""Fetching a dataset archive: temp file, MD5 check, atomic rename."""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from nasfilter.data.common import one_line
from nasfilter.errors import DataError

CHUNK = 1 << 20
TIMEOUT_S = 60.0


def md5_of(path: str | Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, dest: str | Path, md5: str | None, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` and check its MD5; return ``dest``.

    The bytes go to a temporary file next to ``dest`` which is renamed into place only
    when complete and matching ``md5``; on any failure it is deleted and a DataError is
    raised, so ``dest`` never holds a partial or wrong file. ``file://`` URLs work too.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise DataError(
            f"Cannot write into {dest.parent}: {one_line(exc)}.", "Choose another --data-dir."
        ) from None
    tmp = Path(tmp_name)
    digest = hashlib.md5(usedforsecurity=False)
    try:
        try:
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(url, timeout=TIMEOUT_S) as response,
            ):
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                size = _copy(response, out, digest, total, dest.name, progress)
            if total is not None and size != total:
                raise OSError(f"received {size:,} of {total:,} bytes")
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DataError(
                f"Download of {url} failed: {one_line(reason)}.",
                f"Check the network, or download the file yourself into {dest.parent}/.",
            ) from None
        got = digest.hexdigest()
        if md5 is not None and got != md5.lower():
            raise DataError(
                f"Download of {url} has MD5 {got}, expected {md5.lower()}; the file was deleted.",
                "Try again; if it persists, the download is being altered on the way.",
            )
        try:
            os.replace(tmp, dest)
        except OSError as exc:
            raise DataError(
                f"Cannot move the download into {dest}: {one_line(exc)}.",
                "Choose another --data-dir.",
            ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _copy(
    response: Any, out: IO[bytes], digest: Any, total: int | None, label: str, progress: bool
) -> int:
    """Copy the response into ``out`` and ``digest``; return the number of bytes."""
    size = 0
    if progress and total:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=Console(file=sys.stderr), transient=True) as bar:
            task = bar.add_task(f"downloading {label}", total=total)
            for chunk in iter(lambda: response.read(CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                bar.advance(task, len(chunk))
    else:
        for chunk in iter(lambda: response.read(CHUNK), b""):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    return size
