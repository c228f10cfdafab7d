# Sourced by install-browser.sh and install-deploy.sh: `apt_install WHO PACKAGE...` installs
# Debian packages (with sudo when not root), or fails saying what to install by hand.
# APT_OPTIONS adds options to apt-get install (install-deploy: --no-install-recommends).
apt_install() {
    local who="$1"
    shift
    [ $# -gt 0 ] || return 0
    echo "$who: installing $*" >&2
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$who: no apt-get here; install $* by hand" >&2
        return 1
    fi
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    # shellcheck disable=SC2086  # APT_OPTIONS: several words on purpose
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq ${APT_OPTIONS:-} "$@" >/dev/null
}
