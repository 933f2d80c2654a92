"""Cost split of one facet-s training step: :mod:`facet.bench.train_step_profile`.

    taskset -c 0 python scripts/profile_train_step.py --data data/distill --rounds 7
"""

from facet.bench.train_step_profile import main

if __name__ == "__main__":
    main()
