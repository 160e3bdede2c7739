"""The build's settings, one dataclass per part: the teachers, the students, the whole build.

Defaults suit a few thousand items on 2 CPU cores. Checkpoints store ``dataclasses.asdict`` of
the config that built them, and the bundle manifest records :meth:`BuildConfig.to_dict`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from edge.features import FeatureSpec


@dataclass
class TeacherConfig:
    """Teacher sizes and training settings (defaults: a few thousand items on 2 CPU cores)."""

    dim: int = 64
    hidden: int = 256
    layers: int = 2
    heads: int = 2
    history_len: int = 50
    dropout: float = 0.2
    id_dropout: float = 0.5
    text_model: str | None = None
    text_hidden: int = 64
    text_layers: int = 2
    text_max_len: int = 48
    text_items_per_step: int = 64
    # None: from the data (:func:`fit_to_data`); an int fixes it.
    steps: int | None = None
    batch_size: int | None = None
    # The data rule's knobs: predictions per step, passes over the training predictions, and
    # the bounds the rule keeps steps and batch within.
    tokens_per_step: int = 3200
    epochs: float = 40.0
    min_steps: int = 300
    max_steps: int = 6000
    lr: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.07
    # Catalogues up to max_candidates items train with the full softmax; larger ones with a
    # sampled one (the batch's items plus max_candidates/2 uniform draws), logQ-corrected
    # unless logq is False (kept for the comparison in benchmarks/sampled_softmax.py).
    max_candidates: int = 20000
    logq: bool = True
    seed: int = 0
    threads: int = 2


def fit_to_data(cfg: TeacherConfig, sequence_lengths) -> TeacherConfig:
    """The teacher's training length and batch for this data: one rule for every catalogue.

    A step trains on about ``tokens_per_step`` next-event predictions: the batch holds
    ``tokens_per_step / mean window`` users (a window is a user's last ``history_len + 1``
    events, so short histories, as in sparse catalogues, get more users per step), clamped to
    [16, 1024]. The run makes ``epochs`` passes over the training predictions
    (``sum(len - 1)``), ``steps = epochs * predictions / tokens_per_step`` clamped to
    [``min_steps``, ``max_steps``]. Fields already set (not None) are kept.

    :param sequence_lengths: number of training events of each user.
    :returns: a copy of ``cfg`` with ``steps`` and ``batch_size`` filled in.
    """
    import numpy as np

    lengths = np.asarray(list(sequence_lengths), np.int64)
    lengths = lengths[lengths >= 2]
    predictions = float((lengths - 1).sum()) if len(lengths) else 0.0
    window = float(np.minimum(lengths - 1, cfg.history_len).mean()) if len(lengths) else 1.0
    batch = cfg.batch_size if cfg.batch_size is not None else int(np.clip(round(cfg.tokens_per_step / max(window, 1.0)), 16, 1024))
    steps = cfg.steps if cfg.steps is not None else int(np.clip(round(cfg.epochs * predictions / cfg.tokens_per_step),
                                                                  cfg.min_steps, cfg.max_steps))
    return replace(cfg, steps=steps, batch_size=batch)


@dataclass
class StudentConfig:
    """Student sizes and distillation settings."""

    dim: int = 64
    fusion_hidden: int = 256
    interest_hidden: int = 128
    history_len: int = 50
    fusion_steps: int = 1500
    # The fusion student's ranking term (export.distill.fusion_rank_loss): weight, softmax
    # temperature and candidate cap; 0 weight turns it off.
    fusion_rank_weight: float = 1.0
    fusion_rank_temperature: float = 0.1
    fusion_candidates: int = 4096
    # Weight of the text-only regression term: each batch is also shown with its audio and
    # frames removed (as a spoken or typed request reaches the device: edge.features.
    # text_item_vector), so a query's vector lands in item space; 0 turns it off.
    fusion_text_only_weight: float = 0.5
    interest_steps: int = 2500
    batch_size: int = 256
    lr: float = 2e-3
    temperature: float = 0.07
    kl_top: int = 100
    kl_weight: float = 0.5
    seed: int = 0
    threads: int = 2


@dataclass
class BuildConfig:
    """Everything a build needs besides the data."""

    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    spec: FeatureSpec = field(default_factory=FeatureSpec)
    workers: int = 2
    cold_fraction: float = 0.1
    cold_steps: int | None = None  # teacher steps of the cold-item probe (default: half the build's)
    # Train a SASRec peer (full-softmax CE) for this many steps in the quality stage; 0 skips
    # it (it takes minutes).
    sasrec_steps: int = 0
    export_teacher: bool = True
    progress: bool = True
    # The bundle's signed freshness (edge.bundle.freshness): version (None: the build's Unix
    # time) and days until it expires.
    bundle_version: int | None = None
    valid_days: float = 365.0

    def to_dict(self) -> dict:
        """The settings that shape the models, as recorded in the report and the manifest (the
        feature spec is recorded on its own; output switches are left out)."""
        return {"teacher": asdict(self.teacher), "student": asdict(self.student), "workers": self.workers,
                "cold_fraction": self.cold_fraction, "cold_steps": self.cold_steps, "sasrec_steps": self.sasrec_steps}
