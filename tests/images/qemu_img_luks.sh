#!/bin/sh
# Run qemu-img where it writes a LUKS header, retrying QEMU 7.2's flaky PBKDF benchmark.
#
#   tests/images/qemu_img_luks.sh QEMU-IMG-ARGUMENTS...
#
# qemu-img cannot write a LUKS header with a fixed iteration count: it always measures how many PBKDF2
# iterations take a second of its thread's CPU time (qcrypto_pbkdf2_count_iters), and
# encrypt.iter-time only scales that measurement. Debian 12's QEMU 7.2 has the sanity check "Unable to
# get accurate CPU usage" (backported in 7.2.14) but not its fix (upstream 145f12ea, "crypto: fix bogus
# error benchmarking pbkdf on fast machines", QEMU 9.2.1/10.0): the first benchmark round takes a few
# milliseconds, getrusage() may not have accounted it yet, and qemu-img fails at random — more often
# under load. So build_images.sh writes raw LUKS volumes with cryptsetup and a fixed iteration count,
# and uses qemu-img only for the qcow2 image with built-in LUKS, which nothing else can write. For that
# one, this error (and only this error) is retried, up to 20 times, saying so; any other error fails at
# once with qemu-img's own message.
set -eu

ATTEMPTS="${VMSEC_LUKS_ATTEMPTS:-20}"  # each try is quick; under load several fail in a row
BENCHMARK_BUG="Unable to get accurate CPU usage"

err="$(mktemp)"
trap 'rm -f "$err"' EXIT

attempt=1
while :; do
    if qemu-img "$@" 2>"$err"; then
        exit 0
    fi
    cat "$err" >&2
    if ! grep -q "$BENCHMARK_BUG" "$err"; then
        echo "qemu_img_luks: qemu-img failed (not its PBKDF benchmark); not retried" >&2
        exit 1
    fi
    if [ "$attempt" -ge "$ATTEMPTS" ]; then
        echo "qemu_img_luks: qemu-img's PBKDF benchmark failed $attempt times in a row" \
             "(\"$BENCHMARK_BUG\", QEMU 7.2 bug); giving up" >&2
        exit 1
    fi
    echo "qemu_img_luks: qemu-img's PBKDF benchmark measured no CPU time (QEMU 7.2 bug);" \
         "retrying ($attempt/$ATTEMPTS failed)" >&2
    attempt=$((attempt + 1))
done
