"""python -m nnts_ray.reproduction --run RUN_DIR [--seeds RUN_DIR ...] [--mnist-root DIR] -o REPRODUCTION.md

Writes the reproduction report of arXiv 2012.03793 (issue 14) from finished run directories, with its
figures as PNG in a folder beside it, and records this command line in the report."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from nnts_ray.reproduction.report import Inputs, write
from nnts_ray.reproduction.runs import ReproductionError, load_run

PROG = "python -m nnts_ray.reproduction"


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[1])
    p.add_argument("--run", required=True, help="the main run directory (the paper's experiment)")
    p.add_argument("--seeds", nargs="+", default=[], metavar="RUN_DIR",
                   help="runs that differ only in model.train.seed (the main run may be one of them)")
    p.add_argument("--mnist-root", help="folder with the data set's test files (MNIST: t10k-*-idx*-ubyte[.gz]); "
                                        "without it the test accuracy is not evaluated")
    p.add_argument("--model", help="the model to report when a run holds several")
    p.add_argument("-o", "--output", default="REPRODUCTION.md", help="the markdown file to write")
    p.add_argument("--figures", help="folder for the PNGs (default: beside the markdown, named after it in lower case)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    output = Path(args.output)
    try:
        run = load_run(args.run, args.model)
        seed_runs = [load_run(s, args.model) for s in args.seeds]
        inp = Inputs(run, seed_runs, output, Path(args.figures) if args.figures else output.with_name(output.stem.lower()),
                     " ".join([PROG, *map(shlex.quote, argv)]), args.mnist_root)
        print(write(inp))
    except ReproductionError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
