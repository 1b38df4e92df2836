"""Packages the committed results with the library (the metadata lives in pyproject.toml).

``data/results/*.json`` ships in the wheel as ``gpa_lib/stored_results``: the Colab button installs
gpa_lib from the repository as a wheel, without the repository's folders, and chapters 2 to 5 render
those committed results (``gpa_lib.results.RESULTS_DIR`` falls back to the packaged copy).
"""

from setuptools import find_namespace_packages, setup

# Namespace discovery, as pyproject's packages.find did: some folders (kernel/) have no __init__.py.
setup(
    packages=[*find_namespace_packages(include=["gpa_lib*"]), "gpa_lib.stored_results"],
    package_dir={"gpa_lib.stored_results": "data/results"},
)
