"""Datasets: the generators, the book's file format and files, the split, codec, batches."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from rnnlab.data import DataError
from rnnlab.seq2seq import (
    DATE_FORMATS,
    IGNORE_INDEX,
    Codec,
    Pairs,
    find_data_file,
    format_line,
    iterate_batches,
    make_addition,
    make_dates,
    read_pairs,
    split_indices,
    split_pairs,
)
from rnnlab.seq2seq.tasks import YEAR_PIVOT, parse_two_digit_year


# ------------------------------------------------------------------ generators
def test_addition_is_seeded_formatted_and_correct():
    a, b = make_addition(500, seed=3), make_addition(500, seed=3)
    assert a == b and a != make_addition(500, seed=4)
    assert {len(q) for q in a.questions} == {7} and {len(x) for x in a.answers} == {4}
    pairs = set()
    for q, ans in zip(a.questions, a.answers, strict=True):
        left, right = q.strip().split("+")
        assert 1 <= len(left) <= 3 and 1 <= len(right) <= 3
        assert int(ans) == int(left) + int(right)
        pairs.add((int(left), int(right)))
    assert len(pairs) == 500  # unique questions
    assert format_line(a.questions[0], a.answers[0])[7] == "_"
    small = make_addition(100, seed=0, max_digits=1)
    assert len(set(small.questions)) == 100 and {len(q) for q in small.questions} == {3}


def test_addition_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n expected at most 100 unique pairs"):
        make_addition(101, max_digits=1)
    with pytest.raises(ValueError, match="max_digits expected an int in"):
        make_addition(10, max_digits=0)
    with pytest.raises(ValueError, match="n expected an int >= 1, got 0"):
        make_addition(0)
    assert len(make_addition(150, seed=0, max_digits=1, unique=False)) == 150


STRPTIME = {
    "month d, yyyy": "%B %d, %Y", "mon d, yyyy": "%b %d, %Y",
    "weekday, month d, yyyy": "%A, %B %d, %Y", "d month yyyy": "%d %B %Y",
    "d mon yyyy": "%d %b %Y", "wkd, d mon yyyy": "%a, %d %b %Y", "m/d/yy": "%m/%d/%y",
    "mm/dd/yyyy": "%m/%d/%Y", "dd.mm.yyyy": "%d.%m.%Y", "yyyy/mm/dd": "%Y/%m/%d",
    "yyyymmdd": "%Y%m%d",
}


def test_every_date_format_means_its_answer():
    assert set(STRPTIME) == set(DATE_FORMATS)
    for name, pattern in STRPTIME.items():
        pairs = make_dates(60, seed=1, formats=[name])
        assert {len(q) for q in pairs.questions} == {29}
        for q, ans in zip(pairs.questions, pairs.answers, strict=True):
            parsed = dt.datetime.strptime(q.strip(), pattern).date()
            assert parsed.isoformat() == ans, (name, q)
            if "weekday" in name or "wkd" in name:
                assert q.strip().lower().startswith(parsed.strftime("%a").lower())
    cases = {q.strip().split()[0].isupper() for q in make_dates(300, 2, ["mon d, yyyy"]).questions}
    assert cases == {True, False}  # case variants are drawn


def test_dates_are_seeded_and_checked():
    a = make_dates(200, seed=5)
    assert a == make_dates(200, seed=5) and a != make_dates(200, seed=6)
    years = {int(x[:4]) for x in a.answers}
    assert min(years) >= 1970 and max(years) <= 2017
    assert {len(x) for x in a.answers} == {10}
    assert parse_two_digit_year(YEAR_PIVOT) == 1970 and parse_two_digit_year(5) == 2005
    with pytest.raises(ValueError, match="formats expected names"):
        make_dates(3, formats=["dd/mm/yyyy"])
    with pytest.raises(ValueError, match="years expected"):
        make_dates(3, years=(1960, 2000))
    with pytest.raises(ValueError, match="width expected at least"):
        make_dates(50, seed=0, width=5)


# --------------------------------------------------------------------- loader
def test_read_pairs_book_format(tmp_path):
    path = tmp_path / "p.txt"
    path.write_bytes(b"16+75  _91  \r\n\n52+607 _659 \nab_c_d\n")
    pairs = read_pairs(path)
    assert pairs.questions == ["16+75  ", "52+607 ", "ab"]
    assert pairs.answers == ["91  ", "659 ", "c_d"]
    assert len(read_pairs(path, limit=2)) == 2


@pytest.mark.parametrize(("content", "message"), [
    (b"no marker here\n", "line 1 has no '_'"),
    (b"1+1_2\n_3\n", "line 2 has an empty question"),
    (b"1+1_\n", "line 1 has an empty answer"),
    (b"\n\n", "no pairs found"),
    (b"1+1_2\n\xff\n", "not UTF-8 .bad byte at offset 6"),
])
def test_read_pairs_errors(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_pairs(path)


def test_read_pairs_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_pairs(tmp_path / "absent.txt")


@pytest.mark.parametrize(("task", "q_width", "a_width", "first"), [
    ("addition", 7, 4, ("16+75  ", "91  ")),
    ("date", 29, 10, ("september 27, 1994".ljust(29), "1994-09-27")),
])
def test_the_books_files(task, q_width, a_width, first):
    path = find_data_file(task)
    if path is None:
        pytest.skip(f"{task}.txt not found in $RNNLAB_DATA or ../shared/data/seq2seq")
    pairs = read_pairs(path)
    assert len(pairs) == 50_000
    assert (pairs.questions[0], pairs.answers[0]) == first
    assert {len(q) for q in pairs.questions} == {q_width}
    assert {len(a) for a in pairs.answers} == {a_width}
    train, test = split_pairs(pairs)
    assert (len(train), len(test)) == (45_000, 5_000)
    codec = Codec.build(pairs)
    assert (codec.source_width, codec.target_width) == (q_width, a_width)
    if task == "addition":  # 0-9, '+', ' ', '_' and the two specials
        assert len(codec.vocab) == 15
        assert all(int(a) == sum(map(int, q.split("+")))
                   for q, a in zip(pairs.questions[:2000], pairs.answers[:2000], strict=True))


def test_find_data_file_honours_env(tmp_path, monkeypatch):
    (tmp_path / "seq2seq").mkdir()
    (tmp_path / "seq2seq" / "addition.txt").write_text("1+1_2\n")
    monkeypatch.setenv("RNNLAB_DATA", str(tmp_path))
    assert find_data_file("addition") == tmp_path / "seq2seq" / "addition.txt"
    assert find_data_file("addition", data_dir=tmp_path / "seq2seq") == \
        tmp_path / "seq2seq" / "addition.txt"


def test_split_is_a_seeded_shuffle_then_90_10():
    train, test = split_indices(1000, seed=1984)
    assert len(train) == 900 and len(test) == 100
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(1000))
    again = split_indices(1000, seed=1984)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    assert not np.array_equal(test, split_indices(1000, seed=1)[1])
    expected = np.random.default_rng(1984).permutation(1000)[900:]
    assert np.array_equal(test, expected)
    with pytest.raises(ValueError, match="test_fraction expected a float in"):
        split_indices(10, test_fraction=1.5)


# ---------------------------------------------------------------------- codec
def test_codec_fixed_width_is_the_books_layout():
    pairs = make_addition(50, seed=0)
    codec = Codec.build(pairs)
    batch = codec.batch(pairs)
    assert batch.src.shape == (50, 7) and batch.src_lengths is None
    assert batch.dec_in.shape == (50, 4) and batch.targets.shape == (50, 4)
    assert (batch.dec_in[:, 0] == codec.start_id).all()
    assert np.array_equal(batch.dec_in[:, 1:], batch.targets[:, :-1])
    assert codec.decode_answer(batch.targets[0]) == pairs.answers[0]
    assert codec.prepare_question("1+1") == "1+1    "
    assert codec.eos_id in codec.banned_ids() and not codec.use_eos
    with pytest.raises(DataError, match="the model reads at most 7"):
        codec.encode_questions(["1000+1000"])
    with pytest.raises(DataError, match="outside the vocabulary: 'x'"):
        codec.encode_questions(["1x1"])
    assert Codec.from_dict(codec.to_dict()).to_dict() == codec.to_dict()


def test_codec_variable_width_pads_and_ends_with_eos():
    pairs = Pairs(["abc", "a", "bb"], ["cba", "a", "bb"])
    codec = Codec.build(pairs)
    assert codec.source_width is None and codec.use_eos and codec.max_answer_len == 4
    b = codec.batch(pairs)
    assert b.src_lengths.tolist() == [3, 1, 2]
    assert (b.src[1, 1:] == codec.pad_id).all()
    assert b.targets[1].tolist()[1] == codec.eos_id
    assert b.targets[1].tolist()[2:] == [IGNORE_INDEX, IGNORE_INDEX]
    assert codec.decode_answer([codec.vocab.stoi["b"], codec.eos_id, codec.vocab.stoi["a"]]) \
        == "b"
    with pytest.raises(DataError, match="expected keys"):
        Codec.from_dict({"vocab": codec.vocab.to_dict()})


def test_batches_cover_the_data_and_trim_padding():
    pairs = Pairs(["a" * (1 + i % 5) for i in range(23)], ["b" * (1 + i % 3) for i in range(23)])
    codec = Codec.build(pairs)
    data = codec.batch(pairs)
    batches = list(iterate_batches(data, 5, rng=0))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    assert sum(int((b.targets != IGNORE_INDEX).sum()) for b in batches) == \
        int((data.targets != IGNORE_INDEX).sum())
    for b in batches:
        longest = b.src.shape[1]
        lengths = b.src_lengths if b.src_lengths is not None else np.full(len(b), longest)
        assert lengths.max() == longest
        assert (b.targets[:, -1] != IGNORE_INDEX).any()
    again = list(iterate_batches(data, 5, rng=0))
    assert all(np.array_equal(x.src, y.src) for x, y in zip(batches, again, strict=True))
    assert [len(b) for b in iterate_batches(data, 5, rng=0, drop_last=True)] == [5] * 4
    with pytest.raises(ValueError, match="batch_size expected an int >= 1, got 0"):
        next(iterate_batches(data, 0))
