"""Every benchmark section, as `nnfast bench`: python bench/run_all.py [--quick] [--json PATH]."""
import argparse
import sys

from nnfast.bench import main

p = argparse.ArgumentParser()
p.add_argument("--quick", action="store_true")
p.add_argument("--json", default=None)
p.add_argument("--only", default=None)
a = p.parse_args()
sys.exit(main(quick=a.quick, json_path=a.json, only=a.only))
