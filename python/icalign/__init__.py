"""icalign: self-correction as in-context alignment, reproduced on the CPU.

A C core (GPT-2 forward/backward, ranking losses, Adam, task sampler,
baselines) under a small NumPy API; ``docs/math.md`` states the mathematics and
``docs/architecture.md`` the layout of the code.
"""
from __future__ import annotations

import warnings

from . import _core
from ._version import __version__
from .config import ModelConfig
from .losses import bt_loss, pl_loss, sequence_loss
from .baselines import (gd_baseline, simple_baseline, mean_baseline, best_baseline,
                        weighted_baseline, oracle_baseline)
from .evaluate import (EVAL_SEED_BASE, error_curves, evaluation_set, normalized_error,
                       transformer_predictions)
from .model import Transformer
from .task import AlignmentTask, TaskBatch
from .training import TrainHistory, load_checkpoint, save_checkpoint, train
from . import stats
from .critics import (Critic, OracleCritic, ReplaceCritic, GaussianCritic, InvertedCritic,
                      QualityCritic, SelfCritic, make_critic, oracle_rewards, quality_rewards)
from .self_correction import (SelfCorrection, pairwise_accuracy, self_correct,
                              self_check_accuracy)
from .critic_studies import critic_accuracy_gain, critic_rounds, critic_model_size
from .experiments.critic_quality import critic_claims
from .stats import pearson, permutation_pvalue

if not _core.has_openmp():
    warnings.warn("icalign was built without OpenMP: the C core runs single-threaded",
                  RuntimeWarning, stacklevel=2)


def set_num_threads(n: int) -> None:
    """Threads used by the C core (default: OpenMP's default, OMP_NUM_THREADS)."""
    _core.set_num_threads(n)


def get_num_threads() -> int:
    return _core.get_num_threads()


def simd_path() -> str:
    """Vector code path chosen for this CPU: 'avx512', 'avx2' or 'scalar'."""
    return _core.simd_path()


def set_simd_path(name: str) -> None:
    """Force a vector code path ('avx512', 'avx2' or 'scalar'); ICALIGN_SIMD does the
    same at import. Raises ValueError if the CPU lacks it."""
    _core.set_simd_path(name)


__all__ = [
    "ModelConfig", "Transformer", "pl_loss", "bt_loss", "sequence_loss",
    "AlignmentTask", "TaskBatch", "gd_baseline", "simple_baseline", "mean_baseline",
    "best_baseline", "weighted_baseline", "oracle_baseline", "normalized_error",
    "error_curves", "evaluation_set", "EVAL_SEED_BASE", "transformer_predictions",
    "train", "TrainHistory", "load_checkpoint", "save_checkpoint",
    "stats", "Critic", "OracleCritic", "ReplaceCritic", "GaussianCritic",
    "InvertedCritic", "QualityCritic", "SelfCritic", "SelfCorrection", "make_critic",
    "oracle_rewards", "quality_rewards",
    "pairwise_accuracy", "self_correct", "self_check_accuracy", "critic_accuracy_gain",
    "critic_rounds", "critic_model_size", "critic_claims", "pearson", "permutation_pvalue",
    "set_num_threads", "get_num_threads", "simd_path", "set_simd_path", "__version__",
]
