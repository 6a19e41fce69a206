#!/bin/sh
# Build sudo's python_plugin.so from the distribution's own source package for the exact
# sudo installed on this Debian host, with the configure options of the distribution's
# binary (`sudo -V`) plus --enable-python and secalert's patches (UTF-8 arguments, fast
# start), applied in the order given.
# Recipe and timings: docs/sudo-plugin-build.md in the collection.
#
#   build-python-plugin.sh OUT_DIR PATCH [PATCH...]
#
# Leaves OUT_DIR/python_plugin.so (RUNPATH /usr/libexec/sudo, as installed by sudo's own
# `make install-plugin`) and OUT_DIR/build.log. Works in a temporary directory, reads
# source indexes into a private apt state (the host's sources and lists stay as they
# are), and purges exactly the packages it installed, also when the build fails.
set -eu

out=${1:?usage: build-python-plugin.sh OUT_DIR PATCH [PATCH...]}
: "${2:?usage: build-python-plugin.sh OUT_DIR PATCH [PATCH...]}"
shift
# The patches, as absolute paths (the build changes directory).
patches=""
for p in "$@"; do
    case "$p" in /*) ;; *) p="$PWD/$p" ;; esac
    patches="$patches $p"
done
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

work=$(mktemp -d /var/tmp/secalert-sudo-build.XXXXXX)
log="$out/build.log"
mkdir -p "$out"
: > "$log"

packages() { dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package}\n' | awk '$1 == "ii" { print $2 }' | sort; }
packages > "$work/before"

cleanup() {
    status=$?
    packages > "$work/after"
    added=$(comm -13 "$work/before" "$work/after" | tr '\n' ' ')
    if [ -n "$added" ]; then
        echo "purging build dependencies: $added" >> "$log"
        # shellcheck disable=SC2086 # word splitting wanted: one package per word
        timeout 600 apt-get purge -y -q $added >> "$log" 2>&1 || echo "purge failed" >> "$log"
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { echo "== $*" >> "$log"; }

# Source indexes: deb-src twins of the host's deb sources, in a private apt state.
mkdir -p "$work/apt/lists/partial" "$work/apt/parts"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] && sed -n 's/^[[:space:]]*deb\([[:space:]]\)/deb-src\1/p' "$f"
done > "$work/apt/sources.list"
for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] && sed 's/^Types:.*/Types: deb-src/' "$f" > "$work/apt/parts/${f##*/}"
done
set -- -o "Dir::Etc::SourceList=$work/apt/sources.list" \
    -o "Dir::Etc::SourceParts=$work/apt/parts" -o "Dir::State::Lists=$work/apt/lists"

version=$(dpkg-query -W -f='${Version}' sudo)
step "sudo $version, python $(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
step "build dependencies"
timeout 900 apt-get install -y -q --no-install-recommends gcc make libc6-dev dpkg-dev \
    python3-dev libpam0g-dev libselinux1-dev libaudit-dev zlib1g-dev xz-utils >> "$log" 2>&1
step "source of sudo=$version"
timeout 300 apt-get "$@" update -q >> "$log" 2>&1
if ! (cd "$work" && timeout 300 apt-get "$@" source -q "sudo=$version") >> "$log" 2>&1; then
    # Some mirrors carry the upstream tarball but not Debian's .dsc/.debian.tar.xz of a
    # point release (seen for trixie's 1.9.16p2-3+deb13u5). Debian's patches touch sudo
    # and sudoers, not plugins/python, and the plugin links the installed libsudo_util:
    # the upstream tarball of the same version, checked against the hash in the source
    # index, builds the same python_plugin.so.
    step "apt-get source failed: building from the upstream tarball of sudo $version"
    # (in an empty directory: apt does not print what the failed attempt downloaded)
    mkdir "$work/uris"
    (cd "$work/uris" && apt-get "$@" source --print-uris -q "sudo=$version") 2>> "$log" \
        | sed -n "s/^'\([^']*\.orig\.tar\.[a-z0-9]*\)' \([^ ]*\) [0-9]* \(SHA256:[0-9a-f]*\)\$/\1 \2 \3/p" \
        > "$work/orig"
    read -r url file hash < "$work/orig" || { echo "no upstream tarball in the source index" >> "$log"; exit 1; }
    timeout 300 /usr/lib/apt/apt-helper download-file "$url" "$work/$file" "$hash" >> "$log" 2>&1
    rm -rf "$work"/sudo-*/
    tar -C "$work" -xf "$work/$file"
    echo "upstream-tarball" > "$out/source"
fi
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'sudo-*' | head -n 1)
[ -n "$src" ] || { echo "no source tree" >> "$log"; exit 1; }
cd "$src"
# shellcheck disable=SC2086 # one patch per word (temporary paths, no spaces)
for p in $patches; do
    step "patch ${p##*/}"
    patch -p1 --forward < "$p" >> "$log" 2>&1
done

# `sudo -V` prints the configure options unquoted; one value has spaces
# (--with-passprompt=[sudo] password for %p: ) and ${prefix} must reach configure
# literally. Re-quote: a word that starts neither with -- nor with VAR= continues the
# previous option.
sudo -V | sed -n 's/^Configure options: //p' > "$work/configure-flags"
python3 - "$work/configure-flags" > "$work/configure-args" <<'PY'
import re
import shlex
import sys

words = open(sys.argv[1], encoding="utf-8").read().rstrip("\n").split(" ")
opts = []
for word in words:
    if opts and not re.match(r"^(--|[A-Z]+=)", word):
        opts[-1] += " " + word
    elif word:
        opts.append(word)
print("set -- " + " ".join(shlex.quote(o) for o in opts))
PY
. "$work/configure-args"
step "configure $*"
timeout 900 ./configure "$@" --enable-python >> "$log" 2>&1
step "make"
timeout 900 make -C lib/util libsudo_util.la >> "$log" 2>&1
timeout 900 make -C plugins/python python_plugin.la >> "$log" 2>&1
timeout 300 make -C plugins/python install-plugin DESTDIR="$work/root" >> "$log" 2>&1
so=$(find "$work/root" -name python_plugin.so -type f | head -n 1)
[ -n "$so" ] || { echo "python_plugin.so was not installed" >> "$log"; exit 1; }
install -m 0644 "$so" "$out/python_plugin.so"
step "done: $(wc -c < "$out/python_plugin.so") bytes"
