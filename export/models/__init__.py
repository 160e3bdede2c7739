"""The model definitions, nothing else (training is :mod:`export.train` and
:mod:`export.distill`): the teachers (:mod:`export.models.teacher`, with the text encoder in
:mod:`export.models.text_encoder`) and the students the device runs
(:mod:`export.models.students`)."""
