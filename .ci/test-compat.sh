#!/usr/bin/env bash
# The compatibility lane: the Airflow-side tests and the example DAGs (pytest marker `compat`) on
# older Airflow 3 releases, each in its own environment next to .venv (.venv-af30, ...), created
# with uv and reused while its stamp (Airflow version + pyproject.toml) is current.
#
#   bash .ci/test-compat.sh 3.0.6 3.1.8 3.2.2
#   COMPAT_MARK=compat bash .ci/test-compat.sh 3.2.2     # also the `heavy` tests
#   COMPAT_PREPARE_ONLY=1 bash .ci/test-compat.sh 3.2.2  # only create the environments (to build
#                                                        # them ahead of the tests)
#
# Every lane runs even when one fails; the exit status says whether any did. Lanes run side by
# side, each logging to test-artifacts/compat/VERSION.log. The main suite
# (Airflow 3.3, `make test`) covers the latest release.
set -uo pipefail
cd "$(dirname "$0")/.."

UV=".venv/bin/uv"
[ -x "$UV" ] || { echo "test-compat: $UV is missing: run 'make venv' first" >&2; exit 2; }
PYTHON="$(.venv/bin/python -c 'import sys; print(sys.executable)')"
pyproject_hash="$(sha256sum .ci/test-compat.sh pyproject.toml | sha256sum | cut -c1-16)"
# `heavy`: the fault matrix (8 faults x 1000 numbers), the lane's largest cost, and the estimate-gate
# example (its sensor's wait runs here in test_sensor's real run); they run on 3.3 in the main suite.
# The worker-killed resume test still runs here, on each release's ledger store.
MARK="${COMPAT_MARK:-compat and not heavy}"

# One lane per release, all at once: each is mostly one Airflow process at a time, so on two
# cores the lanes together take little longer than the slowest alone. Each writes its own log,
# printed whole when all are done.
LOGS="test-artifacts/compat"
mkdir -p "$LOGS"

lane() {  # lane VERSION: prepare its environment (when stale), run the tests; exit status = pytest's
    local version="$1" minor venv stamp extra=()
    minor="$(echo "$version" | cut -d. -f1,2 | tr -d .)"
    venv=".venv-af$minor"
    stamp="$venv/.installed-$version-$pyproject_hash"
    if [ ! -f "$stamp" ]; then
        echo "test-compat: preparing $venv (apache-airflow==$version)"
        # Bounds from each release's published constraints (on GitHub; this lane reaches PyPI
        # only), for what today's releases break whatever the provider:
        # - 3.0 declares no upper bounds: today's cadwyn and fastapi break its execution API
        #   (every task fails with HTTP 422). It also builds provider connection forms only with
        #   wtforms (the FAB provider brings it): installed so the form test sees what a 3.0 with
        #   FAB renders.
        # - 3.0 and 3.1 set an attribute on cryptography's MultiFernet, which cryptography 51 made
        #   a Rust type that takes none: every encrypted Variable or Connection write fails
        #   ("'MultiFer' object has no attribute 'is_encrypted'"). 3.2 wraps it.
        # - 3.2.2: with svcs 26 every task fails (KeyError 'svcs_registry'); with cadwyn 8+ or
        #   fastapi 0.137+ the execution API does not start. 3.3.2's own bounds.
        case "$minor" in
            30) extra+=("cadwyn<6" "fastapi[standard]<0.117" wtforms "cryptography<51") ;;
            31) extra+=("cryptography<51") ;;
            32) extra+=("svcs<26" "cadwyn<8" "fastapi[standard-no-fastapi-cloud-cli]<0.137") ;;
        esac
        if ! { [ -x "$venv/bin/python" ] || "$UV" venv --quiet --python "$PYTHON" "$venv"; } ||
            ! "$UV" pip install --quiet --compile-bytecode --python "$venv/bin/python" -e ".[compat]" \
                "apache-airflow==$version" "${extra[@]}"; then
            echo "test-compat: could not prepare $venv for Airflow $version" >&2
            return 3
        fi
        rm -f "$venv"/.installed-*
        touch "$stamp"
    fi
    if [ -n "${COMPAT_PREPARE_ONLY:-}" ]; then
        echo "== Airflow $version: $venv ready =="
        return 0
    fi
    echo "== Airflow $version: Airflow-side tests and example DAGs ($venv, -m '$MARK') =="
    "$venv/bin/python" -m pytest -q -m "$MARK" -rfEs --durations=12 -p no:cacheprovider
}

started=$SECONDS
pids=()
for version in "$@"; do
    (
        t0=$SECONDS
        lane "$version"
        rc=$?
        echo "$((SECONDS - t0))" >"$LOGS/$version.seconds"
        exit $rc
    ) >"$LOGS/$version.log" 2>&1 &
    pids+=($!)
done

failed=()
summary=()
for i in "${!pids[@]}"; do
    version="${@:i+1:1}"
    wait "${pids[$i]}"
    rc=$?
    cat "$LOGS/$version.log"
    summary+=("Airflow $version: exit $rc$([ $rc -eq 3 ] && echo ' (set-up failed)'), $(cat "$LOGS/$version.seconds")s")
    [ $rc -eq 0 ] || failed+=("$version")
done

echo "== compatibility lane: ${#pids[@]} releases side by side in $((SECONDS - started))s =="
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "test-compat: failed on Airflow ${failed[*]}" >&2
    exit 1
fi
