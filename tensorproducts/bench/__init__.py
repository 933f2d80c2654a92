"""Benchmarks of the tensor-product variants (``facet bench tp``); the library never imports them.

:mod:`.cases` (settings, :class:`~.cases.BenchConfig`), :mod:`.measure` (one case, interleaved),
:mod:`.harness` (the run, cost-vs-L slopes), :mod:`.runs` (merging runs), the report
(:mod:`.report` with :mod:`.verdicts`, :mod:`.coverage`, :mod:`.plots`, :mod:`.format`),
:mod:`.main` (one ``facet bench tp`` invocation) and the research code beside ours
(:mod:`.pof` with :mod:`.pof_pairing`, :mod:`.pof_interactability`, :mod:`.pof_interleaved`).
"""
