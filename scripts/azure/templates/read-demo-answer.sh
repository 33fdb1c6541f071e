# shellcheck shell=bash
# Run-command on Health Corp's VM: wait (at most 25 minutes) for the demo client's answer.
for _ in $(seq 1 300); do
  if [ -s /var/lib/wicket/demo-answer.txt ]; then
    cat /var/lib/wicket/demo-answer.txt
    exit 0
  fi
  if [ -e /var/lib/wicket/demo-failed ]; then
    cat /var/lib/wicket/demo-failed >&2
    tail -n 15 /var/lib/wicket/demo.log >&2 || true
    exit 5
  fi
  sleep 5
done
echo "no answer after 25 minutes; see /var/lib/wicket/demo.log on the VM" >&2
exit 4
