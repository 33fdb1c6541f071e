# shellcheck shell=bash
# Run-command on the relay VM: mint one enrollment ticket. Runs as the relay's user so the store
# keeps its ownership; prints {"ticket","ticketId","expiresAt"} on stdout and nothing else.
runuser -u wicket -- /usr/bin/node /opt/wicket/bin/relay.js ticket create --data /var/lib/wicket-relay @@TICKET_ARGS@@ --json
