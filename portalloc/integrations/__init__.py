"""Other tools' files and habits: compose, ``.env``, git, history, importers, plots."""
