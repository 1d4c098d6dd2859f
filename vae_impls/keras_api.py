"""The Keras APIs a recipe can run under: the Keras package each imports and its backend.

Keras 2 (``tf_keras``) runs on TensorFlow. Keras 3 (``keras``) runs on TensorFlow, JAX or
PyTorch, chosen by ``KERAS_BACKEND`` before Keras is first imported; so a process picks one API
group (one package and backend), imports it here, and a second, different choice is refused with
a clear error. Each Keras 3 backend has an API for the recipes as written and one for their
ports (``-port``): separately written Keras 3 code for a recipe that cannot run as written there.

This module imports neither Keras nor a backend: the manager asks it which backends are
installed without starting one.
"""

import importlib
import importlib.util
import os
import sys

from vae_impls import backends

PORT_SUFFIX = "-port"
PORT_API = "keras3-port"  # the TensorFlow backend's port API


def _keras3_apis(backend: backends.Backend) -> tuple:
    """A backend's two Keras 3 APIs: as written and its port (no suffix on the default's)."""
    written = "keras3" if backend is backends.DEFAULT else f"keras3-{backend.name}"
    return written, written + PORT_SUFFIX


def _label(api: str, backend: backends.Backend) -> str:
    kind = "port" if api.endswith(PORT_SUFFIX) else "as written"
    return " ".join(word for word in ("Keras 3", backend.label, kind) if word)


# Keras 2 on TensorFlow, then each backend's Keras 3 APIs (``vae_impls.backends``).
BACKEND_OF_API = {
    "keras2": backends.DEFAULT.name,
    **{api: backend.name for backend in backends.BACKENDS for api in _keras3_apis(backend)},
}
APIS = tuple(BACKEND_OF_API)
PACKAGE_OF_API = {api: "tf_keras" if api == "keras2" else "keras" for api in APIS}
BACKENDS = backends.NAMES
# How the report and the tables name each API.
API_LABELS = {
    "keras2": "Keras 2",
    **{api: _label(api, backend) for backend in backends.BACKENDS for api in _keras3_apis(backend)},
}
# How the answer names each process group's column: a Keras package on one backend, its code as
# written and its port together.
GROUP_LABELS = {
    "keras2": "Keras 2",
    "keras3": "Keras 3 TF",
    "keras3-jax": "Keras 3 JAX",
    "keras3-torch": "Keras 3 PyTorch",
}
# The Python package that must be importable for a backend, and the pip extra that installs it
# where the default install does not ("" = installed by default).
EXTRA_OF_BACKEND = {backend.name: backend.extra for backend in backends.BACKENDS}


class ApiError(Exception):
    pass


def _check(api: str) -> str:
    if api not in PACKAGE_OF_API:
        raise ApiError(f"unknown API {api!r}; valid APIs: {', '.join(APIS)}")
    return api


def package_for(api: str) -> str:
    return PACKAGE_OF_API[_check(api)]


def backend_of(api: str) -> str:
    """The backend (``vae_impls.backends``) the API's Keras computes with."""
    return BACKEND_OF_API[_check(api)]


def is_port(api: str) -> bool:
    """A port API (any name that ends so: the tables read APIs from files, checked or not)."""
    return api.endswith(PORT_SUFFIX)


def written_api(api: str) -> str:
    """The as-written API of ``api``'s package and backend: ``api`` itself, or a port's."""
    return api.removesuffix(PORT_SUFFIX) if is_port(api) else api


def port_api(api: str) -> str:
    """The port API beside an as-written Keras 3 API ("" for Keras 2, which has none)."""
    written = written_api(api)
    return "" if package_for(written) == "tf_keras" else written + PORT_SUFFIX


def comparable_apis(api: str) -> tuple:
    """The APIs whose runs a recipe on ``api`` is compared with, in order of preference.

    A port is Keras 3 code on its backend, so it is compared with that backend's as-written runs
    too: the floor has no port.
    """
    return (api, written_api(api)) if is_port(api) else (api,)


def floor_api(api: str) -> str:
    """The API of the floor a recipe on ``api`` is measured against: its own backend's."""
    return comparable_apis(api)[-1]


def process_group(api: str) -> str:
    """The APIs that can share one process (one package, one backend), named by the as-written
    one: ``keras2``, ``keras3``, ``keras3-jax``, ``keras3-torch``."""
    return written_api(_check(api))


def installed(api: str) -> bool:
    """Whether ``api``'s package and backend can be imported here (found, not imported)."""
    return all(
        importlib.util.find_spec(module) is not None
        for module in (package_for(api), backend_of(api))
    )


def installed_apis() -> tuple:
    """The APIs that can run here, in ``APIS`` order."""
    return tuple(api for api in APIS if installed(api))


def not_installed_reason(api: str) -> str:
    """ "" when ``api`` can run here, else one line naming what is missing and how to install
    it."""
    if installed(api):
        return ""
    backend = backend_of(api)
    return f"API {api!r} needs {backend}, which is not installed ({install_command(backend)})"


def none_installed_reason() -> str:
    """One line saying why no API can run here (``installed_apis()`` is empty): the Keras
    packages and backends that cannot be imported, and how to install them."""
    modules = dict.fromkeys((*PACKAGE_OF_API.values(), *BACKENDS))
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    return (
        f"no Keras API can run here: {', '.join(missing)} cannot be imported "
        f"({install_command(backends.DEFAULT.name)}; without TensorFlow, docs/gpu.md)"
    )


def install_command(backend: str) -> str:
    """What installs ``backend`` into the project's environment."""
    extra = EXTRA_OF_BACKEND[backend]
    return f"pip install -e '.[{extra}]'" if extra else "pip install -e ."


_loaded = None


def load(api: str):
    """Import and return the Keras package for ``api``, Keras 3 on ``api``'s backend."""
    global _loaded
    package, backend = package_for(api), backend_of(api)
    # TensorFlow itself imports keras 3 internals, so only tf_keras betrays the other API's use.
    in_use = _loaded or (("tf_keras", "tensorflow") if "tf_keras" in sys.modules else None)
    if "keras" in sys.modules and package == "keras" and in_use is None:
        in_use = ("keras", sys.modules["keras"].backend.backend())
    if in_use not in (None, (package, backend)):
        raise ApiError(
            f"API {api!r} needs {package} on {backend}, but {in_use[0]} on {in_use[1]} is "
            "already in use in this process; run each Keras API group in its own process"
        )
    _loaded = (package, backend)
    if package == "keras":
        os.environ["KERAS_BACKEND"] = backend
    return importlib.import_module(package)
