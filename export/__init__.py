"""edgerec server side: data, training, export and bundling. Needs the `export` extra (torch)."""
