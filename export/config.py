"""The build's settings, one dataclass per part: the teachers, the students, the whole build.

Defaults suit a few thousand items on 2 CPU cores. Checkpoints store ``dataclasses.asdict`` of
the config that built them, and the bundle manifest records :meth:`BuildConfig.to_dict`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

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
    steps: int = 1200
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.07
    max_candidates: int = 20000
    seed: int = 0
    threads: int = 2


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
    cold_steps: int | None = None  # teacher steps of the cold-item probe (default: half)
    export_teacher: bool = True
    progress: bool = True

    def to_dict(self) -> dict:
        """The settings that shape the models, as recorded in the report and the manifest (the
        feature spec is recorded on its own; output switches are left out)."""
        return {"teacher": asdict(self.teacher), "student": asdict(self.student), "workers": self.workers,
                "cold_fraction": self.cold_fraction, "cold_steps": self.cold_steps}
