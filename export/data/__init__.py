"""Data for the server side: the CSV contract, MovieLens adapter, the synthetic demo data
generator (:mod:`export.data.synthetic`) and splits."""
