"""Mutation testing of the modules where a wrong value reaches a robot or a user (mutmut 3, in a copy).

    ./dev.sh mutate                   list the modules and the tests that judge each
    ./dev.sh mutate control runtime   mutate those modules (one after the other), print killed/survived/total
    ./dev.sh mutate --all             every module below (about 20-40 min on 2 busy cores)
    ./dev.sh mutate control --survivors   also print each surviving mutant's diff

mutmut changes one thing at a time in a function (a number, an operator, a comparison, an argument dropped,
a value replaced by None...) and runs the tests that reach that function; a mutant the tests still pass with
"survived": a behaviour no test pins down. Work happens in out/mutation/<module>/ (a copy of the tree; mutmut
writes its mutated copy into mutants/ inside it), so the checkout is never modified and background processes
importing ivm_ros are never affected. mutmut 3 mutates code inside functions and methods only (not module
constants, class attributes, or functions with decorators other than staticmethod/classmethod).

Results: out/mutation/<module>/mutants/mutmut-cicd-stats.json and out/mutation/summary.json; survivors can be
inspected with `cd out/mutation/<module> && ../../../.venv/bin/mutmut show <name>` (or `mutmut browse`).
Known survivors and why: docs/mutation_testing.md.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = "mutmut==3.8.1"
#: Module name -> (source file, tests that judge it: fast, in-process, no node processes).
MODULES: dict[str, tuple[str, list[str]]] = {
    "control": ("ivm_ros/policies/control.py", ["test/policies/test_control.py"]),
    "sensors": ("ivm_ros/policies/sensors.py", ["test/policies/test_control.py"]),
    "wrappers": ("ivm_ros/policies/wrappers.py", ["test/policies/test_policies.py", "test/policies/test_control.py"]),
    "conversions": ("ivm_ros/ros/conversions.py", ["test/ros/test_conversions.py", "test/ros/test_cdr.py",
                                                   "test/ros/test_compressed_limits.py"]),
    "cdr": ("ivm_ros/ros/cdr.py", ["test/ros/test_cdr.py"]),
    "apply": ("ivm_ros/masking/apply.py", ["test/masking/test_masking.py", "test/test_pipeline.py"]),
    "inputs": ("ivm_ros/inputs.py", ["test/policies/test_control.py", "test/ros/test_instruction_input.py",
               # the rejection reasons are counted by the nodes: the two tests that send every kind of bad input
               "test/ros/test_policy_node.py::test_bad_images_and_instructions_are_counted_and_the_node_keeps_serving",
               "test/ros/test_masking_node.py::test_bad_input_is_counted_and_node_keeps_serving"]),
    "runtime": ("ivm_ros/runtime.py", ["test/test_runtime.py", "test/policies/test_control.py"]),
    "tasks": ("sim/calvin/tasks.py", ["test/sim/calvin/test_sim_tasks.py"]),
}
#: Source folder -> the import package it is (setup.py package_dir): mutmut names mutants by file path.
PACKAGES = {"ivm_ros": "ivm_ros", "sim": "ivm_ros_sim"}
#: What the tests need besides the packages and test/ (mutmut copies test/ and setup.cfg itself).
ALSO_COPY = ["pytest.ini", "config", "launch", "resource", "package.xml"]
#: Where the survivors and their verdicts are kept.
DOC = ROOT / "docs" / "mutation_testing.md"


def ensure_mutmut() -> Path:
    try:
        have = importlib.metadata.version("mutmut")
    except importlib.metadata.PackageNotFoundError:
        have = None
    if have != MUTMUT.split("==")[1]:
        print(f"[mutate] installing {MUTMUT} into {sys.prefix}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", MUTMUT], check=True)
    return Path(sys.executable).with_name("mutmut")


def tree_files() -> list[str]:
    """Files git would commit (tracked and untracked-not-ignored): the work copy is what a commit would hold."""
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"],
                         capture_output=True, check=True).stdout.decode()
    return [f for f in out.split("\0") if f and (ROOT / f).is_file() and "__pycache__" not in f]


def prepare(name: str, work: Path) -> Path:
    """A fresh copy of the tree in `work` (sim/ laid out as ivm_ros_sim/) and its [mutmut] setup.cfg."""
    source, tests = MODULES[name]
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    top = source.split("/", 1)[0]
    keep = set(PACKAGES) | {"test"} | set(ALSO_COPY)
    for rel in tree_files():
        first, _, rest = rel.partition("/")
        if first not in keep:
            continue
        dest = work / (PACKAGES[first] + "/" + rest if first in PACKAGES else rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest)
    shared = ROOT.parent / "shared"
    if shared.is_dir():  # tests find ../shared beside the tree they run in: mutants/ in this folder
        (work / "shared").symlink_to(shared, target_is_directory=True)
    package = PACKAGES[top]
    mutated = package + "/" + source.split("/", 1)[1]
    lines = ["[mutmut]", f"source_paths={package}", f"only_mutate={mutated}",
             "pytest_add_cli_args_test_selection=" + "\n    ".join(tests),
             "pytest_add_cli_args=-p no:randomly\n    -q",
             "also_copy=" + "\n    ".join(ALSO_COPY),
             "timeout_multiplier=10.0", "timeout_constant=5.0",
             "use_git_change_detection=false"]
    # Fork each mutant's process from a server that has only collected the tests: a process that ran them (rclpy
    # contexts with DDS threads, torch's OpenMP pool) does not survive a fork (inputs' node tests hung until
    # mutmut's timeout, ~30 s a mutant).
    lines.append("process_isolation=forkserver")
    (work / "setup.cfg").write_text("\n".join(lines) + "\n")
    return work


#: Lists the mutants no test killed with their diffs, in one process (run in a work folder: mutmut reads its
#: config from the current folder). `mutmut results` + one `mutmut show` each took seconds per mutant.
_LIST_SURVIVORS = """
import json
from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files
rows = []
for path in walk_mutatable_files():
    data = SourceFileMutationData(path=path)
    data.load()
    for key, code in data.exit_code_by_key.items():
        status = status_by_exit_code[code]
        if status not in ("killed", "caught by type check", "skipped"):
            rows.append({"name": key, "status": status, "diff": get_diff_for_mutant(key, path=path)})
