"""The digest of a corpus's ids (issue 26, item 5): it depends on the ids and the parts
only, and a memory-mapped part is hashed from its file without being mapped in."""

from __future__ import annotations

import numpy as np

from rnnlab.data import load_text, open_ids, save_ids
from rnnlab.data.core import ids_digest


def test_the_digest_sees_every_id_and_the_parts(tmp_path):
    ids = np.random.default_rng(0).integers(0, 50, 10_000).astype(np.int32)
    base = ids_digest({"train": ids[:8000], "valid": ids[8000:9000], "test": ids[9000:]})
    assert base.startswith("blake2b-128:") and len(base) == len("blake2b-128:") + 32
    same = ids_digest({"train": ids[:8000].astype(np.int64), "valid": ids[8000:9000].tolist(),
                       "test": ids[9000:].astype(np.uint16)})
    assert same == base  # the dtype does not matter
    changed = ids.copy()
    changed[4321] += 1
    assert ids_digest({"train": changed[:8000], "valid": changed[8000:9000],
                       "test": changed[9000:]}) != base
    moved = ids_digest({"train": ids[:8001], "valid": ids[8001:9000], "test": ids[9000:]})
    assert moved != base  # the same ids split elsewhere


def test_memory_maps_and_their_slices_hash_from_the_file(tmp_path):
    ids = np.random.default_rng(1).integers(0, 50, 2_100_000).astype(np.int32)
    mapped = open_ids(save_ids(tmp_path / "ids", ids))
    for a, b in ((0, None), (5, None), (1000, 2_000_003), (0, 7), (2_099_999, None)):
        assert ids_digest({"t": mapped[a:b]}) == ids_digest({"t": ids[a:b]})
    assert ids_digest({"t": mapped[::3]}) == ids_digest({"t": ids[::3]})  # through the map


def test_a_corpus_digest_is_stable_and_notices_edits(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("abcabcabd\n" * 50)
    first = load_text(path).digest()
    assert load_text(path).digest() == first
    path.write_text("abcabcabd\n" * 49 + "abcabcadb\n")
    assert load_text(path).digest() != first
