"""GEMM benchmark (see nnfast/bench/gemm.py): python bench/bench_gemm.py [--quick] [--json PATH]."""
import sys

from nnfast.bench.gemm import main

sys.exit(main())
