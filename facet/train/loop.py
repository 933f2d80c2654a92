"""The training loop behind ``facet train``: data, E0 fit, optimiser, validation, checkpoints.

One global step = one optimiser update on a global batch of one padded batch per device (see
:mod:`facet.train.step` and :mod:`facet.train.parallel`). The run is a pure function of its
configuration: the data plan depends on ``(data.seed, epoch)``, the parameters on
``model.seed``, so a run resumed from a checkpoint at step ``s`` (parameters, optimiser state,
EMA, RNG key and step restored; data position recomputed from ``s`` and checked) continues
exactly as the uninterrupted run would have.

Outputs in ``run.out_dir``: ``config.yaml``, ``checkpoints/step_*/``, ``best.json`` (the step of
the lowest validation loss, whose checkpoint pruning never removes), ``log.csv``, its plot
``training_curve.png`` (written when the run stops) and TensorBoard events in ``tb/``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np
import yaml

from ..compile_cache import enable_compile_cache
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
from .e0 import fit_atomic_energies, fit_scale_shift, load_atomic_energies
from .loss import combine_loss, finalize_metrics
from .model_io import (
    create_model_from_section,
    finetune_section,
    load_weights_into,
    resolve_checkpoint,
    resolve_model_dir,
)
from .optim import make_optimizer, make_schedule
from .parallel import (
    host_slots,
    make_mesh,
    maybe_initialize_distributed,
    put_batch,
    replicate,
    to_host,
)
from .step import TrainState, init_state, make_step_fns, split_model

__all__ = ["TrainingDiverged", "train", "LOG_COLUMNS"]

LOG_COLUMNS = [
    "step", "epoch", "kind", "lr", "loss", "grad_norm", "energy_mae", "energy_rmse",
    "forces_mae", "forces_rmse", "stress_mae", "stress_rmse", "structures_per_s", "atoms_per_s",
    "wall_s",
]


class TrainingDiverged(RuntimeError):
    """The loss, the gradients or the weights became NaN/inf; the last good checkpoint is kept
    and nothing non-finite is written."""


def _fingerprint(batcher: EpochBatcher) -> str:
    """Identifies the training set by its structure sizes (cheap for lazy sources)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(batcher._n_nodes, np.int64).tobytes())
    h.update(np.ascontiguousarray(batcher._n_edges, np.int64).tobytes())
    return h.hexdigest()[:16]


def _table_e0(path: str, train_g) -> np.ndarray:
    """Fixed E0s of ``model.atomic_energies``; every training element must have one."""
    seen: set[int] = set()
    for g in train_g:
        seen.update(np.unique(np.asarray(g.numbers)).tolist())
    try:
        return load_atomic_energies(path, required=sorted(seen))
    except ValueError as err:
        raise ConfigError(f"config key 'model.atomic_energies': {err}") from None


def _finetune_e0(model, train_g, cfg: TrainConfig, predict_fn, dtype, say) -> np.ndarray:
    """E0s for fine-tuning: the checkpoint's, corrected by a least-squares fit of the pretrained
    model's energy residuals on the new training data. With the same DFT reference the
    corrections are small; a shifted reference (another code or functional) is absorbed into
    them; elements absent from the new data keep their E0."""
    from .evaluate import predict_dataset

    old = np.asarray(jax.device_get(model.atomic_energies[...]), np.float64)
    labelled = [g for g in train_g if g.energy is not None]
    if not labelled:
        return old
    budget = (cfg.data.max_nodes, cfg.data.max_edges, cfg.data.max_graphs)
    pred = predict_dataset(model, labelled, budget, predict_fn=predict_fn, dtype=dtype)
    residual = np.asarray([g.energy for g in labelled]) - pred["energy"]
    correction = fit_atomic_energies(labelled, energies=residual)
    per_atom = np.abs(residual).sum() / sum(g.n_node for g in labelled)
    changed = {int(z): round(float(correction[z]), 4) for z in np.flatnonzero(correction)}
    say(f"fine-tuning: the pretrained model's energy error on the training data is "
        f"{1e3 * per_atom:.1f} meV/atom; E0 corrections (eV) fitted to it: {changed}")
    return old + correction


def content_fingerprint(graphs) -> str:
    """SHA-256 of the training data's content: every structure's numbers, positions, cell and
    labels, in order (a preprocessed dataset: its shards' recorded SHA-256s and the split).
    Relabelled data (same structures, other energies) gives another fingerprint."""
    h = hashlib.sha256()
    ds = getattr(graphs, "ds", None)
    manifest = getattr(ds, "manifest", None)
    if isinstance(manifest, dict) and manifest.get("splits"):
        h.update(str(getattr(ds, "split", "")).encode())
        for name in sorted(manifest["splits"]):
            for shard in manifest["splits"][name].get("shards", []):
                h.update(f"{name}:{shard.get('file')}:{shard.get('sha256')}".encode())
        return h.hexdigest()[:32]
    for g in graphs:
        for arr in (g.numbers, g.positions, g.cell, g.energy, g.forces, g.stress):
            if arr is None:
                h.update(b"-")
                continue
            a = np.ascontiguousarray(np.asarray(arr, np.float64))
            h.update(str(a.shape).encode())
            h.update(a.tobytes())
    return h.hexdigest()[:32]


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


