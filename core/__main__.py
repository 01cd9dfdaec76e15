"""``python -m core`` — the command line of Metal Sheet Monitor.

Subcommands are listed in :data:`COMMANDS` and imported lazily, so ``--help`` is instant
and ``count`` never pays for importing torch. Each entry points at a module function
``main(argv: list[str]) -> int`` that parses its own arguments. Exit codes: 0 ok,
2 bad input (one clear line on stderr), 1 unexpected failure.
"""
from __future__ import annotations

import importlib
import sys

# (words, module, function, help) — the words form the command, e.g. ``bench count``.
COMMANDS: list[tuple[tuple[str, ...], str, str, str]] = [
    (("count",), "core.live.count", "cli_count", "count sheets in a video file or rtsp:// URL (JSON on stdout)"),
    (("synth",), "core.synthetic.cli", "cli_synth", "render synthetic stacking clips with ground truth"),
    (("bench", "count"), "core.bench.count", "bench_count", "counting accuracy, latency and throughput vs decode"),
    (("bench", "models"), "core.bench.models", "bench_memory", "process memory in each model mode and after swaps"),
    (("bench", "defects"), "core.bench.defects", "bench_defects", "time per capture (locate / segment) and segmenter IoU"),
    (("bench", "measure"), "core.bench.measure", "bench_measure", "measurement accuracy on rendered sheets"),
    (("bench", "export"), "core.bench.export", "bench_export", "export time for a large session"),
    (("bench", "decisions"), "core.bench.decisions", "bench_decisions",
     "every counting decision of the bench clips, recorded, or two recordings compared"),
    (("bench", "readme"), "core.bench.record", "cli_readme", "rewrite the README's benchmark table from docs/bench/*.json"),
    (("train", "detect"), "core.models.training", "cli_train_detect", "train a YOLO detector offline and register it"),
    (("models", "list"), "core.models.manager", "cli_list", "registered model versions as JSON"),
    (("models", "activate"), "core.models.manager", "cli_activate", "activate a model version"),
    (("models", "register"), "core.models.manager", "cli_register", "register a model file"),
    (("eval", "defects"), "core.qa.defects", "cli_eval", "mAP of the active defect locator on NEU-DET val"),
    (("defects",), "core.qa.defects", "cli_defects", "locate and segment defects in one image (JSON)"),
    (("measure",), "core.qa.measure", "cli_measure", "measure the top sheet of an image in mm (JSON)"),
    (("export",), "core.reports.cli", "cli_export", "export a session as json|csv|xlsx|pdf"),
    (("archive",), "core.reports.cli", "cli_archive", "write or import a session archive (.zip)"),
    (("health",), "core.platform.health", "cli_health", "system health as JSON"),
    (("live",), "core.live.worker", "cli_live", "run the counting worker headless (resumes an open session)"),
    (("bench", "rss"), "core.bench.rss", "bench_rss", "process RSS while counting a looping clip for N minutes"),
    (("retention",), "core.platform.health", "cli_retention", "apply the raw-capture retention policy"),
    (("i18n",), "core.platform.i18n", "cli_i18n", "check|sync the id/en catalogues: missing keys, bare literals (exit 1)"),
    (("soak",), "core.bench.soak", "cli_soak", "long run of the live path: memory, threads, FPS over time (not CI)"),
    (("bench", "viewers"), "core.bench.viewers", "bench_viewers",
     "N Chromium viewers on the live page: worker fps, sheets/min, CPU, memory, PAUSE ack, tab load"),
]


def _usage() -> str:
    width = max(len(" ".join(w)) for w, *_ in COMMANDS)
    lines = ["usage: python -m core COMMAND [ARGS...]", "", "Metal Sheet Monitor command line.", "",
             "commands:"]
    for words, _m, _f, help_ in COMMANDS:
        lines.append(f"  {' '.join(words):<{width}}  {help_}")
    lines += ["", "Run 'python -m core COMMAND --help' for a command's options."]
    return "\n".join(lines)


def _one_line_argparse_errors() -> None:
    """Every command's argparse reports bad input as ONE line on stderr and exit code 2
    (argparse's default prints the whole usage block first)."""
    import argparse

    def error(self: argparse.ArgumentParser, message: str) -> None:
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)

    argparse.ArgumentParser.error = error  # type: ignore[method-assign]


def _run(func, rest: list[str], name: str) -> int:
    """Run a command; an unexpected exception becomes one line on stderr (exit 1), never a
    traceback on the operator's terminal (MSM_DEBUG=1 shows it)."""
    import os
    _one_line_argparse_errors()
    try:
        return int(func(rest) or 0)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if os.environ.get("MSM_DEBUG"):
            raise
        msg = " ".join(str(e).split())[:300]
        print(f"error: {name} failed: {type(e).__name__}: {msg}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    # longest match first, so "bench count" wins over a hypothetical "bench"
    for words, mod, fn, _help in sorted(COMMANDS, key=lambda c: -len(c[0])):
        if tuple(argv[: len(words)]) == words:
            rest = argv[len(words):]
            try:
                func = getattr(importlib.import_module(mod), fn)
            except (ImportError, AttributeError) as e:
                print(f"error: command '{' '.join(words)}' is not available: {e}", file=sys.stderr)
                return 1
            return _run(func, rest, " ".join(words))
    print(f"error: unknown command '{' '.join(argv[:2])}'. Run 'python -m core --help'.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
