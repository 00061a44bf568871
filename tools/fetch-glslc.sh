#!/usr/bin/env bash
# Fetches a glslc that knows GL_KHR_cooperative_matrix and GL_EXT_bfloat16 into build/toolchain/ (a
# build tool only, nothing of it is linked into vaccel). Debian 12's glslc (glslang 11) predates
# both, so this takes the glslc of Debian's testing suite (forky: glslang 16, which has bfloat16),
# or of Debian 13 (trixie: glslang 15, cooperative matrices only) when that fails, with the C and
# C++ runtimes it was built against, unpacked (no installation), and writes build/toolchain/glslc,
# which runs it through that glibc's own loader. setup.py uses it for the shaders marked
# `//! requires: cooperative_matrix` and the variants marked `[bfloat16]`.
#   usage: tools/fetch-glslc.sh   (DEBIAN_MIRROR=... another mirror; GLSLC_SUITES="trixie" the suites tried)
set -euo pipefail
cd "$(dirname "$0")/.."
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITES=${GLSLC_SUITES:-forky trixie}
DEST=build/toolchain
say() { echo "fetch-glslc: $*" >&2; }

[ "$(uname -m)" = x86_64 ] || { say "only x86_64 is handled here; point GLSLC_COOPMAT at a glslc built with glslang 13 or later"; exit 1; }
command -v curl >/dev/null || { say "needs curl"; exit 1; }
command -v dpkg-deb >/dev/null || { say "needs dpkg-deb"; exit 1; }
command -v xz >/dev/null || { say "needs xz"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$DEST"
printf '%s\n' '#version 450' '#extension GL_KHR_cooperative_matrix : require' \
  'layout(local_size_x = 32) in;' 'void main() {}' > "$tmp/probe.comp"

# fetch SUITE: unpacks that suite's glslc into $DEST and checks that it runs and compiles the probe.
fetch() {
  local suite=$1 pkg file
  curl -fsSL "$MIRROR/dists/$suite/main/binary-amd64/Packages.xz" | xz -d > "$tmp/Packages" || return 1
  rm -rf "$DEST/root"
  for pkg in glslc libshaderc1 libc6 libstdc++6 libgcc-s1; do
    file=$(awk -v p="$pkg" '$1 == "Package:" { cur = $2 } $1 == "Filename:" && cur == p { print $2; exit }' "$tmp/Packages")
    [ -n "$file" ] || { say "package $pkg not found in $suite"; return 1; }
    say "$file"
    curl -fsSL -o "$tmp/pkg.deb" "$MIRROR/$file" || return 1
    dpkg-deb -x "$tmp/pkg.deb" "$DEST/root" || return 1
  done
  cat > "$DEST/glslc" <<'EOF'
#!/bin/sh
# A newer Debian's glslc, run with the runtimes unpacked beside it (tools/fetch-glslc.sh).
r="$(dirname "$0")/root"
l="$r/usr/lib/x86_64-linux-gnu"
exec "$l/ld-linux-x86-64.so.2" --library-path "$l" "$r/usr/bin/glslc" "$@"
EOF
  chmod +x "$DEST/glslc"
  "$DEST/glslc" -fshader-stage=compute "$tmp/probe.comp" -o "$tmp/probe.spv"
}

for suite in $SUITES; do
  if fetch "$suite"; then
    "$DEST/glslc" --version | head -3 >&2
    exit 0
  fi
  say "the glslc of $suite did not serve"
done
rm -rf "$DEST/root" "$DEST/glslc"
exit 1
