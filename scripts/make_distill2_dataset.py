"""Label the broad distillation set data/distill2 with SevenNet-0 (see facet.teacher.distill2).

Teacher environment (scripts/requirements-teacher.txt, then `pip install --no-deps -e .`):

    OMP_NUM_THREADS=1 python scripts/make_distill2_dataset.py --out data/distill2 --workers 2 \\
        --cache runs/distill2_cache

Resumable: shards already in --out are kept; run it again to go on.
"""

import argparse
import time

from facet.teacher.distill2 import run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/distill2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--cache", default=None, help="folder for per-material results (resume)")
    ap.add_argument("--max-shards", type=int, default=None, help="label at most N new shards")
    ap.add_argument("--stop-after-min", type=float, default=None,
                    help="start no new shard after this many minutes")
    args = ap.parse_args(argv)
    stop = None if args.stop_after_min is None else time.time() + 60 * args.stop_after_min
    return run(args.out, args.seed, args.workers, args.cache, args.max_shards, stop)


if __name__ == "__main__":
    raise SystemExit(main())
