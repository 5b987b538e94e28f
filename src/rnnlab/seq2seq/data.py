"""Seq2seq data: the book's text files, the 90/10 split, a character codec, padded batches.

File format (the book's): one pair per line, ``question_answer``; the first ``_`` ends
the question and starts the answer (the ``_`` is the decoder's first input). Lines keep
their padding spaces; only the newline is removed, and a UTF-8 byte-order mark at the start
of the file is dropped (as text corpora and CSV files drop it). A question or answer longer
than ``max_length`` characters (:data:`MAX_SEQUENCE_LENGTH` by default) is refused, naming
the line: the memory of a batch grows with its longest sequence::

    16+75  _91
    september 27, 1994           _1994-09-27

The canonical files are ``addition.txt`` and ``date.txt`` (50,000 lines each), looked
for by :func:`find_data_file` in ``data_dir``, in every folder of ``$RNNLAB_DATA`` and
in ``../shared/data`` next to the repository, directly or in a ``seq2seq/`` subfolder.

:class:`Codec` turns strings into id arrays. When every question (answer) has the same
width, as in the book, sequences are used as they are; otherwise questions are padded
with ``<pad>`` (and their lengths kept for the encoder) and answers end with ``<eos>``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.backend import make_rng
from rnnlab.data import DataError, Vocab
from rnnlab.data.textio import read_limited
from rnnlab.seq2seq.tasks import START, Pairs

PAD, EOS = "<pad>", "<eos>"
SPECIALS = (PAD, EOS)
#: Targets at padded positions (ignored by the loss).
IGNORE_INDEX = -100
#: The book's split: seeded shuffle, then the last tenth is the test set.
DEFAULT_SPLIT_SEED = 1984
_MAX_FILE_BYTES = 1 << 30
#: Longest question or answer :func:`read_pairs` accepts unless told otherwise
#: (characters): the book's questions have 7 and 29, and a batch's memory grows with its
#: longest row (a question of 20,000 characters took about 1 GB).
MAX_SEQUENCE_LENGTH = 1000


def read_pairs(path: str | os.PathLike[str], limit: int | None = None, *,
               max_length: int = MAX_SEQUENCE_LENGTH) -> Pairs:
    """Load a file in the book's ``question_answer`` format (UTF-8, one pair a line).

    The file must be a regular file (a FIFO or a device is refused without blocking) of
    at most 1 GiB; a leading byte-order mark is dropped.

    Raises :class:`~rnnlab.data.DataError` naming the file and line for a line without
    ``_``, an empty question or answer, a question or answer longer than ``max_length``
    characters, a non-UTF-8 byte, or an empty file.
    """
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"read_pairs: max_length expected an int >= 1, got {max_length!r}")
    path = Path(path)
    where = f"seq2seq data {str(path)!r}"
    try:
        raw = read_limited(path, _MAX_FILE_BYTES)
    except DataError as exc:
        raise DataError(f"seq2seq data {exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        at_line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{where}: not UTF-8 (bad byte at offset {exc.start}, line "
                        f"{at_line})") from None
    del raw
    text = text.removeprefix("\ufeff")
    questions, answers = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        cut = line.find(START)
        if cut < 0:
            raise DataError(f"{where}: line {number} has no {START!r} between question and "
                            f"answer: {line[:60]!r}")
        question, answer = line[:cut], line[cut + 1:]
        if not question or not answer:
            raise DataError(f"{where}: line {number} has an empty "
                            f"{'question' if not question else 'answer'}: {line[:60]!r}")
        for part, text_of in (("a question", question), ("an answer", answer)):
            if len(text_of) > max_length:
                raise DataError(f"{where}: line {number} has {part} of "
                                f"{len(text_of):,} characters, more than the "
                                f"{max_length:,} allowed (max_length); split it or raise "
                                f"the limit")
        questions.append(question)
        answers.append(answer)
        if limit is not None and len(questions) >= limit:
            break
    if not questions:
        raise DataError(f"{where}: no pairs found (expected lines 'question_answer')")
    return Pairs(questions, answers)


def data_dirs(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Folders searched for the canonical files, in order."""
    dirs = [Path(data_dir).expanduser()] if data_dir is not None else []
    dirs += [Path(p).expanduser() for p in os.environ.get("RNNLAB_DATA", "").split(os.pathsep)
             if p]
    repo = Path(__file__).resolve().parents[3]
    dirs.append(repo.parent / "shared" / "data")
    return dirs


