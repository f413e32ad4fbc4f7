"""Data (runtime): image sources and pipelines, TFDS preparation, image
files, the demo's animal-MNIST and ImageNet's class names.
"""
