"""What a catalogue item's content measured: the few descriptors a request may constrain
("calm", "short", "still") and that bundles carry per item, picked by name out of the
:func:`edge.features.item_vector` both sides compute, so server and device agree on them.

An item without the modality a descriptor comes from (no audio, no frames) has NaN there:
unknown, which a constraint on that descriptor treats as failing (see
:mod:`edge.ranking.steering`).
"""

from __future__ import annotations

import numpy as np

from edge.features.spec import FeatureSpec

#: Constrainable descriptors, in column order, and the ``FeatureSpec.item_names`` entry each is.
CONTENT_SOURCES: dict[str, str] = {
    "tempo_bpm": "audio.tempo_bpm",
    "loudness_db": "audio.rms_db_mean",
    "pulse_clarity": "audio.pulse_clarity",  # how clear the beat is: music high, speech low
    "silence_share": "audio.silence_share",
    "brightness": "frames.brightness_mean",
    "motion": "frames.motion_energy",
    "scene_cut_rate": "frames.scene_cut_rate",
}
CONTENT_COLUMNS: tuple[str, ...] = tuple(CONTENT_SOURCES)


def measured_content(features: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """float32 ``(n, len(CONTENT_COLUMNS))`` from item vectors ``(n, spec.item_dim)`` (or one
    vector): each descriptor, NaN where the item has no audio (or no frames)."""
    feats = np.atleast_2d(np.asarray(features, np.float32))
    if feats.shape[1] != spec.item_dim:
        raise ValueError(f"item vectors have {feats.shape[1]} entries, the feature spec {spec.item_dim}")
    names = {n: i for i, n in enumerate(spec.item_names)}
    has = {"audio": feats[:, names["has_audio"]] > 0.5, "frames": feats[:, names["has_frames"]] > 0.5}
    out = np.full((len(feats), len(CONTENT_COLUMNS)), np.nan, np.float32)
    for j, source in enumerate(CONTENT_SOURCES.values()):
        modality = source.split(".", 1)[0]
        out[:, j] = np.where(has[modality], feats[:, names[source]], np.nan)
    return out
