"""Downloading the MNIST-family IDX files: pooch with a SHA-256 registry, mirrors tried in order.

The four ``.gz`` files of a data set are fetched into its cache folder (:func:`cache_dir`) from
the first mirror that has them; each is checked against ``REGISTRY`` before it is moved into
place, so a truncated file, an HTML error page served as "gzip" or a tampered file never lands
(pooch writes to a temporary file and deletes it on a mismatch), and the files already in the
cache stay as they were. Then :mod:`mlwork.data.idx` validates headers, sizes and labels.

Mirrors (``MIRRORS``) can be replaced by ``MLWORK_DATA_MIRRORS``: comma-separated base URLs,
tried in order; ``{dataset}`` in a URL is replaced by the data set's name (``mnist``,
``fashion_mnist``), so one server can hold both. Before downloading, every mirror is probed
concurrently; those that give no HTTP answer within ``PROBE_SECONDS`` (no network, a resolver
that hangs, a server that never answers) are skipped, so an offline machine gives up in about
three seconds.

The hashes are the SHA-256 of the files as the mirrors serve them (TFDS's
``url_checksums/mnist.txt`` and ``fashion_mnist.txt``; the same values are published with the
Fashion-MNIST repository). Re-compressed copies, such as Debian's ``dataset-fashion-mnist`` or a
file gunzipped and gzipped again, hold the same images in different ``.gz`` bytes and do not
match: read those with ``--data-dir``.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

#: SHA-256 of each file as served by the mirrors.
REGISTRY: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}

#: Standard public mirrors, in the order they are tried.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision's
        "https://storage.googleapis.com/cvdf-datasets/mnist/",  # TensorFlow's and TFDS's
    ),
    "fashion_mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",  # the authors' own
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}

MIRRORS_ENV = "MLWORK_DATA_MIRRORS"
#: How long the mirrors get to answer at all (all probed at once).
PROBE_SECONDS = 3.0
#: requests' (connect, read) timeouts for a download, in seconds.
TIMEOUT = (3.0, 15.0)
#: pooch's retries after a failed attempt at one file on one mirror (it waits 1 s first).
RETRIES = 1


def data_root() -> Path:
    """Where downloads are kept: ``$MLWORK_DATA_DIR`` if set, else ``~/.cache/mlwork/data``
    (``~/.cache`` being ``$MLWORK_CACHE_DIR`` or ``$XDG_CACHE_HOME`` when either is set)."""
    if os.environ.get("MLWORK_DATA_DIR"):
        return Path(os.environ["MLWORK_DATA_DIR"])
    base = os.environ.get("MLWORK_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlwork" / "data"


def cache_dir(name: str) -> Path:
    """The cache folder of data set ``name``, where downloads go and the ``cache`` source looks.

    It is ``$MLWORK_DATA_DIR/<name>`` if that variable is set, else
    ``<cache>/mlwork/data/<name>``, ``<cache>`` being ``$MLWORK_CACHE_DIR``, ``$XDG_CACHE_HOME`` or
    ``~/.cache``, the first that is set. Nothing is created.

    Args:
      name: the data set's name, ``"mnist"`` or ``"fashion_mnist"``.

    Returns:
      The folder's path (it may not exist).

    Example:
      >>> from mlwork.data import cache_dir
      >>> cache_dir("mnist").name
      'mnist'
    """
    return data_root() / name


def mirrors(name: str) -> tuple[str, ...]:
    """The base URLs to try for ``name``: ``$MLWORK_DATA_MIRRORS`` if set, else ``MIRRORS``.

    Raises:
      ValueError: if the variable holds something that is not an http(s) URL.
    """
    raw = os.environ.get(MIRRORS_ENV, "").strip()
    if not raw:
        return MIRRORS[name]
    urls = tuple(u.strip() for u in raw.split(",") if u.strip())
    for url in urls:
        if not re.match(r"https?://[^/]", url):
            raise ValueError(f"{MIRRORS_ENV} must be comma-separated http(s) base URLs; got {url!r}")
    return tuple(u.replace("{dataset}", name) for u in urls)


def sha256(path: str | Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified(name: str, folder: Path) -> list[str]:
    """The files of ``name`` in ``folder`` whose SHA-256 matches the registry."""
    return [f for f in FILES if (folder / f).is_file() and sha256(folder / f) == REGISTRY[name][f]]


def answering(urls: Sequence[str], seconds: float) -> dict[str, str | None]:
    """Probe every URL at once with a HEAD request; each maps to ``None`` if some HTTP answer (an
    error status included) came within ``seconds``, else to the reason it did not. The whole
    call takes at most ``seconds``: a hanging DNS lookup or silent server cannot hold it longer."""
    import urllib.error
    import urllib.request

    results: dict[str, str | None] = {}

    def probe(url):
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=seconds).close()
            results[url] = None
        except urllib.error.HTTPError:
            results[url] = None  # the server answered, if only with an error status
        except Exception as e:  # noqa: BLE001 - no network, refused, bad URL: all mean "no answer"
            reason = getattr(e, "reason", e)
            results[url] = f"no answer ({type(reason).__name__}: {str(reason).splitlines()[0] if str(reason) else ''})"

    threads = [threading.Thread(target=probe, args=(u,), daemon=True) for u in urls]
    for t in threads:
        t.start()
    deadline = _now() + seconds
    for t in threads:
        t.join(max(0.0, deadline - _now()))
    return {u: results.get(u, f"no answer within {seconds:g} s") for u in urls}


def _now() -> float:
    import time

    return time.monotonic()


def _problem(error: BaseException) -> str:
    """One line saying what went wrong with one download."""
    import requests

    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"HTTP {error.response.status_code} {error.response.reason or ''}".strip()
    if isinstance(error, requests.Timeout):
        return f"no answer within the {TIMEOUT[1]:g} s read timeout" if isinstance(error, requests.ReadTimeout) \
            else f"could not connect within {TIMEOUT[0]:g} s"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "connection closed before the end of the file (truncated)"
    if isinstance(error, requests.ConnectionError):
        return f"cannot connect ({str(error).splitlines()[0][:160]})"
    hashes = re.search(r"expected (?:\w+:)?(\w+) but got (\w+)", str(error))
    if isinstance(error, ValueError) and hashes:
        return f"SHA-256 mismatch (got {hashes.group(2)[:12]}…, expected {hashes.group(1)[:12]}…), file discarded"
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


def download(name: str, folder: Path | None = None, log: Callable[[str], None] | None = None,
             progress: bool | None = None) -> tuple[Path, list[str]]:
    """Fetch the four files of ``name`` that ``folder`` does not already hold verified.

    Each mirror that answered the probe is tried in order for the files still missing; a failed
    file (HTTP error, timeout, truncated, SHA-256 mismatch) is reported in one line naming its
    URL, leaves nothing behind, and moves on to the next mirror.

    Args:
      name: ``"mnist"`` or ``"fashion_mnist"``.
      folder: the cache folder; default :func:`cache_dir` ``(name)``.
      log: called with each one-line message; default: print to stderr.
      progress: show tqdm progress bars; default: when stderr is a terminal.

    Returns:
      ``(folder, used)``: the folder now holding all four verified files, and the mirrors that
      supplied files in this call (empty if all were there already).

    Raises:
      DataError: naming what each mirror did wrong, when some file could not be had.
    """
    from mlwork.data.idx import DataError

    folder = Path(folder) if folder is not None else cache_dir(name)
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    missing = [f for f in FILES if f not in verified(name, folder)]
    if not missing:
        return folder, []
    try:
        bases = mirrors(name)
    except ValueError as e:
        raise DataError(str(e)) from None
    probes = answering([b.rstrip("/") + "/" + missing[0] for b in bases], PROBE_SECONDS)
    live = [base for base, why in zip(bases, probes.values(), strict=True) if why is None]
    if not live:
        raise DataError(f"no mirror answered within {PROBE_SECONDS:g} s: "
                        + "; ".join(f"{base} {why}" for base, why in zip(bases, probes.values(), strict=True)))
    for base, why in zip(bases, probes.values(), strict=True):
        if why is not None:
            log(f"download: {base} skipped: {why}")

    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")  # our own one-line messages say what happens
    used, failures = [], []
    try:
        for base in live:
            if not missing:
                break
            fetcher = pooch.create(path=folder, base_url=base.rstrip("/") + "/", registry={
                f: f"sha256:{REGISTRY[name][f]}" for f in missing}, retry_if_failed=RETRIES)
            bar = sys.stderr.isatty() if progress is None else progress
            downloader = pooch.HTTPDownloader(progressbar=bar, timeout=TIMEOUT)
            for fname in list(missing):
                url = fetcher.get_url(fname)
                try:
                    fetcher.fetch(fname, downloader=downloader)
                except Exception as e:  # noqa: BLE001 - each failure is reported and the next mirror tried
                    failures.append(f"{url}: {_problem(e)}")
                    log(f"download: {failures[-1]}")
                    if isinstance(e, ValueError):
                        continue  # a wrong file here; this mirror's other files may be right
                    break  # a mirror that errs or stalls is not waited on for the other files
                missing.remove(fname)
                if base not in used:
                    used.append(base)
                log(f"download: {url} -> {folder / fname} (SHA-256 verified)")
    finally:
        logger.setLevel(level)
    if missing:
        raise DataError(f"could not download {', '.join(missing)} for {name}: {'; '.join(failures)}")
    return folder, used
