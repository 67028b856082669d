"""Turn the raw results into the figures the issue asks for, and render them as markdown."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.engines import SCENARIOS

# DESIGN.md's budgets in storage operations per request: S1 none, S2 one load, S3 a load and
# a save, S4 one create, S6 one load (no touch inside the interval). It sets none for a login.
OPERATIONS = {"S1": 0, "S2": 1, "S3": 2, "S4": 1, "S6": 1}
# cached_db's unit is (SQL statements, cache calls): a load is one cache hit, a write both.
CACHED_DB = {"S1": (0, 0), "S2": (0, 1), "S3": (1, 2), "S4": (1, 1), "S6": (0, 1)}
NOT_LANDED = "not measured (engine not landed)"

# The targets of issue #20 (the lean core), which every verdict below judges. B/A at most
# CELL_TARGET in every cell, tighter where a target names the cell; the file engine's writes
# fsync, which Django's do not: there the ratio is the measured cost of that guarantee.
CELL_TARGET = 1.05
RATIO_TARGETS = {
    **{("db_postgres", s): 0.5 for s in ("S2", "S3", "S4", "S5", "S6")},
    **{("cached_db", s): 0.5 for s in ("S3", "S4", "S5", "S6")},
    ("cached_db", "S2"): 0.9,
    **{("db_sqlite", s): 0.5 for s in ("S2", "S5", "S6")},
    ("redis", "S2"): 1.0,
    ("redis", "S3"): 0.8,
}
FSYNC_CELLS = {("file", "S3"), ("file", "S4"), ("file", "S5")}
# Where the disk sync dominates, B within this multiple of the bare client's floor.
FLOOR_TARGETS = {("db_sqlite", "S3"): 1.2, ("db_sqlite", "S4"): 1.2}
GEOMETRIC_MEAN_TARGET = 0.65
LOAD_TARGETS = {"redis": 1.2, "postgres": 1.3}
STORE_LABELS = {"redis": "Redis", "postgres": "PostgreSQL"}


def ratio_target(engine: str, scenario: str) -> float | None:
    """B/A's target for a cell, or None where none applies (the file engine's fsync)."""
    if (engine, scenario) in FSYNC_CELLS:
        return None
    return RATIO_TARGETS.get((engine, scenario), CELL_TARGET)


def budget_check(engine: str, scenario: str, cost: dict[str, Any]) -> dict[str, Any] | None:
    """Compare a sessionplus cost with DESIGN.md's budget, in the engine's own unit."""
    if scenario not in OPERATIONS:
        return None
    sql, commands = cost["session_sql_statements"], cost["redis_commands"]
    if engine in ("db_sqlite", "db_postgres", "db_mariadb"):
        unit, budget, measured = "SQL statements", OPERATIONS[scenario], sql
    elif engine == "cache_redis":
        unit, budget, measured = "cache calls (Redis commands)", OPERATIONS[scenario], commands
    elif engine == "redis":
        unit, budget, measured = "round trips", OPERATIONS[scenario], cost["redis_round_trips"]
    elif engine == "cached_db":
        unit, budget, measured = "SQL + cache calls", list(CACHED_DB[scenario]), [sql, commands]
    elif engine == "signed_cookies":
        unit, budget, measured = "server-side operations", 0, sql + commands
    else:
        return None  # the file engine's operations are not counted
    return {"unit": unit, "budget": budget, "measured": measured, "met": measured == budget}


def derive(engine_result: dict[str, Any]) -> None:
    """Add ratios, floor multiples and target verdicts to one engine's results, in place."""
    scenarios = engine_result.get("scenarios") or {}
    for name, entry in scenarios.items():
        stock, plus, floor = entry.get("stock"), entry.get("sessionplus"), entry.get("floor")
        cell = (engine_result["engine"], name)
        target = ratio_target(*cell)
        verdict: dict[str, Any] = {"ratio_target": target}
        if stock and plus:
            verdict["ratio"] = round(plus["median_us"] / stock["median_us"], 2)
            verdict["ratio_met"] = None if target is None else verdict["ratio"] <= target
        if plus and floor:
            verdict["floor_multiple"] = round(plus["median_us"] / floor["median_us"], 2)
            if cell in FLOOR_TARGETS:
                verdict["floor_target"] = FLOOR_TARGETS[cell]
                verdict["floor_met"] = verdict["floor_multiple"] <= FLOOR_TARGETS[cell]
        if plus:
            verdict["budget"] = budget_check(engine_result["engine"], name, plus["cost"])
        entry["verdict"] = verdict


