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
    (("count",), "core.counting", "cli_count", "count sheets in a video file or rtsp:// URL (JSON on stdout)"),
    (("synth",), "core.synth", "cli_synth", "render synthetic stacking clips with ground truth"),
    (("bench", "count"), "core.bench", "bench_count", "counting accuracy, latency and throughput vs decode"),
    (("bench", "models"), "core.models", "bench_memory", "process memory in each model mode and after swaps"),
    (("bench", "defects"), "core.defects", "bench_defects", "time per capture (locate / segment) and segmenter IoU"),
    (("bench", "measure"), "core.measure", "bench_measure", "measurement accuracy on rendered sheets"),
    (("bench", "export"), "core.reports", "bench_export", "export time for a large session"),
    (("train", "detect"), "core.training", "cli_train_detect", "train a YOLO detector offline and register it"),
    (("models", "list"), "core.models", "cli_list", "registered model versions as JSON"),
    (("models", "activate"), "core.models", "cli_activate", "activate a model version"),
    (("models", "register"), "core.models", "cli_register", "register a model file"),
    (("eval", "defects"), "core.defects", "cli_eval", "mAP of the active defect locator on NEU-DET val"),
    (("defects",), "core.defects", "cli_defects", "locate and segment defects in one image (JSON)"),
    (("measure",), "core.measure", "cli_measure", "measure the top sheet of an image in mm (JSON)"),
    (("export",), "core.reports", "cli_export", "export a session as json|csv|xlsx|pdf"),
    (("archive",), "core.reports", "cli_archive", "write or import a session archive (.zip)"),
    (("health",), "core.health", "cli_health", "system health as JSON"),
    (("live",), "core.worker", "cli_live", "run the counting worker headless (resumes an open session)"),
    (("bench", "rss"), "core.worker", "bench_rss", "process RSS while counting a looping clip for N minutes"),
    (("retention",), "core.health", "cli_retention", "apply the raw-capture retention policy"),
]


def _usage() -> str:
    width = max(len(" ".join(w)) for w, *_ in COMMANDS)
    lines = ["usage: python -m core COMMAND [ARGS...]", "", "Metal Sheet Monitor command line.", "",
             "commands:"]
    for words, _m, _f, help_ in COMMANDS:
        lines.append(f"  {' '.join(words):<{width}}  {help_}")
    lines += ["", "Run 'python -m core COMMAND --help' for a command's options."]
    return "\n".join(lines)


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
            return int(func(rest) or 0)
    print(f"error: unknown command '{' '.join(argv[:2])}'. Run 'python -m core --help'.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
