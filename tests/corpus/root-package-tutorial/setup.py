from setuptools import setup

setup(
    name="tutorial-utils",
    version="0.1.0",
    description="Helpers for the tutorial notebooks",
    packages=["tutorial_utils"],
    install_requires=["numpy", "pandas", "xarray"],
)
