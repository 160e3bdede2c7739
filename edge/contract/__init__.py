"""What the server (``export/``) and the device (``edge/``) must agree on, defined once.

The device side owns every contract: ``export`` imports these modules and never re-implements
them, so a bundle built on the server is read on the device with the same rules.

- :mod:`edge.contract.events`: the event vocabulary and which kinds are positive, negative or
  neutral.
- :mod:`edge.contract.inputs`: the students' input names and the one builder of the interest
  model's feed (right-aligned history window with a padding mask, plus context).
- :mod:`edge.contract.int8`: the bundle's int8 row format (symmetric, one scale per row) and the
  quantised query the integer scorer takes.
- :mod:`edge.contract.vectors`: row L2-normalisation.
- :mod:`edge.contract.content`: the measured content descriptors bundles carry per item and
  requests may constrain (tempo, loudness, brightness, motion...).
- :mod:`edge.contract.defaults`: defaults and limits that more than one part reads.

The request context and the hour/weekday of a timestamp live in :mod:`edge.context`; atomic,
durable file writes in :mod:`edge.atomic`.
"""
