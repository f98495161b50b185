"""The domain package lives in shared/ytresearch; the deployables sit at the top level."""

from setuptools import find_packages, setup

setup(
    package_dir={"ytresearch": "shared/ytresearch"},
    packages=[
        *find_packages("shared", include=["ytresearch", "ytresearch.*"]),
        *find_packages(
            include=["functions", "functions.*", "streaming_service", "streaming_service.*", "local_run"]
        ),
    ],
)
