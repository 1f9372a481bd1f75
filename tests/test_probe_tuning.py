"""nprobe measured at build time: raised until the catalog's own neighbours are found, kept
where near-alike groups already sit in one list, recorded in the file and the manifest."""

from pathlib import Path

import faiss
import numpy as np
import pytest

from index import choice, probe_tuning, vector_writer
from index.build import BuildOptions, build_index
from index.probe_tuning import K, ProbeCheck, RunningTopK
from index.vector_writer import write_index
from retrieval.extractor import Extractor
from retrieval.manifest import MANIFEST, VECTORS, Manifest
from tests.synthetic import write_shapes_catalog


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def spread(n: int = 4000, dim: int = 16) -> np.ndarray:
    """No groups at all: a query's neighbours fall in many lists."""
    return unit(np.random.default_rng(0).standard_normal((n, dim)))


def grouped(groups: int = 64, per_group: int = 40, dim: int = 16) -> np.ndarray:
    """Near-alike groups (variants of one product): a query's neighbours share its list."""
    rng = np.random.default_rng(1)
    rows = np.repeat(rng.standard_normal((groups, dim)), per_group, axis=0)
    return unit(rows + 0.03 * rng.standard_normal(rows.shape))[rng.permutation(len(rows))]


def chunked(rows: np.ndarray, size: int = 500):
    return lambda: (rows[start : start + size] for start in range(0, len(rows), size))


def exact_recall(index: faiss.Index, rows: np.ndarray, ids: np.ndarray) -> float:
    """Recall@K of the catalog rows `ids` as queries, their own row left out, by brute force."""
    truth = np.argsort(-(rows[ids] @ rows.T), axis=1)[:, : K + 1]
    _, found = index.search(rows[ids], K + 1)
    shares = []
    for f, t, own in zip(found, truth, ids, strict=True):
        others = [[i for i in row.tolist() if i != own][:K] for row in (f, t)]
        shares.append(len(set(others[0]) & set(others[1])) / K)
    return float(np.mean(shares))


def test_the_running_top_k_is_the_exact_top_k() -> None:
    rows = spread(3000)
    queries = rows[:7] + 0.1
    running = RunningTopK(queries, 6)
    for start in range(0, len(rows), 256):
        running.update(start, rows[start : start + 256])
    np.testing.assert_array_equal(running.ids, np.argsort(-(queries @ rows.T), axis=1)[:, :6])


@pytest.mark.parametrize(("rows", "raised"), [(spread(), True), (grouped(), False)])
def test_nprobe_rises_only_where_the_neighbours_spread(
    tmp_path: Path, rows: np.ndarray, raised: bool
) -> None:
    path = tmp_path / "vectors.faiss"
    written = write_index(path, "IVF64,Flat", len(rows), chunked(rows), "nprobe=1")
    index = faiss.read_index(str(path))
    nprobe = faiss.extract_index_ivf(index).nprobe
    assert written.nprobe == nprobe and (nprobe > 1) == raised
    assert written.recall >= probe_tuning.TARGET_RECALL
    if raised:  # half as many lists miss the target on the same queries
        faiss.extract_index_ivf(index).nprobe = nprobe // 2
        picks = vector_writer._picks(len(rows), len(rows), seed=0)  # the writer's sample
        check = ProbeCheck.from_sample(rows[picks], picks, seed=0)  # and its queries
        assert exact_recall(index, rows, check.query_ids) < probe_tuning.TARGET_RECALL


def test_the_measured_recall_is_brute_force_recall() -> None:
    rows = spread()
    index = faiss.index_factory(rows.shape[1], "IVF64,Flat", faiss.METRIC_INNER_PRODUCT)
    index.train(rows)
    index.add(rows)
    index.nprobe = 2
    check = ProbeCheck.from_sample(rows, np.arange(len(rows)), seed=0)
    for start in range(0, len(rows), 700):
        check.truth.update(start, rows[start : start + 700])
    assert check.recall(index) == pytest.approx(exact_recall(index, rows, check.query_ids))


def test_an_unreachable_target_stops_at_half_the_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(probe_tuning, "TARGET_RECALL", 1.01)
    rows = spread()
    written = write_index(tmp_path / "v.faiss", "IVF64,Flat", len(rows), chunked(rows), "nprobe=4")
    assert written.nprobe == 32 and written.recall < 1.01


def test_indexes_without_lists_are_not_tuned(tmp_path: Path) -> None:
    rows = spread(500)
    written = write_index(tmp_path / "v.faiss", "HNSW32,Flat", len(rows), chunked(rows))
    assert written.nprobe == 0 and written.recall is None


def test_lists_are_not_widened_when_the_codes_lose_the_recall(tmp_path: Path) -> None:
    """4-bit codes cannot tell near-alike variants apart: more lists would only cost time."""
    rows = grouped()
    written = write_index(tmp_path / "v.faiss", "IVF16,SQ4", len(rows), chunked(rows), "nprobe=1")
    assert written.nprobe == 1 and written.recall < 0.5


def test_a_build_records_the_tuned_nprobe_and_the_measured_recall(
    tmp_path: Path, tiny_extractor: Extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """12 images stand in for a million (one list): the manifest says what the writer measured."""
    monkeypatch.setattr(choice, "EXACT_FLOATS", 0)
    monkeypatch.setattr(choice, "MIN_LISTS", 0)
    catalog = write_shapes_catalog(tmp_path / "catalog", per_category=4)
    report = build_index(catalog, tmp_path / "idx", tiny_extractor, BuildOptions(progress=False))
    manifest = Manifest.read(report.release / MANIFEST)
    index = faiss.read_index(str(report.release / VECTORS), faiss.IO_FLAG_MMAP_IFC)
    assert manifest.nprobe == faiss.extract_index_ivf(index).nprobe == 1
    assert 0 < manifest.extra["ann_recall_at_5"] <= 1
