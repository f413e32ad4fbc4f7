"""Runtime: what runs a model on machines: meshes and sharding,
checkpoints and restore, storage paths, the compile cache, metrics and the
command-line convention.
"""
