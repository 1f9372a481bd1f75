"""Search among allowed vectors only (a category), never returning fewer than exist.

An approximate index with a selector only looks where its query would look anyway: IVF scans
`nprobe` lists, HNSW walks `efSearch` nodes. A small category whose vectors sit in other lists,
or far along the graph, then comes back short — three sofas shown when the shop has twenty.
So: few allowed vectors are scored exactly (reconstructed, one matrix product); many are
searched approximately with the selector, widening nprobe / efSearch until `fetch` are found
or the whole index has been looked at. Parameters travel per call: the index's own settings,
shared by every request, are never changed.
"""

import faiss
import numpy as np

EXACT_BELOW = 8192  # allowed vectors scored exactly: 8192 × 2560 floats = 80 MiB at most


def search_within(
    index: faiss.Index, query: np.ndarray, fetch: int, allowed: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(1, fetch) scores and ids of the best `allowed` vectors for a (1, D) query; -1 pads.

    `allowed` None: the whole index. Reconstruction needs IVF indexes to have a direct map
    (`CatalogIndex` makes one when it opens).
    """
    if allowed is None:
        return index.search(query, fetch)
    allowed = np.asarray(allowed, dtype=np.int64)
    if allowed.size <= EXACT_BELOW:
        return _exact(index, query, fetch, allowed)
    return _widening(index, query, fetch, allowed)


def _exact(
    index: faiss.Index, query: np.ndarray, fetch: int, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    vectors = index.reconstruct_batch(allowed)  # (A, D)
    scores = vectors @ query[0]  # (A,)
    take = min(fetch, allowed.size)
    top = np.argpartition(-scores, take - 1)[:take] if take else np.empty(0, dtype=np.int64)
    top = top[np.argsort(-scores[top], kind="stable")]
    out_scores = np.full((1, fetch), -np.inf, dtype=np.float32)
    out_ids = np.full((1, fetch), -1, dtype=np.int64)
    out_scores[0, :take] = scores[top]
    out_ids[0, :take] = allowed[top]
    return out_scores, out_ids


def _widening(
    index: faiss.Index, query: np.ndarray, fetch: int, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Selector search, doubling the probes until `fetch` vectors are found or none are left."""
    selector = faiss.IDSelectorBatch(allowed)
    want = min(fetch, allowed.size)
    refine = _refine_of(index)
    if refine is not None:  # the selector goes to the base index; the re-rank follows it
        index = refine.base_index
    ivf = faiss.try_extract_index_ivf(index)
    hnsw = _hnsw_of(index)
    if ivf is not None:
        width, most = max(1, ivf.nprobe), ivf.nlist
    elif hnsw is not None:
        width, most = max(hnsw.hnsw.efSearch, fetch), max(fetch, index.ntotal)
    else:
        width = most = 0  # exact (or wrapped) index: one search with the selector
    while True:
        if ivf is not None:
            params = faiss.SearchParametersIVF(sel=selector, nprobe=width)
        elif hnsw is not None:
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=width)
        else:
            params = faiss.SearchParameters(sel=selector)
        if refine is not None:
            params = faiss.IndexRefineSearchParameters(
                k_factor=refine.k_factor, base_index_params=params
            )
            scores, ids = refine.search(query, fetch, params=params)
        else:
            scores, ids = index.search(query, fetch, params=params)
        if int((ids[0] >= 0).sum()) >= want or width >= most:
            return scores, ids
        width = min(most, width * 2)


def _refine_of(index: faiss.Index) -> faiss.IndexRefine | None:
    """The index as a refine index (approximate base + exact re-rank) if it is one."""
    index = faiss.downcast_index(index)
    return index if isinstance(index, faiss.IndexRefine) else None


def _hnsw_of(index: faiss.Index) -> faiss.IndexHNSW | None:
    """The index as HNSW if it is one (unwrapped: wrappers take other parameter types)."""
    index = faiss.downcast_index(index)
    return index if isinstance(index, faiss.IndexHNSW) else None
