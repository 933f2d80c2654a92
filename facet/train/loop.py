"""The training loop behind ``facet train``: data, E0 fit, optimiser, validation, checkpoints.

One global step = one optimiser update on a global batch of one padded batch per device (see
:mod:`facet.train.step` and :mod:`facet.train.parallel`). The run is a pure function of its
configuration: the data plan depends on ``(data.seed, epoch)``, the parameters on
``model.seed``, so a run resumed from a checkpoint at step ``s`` (parameters, optimiser state,
EMA, RNG key and step restored; data position recomputed from ``s`` and checked) continues
exactly as the uninterrupted run would have.

:class:`Trainer` is one run. Building it prepares everything (model and data through
:mod:`facet.train.prepare`, batchers, optimiser, state, the restored checkpoint when resuming,
the compiled steps and the logs); its named steps are :meth:`Trainer.step` (one optimiser
update), :meth:`Trainer.log_train` / :meth:`Trainer.log` (a row of ``log.csv`` and
TensorBoard), :meth:`Trainer.validate` and :meth:`Trainer.checkpoint`; :meth:`Trainer.run`
calls them in order until the last step. :func:`train` is the public entry point.

Outputs in ``run.out_dir``: ``config.yaml``, ``checkpoints/step_*/``, ``best.json`` (the step of
the lowest validation loss, whose checkpoint pruning never removes), ``log.csv``, its plot
``training_curve.png`` (written when the run stops) and TensorBoard events in ``tb/``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np
import yaml
from tqdm import tqdm

from ..compile_cache import enable_compile_cache
from ..elements import numbers_of, supported_elements_of_checkpoint, symbols_of
from .batching import Budget, EpochBatcher
from .checkpoint import (
    atomic_write_text,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from .config import ConfigError, TrainConfig, check_data_paths
from .e0 import fit_new_atomic_energies
from .fingerprint import (
    content_fingerprint,
    finetuned_elements,
    size_fingerprint,
    training_elements,
)
from .logs import CsvLog, EventWriter, plot_training_curve
from .loss import combine_loss, finalize_metrics
from .optim import make_optimizer, make_schedule
from .parallel import (
    host_slots,
    make_mesh,
    maybe_initialize_distributed,
    put_batch,
    replicate,
    to_host,
)
from .prepare import prepare_model_and_data, set_reference_energies
from .step import TrainState, init_state, make_step_fns, split_model

__all__ = ["TrainingDiverged", "Trainer", "train", "LOG_COLUMNS", "content_fingerprint",
           "training_elements"]

LOG_COLUMNS = [
    "step", "epoch", "kind", "lr", "loss", "grad_norm", "energy_mae", "energy_rmse",
    "forces_mae", "forces_rmse", "stress_mae", "stress_rmse", "structures_per_s", "atoms_per_s",
    "wall_s",
]


class TrainingDiverged(RuntimeError):
    """The loss, the gradients or the weights became NaN/inf; the last good checkpoint is kept
    and nothing non-finite is written."""


def _finite_or_raise(host: dict, step: int, last_good) -> None:
    """Raise TrainingDiverged if any weight (parameters, EMA, optimiser state, E0s) is NaN/inf:
    such a checkpoint is never written."""
    for name in ("params", "ema", "opt_state", "rest"):
        for kp, leaf in jax.tree_util.tree_flatten_with_path(host[name])[0]:
            a = np.asarray(leaf)
            if np.issubdtype(a.dtype, np.inexact) and not np.all(np.isfinite(a)):
                raise TrainingDiverged(
                    f"non-finite weights ({name}{jax.tree_util.keystr(kp)}) at step {step}; "
                    f"no checkpoint written. The last good checkpoint is "
                    f"{last_good or 'none (none saved)'}; check the optim settings"
                )


def _templates(state: TrainState, rest) -> dict:
    """The checkpointed trees (their layout on disk: ``params``, ``opt_state``, ``ema``,
    ``rest``, ``counters``)."""
    return {"params": state.params, "opt_state": state.opt_state, "ema": state.ema, "rest": rest,
            "counters": {"step": state.step, "rng": state.rng}}


def _check_out_dir(cfg: TrainConfig, *, resume: bool, read_data: bool) -> Path:
    """``run.out_dir``, refused when it is a file, or holds checkpoints and this is no resume."""
    run_dir = Path(cfg.run.out_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"config key 'run.out_dir': {run_dir} is a file, not a directory")
    if read_data:
        check_data_paths(cfg)
    if not resume and list_checkpoints(run_dir / "checkpoints"):
        raise ConfigError(
            f"config key 'run.out_dir': {run_dir} already holds checkpoints; resume it with "
            "`facet train --resume` or choose another run.out_dir"
        )
    return run_dir


def _check_same_data(st: dict, ckpt: Path, fingerprint: str, content: str,
                     allow_data_change: bool, say) -> None:
    """Refuse to resume on other data unless ``allow_data_change``: other structure sizes
    (structures added, removed or resized: the data position cannot be restored) or other
    content. With the flag the step, optimiser state, EMA and E0s carry over and the data order
    is the new data's at that step."""
    if st.get("data_fingerprint") != fingerprint:
        if not allow_data_change:
            raise ConfigError(
                f"--resume: the training data differ from those of the checkpointed run {ckpt} "
                "(structure sizes changed: structures added, removed or resized), so the data "
                "position cannot be restored; pass --allow-data-change to continue on them in "
                "the new data's order"
            )
        say(f"warning: resuming {ckpt} on training data of other structures "
            "(--allow-data-change): the step, optimiser state, EMA and E0s carry over; the data "
            "order is the new data's at this step, not a continuation of the old order")
        return
    if st.get("data_content") is None:
        say(f"warning: {ckpt} records no fingerprint of its training data's content "
            "(written by an older facet); the data cannot be checked to be unchanged")
    elif st["data_content"] != content:
        if not allow_data_change:
            raise ConfigError(
                f"--resume: the training data's content differs from that of the "
                f"checkpointed run {ckpt} (same structure sizes, other positions or labels: "
                "relabelled or edited data); pass --allow-data-change to continue on them"
            )
        say(f"warning: resuming {ckpt} on training data whose content changed "
            "(--allow-data-change)")


