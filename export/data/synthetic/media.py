"""Writing one item's media files (runs in a worker process): its audio, and for video its
frame strip, each from a generator seeded with ``(seed, stream, item index)``."""

from __future__ import annotations

import numpy as np

from export.data.synthetic.audio import _synthesise
from export.data.synthetic.catalogue import _STREAM_AUDIO, _STREAM_FRAMES, _MediaJob
from export.data.synthetic.video import _frames

def _write_media(job: _MediaJob) -> None:
    """Synthesise and write one item's audio (and frame strip, for video). Runs in a worker."""
    import soundfile as sf  # only media writing needs libsndfile

    rng = np.random.default_rng([job.seed, _STREAM_AUDIO, job.index])
    mono = _synthesise(rng, job.recipe, job.sample_rate_hz, job.n_samples)
    if job.channels == 2:
        # A short delayed copy on the right channel: correlated but not identical channels.
        delay = max(1, int(0.011 * job.sample_rate_hz))
        data = np.stack([mono, 0.8 * mono + 0.2 * np.roll(mono, delay)], axis=1)
    else:
        data = mono
    sf.write(job.audio_path, data, job.sample_rate_hz, format=job.audio_format, subtype=job.audio_subtype)
    if job.frames_path is not None:
        frames = _frames(np.random.default_rng([job.seed, _STREAM_FRAMES, job.index]), job.genre, job.n_frames)
        np.save(job.frames_path, frames)
