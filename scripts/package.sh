#!/usr/bin/env bash
# Builds the Debian package of gatehouse with dpkg-deb: the binary in
# /usr/bin, the admin node's and node manager's systemd units in
# /lib/systemd/system (printed by the binary itself from the templates
# adminnode/gatehouse-admin.service and nodemanager/gatehouse-node.service)
# and the maintainer scripts of packaging/deb (the gatehouse user,
# /var/lib/gatehouse). Prints the path of the .deb.
#
#   BIN      the binary to package (default bin/gatehouse)
#   VERSION  its version (default: `BIN --version`)
#   OUT      the directory the .deb is written to (default bin)
#   ARCH     the Debian architecture (default: GOARCH of the go command)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/gatehouse}
OUT=${OUT:-bin}
[ -x "$BIN" ] || { echo "package: $BIN is not an executable: run make build first" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "package: dpkg-deb not found (apt-get install dpkg)" >&2; exit 1; }
VERSION=${VERSION:-$("$BIN" --version | awk '{print $3}')}
ARCH=${ARCH:-$(go env GOARCH)}
# A release (v1.2.3) is packaged as 1.2.3; anything else, such as a git
# description (3a9cc72-dirty), as 0~git…, which sorts before every
# release. A hyphen would start a Debian revision.
deb_version=${VERSION#v}
case "$deb_version" in
[0-9]*.[0-9]*) ;;
*) deb_version="0~git$deb_version" ;;
esac
deb_version=${deb_version//-/\~}

root=$(mktemp -d)
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT
install -D -m 0755 "$BIN" "$root/usr/bin/gatehouse"
install -d -m 0755 "$root/lib/systemd/system" "$root/DEBIAN"
"$BIN" admin unit --binary /usr/bin/gatehouse --data-dir /var/lib/gatehouse/admin --user gatehouse \
	>"$root/lib/systemd/system/gatehouse-admin.service"
"$BIN" node unit --binary /usr/bin/gatehouse --data-dir /var/lib/gatehouse/node \
	>"$root/lib/systemd/system/gatehouse-node.service"
chmod 0644 "$root"/lib/systemd/system/*.service
sed -e "s/@VERSION@/$deb_version/" -e "s/@ARCH@/$ARCH/" packaging/deb/control >"$root/DEBIAN/control"
echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)" >>"$root/DEBIAN/control"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
mkdir -p "$OUT"
deb="$OUT/gatehouse_${deb_version}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
