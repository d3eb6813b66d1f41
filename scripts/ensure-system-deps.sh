#!/usr/bin/env bash
# Ensure the system packages needed to build and test pkcs11-napi are present.
#
# Idempotent and silent when everything is already installed.
# On Debian/Ubuntu: installs missing packages with apt-get (as root, or via
# passwordless `sudo -n`); otherwise prints the exact command and exits 1.
# On systems without apt-get (e.g. macOS/Homebrew): prints what is needed and
# continues only if softhsm2-util is on PATH.
set -euo pipefail

# softhsm2        - the software HSM the test suite runs against
# opensc          - pkcs11-tool
# p11-kit         - `p11-kit server`
# p11-kit-modules - p11-kit-client.so
# gnutls-bin      - certtool
# openssl         - openssl CLI (certificate checks)
# libp11-kit-dev  - an independent pkcs11.h used by a test
# cmake g++ make  - native addon build (cmake-js)
# util-linux      - taskset (a test starts a process on one CPU)
PACKAGES=(softhsm2 opensc p11-kit p11-kit-modules gnutls-bin openssl libp11-kit-dev cmake g++ make util-linux)

log() { printf 'ensure-system-deps: %s\n' "$*" >&2; }

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  log "this system has no apt-get/dpkg; cannot install system packages automatically."
  log "needed: SoftHSM2 (softhsm2-util + libsofthsm2), OpenSC (pkcs11-tool), p11-kit (server + p11-kit-client module),"
  log "        GnuTLS tools (certtool), OpenSSL, a pkcs11.h (p11-kit headers), CMake, a C++17 compiler, make,"
  log "        and on Linux taskset (util-linux)."
  if command -v brew >/dev/null 2>&1; then
    log "with Homebrew: brew install softhsm opensc p11-kit gnutls openssl cmake"
  fi
  if command -v softhsm2-util >/dev/null 2>&1; then
    log "softhsm2-util found on PATH; continuing (set PKCS11_MODULE if libsofthsm2 is not in a standard location)."
    exit 0
  fi
  log "softhsm2-util is not on PATH; install the packages above and re-run."
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

if [[ "$(id -u)" -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
  SUDO=(sudo -n)
else
  log "missing Debian packages: ${missing[*]}"
  log "not root and passwordless sudo is unavailable; install them with:"
  log "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
  exit 1
fi

log "installing missing Debian packages: ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Verify the install actually took.
still=()
for pkg in "${missing[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  [[ "$status" == "install ok installed" ]] || still+=("$pkg")
done
if [[ ${#still[@]} -gt 0 ]]; then
  log "packages still missing after apt-get install: ${still[*]}"
  exit 1
fi
log "done."
