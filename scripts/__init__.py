"""Scripts run from the checkout's root as ``python -m scripts....``."""
