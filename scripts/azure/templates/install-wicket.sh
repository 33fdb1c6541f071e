#!/bin/bash
# Installs Node.js 20 and Wicket on a fresh Ubuntu VM (run once by bootstrap.sh, as root).
# Rendered by scripts/azure/templates.ts: the repository URL and ref below were checked to hold
# only URL-safe characters before they got here.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
export HOME=/root

# Node.js 20 from NodeSource's signed apt repository (Ubuntu's own nodejs is older).
install -d -m 0755 /etc/apt/keyrings
curl -fsSL --retry 5 https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key \
  | gpg --dearmor --yes -o /etc/apt/keyrings/nodesource.gpg
echo 'deb [signed-by=/etc/apt/keyrings/nodesource.gpg] https://deb.nodesource.com/node_20.x nodistro main' \
  >/etc/apt/sources.list.d/nodesource.list
apt-get update -q
apt-get install -y -q nodejs git build-essential python3

# The unprivileged system user every Wicket process runs as.
if ! id -u wicket >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/wicket --shell /usr/sbin/nologin wicket
fi
install -d -o wicket -g wicket -m 0700 /var/lib/wicket

# Wicket itself: owned by root, read-only for the service user.
if [ ! -d /opt/wicket/.git ]; then
  git clone --quiet '@@WICKET_REPO@@' /opt/wicket
fi
git -C /opt/wicket checkout --quiet '@@WICKET_REF@@'
cd /opt/wicket
npm ci --omit=dev --no-audit --no-fund
node --version