def _loss_changes(ckpt: Path, loss) -> str:
    """What differs between the ``loss`` section saved with checkpoint ``ckpt`` and ``loss``
    (``"energy_weight 1.0 -> 10.0, ..."``), or ``""``."""
    saved = yaml.safe_load((ckpt / "config.yaml").read_text()).get("loss") or {}
    now = dataclasses.asdict(loss)
    return ", ".join(f"{k} {saved[k]} -> {v}" for k, v in now.items()
                     if k in saved and saved[k] != v)


class Trainer:
    """One training run (or its resumption); see the module docstring and :func:`train`.

    Attributes after construction: ``cfg`` (with the pretrained architecture when
    fine-tuning), ``global_step``, ``epoch`` and ``k`` (the next batch's position in its
    epoch), ``total`` (steps of the run), ``state`` and ``rest`` (replicated over the mesh),
    ``best`` (``{"loss", "step"}`` of the lowest validation loss), ``history`` (validation
    rows), ``last_val`` and ``last_good`` (the newest checkpoint written, or None).
    """

    def __init__(self, cfg: TrainConfig, *, resume: bool = False, allow_data_change: bool = False,
                 model_factory: Callable | None = None, predict_fn: Callable | None = None,
                 data: tuple[Sequence, Sequence] | None = None,
                 report: Callable[[str], None] = print):
        self.run_dir = _check_out_dir(cfg, resume=resume, read_data=data is None)
        self.ckpt_root = self.run_dir / "checkpoints"
        maybe_initialize_distributed(cfg.run.distributed)
        enable_compile_cache(cfg.run.compile_cache)
        self.lead = jax.process_index() == 0
        self.say = report if self.lead else (lambda msg: None)
        dtype = np.float32 if cfg.model.dtype == "float32" else np.float64

        cfg, model, train_g, val_g, finetune_src = prepare_model_and_data(
            cfg, model_factory, data, self.say)
        set_reference_energies(model, cfg, train_g, resume=resume, finetune_src=finetune_src,
                               predict_fn=predict_fn, dtype=dtype, say=self.say)
        self.cfg = cfg
        self._plan(train_g, val_g, dtype)
        self.graphdef, params, self.rest = split_model(model)
        self.state = init_state(params, self.tx, seed=cfg.model.seed)
        self.fingerprint = size_fingerprint(self.batcher)
        self.content = content_fingerprint(train_g)
        self.supported = training_elements(train_g)
        self.best = {"loss": float("inf"), "step": -1}
        if resume:
            self._restore(allow_data_change, train_g)
        self._start(resume, predict_fn)

    def _plan(self, train_g, val_g, dtype) -> None:
        """Mesh, batchers, step count, optimiser and learning-rate schedule."""
        cfg = self.cfg
        self.mesh = make_mesh()
        n_dev = self.mesh.devices.size
        budget = Budget(cfg.data.max_nodes, cfg.data.max_edges, cfg.data.max_graphs)
        self.batcher = EpochBatcher(
            train_g, budget, seed=cfg.data.seed, shuffle=cfg.data.shuffle, n_devices=n_dev,
            device_slots=host_slots(self.mesh), dtype=dtype, edge_buckets=cfg.data.edge_buckets)
        self.val_batcher = (EpochBatcher(val_g, budget, shuffle=False, n_devices=n_dev,
                                         device_slots=host_slots(self.mesh), dtype=dtype)
                            if val_g else None)
        self.total = cfg.run.max_steps or self.batcher.total_steps(cfg.run.epochs)
        self.tx = make_optimizer(cfg.optim, self.total)
        self.schedule = make_schedule(cfg.optim, self.total)

    def _restore(self, allow_data_change: bool, train_g) -> None:
        """Load the newest complete checkpoint: state, E0s, scale and shift, best validation
        loss; on changed data, fit the E0s of elements the checkpoint never saw."""
        ckpt = latest_checkpoint(self.ckpt_root, report=self.say)
        if ckpt is None:
            raise ConfigError(f"--resume: {self.ckpt_root} holds no complete checkpoint")
        loaded, meta = load_checkpoint(ckpt, _templates(self.state, self.rest))
        st = meta["state"]
        _check_same_data(st, ckpt, self.fingerprint, self.content, allow_data_change, self.say)
        self.state = TrainState(loaded["counters"]["step"], loaded["params"],
                                loaded["opt_state"], loaded["ema"], loaded["counters"]["rng"])
        self.rest = loaded["rest"]
        if allow_data_change:
            self.rest = self._fit_new_elements(ckpt, train_g)
        self.say("E0s, scale and shift from the checkpoint")
        self.best = {"loss": st.get("best_val_loss", float("inf")),
                     "step": st.get("best_step", -1)}
        changed = _loss_changes(ckpt, self.cfg.loss)
        if changed and self.best["step"] >= 0:
            self.say(f"loss changed since {ckpt.name} ({changed}): validation losses are not "
                     f"comparable across it, so the best checkpoint restarts here (step "
                     f"{self.best['step']} was best under the old loss)")
            self.best = {"loss": float("inf"), "step": -1}
        self.say(f"resumed from {ckpt} at step {int(self.state.step)}")

    def _fit_new_elements(self, ckpt: Path, train_g):
        """``rest`` with E0s fitted for the training elements ``ckpt`` was not trained on (they
        would stay at 0, or at a pretrained model's value, while the data now hold them); the
        checkpoint's E0s stay (:func:`facet.train.e0.fit_new_atomic_energies`)."""
        old = supported_elements_of_checkpoint(ckpt)
        if old is None:
            return self.rest
        new = sorted(set(numbers_of(self.supported)) - set(old))
        if not new:
            return self.rest

        def refit(path, leaf):
            if "atomic_energies" not in jax.tree_util.keystr(path):
                return leaf
            e0 = fit_new_atomic_energies(train_g, np.asarray(leaf, np.float64), new)
            self.say(f"the training data hold {len(new)} new element(s) the checkpoint was not "
                     f"trained on: {', '.join(symbols_of(new))}; their E0s fitted to the "
                     f"training energies with the checkpoint's E0s held: "
                     + ", ".join(f"{el} {e0[z]:.4g} eV" for el, z in zip(symbols_of(new), new,
                                                                          strict=True)))
            return np.asarray(e0, np.asarray(leaf).dtype)

        return jax.tree_util.tree_map_with_path(refit, self.rest)

    def _start(self, resume: bool, predict_fn) -> None:
        """Data position, ``config.yaml``, replicated state, compiled steps, logs."""
        cfg, run_dir = self.cfg, self.run_dir
        self.global_step = int(self.state.step)
        self.epoch, self.k = self.batcher.position(self.global_step)
        run_dir.mkdir(parents=True, exist_ok=True)
        if self.lead:
            atomic_write_text(run_dir / "config.yaml",
                              yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        self.state = replicate(self.state, self.mesh)
        self.rest = replicate(self.rest, self.mesh)
        train_step, eval_step = make_step_fns(
            self.graphdef, self.tx, cfg.loss, ema_decay=cfg.optim.ema_decay,
            predict_fn=predict_fn)
        self.train_j = jax.jit(train_step, donate_argnums=(0,))
        self.eval_j = jax.jit(eval_step)

        self.csv_log = self.tb = None
        if self.lead:
            if not resume and (run_dir / "log.csv").exists():
                self.say(f"note: {run_dir} holds a log but no checkpoint (an earlier run stopped "
                         "before its first checkpoint); starting afresh and replacing its log")
            self.csv_log = CsvLog(run_dir / "log.csv", LOG_COLUMNS,
                                  truncate_after=self.global_step if resume else -1)
            self.tb = EventWriter(run_dir / "tb")
        self.bar = tqdm(total=self.total, initial=self.global_step,
                        disable=not (cfg.run.progress and self.lead), unit="step")
        self._window: list = []
        self._n_struct = self._n_atoms = 0
        self._t_window = time.perf_counter()
        self.history: list[dict] = []
        self.last_val: dict = {}
        self.last_good = (latest_checkpoint(self.ckpt_root, report=lambda m: None)
                          if resume else None)

    # -- the named steps ----------------------------------------------------------------------

    def step(self) -> None:
        """One optimiser update on the next global batch (the next epoch's first batch when
        this epoch is exhausted); its metrics join the logging window."""
        b = self.batcher
        while self.k >= b.steps_in_epoch(self.epoch):
            self.epoch, self.k = self.epoch + 1, 0
        for idx in b.global_indices(self.epoch, self.k):
            ns, na = b.sizes(idx)
            self._n_struct, self._n_atoms = self._n_struct + ns, self._n_atoms + na
        self.state, m = self.train_j(self.state, self.rest,
                                     put_batch(b.local_batch(self.epoch, self.k), self.mesh))
        self.global_step, self.k = self.global_step + 1, self.k + 1
        self._window.append(m)
        self.bar.update(1)

    def log(self, row: dict, prefix: str) -> None:
        """One row of ``log.csv`` and its numbers as TensorBoard scalars ``prefix/<column>``."""
        if self.csv_log is not None:
            self.csv_log.write(row)
            self.tb.scalars(row["step"], {f"{prefix}/{k}": v for k, v in row.items()
                                          if k not in ("step", "epoch", "kind")
                                          and isinstance(v, (int, float))})

    def log_train(self) -> None:
        """Log the steps since the last training row (mean loss and gradient norm, errors,
        throughput); stop with :class:`TrainingDiverged` if any of them was not finite."""
        step, host = self.global_step, to_host(self._window)
        bad = [step - len(host) + i + 1 for i, w in enumerate(host) if not w["ok"]]
        if bad:
            raise TrainingDiverged(
                f"non-finite loss or gradient at step {bad[0]} (epoch {self.epoch}); training "
                f"stopped. The last good checkpoint is {self.last_good or 'none (none saved)'}"
                "; lower optim.lr or check the data near this step"
            )
        dt = time.perf_counter() - self._t_window
        sums = jax.tree.map(lambda *x: np.sum(x), *[{k: v for k, v in w.items()
                                                     if k.endswith(("_abs", "_sq", "_n"))}
                                                    for w in host])
        row = {"step": step, "epoch": self.epoch, "kind": "train",
               "lr": float(self.schedule(step - 1)),
               "loss": float(np.mean([w["loss"] for w in host])),
               "grad_norm": float(np.mean([w["grad_norm"] for w in host])),
               "structures_per_s": self._n_struct / dt, "atoms_per_s": self._n_atoms / dt,
               "wall_s": dt, **finalize_metrics(sums)}
        self.log(row, "train")
        self.bar.set_postfix(loss=f"{row['loss']:.4g}", struct_s=f"{self._n_struct / dt:.1f}",
                             atoms_s=f"{self._n_atoms / dt:.0f}")
        self._window, self._n_struct, self._n_atoms = [], 0, 0
        self._t_window = time.perf_counter()

    def validation_metrics(self) -> tuple[float, dict]:
        """``(loss, errors)`` of the EMA weights on the whole validation set."""
        vb, loss_acc, err_acc = self.val_batcher, None, None
        for s in range(vb.steps_in_epoch(0)):
            ls, es = to_host(self.eval_j(self.state.ema, self.rest,
                                         put_batch(vb.local_batch(0, s), self.mesh)))
            loss_acc = ls if loss_acc is None else jax.tree.map(np.add, loss_acc, ls)
            err_acc = es if err_acc is None else jax.tree.map(np.add, err_acc, es)
        return float(combine_loss(loss_acc, self.cfg.loss)), finalize_metrics(err_acc)

    def validate(self) -> bool:
        """Validate, log the row, and return whether this is the best validation loss so far
        (the best model always gets a checkpoint)."""
        vloss, metrics = self.validation_metrics()
        self.last_val = {"loss": vloss, **metrics}
        row = {"step": self.global_step, "epoch": self.epoch, "kind": "val", **self.last_val}
        self.history.append(row)
        self.log(row, "val")
        new_best = vloss < self.best["loss"]
        if new_best:
            self.best = {"loss": vloss, "step": self.global_step}
        self.say(f"step {self.global_step} epoch {self.epoch}: val loss {vloss:.5g} " + " ".join(
            f"{k} {v:.3g}" for k, v in metrics.items() if k.endswith("_mae")))
        return new_best

    def checkpoint(self) -> None:
        """Write ``checkpoints/step_<global_step>/`` (never with non-finite weights), then
        ``best.json`` when this step is the best, then prune the older checkpoints."""
        extra = {"epoch": self.epoch, "step_in_epoch": self.k,
                 "best_val_loss": self.best["loss"], "best_step": self.best["step"],
                 "data_fingerprint": self.fingerprint, "data_content": self.content,
                 "last_val": self.last_val}
        self.last_good = self._save(extra) or self.last_good
        if self.lead:
            if self.best["step"] == self.global_step:
                atomic_write_text(self.run_dir / "best.json", json.dumps(self.best))
            prune_checkpoints(self.ckpt_root, self.cfg.run.keep_checkpoints,
                              protect={self.best["step"]})

    def _save(self, extra: dict) -> Path | None:
        if jax.process_index() != 0:
            return None
        host = to_host(_templates(self.state, self.rest))
        _finite_or_raise(host, int(host["counters"]["step"]), self.last_good)
        supported = self.supported
        if self.cfg.model.init_from is not None:
            # fine-tuned: the pretrained elements (non-zero E0s) stay supported
            for kp, leaf in jax.tree_util.tree_flatten_with_path(host["rest"])[0]:
                if "atomic_energies" in jax.tree_util.keystr(kp):
                    supported = finetuned_elements(supported, np.asarray(leaf))
        return save_checkpoint(self.ckpt_root, int(host["counters"]["step"]), host,
                               config_yaml=yaml.safe_dump(self.cfg.to_dict(), sort_keys=False),
                               state=extra, supported_elements=supported)

    # -- driving ------------------------------------------------------------------------------

    def _due(self) -> tuple[bool, bool]:
        """Whether the step just taken validates and whether it checkpoints."""
        run, step = self.cfg.run, self.global_step
        end_epoch = self.k == self.batcher.steps_in_epoch(self.epoch)
        do_eval = self.val_batcher is not None and (
            (run.eval_every and step % run.eval_every == 0)
            or (not run.eval_every and end_epoch) or step == self.total)
        do_ckpt = ((run.checkpoint_every and step % run.checkpoint_every == 0)
                   or (not run.checkpoint_every and (do_eval or end_epoch))
                   or step == self.total)
        return bool(do_eval), bool(do_ckpt)

    def run(self, stop_at_step: int | None = None) -> dict:
        """Train to the last step (or ``stop_at_step``); the logs are closed and the curve
        plotted however the run ends. Returns :meth:`summary`."""
        try:
            while self.global_step < self.total:
                self.step()
                do_eval, do_ckpt = self._due()
                if self._window and (self.global_step % max(self.cfg.run.log_every, 1) == 0
                                     or do_eval or do_ckpt):
                    self.log_train()
                if do_eval and self.validate():
                    do_ckpt = True
                if do_ckpt:
                    self.checkpoint()
                if do_eval or do_ckpt:  # keep validation and I/O out of the throughput window
                    self._t_window = time.perf_counter()
                if stop_at_step is not None and self.global_step >= stop_at_step:
                    break
        finally:
            self.close()
        return self.summary()

    def close(self) -> None:
        """Close the progress bar and the logs and plot ``training_curve.png``."""
        self.bar.close()
        if self.csv_log is not None:
            self.csv_log.close()
            self.tb.close()
            try:
                plot_training_curve(self.run_dir / "log.csv")
            except (OSError, ValueError) as err:  # the run's results stand without the plot
                self.say(f"warning: could not plot {self.run_dir / 'log.csv'}: {err}")

    def summary(self) -> dict:
        """The dict :func:`train` returns."""
        return {"step": self.global_step, "total_steps": self.total, "val": self.last_val,
                "best_step": self.best["step"], "best_val_loss": self.best["loss"],
                "run_dir": self.run_dir, "history": self.history, "state": self.state,
                "rest": self.rest, "train_step": self.train_j}


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    allow_data_change: bool = False,
    model_factory: Callable | None = None,
    predict_fn: Callable | None = None,
    data: tuple[Sequence, Sequence] | None = None,
    report: Callable[[str], None] = print,
    stop_at_step: int | None = None,
) -> dict:
    """Run (or resume) training; returns a summary dict.

    Args:
        cfg: the run configuration.
        resume: continue from the newest complete checkpoint in ``cfg.run.out_dir``; training
            data whose content differs from the checkpointed run's (its fingerprint) are
            refused unless ``allow_data_change``.
        model_factory: ``ModelSection -> model`` (default ``facet.create_model``).
        predict_fn: the contract's ``predict`` (default ``facet.physics.predict``).
        data: ``(train_graphs, val_graphs)`` to use instead of reading ``cfg.data`` paths.
        report: where human-readable messages go.
        stop_at_step: stop (as if killed, after any checkpoint due at that step) once this
            global step is reached; for tests of resumption.

    Summary keys: ``step``, ``total_steps``, ``val`` (last validation metrics), ``best_step``,
    ``best_val_loss``, ``run_dir``, ``history`` (validation rows), ``state``, ``rest`` and
    ``train_step`` (the jitted step, whose compilation cache tests inspect).
    """
    trainer = Trainer(cfg, resume=resume, allow_data_change=allow_data_change,
                      model_factory=model_factory, predict_fn=predict_fn, data=data,
                      report=report)
    return trainer.run(stop_at_step=stop_at_step)
