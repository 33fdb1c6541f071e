#!/bin/bash
# Agent VM, first boot (cloud-init runcmd, as root): install Wicket, enroll with the one-use
# ticket cloud-init wrote to /etc/wicket/ticket (mode 0600), delete it, start the services.
set -euo pipefail
state_dir=/var/lib/wicket-bootstrap
install -d -m 0700 "$state_dir"
exec >>/var/log/wicket-bootstrap.log 2>&1
trap 'echo failed >"$state_dir/state"' ERR
echo running >"$state_dir/state"

bash /usr/local/lib/wicket/install-wicket.sh

# The ticket is the only secret this VM was given; only the wicket user may read it, and it is
# removed once spent. The agent's own keys stay in /var/lib/wicket (mode 0700).
chown wicket:wicket /etc/wicket/ticket
chmod 0600 /etc/wicket/ticket
enrolled=no
for attempt in 1 2 3 4 5 6; do
  if runuser -u wicket -- env WICKET_HOME=/var/lib/wicket /usr/bin/node /opt/wicket/bin/agent.js enroll --ticket-file /etc/wicket/ticket; then
    enrolled=yes
    break
  fi
  echo "enroll attempt $attempt failed; retrying in 10 s"
  sleep 10
done
test "$enrolled" = yes
rm -f /etc/wicket/ticket

services=(@@SERVICES@@)
start_once=(@@START_ONCE@@)
systemctl daemon-reload
systemctl enable --now "${services[@]}"
# One-shot units (the demo) start without blocking boot; they report through their own files.
if [ ${#start_once[@]} -gt 0 ]; then
  systemctl start --no-block "${start_once[@]}"
fi
echo ready >"$state_dir/state"
