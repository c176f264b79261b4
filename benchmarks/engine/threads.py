"""Thread limits of a run: torch intra-op threads and the BLAS/OpenMP threads of NumPy and co."""

from __future__ import annotations


def limit_threads(threads: int):
    """Give this process ``threads`` torch intra-op threads and as many NumPy BLAS/OpenMP threads.

    NumPy's BLAS (OpenBLAS) otherwise starts one thread per core whatever torch uses: GEM's QP
    (Avalanche's ``solve_quadprog``: NumPy dot products) then ran on both cores of each of 2 workers.
    Returns a callable that restores the previous limits.
    """
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    limits = threadpool_limits(limits=threads)  # every BLAS/OpenMP library loaded so far

    def restore() -> None:
        limits.restore_original_limits()
        torch.set_num_threads(before)

    return restore
