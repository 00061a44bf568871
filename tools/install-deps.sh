#!/usr/bin/env bash
# Installs what vaccel needs and is missing; does nothing (quickly) when all of it is there.
#   usage: tools/install-deps.sh PYTHON [build|test|bench]
# System packages come from apt-get (Debian/Ubuntu; sudo only when not root). Python packages come
# from pip, or from Debian's python3-* packages when PYTHON is Debian's own interpreter (pip there
# is "externally managed", PEP 668) or has no pip.
set -euo pipefail

PY=${1:-python3}
LEVEL=${2:-test}
case $LEVEL in build|test|bench) ;; *) echo "install-deps: unknown level '$LEVEL' (build|test|bench)" >&2; exit 2 ;; esac

say() { echo "install-deps: $*" >&2; }

SYS_PKGS=(gcc libc6-dev libvulkan-dev glslc mesa-vulkan-drivers vulkan-validationlayers vulkan-tools python3-dev)

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else say "need root or sudo to run: $*"; exit 1; fi
}

apt_updated=0
# apt_install [--optional] PKG...: installs those of PKG that dpkg does not list as installed.
apt_install() {
  local optional=0 p missing=()
  if [ "${1:-}" = --optional ]; then optional=1; shift; fi
  for p in "$@"; do
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" = "ii " ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "apt-get install ${missing[*]}"
  if [ $apt_updated = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
    [ $optional = 1 ] || return 1
    say "optional packages not installed: ${missing[*]}"
  fi
}

have_apt=0
command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1 && have_apt=1

# --- system packages
if [ $have_apt = 1 ]; then
  apt_install "${SYS_PKGS[@]}"
else
  say "no apt-get here: install a C compiler, the Vulkan loader and headers, glslc, a Vulkan driver and Python headers yourself"
fi

# --- a glslc for the cooperative-matrix shaders (Debian 12's predates GL_KHR_cooperative_matrix):
# fetched once into build/toolchain; without it those kernels are left out and the others serve.
if [ ! -x "$(dirname "$0")/../build/toolchain/glslc" ] && [ -z "${GLSLC_COOPMAT:-}" ]; then
  probe=$(mktemp -d)
  printf '%s\n' '#version 450' '#extension GL_KHR_cooperative_matrix : require' \
    'layout(local_size_x = 32) in;' 'void main() {}' > "$probe/p.comp"
  if ! glslc -fshader-stage=compute "$probe/p.comp" -o "$probe/p.spv" >/dev/null 2>&1; then
    if [ $have_apt = 1 ]; then apt_install --optional curl xz-utils ca-certificates; fi
    "$(dirname "$0")/fetch-glslc.sh" || say "no glslc with cooperative matrices: those kernels will be left out"
  fi
  rm -rf "$probe"
fi

# --- the interpreter itself (Debian's python3 may be absent on a minimal system)
if ! command -v "$PY" >/dev/null 2>&1; then
  if [ $have_apt = 1 ] && { [ "$PY" = python3 ] || [ "$PY" = /usr/bin/python3 ]; }; then
    apt_install python3
  else
    say "interpreter '$PY' not found"; exit 1
  fi
fi

# --- Python packages: module:min_version:pip_name:debian_package
REQUIRED=("numpy:1.24:numpy>=1.24:python3-numpy" "setuptools:61:setuptools>=61:python3-setuptools")
OPTIONAL=()
case $LEVEL in
  test)  REQUIRED+=("pytest::pytest:python3-pytest" "scipy::scipy:python3-scipy")
         OPTIONAL+=("faiss::faiss-cpu:python3-faiss" "sklearn::scikit-learn:python3-sklearn"
                    "ml_dtypes::ml_dtypes:") ;;   # bfloat16 for NumPy: pip only (no Debian 12 package)
  bench) REQUIRED+=("scipy::scipy:python3-scipy")
         OPTIONAL+=("matplotlib::matplotlib:python3-matplotlib") ;;
esac

# Prints the entries of "$@" whose module is missing or older than its minimum version.
missing_modules() {
  "$PY" - "$@" <<'EOF'
import importlib, importlib.util, re, sys
def ver(s):
    return tuple(int(x) for x in re.findall(r"\d+", s)[:3])
for entry in sys.argv[1:]:
    mod, minv = entry.split(":")[:2]
    try:  # importing only what has a minimum version keeps this quick
        if importlib.util.find_spec(mod) is None:
            print(entry)
        elif minv and ver(importlib.import_module(mod).__version__) < ver(minv):
            print(entry)
    except Exception:
        print(entry)
EOF
}

mapfile -t need < <(missing_modules "${REQUIRED[@]}")
mapfile -t want < <(missing_modules "${OPTIONAL[@]+"${OPTIONAL[@]}"}")
[ ${#need[@]} -eq 0 ] && [ ${#want[@]} -eq 0 ] && exit 0

# How this interpreter takes packages: pip (venv, pyenv, conda...) or apt (Debian's own python3).
mode=$("$PY" - <<'EOF'
import importlib.util, os, sys, sysconfig
venv = sys.prefix != sys.base_prefix
managed = not venv and os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
pip = importlib.util.find_spec("pip") is not None
debian = not venv and sys.prefix == "/usr" and os.path.exists("/etc/debian_version")
if pip and not managed:
    print("pip-user" if not os.access(sysconfig.get_path("purelib"), os.W_OK) else "pip")
elif debian:
    print("apt")
else:
    print("none")
EOF
)

pick() { local n=$1 e; shift; for e in "$@"; do cut -d: -f"$n" <<<"$e"; done; }  # Nth ':' field of each

case $mode in
  pip|pip-user)
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
    user=(); [ $mode = pip-user ] && user=(--user)
    if [ ${#need[@]} -gt 0 ]; then
      mapfile -t names < <(pick 3 "${need[@]}")
      say "$PY -m pip install ${names[*]}"
      "$PY" -m pip install -q "${user[@]+"${user[@]}"}" "${names[@]}"
    fi
    if [ ${#want[@]} -gt 0 ]; then
      mapfile -t names < <(pick 3 "${want[@]}")
      say "$PY -m pip install ${names[*]} (optional)"
      "$PY" -m pip install -q "${user[@]+"${user[@]}"}" "${names[@]}" || say "optional packages not installed: ${names[*]}"
    fi ;;
  apt)
    if [ ${#need[@]} -gt 0 ]; then mapfile -t names < <(pick 4 "${need[@]}"); apt_install "${names[@]}"; fi
    if [ ${#want[@]} -gt 0 ]; then
      mapfile -t names < <(pick 4 "${want[@]}" | grep .)   # entries without a Debian package: pip only
      [ ${#names[@]} -eq 0 ] || apt_install --optional "${names[@]}"
      mapfile -t pipo < <(for e in "${want[@]}"; do [ -n "$(cut -d: -f4 <<<"$e")" ] || cut -d: -f3 <<<"$e"; done)
      [ ${#pipo[@]} -eq 0 ] || say "optional, from pip only (not for $PY): ${pipo[*]}"
    fi ;;
  *)
    say "$PY has no usable pip and is not Debian's python3; install these yourself: $(pick 3 "${need[@]}" "${want[@]}" | tr '\n' ' ')"
    [ ${#need[@]} -eq 0 ] || exit 1 ;;
esac

mapfile -t need < <(missing_modules "${REQUIRED[@]}")
if [ ${#need[@]} -gt 0 ]; then say "still missing for $PY: $(pick 3 "${need[@]}" | tr '\n' ' ')"; exit 1; fi
exit 0
