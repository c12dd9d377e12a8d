#!/usr/bin/env bash
# Same-run A/B of the per-op dispatch cost of two trees (process CPU time, 1 thread, best-of):
#   bench/overhead_ab.sh BASE_PYTHONPATH BASE_EXT_DIR NEW_PYTHONPATH NEW_EXT_DIR [rounds] [case ...]
# e.g. bench/overhead_ab.sh /tmp/base/python /tmp/base/build/dev python build/dev 3 relu linear add
set -e
bp=$1 be=$2 np_=$3 ne=$4 rounds=${5:-3}
shift 5 || shift $#
here=$(cd "$(dirname "$0")" && pwd)
for r in $(seq "$rounds"); do
  echo "# round $r: base"; OMP_WAIT_POLICY=passive PYTHONPATH=$bp NNFAST_EXT_DIR=$be python "$here/overhead_min.py" --cpu "$@"
  echo "# round $r: new";  OMP_WAIT_POLICY=passive PYTHONPATH=$np_ NNFAST_EXT_DIR=$ne python "$here/overhead_min.py" --cpu "$@"
done