def session_share(requests_per_s: float, stock_per_s: float, ceiling_per_s: float) -> float | None:
    """
    Return the session's cost per request at ``requests_per_s`` as a share of Django's: the
    time per request above the ceiling's (the same server answering a page that never
    touches the session). None when Django's page measured no slower than the ceiling.
    """
    django_cost = 1 / stock_per_s - 1 / ceiling_per_s
    if django_cost <= 0:
        return None
    return round((1 / requests_per_s - 1 / ceiling_per_s) / django_cost, 2)


def derive_load(load: dict[str, Any]) -> None:
    ceiling = (load.get("ceiling") or {}).get("requests_per_s")
    for store, setup in load.get("setups", {}).items():
        stock, plus = setup.get("stock"), setup.get("sessionplus")
        if stock and plus:
            target = LOAD_TARGETS[store]
            setup["ratio"] = round(plus["requests_per_s"] / stock["requests_per_s"], 2)
            setup["ratio_target"] = target
            setup["ratio_met"] = setup["ratio"] >= target
            if ceiling:
                rate = stock["requests_per_s"]
                setup["ceiling_ratio"] = round(ceiling / rate, 2)
                setup["session_share"] = session_share(plus["requests_per_s"], rate, ceiling)
                setup["session_share_needed"] = session_share(target * rate, rate, ceiling)


# Markdown ----------------------------------------------------------------------------


def cost_text(cost: dict[str, Any] | None) -> str:
    if not cost:
        return "-"
    parts = []
    if cost["sql_statements"]:
        other = cost["sql_statements"] - cost["session_sql_statements"]
        parts.append(f"{cost['sql_statements']} SQL" + (f" ({other} auth)" if other else ""))
    if cost["redis_commands"] or cost["redis_round_trips"]:
        parts.append(f"{cost['redis_commands']} cmd / {cost['redis_round_trips']} RT")
    return ", ".join(parts) or "0"


def target_text(target: float | None) -> str:
    return "fsync: no target" if target is None else f"≤{target}"


def mark(met: bool | None) -> str:
    return "" if met is None else (" ✓" if met else " ✗")


def budget_text(budget: dict[str, Any] | None) -> str:
    if not budget:
        return "-"
    shown = joined(budget["budget"])
    if budget["met"]:
        return f"{shown} ✓"
    return f"{shown} ✗ ({joined(budget['measured'])})"


def joined(count: int | list[int]) -> str:
    return "+".join(map(str, count)) if isinstance(count, list) else str(count)


