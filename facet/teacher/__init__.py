"""Teacher labelling: the generators of the SevenNet-0-labelled datasets (``data/sample``,
``data/distill``, ``data/distill2``).

These modules run in the separate teacher environment (torch CPU + ``sevenn`` + pymatgen, see
``scripts/requirements-teacher.txt``, with facet installed ``--no-deps``); they never import JAX
or the rest of facet, and the structure builders (:mod:`facet.teacher.structures`,
:mod:`facet.teacher.catalog`) need only ASE and pymatgen, so their tests run in facet's own
environment.
"""