def _save(ckpt_root, state: TrainState, rest, cfg: TrainConfig, extra: dict,
          supported: list[str] | None = None, last_good=None) -> Path | None:
    if jax.process_index() != 0:
        return None
    host = to_host({"params": state.params, "opt_state": state.opt_state, "ema": state.ema,
                    "rest": rest, "counters": {"step": state.step, "rng": state.rng}})
    _finite_or_raise(host, int(host["counters"]["step"]), last_good)
    if supported is not None and cfg.model.init_from is not None:
        # fine-tuned: the pretrained elements (non-zero E0s) stay supported
        from facet.elements import supported_from_e0, symbols_of

        for kp, leaf in jax.tree_util.tree_flatten_with_path(host["rest"])[0]:
            if "atomic_energies" in jax.tree_util.keystr(kp):
                supported = symbols_of(
                    {*supported_numbers_of(supported), *supported_from_e0(np.asarray(leaf))})
    return save_checkpoint(ckpt_root, int(host["counters"]["step"]), host,
                           config_yaml=yaml.safe_dump(cfg.to_dict(), sort_keys=False),
                           state=extra, supported_elements=supported)


def supported_numbers_of(symbols) -> tuple[int, ...]:
    from facet.elements import numbers_of

    return numbers_of(symbols)


def training_elements(graphs) -> list[str]:
    """Sorted element symbols of the training structures (a preprocessed split: from its
    manifest's statistics, without reading the shards)."""
    from facet.elements import symbols_of

    ds = getattr(graphs, "ds", None)
    manifest = getattr(ds, "manifest", None)
    split = getattr(ds, "split", None)
    if isinstance(manifest, dict) and split in manifest.get("splits", {}):
        from ase.data import atomic_numbers

        els = manifest["splits"][split].get("stats", {}).get("elements")
        if els:
            return symbols_of(atomic_numbers[s] for s in els)
    seen: set[int] = set()
    for g in graphs:
        seen.update(np.unique(np.asarray(g.numbers)).tolist())
    return symbols_of(seen)


