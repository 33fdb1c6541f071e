#!/usr/bin/env bash
# System tools the tests and the benchmark use, installed from Debian's packages when missing:
#   openssh-server/openssh-client  the `ssh -L` baseline in `npm run bench`
#   iproute2                        network-namespace tests (ip netns, veth)
#   the shellcheck linter           lints scripts/*.sh
#   openssl                         certificate checks in tests
#   nftables                        "AI Corp drops all inbound" in the network-namespace test
#   iperf3, wrk, nginx-light        the outside clients and server `npm run bench` measures with
#   python3                         the bench's 40 ms delay link where the kernel has no tc netem
#   linux-perf                      `npm run bench:layers` (CPU per layer, from perf samples)
#   postgresql (15, Debian's)       the PostgreSQL authority store tests: they run initdb/pg_ctl from
#                                   /usr/lib/postgresql/15/bin on a temp cluster and port of their own
#                                   (scripts/lib/postgres-cluster.ts). postgresql-common creates a
#                                   `main` cluster on install; the policy below keeps it from starting,
#                                   and the tests never use it or its port
#   python3, make, g++              node-gyp's build of better-sqlite3 where its prebuilt binary
#                                   cannot be downloaded (npm ci, and test/package/install.test.ts)
# Without root (a developer laptop) nothing is installed and the dependent tests print why they skip.
set -euo pipefail
need=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need+=(nftables)
command -v iperf3 >/dev/null 2>&1 || need+=(iperf3)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v perf >/dev/null 2>&1 || need+=(linux-perf)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
command -v make >/dev/null 2>&1 || need+=(make)
command -v g++ >/dev/null 2>&1 || need+=(g++)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "ci-setup: not root; not installing ${need[*]} (tests that need them will say they skipped)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Packages such as nginx and sshd start their service when installed; nothing here wants them
# running (the bench starts its own, on loopback ports of its choosing), so installs may not
# start services (policy-rc.d exit 101), unless the machine already has such a policy.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && own_policy=1
  trap '[ "$own_policy" = 1 ] && rm -f "$policy"' EXIT
fi
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
