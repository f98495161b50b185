"""The domain package lives in shared/ but installs and imports as `ytresearch` everywhere."""

from setuptools import find_packages, setup

setup(
    package_dir={"ytresearch": "shared"},
    packages=[
        "ytresearch",
        *(f"ytresearch.{name}" for name in find_packages("shared")),
        *find_packages(include=["functions", "functions.*", "streaming_service", "streaming_service.*"]),
    ],
)
