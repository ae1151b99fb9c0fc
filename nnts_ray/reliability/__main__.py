"""python -m nnts_ray.reliability [--out RELIABILITY.md] [--only GROUP|ID|GLOB,...] [--list]"""

from __future__ import annotations

import argparse
import sys

from nnts_ray.reliability.cases import all_cases
from nnts_ray.reliability.harness import Harness, select
from nnts_ray.reliability.report import markdown, row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnts_ray.reliability", description=__doc__)
    parser.add_argument("--out", help="write the markdown table here (default: RELIABILITY.md when every case runs)")
    parser.add_argument("--only", help="comma-separated groups, case ids or globs, e.g. finished,values/k=*")
    parser.add_argument("--jobs", type=int, default=4, help="case processes at once (default 4)")
    parser.add_argument("--heavy", type=int, default=2, help="of those, processes running Ray (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (its path is printed)")
    parser.add_argument("--wait-for-end", action="store_true",
                        help="let bad input that starts Ray run to its end (default: stop it there: the verdict is "
                             "settled, the rest costs minutes)")
    parser.add_argument("--list", action="store_true", help="list the case ids and exit")
    args = parser.parse_args(argv)

    cases = select(all_cases(), args.only)
    if args.list or not cases:
        print("\n".join(f"{c.group:10} {c.id}" for c in cases) or f"no case matches {args.only!r}")
        return 0 if cases else 2
    harness = Harness(jobs=args.jobs, heavy=args.heavy, wait_for_end=args.wait_for_end)
    harness.log(f"{len(cases)} cases; scratch directory {harness.root}")
    try:
        outcomes = harness.run(cases)
    finally:
        if not args.keep:
            harness.cleanup()
    command = " ".join(["python -m nnts_ray.reliability", *sys.argv[1:]] if argv is None else
                       ["python -m nnts_ray.reliability", *argv])
    text = markdown(outcomes, harness.seconds(), command)
    out = args.out or (None if args.only else "RELIABILITY.md")
    if out:
        with open(out, "w") as f:
            f.write(text)
    else:
        print("\n".join(row(o) for o in outcomes))
    bad = [o for o in outcomes if not o.ok]
    print(f"{len(outcomes)} cases, {len(outcomes) - len(bad)} ok, {len(bad)} misbehaved, "
          f"{harness.seconds():.0f} s" + (f"; written to {out}" if out else ""), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
