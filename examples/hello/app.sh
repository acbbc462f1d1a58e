#!/bin/sh
# What the container sees of itself: proof that it is isolated and built as the Dockerfile says.
echo "$GREETING!"
echo "  built by:   $BUILT_BY build, from scratch plus a static busybox"
echo "  running as: $(id -un) (uid $(id -u)) in $(pwd)"
echo "  hostname:   $(hostname)"
echo "  pid 1 is:   $(tr '\0' ' ' < /proc/1/cmdline)"
echo "  processes:  $(ls /proc | grep -c '^[0-9]') visible"
echo "  kernel:     $(uname -sr)"
echo "  fibonacci:  $(a=0; b=1; i=0; out=''; while [ $i -lt 12 ]; do out="$out $a"; t=$((a + b)); a=$b; b=$t; i=$((i + 1)); done; echo $out)"
