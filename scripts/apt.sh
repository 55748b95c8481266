# Shared by scripts/test and scripts/bench-instructions (sourced, not run): apt_install PACKAGE
# installs a Debian package unless it is installed already, with sudo when not root, reading
# the package lists first on a fresh machine (no candidate until `apt-get update`). The log
# goes to target/apt-PACKAGE.log and is printed when the install fails.
apt_install() {
  local pkg=$1 sudo="" log
  dpkg -s "$pkg" >/dev/null 2>&1 && return 0
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  mkdir -p target
  log=target/apt-$pkg.log
  if ! apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    $sudo apt-get update -qq >"$log" 2>&1 || { cat "$log" >&2; return 1; }
  fi
  echo "$(basename "$0"): installing $pkg $(apt-cache policy "$pkg" | sed -n 's/ *Candidate: //p') (apt-get)"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$pkg" \
    >>"$log" 2>&1 || { cat "$log" >&2; return 1; }
}
