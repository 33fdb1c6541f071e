#!/usr/bin/env bash
# System tools the tests and the benchmark use, installed from Debian's packages when missing:
#   openssh-server/openssh-client  the `ssh -L` baseline in `npm run bench`
#   iproute2                        network-namespace tests (ip netns, veth)
#   the shellcheck linter           lints scripts/*.sh
#   openssl                         certificate checks in tests
#   nftables                        "AI Corp drops all inbound" in the network-namespace test
# Without root (a developer laptop) nothing is installed and the dependent tests print why they skip.
set -euo pipefail
need=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need+=(nftables)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "ci-setup: not root; not installing ${need[*]} (tests that need them will say they skipped)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
