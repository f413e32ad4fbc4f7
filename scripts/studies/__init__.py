"""Quality studies: each writes its raw results and a table under
``docs/studies/`` (run as ``python -m scripts.studies.NAME``)."""
