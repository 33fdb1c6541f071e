# shellcheck shell=bash
# Run-command on the relay VM: hand the one-time admin ticket to the operator.
cat /var/lib/wicket-relay/admin-ticket
