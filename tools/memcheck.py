"""Run ExUnit with the NIF built under ASan and UBSan; fail on errors in Mirage's C.

    python tools/memcheck.py [mix test arguments...]

Builds priv/mirage_nif.so with MIRAGE_NIF_SANITIZE=address,undefined, runs `mix test`
with ASan's runtime preloaded into the VM, then rebuilds the normal NIF. Only the
NIF is instrumented, so ASan checks every access our C (c_src/ and cffi's generated
module) makes; beam, CPython and Pillow are reached only through ASan's allocator
and its interceptors (memcpy, strlen...). ERTS's own allocators are switched off
(+Meamin) so that enif_alloc and binaries get ASan's red zones.

Errors do not stop the run (halt_on_error=0). Each report is classified by its
access site, the first frame outside the sanitizer: in mirage_nif.so it is ours and
fails the run; elsewhere (beam, libpython, Pillow's libraries) it is listed as
foreign and does not fail the run, since it is not a bug this project can fix in
its C. The full reports stay in the log directory printed at the end.

UndefinedBehaviorSanitizer reports ("FILE:LINE:COL: runtime error: ...") can only come
from instrumented code; they are read from the test run's output and all fail the run.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NIF = "mirage_nif.so"
REPORT = re.compile(r"^==\d+==ERROR: AddressSanitizer: (\S+)", re.M)
FRAME = re.compile(r"^\s+#\d+ 0x[0-9a-f]+ in (\S+) (.*)$|^\s+#\d+ 0x[0-9a-f]+\s+\((.*)\+0x", re.M)
SANITIZER_FRAME = re.compile(r"__interceptor_|__asan_|libsanitizer|libasan")
UNDEFINED = re.compile(r"^(\S+:\d+:\d+): runtime error: (.*)$")
SANITIZERS = "address,undefined"


@dataclass
class Report:
    kind: str
    site: str
    ours: bool
    text: str


def libasan() -> str | None:
    cc = os.environ.get("CC", "cc")
    found = subprocess.run(
        [cc, "-print-file-name=libasan.so"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return found if os.path.isabs(found) and os.path.exists(found) else None


def access_site(report: str) -> str:
    """The first frame of the faulting access that is not ASan's own."""
    # The access's stack ends at the first blank line ("is located", "allocated by" follow).
    stack = report.split("\n\n", 1)[0]
    for match in FRAME.finditer(stack):
        location = " ".join(part for part in match.groups() if part)
        if not SANITIZER_FRAME.search(location):
            return location
    return "?"


def is_ours(site: str) -> bool:
    return NIF in site or "/c_src/" in site or "mirage_nif_cffi.c" in site


def reports(log_dir: Path) -> list[Report]:
    found = []
    for log in sorted(log_dir.glob("asan.*")):
        text = log.read_text(errors="replace")
        starts = [m.start() for m in REPORT.finditer(text)] + [len(text)]
        for start, end in itertools.pairwise(starts):
            chunk = text[start:end]
            kind = REPORT.match(chunk)
            site = access_site(chunk)
            found.append(Report(kind[1] if kind else "?", site, is_ours(site), chunk))
    return found


def mix(args: list[str], env: dict[str, str]) -> int:
    print("+ mix " + " ".join(args), flush=True)
    return subprocess.run(["mix", *args], cwd=ROOT, env=env, check=False).returncode


def mix_scanned(args: list[str], env: dict[str, str]) -> tuple[int, list[str]]:
    """Run mix, echoing its output; also answer the UBSan reports in it."""
    print("+ mix " + " ".join(args), flush=True)
    found = []
    with subprocess.Popen(
        ["mix", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            match = UNDEFINED.match(line.strip())
            if match:
                found.append(f"{match[2]} at {match[1]}")
    return process.returncode, found


def main(test_args: list[str]) -> int:
    runtime = libasan()
    if runtime is None:
        print("memcheck: no libasan.so for this C compiler (Debian: libasan8)", file=sys.stderr)
        return 2
    # The conformance suite runs once per transport: only the NIF's run is of use here.
    env = dict(os.environ, MIX_ENV="test")
    env.setdefault("MIRAGE_TRANSPORTS", "nif")
    sanitized = dict(env, MIRAGE_NIF_SANITIZE=SANITIZERS)
    log_dir = Path(tempfile.mkdtemp(prefix="mirage-memcheck-"))
    try:
        if mix(["compile"], sanitized) != 0:
            return 1
        run_env = dict(
            sanitized,
            LD_PRELOAD=runtime,
            # Leaks: the interpreter is never finalized by design, so LSan would only
            # list what it holds. verify_asan_link_order: the VM itself is not built
            # with ASan, the runtime comes in by LD_PRELOAD.
            ASAN_OPTIONS=":".join(
                [
                    "detect_leaks=0",
                    "halt_on_error=0",
                    "verify_asan_link_order=0",
                    # Every Python allocation goes through ASan's malloc: keep the
                    # allocation stack it records short (reports keep full access stacks).
                    "malloc_context_size=5",
                    f"log_path={log_dir}/asan",
                ]
            ),
            UBSAN_OPTIONS="print_stacktrace=1",
            # The VM drops LD_PRELOAD once started: the programs it runs (Port workers
            # with a memory cap, where ASan's shadow memory cannot be mapped; Python;
            # cc) are not ours to check.
            ELIXIR_ERL_OPTIONS=(
                env.get("ELIXIR_ERL_OPTIONS", "") + ' +Meamin -eval os:unsetenv("LD_PRELOAD")'
            ).strip(),
        )
        # Slower under ASan: ExUnit's 60 s per test is too short for the corpus suites.
        timeout = [] if "--timeout" in test_args else ["--timeout", "600000"]
        # Tests of resident memory (tag :rss) measure ASan's quarantine, not Mirage.
        options = [*timeout, "--exclude", "rss"]
        status, undefined = mix_scanned(["test", *options, *test_args], run_env)
    finally:
        # Whatever happened, leave the normal NIF in priv/ for the next run.
        mix(["compile"], env)

    found = reports(log_dir)
    if not any(log_dir.iterdir()):
        log_dir.rmdir()
    ours = [r for r in found if r.ours]
    for report in ours:
        print(report.text, file=sys.stderr)
    for report in found:
        label = "OURS" if report.ours else "foreign"
        print(f"memcheck: {label} {report.kind} at {report.site}")
    for line in undefined:
        print(f"memcheck: OURS undefined behaviour: {line}")
    logs = f" (logs: {log_dir})" if log_dir.exists() else ""
    print(
        f"memcheck: mix test exited {status}; AddressSanitizer reports: "
        f"{len(ours)} in mirage_nif.so's C, {len(found) - len(ours)} foreign{logs}; "
        f"UndefinedBehaviorSanitizer reports: {len(undefined)}"
    )
    return 1 if ours or undefined or status != 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