def _templates(state: TrainState, rest) -> dict:
    return {"params": state.params, "opt_state": state.opt_state, "ema": state.ema, "rest": rest,
            "counters": {"step": state.step, "rng": state.rng}}


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
    run_dir = Path(cfg.run.out_dir)
    ckpt_root = run_dir / "checkpoints"
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"config key 'run.out_dir': {run_dir} is a file, not a directory")
    if data is None:
        check_data_paths(cfg)
    if not resume and list_checkpoints(ckpt_root):
        raise ConfigError(
            f"config key 'run.out_dir': {run_dir} already holds checkpoints; resume it with "
            "`facet train --resume` or choose another run.out_dir"
        )
    maybe_initialize_distributed(cfg.run.distributed)
    enable_compile_cache(cfg.run.compile_cache)
    lead = jax.process_index() == 0
    say = report if lead else (lambda msg: None)
    dtype = np.float32 if cfg.model.dtype == "float32" else np.float64

    finetune_src = None
    if cfg.model.init_from is not None and model_factory is None:
        # The architecture comes from the checkpoint (model_io.finetune_section).
        arch, finetune_src = finetune_section(cfg.model, report=say)
        cfg = dataclasses.replace(cfg, model=arch)
    model = create_model_from_section(cfg.model, model_factory)
    cutoff = float(cfg.data.cutoff if cfg.data.cutoff is not None else model.cutoff)
    if data is None:
        from .data import load_training_data

        train_g, val_g = load_training_data(cfg.data, cutoff)
    else:
        train_g, val_g = list(data[0]), list(data[1])
    say(f"data: {len(train_g)} training and {len(val_g)} validation structures, cutoff {cutoff} A")
    from .data import elements_missing

    if missing := elements_missing(train_g, val_g):
        say(f"warning: validation structures contain elements with no training structure "
            f"(Z = {missing}); their E0 is 0 and their errors will be large")

    if cfg.model.init_from is not None and not resume:
        src = finetune_src or resolve_checkpoint(resolve_model_dir(cfg.model.init_from),
                                                 report=say)
        try:
            load_weights_into(model, src)
        except (ValueError, KeyError) as err:
            raise ConfigError(f"config key 'model.init_from': the weights of {src} do not fit "
                              f"the model to train: {' '.join(str(err).split())}") from err
        say(f"fine-tuning from {src}")
    if cfg.model.init_from is not None and not resume:
        e0 = _finetune_e0(model, train_g, cfg, predict_fn, dtype, say)
    elif cfg.model.atomic_energies != "fit":
        e0 = _table_e0(cfg.model.atomic_energies, train_g)
    else:
        e0 = fit_atomic_energies(train_g)
    model.set_atomic_energies(e0)
    if cfg.model.init_from is None:
        scale, shift = fit_scale_shift(train_g, e0)
        model.set_scale_shift(scale, shift)
        how = ("fitted" if cfg.model.atomic_energies == "fit"
               else f"from {cfg.model.atomic_energies}")
        say(f"E0s {how} ({len(train_g)} training structures); scale {scale:.4g}, "
            f"shift {shift:.4g} eV")

    mesh = make_mesh()
    n_dev = mesh.devices.size
    budget = Budget(cfg.data.max_nodes, cfg.data.max_edges, cfg.data.max_graphs)
    batcher = EpochBatcher(train_g, budget, seed=cfg.data.seed, shuffle=cfg.data.shuffle,
                           n_devices=n_dev, device_slots=host_slots(mesh), dtype=dtype,
                           edge_buckets=cfg.data.edge_buckets)
    val_batcher = (EpochBatcher(val_g, budget, shuffle=False, n_devices=n_dev,
                                device_slots=host_slots(mesh), dtype=dtype) if val_g else None)
    total = cfg.run.max_steps or batcher.total_steps(cfg.run.epochs)
    tx = make_optimizer(cfg.optim, total)
    schedule = make_schedule(cfg.optim, total)

    graphdef, params, rest = split_model(model)
    state = init_state(params, tx, seed=cfg.model.seed)
    fingerprint = _fingerprint(batcher)
    content = content_fingerprint(train_g)
    supported = training_elements(train_g)
    best = {"loss": float("inf"), "step": -1}
    if resume:
        ckpt = latest_checkpoint(ckpt_root, report=say)
        if ckpt is None:
            raise ConfigError(f"--resume: {ckpt_root} holds no complete checkpoint")
        loaded, meta = load_checkpoint(ckpt, _templates(state, rest))
        st = meta["state"]
        if st.get("data_fingerprint") != fingerprint:
            raise ConfigError(
                f"--resume: the training data differ from those of the checkpointed run {ckpt} "
                "(structure sizes changed); the data position cannot be restored"
            )
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
        state = TrainState(loaded["counters"]["step"], loaded["params"], loaded["opt_state"],
                           loaded["ema"], loaded["counters"]["rng"])
        rest = loaded["rest"]
        best = {"loss": st.get("best_val_loss", float("inf")), "step": st.get("best_step", -1)}
        say(f"resumed from {ckpt} at step {int(state.step)}")

    step = int(state.step)
    epoch, k = batcher.position(step)
    run_dir.mkdir(parents=True, exist_ok=True)
    if lead:
        atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    state = replicate(state, mesh)
    rest = replicate(rest, mesh)
    train_step, eval_step = make_step_fns(
        graphdef, tx, cfg.loss, ema_decay=cfg.optim.ema_decay, predict_fn=predict_fn)
    train_j = jax.jit(train_step, donate_argnums=(0,))
    eval_j = jax.jit(eval_step)

    csv_log = tb = None
    if lead:
        from .logs import CsvLog, EventWriter

        if not resume and (run_dir / "log.csv").exists():
            say(f"note: {run_dir} holds a log but no checkpoint (an earlier run stopped before "
                "its first checkpoint); starting afresh and replacing its log")
        csv_log = CsvLog(run_dir / "log.csv", LOG_COLUMNS,
                         truncate_after=step if resume else -1)
        tb = EventWriter(run_dir / "tb")

    def validate() -> tuple[float, dict]:
        loss_acc = err_acc = None
        for s in range(val_batcher.steps_in_epoch(0)):
            ls, es = to_host(eval_j(state.ema, rest, put_batch(val_batcher.local_batch(0, s),
                                                                  mesh)))
            loss_acc = ls if loss_acc is None else jax.tree.map(np.add, loss_acc, ls)
            err_acc = es if err_acc is None else jax.tree.map(np.add, err_acc, es)
        return float(combine_loss(loss_acc, cfg.loss)), finalize_metrics(err_acc)

    def log(row: dict, prefix: str) -> None:
        if csv_log is not None:
            csv_log.write(row)
            tb.scalars(row["step"], {f"{prefix}/{k}": v for k, v in row.items()
                                     if k not in ("step", "epoch", "kind")
                                     and isinstance(v, (int, float))})

    from tqdm import tqdm

    bar = tqdm(total=total, initial=step, disable=not (cfg.run.progress and lead), unit="step")
    window: list = []
    n_struct = n_atoms = 0
    t_window = time.perf_counter()
    history: list[dict] = []
    last_val: dict = {}
    last_good = latest_checkpoint(ckpt_root, report=lambda m: None) if resume else None
    try:
        while step < total:
            if k >= batcher.steps_in_epoch(epoch):
                epoch, k = epoch + 1, 0
                continue
            for idx in batcher.global_indices(epoch, k):
                ns, na = batcher.sizes(idx)
                n_struct, n_atoms = n_struct + ns, n_atoms + na
            state, m = train_j(state, rest, put_batch(batcher.local_batch(epoch, k), mesh))
            step, k = step + 1, k + 1
            window.append(m)
            bar.update(1)
            end_epoch = k == batcher.steps_in_epoch(epoch)
            do_eval = val_batcher is not None and (
                (cfg.run.eval_every and step % cfg.run.eval_every == 0)
                or (not cfg.run.eval_every and end_epoch) or step == total)
            do_ckpt = ((cfg.run.checkpoint_every and step % cfg.run.checkpoint_every == 0)
                       or (not cfg.run.checkpoint_every and (do_eval or end_epoch))
                       or step == total)
            if window and (step % max(cfg.run.log_every, 1) == 0 or do_eval or do_ckpt):
                host = to_host(window)
                bad = [step - len(window) + i + 1 for i, w in enumerate(host) if not w["ok"]]
                if bad:
                    raise TrainingDiverged(
                        f"non-finite loss or gradient at step {bad[0]} (epoch {epoch}); training "
                        f"stopped. The last good checkpoint is {last_good or 'none (none saved)'}"
                        "; lower optim.lr or check the data near this step"
                    )
                dt = time.perf_counter() - t_window
                sums = jax.tree.map(lambda *x: np.sum(x), *[{k2: v for k2, v in w.items()
                                                            if k2.endswith(("_abs", "_sq", "_n"))}
                                                           for w in host])
                row = {"step": step, "epoch": epoch, "kind": "train",
                       "lr": float(schedule(step - 1)),
                       "loss": float(np.mean([w["loss"] for w in host])),
                       "grad_norm": float(np.mean([w["grad_norm"] for w in host])),
                       "structures_per_s": n_struct / dt, "atoms_per_s": n_atoms / dt,
                       "wall_s": dt, **finalize_metrics(sums)}
                log(row, "train")
                bar.set_postfix(loss=f"{row['loss']:.4g}", struct_s=f"{n_struct / dt:.1f}",
                                atoms_s=f"{n_atoms / dt:.0f}")
                window, n_struct, n_atoms, t_window = [], 0, 0, time.perf_counter()
            if do_eval:
                vloss, metrics = validate()
                last_val = {"loss": vloss, **metrics}
                row = {"step": step, "epoch": epoch, "kind": "val", **last_val}
                history.append(row)
                log(row, "val")
                if vloss < best["loss"]:
                    best = {"loss": vloss, "step": step}
                    do_ckpt = True  # the best model always has a checkpoint
                say(f"step {step} epoch {epoch}: val loss {vloss:.5g} " + " ".join(
                    f"{k2} {v:.3g}" for k2, v in metrics.items() if k2.endswith("_mae")))
            if do_ckpt:
                extra = {"epoch": epoch, "step_in_epoch": k, "best_val_loss": best["loss"],
                         "best_step": best["step"], "data_fingerprint": fingerprint,
                         "data_content": content, "last_val": last_val}
                last_good = _save(ckpt_root, state, rest, cfg, extra, supported,
                                  last_good) or last_good
                if lead:
                    if best["step"] == step:
                        atomic_write_text(run_dir / "best.json", json.dumps(best))
                    prune_checkpoints(ckpt_root, cfg.run.keep_checkpoints,
                                      protect={best["step"]})
            if do_eval or do_ckpt:  # keep validation and I/O out of the throughput window
                t_window = time.perf_counter()
            if stop_at_step is not None and step >= stop_at_step:
                break
    finally:
        bar.close()
        if csv_log is not None:
            csv_log.close()
            tb.close()
            from .logs import plot_training_curve

            try:
                plot_training_curve(run_dir / "log.csv")
            except (OSError, ValueError) as err:  # the run's results stand without the plot
                say(f"warning: could not plot {run_dir / 'log.csv'}: {err}")
    return {"step": step, "total_steps": total, "val": last_val, "best_step": best["step"],
            "best_val_loss": best["loss"], "run_dir": run_dir, "history": history,
            "state": state, "rest": rest, "train_step": train_j}
