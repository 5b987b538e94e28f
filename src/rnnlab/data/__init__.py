"""Corpora, vocabularies and truncated-BPTT batching for language modelling.

Point rnnlab at text and get integer ids ready for training:

>>> from rnnlab.data import load_corpus, BPTTBatcher
>>> corpus = load_corpus("stdlib", max_chars=200_000)   # offline: Python's own source
>>> batches = BPTTBatcher(corpus.train, batch_size=32, bptt=64)
>>> x, y = next(iter(batches))           # (32, 64) int32 inputs and next-token targets
>>> (x[:, 1:] == y[:, :-1]).all()
np.True_

Modules:

* :mod:`~rnnlab.data.tokens`: char/word tokenisation (newline -> ``<eos>`` for words).
* :mod:`~rnnlab.data.vocab`: :class:`Vocab` (``<unk>``/``<eos>`` specials, frequency
  order, ``max_size``/``min_freq``, JSON round trip).
* :mod:`~rnnlab.data.textio`: strict UTF-8 reading of files and folders (byte offset of
  the first bad byte, binary detection, sorted folder walks, streaming).
* :mod:`~rnnlab.data.core`: :class:`Corpus`, the contiguous train/valid/test split and
  the digest of a corpus's ids, shared by every loader below.
* :mod:`~rnnlab.data.corpus`: :func:`load_text` (any text file or folder) and the
  :func:`load_corpus` dispatcher.
* :mod:`~rnnlab.data.remote`: :func:`load_ptb` and :func:`load_tinyshakespeare`, local
  copies (``data_dir=``, ``$RNNLAB_DATA``) or pooch downloads, all SHA-256 checked.
* :mod:`~rnnlab.data.stdlib`: :func:`load_stdlib`, the offline default corpus.
* :mod:`~rnnlab.data.ids`: :func:`save_ids`/:func:`open_ids` (``.npy``, memory-mapped)
  and :func:`encode_to_npy` for corpora larger than memory.
* :mod:`~rnnlab.data.batching`: :class:`BPTTBatcher`, resumable ``(N, T)`` windows.
* :mod:`~rnnlab.data.series`: time series for forecasting: :func:`read_csv_column` (one
  column of a CSV file), :func:`make_windows` and :func:`forecast_windows` (a split in
  time, standardised by the training part, no training target in the validation part).

Ids are int32 everywhere. Every failure the user can fix raises :class:`DataError`
(a ``ValueError``) with a message that says what and where.
"""

from rnnlab.data.batching import BPTTBatcher
from rnnlab.data.corpus import Corpus, load_corpus, load_text
from rnnlab.data.errors import DataError
from rnnlab.data.ids import encode_to_npy, open_ids, save_ids
from rnnlab.data.remote import load_ptb, load_tinyshakespeare
from rnnlab.data.series import ForecastWindows, forecast_windows, make_windows, read_csv_column
from rnnlab.data.stdlib import load_stdlib
from rnnlab.data.tokens import EOS, ID_DTYPE, UNK, detokenize, tokenize
from rnnlab.data.vocab import Vocab

__all__ = [
    "EOS",
    "ID_DTYPE",
    "UNK",
    "BPTTBatcher",
    "Corpus",
    "DataError",
    "ForecastWindows",
    "Vocab",
    "detokenize",
    "encode_to_npy",
    "forecast_windows",
    "load_corpus",
    "load_ptb",
    "load_stdlib",
    "load_text",
    "load_tinyshakespeare",
    "make_windows",
    "open_ids",
    "read_csv_column",
    "save_ids",
    "tokenize",
]
