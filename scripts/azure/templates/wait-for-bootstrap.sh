# shellcheck shell=bash
# Run-command prelude: wait (at most 25 minutes) until this VM's first-boot bootstrap is done.
# On failure, show the end of its log (package and git output; it never holds a ticket).
state=
for _ in $(seq 1 300); do
  state=$(cat /var/lib/wicket-bootstrap/state 2>/dev/null || true)
  if [ "$state" = ready ] || [ "$state" = failed ]; then break; fi
  sleep 5
done
if [ "$state" != ready ]; then
  echo "bootstrap state: ${state:-not started}; last lines of /var/log/wicket-bootstrap.log:" >&2
  tail -n 15 /var/log/wicket-bootstrap.log >&2 || true
  exit 3
fi
