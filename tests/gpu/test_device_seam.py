"""The backend seam on the CPU: every layer, model, optimizer and the trainer run on a
strict stand-in for CuPy that refuses host arrays, and agree with the CPU."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab import nn
from rnnlab.backend import DeviceError, get_xp, resolve_device, to_numpy

KINDS = [(nn.RNN, {}), (nn.LSTM, {}), (nn.GRU, {}), (nn.GRU, {"reset_after": False})]


def test_device_resolution(monkeypatch):
    monkeypatch.setenv("RNNLAB_DEVICE", "cpu")
    assert resolve_device(None) == "cpu" and get_xp().__name__ == "numpy"
    assert resolve_device("cuda:0") == "gpu"
    with pytest.raises(ValueError, match="expected 'cpu' or 'gpu'"):
        resolve_device("tpu")


def test_missing_cupy_is_a_clear_error(monkeypatch):
    import rnnlab.backend as backend

    def no_cupy():
        raise DeviceError("device 'gpu' needs CuPy, which is not installed; install it with "
                          "pip install 'rnnlab[gpu]'")

    monkeypatch.setattr(backend, "_import_cupy", no_cupy)
    with pytest.raises(DeviceError, match=r"rnnlab\[gpu\]"):
        nn.LSTM(3, 4, device="gpu")


def test_fake_device_refuses_host_arrays(fake_gpu):
    a = fake_gpu.zeros((2, 3), dtype=np.float32)
    with pytest.raises(fake_gpu.HostDeviceMix):
        a + np.ones((2, 3), np.float32)
    with pytest.raises(fake_gpu.HostDeviceMix):
        np.tanh(a) + np.zeros(3, np.float32)
    assert isinstance(to_numpy(a), np.ndarray) and type(to_numpy(a)) is np.ndarray


@pytest.mark.parametrize("cls,kw", KINDS)
def test_recurrent_layers_agree_with_cpu(fake_gpu, cls, kw):
    rng = np.random.default_rng(0)
    cpu = cls(4, 5, num_layers=2, bidirectional=True, rng=1, dtype=np.float64, **kw)
    dev = cls(4, 5, num_layers=2, bidirectional=True, rng=2, dtype=np.float64, device="gpu",
              **kw)
    dev.load_state_dict(cpu.state_dict())
    xs = rng.standard_normal((3, 6, 4))
    dhs = rng.standard_normal((3, 6, 10))
    lengths = np.array([6, 2, 4])
    hs_cpu = cpu.forward(xs, lengths=lengths)
    hs_dev = dev.forward(fake_gpu.asarray(xs), lengths=lengths)
    np.testing.assert_allclose(to_numpy(hs_dev), hs_cpu, rtol=1e-12, atol=1e-12)
    dx_cpu = cpu.backward(dhs)
    dx_dev = dev.backward(fake_gpu.asarray(dhs))
    np.testing.assert_allclose(to_numpy(dx_dev), dx_cpu, rtol=1e-12, atol=1e-12)
    for name, grad in cpu.grads.items():
        np.testing.assert_allclose(to_numpy(dev.grads[name]), grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls,kw", KINDS)
def test_token_table_path_agrees_with_cpu(fake_gpu, cls, kw):
    rng = np.random.default_rng(4)
    cpu = cls(4, 5, num_layers=2, rng=1, dtype=np.float64, **kw)
    dev = cls(4, 5, num_layers=2, rng=2, dtype=np.float64, device="gpu", **kw)
    dev.load_state_dict(cpu.state_dict())
    E, ids = rng.standard_normal((3, 4)), rng.integers(0, 3, (2, 6))
    dE_cpu, dE_dev = np.zeros_like(E), fake_gpu.zeros((3, 4))
    hs_cpu = cpu.forward_tokens(ids, E, dE_cpu)
    hs_dev = dev.forward_tokens(fake_gpu.asarray(ids), fake_gpu.asarray(E), dE_dev)
    np.testing.assert_allclose(to_numpy(hs_dev), hs_cpu, rtol=1e-12, atol=1e-12)
    cpu.backward(hs_cpu)
    dev.backward(hs_dev)
    np.testing.assert_allclose(to_numpy(dE_dev), dE_cpu, rtol=1e-10, atol=1e-12)
    for name, grad in cpu.grads.items():
        np.testing.assert_allclose(to_numpy(dev.grads[name]), grad, rtol=1e-10, atol=1e-12)


def test_host_input_to_a_device_layer_is_rejected(fake_gpu):
    layer = nn.LSTM(3, 4, device="gpu")
    with pytest.raises(TypeError, match="expected an array on the layer's device"):
        layer.forward(np.zeros((1, 2, 3), np.float32))


def test_dropout_and_cells_on_device(fake_gpu):
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5, rng=0, device="gpu")
    out = lstm.forward(fake_gpu.asarray(np.ones((2, 5, 3), np.float32)))
    lstm.backward(out)
    cell = nn.GRUCell(3, 4, device="gpu")
    h = cell.forward(fake_gpu.asarray(np.ones((2, 3), np.float32)))
    cell.backward(h)
    emb = nn.Embedding(10, 3, device="gpu")
    y = emb.forward(fake_gpu.asarray(np.array([[1, 2, 2]])))
    emb.backward(y)
    assert to_numpy(emb.grads["weight"])[2].any()


@pytest.mark.parametrize("name", ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam",
                                  "AdamW"])
def test_optimizers_on_device_match_cpu(fake_gpu, name):
    from rnnlab import optim

    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 5))
    results = []
    for device in ("cpu", "gpu"):
        xp = get_xp(device)
        p, g = xp.asarray(w.copy()), xp.zeros_like(xp.asarray(w))
        opt = getattr(optim, name)([("w", p, g)], lr=0.1)
        for step in range(5):
            g[...] = xp.asarray(rng.standard_normal((4, 5)) * 0 + step - 2.0)
            optim.clip_grad_norm([("w", p, g)], 3.0)
            opt.step()
        results.append(to_numpy(p))
    np.testing.assert_allclose(results[1], results[0], rtol=1e-12)


def test_language_model_training_checkpoint_and_generation(fake_gpu, tmp_path):
    from rnnlab.data import load_text
    from rnnlab.generate import generate
    from rnnlab.models import RNNLM
    from rnnlab.train import TrainConfig, Trainer
    from rnnlab.train.state import load_model

    text = tmp_path / "t.txt"
    text.write_text("abcabcabd\n" * 60, encoding="utf-8")
    corpus = load_text(text, "char", split=(0.8, 0.1, 0.1))
    cfg = TrainConfig(epochs=1, batch_size=4, bptt=8, lr=0.01, progress=False, log_every=5,
                      unigram_bias=True)
    summaries = {}
    for device in ("cpu", "gpu"):
        model = RNNLM(len(corpus.vocab), 8, 12, 2, "lstm", rng=0, device=device)
        summaries[device] = Trainer(model, corpus, cfg, tmp_path / device,
                                    echo=lambda m: None).fit()
    assert summaries["gpu"]["test_loss"] == pytest.approx(summaries["cpu"]["test_loss"],
                                                          rel=1e-5)
    moved, vocab, _ = load_model(tmp_path / "gpu" / "best.safetensors", device="cpu")
    back, _, _ = load_model(tmp_path / "cpu" / "best.safetensors", device="gpu")
    assert generate(back, vocab, "ab", 10, strategy="greedy") == \
        generate(moved, vocab, "ab", 10, strategy="greedy")


def test_unigram_output_bias_on_device(fake_gpu):
    from rnnlab.models import RNNLM

    ids = np.array([0, 0, 1, 3, 3, 3])
    host = RNNLM(5, 4, 4, rng=0)
    host.init_output_bias(ids)
    device = RNNLM(5, 4, 4, rng=0, device="gpu")
    device.init_output_bias(fake_gpu.asarray(ids))  # ids on the device are counted on the host
    np.testing.assert_array_equal(to_numpy(device.decoder.params["bias"]),
                                  host.decoder.params["bias"])


def test_module_to_moves_and_keeps_ties(fake_gpu):
    from rnnlab.models import RNNLM

    model = RNNLM(20, 8, 8, tie_weights=True, rng=0)
    model.to("gpu")
    assert model.decoder.params["weight"] is model.embedding.params["weight"]
    logits = model.forward(fake_gpu.asarray(np.array([[1, 2, 3]])))
    assert type(logits).__module__ == "cupy_fake"
    model.to("cpu")
    assert type(model.decoder.params["weight"]) is np.ndarray
