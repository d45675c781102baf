#!/usr/bin/env bash
# Full sanitizer and valgrind runs of the C core (minutes; the fast subset runs in the
# normal suite as tests/test_sanitize_c.py).
#
#  1. ASan + UBSan: the extension is built with ICALIGN_SANITIZE=1 into a scratch copy
#     of the package (the in-place build is left alone) and the whole test suite runs
#     against it with the ASan runtime preloaded. Any sanitizer finding aborts the
#     process that hit it, so it fails a test; the log is also searched for reports.
#  2. valgrind memcheck on tests/c/driver.c (built -O1 -g, no sanitizers; the full
#     driver: every entry point, every SIMD path valgrind's CPU has, 1-2 threads, a
#     paper-width model): zero errors and no definite leaks required.
#
# Usage: tests/sanitize.sh [asan|valgrind|all] [extra pytest args]   (default: all)
# Environment: CC (default gcc), PYTHON (default python3), KEEP=DIR keeps the work dir.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
shift || true
CC=${CC:-gcc}
PYTHON=${PYTHON:-python3}
work=${KEEP:-$(mktemp -d)}
mkdir -p "$work"
status=0

run_asan() {
    echo "== ASan+UBSan build of the extension in $work"
    rm -rf "$work/lib" "$work/tmp" "$work/python"
    ICALIGN_SANITIZE=1 "$PYTHON" setup.py -q build_ext --build-lib "$work/lib" \
        --build-temp "$work/tmp" >"$work/build.log" 2>&1 || { cat "$work/build.log"; return 1; }
    # a copy of the package holding the sanitized extension, at python/ as in the
    # checkout (a test finds tests/data relative to the package)
    mkdir -p "$work/python"
    cp -r python/icalign "$work/python/"
    rm -f "$work/python/icalign/"_core*.so
    cp "$work/lib/icalign/"_core*.so "$work/python/icalign/"
    ln -sfn "$PWD/tests" "$work/tests"
    # libstdc++ too: ASan must see __cxa_throw at start-up, or C++ extensions that throw
    # (matplotlib's ft2font) abort in its interceptor
    local preload
    preload="$("$CC" -print-file-name=libasan.so) $("$CC" -print-file-name=libstdc++.so)"
    echo "== the test suite under ASan+UBSan (LD_PRELOAD=$preload)"
    rm -f "$work"/san.*
    # detect_leaks=0: CPython keeps its own allocations at exit; allocations above 3 GiB
    # fail (return NULL -> MemoryError) as they do under the fuzz driver's memory cap.
    # Reports go to $work/san.PID (pytest captures stderr, and an aborting process
    # would take it along).
    set +e
    (cd "$work" && LD_PRELOAD="$preload" \
        ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=3072:halt_on_error=1:log_path=$work/san" \
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$work/san" \
        PYTHONPATH="$work/python" ICALIGN_SANITIZED=1 \
        "$PYTHON" -m pytest -q -p no:cacheprovider "$OLDPWD/tests" "$@") \
        2>&1 | tee "$work/pytest.log"
    local rc=${PIPESTATUS[0]}
    set -e
    local findings
    # reports land in $work/san.PID, or in a test's captured output (child processes)
    findings=$(cat "$work"/san.* "$work/pytest.log" 2>/dev/null \
        | grep -cE "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer|CHECK failed" \
        || true)
    echo "== ASan+UBSan: pytest exit $rc, sanitizer reports: $findings (log: $work/pytest.log)"
    [ "$findings" -eq 0 ] || cat "$work"/san.* | head -100
    [ "$rc" -eq 0 ] && [ "$findings" -eq 0 ]
}

run_valgrind() {
    if ! command -v valgrind >/dev/null; then
        echo "== valgrind not installed: skipped"
        return 0
    fi
    echo "== valgrind memcheck on tests/c/driver.c"
    local srcs
    srcs=$(ls csrc/*.c | grep -v binding.c)
    # shellcheck disable=SC2086
    "$CC" -std=c11 -O1 -g -fopenmp -Icsrc $srcs tests/c/driver.c -lm -o "$work/driver"
    set +e
    OMP_WAIT_POLICY=passive valgrind --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite --show-leak-kinds=definite \
        "$work/driver" full 2>&1 | tee "$work/valgrind.log"
    local rc=${PIPESTATUS[0]}
    set -e
    grep -E "ERROR SUMMARY|definitely lost|All heap blocks" "$work/valgrind.log" || true
    echo "== valgrind: exit $rc"
    [ "$rc" -eq 0 ]
}

case "$what" in
    asan) run_asan "$@" || status=1 ;;
    valgrind) run_valgrind || status=1 ;;
    all) run_asan "$@" || status=1; run_valgrind || status=1 ;;
    *) echo "usage: $0 [asan|valgrind|all] [pytest args]" >&2; exit 2 ;;
esac
[ -n "${KEEP:-}" ] || [ "$status" -ne 0 ] || rm -rf "$work"
echo "== sanitize.sh: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
