"""The extractor: unit vectors, one compiled graph, honest fingerprints, the registry's numbers."""

from pathlib import Path

import numpy as np
import pytest

from retrieval.backbones import BACKBONES, get_backbone
from retrieval.errors import ConfigError, WeightsUnavailableError
from retrieval.extractor import Extractor, resolve_weights
from tests.synthetic import draw_item


def images(n: int) -> list[np.ndarray]:
    return [np.asarray(draw_item("circles", seed)) for seed in range(n)]


def test_vectors_are_unit_float32_rows(tiny_extractor: Extractor) -> None:
    vectors = tiny_extractor.embed(images(5), batch_size=2)
    assert vectors.shape == (5, 1280) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(tiny_extractor.embed_one(images(1)[0]), vectors[0], atol=1e-5)


def test_graph_is_traced_once_whatever_the_batch(tiny_extractor: Extractor) -> None:
    tiny_extractor.embed(images(3), batch_size=3)
    tiny_extractor.embed(images(5), batch_size=4)  # batches of 4 and 1
    tiny_extractor.embed_one(images(1)[0])
    assert tiny_extractor._forward.experimental_get_tracing_count() == 1


def test_random_weights_are_the_same_in_every_build(tiny_extractor: Extractor) -> None:
    again = Extractor("efficientnetb0", "none", 64)
    image = images(1)[0]
    np.testing.assert_allclose(again.embed_one(image), tiny_extractor.embed_one(image), atol=1e-5)
    assert again.fingerprint == tiny_extractor.fingerprint
    assert tiny_extractor.fingerprint.weights_id == "none:seed1234"


def test_fingerprint_and_registry_match_the_built_model(tiny_extractor: Extractor) -> None:
    spec = get_backbone("EfficientNetB0")
    assert tiny_extractor.param_count == spec.params
    assert tiny_extractor.fingerprint.dim == spec.dim
    assert tiny_extractor.fingerprint.input_size == 64


def test_packaged_weights_are_identified_by_their_hash(lite0_extractor: Extractor) -> None:
    assert lite0_extractor.fingerprint.weights_id.startswith("imagenet:sha256:")
    assert lite0_extractor.param_count == BACKBONES["efficientnet-lite0"].params
    assert lite0_extractor.input_size == 224


def test_weights_file_identity_and_missing_file(tmp_path: Path) -> None:
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"pretend weights")
    _, identity = resolve_weights(get_backbone("resnet50"), str(weights))
    assert identity.startswith("sha256:") and len(identity) == 23
    with pytest.raises(ConfigError, match="not found"):
        resolve_weights(get_backbone("resnet50"), str(tmp_path / "missing.h5"))


def test_bad_backbone_or_size_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown backbone 'alexnet'.*efficientnetb7"):
        Extractor("alexnet", "none")
    with pytest.raises(ConfigError, match="at least 75 px"):
        Extractor("inceptionv3", "none", 64)


@pytest.mark.slow  # builds the full 64M-parameter graph (about a minute); CI runs it
def test_efficientnet_b7_graph_gives_2560_features() -> None:
    b7 = Extractor("efficientnetb7", "none", 64)
    assert b7.model_name == "efficientnetb7"
    assert b7.param_count == BACKBONES["efficientnetb7"].params
    vector = b7.embed_one(images(1)[0])
    assert vector.shape == (2560,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_weights_that_cannot_be_fetched_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    def offline(*args: object, **kwargs: object) -> None:
        raise Exception("URL fetch failure on https://storage.googleapis.com/...")  # as Keras does

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline)
    with pytest.raises(WeightsUnavailableError) as caught:
        Extractor("resnet50", "imagenet", 32)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(
        "could not download the ImageNet weights of resnet50 (URL fetch failure"
    )
    assert "SNAPFIND_BACKBONE=efficientnet-lite0" in message and "SNAPFIND_WEIGHTS" in message
