"""The `snapfind` command: the composition root that wires retrieval, index and bot."""

from retrieval.blas_kernels import prefer_native_kernels

prefer_native_kernels()  # before numpy and faiss load OpenBLAS (retrieval/blas_kernels.py)
