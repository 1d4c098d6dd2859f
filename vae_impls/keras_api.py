"""The Keras APIs a recipe can run under, and the one Keras package each imports.

Keras 2 (``tf_keras``) and Keras 3 (``keras``) cannot share a process, so a process picks one
API, imports it here, and a second, different choice is refused with a clear error.
"""

import importlib
import os
import sys

PORT_API = "keras3-port"
APIS = ("keras2", "keras3", PORT_API)
PACKAGE_OF_API = {"keras2": "tf_keras", "keras3": "keras", PORT_API: "keras"}


class ApiError(Exception):
    pass


def package_for(api: str) -> str:
    try:
        return PACKAGE_OF_API[api]
    except KeyError:
        raise ApiError(f"unknown API {api!r}; valid APIs: {', '.join(APIS)}") from None


def comparable_apis(api: str) -> tuple:
    """The APIs whose runs a recipe on ``api`` is compared with, in order of preference.

    A port is Keras 3 code, so it is compared with Keras 3 runs too: the floor has no port.
    """
    return (api, "keras3") if api == PORT_API else (api,)


def floor_api(api: str) -> str:
    """The API of the floor a recipe on ``api`` is measured against."""
    return comparable_apis(api)[-1]


_loaded_package = None


def load(api: str):
    """Import and return the Keras package for ``api`` (TensorFlow backend for Keras 3)."""
    global _loaded_package
    package = package_for(api)
    # TensorFlow itself imports keras 3 internals, so only tf_keras betrays the other API's use.
    in_use = _loaded_package or ("tf_keras" if "tf_keras" in sys.modules else None)
    if in_use not in (None, package):
        raise ApiError(
            f"API {api!r} needs {package}, but {in_use} is already in use in this process; "
            "run each Keras API in its own process"
        )
    _loaded_package = package
    if package == "keras":
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    return importlib.import_module(package)
