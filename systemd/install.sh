#!/bin/sh
# Install recsched as a systemd service, as README "Install and run under systemd" describes:
#   sudo systemd/install.sh [SOURCE]
# SOURCE is what pip installs (default: the checkout this script is in; a wheel or
# 'recsched==X.Y' works too). Safe to run again to upgrade: an existing schedule or key file is
# never overwritten. It does not start the service: write your schedule and key first.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
source=${1:-$here}
prefix=/opt/recsched
etc=/etc/recsched

[ "$(id -u)" -eq 0 ] || { echo "install.sh: run it as root (sudo)" >&2; exit 1; }

echo "install.sh: 1/4 the program, in its own virtualenv ($prefix), on the unit's path"
python3 -m venv "$prefix"
"$prefix/bin/pip" install --quiet --disable-pip-version-check --upgrade "$source"
ln -sf "$prefix/bin/recsched" /usr/local/bin/recsched

echo "install.sh: 2/4 the system user 'recsched'; $etc readable by it, not by everyone"
id -u recsched >/dev/null 2>&1 ||
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin recsched
install -d -m 0750 -o root -g recsched "$etc"
if [ ! -e "$etc/recsched.yaml" ]; then
  # The example schedule, reading the key as the unit's credential.
  sed 's/\${LVB_KEY}/${cred:lvb_key}/' "$here/config.example.yaml" >"$etc/recsched.yaml.new"
  chown root:recsched "$etc/recsched.yaml.new" && chmod 0640 "$etc/recsched.yaml.new"
  mv "$etc/recsched.yaml.new" "$etc/recsched.yaml"
fi

echo "install.sh: 3/4 the key file, readable by root only (systemd hands the service a copy)"
[ -e "$etc/lvb_key" ] || install -m 0600 -o root -g root /dev/null "$etc/lvb_key"

echo "install.sh: 4/4 the unit"
install -m 0644 "$here/systemd/recsched.service" /etc/systemd/system/recsched.service
systemctl daemon-reload

cat <<EOT
install.sh: done. Next:
  sudoedit $etc/recsched.yaml      # your schedule; keep  key: \${cred:lvb_key}
  sudoedit $etc/lvb_key            # the LVB API key, nothing else
  sudo systemctl enable --now recsched
  systemctl status recsched        # the unit checks the file first: a problem is shown here
EOT
