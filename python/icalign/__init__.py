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
                        weighted_baseline, oracle_baseline, surrogate_optimum,
                        SurrogateOptimum)
from .evaluate import (EVAL_SEED_BASE, error_curves, evaluation_set, normalized_error,
                       optimum_errors, transformer_predictions)
from .model import Transformer
from .task import AlignmentTask, TaskBatch
from .training import TrainHistory, TrainingDiverged, load_checkpoint, save_checkpoint, train
from . import stats, theory
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
    """Set the threads used by the C core (default: OpenMP's default, OMP_NUM_THREADS).

    Results do not depend on the number of threads. Without OpenMP the core
    runs single-threaded whatever is set.

    Parameters
    ----------
    n : int
        Number of threads, in [1, 4096].

    Raises
    ------
    TypeError
        If ``n`` is not an int.
    ValueError
        If ``n`` lies outside [1, 4096].

    Examples
    --------
    >>> import icalign as ica
    >>> before = ica.get_num_threads()
    >>> ica.set_num_threads(1)
    >>> ica.get_num_threads()
    1
    >>> ica.set_num_threads(before)
    >>> ica.set_num_threads(0)
    Traceback (most recent call last):
        ...
    ValueError: number of threads must be in [1, 4096], got 0
    """
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads the C core uses (see ``set_num_threads``).

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> import icalign as ica
    >>> ica.get_num_threads() >= 1
    True
    """
    return _core.get_num_threads()


def simd_path() -> str:
    """Vector code path in use: 'avx512', 'avx2' or 'scalar'.

    The best one this CPU supports, unless the environment variable
    ICALIGN_SIMD (which can only choose a lower one) or ``set_simd_path``
    chose another. The paths agree to rounding, not bit for bit.

    Returns
    -------
    str

    Examples
    --------
    >>> import icalign as ica
    >>> ica.simd_path() in ("avx512", "avx2", "scalar")
    True
    """
    return _core.simd_path()


def set_simd_path(name: str) -> None:
    """Force a vector code path (as the environment variable ICALIGN_SIMD does).

    Parameters
    ----------
    name : {'avx512', 'avx2', 'scalar'}
        The path ('scalar' runs everywhere).

    Raises
    ------
    ValueError
        If the name is unknown, or names a path this CPU lacks (the message
        names the best one it runs).

    Examples
    --------
    >>> from icalign import set_simd_path, simd_path
    >>> before = simd_path()
    >>> set_simd_path("scalar")
    >>> simd_path()
    'scalar'
    >>> set_simd_path(before)
    >>> set_simd_path("neon")
    Traceback (most recent call last):
        ...
    ValueError: simd path 'neon' is unknown; expected 'avx512', 'avx2' or 'scalar'
    """
    _core.set_simd_path(name)


__all__ = [
    "ModelConfig", "Transformer", "pl_loss", "bt_loss", "sequence_loss",
    "AlignmentTask", "TaskBatch", "gd_baseline", "simple_baseline", "mean_baseline",
    "best_baseline", "weighted_baseline", "oracle_baseline", "surrogate_optimum",
    "SurrogateOptimum", "normalized_error",
    "error_curves", "optimum_errors", "evaluation_set", "EVAL_SEED_BASE",
    "transformer_predictions",
    "train", "TrainHistory", "TrainingDiverged", "load_checkpoint", "save_checkpoint",
    "stats", "theory", "Critic", "OracleCritic", "ReplaceCritic", "GaussianCritic",
    "InvertedCritic", "QualityCritic", "SelfCritic", "SelfCorrection", "make_critic",
    "oracle_rewards", "quality_rewards",
    "pairwise_accuracy", "self_correct", "self_check_accuracy", "critic_accuracy_gain",
    "critic_rounds", "critic_model_size", "critic_claims", "pearson", "permutation_pvalue",
    "set_num_threads", "get_num_threads", "simd_path", "set_simd_path", "__version__",
]
