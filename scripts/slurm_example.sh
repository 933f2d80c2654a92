#!/bin/bash
# Train Facet on several GPU nodes with JAX's own distributed runtime (no torchrun/MPI wrapper).
#
# One process per node drives all GPUs of its node; `facet train` detects the SLURM job
# (SLURM_NTASKS > 1) and calls jax.distributed.initialize(), which reads the coordinator address,
# the process count and this process's id from SLURM. Every process reads the same config,
# computes the same data plan and fills only the batch slots of its own devices; process 0
# writes checkpoints and logs. Re-submitting the same script resumes from the last complete
# checkpoint (e.g. after a time limit or a node failure).
#
#   sbatch scripts/slurm_example.sh
#
#SBATCH --job-name=facet-mptrj
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=1          # one JAX process per node
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=16
#SBATCH --time=24:00:00
#SBATCH --output=%x-%j.out
#SBATCH --requeue                    # a requeued job resumes (see below)

set -euo pipefail
RUN_DIR=${RUN_DIR:-runs/mptrj-facet-s}
CONFIG=${CONFIG:-configs/mptrj.yaml}   # your copy of facet/train/configs/quickstart.yaml, edited
                                       # (data.train: a preprocessed MPTrj directory)

# Keep XLA from grabbing all host memory on shared nodes; one thread pool per process.
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}

if [ -d "$RUN_DIR/checkpoints" ] && [ -n "$(ls -A "$RUN_DIR/checkpoints" 2>/dev/null)" ]; then
  srun facet train --resume "$RUN_DIR"
else
  srun facet train --config "$CONFIG" run.out_dir="$RUN_DIR" run.distributed=true
fi
