# Sourced by RustIC's scripts: tool paths and the cache location.
export PATH="$HOME/.cargo/bin:$PATH"
if command -v llvm-config-16 >/dev/null 2>&1; then
  LIBCLANG_PATH=$(llvm-config-16 --libdir)
  export LIBCLANG_PATH
fi
RUSTIC_CACHE=${RUSTIC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rustic}
export RUSTIC_CACHE
RUSTIC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export RUSTIC_ROOT
# The oldest 6.12.y whose Rust support builds with the machine's rustc 1.95.
RUSTIC_MIN_KERNEL=6.12.117