print(json.dumps(rows))
"""


def survivors(work: Path, env: dict[str, str]) -> list[dict]:
    """Each mutant that no test killed: name, status, repository file:line, the line before and after."""
    out = subprocess.run([sys.executable, "-c", _LIST_SURVIVORS], cwd=work, env=env, capture_output=True,
                         text=True, check=True).stdout
    return [{**row, **_locate(work, row["name"], row["diff"])} for row in json.loads(out)]


def _function_node(path: Path, mutant: str) -> ast.AST | None:
    """The function a mutant name points at: ``pkg.mod.x_func__mutmut_3`` or ``pkg.mod.xǁClassǁmethod__mutmut_3``."""
    qual = mutant.rsplit(".", 1)[-1].rsplit("__mutmut_", 1)[0]
    parts = qual[1:].split("ǁ")[1:] if qual.startswith("xǁ") else [qual[2:]]
    body = ast.parse(path.read_text()).body
    node = None
    for part in parts:
        node = next((n for n in body if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                     and n.name == part), None)
        if node is None:
            return None
        body = node.body
    return node


def _locate(work: Path, mutant: str, diff: str) -> dict:
    """Repository file:line of the changed line and the line before and after the change. mutmut's hunks count
    from the first line of the function as libcst prints it: the comments above the def (its leading lines)
    come first. The line found is checked against the source text."""
    lines = diff.splitlines()
    path = next((ln[4:].strip() for ln in lines if ln.startswith("--- ")), None)
    before = after = offset = None
    old = None
    for ln in lines:
        if ln.startswith("@@"):
            old = int(ln.split()[1].lstrip("-").split(",")[0])
        elif old is not None and ln.startswith("-") and before is None:
            before, offset = ln[1:], old
        elif old is not None and ln.startswith("+") and after is None:
            after = ln[1:]
        elif old is not None and before is None and not ln.startswith(("+", "\\")):
            old += 1
    lineno = None
    source = work / path if path else None
    node = _function_node(source, mutant) if source and source.is_file() and offset is not None else None
    if node is not None:
        src = source.read_text().splitlines()
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])  # 1-based
        top = first
        while top > 1 and (not src[top - 2].strip() or src[top - 2].lstrip().startswith("#")):
            top -= 1
        while top < first and not src[top - 1].strip():  # the printed code is stripped of blank lines first
            top += 1
        guess = top + offset - 1
        matches = [i + 1 for i in range(top - 1, node.end_lineno) if src[i].strip() == (before or "").strip()]
        lineno = guess if guess in matches or not matches else min(matches, key=lambda i: abs(i - guess))
    if path:  # back to the repository's folder name (ivm_ros_sim/ is sim/)
        top_dir, _, rest = path.partition("/")
        path = next((src for src, pkg in PACKAGES.items() if pkg == top_dir), top_dir) + "/" + rest
    return {"file": path, "line": lineno, "before": before, "after": after}


def run(name: str, args, mutmut: Path) -> dict:
    work = ROOT / "out" / "mutation" / name
    if not (args.resume and (work / "setup.cfg").is_file()):
        prepare(name, work)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONDONTWRITEBYTECODE="1")
    shared = ROOT.parent / "shared"
    if "IVM_ROS_SHARED" not in env and shared.is_dir():
        env["IVM_ROS_SHARED"] = str(shared)  # the copy has no ../shared beside it
    start = time.monotonic()
    cmd = ["nice", str(mutmut), "run", "--max-children", str(args.max_children)]
    done = subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    (work / "mutmut_run.log").write_text(done.stdout)
    subprocess.run([str(mutmut), "export-cicd-stats"], cwd=work, env=env, capture_output=True)
    stats_file = work / "mutants" / "mutmut-cicd-stats.json"
    if done.returncode != 0 or not stats_file.is_file():
        print(done.stdout[-3000:])
        raise SystemExit(f"[mutate] {name}: mutmut failed (exit {done.returncode}); log {work / 'mutmut_run.log'}")
    stats = json.loads(stats_file.read_text())
    result = {"module": MODULES[name][0], "tests": MODULES[name][1], "seconds": round(time.monotonic() - start),
              **{k: stats[k] for k in ("killed", "survived", "total", "no_tests", "timeout", "suspicious")},
              "survivors": survivors(work, env)}
    (work / "result.json").write_text(json.dumps(result, indent=1))
    return result


def _delta(a: str, b: str) -> tuple[str, str]:
    """The changed part of a line: common prefix and suffix stripped."""
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    j = 0
    while j < min(len(a), len(b)) - i and a[-1 - j] == b[-1 - j]:
        j += 1
    while i > 0 and (a[i - 1].isalnum() or a[i - 1] == "_"):  # whole words: `False`->`True`, not `Fals`->`Tru`
        i -= 1
    while j > 0 and (a[len(a) - j].isalnum() or a[len(a) - j] == "_"):
        j -= 1
    ops = "<>=!+-*/%&|^~\"'"
    if not a[i : len(a) - j] or not any(ch.isalnum() for ch in a[i : len(a) - j] + b[i : len(b) - j]):
        while i > 0 and a[i - 1] in ops:  # whole operators and quotes: `>`->`>=`, `""`->`"XXXX"`
            i -= 1
        while j > 0 and a[len(a) - j] in ops:
            j -= 1
    return a[i : len(a) - j], b[i : len(b) - j]


def known_verdicts(doc: Path) -> dict[tuple[str, str, str], list[tuple[int, str]]]:
    """(module, code cell, mutations cell) -> [(line, verdict cell)] of the tables in ``doc``
    (docs/mutation_testing.md), so a new run's table keeps the verdicts of lines whose code and surviving mutations
    did not change (the same code on several lines: the nearest line's)."""
    verdicts, module = {}, None
    if not doc.is_file():
        return verdicts
    for line in doc.read_text().splitlines():
        if line.startswith("### "):
            module = line[4:].split(":", 1)[0]
        elif module and line.startswith("| ") and line.count(" | `") >= 1:
            cells = line.split(" | ")
            if len(cells) >= 4 and cells[0][2:].strip().isdigit():
                key = (module, cells[1], cells[2])
                verdicts.setdefault(key, []).append((int(cells[0][2:]), cells[-1].rstrip(" |")))
    return verdicts


def markdown(name: str, result: dict, verdicts: dict[tuple[str, str, str], list[tuple[int, str]]] | None = None
             ) -> str:
    """The survivors of one module as a markdown table, one row per source line; the verdict column is taken
    from ``verdicts`` (by module and code) where known, else left empty."""
    rows: dict[tuple, list[str]] = {}
    for s in result["survivors"]:
        before, after = _delta(s["before"] or "", s["after"] or "")
        tag = "" if s["status"] == "survived" else f"({s['status']}) "
        shown = [f"`{x}`" if x.strip() else "(nothing)" for x in (before, after)]
        rows.setdefault((s["line"] or 0, (s["before"] or "").strip()), []).append(f"{tag}{shown[0]}→{shown[1]}")
    score = (result["killed"] + result["timeout"]) / max(1, result["total"])  # a timeout is a detected mutant
    out = [f"### {name}: `{result['module']}` (judged by {', '.join(f'`{t}`' for t in result['tests'])})", "",
           f"killed {result['killed']} / survived {result['survived']} / no tests {result['no_tests']} / timeout "
           f"{result['timeout']} / total {result['total']} (score {score:.0%})", "",
           "| line | code | mutations that survived | verdict |", "|---|---|---|---|"]
    for (line, code), muts in sorted(rows.items()):
        code = code.replace("|", "\\|")
        cell = f"`{code[:90]}{'…' if len(code) > 90 else ''}`"
        mutations = "; ".join(m.replace("|", "\\|") for m in muts)
        known = (verdicts or {}).get((name, cell, mutations), [])
        verdict = min(known, key=lambda lv: abs(lv[0] - line))[1] if known else ""
        out.append(f"| {line} | {cell} | {mutations} | {verdict} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("modules", nargs="*", help=f"one or more of: {', '.join(MODULES)}")
    parser.add_argument("--all", action="store_true", help="every module")
    parser.add_argument("--max-children", type=int, default=2, help="parallel mutants (default 2: the cores)")
    parser.add_argument("--survivors", action="store_true", help="print each surviving mutant's diff")
    parser.add_argument("--resume", action="store_true", help="keep out/mutation/<module> and go on from there")
    parser.add_argument("--markdown", action="store_true",
                        help="print the last run's survivors of each module as a markdown table, with the verdicts "
                        "docs/mutation_testing.md already gives for unchanged lines (runs nothing)")
    args = parser.parse_args(argv)
    names = list(MODULES) if args.all else args.modules
    if not names:
        for name, (source, tests) in MODULES.items():
            print(f"{name:12s} {source:32s} judged by {' '.join(tests)}")
        return 0
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; choose from {list(MODULES)}")
    if args.markdown:
        for name in names:
            result_file = ROOT / "out" / "mutation" / name / "result.json"
            if not result_file.is_file():
                raise SystemExit(f"[mutate] no result for {name}: run ./dev.sh mutate {name} first")
            print(markdown(name, json.loads(result_file.read_text()), known_verdicts(DOC)))
        return 0
    mutmut = ensure_mutmut()
    summary_file = ROOT / "out" / "mutation" / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    for name in names:
        result = run(name, args, mutmut)
        summary[name] = {k: v for k, v in result.items() if k != "survivors"}
        summary_file.write_text(json.dumps(summary, indent=1))
        score = (result["killed"] + result["timeout"]) / max(1, result["total"])  # a timeout is a detected mutant
        print(f"{name:12s} killed {result['killed']:4d}  survived {result['survived']:4d}  "
              f"no tests {result['no_tests']:3d}  timeout {result['timeout']:3d}  total {result['total']:4d}  "
              f"score {score:.0%}  ({result['seconds']} s)")
        for s in result["survivors"]:
            print(f"    {s['status']:9s} {s['file']}:{s['line']}  {(s['before'] or '').strip()}  ->  "
                  f"{(s['after'] or '').strip()}")
            if args.survivors:
                print("      " + s["diff"].replace("\n", "\n      "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
