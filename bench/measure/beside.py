"""Models timed in the worker that starts a Jupyter kernel, in turns with the kernel's own.

A reading run in a kernel differs from its variant in the process itself (a kernel's instead of a
worker's), so the two cannot share one process, and timed in separate processes their ratio
carries everything that set the two processes apart, such as what the other workers of a small
machine were doing at the time (docs/method.md, "A kernel's runs"). Here the worker that
starts the kernel builds the variants itself (``prepare``), and the kernel's paired timing
(``bench.measure.timing.time_paired``) visits them as it visits its own models, through a
``RemoteStepper``: each of its steps is a message to the worker, which takes the step and answers
with its seconds (``serving``). The two processes take turns, block by block, so a disturbance
of the machine falls on both sides of a block's ratio, as it does within one process; what is
left is what the kernel itself costs and what sets two processes apart while they take turns.

A step is timed where it is taken, by that process's clock, so the messages' time is left out.
The worker answers on a Unix socket in the run's scratch folder, open to the kernel alone (an
authentication key it is given at its start).
"""

import contextlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Client, Listener
from pathlib import Path

from bench.errors import summarize_exception
from bench.measure import timing

STEP, SETTLE = "step", "settle"
SOCKET_NAME = "beside.sock"


@dataclass(frozen=True)
class Beside:
    """The models ((recipe, api) -> their stepper) this process times for a kernel, and why any
    other it was asked for could not be built."""

    steppers: dict = field(default_factory=dict)
    error: str = ""


def prepare(session, models) -> Beside:
    """Build and trace each of ``models`` ((recipe, api) pairs) in this process, as a worker
    builds its references (``timing.reference_stepper``); one that cannot be built is named."""
    steppers, errors = {}, []
    for recipe, api in models:
        try:
            steppers[recipe, api] = timing.reference_stepper(session, recipe, api)
        except Exception as error:
            errors.append(f"{recipe} ({api}): {summarize_exception(error)}")
    return Beside(steppers, "; ".join(errors))


@contextlib.contextmanager
def serving(prepared: Beside, folder: Path):
    """Answer one kernel's steps of ``prepared``'s models until the ``with`` ends: yields what
    the kernel needs to reach them (``Address``), or None where there is nothing to time."""
    if not prepared.steppers:
        yield None
        return
    address = Address(
        str(Path(folder) / SOCKET_NAME), secrets.token_hex(16), list(prepared.steppers)
    )
    listener = Listener(address.path, family="AF_UNIX", authkey=bytes.fromhex(address.key))
    answering = threading.Thread(
        target=_answer, args=(listener, list(prepared.steppers.values())), daemon=True
    )
    answering.start()
    try:
        yield address
    finally:
        listener.close()  # a kernel that never connected: accept() ends


@dataclass(frozen=True)
class Address:
    """Where the worker answers, the key it asks for and the models it times, in its order."""

    path: str
    key: str
    models: list

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "key": self.key,
            "models": [list(model) for model in self.models],
        }


def _answer(listener: Listener, steppers: list) -> None:
    """Take each step or settle the kernel asks for and answer with its seconds, until it
    hangs up."""
    try:
        connection = listener.accept()
    except OSError:  # closed before any kernel connected
        return
    with connection:
        while True:
            try:
                verb, index = connection.recv()
            except (EOFError, OSError):
                return
            connection.send(_answer_one(steppers[index], verb))


def _answer_one(stepper, verb: str) -> tuple:
    """(True, the step's seconds or None for a settle), or (False, why it raised): the kernel
    raises that, so that its run fails with the worker's error, not a closed socket."""
    try:
        if verb == STEP:
            began = time.perf_counter()
            stepper()
            return True, time.perf_counter() - began
        stepper.settle()
        return True, None
    except Exception as error:
        return False, summarize_exception(error)


class RemoteStepper:
    """A stepper, for ``timing.time_paired`` in the kernel, of a model the worker times: each
    call is one step there; ``timed()`` returns its seconds by the worker's clock."""

    def __init__(self, connection, index: int, model: tuple):
        self.connection, self.index, self.model = connection, index, model

    def timed(self) -> float:
        return self._ask(STEP)

    def __call__(self):
        self.timed()

    def settle(self):
        self._ask(SETTLE)

    def _ask(self, verb: str):
        self.connection.send((verb, self.index))
        answered, value = self.connection.recv()
        if not answered:
            recipe, api = self.model
            raise RuntimeError(f"{recipe} ({api}), timed by the kernel's worker: {value}")
        return value


def connect(address: dict | None) -> dict:
    """(recipe, api) -> [``RemoteStepper``] of each model the worker at ``address``
    (``Address.to_json``) times; empty for None."""
    if not address:
        return {}
    connection = Client(address["path"], family="AF_UNIX", authkey=bytes.fromhex(address["key"]))
    return {
        tuple(model): [RemoteStepper(connection, index, tuple(model))]
        for index, model in enumerate(address["models"])
    }
