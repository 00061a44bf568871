#!/usr/bin/env bash
# Fetches a glslc that knows GL_KHR_cooperative_matrix into build/toolchain/ (a build tool only,
# nothing of it is linked into vaccel). Debian 12's glslc (glslang 11) predates the extension, so
# this takes Debian 13's glslc with the C and C++ runtimes it was built against, unpacked (no
# installation), and writes build/toolchain/glslc, which runs it through that glibc's own loader.
# setup.py uses it for the shaders marked `//! requires: cooperative_matrix`.
#   usage: tools/fetch-glslc.sh        (DEBIAN_MIRROR=... to use another mirror)
set -euo pipefail
cd "$(dirname "$0")/.."
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=trixie
DEST=build/toolchain
say() { echo "fetch-glslc: $*" >&2; }

[ "$(uname -m)" = x86_64 ] || { say "only x86_64 is handled here; point GLSLC_COOPMAT at a glslc built with glslang 13 or later"; exit 1; }
command -v curl >/dev/null || { say "needs curl"; exit 1; }
command -v dpkg-deb >/dev/null || { say "needs dpkg-deb"; exit 1; }
command -v xz >/dev/null || { say "needs xz"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL "$MIRROR/dists/$SUITE/main/binary-amd64/Packages.xz" | xz -d > "$tmp/Packages"
mkdir -p "$DEST"
rm -rf "$DEST/root"
for pkg in glslc libshaderc1 libc6 libstdc++6 libgcc-s1; do
  file=$(awk -v p="$pkg" '$1 == "Package:" { cur = $2 } $1 == "Filename:" && cur == p { print $2; exit }' "$tmp/Packages")
  [ -n "$file" ] || { say "package $pkg not found in $SUITE"; exit 1; }
  say "$file"
  curl -fsSL -o "$tmp/pkg.deb" "$MIRROR/$file"
  dpkg-deb -x "$tmp/pkg.deb" "$DEST/root"
done
cat > "$DEST/glslc" <<'EOF'
#!/bin/sh
# Debian 13's glslc, run with the runtimes unpacked beside it (tools/fetch-glslc.sh).
r="$(dirname "$0")/root"
l="$r/usr/lib/x86_64-linux-gnu"
exec "$l/ld-linux-x86-64.so.2" --library-path "$l" "$r/usr/bin/glslc" "$@"
EOF
chmod +x "$DEST/glslc"
"$DEST/glslc" --version | head -3 >&2
