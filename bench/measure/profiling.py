"""An optional look inside a train step: a few steps under TensorFlow's profiler, after the timing.

Off by default (``[training] profile_steps = 0``): the profiler slows every op it records. On, a
run profiles that many calls of its train function once its epochs and blocks are timed, keeps the
raw trace in the results folder (open it with TensorBoard's profile plugin) and summarises it as
the ops' self time per step, by op type: an op's time less the time of what ran inside it.
"""

import collections
import json
from dataclasses import replace
from pathlib import Path

from bench.errors import summarize_exception
from bench.results.folder import TOP_OPS_FILE
from bench.results.records import RunResult, RunSpec


def profile_or_say_why(session, built, spec: RunSpec, result: RunResult) -> RunResult:
    """A profile of ``built``'s train step into the run's profile folder, taken after the timed
    part: ``result`` as it was, or saying why no profile was taken (the timing stays valid)."""
    if session.tf is None:
        return replace(result, error="profile not taken: the profiler is TensorFlow's")
    try:
        folder = Path(spec.profile_dir)
        folder.mkdir(parents=True, exist_ok=True)
        step = session.backend.stepper(session, built, spec.run.seed)
        capture(session.tf, step, session.training.profile_steps, folder)
        return result
    except Exception as error:
        return replace(result, error=f"profile not taken: {summarize_exception(error)}")


def capture(tf, step, steps: int, folder: Path) -> dict:
    """Profile ``steps`` calls of ``step`` into ``folder``, then sum the trace's ops by type:
    their self time in ms per step ({op type: ms}), written beside the trace and returned."""
    tf.profiler.experimental.start(str(folder))
    try:
        for _ in range(steps):
            step()
    finally:
        tf.profiler.experimental.stop()
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    spaces = []
    for path in folder.rglob("*.xplane.pb"):
        space = xplane_pb2.XSpace()
        space.ParseFromString(path.read_bytes())
        spaces.append(space)
    per_step = {
        op: seconds * 1000 / steps for op, seconds in self_seconds_by_op_type(spaces).most_common()
    }
    (folder / TOP_OPS_FILE).write_text(json.dumps(per_step), encoding="utf-8")
    return per_step


def self_seconds_by_op_type(spaces) -> collections.Counter:
    """Self time of the TensorFlow ops in the host planes, summed by op type (event "name:Type")."""
    totals = collections.Counter()
    for space in spaces:
        for plane in space.planes:
            names = {key: metadata.name for key, metadata in plane.event_metadata.items()}
            for line in plane.lines:
                for name, self_ps in self_times(
                    [
                        (names[event.metadata_id], event.offset_ps, event.duration_ps)
                        for event in line.events
                    ]
                ):
                    if is_op(name):
                        totals[name.rsplit(":", 1)[1]] += self_ps / 1e12
    return totals


def is_op(name: str) -> bool:
    """A TensorFlow op's event is "op_name:OpType"; the runtime's own are "Class::method"."""
    return ":" in name and "::" not in name


def self_times(events: list) -> list:
    """(name, self time) of events (name, start, duration) of one thread, nested by time."""
    events = sorted(events, key=lambda event: (event[1], -event[2]))
    own = [duration for _, _, duration in events]
    open_events = []  # indices of events that contain the current one
    for index, (_, start, duration) in enumerate(events):
        while open_events and start >= events[open_events[-1]][1] + events[open_events[-1]][2]:
            open_events.pop()
        if open_events:
            own[open_events[-1]] -= duration
        open_events.append(index)
    return [(name, max(self_time, 0)) for (name, _, _), self_time in zip(events, own)]
