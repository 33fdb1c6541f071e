#!/usr/bin/env python3
# A point-to-point IP link with a fixed one-way delay and a rate cap, for kernels without
# `tc netem` (CONFIG_NET_SCH_NETEM unset, as on the bench's own CI VMs). It creates two TUN
# devices; netns-link.ts moves one into each namespace and addresses them; every packet read
# from one is written to the other after its transmission time at RATE plus DELAY, in order, as
# a real link would, and dropped past a queue of QUEUE bytes waiting to be sent.
#
#   delay-link.py TUN_A TUN_B DELAY_MS RATE_BYTES_PER_S QUEUE_BYTES
#
# Prints "ready" once both devices exist; exits when its stdin closes (its parent went away) or
# on SIGTERM, and then prints "dropped N" for each direction. Needs root (CAP_NET_ADMIN).
import collections
import fcntl
import os
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name):
    fd = os.open('/dev/net/tun', os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class Direction:
    def __init__(self, src, dst):
        self.src, self.dst = src, dst
        self.queue = collections.deque()  # (due, packet), due times increase
        self.free_at = 0.0  # when the sender side of the link is free again
        self.dropped = 0

    def receive(self, delay, rate, queue_limit):
        for _ in range(256):  # bounded, so the other direction gets its turn
            try:
                packet = os.read(self.src, 65536)
            except BlockingIOError:
                return
            now = time.monotonic()
            waiting = max(0.0, self.free_at - now) * rate
            if waiting + len(packet) > queue_limit:
                self.dropped += 1
                continue
            start = max(now, self.free_at)
            self.free_at = start + len(packet) / rate
            self.queue.append((self.free_at + delay, packet))

    def deliver(self, now):
        while self.queue and self.queue[0][0] <= now:
            _, packet = self.queue.popleft()
            try:
                os.write(self.dst, packet)
            except OSError:
                self.dropped += 1


def main():
    name_a, name_b = sys.argv[1], sys.argv[2]
    delay = float(sys.argv[3]) / 1000.0
    rate = float(sys.argv[4])
    queue_limit = int(sys.argv[5])
    a, b = open_tun(name_a), open_tun(name_b)
    directions = [Direction(a, b), Direction(b, a)]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    print('ready', flush=True)
    stdin = sys.stdin.fileno()
    while not stop:
        now = time.monotonic()
        dues = [d.queue[0][0] for d in directions if d.queue]
        timeout = max(0.0, min(dues) - now) if dues else 1.0
        try:
            readable, _, _ = select.select([a, b, stdin], [], [], timeout)
        except InterruptedError:
            continue
        if stdin in readable and os.read(stdin, 4096) == b'':
            break
        for d in directions:
            if d.src in readable:
                d.receive(delay, rate, queue_limit)
        now = time.monotonic()
        for d in directions:
            d.deliver(now)
    print(f'dropped {directions[0].dropped} {directions[1].dropped}', flush=True)


main()
