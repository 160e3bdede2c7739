"""Data for the server side: the CSV contract, MovieLens adapter, demo generator and splits."""
