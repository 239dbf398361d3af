"""Row 7: the rows of bench/bench_projections.py and bench/bench_notifications.py, when present.

Their `run(...)` functions return rows as (what, figure, baseline) strings, `Row`s or dicts,
or (bench_projections) one mapping of results;
keyword arguments are passed only when the function accepts them (`size` always is, when
named). HOOK: a module that is not there yet yields one "not present" row, not a crash.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from bench.harness import Row

# Per size, the keyword arguments offered to each module's run() (filtered by its signature).
KWARGS: dict[str, dict[str, dict[str, Any]]] = {
    # Each module keeps its own sizes; only what it still takes from here is listed.
    "bench.bench_notifications": {
        "small": {"events": 150},
        "full": {"events": 500},
    },
}


def _from_mapping(group: str, result: dict[str, Any]) -> list[Row]:
    """bench_projections' result: rebuild against its baseline, then each query's latency."""
    rows = []
    if "rebuild" in result and "baseline" in result:
        rebuild, base = result["rebuild"], result["baseline"]
        rows.append(Row(group, f"rebuild events/s ({rebuild.get('events', 0):,} events)",
                        rebuild["events_per_s"], "/s", base["events_per_s"],
                        "select + json.loads the same records"))
    for name, q in (result.get("queries") or {}).items():
        rows.append(Row(group, f"{name}, p50", q.get("p50_ms"), "ms",
                        note=f"p95 {q.get('p95_ms', 0):.2f} ms; no baseline"))
    if not rows:
        rows.append(Row(group, "result", None, "", note=str(result)[:200]))
    return rows


def _as_row(group: str, item: Any) -> Row:
    if isinstance(item, Row):
        return item
    if isinstance(item, dict):
        return Row(group=group, **{k: v for k, v in item.items() if k != "group"})
    what, figure, baseline = (str(x) for x in item)
    return Row(group, what, None, "", baseline_what=baseline, figure_text=figure)


def run(module: str, group: str, size_name: str) -> list[Row]:
    """Call `module.run` with the keyword arguments it accepts; its rows as `Row`s."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        return [Row(group, f"{module.split('.')[-1]}: not present yet", None, "",
                    note=f"hook: add {module.replace('.', '/')}.py with run(...) -> rows")]
    fn = getattr(mod, "run", None)
    if fn is None:
        return [Row(group, f"{module}: no run() function", None, "",
                    note="hook: expose run(...) returning (what, figure, baseline) rows")]
    params = inspect.signature(fn).parameters
    offered = {"size": size_name, **KWARGS.get(module, {}).get(size_name, {})}
    kwargs = {k: v for k, v in offered.items() if k in params}
    result = fn(**kwargs)
    if isinstance(result, dict):
        return _from_mapping(group, result)
    return [_as_row(group, item) for item in result]