def per_operation_table(engines: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| engine | scenario | A: Django µs | B: sessionplus µs | B/A (target) | floor µs "
        "| B/floor (target) | A: storage ops | B: storage ops | B budget |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for engine in engines:
        if engine.get("not_measured"):
            lines.append(f"| {engine['label']} | all | {engine['not_measured']} |||||||| ")
            continue
        for name, entry in engine["scenarios"].items():
            stock, plus, floor, verdict = (
                entry["stock"],
                entry["sessionplus"],
                entry["floor"],
                entry.get("verdict", {}),
            )
            b = f"{plus['median_us']:.0f}" if plus else NOT_LANDED
            ratio = (
                f"{verdict['ratio']:.2f} ({target_text(verdict['ratio_target'])})"
                f"{mark(verdict['ratio_met'])}"
                if "ratio" in verdict
                else "-"
            )
            floor_us = f"{floor['median_us']:.0f}" if floor else "-"
            multiple = f"{verdict['floor_multiple']:.2f}x" if "floor_multiple" in verdict else "-"
            if "floor_target" in verdict:
                multiple += f" (≤{verdict['floor_target']}){mark(verdict['floor_met'])}"
            lines.append(
                f"| {engine['label']} | {name} {entry['title']} | {stock['median_us']:.0f} | {b} "
                f"| {ratio} | {floor_us} | {multiple} | {cost_text(stock.get('cost'))} "
                f"| {cost_text(plus and plus.get('cost'))} | {budget_text(verdict.get('budget'))} |"
            )
    return lines


def geometric_mean_line(engines: list[dict[str, Any]]) -> str:
    ratios = [
        entry["verdict"]["ratio"]
        for engine in engines
        for entry in (engine.get("scenarios") or {}).values()
        if "ratio" in entry.get("verdict", {})
    ]
    if not ratios:
        return "No cell measured on both sides."
    mean = geometric_mean(ratios)
    return (
        f"{ratio_summary(ratios)} Target: geometric mean ≤{GEOMETRIC_MEAN_TARGET}"
        f"{mark(mean <= GEOMETRIC_MEAN_TARGET)}; cells missing their target: "
        f"{missed_cells(engines) or 'none'}."
    )


def missed_cells(engines: list[dict[str, Any]]) -> str:
    """The cells whose ratio or floor multiple misses its target, as "engine S3 (0.88)"."""
    missed = []
    for engine in engines:
        for name, entry in (engine.get("scenarios") or {}).items():
            verdict = entry.get("verdict", {})
            if verdict.get("ratio_met") is False:
                missed.append(f"{engine['engine']} {name} ({verdict['ratio']:.2f})")
            if verdict.get("floor_met") is False:
                multiple = verdict["floor_multiple"]
                missed.append(f"{engine['engine']} {name} ({multiple:.2f}x the floor)")
    return ", ".join(missed)


def geometric_mean(ratios: list[float]) -> float:
    return math.exp(sum(map(math.log, ratios)) / len(ratios))


def ratio_summary(ratios: list[float]) -> str:
    mean = geometric_mean(ratios)
    return f"Geometric mean of B/A over {len(ratios)} cells: {mean:.2f}; worst: {max(ratios):.2f}."


def profile_tables(engines: list[dict[str, Any]]) -> list[str]:
    """Each engine's and scenario's top sessionplus functions, from ``--profile``."""
    lines = []
    for engine in engines:
        for scenario, rows in (engine.get("profile") or {}).items():
            lines += [
                "",
                f"#### {engine['label']}, {scenario}",
                "",
                "| sessionplus function | calls | own µs | cumulative µs |",
                "|---|--:|--:|--:|",
                *(
                    f"| {row['function']} | {row['calls']:g} | {row['own_us']:.1f} "
                    f"| {row['cumulative_us']:.1f} |"
                    for row in rows
                ),
            ]
    if not lines:
        return []
    return [
        "",
        "### Profile: sessionplus's own functions per request (cProfile, top by cumulative time)",
        *lines,
    ]


def instruction_table(engines: list[dict[str, Any]]) -> list[str]:
    """Instructions per request, both sides and their ratio, from ``--instructions``."""
    counted = [engine for engine in engines if engine.get("instructions")]
    if not counted:
        return []
    lines = [
        "",
        "### CPU instructions per request (callgrind, garbage collector off)",
        "",
        "Django's / sessionplus's instructions in thousands (B/A). Counted in the Python "
        "process only: not the kernel, the servers or the wait; hashing is overstated "
        "(valgrind has no SHA instructions).",
        "",
        "| engine | " + " | ".join(scenario.name for scenario in SCENARIOS) + " |",
        "|---|" + "--:|" * len(SCENARIOS),
    ]
    ratios = []
    for engine in counted:
        entry = engine["instructions"]
        if entry.get("not_measured"):
            lines.append(f"| {engine['label']} | not measured: {entry['not_measured']} |")
            continue
        cells = []
        for scenario in SCENARIOS:
            both = entry["scenarios"][scenario.name]
            ratio = both["sessionplus"] / both["stock"]
            ratios.append(ratio)
            cells.append(
                f"{both['stock'] / 1000:.0f}k / {both['sessionplus'] / 1000:.0f}k ({ratio:.2f})"
            )
        lines.append(f"| {engine['label']} | " + " | ".join(cells) + " |")
    if ratios:
        lines += ["", ratio_summary(ratios)]
    return lines


def rolling_table(engines: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| engine | pattern (100 unmodified reads) | Django, SESSION_SAVE_EVERY_REQUEST "
        "| sessionplus, SESSIONPLUS_TOUCH_INTERVAL |",
        "|---|---|--:|--:|",
    ]
    for engine in engines:
        rolling = engine.get("rolling")
        if not rolling:
            continue
        interval = rolling["touch_interval"]
        for pattern, variants in rolling["patterns"].items():
            stock, plus = variants.get("stock"), variants.get("sessionplus")
            plus_text = f"{plus['writing_requests']} ({interval} s)" if plus else NOT_LANDED
            lines.append(
                f"| {engine['label']} | {pattern} | {stock['writing_requests']} | {plus_text} |"
            )
    return lines


def load_table(load: dict[str, Any]) -> list[str]:
    if load.get("not_measured"):
        return [f"Not measured: {load['not_measured']}."]
    lines = [
        f"{load['workload']}; {load['server']}; {load['rounds']} x {load['seconds']} s per "
        "configuration, medians.",
        "",
        "| sessions in | Django req/s | sessionplus req/s | B/A (target) "
        "| Django p50 / p99 ms | sessionplus p50 / p99 ms | errors A / B |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for store, setup in load["setups"].items():
        stock, plus = setup["stock"], setup.get("sessionplus")
        label = STORE_LABELS[store]
        if not plus:
            lines.append(
                f"| {label} | {stock['requests_per_s']:.0f} | {NOT_LANDED} | - "
                f"| {stock['p50_ms']} / {stock['p99_ms']} | - | {stock['errors']} / - |"
            )
            continue
        lines.append(
            f"| {label} | {stock['requests_per_s']:.0f} | {plus['requests_per_s']:.0f} "
            f"| {setup['ratio']:.2f} (≥{setup['ratio_target']}){mark(setup['ratio_met'])} "
            f"| {stock['p50_ms']} / {stock['p99_ms']} | {plus['p50_ms']} / {plus['p99_ms']} "
            f"| {stock['errors']} / {plus['errors']} |"
        )
    return lines + ceiling_lines(load) + cpu_table(load) + worker_table(load.get("worker"))


def ceiling_lines(load: dict[str, Any]) -> list[str]:
    ceiling = load.get("ceiling")
    if not ceiling:
        return []
    shares = []
    for store, setup in load["setups"].items():
        if setup.get("ceiling_ratio") is None:
            continue
        share, needed = setup["session_share"], setup["session_share_needed"]
        shares.append(
            f"{STORE_LABELS[store]}: at most {setup['ceiling_ratio']:.2f}x Django's; "
            f"sessionplus's session work costs {share} of Django's (≥{setup['ratio_target']}x "
            f"needs ≤{needed})"
        )
    return [
        "",
        f"Ceiling: Django's stack on the same server answering a page that never touches the "
        f"session, {ceiling['requests_per_s']:.0f} req/s, the most any engine could reach. "
        "The session's work is the time per request above the ceiling's. "
        + "; ".join(shares)
        + ".",
    ]


def cpu_table(load: dict[str, Any]) -> list[str]:
    rows = [
        (STORE_LABELS[store], variant, figures)
        for store, setup in load["setups"].items()
        for variant, figures in (
            ("Django", setup["stock"]),
            ("sessionplus", setup.get("sessionplus")),
        )
        if figures and "cpu_us_per_request" in figures
    ]
    if load.get("ceiling"):
        rows.append(("no session (ceiling)", "Django", load["ceiling"]))
    if not rows:
        return []
    lines = [
        "",
        "CPU µs per request (medians): gunicorn's workers (of which system time, in the kernel),"
        " the store's server, wrk.",
        "",
        "| sessions in | stack | workers | of which system | store | wrk |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for label, variant, figures in rows:
        cpu = figures["cpu_us_per_request"]
        lines.append(
            f"| {label} | {variant} | {cpu['workers']} | {cpu['workers_system']} | {cpu['store']}"
            f" | {cpu['wrk']} |"
        )
    return lines


def worker_table(worker: dict[str, Any] | None) -> list[str]:
    """One gunicorn worker's events per request (``--worker-instructions``)."""
    if not worker:
        return []
    if "not_measured" in worker:
        return ["", f"One worker's instructions: {worker['not_measured']}."]
    ceiling = worker["ceiling"]["instructions"]
    lines = [
        "",
        f"One gunicorn worker under callgrind serving the same mix one request after another, "
        f"per request ({worker['requests']} requests; the session's work is what is above "
        "the page that never touches the session):",
        "",
        "| sessions in | stack | instructions | session's instructions | L1 instruction misses "
        "| L1 data misses | mispredicted branches |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    rows = [
        (STORE_LABELS[store], label, events[variant])
        for store, events in worker["setups"].items()
        for variant, label in (("stock", "Django"), ("sessionplus", "sessionplus"))
    ]
    rows.append(("no session (ceiling)", "Django", worker["ceiling"]))
    for store_label, label, events in rows:
        lines.append(
            f"| {store_label} | {label} | {events['instructions']:,} "
            f"| {events['instructions'] - ceiling:,} | {events['i1_misses']:,} "
            f"| {events['d1_misses']:,} | {events['mispredicted_branches']:,} |"
        )
    shares = [
        f"{STORE_LABELS[store]} {worker_session_share(worker, store):.2f}"
        for store in worker["setups"]
    ]
    lines += ["", "sessionplus's session instructions ÷ Django's: " + ", ".join(shares) + "."]
    return lines


def worker_session_share(worker: dict[str, Any], store: str) -> float:
    """Return sessionplus's instructions above the ceiling's page as a share of Django's."""
    ceiling = worker["ceiling"]["instructions"]
    stock, plus = (
        worker["setups"][store][variant]["instructions"] for variant in ("stock", "sessionplus")
    )
    return (plus - ceiling) / (stock - ceiling)


def markdown(result: dict[str, Any]) -> str:
    machine, versions = result["machine"], result["versions"]
    lines = [
        f"Measured {result['date']} on {machine['cores']} cores ({machine['cpu']}), "
        f"{machine['platform']}.",
        "",
        "Versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()) + ".",
        "",
        f"### Per operation (median µs per request, {result['config']['rounds']} alternating "
        f"rounds x {result['config']['requests']} requests)",
        "",
        *per_operation_table(result["per_operation"]),
        "",
        geometric_mean_line(result["per_operation"]),
        "",
        "Storage ops: SQL statements (those on auth_user, a login's last_login, in brackets) and "
        "Redis commands / round trips, per request. Floor: the bare client doing the least "
        "storage work the scenario needs. Targets: issue #20's (≤1.05 in every cell unless "
        "the cell has its own; the file engine's writes fsync, which Django's do not).",
        "",
        "### Rolling sessions: requests that wrote to storage, per 100",
        "",
        *rolling_table(result["per_operation"]),
        "",
        "### Under load",
        "",
        *load_table(result["load"]),
        *instruction_table(result["per_operation"]),
        *profile_tables(result["per_operation"]),
    ]
    return "\n".join(lines) + "\n"
