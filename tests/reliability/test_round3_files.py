"""Issue 30 (reliability, third round), the files and paths of the lower layers: one
atomic writer for every file of a run folder (figures too), readers that refuse devices
and FIFOs without blocking and read with a size limit, ``Corpus.save`` and the run lock
never writing through a link, an export that never replaces a checkpoint, and write
errors that name the target rather than the temporary.

Every test here failed before the fix (item numbers are the issue's)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from rnnlab import export
from rnnlab.data import DataError, Vocab, safefiles, series, textio
from rnnlab.data import core as data_core
from rnnlab.data.corpus import Corpus, corpus_from_text
from rnnlab.train import Trainer
from rnnlab.train import config as train_config
from rnnlab.train.runfolder import RunFolderError, RunLock
from tests.reliability.conftest import TEXT, small_config, small_model

VICTIM = "the victim's own text\n"


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM)
    return victim


def _no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if safefiles.TEMP_MARK in p.name]


def _refused_without_blocking(call: Any, fifo: Path) -> BaseException:
    """``call()``'s exception, checked to come within seconds (a read that blocks on the
    FIFO is released afterwards by opening its other end)."""
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(20)
    if worker.is_alive():
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # let the blocked open go
        os.close(fd)
        worker.join(5)
        pytest.fail(f"reading the FIFO {fifo} blocked")
    assert outcome, "the FIFO was accepted"
    return outcome[0]


# ------------------------------------------------------------------ item 1: the writer
def test_item1_the_writer_replaces_a_planted_symlink_and_never_writes_its_target(tmp_path):
    victim = _victim(tmp_path)
    run = tmp_path / "runs" / "f"
    run.mkdir(parents=True)
    link = run / "forecast.png"
    link.symlink_to(Path("../../victim.txt"))
    safefiles.write_atomic(link, b"\x89PNG not really")
    assert victim.read_text() == VICTIM
    assert not link.is_symlink() and link.read_bytes() == b"\x89PNG not really"
    assert _no_temporaries(run)


def test_item1_the_writer_takes_a_function_that_writes_a_matplotlib_figure(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    victim = _victim(tmp_path)
    target = tmp_path / "forecast.png"
    os.link(victim, target)  # a hard link: the other name keeps its contents
    fig = Figure(figsize=(2, 1))
    FigureCanvasAgg(fig)
    fig.add_subplot().plot([0, 1], [1, 0])
    path = safefiles.write_atomic(target, lambda fh: fig.savefig(fh, format="png", dpi=50))
    assert path == target and target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert victim.read_text() == VICTIM and _no_temporaries(tmp_path)


def test_item1_a_failing_writer_function_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "forecast.png"
    target.write_bytes(b"old")

    def fails(fh: Any) -> None:
        fh.write(b"half")
        raise RuntimeError("drawing failed")

    with pytest.raises(RuntimeError, match="drawing failed"):
        safefiles.write_atomic(target, fails)
    assert target.read_bytes() == b"old" and _no_temporaries(tmp_path)
    with pytest.raises(TypeError, match="data expected bytes or a function"):
        safefiles.write_atomic(target, "text")


def test_item1_the_activation_page_is_written_by_the_same_writer(tmp_path):
    from rnnlab.viz.activations import activation_page

    victim = _victim(tmp_path)
    link = tmp_path / "activations.html"
    link.symlink_to(victim)
    activation_page(_states(), link)
    assert victim.read_text() == VICTIM and not link.is_symlink()
    assert link.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


# ----------------------------------------------------- item 4: devices, FIFOs, sizes
def _csv(tmp_path: Path, text: str, name: str = "s.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_item4_a_device_is_refused_as_csv_and_as_config_before_it_is_read():
    with pytest.raises(DataError, match="is a character device, not a regular file"):
        series.read_csv_column("/dev/zero", "y")
    with pytest.raises(DataError, match=r"--config /dev/zero: is a character device"):
        train_config.read_config_file("/dev/zero")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_item4_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "s.csv"
    os.mkfifo(fifo)
    for call in (lambda: series.read_csv_column(fifo, "y"),
                 lambda: train_config.read_config_file(fifo),
                 lambda: textio.read_limited(fifo, 100)):
        exc = _refused_without_blocking(call, fifo)
        assert isinstance(exc, DataError) and "named pipe (FIFO)" in str(exc), exc


def test_item4_the_readers_have_a_size_limit(tmp_path):
    path = _csv(tmp_path, "y\n" + "1.5\n" * 100)
    with pytest.raises(DataError, match="402 bytes is larger than the limit of 100 bytes"):
        series.read_csv_column(path, "y", max_bytes=100)
    assert len(series.read_csv_column(path, "y")) == 100
    config = _csv(tmp_path, '{"train": {"lr": 0.5}, "model": {}}', "c.json")
    assert train_config.read_config_file(config) == {"model": {}, "train": {"lr": 0.5},
                                                     "data": {}}
    with pytest.raises(DataError, match="larger than the limit of 10 bytes"):
        train_config.read_config_file(config, max_bytes=10)
    assert train_config.MAX_CONFIG_BYTES <= 16 * 2**20 and series.MAX_CSV_BYTES <= 2**31


@pytest.mark.parametrize("text,message", [
    ("[1, 2]", "expected an object with 'model', 'train' and 'data' sections"),
    ('{"modle": {}}', r"unknown sections \['modle'\]"),
    ('{"train": 3}', "section 'train' expected an object of options, got int"),
    ("{not json", "cannot be read as JSON"),
])
def test_item4_the_config_reader_refuses_what_is_not_a_config(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        train_config.read_config_file(_csv(tmp_path, text, "c.json"))


# -------------------------------------------------------------- item 5: Corpus.save
def _corpus() -> Corpus:
    return corpus_from_text(TEXT, "char", name="tiny", source="tiny.txt", origin="tiny",
                            split=(0.8, 0.1, 0.1))


def test_item5_corpus_save_never_writes_corpus_json_through_a_symlink(tmp_path):
    victim = _victim(tmp_path)
    folder = tmp_path / "enc"
    folder.mkdir()
    (folder / "corpus.json").symlink_to(victim)
    _corpus().save(folder)
    assert victim.read_text() == VICTIM
    assert not (folder / "corpus.json").is_symlink()
    assert Corpus.open(folder).digest() == _corpus().digest()


def test_item5_corpus_json_is_written_atomically(tmp_path, monkeypatch):
    folder = _corpus().save(tmp_path / "enc")
    before = (folder / "corpus.json").read_bytes()

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safefiles.os, "fsync", full)
    other = corpus_from_text(TEXT.upper(), "char", name="other", source="x", origin="x",
                             split=(0.8, 0.1, 0.1))
    with pytest.raises(OSError) as caught:
        other.save(folder)
    assert caught.value.filename is not None and str(folder) in str(caught.value.filename)
    monkeypatch.undo()
    assert (folder / "corpus.json").read_bytes() == before and _no_temporaries(folder)


def test_item5_a_corpus_json_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    folder = _corpus().save(tmp_path / "enc")
    (folder / "corpus.json").unlink()
    os.mkfifo(folder / "corpus.json")
    exc = _refused_without_blocking(lambda: data_core.Corpus.open(folder),
                                    folder / "corpus.json")
    assert isinstance(exc, DataError) and "named pipe" in str(exc)


# ------------------------------------------------------------------ item 6: the lock
def test_item6_a_hard_link_at_the_lock_is_refused_and_its_target_kept(tmp_path):
    victim = _victim(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    os.link(victim, run / "rnnlab.lock")
    with pytest.raises(RunFolderError, match="is a hard link"):
        RunLock(run).acquire()
    assert victim.read_text() == VICTIM


def test_item6_a_fifo_at_the_lock_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / "rnnlab.lock")
    exc = _refused_without_blocking(lambda: RunLock(run).acquire(), run / "rnnlab.lock")
    assert isinstance(exc, RunFolderError) and "not a regular file" in str(exc)


def test_item6_the_lock_is_created_exclusively_and_reused_when_it_is_ours(tmp_path):
    run = tmp_path / "run"
    with RunLock(run):
        assert (run / "rnnlab.lock").read_text() == f"{os.getpid()}\n"
    with RunLock(run):  # the file a finished run left behind
        assert os.stat(run / "rnnlab.lock").st_nlink == 1


# ---------------------------------------------------------------- item 8: export
@pytest.fixture
def run_folder(tmp_path, corpus) -> Path:
    run = tmp_path / "run"
    Trainer(small_model(corpus), corpus, small_config(epochs=1), run,
            echo=lambda m: None).fit()
    return run


def test_item8_export_refuses_an_existing_file_unless_overwrite(run_folder, tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "model.pt"
    out.write_bytes(b"mine")
    with pytest.raises(ValueError, match=r"exists; pass overwrite=True \(--overwrite\)"):
        export.export_checkpoint(run_folder / "last.safetensors", out, "torch")
    assert out.read_bytes() == b"mine"
    path, _ = export.export_checkpoint(run_folder / "last.safetensors", out, "torch",
                                       overwrite=True)
    assert path == out and out.read_bytes() != b"mine"


def test_item8_export_never_replaces_a_checkpoint_even_with_overwrite(run_folder):
    pytest.importorskip("torch")
    best = run_folder / "best.safetensors"
    before = best.read_bytes()
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="is an rnnlab checkpoint; an export never"):
            export.export_checkpoint(run_folder / "last.safetensors", best, "torch",
                                     overwrite=overwrite)
    assert best.read_bytes() == before
    renamed = run_folder / "weights.bin"  # a checkpoint under any name
    renamed.write_bytes(before)
    with pytest.raises(ValueError, match="rnnlab checkpoint"):
        export.export_torch(small_model(_corpus()), renamed, overwrite=True)
    assert renamed.read_bytes() == before


# ---------------------------------------------------- item 18: write errors' names
def test_item18_a_write_error_names_the_target_not_the_temporary(tmp_path):
    with pytest.raises(OSError) as caught:
        safefiles.write_atomic("/proc/x.onnx", b"graph")
    assert caught.value.filename == "/proc/x.onnx"
    assert safefiles.TEMP_MARK not in str(caught.value)
    folder = tmp_path / "taken"
    folder.mkdir()  # os.replace onto a folder fails after the temporary was written
    with pytest.raises(OSError) as caught:
        safefiles.write_atomic(folder, b"graph")
    assert caught.value.filename == str(folder) and _no_temporaries(tmp_path)
    assert safefiles.TEMP_MARK not in str(caught.value)


def test_item18_an_export_to_proc_names_the_file_asked_for():
    pytest.importorskip("torch")
    with pytest.raises(OSError) as caught:
        export.export_torch(small_model(_corpus()), "/proc/x.pt")
    assert caught.value.filename == "/proc/x.pt" and ".tmp-" not in str(caught.value)


# ------------------------------------------------ item 14: the activation page's choice
def _states() -> Any:
    from rnnlab.models import RNNLM
    from rnnlab.viz.probe import collect_states

    text = 'def f(x):\n    return "a(b)" + x  # done\n'
    vocab = Vocab.build(text, level="char")
    model = RNNLM(len(vocab), embedding_dim=6, hidden_size=10, cell="lstm", rng=0)
    return collect_states(model, text, vocab=vocab)


def test_item14_a_unit_out_of_range_and_an_unknown_property_are_refused(tmp_path):
    from rnnlab.viz import activations

    states = _states()
    out = tmp_path / "page.html"
    with pytest.raises(ValueError, match=r"unit expected a unit of the layer, 0 to 9 "
                                         r"\(10 units\), got 99999"):
        activations.activation_page(states, out, unit=99999)
    with pytest.raises(ValueError, match=r"underline expected one of the page's properties "
                                         r"\('.*'inside brackets'.*\), got 'no such property'"):
        activations.activation_page(states, out, underline="no such property")
    with pytest.raises(TypeError, match="unit expected an int"):
        activations.activation_page(states, out, unit="3")
    assert not out.exists()
    activations.activation_page(states, out, unit=9, underline="inside brackets")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
