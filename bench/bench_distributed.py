"""Data-parallel training over MPI, as `nnfast bench --only distributed` (one command, < 2 min):

    NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/bench_distributed.py [--quick]

It launches `mpiexec -n 2` itself: the 784-1024-1024-10 Adam step on 2 ranks x 1 thread (global
batch 256 = 2 x 128) against 1 process x 2 threads, nnfast's bucketed gradient allreduce against a
raw mpi4py Allreduce of the same bytes, and the fraction of the allreduce overlapped with backward.
See python/nnfast/bench/distributed.py for the method.
"""
import sys

from nnfast.bench.distributed import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
