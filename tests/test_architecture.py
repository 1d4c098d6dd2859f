"""docs/architecture.md maps every module under bench/, in the order data flows through them,
and pyproject.toml's import-linter contracts hold every module at bench/'s top."""

import re
import tomllib

from tests.builders import ROOT

ARCHITECTURE = ROOT / "docs" / "architecture.md"
BENCH = ROOT / "bench"
# The rooms in the order data flows through them; the shared modules at bench/'s top come first.
DATA_FLOW = ("", "config", "run", "measure", "results", "analysis", "report", "cli")
MODULE_LINE = re.compile(r"^([\w/]+\.py)\s", re.M)


def mapped_modules() -> list:
    """The modules the map names, in its order: the first word of each line of its first code
    block that names a .py file under bench/."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = text.split("```\n", 2)[1]
    return MODULE_LINE.findall(block)


def modules_under_bench() -> set:
    """Every module under bench/ but a package's empty ``__init__.py``."""
    return {
        path.relative_to(BENCH).as_posix()
        for path in BENCH.rglob("*.py")
        if not (path.name == "__init__.py" and not path.read_text(encoding="utf-8").strip())
    }


def room(module: str) -> str:
    return module.split("/")[0] if "/" in module else ""


def test_every_module_under_bench_has_its_line_in_the_map():
    missing = sorted(modules_under_bench() - set(mapped_modules()))
    assert not missing, f"docs/architecture.md's map lacks {', '.join(missing)}"


def test_the_map_names_no_module_that_is_gone_and_none_twice():
    mapped = mapped_modules()
    gone = sorted(set(mapped) - modules_under_bench())
    assert not gone, f"docs/architecture.md's map names modules that do not exist: {gone}"
    assert len(mapped) == len(set(mapped))


def test_the_map_runs_in_the_order_data_flows():
    rooms = [room(module) for module in mapped_modules()]
    assert set(rooms) <= set(DATA_FLOW)
    order = [DATA_FLOW.index(found) for found in rooms]
    assert order == sorted(order), "docs/architecture.md's map leaves the order data flows in"


def test_the_map_test_would_catch_a_missing_module(tmp_path, monkeypatch):
    text = ARCHITECTURE.read_text(encoding="utf-8")
    monkeypatch.setattr(
        "tests.test_architecture.ARCHITECTURE", tmp_path / "architecture.md", raising=True
    )
    (tmp_path / "architecture.md").write_text(
        re.sub(r"^analysis/verdicts\.py .*\n", "", text, flags=re.M), encoding="utf-8"
    )
    assert "analysis/verdicts.py" in modules_under_bench() - set(mapped_modules())


# Names that may stand in both rooms for now (none).
SHARED_FOR_NOW = set()


def public_names(room_name: str) -> dict:
    """name -> the modules of ``room_name`` that define it: each module's own name, and its
    public top-level functions, classes and constants."""
    import ast

    found = {}
    for path in sorted((BENCH / room_name).glob("*.py")):
        if path.name == "__init__.py":
            continue
        found.setdefault(path.stem, set()).add(path.name)
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets = (
                [node.name]
                if isinstance(node, ast.FunctionDef | ast.ClassDef)
                else [target.id for target in getattr(node, "targets", []) if hasattr(target, "id")]
            )
            for name in targets:
                if not name.startswith("_"):
                    found.setdefault(name, set()).add(path.name)
    return found


def test_no_two_public_things_share_a_name_in_or_across_analysis_and_report():
    analysis, report = public_names("analysis"), public_names("report")
    shared = {
        name: (sorted(analysis[name]), sorted(report[name]))
        for name in set(analysis) & set(report)
        if name not in SHARED_FOR_NOW
    }
    assert not shared, f"names in both analysis/ and report/: {shared}"
    for room_name, names in (("analysis", analysis), ("report", report)):
        within = {name: modules for name, modules in names.items() if len(modules) > 1}
        assert not within, f"names defined twice in {room_name}/: {within}"


def contracts() -> dict:
    """pyproject.toml's import-linter contracts, by name."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {found["name"]: found for found in settings["tool"]["importlinter"]["contracts"]}


def shared_modules() -> set:
    """The modules at bench/'s top that its rooms share: every one but the package and its
    ``__main__`` (the command line's entry, the top layer)."""
    return {
        f"bench.{path.stem}"
        for path in BENCH.glob("*.py")
        if path.stem not in ("__init__", "__main__")
    }


def test_every_shared_module_is_held_by_the_contracts_on_backends_and_rooms():
    """A module added at bench/'s top is kept from importing a backend or any room by
    import-linter (`make lint`) only if the two contracts name it."""
    found = contracts()
    (backends,) = [found[name] for name in found if name.startswith("Only measure/")]
    (rooms,) = [found[name] for name in found if name.startswith("The shared modules")]
    for contract in (backends, rooms):
        missing = sorted(shared_modules() - set(contract["source_modules"]))
        assert not missing, f"'{contract['name']}' does not name {', '.join(missing)}"
