"""Engine.load / run / classify / plan on small models, and the whole network against PyTorch."""
import numpy as np
import pytest
import torch
from PIL import Image

from mbv2_engine import Engine, Prediction, reference
from mbv2_engine import format as wformat
from mbv2_engine.arch import build_arch, layer_shapes
from mbv2_engine.errors import DeviceError
from mbv2_engine.export import export_from_torch, random_model
from tolerances import assert_close


@pytest.fixture(scope="module")
def torch_and_engine(tmp_path_factory):
    """A random calibrated width-1.0 model, saved as a torch state dict and exported with --from-torch."""
    model = random_model(seed=3, width_mult=1.0, num_classes=1000, size=(224, 224), progress=False)
    d = tmp_path_factory.mktemp("net")
    torch.save(model.state_dict(), d / "state.pth")
    path = export_from_torch(d / "state.pth", d / "m.npz")
    return model, Engine.load(path, threads=1)


def test_whole_network_matches_pytorch_on_32_inputs(torch_and_engine):
    model, engine = torch_and_engine
    x = np.random.default_rng(0).standard_normal((32, 3, 224, 224), dtype=np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    ours = engine.run(x)
    assert ours.shape == (32, 1000) and ours.dtype == np.float32
    np.testing.assert_array_equal(ours.argmax(1), ref.argmax(1))
    assert_close(ours, ref, "network_f32_vs_torch")


def test_image_inputs_agree(small_engine, sample_rgb, tmp_path):
    path = tmp_path / "img.png"
    Image.fromarray(sample_rgb).save(path)
    from_array = small_engine.run(sample_rgb)
    assert from_array.shape == (small_engine.num_classes,) and from_array.dtype == np.float32
    np.testing.assert_array_equal(small_engine.run(Image.fromarray(sample_rgb)), from_array)
    np.testing.assert_array_equal(small_engine.run(path), from_array)
    np.testing.assert_array_equal(small_engine.run(str(path)), from_array)


def test_image_equals_its_preprocessed_batch(small_engine, sample_rgb):
    batch = small_engine.preprocess(sample_rgb)
    assert batch.shape == (1, 3, *small_engine.input_size) and batch.dtype == np.float32
    np.testing.assert_array_equal(small_engine.run(batch)[0], small_engine.run(sample_rgb))


def test_batch_rows_are_independent(small_engine):
    x = np.random.default_rng(1).standard_normal((3, 3, 40, 56), dtype=np.float32)
    whole = small_engine.run(x)
    assert whole.shape == (3, small_engine.num_classes)
    for i in range(3):
        assert_close(small_engine.run(x[i:i + 1])[0], whole[i], "same_engine_rerun")


def test_torch_cpu_tensor_batch_accepted(small_engine):
    x = np.random.default_rng(2).standard_normal((2, 3, 32, 32), dtype=np.float32)
    np.testing.assert_array_equal(small_engine.run(torch.from_numpy(x)), small_engine.run(x))


def test_classify_top_k(small_engine, sample_rgb):
    preds = small_engine.classify(sample_rgb, top_k=3)
    assert len(preds) == 3 and all(isinstance(p, Prediction) for p in preds)
    probs = [p.probability for p in preds]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    logits = small_engine.run(sample_rgb)
    assert preds[0].index == int(np.argmax(logits)) and preds[0].label == f"class {preds[0].index}"


def test_classify_batch_and_large_k(small_engine):
    x = np.random.default_rng(3).standard_normal((2, 3, 32, 32), dtype=np.float32)
    preds = small_engine.classify(x, top_k=50)
    assert len(preds) == 2 and all(len(p) == small_engine.num_classes for p in preds)
    assert abs(sum(p.probability for p in preds[0]) - 1) < 1e-6


def test_version_2_head_runs_and_classify_applies_the_activation(head_model_path, sigmoid_model_path):
    """`run` returns logits before the output activation; `classify` applies softmax or sigmoid."""
    engine = Engine.load(head_model_path, threads=1)
    x = np.random.default_rng(8).standard_normal((3, 3, 64, 70), dtype=np.float32)
    arrays, meta, arch = wformat.load(head_model_path)
    logits = engine.run(x)
    assert_close(logits, reference.forward(arrays, arch, x, meta["padding"], meta["hidden"]), "f32_network_vs_f64")
    assert engine.activation == "softmax"
    softmax = np.exp(logits - logits.max(1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    top = engine.classify(x, top_k=engine.num_classes)
    for row, preds in zip(softmax, top):
        assert [p.index for p in preds][:1] == [int(np.argmax(row))]
        np.testing.assert_allclose([p.probability for p in preds], np.sort(row)[::-1], rtol=1e-6)
    sigmoid = Engine.load(sigmoid_model_path, threads=1)
    p = sigmoid.classify(x[:1], top_k=3)[0]
    z = sigmoid.run(x[:1])[0]
    np.testing.assert_allclose([q.probability for q in p], np.sort(1 / (1 + np.exp(-z)))[::-1][:3], rtol=1e-6)
    names = [L["name"] for L in engine.plan_for(64, 70).layers]
    assert names[-4:] == ["head", "hidden0", "hidden1", "classifier"]
    assert [row["name"] for row in engine.profile(64, 70, repeats=1)][-1] == "block16+head+classifier"


def test_gpu_refuses_version_2_features(head_model_path):
    with pytest.raises(DeviceError, match="the GPU path runs MobileNetV2 with 'torch' or 'same' padding and no "
                                          "hidden Dense layers"):
        Engine.load(head_model_path, device="cuda")


def test_labels_from_metadata(labelled_engine, sample_rgb):
    top = labelled_engine.classify(sample_rgb, top_k=1)[0]
    assert top.label == labelled_engine.labels[top.index]


def test_plan_reports_layers_and_memory(small_engine):
    plan = small_engine.plan_for(224, 224)
    arch = small_engine.arch
    assert [L["name"] for L in plan.layers] == [s.name for s in layer_shapes(arch, 224, 224)]
    assert plan.macs == sum(s.macs for s in layer_shapes(arch, 224, 224))
    assert 0 < plan.ring_bytes < plan.arena_bytes < plan.largest_expanded_bytes
    text = str(plan)
    assert "block16" in text and "arena" in text


def test_width_1_at_224_has_the_published_300_8_million_multiply_adds():
    arch = build_arch(1.0)
    assert sum(s.macs for s in layer_shapes(arch, 224, 224)) == 300_774_272


def test_threads_argument_accepted(small_model_path):
    x = np.random.default_rng(4).standard_normal((1, 3, 64, 64), dtype=np.float32)
    one = Engine.load(small_model_path, threads=1).run(x)
    assert_close(Engine.load(small_model_path, threads=2).run(x), one, "thread_count_change")


def test_profile_covers_every_block_and_all_the_work(small_engine):
    rows = small_engine.profile(48, 40, repeats=2)
    arch = small_engine.arch
    assert len(rows) == len(arch.blocks)
    assert rows[0]["name"] == "stem+block0" and rows[-1]["name"] == "block16+head+classifier"
    assert sum(r["macs"] for r in rows) == sum(s.macs for s in layer_shapes(arch, 48, 40))
    assert all(r["ms"] > 0 and r["gflops"] > 0 for r in rows)
