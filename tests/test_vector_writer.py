"""The streaming index writer: chunks in, the same index out as adding one matrix."""

from pathlib import Path

import faiss
import numpy as np
import pytest

from index import vector_writer
from index.vector_writer import write_index
from retrieval.vector_chunks import rows_at


def _rows(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _chunks_of(rows: np.ndarray, size: int):
    def chunks():
        for start in range(0, len(rows), size):
            yield rows[start : start + size]

    return chunks


@pytest.mark.parametrize("key", ["Flat", "IVF8,Flat", "SQ8"])
def test_streamed_index_holds_every_row_in_order(tmp_path: Path, key: str) -> None:
    rows = _rows(1000)
    path = tmp_path / "vectors.faiss"
    write_index(path, key, len(rows), _chunks_of(rows, 96))
    index = faiss.read_index(str(path))
    assert index.ntotal == len(rows)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.make_direct_map()
    np.testing.assert_allclose(index.reconstruct_n(0, len(rows)), rows, atol=0.02)


def test_training_sample_is_drawn_from_all_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vector_writer, "TRAIN_ROWS", 50)
    rows = np.arange(1000, dtype=np.float32)[:, None].repeat(4, axis=1)  # row i = [i, i, i, i]
    picks = vector_writer._picks(len(rows), 50, seed=0)
    sample = rows_at(_chunks_of(rows, 64), picks)  # as write_index draws its training sample
    assert sample.shape == (50, 4)
    assert len(set(sample[:, 0])) == 50 and sample[:, 0].max() > 500  # distinct, not a prefix
    np.testing.assert_array_equal(sample[:, 0], picks)  # in the picks' order, which is random:
    assert sample[:10, 0].max() > 500  # the sample's first rows are a uniform draw too


def test_lists_train_on_the_whole_sample_and_codes_on_a_part(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(vector_writer, "TRAIN_ROWS", 300)
    sample = _rows(1200)
    whole = vector_writer.new_index(16, "IVF16,SQ8")
    whole.train(sample)  # FAISS's own: k-means, then the codes on every row's residual
    split = vector_writer.new_index(16, "IVF16,SQ8")
    assert vector_writer.train_lists(split, sample) and not split.is_trained
    split.train(sample[:300])  # the codes alone: the lists stay as k-means left them
    centroids = [faiss.extract_index_ivf(i).quantizer.reconstruct_n(0, 16) for i in (whole, split)]
    np.testing.assert_array_equal(*centroids)
    assert split.is_trained and faiss.extract_index_ivf(split).quantizer.ntotal == 16
    assert not vector_writer.train_lists(vector_writer.new_index(16, "IVF16,SQ8"), sample[:300])


def test_a_large_sample_trains_lists_and_codes_in_two_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vector_writer, "TRAIN_ROWS", 100)
    monkeypatch.setattr(vector_writer, "TRAIN_PER_LIST", 40)  # 16 lists: 640 k-means rows
    rows = _rows(2000)
    reads = []

    def chunks():
        reads.append(1)
        return _chunks_of(rows, 256)()

    write_index(tmp_path / "v.faiss", "IVF16,SQ8", len(rows), chunks)
    index = faiss.read_index(str(tmp_path / "v.faiss"))
    assert index.ntotal == len(rows) and faiss.extract_index_ivf(index).nlist == 16
    assert len(reads) == 5  # shape, k-means sample, codes sample, list sizes, rows


def test_a_short_source_is_an_error(tmp_path: Path) -> None:
    rows = _rows(100)
    with pytest.raises(ValueError, match="expected 200"):
        write_index(tmp_path / "v.faiss", "Flat", 200, _chunks_of(rows, 32))


def test_search_settings_travel_in_the_file(tmp_path: Path) -> None:
    rows = _rows(300)
    path = tmp_path / "vectors.faiss"
    write_index(path, "HNSW32,SQ8", len(rows), _chunks_of(rows, 100), "efSearch=256")
    assert faiss.read_index(str(path)).hnsw.efSearch == 256
