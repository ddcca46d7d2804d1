#!/bin/sh
# Installs the Debian packages pushmail needs to build, test and benchmark,
# non-interactively, skipping what is already there. Never starts or
# configures the system's own Postfix or Dovecot services.
set -eu

PKGS="build-essential cmake ninja-build pkg-config clang clang-format
libevent-dev libssl-dev libsqlite3-dev libcrypt-dev openssl
python3 python3-pytest swaks libnet-ssleay-perl libio-socket-ssl-perl strace postfix curl fetchmail isync offlineimap3
dovecot-core dovecot-lmtpd dovecot-imapd dovecot-pop3d"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix asks how to configure the system MTA; we only use its binaries.
echo "postfix postfix/main_mailer_type select No configuration" |
	$SUDO debconf-set-selections
# Keep package scripts from starting services on machines that allow it.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod 755 /usr/sbin/policy-rc.d
	trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