def find_data_file(task: str, data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The book's ``<task>.txt`` (``addition`` or ``date``), or ``None`` when not found."""
    for folder in data_dirs(data_dir):
        for candidate in (folder / f"{task}.txt", folder / "seq2seq" / f"{task}.txt"):
            if candidate.is_file():
                return candidate
    return None


def split_indices(n: int, seed: Any = DEFAULT_SPLIT_SEED, test_fraction: float = 0.1
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The book's protocol with a numpy Generator: shuffle ``range(n)``, hold out the end.

    The test part has ``int(n * test_fraction)`` indices (5,000 of 50,000) and the train
    part the rest, both in shuffled order.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise ValueError(f"split_indices: n expected an int >= 2, got {n!r}")
    if not (isinstance(test_fraction, float | int) and 0 < test_fraction < 1):
        raise ValueError(f"split_indices: test_fraction expected a float in (0, 1), got "
                         f"{test_fraction!r}")
    if not isinstance(seed, np.random.Generator) and (
            isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0):
        raise ValueError(f"split_indices: seed (the split seed) expected an int >= 0, got "
                         f"{seed!r}")
    rng = make_rng(seed if isinstance(seed, np.random.Generator) else int(seed))
    order = rng.permutation(int(n))
    n_test = max(1, int(n * test_fraction))
    return order[: n - n_test], order[n - n_test:]


def split_pairs(pairs: Pairs, seed: Any = DEFAULT_SPLIT_SEED, test_fraction: float = 0.1
                ) -> tuple[Pairs, Pairs]:
    """``(train, test)`` by :func:`split_indices`; fewer than two pairs is a
    :class:`~rnnlab.data.DataError` (one pair cannot be both trained and tested on)."""
    if len(pairs) < 2:
        raise DataError(f"the data holds {len(pairs)} pair{'s' if len(pairs) != 1 else ''}; "
                        f"a train/test split needs at least 2 (one to train on, one to "
                        f"test), and a model learns from many more")
    train, test = split_indices(len(pairs), seed, test_fraction)
    return pairs.subset(train.tolist()), pairs.subset(test.tolist())


@dataclass
class Batch:
    """One padded batch: encoder ids, their lengths, decoder inputs and targets.

    ``src`` ``(N, S)`` int32; ``src_lengths`` ``(N,)`` int or None when all are ``S``;
    ``dec_in`` ``(N, U)`` starts with the start id; ``targets`` ``(N, U)`` is ``dec_in``
    shifted left, with ``IGNORE_INDEX`` after the end.
    """

    src: np.ndarray
    src_lengths: np.ndarray | None
    dec_in: np.ndarray
    targets: np.ndarray

    def __len__(self) -> int:
        return int(self.src.shape[0])


class Codec:
    """Characters <-> ids for a seq2seq task, with the padding policy of its data.

    Parameters
    ----------
    vocab : Vocab
        Char-level, with specials ``<pad>`` and ``<eos>`` and holding ``"_"``.
    source_width : int or None
        Fixed question width (questions are padded with spaces to it, as in the book),
        or None for variable-length questions padded with ``<pad>``.
    target_width : int or None
        Fixed answer width (decoding runs exactly that many steps), or None for
        answers that end with ``<eos>``.
    max_answer_len : int, optional
        Most decoding steps for variable-width answers (``<eos>`` included); defaults to
        ``target_width``, or 64.
    """

    def __init__(self, vocab: Vocab, source_width: int | None, target_width: int | None,
                 max_answer_len: int | None = None) -> None:
        if not isinstance(vocab, Vocab):
            raise TypeError(f"Codec: vocab expected a Vocab, got {type(vocab).__name__}")
        missing = [t for t in (PAD, EOS, START) if t not in vocab.stoi]
        if missing or vocab.level != "char":
            raise DataError(f"Codec: vocab expected a char vocabulary holding {PAD!r}, "
                            f"{EOS!r} and {START!r}, missing {missing}")
        self.vocab = vocab
        self.source_width = source_width
        self.target_width = target_width
        self.pad_id, self.eos_id = vocab.stoi[PAD], vocab.stoi[EOS]
        self.start_id = vocab.stoi[START]
        if max_answer_len is None:
            max_answer_len = target_width if target_width is not None else 64
        self.max_answer_len = max_answer_len

    @classmethod
    def build(cls, pairs: Pairs) -> Codec:
        """A codec for ``pairs``: every character seen, fixed widths when they are fixed."""
        vocab = Vocab.build("".join(pairs.questions) + "".join(pairs.answers) + START,
                            level="char", specials=SPECIALS)
        q_widths = {len(q) for q in pairs.questions}
        a_widths = {len(a) for a in pairs.answers}
        fixed = a_widths.pop() if len(a_widths) == 1 else None
        longest = max(len(a) for a in pairs.answers) + (fixed is None)
        return cls(vocab, q_widths.pop() if len(q_widths) == 1 else None, fixed, longest)

    @property
    def use_eos(self) -> bool:
        return self.target_width is None

    def banned_ids(self) -> list[int]:
        """Ids a decoder must never output (padding, start, and ``<eos>`` if unused)."""
        banned = [self.pad_id, self.start_id]
        return banned + ([self.eos_id] if not self.use_eos else [])

    def to_dict(self) -> dict[str, Any]:
        return {"vocab": self.vocab.to_dict(), "source_width": self.source_width,
                "target_width": self.target_width, "max_answer_len": self.max_answer_len}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Codec:
        keys = {"vocab", "source_width", "target_width", "max_answer_len"}
        if not isinstance(d, Mapping) or set(d) != keys:
            raise DataError(f"Codec.from_dict: expected keys {sorted(keys)}, got "
                            f"{sorted(d) if isinstance(d, Mapping) else type(d).__name__}")
        for key in ("source_width", "target_width", "max_answer_len"):
            value = d[key]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise DataError(f"Codec.from_dict: {key} expected None or an int >= 1, "
                                f"got {value!r}")
        if d["max_answer_len"] is None:
            raise DataError("Codec.from_dict: max_answer_len expected an int >= 1, got None")
        return cls(Vocab.from_dict(d["vocab"]), d["source_width"], d["target_width"],
                   d["max_answer_len"])

    # ------------------------------------------------------------------ encoding
    def _ids(self, text: str, what: str) -> list[int]:
        stoi = self.vocab.stoi
        unknown = sorted({ch for ch in text if ch not in stoi})
        if unknown:
            raise DataError(f"{what} {text!r} has characters outside the vocabulary: "
                            f"{''.join(unknown)!r}")
        return [stoi[ch] for ch in text]

    def prepare_question(self, question: str) -> str:
        """A user's question in the training layout (padded with spaces to the width)."""
        if not isinstance(question, str):
            raise TypeError(f"question expected a str, got {type(question).__name__}")
        if self.source_width is None:
            if not question:
                raise DataError("question expected at least one character, got ''")
            return question
        if len(question) > self.source_width:
            raise DataError(f"question {question!r} has {len(question)} characters, the "
                            f"model reads at most {self.source_width}")
        return question.ljust(self.source_width)

    def encode_questions(self, questions: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """``(src (N, S) int32, lengths (N,) or None)`` with ``<pad>`` after short rows."""
        rows = [self._ids(self.prepare_question(q), "question") for q in questions]
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        S = int(lengths.max())
        src = np.full((len(rows), S), self.pad_id, dtype=np.int32)
        for i, r in enumerate(rows):
            src[i, : len(r)] = r
        return src, (None if (lengths == S).all() else lengths)

    def encode_answers(self, answers: list[str]) -> np.ndarray:
        """``(N, U + 1)`` int32: start id, the answer, ``<eos>`` (variable width), pads."""
        rows = []
        for a in answers:
            if self.target_width is not None and len(a) != self.target_width:
                raise DataError(f"answer {a!r} expected {self.target_width} characters (the "
                                f"model's fixed answer width), got {len(a)}")
            rows.append([self.start_id, *self._ids(a, "answer")]
                        + ([self.eos_id] if self.use_eos else []))
        width = max(len(r) for r in rows)
        out = np.full((len(rows), width), self.pad_id, dtype=np.int32)
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
        return out

    def batch(self, pairs: Pairs) -> Batch:
        """All of ``pairs`` as one :class:`Batch`."""
        src, lengths = self.encode_questions(pairs.questions)
        tgt = self.encode_answers(pairs.answers)
        targets = tgt[:, 1:].astype(np.int64)
        targets[targets == self.pad_id] = IGNORE_INDEX
        return Batch(src, lengths, np.ascontiguousarray(tgt[:, :-1]), targets)

    def decode_answer(self, ids: Any) -> str:
        """Text of predicted ids, cut at ``<eos>`` (fixed width: all of them)."""
        out = []
        for i in np.asarray(ids).reshape(-1).tolist():
            if i == self.eos_id and self.use_eos:
                break
            token = self.vocab.itos[i]
            out.append(token if len(token) == 1 else "")
        return "".join(out)


def take(batch: Batch, index: np.ndarray) -> Batch:
    """Rows ``index`` of ``batch``, trimmed to their longest source and target."""
    src, dec_in, targets = batch.src[index], batch.dec_in[index], batch.targets[index]
    lengths = None
    if batch.src_lengths is not None:
        lengths = batch.src_lengths[index]
        S = int(lengths.max())
        src = src[:, :S]
        if (lengths == S).all():
            lengths = None
    valid = (targets != IGNORE_INDEX).any(axis=0)
    U = int(np.flatnonzero(valid)[-1]) + 1 if valid.any() else 1
    return Batch(np.ascontiguousarray(src), lengths, np.ascontiguousarray(dec_in[:, :U]),
                 np.ascontiguousarray(targets[:, :U]))


def iterate_batches(data: Batch, batch_size: int, rng: Any = None, shuffle: bool = True,
                    drop_last: bool = False) -> Iterator[Batch]:
    """Mini-batches of ``data``: a fresh permutation from ``rng`` per call when ``shuffle``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"iterate_batches: batch_size expected an int >= 1, got "
                         f"{batch_size!r}")
    n = len(data)
    order = make_rng(rng).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield take(data, order[start: start + batch_size])
