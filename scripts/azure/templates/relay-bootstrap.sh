#!/bin/bash
# Relay VM, first boot (cloud-init runcmd, as root): install Wicket, start the relay under
# systemd, wait for its one-time admin ticket. The operator's `up` waits for the state file
# through the run-command API before it mints enrollment tickets here.
set -euo pipefail
state_dir=/var/lib/wicket-bootstrap
install -d -m 0700 "$state_dir"
exec >>/var/log/wicket-bootstrap.log 2>&1
trap 'echo failed >"$state_dir/state"' ERR
echo running >"$state_dir/state"

bash /usr/local/lib/wicket/install-wicket.sh
systemctl daemon-reload
systemctl enable --now wicket-relay.service

# The relay writes the admin ticket (mode 0600) on its first start.
for _ in $(seq 1 120); do
  if [ -s /var/lib/wicket-relay/admin-ticket ]; then break; fi
  sleep 1
done
test -s /var/lib/wicket-relay/admin-ticket
echo ready >"$state_dir/state"
