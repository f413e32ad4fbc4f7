"""Tools: the ``python -m`` commands built on every other layer (the demo,
pretokenizing, export, ahead-of-time compiles, weight converters).
"""
