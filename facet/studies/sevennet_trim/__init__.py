"""SevenNet-0 trimming study (docs/trimming.md, docs/benchmarks/sevennet_trim/).

Each interaction layer's radial MLP of SevenNet-0 is replaced by a linear map on its radial
basis, fitted and fine-tuned against the original model. Modules, from the bottom up:
:mod:`.radial` (the model's radial MLPs and the linear map that replaces them), :mod:`.evaluate`
(structures, predictions, relaxations), :mod:`.outfit` (fit to each convolution's output),
:mod:`.tune` (distillation fine-tune), :mod:`.basis_md` and :mod:`.report` (markdown, plots),
:mod:`.basis` (how many radial functions a linear map needs) and :mod:`.trim` (the run).

Run in the teacher environment (torch, sevenn), from the repository root::

    OMP_NUM_THREADS=1 python -m facet.studies.sevennet_trim.trim --save ~/models/7net-0-trimmed.pt
    OMP_NUM_THREADS=1 python -m facet.studies.sevennet_trim.basis

Torch and sevenn are imported inside the functions that need them, so every module imports
(and its pure logic is tested) without them.
"""
