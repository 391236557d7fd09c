#!/bin/sh
# Checks that this machine has what building oauth-edge needs, and says what to install when it
# does not: cargo itself, a C toolchain (the bundled SQLite, and the linker), cmake and perl
# (pingora compiles zlib-ng with cmake), pkg-config. Without cmake a build would otherwise stop
# minutes in, inside a dependency's build script, with a panic.
#
#   sh scripts/check-prerequisites.sh     exit 0 when everything is there, 1 when not
missing=""
for tool in cargo cc c++ make cmake perl pkg-config; do
  command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -z "$missing" ]; then
  echo "oauth-edge: the build prerequisites are installed"
  exit 0
fi
echo "oauth-edge: missing:$missing" >&2
case " $missing " in
  *" cargo "*) echo "  Rust: install it with rustup (https://rustup.rs), then open a new shell." >&2 ;;
esac
if [ "$missing" != " cargo" ]; then
  # echo only: a shell builtin, so the advice prints even on a PATH that has nothing.
  echo "  On Debian or Ubuntu:" >&2
  echo "      sudo apt-get update && sudo apt-get install -y build-essential pkg-config cmake perl curl" >&2
  echo "  On Fedora:" >&2
  echo "      sudo dnf install -y gcc gcc-c++ make pkgconf-pkg-config cmake perl curl" >&2
  echo "  On macOS (Xcode's command line tools give cc, c++ and make):" >&2
  echo "      xcode-select --install; brew install cmake pkg-config" >&2
fi
exit 1
