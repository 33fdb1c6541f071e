#!/bin/bash
# Health Corp's demo app (official `openai` SDK) against the inlet on @@INLET_ADDRESS@@. Retries
# while the far side comes up (AI Corp's VM still installing, its role assignment propagating).
# The answer lands in demo-answer.txt, which `up` reads back through the run-command API.
set -uo pipefail
answer_file=/var/lib/wicket/demo-answer.txt
log=/var/lib/wicket/demo.log
cd /opt/wicket || exit 1
# No key here: AI Corp's VM authenticates to Azure OpenAI with its managed identity and drops
# whatever key a client sends. The SDK insists on one, so it gets a placeholder.
export AZURE_OPENAI_API_KEY=placeholder-ai-corp-authenticates OPENAI_API_KEY=placeholder-ai-corp-authenticates
for attempt in $(seq 1 40); do
  if answer=$(timeout 120 /opt/wicket/node_modules/.bin/tsx examples/demo-client.ts \
      --endpoint 'http://@@INLET_ADDRESS@@' --deployment '@@DEPLOYMENT@@' 2>>"$log"); then
    printf '%s\n' "$answer" >"$answer_file.tmp"
    mv "$answer_file.tmp" "$answer_file"
    exit 0
  fi
  echo "attempt $attempt failed; retrying in 15 s" >>"$log"
  sleep 15
done
echo "the demo client failed 40 times; see $log" >/var/lib/wicket/demo-failed
exit 1
