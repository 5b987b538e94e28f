"""Models: every kind learns, greedy == beam(1), beam scores, trained decoding,
attention in source order, checkpoints, argument errors."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.optim import Adam, clip_grad_norm
from rnnlab.seq2seq import (
    Codec,
    Pairs,
    Seq2Seq,
    Seq2SeqConfig,
    TrainOptions,
    beam_search,
    exact_match,
    fit,
    greedy_decode,
    iterate_batches,
    load_checkpoint,
    make_addition,
    predict,
    save_checkpoint,
)
from rnnlab.seq2seq.search import _log_softmax
from rnnlab.train.checkpoint import CheckpointError, read_checkpoint, write_checkpoint

KINDS = [
    dict(decoder="plain"),
    dict(decoder="peeky", reverse=True),
    dict(decoder="peeky", cell="gru", bidirectional=True),
    dict(decoder="attention"),
    dict(decoder="attention", score="general", cell="gru", reverse=True),
    dict(decoder="attention", score="additive", bidirectional=True),
    dict(decoder="bahdanau", reverse=True),
    dict(decoder="bahdanau", score="dot", cell="gru"),
]
IDS = ["-".join(f"{k}={v}" for k, v in kind.items()) for kind in KINDS]


def reverse_pairs(n: int, seed: int) -> Pairs:
    """Variable-length strings over 'abcd' and their reversal (padded batches, <eos>)."""
    rng = np.random.default_rng(seed)
    qs = ["".join(rng.choice(list("abcd"), size=int(rng.integers(1, 5)))) for _ in range(n)]
    return Pairs(qs, [q[::-1] for q in qs])


@pytest.fixture(scope="module")
def addition():
    pairs = make_addition(200, seed=0, max_digits=2)
    return pairs, Codec.build(pairs)


@pytest.fixture(scope="module")
def reversal():
    pairs = reverse_pairs(60, seed=0)
    return pairs, Codec.build(pairs)


def model_for(codec, rng=0, hidden=16, **kind):
    return Seq2Seq(Seq2SeqConfig(len(codec.vocab), 8, hidden, **kind), rng=rng)


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_every_kind_learns(kind, reversal):
    pairs, codec = reversal
    model = model_for(codec, **kind)
    data = codec.batch(pairs)
    opt = Adam(model, lr=0.01)
    first = model.forward_loss(data)
    for _ in range(4):
        for batch in iterate_batches(data, 20, rng=1):
            model.zero_grad()
            model.forward_loss(batch)
            model.backward()
            clip_grad_norm(model, 5.0)
            opt.step()
    last = model.forward_loss(data)
    assert np.isfinite(last) and last < 0.8 * first


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_greedy_equals_beam_of_width_one(kind, addition, reversal):
    for pairs, codec in (addition, reversal):
        model = model_for(codec, rng=3, dtype="float64", **kind)  # no near-ties in argmax
        model.eval()
        src, lengths = codec.encode_questions(pairs.questions[:40])
        eos = codec.eos_id if codec.use_eos else None
        args = (model, src, lengths, codec.max_answer_len, codec.start_id, eos,
                codec.banned_ids())
        g_ids, g_att = greedy_decode(*args)
        b_ids, _, b_att = beam_search(*args, beam_width=1)
        assert np.array_equal(g_ids, b_ids)
        if g_att is not None:
            np.testing.assert_allclose(g_att, b_att, rtol=1e-9, atol=1e-12)
            assert g_att.shape == (40, g_ids.shape[1], src.shape[1])
            np.testing.assert_allclose(g_att.sum(axis=-1), 1.0, rtol=1e-5)


def teacher_forced_logprob(model, codec, src, ids):
    """log p(ids | src) by one teacher-forced forward pass (fixed-width answers)."""
    dec_in = np.concatenate([np.full((len(ids), 1), codec.start_id), ids[:, :-1]], axis=1)
    logits = model.forward(src, dec_in.astype(np.int32), None)
    N, U, V = logits.shape
    logp = _log_softmax(logits.reshape(N * U, V), codec.banned_ids()).reshape(N, U, V)
    return np.take_along_axis(logp, ids[:, :, None], axis=2).sum(axis=(1, 2))


@pytest.mark.parametrize("kind", [KINDS[1], KINDS[4], KINDS[6]], ids=[IDS[1], IDS[4], IDS[6]])
def test_beam_scores_are_sequence_logprobs(kind, addition):
    pairs, codec = addition
    model = model_for(codec, rng=4, **kind).eval()
    src, _ = codec.encode_questions(pairs.questions[:30])
    args = (model, src, None, codec.max_answer_len, codec.start_id, None, codec.banned_ids())
    b_ids, scores, _ = beam_search(*args, beam_width=4)
    np.testing.assert_allclose(scores, teacher_forced_logprob(model, codec, src, b_ids),
                               rtol=1e-4)
    g_ids, _ = greedy_decode(*args)
    greedy = teacher_forced_logprob(model, codec, src, g_ids)
    assert (scores >= greedy - 1e-4).mean() > 0.9  # beam search rarely does worse


def test_trained_tiny_model_decodes(tmp_path, reversal):
    pairs, codec = reversal
    model = model_for(codec, rng=0, hidden=32, decoder="attention")
    # seed: the batch order (the unseen "abcd" is answered right with this one)
    history = fit(model, codec, pairs, pairs, TrainOptions(epochs=30, batch_size=20, lr=0.01,
                                                           seed=1))
    assert history[-1]["test_acc"] == 1.0 and history[-1]["loss"] < history[0]["loss"]
    answers, att = predict(model, codec, ["abcd", "dd", "cab"], return_attention=True)
    assert answers == ["dcba", "dd", "bac"]
    assert att[0].shape == (4, 4) and att[1].shape == (2, 2)
    assert predict(model, codec, ["abcd"], beam_width=3) == ["dcba"]
    # reversal copies the mirror character: the attention peaks on the anti-diagonal
    assert att[0].argmax(axis=1).tolist() == [3, 2, 1, 0]
    # checkpoint round trip gives the same model
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model, codec, data={"task": "rev"}, history=history)
    loaded, codec2, meta = load_checkpoint(path)
    assert codec2.to_dict() == codec.to_dict() and meta["data"] == {"task": "rev"}
    assert meta["history"][-1]["test_acc"] == 1.0
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), loaded.named_parameters(),
                                  strict=True):
        assert n1 == n2 and np.array_equal(p1, p2)
    assert exact_match(loaded, codec2, pairs) == 1.0


def test_attention_weights_are_in_source_order(reversal):
    pairs, codec = reversal
    fwd = model_for(codec, rng=2, decoder="attention", reverse=True)
    plain = model_for(codec, rng=2, decoder="attention", reverse=False)
    b = codec.batch(Pairs(pairs.questions[:8], pairs.answers[:8]))
    lengths = b.src_lengths
    flipped = b.src.copy()
    for i, L in enumerate(lengths):
        flipped[i, :L] = b.src[i, :L][::-1]
    fwd.forward(b.src, b.dec_in, lengths)
    plain.forward(flipped, b.dec_in, lengths)
    ours, theirs = fwd.attention_weights, plain.attention_weights
    for i, L in enumerate(lengths):
        np.testing.assert_allclose(ours[i, :, :L], theirs[i, :, :L][:, ::-1], rtol=1e-6)
        assert (ours[i, :, L:] == 0).all()


def test_checkpoint_validation(tmp_path, addition):
    codec = addition[1]
    model = model_for(codec, decoder="peeky")
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model, codec)
    arrays, meta = read_checkpoint(path)
    bad = tmp_path / "bad.safetensors"
    write_checkpoint(bad, arrays, {**meta, "kind": "rnnlm"})
    with pytest.raises(CheckpointError, match="is not a seq2seq model"):
        load_checkpoint(bad)
    write_checkpoint(bad, arrays, {**meta, "model_config": {**meta["model_config"],
                                                            "decoder": "magic"}})
    with pytest.raises(CheckpointError, match="decoder expected one of"):
        load_checkpoint(bad)
    write_checkpoint(bad, arrays, {**meta, "model_config": {**meta["model_config"],
                                                            "vocab_size": 99}})
    with pytest.raises(CheckpointError, match="does not match the vocabulary"):
        load_checkpoint(bad)
    write_checkpoint(bad, {k: v for k, v in arrays.items() if "out" not in k}, meta)
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(bad)
    bad.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)
    model.decoder.out.params["bias"][0] = np.nan
    with pytest.raises(CheckpointError, match="NaN"):
        save_checkpoint(tmp_path / "nan.safetensors", model, codec)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    (dict(decoder="fancy"), ValueError, "decoder expected one of"),
    (dict(decoder="peeky", score="dot"), ValueError, "score expected None for decoder"),
    (dict(decoder="attention", score="cosine"), ValueError, "score expected one of"),
    (dict(cell="rnn"), ValueError, "cell expected one of"),
    (dict(hidden_size=0), ValueError, "hidden_size expected an int >= 1, got 0"),
    (dict(reverse=1), TypeError, "reverse expected a bool"),
    (dict(dtype="float16"), ValueError, "dtype expected 'float32' or 'float64'"),
])
def test_config_errors_name_the_argument(kwargs, error, message):
    with pytest.raises(error, match=message):
        Seq2SeqConfig(vocab_size=10, **kwargs)


def test_option_and_search_errors(addition):
    pairs, codec = addition
    with pytest.raises(ValueError, match="lr expected a finite number > 0"):
        TrainOptions(lr=0)
    with pytest.raises(ValueError, match="schedule expected one of"):
        TrainOptions(schedule="step")
    model = model_for(codec)
    src, _ = codec.encode_questions(pairs.questions[:2])
    with pytest.raises(ValueError, match="beam_width expected an int >= 1, got 0"):
        beam_search(model, src, None, 4, codec.start_id, beam_width=0)
    with pytest.raises(TypeError, match="questions expected a list of str"):
        predict(model, codec, "1+1")
